"""The metric families the metrics observer exposes at each scrape, built from its storage.

Called from :meth:`MetricsObserver.collect` (in the scraping thread, while hooks may run in
the event loop's): every mapping is copied before it is iterated, a label value whose samples
cannot be built is skipped (and logged once) rather than failing the scrape, and the two
concurrency gauges of a label are read as one consistent pair (see :func:`_gauges`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from rh_parallel.telemetry._series import NO_GROUP, Series

if TYPE_CHECKING:
    from rh_parallel.telemetry.metrics import MetricsObserver

__all__ = ["build_families"]


def build_families(observer: MetricsObserver) -> list[Metric]:
    """Every family of ``observer`` now (a family with no label set yet has no samples)."""
    return [
        *_group_series_families(observer),
        *_group_families(observer),
        *_breaker_families(observer),
        _rate_limited_family(observer),
    ]


def _gauges(observer: MetricsObserver, all_series: list[Series]) -> dict[str, tuple[int, int]]:
    """``(in_flight, workers_limit)`` of each label, read as consistent pairs: in-flight only
    moves within the current limit, and a read during which no limit changed (the observer's
    sequence count was even and the same before and after) cannot mix the two sides of a
    group's start or end. A read that raced a change is repeated; after many, the last read
    is used (hooks running in several threads at once could leave the count odd)."""
    pairs: dict[str, tuple[int, int]] = {}
    for _ in range(100):
        before = observer._limit_changes
        pairs = {s.label: (s.in_flight, s.workers_limit) for s in all_series}
        if before % 2 == 0 and observer._limit_changes == before:
            break
        time.sleep(0)  # let the loop's thread finish the change
    return pairs


def _group_series_families(observer: MetricsObserver) -> list[Metric]:
    all_series = list(observer._series.values())
    gauges = _gauges(observer, all_series)
    events = CounterMetricFamily(
        "rh_parallel_events",
        "Items and events that ended, by kind and outcome.",
        labels=("kind", "outcome", "group"),
    )
    durations = HistogramMetricFamily(
        "rh_parallel_event_duration_seconds",
        "Seconds items and events ran (all attempts), with trace_id exemplars.",
        labels=("kind", "outcome", "group"),
    )
    queue_wait = HistogramMetricFamily(
        "rh_parallel_queue_wait_seconds",
        "Seconds items waited for a worker slot.",
        labels=("group",),
    )
    in_flight = GaugeMetricFamily(
        "rh_parallel_events_in_flight",
        "Items holding a worker slot now (not backing off before a retry, not queued).",
        labels=("group",),
    )
    limits = GaugeMetricFamily(
        "rh_parallel_workers_limit",
        "Sum of max_workers over the running groups of that name.",
        labels=("group",),
    )
    group_duration = HistogramMetricFamily(
        "rh_parallel_group_duration_seconds", "Seconds groups ran.", labels=("group",)
    )
    retries = CounterMetricFamily(
        "rh_parallel_retries", "Retried attempts.", labels=("kind", "group")
    )
    cache = CounterMetricFamily(
        "rh_parallel_cache_requests",
        "Cache lookups of items and events before they ran, by result (hit, miss).",
        labels=("result", "group"),
    )
    for series in all_series:
        try:
            label = observer._label(series.label, "group")
            for (kind, outcome), count in list(series.events.items()):
                events.add_metric((kind, str(outcome), label), count)
            for (kind, outcome), histogram in list(series.durations.items()):
                durations.add_metric(
                    (kind, str(outcome), label), histogram.buckets(), histogram.total
                )
            for kind, count in list(series.retries.items()):
                retries.add_metric((kind, label), count)
            for result, count in list((series.cache or {}).items()):
                cache.add_metric((result, label), count)
            now_in_flight, limit = gauges[series.label]
            in_flight.add_metric((label,), now_in_flight)
            if label == NO_GROUP:
                continue  # events outside groups have no worker limit and no queue
            limits.add_metric((label,), limit)
            wait = series.queue_wait
            if wait is not None:
                queue_wait.add_metric((label,), wait.buckets(), wait.total)
            ran = series.group_duration
            if ran is not None:
                group_duration.add_metric((label,), ran.buckets(), ran.total)
        except Exception:  # skip this label's samples, keep the rest of the scrape
            observer._log_once(
                "series", "rh_parallel metrics: a group series failed", exc_info=True
            )
    return [events, durations, queue_wait, in_flight, limits, group_duration, retries, cache]


def _group_families(observer: MetricsObserver) -> list[Metric]:
    groups = CounterMetricFamily(
        "rh_parallel_groups", "Groups that ended, by outcome.", labels=("outcome",)
    )
    for outcome, count in list(observer.groups_total.items()):
        groups.add_metric((outcome,), count)
    active = GaugeMetricFamily("rh_parallel_groups_active", "Groups running now.")
    active.add_metric((), observer.groups_active)
    return [groups, active]


def _breaker_families(observer: MetricsObserver) -> list[Metric]:
    state = GaugeMetricFamily(
        "rh_parallel_circuit_state",
        "Circuit breaker state at this scrape: 0 closed, 1 open, 2 half-open.",
        labels=("breaker",),
    )
    for breaker, value in list(observer.circuit_state.items()):
        state.add_metric((observer._label(breaker, "breaker"),), value)
    rejections = CounterMetricFamily(
        "rh_parallel_circuit_rejections",
        "Calls rejected by an open breaker.",
        labels=("breaker",),
    )
    for breaker, count in list(observer.circuit_rejections.items()):
        rejections.add_metric((observer._label(breaker, "breaker"),), count)
    transitions = CounterMetricFamily(
        "rh_parallel_circuit_transitions",
        "Circuit breaker state changes by the state entered, every one (also between scrapes).",
        labels=("breaker", "state"),
    )
    for (breaker, entered), count in list(observer.circuit_transitions.items()):
        transitions.add_metric((observer._label(breaker, "breaker"), entered), count)
    return [state, rejections, transitions]


def _rate_limited_family(observer: MetricsObserver) -> Metric:
    family = CounterMetricFamily(
        "rh_parallel_rate_limited_seconds",
        "Seconds items waited for a rate limit, by limiter.",
        labels=("limiter",),
    )
    for limiter, seconds in list(observer.rate_limited.items()):
        family.add_metric((observer._label(limiter, "limiter"),), seconds)
    return family
