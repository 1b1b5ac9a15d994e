"""The telemetry layer: OpenTelemetry tracing and Prometheus metrics as observers, and setup.

``TracingObserver`` and ``MetricsObserver`` are wired into every ``ExecutionState`` by default;
applications call :func:`configure` once to export spans, and :func:`start_metrics_server` to
serve ``/metrics``. Spans the export pipeline drops are counted in
``rh_parallel_spans_dropped_total`` (:func:`spans_dropped`), registered on the global registry
at import like the bus drops.
"""

from typing import TYPE_CHECKING, Any

from rh_parallel.telemetry.bus_metrics import register_bus_metrics as register_bus_metrics
from rh_parallel.telemetry.metrics import METRIC_NAMES, MetricsObserver
from rh_parallel.telemetry.span_drops import register_span_drops as register_span_drops
from rh_parallel.telemetry.span_drops import spans_dropped as spans_dropped
from rh_parallel.telemetry.tracing import TracingObserver

if TYPE_CHECKING:
    from rh_parallel.telemetry.server import MetricsServer, start_metrics_server
    from rh_parallel.telemetry.setup import SpanCounts, TelemetryHandle, configure

# Setup and the endpoint load on first use: the OTel SDK and exporters are for applications
# that configure telemetry, and `import rh_parallel` must stay fast without them.
_LAZY = {
    "MetricsServer": "rh_parallel.telemetry.server",
    "start_metrics_server": "rh_parallel.telemetry.server",
    "SpanCounts": "rh_parallel.telemetry.setup",
    "TelemetryHandle": "rh_parallel.telemetry.setup",
    "configure": "rh_parallel.telemetry.setup",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rh_parallel.telemetry' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "METRIC_NAMES",
    "MetricsObserver",
    "MetricsServer",
    "SpanCounts",
    "TelemetryHandle",
    "TracingObserver",
    "configure",
    "default_observers",
    "register_span_drops",
    "spans_dropped",
    "start_metrics_server",
]


def default_observers() -> list[TracingObserver | MetricsObserver]:
    """Tracing (a no-op until an SDK is configured) and metrics on the global registry."""
    return [TracingObserver(), MetricsObserver.for_registry()]
