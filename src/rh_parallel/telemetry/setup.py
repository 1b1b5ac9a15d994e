"""``configure()``: set up the OpenTelemetry SDK for an application, in one call.

Libraries never call this; applications do, once, at start. It honours the standard ``OTEL_*``
variables, never replaces a tracer provider the application already set, and never lets an
unreachable collector fail or slow a run: exports happen on a background thread with a bounded
timeout, and their failures cost log lines.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from prometheus_client import REGISTRY, CollectorRegistry

from rh_parallel.telemetry.server import MetricsServer, start_metrics_server

__all__ = ["TelemetryHandle", "configure"]

logger = logging.getLogger("rh_parallel.telemetry")

_PROTOCOLS = ("grpc", "http/protobuf")


@dataclass
class TelemetryHandle:
    """What :func:`configure` set up; ``shutdown()`` flushes spans and stops the server."""

    tracer_provider: trace.TracerProvider | None = None
    owns_provider: bool = False
    metrics_server: MetricsServer | None = None
    exporter_endpoint: str | None = None
    protocol: str | None = None
    processors: list[SpanProcessor] = field(default_factory=list)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush pending spans (waiting at most ``timeout`` seconds) and stop what was started."""
        provider = self.tracer_provider
        if self.owns_provider and isinstance(provider, TracerProvider):
            try:
                provider.force_flush(timeout_millis=int(timeout * 1000))
                provider.shutdown()
            except Exception:
                logger.warning("telemetry shutdown failed; ignored", exc_info=True)
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def _otlp_exporter(endpoint: str, protocol: str, timeout: float) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        insecure = not endpoint.startswith("https://")
        target = endpoint.removeprefix("http://").removeprefix("https://")
        return GrpcExporter(endpoint=target, insecure=insecure, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    url = (
        endpoint
        if endpoint.rstrip("/").endswith("/v1/traces")
        else (endpoint.rstrip("/") + "/v1/traces")
    )
    return HttpExporter(endpoint=url, timeout=timeout)


def configure(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    console: bool = False,
    metrics_port: int | None = None,
    metrics_addr: str = "127.0.0.1",
    registry: CollectorRegistry = REGISTRY,
    export_timeout: float = 5.0,
    batch: bool = True,
) -> TelemetryHandle:
    """Set up tracing (and optionally the metrics endpoint) for an application.

    ``endpoint`` is the OTLP collector (``http://localhost:4318`` for HTTP/protobuf,
    ``http://localhost:4317`` for gRPC); without it, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is used, and with neither no OTLP exporter is set up.
    ``protocol`` is ``grpc`` or ``http/protobuf`` (default: ``OTEL_EXPORTER_OTLP_PROTOCOL``, then
    ``http/protobuf``). ``service_name`` defaults to ``OTEL_SERVICE_NAME``, then ``rh-parallel``.
    The sampler follows ``OTEL_TRACES_SAMPLER``. ``OTEL_SDK_DISABLED=true`` turns tracing off.
    """
    handle = TelemetryHandle()
    if metrics_port is not None:
        handle.metrics_server = start_metrics_server(metrics_port, metrics_addr, registry)
    if _env_flag("OTEL_SDK_DISABLED"):
        logger.info("OTEL_SDK_DISABLED is set: tracing stays off")
        return handle
    existing = trace.get_tracer_provider()
    if not isinstance(existing, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        logger.info(
            "a tracer provider is already set (%s); rh-parallel uses it as it is",
            type(existing).__name__,
        )
        handle.tracer_provider = existing
        return handle
    chosen_protocol = (
        protocol
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if chosen_protocol not in _PROTOCOLS:
        raise ValueError(f"protocol={chosen_protocol!r}; use one of {', '.join(_PROTOCOLS)}")
    chosen_endpoint = (
        endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "rh-parallel"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if chosen_endpoint:
        exporter = _otlp_exporter(chosen_endpoint, chosen_protocol, export_timeout)
        processor: SpanProcessor = (
            BatchSpanProcessor(exporter, export_timeout_millis=int(export_timeout * 1000))
            if batch
            else SimpleSpanProcessor(exporter)
        )
        provider.add_span_processor(processor)
        handle.processors.append(processor)
        handle.exporter_endpoint = chosen_endpoint
        handle.protocol = chosen_protocol
    if console:
        console_processor = SimpleSpanProcessor(ConsoleSpanExporter())
        provider.add_span_processor(console_processor)
        handle.processors.append(console_processor)
    trace.set_tracer_provider(provider)
    handle.tracer_provider = provider
    handle.owns_provider = True
    logger.info(
        "tracing configured: service %s, exporter %s",
        name,
        f"{chosen_protocol} to {chosen_endpoint}" if chosen_endpoint else "none",
    )
    return handle
