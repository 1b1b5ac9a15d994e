"""Prometheus metrics: the names, their types and labels, and what they count."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.parser import text_string_to_metric_families

from rh_parallel import CircuitBreaker, ExecutionEvent, ExecutionResult, ExecutionState, RetryPolicy
from rh_parallel.model.enums import EventType, GroupStatus
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.runtime.observer import GroupInfo, ItemInfo
from rh_parallel.telemetry import METRIC_NAMES, MetricsObserver
from rh_parallel.telemetry.metrics import NO_GROUP, OTHER, series_bound
from rh_parallel.testing import InMemoryTelemetry
from tests.helpers import DOUBLE
from tests.telemetry.cap_workload import KINDS, run_cap_workload

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
    "rh_parallel_circuit_transitions": "counter",
    "rh_parallel_cache_requests": "counter",
    "rh_parallel_rate_limited_seconds": "counter",
}
# served by their own collectors (rh_parallel.telemetry.bus_metrics, .span_drops)
OTHER_COLLECTORS = {"rh_parallel_bus_dropped_total", "rh_parallel_spans_dropped_total"}


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
    served = {f"{n}_total" if TYPES[n] == "counter" else n for n in TYPES}
    assert served | OTHER_COLLECTORS == set(METRIC_NAMES)
    assert len(METRIC_NAMES) == len(set(METRIC_NAMES))
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
    assert labels["rh_parallel_circuit_transitions"] == {("breaker", "state")}
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
    # the rejected item never ran: counted, but no duration series and no queue wait
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
        is None
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
    assert len(metrics.circuit_transitions) <= 5 * 3  # by breaker and state entered
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


# -- label sets on first use, buckets up to 10 minutes, the series bound -------------------


def exposed(registry: CollectorRegistry) -> list[str]:
    """The sample lines of one scrape (what Prometheus stores as series)."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


async def test_label_sets_appear_when_first_used(telemetry: InMemoryTelemetry) -> None:
    registry = telemetry.registry
    assert not [line for line in exposed(registry) if "group=" in line]  # nothing before use
    state = telemetry.state()
    tool = ExecutionEvent(actor=DOUBLE)
    async with state.parallel(name="first") as p:
        p.add(tool({"x": 1}, None, state))
    lines = exposed(registry)
    # the kind's outcome counters exist at 0 (rate() sees a first failure), and its retries
    events = {
        line.split("{")[1].split("}")[0]
        for line in lines
        if line.startswith("rh_parallel_events_total")
    }
    assert len(events) == 7 and all('kind="tool"' in e and 'group="first"' in e for e in events)
    assert telemetry.sample("rh_parallel_retries_total", kind="tool", group="first") == 0
    # one duration histogram: the (kind, outcome) that ran; none for llm, agent or task
    durations = {
        (s.labels["kind"], s.labels["outcome"])
        for f in registry.collect()
        if f.name == "rh_parallel_event_duration_seconds"
        for s in f.samples
    }
    assert durations == {("tool", "completed")}
    assert not [line for line in lines if 'kind="llm"' in line or 'kind="task"' in line]
    assert telemetry.sample("rh_parallel_queue_wait_seconds_count", group="first") == 1
    assert telemetry.sample("rh_parallel_group_duration_seconds_count", group="first") == 1
    assert not [line for line in lines if "rh_parallel_cache_requests" in line]
    assert not [line for line in lines if "rh_parallel_rate_limited" in line]


def drive_one_item(
    metrics: MetricsObserver, seconds: float, group_seconds: float | None = None
) -> None:
    """The hooks the engine calls for one item of a one-item group, with an item that ran
    ``seconds`` and a group that ran ``group_seconds`` (no waiting: the times are given)."""
    model = ParallelEventGroup(group_id="g", name="agents", max_workers=1)
    group = GroupInfo(model, None)
    metrics.on_group_start(group)
    item = ItemInfo(0, "plan", "plan", EventType.AGENT_CALL, None, group)
    item.running = True
    item.attempts = 1
    metrics.on_item_start(item)
    result = ExecutionResult.success("done", name="plan")
    result.execution_time = seconds
    metrics.on_item_end(item, result)
    model.status = GroupStatus.COMPLETED
    model.duration = group_seconds if group_seconds is not None else seconds
    metrics.on_group_end(group)


def buckets_of(registry: CollectorRegistry, name: str, **labels: str) -> dict[str, float]:
    return {
        s.labels["le"]: s.value
        for f in registry.collect()
        for s in f.samples
        if s.name == f"{name}_bucket" and all(s.labels.get(k) == v for k, v in labels.items())
    }


@pytest.mark.parametrize(
    ("seconds", "first_bucket"),
    [(240.0, "300.0"), (90.0, "120.0"), (599.0, "600.0"), (0.003, "0.005"), (700.0, "+Inf")],
)
def test_durations_land_in_buckets_up_to_ten_minutes(seconds: float, first_bucket: str) -> None:
    registry = CollectorRegistry()
    metrics = MetricsObserver(registry)
    drive_one_item(metrics, seconds)
    for name, labels in (
        ("rh_parallel_event_duration_seconds", {"kind": "agent", "outcome": "completed"}),
        ("rh_parallel_group_duration_seconds", {}),
    ):
        buckets = buckets_of(registry, name, group="agents", **labels)
        bounds = [b for b in buckets if b != "+Inf"]
        assert bounds[0] == "0.005" and bounds[-3:] == ["120.0", "300.0", "600.0"]
        # cumulative: 0 below the item's bucket, 1 from it on
        reached = [le for le, count in buckets.items() if count == 1]
        assert reached[0] == first_bucket, (name, buckets)
        assert all(count in (0, 1) for count in buckets.values())
        assert buckets["+Inf"] == 1
    assert registry.get_sample_value(
        "rh_parallel_event_duration_seconds_sum",
        {"kind": "agent", "outcome": "completed", "group": "agents"},
    ) == pytest.approx(seconds)


def test_a_four_minute_item_gives_a_quantile_between_two_and_five_minutes() -> None:
    # Prometheus' histogram_quantile interpolates linearly inside the bucket that holds the
    # rank: with one item in (120, 300], every quantile lies there (before: 60 for all)
    registry = CollectorRegistry()
    drive_one_item(MetricsObserver(registry), 240.0)
    buckets = buckets_of(
        registry, "rh_parallel_event_duration_seconds", kind="agent", outcome="completed"
    )
    bounds = [(float(le), count) for le, count in buckets.items()]
    for q in (0.5, 0.95, 0.99):
        rank = q * buckets["+Inf"]
        index = next(i for i, (_, count) in enumerate(bounds) if count >= rank)
        lower, below = bounds[index - 1] if index else (0.0, 0.0)
        upper, count = bounds[index]
        value = lower + (upper - lower) * (rank - below) / (count - below)
        assert 120 < value <= 300


@pytest.mark.parametrize("kinds", [("tool", "llm"), KINDS])
async def test_series_at_the_group_cap_stay_under_the_stated_bound(kinds: tuple[str, ...]) -> None:
    """120 group names (100 kept, 20 folded into _other) plus _none, each kind once completed
    and once failed after a retry, and a breaker that trips: the scrape stays under
    ``series_bound`` for that shape (before this change the same workload exposed 27,839
    series with two kinds and 52,079 with four, as every outcome was pre-created)."""
    registry = CollectorRegistry()
    metrics = MetricsObserver(registry, max_groups=100)
    await run_cap_workload(ExecutionState(observers=[metrics]), groups=120, kinds=kinds)
    lines = exposed(registry)
    labels = labels_of(registry, "rh_parallel_events_in_flight", "group")
    assert len(labels) == 102 and {OTHER, NO_GROUP} <= labels
    bound = series_bound(102, kinds=len(kinds), ran_outcomes=2, breakers=1)
    assert len(lines) <= bound
    assert len(lines) >= 0.95 * bound  # the bound is tight: each kind counted and ran twice
    assert len(lines) <= series_bound(102, kinds=len(kinds), ran_outcomes=5, breakers=1)
    before = {2: 27_839, 4: 52_079}[len(kinds)]
    assert len(lines) < 0.5 * before
    assert len(generate_latest(registry)) < (1.3 if len(kinds) == 2 else 2.3) * 1e6


def test_events_outside_groups_do_not_take_a_group_label_of_the_cap() -> None:
    metrics = MetricsObserver(None, max_groups=2)
    assert metrics.series(None).label == NO_GROUP
    assert metrics.series("a").label == "a"
    assert metrics.series("b").label == "b"
    assert metrics.series("c").label == OTHER
    assert metrics.series("a").label == "a"
    assert set(metrics._series) == {NO_GROUP, "a", "b", OTHER}


# -- breakers and limiters -----------------------------------------------------------------


async def test_every_breaker_transition_is_counted_half_open_included(
    telemetry: InMemoryTelemetry,
) -> None:
    """The state gauge is read at scrapes; a breaker that opens, half-opens and closes
    between two of them leaves the gauge at 0, but the transitions counter has all three."""
    now = [0.0]

    async def ok() -> None:
        await asyncio.sleep(0)

    breaker = CircuitBreaker(
        "flaky-api", failure_threshold=1, recovery_timeout=5, clock=lambda: now[0]
    )
    state = telemetry.state()
    sample = telemetry.sample

    async def run(work: Callable[[], Awaitable[None]]) -> None:
        async with state.parallel(name="calls", max_workers=1, circuit_breaker=breaker) as p:
            p.add(work)
        await p.gather()

    await run(ok)  # closed: shows at 0, transitions at 0
    assert sample("rh_parallel_circuit_state", breaker="flaky-api") == 0
    for entered in ("open", "half_open", "closed"):
        transitions = sample(
            "rh_parallel_circuit_transitions_total", breaker="flaky-api", state=entered
        )
        assert transitions == 0
    await run(fails)  # trips
    await run(ok)  # rejected
    now[0] = 10.0
    await run(ok)  # the probe half-opens it and its success closes it
    assert sample("rh_parallel_circuit_state", breaker="flaky-api") == 0
    assert sample("rh_parallel_circuit_transitions_total", breaker="flaky-api", state="open") == 1
    assert (
        sample("rh_parallel_circuit_transitions_total", breaker="flaky-api", state="half_open") == 1
    )
    assert sample("rh_parallel_circuit_transitions_total", breaker="flaky-api", state="closed") == 1
    assert sample("rh_parallel_circuit_rejections_total", breaker="flaky-api") == 1


def test_breaker_and_limiter_labels_are_capped() -> None:
    registry = CollectorRegistry()
    metrics = MetricsObserver(registry, max_breakers=2, max_limiters=2)
    for n in range(5):
        metrics.on_breaker_state(f"svc-{n}", "open")
        metrics.on_breaker_state(f"svc-{n}", "half_open")
        metrics.on_item_wait(None, f"provider-{n}", 1.5)  # type: ignore[arg-type]
    assert labels_of(registry, "rh_parallel_circuit_transitions", "breaker") == {
        "svc-0",
        "svc-1",
        OTHER,
    }
    sample = registry.get_sample_value
    assert sample("rh_parallel_circuit_transitions_total", {"breaker": OTHER, "state": "open"}) == 3
    assert labels_of(registry, "rh_parallel_rate_limited_seconds", "limiter") == {
        "provider-0",
        "provider-1",
        OTHER,
    }
    assert sample("rh_parallel_rate_limited_seconds_total", {"limiter": OTHER}) == 4.5
    assert sample("rh_parallel_rate_limited_seconds_total", {"limiter": "provider-1"}) == 1.5
    with pytest.raises(ValueError, match="max_limiters=0"):
        MetricsObserver(None, max_limiters=0)


def test_the_global_registry_exposes_every_metric_name_of_the_contract() -> None:
    """METRIC_NAMES is DESIGN.md's table: the observer's families, the bus drops and the
    span drops, all on the default registry once rh_parallel.telemetry is imported."""
    from prometheus_client import REGISTRY

    import rh_parallel.telemetry  # noqa: F401  (the wiring)

    MetricsObserver.for_registry()
    text = generate_latest(REGISTRY).decode()
    for name in METRIC_NAMES:
        family = name.removesuffix("_total")
        assert f"# TYPE {family}" in text or f"# TYPE {name}" in text, name
