"""The metrics observer: Prometheus metrics for throughput, concurrency and failures.

Names, types and labels are a contract (DESIGN.md section 4; dashboards and users' queries
depend on them). ``group``, ``breaker`` and ``limiter`` label values are names, each capped in
distinct values (the rest fold into ``_other``), so the observer's memory and a scrape's size
stay bounded however many names a long-lived process sees. Nothing is kept per group id or per
item. Every label value is a str that can be exposed: anything else is turned into one (and
logged once), because one bad value must not break every scrape of the registry.

Speed: the observer is a Prometheus *collector*. Hooks update plain counters and bucket arrays
(resolved once per group label), and ``collect()`` turns them into metric families when the
endpoint is scraped. That keeps the per-item cost to a few dict and list operations instead of
a locked metric update per sample, and scrapes always read current values.

Label sets appear when first used (see :class:`~rh_parallel.telemetry._series.Series` for
the few created just before their first increment, so that ``rate()`` sees it). Series, at
most, per ``group`` label value: 2 gauges (in flight, limit), the queue-wait and group-duration
histograms (16 + 19), per kind used 7 outcome counters, 1 retry counter and a duration
histogram (19) per outcome that ran (completed always), and 2 cache counters once the cache is
used. Label values: at most ``max_groups`` names, ``_none`` and ``_other``. See
:func:`series_bound`.
"""

from __future__ import annotations

import logging
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterator

from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from rh_parallel.execution.breaker import CircuitState
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.observer import ExecutionObserver, GroupInfo, ItemInfo
from rh_parallel.telemetry._families import build_families
from rh_parallel.telemetry._series import (
    BREAKER_STATES,
    DURATION_BUCKETS,
    GROUP_OUTCOMES,
    INVALID_LABEL,
    NO_GROUP,
    OTHER,
    WAIT_BUCKETS,
    Histogram,
    Series,
    coerce_label,
    exposable,
    series_bound,
)

__all__ = [
    "DURATION_BUCKETS",
    "INVALID_LABEL",
    "METRIC_NAMES",
    "NO_GROUP",
    "OTHER",
    "OTHER_GROUP",
    "WAIT_BUCKETS",
    "MetricsObserver",
    "series_bound",
]

logger = logging.getLogger("rh_parallel.metrics")

OTHER_GROUP = OTHER
# Every rh_parallel metric of a process, as exposed (DESIGN.md section 4). The observer serves
# all but the last two: rh_parallel.telemetry.bus_metrics serves the bus drops, and the
# span-drop collector of rh_parallel.telemetry the spans its export queue dropped.
METRIC_NAMES = (
    "rh_parallel_events_total",
    "rh_parallel_event_duration_seconds",
    "rh_parallel_queue_wait_seconds",
    "rh_parallel_events_in_flight",
    "rh_parallel_workers_limit",
    "rh_parallel_groups_total",
    "rh_parallel_group_duration_seconds",
    "rh_parallel_groups_active",
    "rh_parallel_retries_total",
    "rh_parallel_circuit_state",
    "rh_parallel_circuit_rejections_total",
    "rh_parallel_circuit_transitions_total",
    "rh_parallel_cache_requests_total",
    "rh_parallel_rate_limited_seconds_total",
    "rh_parallel_bus_dropped_total",
    "rh_parallel_spans_dropped_total",
)

# weak: a registry (and its observer, which it holds) can go away with nothing kept here
_instances: weakref.WeakValueDictionary[int, MetricsObserver] = weakref.WeakValueDictionary()
_instances_lock = threading.Lock()


class MetricsObserver(ExecutionObserver, Collector):
    """Records the ``rh_parallel_*`` metrics and serves them from ``registry`` (names, types
    and labels: the [telemetry reference](../telemetry-reference.md)).

    Use :meth:`for_registry` (the default state wiring does): a registry accepts each metric
    name once, so there is one observer per registry. ``max_groups``, ``max_breakers`` and
    ``max_limiters`` cap the distinct values of the ``group``, ``breaker`` and ``limiter``
    labels; further names are counted under ``_other`` (whose ``rh_parallel_circuit_state`` is
    the state last reported by any breaker folded there). Events run outside any group count
    under ``group="_none"``, which is not one of the ``max_groups``.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        max_groups: int = 100,
        max_breakers: int = 100,
        max_limiters: int = 100,
    ) -> None:
        for name, cap in (
            ("max_groups", max_groups),
            ("max_breakers", max_breakers),
            ("max_limiters", max_limiters),
        ):
            if isinstance(cap, bool) or not isinstance(cap, int):
                raise TypeError(f"MetricsObserver({name}={cap!r}): pass an int >= 1")
            if cap < 1:
                raise ValueError(f"MetricsObserver({name}={cap}) must be >= 1")
        self.registry = registry
        self.max_groups = max_groups
        self.max_breakers = max_breakers
        self.max_limiters = max_limiters
        self._series: dict[str, Series] = {}
        self._named_groups = 0  # label values of _series other than _none and _other
        self._lock = threading.Lock()  # creating label values (hooks may run in many threads)
        # Odd while a workers_limit changes (a sequence lock, cheaper than a lock per group):
        # in-flight only moves within the current limit, so a scrape that read both gauges
        # with no limit change in between never pairs a limit with an in-flight count from
        # the other side of a group's start or end (see _families._gauges).
        self._limit_changes = 0
        self.groups_total = dict.fromkeys(GROUP_OUTCOMES, 0)
        self.groups_active = 0
        self.circuit_state: dict[str, int] = {}
        self.circuit_rejections: dict[str, int] = {}
        self.circuit_transitions: dict[tuple[str, str], int] = {}
        self.rate_limited: dict[str, float] = {}
        self._logged: set[str] = set()
        if registry is not None:
            registry.register(self)

    @classmethod
    def for_registry(
        cls,
        registry: CollectorRegistry = REGISTRY,
        max_groups: int = 100,
        max_breakers: int = 100,
        max_limiters: int = 100,
    ) -> MetricsObserver:
        """The one observer of ``registry`` (made and registered on first use)."""
        with _instances_lock:
            observer = _instances.get(id(registry))
            if observer is None or observer.registry is not registry:
                observer = cls(registry, max_groups, max_breakers, max_limiters)
                _instances[id(registry)] = observer
            return observer

    def _log_once(self, key: str, message: str, *args: object, exc_info: bool = False) -> None:
        """Log ``message`` the first time ``key`` comes up; after that, only at debug level."""
        if key in self._logged:
            logger.debug(message, *args, exc_info=exc_info)
        else:
            self._logged.add(key)
            logger.warning(message, *args, exc_info=exc_info)

    def _label(self, value: object, label: str) -> str:
        """``value`` as a label value that every scrape can expose."""
        found = exposable(value)
        if found is not None:
            return found
        coerced = coerce_label(value)
        self._log_once(
            f"label:{label}",
            "rh_parallel metrics: a %s label value is not a plain str (%s); exposed as %r",
            label,
            type(value).__name__,
            coerced,
        )
        return coerced

    # -- labels ---------------------------------------------------------------------------

    def series(self, group_name: str | None) -> Series:
        """The samples of ``group_name`` (``_none`` for events outside groups; ``_other``
        once ``max_groups`` names have been seen)."""
        if group_name is None:
            label = NO_GROUP
        else:
            if type(group_name) is str:
                found = self._series.get(group_name)  # a name seen before is a valid label
                if found is not None:
                    return found
            label = self._label(group_name, "group")
        found = self._series.get(label)
        if found is not None:
            return found
        with self._lock:
            found = self._series.get(label)
            if found is None:
                if label not in (NO_GROUP, OTHER):
                    if self._named_groups >= self.max_groups:
                        return self._other_series()
                    self._named_groups += 1
                found = self._series[label] = Series(label)
        return found

    def _other_series(self) -> Series:
        found = self._series.get(OTHER)
        if found is None:
            found = self._series[OTHER] = Series(OTHER)
        return found

    def breaker_label(self, breaker: object, state: CircuitState = CircuitState.CLOSED) -> str:
        """The ``breaker`` label of ``breaker`` (``_other`` once ``max_breakers`` names have
        been seen); a label seen for the first time starts with ``state``, no rejection and
        no transition."""
        label = self._label(breaker, "breaker")
        if label in self.circuit_state:
            return label
        with self._lock:
            if label not in self.circuit_state and len(self.circuit_state) >= self.max_breakers:
                label = OTHER
            if label not in self.circuit_state:
                self.circuit_rejections[label] = 0
                for name in BREAKER_STATES:
                    self.circuit_transitions[(label, name)] = 0
                self.circuit_state[label] = state.gauge_value
        return label

    def limiter_label(self, limiter: object) -> str:
        """The ``limiter`` label of ``limiter`` (``_other`` once ``max_limiters`` names have
        been seen)."""
        label = self._label(limiter, "limiter")
        if label in self.rate_limited:
            return label
        with self._lock:
            if label not in self.rate_limited and len(self.rate_limited) >= self.max_limiters:
                label = OTHER
            self.rate_limited.setdefault(label, 0.0)
        return label

    def _item_series(self, item: ItemInfo) -> Series:
        group = item.group
        if group is None:
            return self.series(None)
        found: Series | None = group.scratch.get(self)
        if found is None:
            found = group.scratch[self] = self.series(group.group.name)
        return found

    # -- hooks ----------------------------------------------------------------------------

    def on_group_start(self, group: GroupInfo) -> bool | None:
        series = group.scratch[self] = self.series(group.group.name)
        if series.queue_wait is None:
            series.add_group()
        self.groups_active += 1
        self._limit_changes += 1
        series.workers_limit += group.group.max_workers
        self._limit_changes += 1
        if group.breaker is not None:  # a guarded group shows its breaker before it trips
            name, state = group.breaker
            self.breaker_label(name, CircuitState(state))
        return None

    def on_group_end(self, group: GroupInfo) -> None:
        model = group.group
        series = group.scratch.get(self) or self.series(model.name)
        self.groups_active -= 1
        outcome = model.status.value
        self.groups_total[outcome] = self.groups_total.get(outcome, 0) + 1
        self._limit_changes += 1  # its items have ended: none is in flight any more
        series.workers_limit -= model.max_workers
        self._limit_changes += 1
        seconds = model.duration
        histogram = series.group_duration
        if seconds is not None and histogram is not None:  # created at the group's start
            histogram.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
            histogram.total += seconds

    # on_item_start and on_item_end run once per item: they inline _item_series and the
    # histogram update (a Python call costs about as much as the update itself).

    def on_item_start(self, item: ItemInfo) -> None:
        group = item.group
        series: Series | None = group.scratch.get(self) if group is not None else None
        if series is None:
            series = self._item_series(item)
        series.in_flight += 1
        if item.kind not in series.retries:  # the kind's first item in this label
            series.add_kind(item.kind)
        wait = series.queue_wait
        if wait is not None and group is not None:
            seconds = item.queue_time
            wait.counts[bisect_left(WAIT_BUCKETS, seconds)] += 1
            wait.total += seconds

    def on_item_retry(self, item: ItemInfo, error: BaseException | None, delay: float) -> None:
        series = self._item_series(item)
        kind = item.kind
        if kind not in series.retries:
            series.add_kind(kind)
        series.retries[kind] += 1
        series.in_flight -= 1  # it gave its slot back for the wait

    def on_item_resume(self, item: ItemInfo) -> None:
        self._item_series(item).in_flight += 1

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        group = item.group
        series: Series | None = group.scratch.get(self) if group is not None else None
        if series is None:
            series = self._item_series(item)
        key = (item.kind, result.status)
        events = series.events
        count = events.get(key)
        if count is None:
            series.add_kind(item.kind)
            count = 0
        events[key] = count + 1
        if item.running:  # it held its slot to the end (not backing off, not queued)
            series.in_flight -= 1
        if item.attempts > 0:  # it ran: not skipped, rejected or stopped while queued
            histogram = series.durations.get(key)
            if histogram is None:  # the first of an outcome other than completed
                histogram = series.durations[key] = Histogram(DURATION_BUCKETS)
            seconds = result.execution_time
            # an exemplar needs a span: skip the lookup in groups the tracer does not record
            if group is None or group.group.trace_id is not None:
                trace_id = _sampled_trace_id()
                if trace_id is not None:
                    histogram.observe(seconds, trace_id)
                    return
            histogram.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
            histogram.total += seconds

    def on_cache_lookups(self, group: GroupInfo | None, hits: int, misses: int) -> None:
        if group is None:
            series = self.series(None)
        else:
            series = group.scratch.get(self) or self.series(group.group.name)
        if series.cache is None:
            series.cache = {"hit": 0, "miss": 0}
        series.cache["hit"] += hits
        series.cache["miss"] += misses

    def on_breaker_state(self, breaker: str, state: str) -> None:
        now = CircuitState(state)
        label = self.breaker_label(breaker, now)
        self.circuit_state[label] = now.gauge_value
        self.circuit_transitions[(label, now.value)] += 1

    def on_breaker_rejection(self, breaker: str) -> None:
        # first seen by its rejection: only an open breaker rejects
        label = self.breaker_label(breaker, CircuitState.OPEN)
        self.circuit_rejections[label] += 1

    def on_item_wait(self, item: ItemInfo, limiter: str, seconds: float) -> None:
        label = self.limiter_label(limiter)
        self.rate_limited[label] += seconds

    def on_limit_change(self, group: GroupInfo, old: int, new: int) -> None:
        # An AdaptiveLimit moved. Lowered below the items holding slots, in-flight stays above
        # the new limit until enough of them end (none starts meanwhile): the only time it
        # exceeds workers_limit, which shows the current value (DESIGN.md section 9).
        series = group.scratch.get(self) or self.series(group.group.name)
        self._limit_changes += 1
        series.workers_limit += new - old
        self._limit_changes += 1

    # -- collector ------------------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the families below are built at each scrape

    def collect(self) -> Iterator[Metric]:
        """The metric families now. Never raises: a scrape reads every collector of the
        registry, the application's own included, and must not fail because of this one."""
        try:
            return iter(self._families())
        except Exception:
            self._log_once("collect", "rh_parallel metrics: collect failed", exc_info=True)
            return iter(())

    def _families(self) -> list[Metric]:
        return build_families(self)


def _sampled_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        return format(context.trace_id, "032x")
    return None
