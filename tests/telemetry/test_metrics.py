"""Prometheus metrics: the eleven names, their types and labels, and what they count."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.parser import text_string_to_metric_families

from rh_parallel import CircuitBreaker, ExecutionEvent, ExecutionState, RetryPolicy
from rh_parallel.telemetry import METRIC_NAMES, MetricsObserver
from rh_parallel.telemetry.metrics import OTHER
from rh_parallel.testing import InMemoryTelemetry
from tests.helpers import DOUBLE

TYPES = {
    "rh_parallel_events": "counter",
    "rh_parallel_event_duration_seconds": "histogram",
    "rh_parallel_queue_wait_seconds": "histogram",
    "rh_parallel_events_in_flight": "gauge",
    "rh_parallel_workers_limit": "gauge",
    "rh_parallel_groups": "counter",
    "rh_parallel_group_duration_seconds": "histogram",
    "rh_parallel_groups_active": "gauge",
    "rh_parallel_retries": "counter",
    "rh_parallel_circuit_state": "gauge",
    "rh_parallel_circuit_rejections": "counter",
    "rh_parallel_cache_requests": "counter",
}


@pytest.fixture
def telemetry() -> InMemoryTelemetry:
    return InMemoryTelemetry(max_groups=3)


async def fails() -> None:
    raise ValueError("no")


async def test_every_metric_with_its_type_and_labels(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    breaker = CircuitBreaker("search-api", failure_threshold=1, recovery_timeout=60)
    retry = RetryPolicy(max_attempts=2, initial_delay=0, jitter=0)
    async with state.parallel(name="docs", retry=retry) as p:
        p.add("bad", fails)
    async with state.parallel(name="docs", max_workers=1, circuit_breaker=breaker) as q:
        q.add("trips", fails())
        q.add("rejected", asyncio.sleep(0))
    families = {f.name: f for f in telemetry.registry.collect()}
    assert {name: f.type for name, f in families.items()} == TYPES
    assert {f"{n}_total" if TYPES[n] == "counter" else n for n in TYPES} == set(METRIC_NAMES)
    labels = {
        name: {tuple(sorted(k for k in s.labels if k != "le")) for s in f.samples}
        for name, f in families.items()
    }
    assert labels["rh_parallel_events"] == {("group", "kind", "outcome")}
    assert labels["rh_parallel_event_duration_seconds"] == {("group", "kind", "outcome")}
    assert labels["rh_parallel_queue_wait_seconds"] == {("group",)}
    assert labels["rh_parallel_groups"] == {("outcome",)}
    assert labels["rh_parallel_groups_active"] == {()}
    assert labels["rh_parallel_retries"] == {("group", "kind")}
    assert labels["rh_parallel_circuit_state"] == {("breaker",)}
    sample = telemetry.sample
    assert sample("rh_parallel_events_total", kind="task", outcome="failed", group="docs") == 2
    assert sample("rh_parallel_events_total", kind="task", outcome="rejected", group="docs") == 1
    assert sample("rh_parallel_events_total", kind="task", outcome="completed", group="docs") == 0
    assert sample("rh_parallel_retries_total", kind="task", group="docs") == 1
    assert sample("rh_parallel_circuit_state", breaker="search-api") == 1
    assert sample("rh_parallel_circuit_rejections_total", breaker="search-api") == 1
    assert sample("rh_parallel_groups_total", outcome="failed") == 2
    assert sample("rh_parallel_groups_total", outcome="completed") == 0
    assert sample("rh_parallel_groups_active") == 0
    assert sample("rh_parallel_events_in_flight", group="docs") == 0
    assert sample("rh_parallel_workers_limit", group="docs") == 0
    assert sample("rh_parallel_group_duration_seconds_count", group="docs") == 2
    # the rejected item never ran: counted, but no duration and no queue wait
    assert (
        sample(
            "rh_parallel_event_duration_seconds_count", kind="task", outcome="failed", group="docs"
        )
        == 2
    )
    assert (
        sample(
            "rh_parallel_event_duration_seconds_count",
            kind="task",
            outcome="rejected",
            group="docs",
        )
        == 0
    )
    assert sample("rh_parallel_queue_wait_seconds_count", group="docs") == 2


async def test_live_gauges_while_a_group_runs(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    seen: dict[str, float | None] = {}
    release = asyncio.Event()

    holding = 0
    both_holding = asyncio.Event()

    async def look() -> None:
        await both_holding.wait()  # both holders (one in the nested group) are running
        seen["in_flight"] = telemetry.sample("rh_parallel_events_in_flight", group="live")
        seen["limit"] = telemetry.sample("rh_parallel_workers_limit", group="live")
        seen["active"] = telemetry.sample("rh_parallel_groups_active")
        release.set()

    async def hold() -> None:
        nonlocal holding
        holding += 1
        if holding == 2:
            both_holding.set()
        await release.wait()

    async def second_group() -> None:
        async with state.parallel(name="live", max_workers=2) as q:
            q.add(hold())

    async with state.parallel(name="live", max_workers=3) as p:
        p.add(look())
        p.add(hold())
        p.add(second_group())
    assert seen == {"in_flight": 4, "limit": 5, "active": 2}


async def test_in_flight_never_exceeds_the_limit_while_items_retry(
    telemetry: InMemoryTelemetry,
) -> None:
    """Items backing off before a retry hold no slot, so they are not in flight: sampled at
    every attempt of every item, in-flight stays within the limit and counts what runs."""
    state = telemetry.state()
    running = 0
    samples: list[tuple[float | None, float | None, int]] = []
    attempts: dict[int, int] = {}

    async def flaky(i: int) -> int:
        nonlocal running
        running += 1
        attempts[i] = attempts.get(i, 0) + 1
        samples.append(
            (
                telemetry.sample("rh_parallel_events_in_flight", group="retrying"),
                telemetry.sample("rh_parallel_workers_limit", group="retrying"),
                running,
            )
        )
        await asyncio.sleep(0)
        running -= 1
        if attempts[i] < 3:
            raise ConnectionError("try again")
        return i

    retry = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0)
    async with state.parallel(name="retrying", max_workers=2, retry=retry) as p:
        for i in range(8):
            p.add(flaky, i)
    assert all(r.ok for r in await p.gather())
    assert len(samples) == 24
    assert all(in_flight == now for in_flight, _, now in samples)  # counts what runs
    assert all(in_flight is not None and in_flight <= 2 for in_flight, _, _ in samples)
    assert {limit for _, limit, _ in samples} == {2}
    assert telemetry.sample("rh_parallel_events_in_flight", group="retrying") == 0


async def test_kinds_and_sequential_events(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    tool = ExecutionEvent(actor=DOUBLE)
    await tool({"x": 1}, None, state)
    async with state.parallel(name="k") as p:
        p.add(tool({"x": 2}, None, state))
    assert (
        telemetry.sample(
            "rh_parallel_events_total", kind="tool", outcome="completed", group="_none"
        )
        == 1
    )
    assert (
        telemetry.sample("rh_parallel_events_total", kind="tool", outcome="completed", group="k")
        == 1
    )


async def test_group_label_is_capped(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    for n in range(6):
        async with state.parallel(name=f"batch-{n}") as p:
            p.add(asyncio.sleep(0))
    groups = {
        s.labels["group"]
        for f in telemetry.registry.collect()
        if f.name == "rh_parallel_events"
        for s in f.samples
    }
    assert groups == {"batch-0", "batch-1", "batch-2", "_other"}
    assert (
        telemetry.sample(
            "rh_parallel_events_total", kind="task", outcome="completed", group="_other"
        )
        == 3
    )


async def test_duration_exemplars_carry_the_trace_id(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    async with state.parallel(name="ex") as p:
        p.add("a", asyncio.sleep(0))
    span = telemetry.span("execute_task a")
    text = openmetrics_latest(telemetry.registry).decode()
    trace_id = format(span.context.trace_id, "032x")
    exemplar_lines = [
        line
        for line in text.splitlines()
        if line.startswith("rh_parallel_event_duration_seconds_bucket") and "#" in line
    ]
    assert exemplar_lines and all(f'trace_id="{trace_id}"' in line for line in exemplar_lines)
    # the classic text format has no exemplars but parses
    from prometheus_client import generate_latest

    names = {
        f.name for f in text_string_to_metric_families(generate_latest(telemetry.registry).decode())
    }
    assert "rh_parallel_event_duration_seconds" in names


def test_one_observer_per_registry() -> None:
    registry = CollectorRegistry()
    assert MetricsObserver.for_registry(registry) is MetricsObserver.for_registry(registry)
    with pytest.raises(ValueError, match="max_groups=0"):
        MetricsObserver(None, max_groups=0)
    with pytest.raises(ValueError, match="max_breakers=0"):
        MetricsObserver(None, max_breakers=0)
    with pytest.raises(TypeError, match="max_breakers=True"):
        MetricsObserver(None, max_breakers=True)


def test_the_observer_of_a_discarded_registry_is_not_kept() -> None:
    registry = CollectorRegistry()
    MetricsObserver.for_registry(registry)
    gone = weakref.ref(registry)
    del registry
    gc.collect()
    assert gone() is None


async def test_default_state_records_on_the_global_registry() -> None:
    from prometheus_client import REGISTRY

    before = (
        REGISTRY.get_sample_value(
            "rh_parallel_events_total", {"kind": "task", "outcome": "completed", "group": "global"}
        )
        or 0
    )
    state = ExecutionState()
    async with state.parallel(name="global") as p:
        p.add(asyncio.sleep(0))
    after = REGISTRY.get_sample_value(
        "rh_parallel_events_total", {"kind": "task", "outcome": "completed", "group": "global"}
    )
    assert after == before + 1


async def test_a_guarded_group_shows_its_breaker_before_it_trips(
    telemetry: InMemoryTelemetry,
) -> None:
    state = telemetry.state()
    async with state.parallel(name="calm", circuit_breaker=CircuitBreaker("quiet-api")) as p:
        p.add(asyncio.sleep(0))
    assert telemetry.sample("rh_parallel_circuit_state", breaker="quiet-api") == 0
    assert telemetry.sample("rh_parallel_circuit_rejections_total", breaker="quiet-api") == 0


def labels_of(registry: CollectorRegistry, family: str, label: str) -> set[str]:
    return {s.labels[label] for f in registry.collect() if f.name == family for s in f.samples}


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


class Shouty(str):
    def replace(self, *args: object) -> str:  # type: ignore[override]
        raise RuntimeError("a str subclass the exposition cannot use")


def test_no_label_value_breaks_a_scrape_of_the_registry(caplog: pytest.LogCaptureFixture) -> None:
    # one bad value used to fail every scrape, the application's own metrics included
    registry = CollectorRegistry()
    app_requests = Counter("app_requests", "The application's own metric.", registry=registry)
    app_requests.inc()
    metrics = MetricsObserver(registry)
    with caplog.at_level(logging.WARNING, logger="rh_parallel.metrics"):
        metrics.on_breaker_state(123, "open")  # type: ignore[arg-type]
        metrics.on_breaker_rejection(123)  # type: ignore[arg-type]
        metrics.on_breaker_rejection(Unprintable())  # type: ignore[arg-type]
        metrics.on_breaker_state(Shouty("loud"), "half_open")
        metrics.series(b"batch")  # type: ignore[arg-type]
        metrics.series("bad-\udc80-bytes")  # a lone surrogate cannot be encoded as UTF-8
        text = generate_latest(registry).decode()
        openmetrics_latest(registry)
    assert "app_requests_total 1.0" in text
    assert registry.get_sample_value("rh_parallel_circuit_state", {"breaker": "123"}) == 1
    assert (
        registry.get_sample_value("rh_parallel_circuit_rejections_total", {"breaker": "123"}) == 1
    )
    assert registry.get_sample_value("rh_parallel_circuit_state", {"breaker": "loud"}) == 2
    assert labels_of(registry, "rh_parallel_circuit_rejections", "breaker") == {
        "123",
        "_invalid",
        "loud",
    }
    assert labels_of(registry, "rh_parallel_events_in_flight", "group") == {
        "b'batch'",
        "bad-\\udc80-bytes",
    }
    # logged once per label, not once per value or per scrape
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "a breaker label value is not a plain str (int)" in warnings[0]
    assert "a group label value is not a plain str (bytes)" in warnings[1]


def test_a_scrape_survives_a_broken_series(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    Counter("app_requests", "The application's own metric.", registry=registry).inc()
    metrics = MetricsObserver(registry)
    metrics.series("fine").in_flight = 2
    metrics.series("broken").events = None  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="rh_parallel.metrics"):
        text = generate_latest(registry).decode()
        generate_latest(registry)
    assert "app_requests_total 1.0" in text
    assert 'rh_parallel_events_in_flight{group="fine"} 2.0' in text
    assert 'group="broken"' not in text
    assert len(caplog.records) == 1


async def test_group_and_breaker_labels_stay_bounded_over_many_unique_names() -> None:
    registry = CollectorRegistry()
    metrics = MetricsObserver(registry, max_groups=5, max_breakers=4)
    state = ExecutionState(observers=[metrics])
    async with asyncio.timeout(60):
        for n in range(2_000):
            breaker = CircuitBreaker(f"svc-{n}", failure_threshold=1, recovery_timeout=60)
            group = state.parallel(name=f"batch-{n}", max_workers=1, circuit_breaker=breaker)
            async with group as p:
                p.add(fails())  # trips the breaker
                p.add(asyncio.sleep(0))  # rejected by it
            await p.gather()
            if n == 9:  # every label value of the run exists from here on
                early_scrape = len(generate_latest(registry))
    # the internal maps: one entry per label value, never one per name or per group
    assert len(metrics._series) <= 6 and len(metrics.circuit_state) <= 5
    assert len(metrics.circuit_rejections) <= 5
    assert labels_of(registry, "rh_parallel_events", "group") == {
        *(f"batch-{n}" for n in range(5)),
        OTHER,
    }
    assert labels_of(registry, "rh_parallel_circuit_state", "breaker") == {
        *(f"svc-{n}" for n in range(4)),
        OTHER,
    }
    sample = registry.get_sample_value
    assert sample("rh_parallel_circuit_rejections_total", {"breaker": OTHER}) == 1_996
    assert sample("rh_parallel_circuit_rejections_total", {"breaker": "svc-3"}) == 1
    assert sample("rh_parallel_circuit_state", {"breaker": OTHER}) == 1  # open
    assert (
        sample("rh_parallel_events_total", {"kind": "task", "outcome": "rejected", "group": OTHER})
        == 1_995
    )
    assert sample("rh_parallel_groups_total", {"outcome": "failed"}) == 2_000
    # the scrape stops growing too (only its numbers get longer)
    assert len(generate_latest(registry)) < 1.1 * early_scrape
