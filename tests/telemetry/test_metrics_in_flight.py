"""``rh_parallel_events_in_flight`` never exceeds ``rh_parallel_workers_limit`` for a label.

Checked on the exposed samples (what a scrape reads) after every hook the engine calls, in the
demo's own workflow (nested groups, retries with backoff, a breaker that trips and recovers)
and in every other way two labels' numbers could drift apart: names folded into ``_other``,
nested groups of one name, events outside groups (``_none``, which has no limit), the global
limit, and stops (fail-fast, timeouts) that end items while they back off or wait. A scraping
thread reads the registry while a run goes on, as the metrics endpoint does.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rh_parallel import (
    AdaptiveLimit,
    CircuitBreaker,
    ErrorStrategy,
    ExecutionEvent,
    ExecutionResult,
    ExecutionState,
    RateLimit,
    RetryPolicy,
)
from rh_parallel.cli.workflow import DemoConfig, run_workflow
from rh_parallel.runtime.observer import GroupInfo, ItemInfo
from rh_parallel.telemetry.metrics import NO_GROUP, OTHER, MetricsObserver
from tests.helpers import DOUBLE

IN_FLIGHT = "rh_parallel_events_in_flight"
LIMIT = "rh_parallel_workers_limit"


def gauges(families: Any) -> tuple[dict[str, float], dict[str, float]]:
    """``(in_flight, limit)`` by group label, from metric families."""
    found: dict[str, dict[str, float]] = {IN_FLIGHT: {}, LIMIT: {}}
    for family in families:
        if family.name in found:
            for sample in family.samples:
                found[family.name][sample.labels["group"]] = sample.value
    return found[IN_FLIGHT], found[LIMIT]


def violations(in_flight: dict[str, float], limit: dict[str, float]) -> list[str]:
    wrong = []
    for label, value in in_flight.items():
        if value < 0:
            wrong.append(f"{label}: in flight {value} < 0")
        elif label != NO_GROUP and value > limit.get(label, 0):
            wrong.append(f"{label}: in flight {value} > limit {limit.get(label)}")
    return wrong


class CheckedMetrics(MetricsObserver):
    """The metrics observer, checking its own exposed samples after every hook."""

    def __init__(self, max_groups: int = 100) -> None:
        super().__init__(CollectorRegistry(), max_groups=max_groups)
        self.wrong: list[str] = []
        self.checks = 0
        self.peak: dict[str, float] = {}  # the most in flight seen per label
        self.limits: dict[str, float] = {}  # the highest limit seen per label

    def check(self, hook: str) -> None:
        in_flight, limit = gauges(self.collect())
        self.checks += 1
        self.wrong.extend(f"after {hook}: {w}" for w in violations(in_flight, limit))
        for label, value in in_flight.items():
            self.peak[label] = max(self.peak.get(label, 0), value)
        for label, value in limit.items():
            self.limits[label] = max(self.limits.get(label, 0), value)

    def on_group_start(self, group: GroupInfo) -> bool | None:
        found = super().on_group_start(group)
        self.check("on_group_start")
        return found

    def on_group_end(self, group: GroupInfo) -> None:
        super().on_group_end(group)
        self.check("on_group_end")

    def on_item_start(self, item: ItemInfo) -> None:
        super().on_item_start(item)
        self.check("on_item_start")

    def on_item_retry(self, item: ItemInfo, error: BaseException | None, delay: float) -> None:
        super().on_item_retry(item, error, delay)
        self.check("on_item_retry")

    def on_item_resume(self, item: ItemInfo) -> None:
        super().on_item_resume(item)
        self.check("on_item_resume")

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        super().on_item_end(item, result)
        self.check("on_item_end")

    def on_breaker_rejection(self, breaker: str) -> None:
        super().on_breaker_rejection(breaker)
        self.check("on_breaker_rejection")

    def settled(self) -> None:
        """Nothing runs any more: every label is back at 0 in flight and 0 limit."""
        assert not self.wrong, self.wrong[:5]
        in_flight, limit = gauges(self.collect())
        assert set(in_flight.values()) <= {0}, in_flight
        assert set(limit.values()) <= {0}, limit

    def sample(self, name: str, **labels: str) -> float | None:
        assert self.registry is not None
        return self.registry.get_sample_value(name, labels)


async def test_the_demo_workflow_never_shows_more_in_flight_than_the_limit() -> None:
    """The demo's workflow (failing documents, a flaky API retried with backoff behind a
    breaker that trips and half-opens), checked at every hook of three rounds."""
    metrics = CheckedMetrics()
    state = ExecutionState(observers=[metrics])
    breaker = CircuitBreaker("search-api", failure_threshold=5, recovery_timeout=0.02)
    for round_number in range(3):
        config = DemoConfig(
            docs=10, workers=3, fail_rate=0.45, seed=7, latency=0.004, round=round_number
        )
        await run_workflow(state, config, breaker)
    metrics.settled()
    assert metrics.checks > 200
    sample = metrics.sample
    retried = sample("rh_parallel_retries_total", kind="tool", group="search")
    assert retried is not None and retried > 0  # items backed off: once counted in flight
    opened = sample("rh_parallel_circuit_transitions_total", breaker="search-api", state="open")
    assert opened is not None and opened > 0
    # not vacuous: the outer group ran at its limit
    assert metrics.peak["Document Processing"] == metrics.limits["Document Processing"] == 3
    assert metrics.peak[NO_GROUP] == 1  # the orchestrator: in flight, with no limit of its own


async def test_names_folded_into_other_add_their_limits_too() -> None:
    metrics = CheckedMetrics(max_groups=1)
    state = ExecutionState(observers=[metrics])
    retry = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0)
    attempts: dict[tuple[int, int], int] = {}

    async def flaky(group: int, i: int) -> None:
        attempts[(group, i)] = attempts.get((group, i), 0) + 1
        await asyncio.sleep(0.001)
        if attempts[(group, i)] < 2:
            raise ConnectionError("again")

    async def group(n: int) -> None:
        async with state.parallel(name=f"batch-{n}", max_workers=2, retry=retry) as p:
            for i in range(6):
                p.add(flaky, n, i)

    await asyncio.gather(*(group(n) for n in range(5)))
    metrics.settled()
    assert metrics.limits[OTHER] == 8  # four groups of 2 running at once under _other
    assert metrics.peak[OTHER] == 8


async def test_nested_groups_of_one_name_and_events_outside_groups() -> None:
    metrics = CheckedMetrics()
    state = ExecutionState(observers=[metrics])
    retry = RetryPolicy(max_attempts=2, initial_delay=0.001, jitter=0)
    tool = ExecutionEvent(actor=DOUBLE)
    tries: dict[str, int] = {}

    async def inner(key: str) -> None:
        tries[key] = tries.get(key, 0) + 1
        await tool({"x": 1}, None, state)  # an event inside an item: in flight under _none?
        await asyncio.sleep(0.001)
        if tries[key] == 1:
            raise ConnectionError("again")

    async def outer(n: int) -> None:
        await tool({"x": n}, None, state)
        async with state.parallel(name="same", max_workers=3, retry=retry) as p:
            for i in range(5):
                p.add(inner, f"{n}-{i}")

    async with state.parallel(name="same", max_workers=2) as p:
        for n in range(4):
            p.add(outer, n)
    await tool({"x": 0}, None, state)  # a sequential event: _none
    metrics.settled()
    assert metrics.peak["same"] == 2 + 2 * 3  # both outer slots, each inner group full
    assert metrics.limits["same"] == 8


@pytest.mark.parametrize("how", ["fail_fast", "timeout", "event_timeout", "global_limit"])
async def test_stops_and_limits_leave_nothing_in_flight(how: str) -> None:
    """Items end while they back off, wait for a slot, wait for the global limit, or run."""
    metrics = CheckedMetrics()
    state = ExecutionState(
        observers=[metrics], global_max_workers=2 if how == "global_limit" else None
    )
    retry = RetryPolicy(max_attempts=4, initial_delay=0.01, jitter=0)
    calls = 0

    async def work(i: int) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05 if how == "event_timeout" and i % 2 else 0.002)
        if i % 3 == 0:
            raise ConnectionError("again")
        if how == "fail_fast" and calls > 12:
            raise ValueError("stop everything")

    options: dict[str, Any] = {"max_workers": 4, "retry": retry}
    if how == "fail_fast":
        options["error_strategy"] = ErrorStrategy.FAIL_FAST
    elif how == "timeout":
        options["timeout"] = 0.03
    elif how == "event_timeout":
        options["event_timeout"] = 0.02
    try:
        async with state.parallel(name="stopping", **options) as p:
            for i in range(20):
                p.add(work, i)
        await p.gather()
    except (ConnectionError, ValueError, TimeoutError):
        pass
    metrics.settled()
    assert metrics.peak["stopping"] <= (2 if how == "global_limit" else 4)


async def test_a_scraping_thread_never_reads_more_in_flight_than_the_limit() -> None:
    """The endpoint scrapes from its own thread while the loop starts and ends groups: a
    scrape reads each label's in-flight and limit as one pair."""
    registry = CollectorRegistry()
    metrics = MetricsObserver(registry)
    state = ExecutionState(observers=[metrics])
    stop = threading.Event()
    wrong: list[str] = []
    scrapes = 0

    def scrape() -> None:
        nonlocal scrapes
        while not stop.is_set():
            text = generate_latest(registry).decode()
            wrong.extend(violations(*gauges(text_string_to_metric_families(text))))
            scrapes += 1

    async def item() -> None:
        await asyncio.sleep(0)

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    try:
        for n in range(400):
            async with state.parallel(name=f"g{n % 3}", max_workers=2) as p:
                for _ in range(3):
                    p.add(item)
    finally:
        stop.set()
        scraper.join(timeout=10)
    assert scrapes > 0
    assert not wrong, wrong[:5]


class RacedObserver(MetricsObserver):
    """Its sequence count reads as given: a scrape racing limit changes."""

    def __init__(self, counts: list[int]) -> None:
        super().__init__(None)
        self.counts = iter(counts)
        self.reads = 0

    @property  # type: ignore[override]
    def _limit_changes(self) -> int:
        self.reads += 1
        return next(self.counts)

    @_limit_changes.setter
    def _limit_changes(self, value: int) -> None:
        pass


@pytest.mark.parametrize(
    ("counts", "reads"),
    [
        ([2, 2], 2),  # no change during the read: used at once
        ([3, 3, 4, 4], 4),  # a change under way (odd): read again
        ([2, 4, 4, 4], 4),  # a change began and ended during the read: read again
    ],
)
def test_a_scrape_reads_the_gauges_again_when_a_limit_changed_meanwhile(
    counts: list[int], reads: int
) -> None:
    from rh_parallel.telemetry._families import _gauges

    observer = RacedObserver(counts)
    series = observer.series("g")
    series.in_flight, series.workers_limit = 2, 3
    assert _gauges(observer, [series]) == {"g": (2, 3)}
    assert observer.reads == reads


class Throttled(Exception):
    """The provider said "slow down"."""


class LimitTracking(CheckedMetrics):
    """Also keeps, at every hook, the exposed (in flight, limit) of one label and the limit
    before the latest decrease."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.trail: list[tuple[float, float, float]] = []  # in flight, limit, limit before
        self.before_decrease = 0.0

    def on_limit_change(self, group: GroupInfo, old: int, new: int) -> None:
        super().on_limit_change(group, old, new)
        if new < old:  # the exposed limit now, plus the decrease
            self.before_decrease = gauges(self.collect())[1][self.label] + old - new
        self.check("on_limit_change")

    def check(self, hook: str) -> None:
        super().check(hook)
        in_flight, limit = gauges(self.collect())
        if self.label in limit:
            self.trail.append(
                (in_flight.get(self.label, 0), limit[self.label], self.before_decrease)
            )


async def test_an_adaptive_limit_moves_the_workers_limit_and_leaves_no_drift() -> None:
    """The limit gauge follows an AdaptiveLimit as it halves on "slow down" errors and grows
    on successes. In-flight exceeds it only after a decrease (items already running finish;
    none starts until in-flight is below the new limit), never above the limit before that
    decrease; when the group ends both read 0."""
    metrics = LimitTracking("adaptive")
    state = ExecutionState(observers=[metrics])
    calls = 0

    async def call(i: int) -> None:
        nonlocal calls
        calls += 1
        number = calls
        await asyncio.sleep(0.002)
        if number in (10, 30):
            raise Throttled("429")

    limit = AdaptiveLimit(initial=8, min=1, max=16, decrease_on=(Throttled,))
    async with state.parallel(limit, name="adaptive") as p:
        for i in range(80):
            p.add(call, i)
    limits = {limit for _, limit, _ in metrics.trail}
    assert 4 in limits and 8 in limits and max(limits) > 8  # halved, then grew past 8
    over = [(f, lim, before) for f, lim, before in metrics.trail if f > lim]
    assert over  # the drain after a decrease, visible
    assert all(f <= before for f, _, before in over)
    wrong = [w for w in metrics.wrong if "after on_limit_change" not in w and "> limit" not in w]
    assert not wrong
    in_flight, limit_now = gauges(metrics.collect())
    assert in_flight["adaptive"] == 0 and limit_now["adaptive"] == 0


async def test_rate_limit_waits_are_counted_by_limiter() -> None:
    registry = CollectorRegistry()
    state = ExecutionState(observers=[MetricsObserver(registry)])
    provider = RateLimit(50, per=1.0, name="provider-api")

    async def call() -> None:
        await asyncio.sleep(0)

    async with state.parallel(10, name="limited", rate_limit=provider) as p:
        for _ in range(6):
            p.add(call)
    waited = registry.get_sample_value(
        "rh_parallel_rate_limited_seconds_total", {"limiter": "provider-api"}
    )
    # six starts 20 ms apart: the waits add up to about 0+20+40+...+100 ms
    assert waited is not None and 0.15 < waited < 1.0
