"""The telemetry layer: OpenTelemetry tracing and Prometheus metrics as observers, and setup.

``TracingObserver`` and ``MetricsObserver`` are wired into every ``ExecutionState`` by default;
applications call :func:`configure` once to export spans, and :func:`start_metrics_server` to
serve ``/metrics``.
"""

from rh_parallel.telemetry.metrics import METRIC_NAMES, MetricsObserver
from rh_parallel.telemetry.server import MetricsServer, start_metrics_server
from rh_parallel.telemetry.setup import TelemetryHandle, configure
from rh_parallel.telemetry.tracing import TracingObserver

__all__ = [
    "METRIC_NAMES",
    "MetricsObserver",
    "MetricsServer",
    "TelemetryHandle",
    "TracingObserver",
    "configure",
    "default_observers",
    "start_metrics_server",
]


def default_observers() -> list[TracingObserver | MetricsObserver]:
    """Tracing (a no-op until an SDK is configured) and metrics on the global registry."""
    return [TracingObserver(), MetricsObserver.for_registry()]
