"""``rh_parallel_spans_dropped_total``: spans that ended but were never handed to an exporter.

:func:`rh_parallel.telemetry.configure` puts a counting processor in front of each exporter's
span processor (see :mod:`rh_parallel.telemetry.setup`). A span is dropped when the export
queue is full (a burst that outruns the exporter), when it ends after telemetry was shut down,
or when the shutdown's flush ran out of time before handing it over. Each drop is counted here,
process-wide, and told as a warning with the count, at most once per
:data:`WARN_INTERVAL` seconds (never one line per span); :func:`report_dropped` says the total
at shutdown. Spans an exporter received but could not deliver (a collector down) are not drops:
the exporter logs those itself.

This module does not import the OpenTelemetry SDK: importing :mod:`rh_parallel.telemetry`
registers the collector on the global registry (the counter reads 0 until a drop), and
:func:`register_span_drops` does it for another registry (idempotent per registry).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "QUEUE_FULL",
    "SPANS_DROPPED_METRIC",
    "WARN_INTERVAL",
    "SpanDropsCollector",
    "record_dropped",
    "register_span_drops",
    "report_dropped",
    "spans_dropped",
]

SPANS_DROPPED_METRIC = "rh_parallel_spans_dropped_total"
WARN_INTERVAL = 10.0  # seconds between two warnings about drops (the count is in each)
QUEUE_FULL = "export queue full"

logger = logging.getLogger("rh_parallel.telemetry")


class _Tally:
    """The process's drop count, and when a warning about it was last logged."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.created = time.time()
        self.warned_at: float | None = None  # monotonic time of the last warning
        self.warned_count = 0  # the count that warning told

    def add(self, count: int, reason: str) -> None:
        advice = (
            ": raise OTEL_BSP_MAX_QUEUE_SIZE, or sample with OTEL_TRACES_SAMPLER"
            if reason == QUEUE_FULL
            else ""
        )
        with self.lock:
            self.count += count
            now = time.monotonic()
            if self.warned_at is not None and now - self.warned_at < WARN_INTERVAL:
                return
            since = self.count - self.warned_count
            self.warned_at, self.warned_count = now, self.count
            total = self.count
        logger.warning(
            "telemetry: %d span(s) dropped (%s%s); %d dropped in this process so far (%s)",
            since,
            reason,
            advice,
            total,
            SPANS_DROPPED_METRIC,
        )


_TALLY = _Tally()


def record_dropped(count: int = 1, reason: str = QUEUE_FULL) -> None:
    """Count ``count`` dropped spans; warns with the count unless a warning was logged less
    than :data:`WARN_INTERVAL` seconds ago."""
    if count > 0:
        _TALLY.add(count, reason)


def spans_dropped() -> int:
    """Spans dropped in this process so far."""
    with _TALLY.lock:
        return _TALLY.count


def report_dropped(dropped: int, ended: int, what: str) -> None:
    """A final warning: ``dropped`` of the ``ended`` spans of ``what`` were never exported
    (nothing is logged when none were)."""
    if dropped > 0:
        logger.warning(
            "telemetry: %d of %d span(s) of %s were dropped and never exported (%s)",
            dropped,
            ended,
            what,
            SPANS_DROPPED_METRIC,
        )


_registered: weakref.WeakKeyDictionary[CollectorRegistry, SpanDropsCollector] = (
    weakref.WeakKeyDictionary()
)
_registered_lock = threading.Lock()


class SpanDropsCollector(Collector):
    """Exposes the process's span drop count as one counter without labels."""

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(
            SPANS_DROPPED_METRIC.removesuffix("_total"),
            "Spans that ended but were never handed to an exporter (export queue full, "
            "or ended after telemetry shut down).",
        )

    def describe(self) -> Iterator[Metric]:
        # naming the family lets the registry refuse a second collector for the same metric
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        with _TALLY.lock:
            count, created = _TALLY.count, _TALLY.created
        family.add_metric((), count, created=created)
        yield family


def register_span_drops(registry: CollectorRegistry = REGISTRY) -> SpanDropsCollector:
    """The span-drops collector of ``registry``, registered there on the first call."""
    with _registered_lock:
        collector = _registered.get(registry)
        if collector is None:
            collector = _registered[registry] = SpanDropsCollector()
            registry.register(collector)
        return collector


register_span_drops()  # the global registry: drops are process-wide, like the tracer provider
