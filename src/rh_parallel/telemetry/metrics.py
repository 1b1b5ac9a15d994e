"""The metrics observer: Prometheus metrics for throughput, concurrency and failures.

Names, types and labels are a contract (dashboards and users' queries depend on them). The
``group`` label is the group's name and the ``breaker`` label the circuit breaker's, each
capped in distinct values (the rest fold into ``_other``), so the observer's memory and a
scrape's size stay bounded however many names a long-lived process sees. Nothing is kept per
group id or per item. Every label value is a str that can be exposed: anything else is turned
into one (and logged once), because one bad value must not break every scrape of the registry.

Speed: the observer is a Prometheus *collector*. Hooks update plain counters and bucket arrays
(resolved once per group label), and ``collect()`` turns them into metric families when the
endpoint is scraped. That keeps the per-item cost to a few dict and list operations instead of
a locked metric update per sample, and scrapes always read current values.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Iterator

from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

from rh_parallel.execution.breaker import CircuitState
from rh_parallel.model.enums import GroupStatus, ResultStatus
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.observer import ExecutionObserver, GroupInfo, ItemInfo

__all__ = ["METRIC_NAMES", "NO_GROUP", "OTHER", "OTHER_GROUP", "MetricsObserver"]

logger = logging.getLogger("rh_parallel.metrics")

OTHER = "_other"  # the label value names fold into beyond their cap
OTHER_GROUP = OTHER
INVALID_LABEL = "_invalid"  # a value that could not be turned into a str at all
NO_GROUP = "_none"
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
    "rh_parallel_cache_requests_total",
)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)
_OUTCOMES = tuple(s.value for s in ResultStatus)
_GROUP_OUTCOMES = tuple(
    s.value for s in (GroupStatus.COMPLETED, GroupStatus.FAILED, GroupStatus.CANCELLED)
)

# weak: a registry (and its observer, which it holds) can go away with nothing kept here
_instances: weakref.WeakValueDictionary[int, MetricsObserver] = weakref.WeakValueDictionary()
_instances_lock = threading.Lock()


def _exposable(value: object) -> str | None:
    """``value`` as is when it is a plain str the exposition can encode, else ``None``."""
    if type(value) is str and (value.isascii() or _encodes(value)):
        return value
    return None


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from os.fsdecode of bad bytes
        return False
    return True


def _coerce_label(value: object) -> str:
    """A str for any ``value``: str subclasses flattened, undecodable characters escaped,
    other objects through ``str()`` (``_invalid`` when even that raises)."""
    try:
        text = str.__str__(value) if isinstance(value, str) else str(value)
        if type(text) is not str:
            text = str.__str__(text)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    except Exception:
        return INVALID_LABEL


class _Histogram:
    """Bucket counts, a sum, and the latest exemplar per bucket."""

    __slots__ = ("bounds", "counts", "exemplars", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.exemplars: dict[int, Exemplar] | None = None

    def observe(self, value: float, trace_id: str | None = None) -> None:
        bucket = bisect_left(self.bounds, value)
        self.counts[bucket] += 1
        self.total += value
        if trace_id is not None:
            if self.exemplars is None:
                self.exemplars = {}
            self.exemplars[bucket] = Exemplar({"trace_id": trace_id}, value, time.time())

    def buckets(self) -> list[tuple[str, float] | tuple[str, float, Exemplar]]:
        out: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
        cumulative = 0
        exemplars = self.exemplars or {}
        for index, count in enumerate(list(self.counts)):
            cumulative += count
            bound = str(self.bounds[index]) if index < len(self.bounds) else "+Inf"
            exemplar = exemplars.get(index)
            out.append((bound, cumulative, exemplar) if exemplar else (bound, cumulative))
        return out


class _EventSeries:
    """The count and durations of one (kind, outcome) pair."""

    __slots__ = ("count", "durations")

    def __init__(self) -> None:
        self.count = 0
        self.durations = _Histogram(DURATION_BUCKETS)


class _Series:
    """Every sample of one ``group`` label value, resolved once per group."""

    __slots__ = (
        "cache",
        "events",
        "group_duration",
        "in_flight",
        "label",
        "queue_wait",
        "retries",
        "workers_limit",
    )

    def __init__(self, label: str) -> None:
        self.label = label
        self.in_flight = 0
        self.workers_limit = 0
        self.queue_wait = _Histogram(WAIT_BUCKETS)
        self.group_duration = _Histogram(DURATION_BUCKETS)
        self.events: dict[tuple[str, str], _EventSeries] = {}
        self.retries: dict[str, int] = {}
        self.cache: dict[str, int] | None = None  # lookups by result (hit, miss), once used

    def event(self, kind: str, outcome: str) -> _EventSeries:
        found = self.events.get((kind, outcome))
        if found is None:
            # every outcome of a kind at once: an error ratio reads 0, not "no data"
            for other in _OUTCOMES:
                self.events.setdefault((kind, other), _EventSeries())
            self.retries.setdefault(kind, 0)
            found = self.events[(kind, outcome)]
        return found


class MetricsObserver(ExecutionObserver, Collector):
    """Records the metrics of DESIGN.md section 4 and serves them from ``registry``.

    Use :meth:`for_registry` (the default state wiring does): a registry accepts each metric
    name once, so there is one observer per registry. ``max_groups`` caps the distinct values
    of the ``group`` label and ``max_breakers`` those of the ``breaker`` label; further names
    are counted under ``_other`` (whose ``rh_parallel_circuit_state`` is the state last
    reported by any breaker folded there).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        max_groups: int = 100,
        max_breakers: int = 100,
    ) -> None:
        for name, cap in (("max_groups", max_groups), ("max_breakers", max_breakers)):
            if isinstance(cap, bool) or not isinstance(cap, int):
                raise TypeError(f"MetricsObserver({name}={cap!r}): pass an int >= 1")
            if cap < 1:
                raise ValueError(f"MetricsObserver({name}={cap}) must be >= 1")
        self.registry = registry
        self.max_groups = max_groups
        self.max_breakers = max_breakers
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()
        self.groups_total = dict.fromkeys(_GROUP_OUTCOMES, 0)
        self.groups_active = 0
        self.circuit_state: dict[str, int] = {}
        self.circuit_rejections: dict[str, int] = {}
        self._logged: set[str] = set()
        if registry is not None:
            registry.register(self)

    @classmethod
    def for_registry(
        cls, registry: CollectorRegistry = REGISTRY, max_groups: int = 100, max_breakers: int = 100
    ) -> MetricsObserver:
        """The one observer of ``registry`` (made and registered on first use)."""
        with _instances_lock:
            observer = _instances.get(id(registry))
            if observer is None or observer.registry is not registry:
                observer = _instances[id(registry)] = cls(registry, max_groups, max_breakers)
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
        found = _exposable(value)
        if found is not None:
            return found
        coerced = _coerce_label(value)
        self._log_once(
            f"label:{label}",
            "rh_parallel metrics: a %s label value is not a plain str (%s); exposed as %r",
            label,
            type(value).__name__,
            coerced,
        )
        return coerced

    # -- labels ---------------------------------------------------------------------------

    def series(self, group_name: str | None) -> _Series:
        """The samples of ``group_name`` (``_none`` for events outside groups; ``_other``
        once ``max_groups`` names have been seen)."""
        label = NO_GROUP if group_name is None else self._label(group_name, "group")
        found = self._series.get(label)
        if found is not None:
            return found
        with self._lock:
            if len(self._series) >= self.max_groups and label != NO_GROUP:
                label = OTHER
            found = self._series.get(label)
            if found is None:
                found = self._series[label] = _Series(label)
        return found

    def breaker_label(self, breaker: object, state: CircuitState = CircuitState.CLOSED) -> str:
        """The ``breaker`` label of ``breaker`` (``_other`` once ``max_breakers`` names have
        been seen); a label seen for the first time starts with ``state`` and no rejection."""
        label = self._label(breaker, "breaker")
        if label in self.circuit_state:
            return label
        with self._lock:
            if label not in self.circuit_state and len(self.circuit_state) >= self.max_breakers:
                label = OTHER
            if label not in self.circuit_state:
                self.circuit_rejections[label] = 0
                self.circuit_state[label] = state.gauge_value
        return label

    def _item_series(self, item: ItemInfo) -> _Series:
        group = item.group
        if group is None:
            return self.series(None)
        found: _Series | None = group.scratch.get(self)
        if found is None:
            found = group.scratch[self] = self.series(group.group.name)
        return found

    # -- hooks ----------------------------------------------------------------------------

    def on_group_start(self, group: GroupInfo) -> bool | None:
        series = group.scratch[self] = self.series(group.group.name)
        self.groups_active += 1
        series.workers_limit += group.group.max_workers
        if group.breaker is not None:  # a guarded group shows its breaker before it trips
            name, state = group.breaker
            self.breaker_label(name, CircuitState(state))
        return None

    def on_group_end(self, group: GroupInfo) -> None:
        model = group.group
        series = group.scratch.get(self) or self.series(model.name)
        self.groups_active -= 1
        self.groups_total[model.status.value] = self.groups_total.get(model.status.value, 0) + 1
        series.workers_limit -= model.max_workers
        if model.duration is not None:
            series.group_duration.observe(model.duration)

    def on_item_start(self, item: ItemInfo) -> None:
        series = self._item_series(item)
        series.in_flight += 1
        if item.group is not None:
            series.queue_wait.observe(item.queue_time)

    def on_item_retry(self, item: ItemInfo, error: BaseException | None, delay: float) -> None:
        series = self._item_series(item)
        series.event(item.kind, "completed")
        series.retries[item.kind] += 1
        series.in_flight -= 1  # it gave its slot back for the wait

    def on_item_resume(self, item: ItemInfo) -> None:
        self._item_series(item).in_flight += 1

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        series = self._item_series(item)
        entry = series.event(item.kind, result.status.value)
        entry.count += 1
        if item.running:  # it held its slot to the end (not backing off, not queued)
            series.in_flight -= 1
        if item.attempts > 0:  # it ran: not skipped, rejected or stopped while queued
            group = item.group
            # an exemplar needs a span: skip the lookup in groups the tracer does not record
            traced = group is None or group.group.trace_id is not None
            trace_id = _sampled_trace_id() if traced else None
            entry.durations.observe(result.execution_time, trace_id)

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
        self.circuit_state[self.breaker_label(breaker, now)] = now.gauge_value

    def on_breaker_rejection(self, breaker: str) -> None:
        # first seen by its rejection: only an open breaker rejects
        label = self.breaker_label(breaker, CircuitState.OPEN)
        self.circuit_rejections[label] += 1

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
        all_series = list(self._series.values())
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
            "rh_parallel_events_in_flight", "Items running now.", labels=("group",)
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
                label = self._label(series.label, "group")
                for (kind, outcome), entry in list(series.events.items()):
                    events.add_metric((kind, outcome, label), entry.count)
                    durations.add_metric(
                        (kind, outcome, label), entry.durations.buckets(), entry.durations.total
                    )
                for kind, count in list(series.retries.items()):
                    retries.add_metric((kind, label), count)
                for result, count in list((series.cache or {}).items()):
                    cache.add_metric((result, label), count)
                if label != NO_GROUP:
                    queue_wait.add_metric(
                        (label,), series.queue_wait.buckets(), series.queue_wait.total
                    )
                    limits.add_metric((label,), series.workers_limit)
                    group_duration.add_metric(
                        (label,), series.group_duration.buckets(), series.group_duration.total
                    )
                in_flight.add_metric((label,), series.in_flight)
            except Exception:  # skip this label's samples, keep the rest of the scrape
                self._log_once(
                    "series", "rh_parallel metrics: a group series failed", exc_info=True
                )
        groups = CounterMetricFamily(
            "rh_parallel_groups", "Groups that ended, by outcome.", labels=("outcome",)
        )
        for outcome, count in list(self.groups_total.items()):
            groups.add_metric((outcome,), count)
        active = GaugeMetricFamily("rh_parallel_groups_active", "Groups running now.")
        active.add_metric((), self.groups_active)
        state = GaugeMetricFamily(
            "rh_parallel_circuit_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
            labels=("breaker",),
        )
        for breaker, value in list(self.circuit_state.items()):
            state.add_metric((self._label(breaker, "breaker"),), value)
        rejections = CounterMetricFamily(
            "rh_parallel_circuit_rejections",
            "Calls rejected by an open breaker.",
            labels=("breaker",),
        )
        for breaker, count in list(self.circuit_rejections.items()):
            rejections.add_metric((self._label(breaker, "breaker"),), count)
        return [
            events,
            durations,
            queue_wait,
            in_flight,
            limits,
            groups,
            group_duration,
            active,
            retries,
            state,
            rejections,
            cache,
        ]


def _sampled_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        return format(context.trace_id, "032x")
    return None
