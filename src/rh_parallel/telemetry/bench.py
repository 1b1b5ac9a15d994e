"""Telemetry contenders for ``rh-parallel bench``: defaults, and a configured SDK."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from rh_parallel.execution.state import ExecutionState
from rh_parallel.telemetry.metrics import MetricsObserver
from rh_parallel.telemetry.tracing import TracingObserver

__all__ = ["DiscardingExporter", "telemetry_contenders"]


class DiscardingExporter(SpanExporter):
    """Accepts spans and drops them: the cost of exporting, minus the network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def telemetry_contenders() -> list[tuple[str, Callable[[], ExecutionState]]]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
    registry = CollectorRegistry()
    metrics = MetricsObserver(registry)
    default_metrics = MetricsObserver(CollectorRegistry())
    return [
        (
            "rh-parallel (default telemetry, no SDK)",
            lambda: ExecutionState(observers=[TracingObserver(), default_metrics]),
        ),
        (
            "rh-parallel (SDK batch spans + metrics)",
            lambda: ExecutionState(observers=[TracingObserver(provider), metrics]),
        ),
    ]
