"""``rh_parallel_bus_dropped_total{subscriber}``: bus records lost to a full subscriber queue.

The runtime layer counts drops without knowing Prometheus (``rh_parallel.runtime.bus`` keeps
them per subscriber name, capped at ``MAX_SUBSCRIBER_LABELS`` names plus ``_other``, so the
``subscriber`` label has at most 51 values; a name is a non-empty printable str, refused at
``subscribe()`` otherwise); this collector reads those counts at each scrape, so dropping
costs no metric update. A subscriber name appears from its first drop, with the time of that
drop as the counter's ``created``. A scrape never fails because of this collector: should
reading the counts raise, the family is exposed without samples and the error logged once.

Importing :mod:`rh_parallel.telemetry` registers the collector on the global registry once;
:func:`register_bus_metrics` does it for another registry (idempotent per registry).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from rh_parallel.runtime.bus import dropped_by_subscriber

__all__ = ["BUS_DROPPED_METRIC", "BusDropsCollector", "register_bus_metrics"]

BUS_DROPPED_METRIC = "rh_parallel_bus_dropped_total"

DropSource = Callable[[], dict[str, tuple[int, float]]]

_registered: weakref.WeakKeyDictionary[CollectorRegistry, BusDropsCollector] = (
    weakref.WeakKeyDictionary()
)
_registered_lock = threading.Lock()
logger = logging.getLogger("rh_parallel.metrics")


class BusDropsCollector(Collector):
    """Exposes the bus drop counts of this process as one counter family.

    ``source`` returns ``{subscriber: (count, created)}``; the default reads every bus.
    """

    def __init__(self, source: DropSource = dropped_by_subscriber) -> None:
        self._source = source
        self._failed = False  # logged once

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(
            BUS_DROPPED_METRIC.removesuffix("_total"),
            "Records dropped because an event-bus subscriber's queue was full (oldest first).",
            labels=("subscriber",),
        )

    def describe(self) -> Iterator[Metric]:
        # naming the family lets the registry refuse a second collector for the same metric
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        try:
            for subscriber, (count, created) in sorted(self._source().items()):
                family.add_metric((subscriber,), count, created=created)
        except Exception:
            family = self._family()  # none of a half-built family
            if not self._failed:
                self._failed = True
                logger.warning("rh_parallel metrics: reading bus drops failed", exc_info=True)
        yield family


def register_bus_metrics(registry: CollectorRegistry = REGISTRY) -> BusDropsCollector:
    """The bus-drops collector of ``registry``, registered there on the first call."""
    with _registered_lock:
        collector = _registered.get(registry)
        if collector is None:
            collector = _registered[registry] = BusDropsCollector()
            registry.register(collector)
        return collector


register_bus_metrics()  # the global registry: drops are process-wide, like the counts they read
