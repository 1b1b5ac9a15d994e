"""Test doubles for users' own tests of workflows built on rh-parallel.

- :class:`RecordCapture`: subscribe to a bus and keep every record, with helpers to filter.
- :class:`ConcurrencyProbe`: count how many calls run at once (measure limits, don't guess).
- :class:`InMemoryTelemetry`: tracing and metrics observers wired to an in-memory span exporter
  and a private Prometheus registry, for asserting on spans and metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from rh_parallel.execution.state import ExecutionState
from rh_parallel.model.enums import ExecutionStatus
from rh_parallel.model.events import ExecutionEvent
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.runtime.bus import EventBus, Subscription
from rh_parallel.telemetry.metrics import MetricsObserver
from rh_parallel.telemetry.tracing import TracingObserver

__all__ = ["ConcurrencyProbe", "InMemoryTelemetry", "RecordCapture"]

T = TypeVar("T")


class RecordCapture:
    """Every record a bus publishes, in publish order.

    >>> capture = RecordCapture(bus)
    >>> # ... run ...; await capture.flush()
    >>> # capture.items(status=ExecutionStatus.FAILED), capture.groups()
    """

    def __init__(self, bus: EventBus) -> None:
        self.bus: EventBus = bus
        """The bus captured."""
        self.records: list[Any] = []
        """Every record received so far, in publish order: ``ExecutionEvent`` and
        ``ParallelEventGroup`` snapshots. Call :meth:`flush` first to have them all."""
        self.subscription: Subscription = bus.subscribe(self.records.append, name="capture")
        """The bus subscription that fills :attr:`records` (:meth:`close` ends it)."""

    async def flush(self) -> list[Any]:
        """Wait for every published record to arrive; returns them."""
        await self.bus.flush()
        return self.records

    def items(
        self, status: ExecutionStatus | None = None, group_id: str | None = None
    ) -> list[ExecutionEvent]:
        """Item and event records, optionally of one status and/or one group."""
        return [
            r
            for r in self.records
            if isinstance(r, ExecutionEvent)
            and (status is None or r.execution_status == status)
            and (group_id is None or r.group_id == group_id)
        ]

    def groups(self) -> list[ParallelEventGroup]:
        """Group records (each group publishes one at start and one at end)."""
        return [r for r in self.records if isinstance(r, ParallelEventGroup)]

    def statuses(self, item_name: str) -> list[str]:
        """The lifecycle of one item, e.g. ``['started', 'retrying', 'completed']``."""
        return [
            r.execution_status.value
            for r in self.items()
            if r.item_name == item_name and r.execution_status is not None
        ]

    def close(self) -> None:
        """Stop capturing: unsubscribe from the bus (the records kept so far stay)."""
        self.subscription.unsubscribe()


class ConcurrencyProbe:
    """Counts calls running at once; ``peak`` is the most seen together.

    >>> probe = ConcurrencyProbe()
    >>> p.add(probe.wrap(work), x)          # or: async with probe: ...
    """

    def __init__(self) -> None:
        self.current: int = 0
        """Calls running now."""
        self.peak: int = 0
        """The most calls seen running at once."""
        self.entered: int = 0
        """Calls started so far."""
        self.exited: int = 0
        """Calls ended so far (returned or raised)."""

    async def __aenter__(self) -> ConcurrencyProbe:
        self.current += 1
        self.entered += 1
        self.peak = max(self.peak, self.current)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.current -= 1
        self.exited += 1

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` counted by this probe; its result."""
        async with self:
            return await awaitable

    def wrap(self, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """``fn`` counted by this probe on every call."""

        async def counted(*args: Any, **kwargs: Any) -> T:
            async with self:
                return await fn(*args, **kwargs)

        return counted


class InMemoryTelemetry:
    """Tracing and metrics observers that record into memory, for tests.

    >>> telemetry = InMemoryTelemetry()
    >>> state = telemetry.state()          # an ExecutionState with both observers
    >>> # ... run ...
    >>> # telemetry.span("invoke_workflow docs").attributes["rh_parallel.group_size"]
    >>> # telemetry.sample("rh_parallel_events_total", kind="task", outcome="completed",
    >>> #                  group="docs")
    """

    def __init__(self, max_groups: int = 100) -> None:
        self.exporter: InMemorySpanExporter = InMemorySpanExporter()
        """The exporter finished spans go to (read them with :meth:`spans`)."""
        self.tracer_provider: TracerProvider = TracerProvider()
        """A private tracer provider that exports to :attr:`exporter` (the global one is left
        alone)."""
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.registry: CollectorRegistry = CollectorRegistry()
        """A private Prometheus registry the metrics are recorded in (read samples with
        :meth:`sample`)."""
        self.tracing: TracingObserver = TracingObserver(self.tracer_provider)
        """The tracing observer, on :attr:`tracer_provider`."""
        self.metrics: MetricsObserver = MetricsObserver(self.registry, max_groups=max_groups)
        """The metrics observer, on :attr:`registry` (``max_groups`` caps its group labels)."""

    @property
    def observers(self) -> list[TracingObserver | MetricsObserver]:
        """Both observers, for ``ExecutionState(observers=telemetry.observers)``."""
        return [self.tracing, self.metrics]

    def state(self, **kwargs: Any) -> ExecutionState:
        """An ExecutionState observed by this telemetry (keyword arguments pass through)."""
        return ExecutionState(observers=self.observers, **kwargs)

    def spans(self) -> list[ReadableSpan]:
        """Every finished span, in end order."""
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (raises if there are none or several)."""
        found = [s for s in self.spans() if s.name == name]
        if len(found) != 1:
            names = sorted({s.name for s in self.spans()})
            raise LookupError(f"{len(found)} spans named {name!r}; spans: {names}")
        return found[0]

    def sample(self, name: str, **labels: str) -> float | None:
        """A metric sample's value (``None`` when the series does not exist)."""
        return self.registry.get_sample_value(name, labels)

    def clear(self) -> None:
        """Forget the finished spans (metrics keep counting)."""
        self.exporter.clear()
