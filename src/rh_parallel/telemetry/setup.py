"""``configure()``: set up the OpenTelemetry SDK for an application, in one call.

Libraries never call this; applications do, once, at start. It follows the OpenTelemetry
environment-variable specification by leaning on the SDK's own handling: the resource comes
from the SDK's detectors (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), the OTLP
exporters read their own variables (``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``_HEADERS``,
``_TIMEOUT``, ``_COMPRESSION``, certificates), the batch processor reads ``OTEL_BSP_*`` and the
tracer provider reads ``OTEL_TRACES_SAMPLER``. What no SDK component reads is read here, with
the specification's rules: ``OTEL_SDK_DISABLED`` (only "true", in any case, disables),
``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, ``none``, a comma list) and
``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` (which exporter class to build). An invalid value is a
warning and the default, never an exception; an argument given to :func:`configure` is the
application's choice and wins over the environment.

It never replaces a tracer provider the application already set, and never lets an
unreachable collector fail or slow a run: exports happen on a background thread with a bounded
timeout, their failures cost log lines, and :meth:`TelemetryHandle.shutdown` is bounded.

The export queue is sized for bursts (a group of 20,000 items ends 20,000 spans in moments).
Spans that are still dropped are counted in ``rh_parallel_spans_dropped_total`` and told in a
rate-limited warning (:mod:`rh_parallel.telemetry.span_drops`), never lost silently.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import import_module, metadata
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from prometheus_client import REGISTRY, CollectorRegistry

from rh_parallel.telemetry.server import MetricsServer, start_metrics_server
from rh_parallel.telemetry.span_drops import (
    QUEUE_FULL,
    record_dropped,
    register_span_drops,
    report_dropped,
)

__all__ = [
    "DEFAULT_EXPORT_TIMEOUT",
    "DEFAULT_MAX_EXPORT_BATCH_SIZE",
    "DEFAULT_MAX_QUEUE_SIZE",
    "DEFAULT_SCHEDULE_DELAY_MILLIS",
    "SpanCounts",
    "TelemetryHandle",
    "configure",
]

logger = logging.getLogger("rh_parallel.telemetry")

PROTOCOLS = ("grpc", "http/protobuf")
EXPORTERS = ("otlp", "console", "none")

# The batch processor, sized for bursts; each is used only when its OTEL_BSP_* variable is unset
# or invalid (a valid variable is left for the SDK to read).
# Spans waiting for export (the SDK's default is 2048): a burst of 20,000 items fits with room
# to spare. A queued span holds about 3 kB, so a collector that is down costs up to ~100 MB.
DEFAULT_MAX_QUEUE_SIZE = 32768
DEFAULT_MAX_EXPORT_BATCH_SIZE = 2048  # spans per export request (SDK: 512)
DEFAULT_SCHEDULE_DELAY_MILLIS = 1000  # between two exports of a part-filled batch (SDK: 5000)
_SDK_EXPORT_TIMEOUT_MILLIS = 30000  # OTEL_BSP_EXPORT_TIMEOUT's default (the spec's)
# Seconds each OTLP export may take, retries included, when neither ``export_timeout=`` nor
# OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT says (the exporters' own default is 10).
DEFAULT_EXPORT_TIMEOUT = 5.0

_UNKNOWN_SERVICE = "unknown_service"  # the SDK's service.name when nothing names the service


@dataclass(frozen=True)
class SpanCounts:
    """What happened to the spans that ended under :func:`configure`'s exporters.

    Per exporter pipeline, summed: ``ended`` (sampled spans that reached it) equals
    ``exported + failed + dropped + pending``. ``failed`` spans were handed to the exporter
    but not delivered (a collector down: the exporter logs why); ``dropped`` never reached the
    exporter (queue full, ended after shutdown, or the shutdown ran out of time); ``pending``
    are still queued, or in an export under way.
    """

    ended: int = 0
    exported: int = 0
    failed: int = 0
    dropped: int = 0

    @property
    def pending(self) -> int:
        return self.ended - self.exported - self.failed - self.dropped

    def __add__(self, other: SpanCounts) -> SpanCounts:
        return SpanCounts(
            self.ended + other.ended,
            self.exported + other.exported,
            self.failed + other.failed,
            self.dropped + other.dropped,
        )


class _Pipeline:
    """The counts of one exporter's processor, shared by its two wrappers."""

    def __init__(self, name: str, capacity: int | None) -> None:
        self.name = name
        self.capacity = capacity  # the batch processor's queue size; None: no queue
        self.lock = threading.Lock()
        self.ended = 0  # sampled spans that reached the processor
        self.forwarded = 0  # ... passed on to the SDK's processor
        self.handed = 0  # ... passed to the exporter (delivered or not)
        self.exported = 0
        self.failed = 0
        self.dropped = 0
        self.closed = False
        self.deadline: float | None = None  # monotonic: later batches are abandoned (shutdown)

    def counts(self) -> SpanCounts:
        with self.lock:
            return SpanCounts(self.ended, self.exported, self.failed, self.dropped)


class _CountingExporter(SpanExporter):
    """Counts the spans handed to ``inner`` and whether they were delivered; past the pipeline's
    deadline (a shutdown that ran out of time), abandons batches instead of exporting them."""

    def __init__(self, inner: SpanExporter, pipeline: _Pipeline) -> None:
        self.inner = inner
        self._pipeline = pipeline

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        pipeline, count = self._pipeline, len(spans)
        deadline = pipeline.deadline
        if deadline is not None and time.monotonic() >= deadline:
            with pipeline.lock:
                pipeline.handed += count
                pipeline.dropped += count
            record_dropped(count, "the shutdown's flush ran out of time")
            return SpanExportResult.FAILURE
        with pipeline.lock:
            pipeline.handed += count
        result = SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        finally:
            with pipeline.lock:
                if result is SpanExportResult.SUCCESS:
                    pipeline.exported += count
                else:
                    pipeline.failed += count
        return result

    def shutdown(self, timeout_millis: float = 30000) -> None:
        # the batch processor passes its remaining time when the exporter takes it
        if "timeout_millis" in inspect.signature(self.inner.shutdown).parameters:
            self.inner.shutdown(timeout_millis=timeout_millis)  # type: ignore[call-arg]
        else:
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _CountingProcessor(SpanProcessor):
    """In front of the SDK's processor of one exporter: counts the spans that end, and drops
    (counted) a span that the batch processor's full queue would drop silently.

    It forwards a span only while fewer than ``capacity`` forwarded spans are not yet handed to
    the exporter; the batch processor's queue holds at most those, so it never overflows and
    every drop happens (and is counted) here.
    """

    def __init__(self, inner: SpanProcessor, pipeline: _Pipeline) -> None:
        self.inner = inner
        self._pipeline = pipeline

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        hook = getattr(self.inner, "_on_ending", None)  # newer SDKs only
        if hook is not None:
            hook(span)

    def on_end(self, span: ReadableSpan) -> None:
        span_context = span.context
        if span_context is None or not span_context.trace_flags.sampled:
            return  # never exported (the SDK's processors skip it too)
        pipeline = self._pipeline
        reason = None
        with pipeline.lock:
            pipeline.ended += 1
            if pipeline.closed:
                reason = "ended after telemetry shut down"
            elif (
                pipeline.capacity is not None
                and pipeline.forwarded - pipeline.handed >= pipeline.capacity
            ):
                reason = QUEUE_FULL
            else:
                pipeline.forwarded += 1
            if reason is not None:
                pipeline.dropped += 1
        if reason is not None:
            record_dropped(1, reason)
            return
        self.inner.on_end(span)

    def shutdown(self) -> None:
        pipeline = self._pipeline
        with pipeline.lock:
            if pipeline.closed:
                return
            pipeline.closed = True
        try:
            self.inner.shutdown()
        finally:
            with pipeline.lock:
                # queued but never handed over: the processor gave up on them at shutdown
                lost = pipeline.forwarded - pipeline.handed
                pipeline.forwarded -= lost
                pipeline.dropped += lost
                dropped, ended = pipeline.dropped, pipeline.ended
            if lost > 0:
                record_dropped(lost, "still queued when telemetry shut down")
            report_dropped(dropped, ended, f"the {pipeline.name} exporter")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


@dataclass
class TelemetryHandle:
    """What :func:`configure` set up; ``shutdown()`` flushes spans and stops the server."""

    tracer_provider: trace.TracerProvider | None = None
    owns_provider: bool = False
    metrics_server: MetricsServer | None = None
    exporter_endpoint: str | None = None  # where the OTLP exporter sends (informational)
    protocol: str | None = None  # the OTLP protocol, when spans are exported over OTLP
    exporters: list[str] = field(default_factory=list)  # e.g. ["otlp"], ["console"], []
    processors: list[SpanProcessor] = field(default_factory=list)
    _pipelines: list[_Pipeline] = field(default_factory=list, repr=False)

    def span_counts(self) -> SpanCounts:
        """Spans ended, exported, failed and dropped so far, over every exporter."""
        total = SpanCounts()
        for pipeline in self._pipelines:
            total = total + pipeline.counts()
        return total

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush pending spans and stop what was started; bounded.

        Batches not handed to an exporter within ``timeout`` seconds are dropped (counted and
        told); the export under way then gets up to ``timeout`` seconds more, after which this
        returns whatever the exporter is doing (an unreachable collector never holds a
        process).
        """
        provider = self.tracer_provider
        if self.owns_provider and isinstance(provider, TracerProvider):
            deadline = time.monotonic() + timeout
            for pipeline in self._pipelines:
                pipeline.deadline = deadline
            flusher = threading.Thread(
                target=_flush_and_shut_down,
                args=(provider, timeout),
                name="rh-parallel-telemetry-shutdown",
                daemon=True,
            )
            flusher.start()
            flusher.join(2 * timeout)
            if flusher.is_alive():
                pending = self.span_counts().pending
                logger.warning(
                    "telemetry: the flush did not finish within %.1f s; %d span(s) may not "
                    "have been exported",
                    2 * timeout,
                    pending,
                )
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None


def _flush_and_shut_down(provider: TracerProvider, timeout: float) -> None:
    try:
        provider.force_flush(timeout_millis=int(timeout * 1000))
        provider.shutdown()
    except Exception:
        logger.warning("telemetry shutdown failed; ignored", exc_info=True)


# -- the environment, by the specification's rules ----------------------------------------------


def _env(name: str) -> str | None:
    """The variable's value, stripped; None when unset or empty (the spec: empty is unset)."""
    value = os.environ.get(name, "").strip()
    return value or None


def _sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED``: a Boolean, true only for "true" in any case; any other value
    but "false" is warned about and read as false."""
    value = _env("OTEL_SDK_DISABLED")
    if value is None:
        return False
    if value.lower() == "true":
        return True
    if value.lower() != "false":
        logger.warning(
            "telemetry: OTEL_SDK_DISABLED=%r is not true or false; read as false (the SDK stays "
            "enabled)",
            value,
        )
    return False


def _protocol(argument: str | None) -> str:
    """The OTLP protocol: the argument, else ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, else
    ``OTEL_EXPORTER_OTLP_PROTOCOL``, else http/protobuf. Enum values are case-insensitive; an
    unknown one is warned about and ignored."""
    if argument is not None:
        chosen = argument.strip().lower()
        if chosen not in PROTOCOLS:
            raise ValueError(f"protocol={argument!r}; use one of {', '.join(PROTOCOLS)}")
        return chosen
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = _env(variable)
        if value is None:
            continue
        if value.lower() in PROTOCOLS:
            return value.lower()
        why = (
            "the Python OTLP exporters have no http/json"
            if value.lower() == "http/json"
            else f"known values: {', '.join(PROTOCOLS)}"
        )
        logger.warning("telemetry: %s=%r ignored (%s)", variable, value, why)
    return "http/protobuf"


def _exporter_names(argument: str | Sequence[str] | None) -> list[str]:
    """Which exporters to set up: the argument, else ``OTEL_TRACES_EXPORTER``, else otlp.

    A comma list; values are case-insensitive and deduplicated; ``none`` alone means no
    exporter. Besides otlp and console, a name registered by an installed package in the
    SDK's ``opentelemetry_traces_exporter`` entry points works. An unknown name is warned
    about and ignored (for the argument, a ``ValueError``); a variable with nothing valid in
    it is ignored as a whole (the default, otlp).
    """
    if argument is not None:
        source = argument if isinstance(argument, str) else ",".join(argument)
        origin = "traces_exporter"
    else:
        value = _env("OTEL_TRACES_EXPORTER")
        if value is None:
            return ["otlp"]
        source, origin = value, "OTEL_TRACES_EXPORTER"
    names: list[str] = []
    unknown: list[str] = []
    for item in source.split(","):
        name = item.strip().lower()
        if not name or name in names:
            continue
        if name in EXPORTERS or _entry_point(name) is not None:
            names.append(name)
        else:
            unknown.append(item.strip())
    if unknown:
        message = (
            f"{origin}={source!r}: unknown exporter(s) {', '.join(map(repr, unknown))} "
            f"ignored; known: {', '.join(EXPORTERS)}"
        )
        if argument is not None:
            raise ValueError(message)
        logger.warning("telemetry: %s", message)
    if not names:
        logger.warning("telemetry: %s=%r names no exporter; using otlp", origin, source)
        return ["otlp"]
    if "none" in names and len(names) > 1:
        logger.warning("telemetry: %s=%r: 'none' with other exporters is ignored", origin, source)
    return [name for name in names if name != "none"]


def _entry_point(name: str) -> metadata.EntryPoint | None:
    """The SDK's registry of exporters by name (packages declare them), for the names this
    module does not build itself."""
    if name in EXPORTERS:
        return None
    try:
        found = metadata.entry_points(group="opentelemetry_traces_exporter", name=name)
    except Exception:
        return None
    return next(iter(found), None)


def _bsp_int(name: str, minimum: int) -> int | None:
    """An ``OTEL_BSP_*`` integer if set and valid, else None (an invalid one is warned about,
    then treated as unset, as the spec asks)."""
    value = _env(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        logger.warning(
            "telemetry: %s=%r is not an integer of at least %d; ignored", name, value, minimum
        )
        return None
    return number


def _batch_processor(exporter: SpanExporter) -> tuple[BatchSpanProcessor, int]:
    """A batch processor sized for bursts, and its queue size.

    A valid ``OTEL_BSP_*`` variable is left for the SDK to read (nothing is passed for it);
    an unset or invalid one gets this module's default. The batch is never larger than the
    queue (the SDK would refuse it).
    """
    queue = _bsp_int("OTEL_BSP_MAX_QUEUE_SIZE", 1)
    batch = _bsp_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1)
    delay = _bsp_int("OTEL_BSP_SCHEDULE_DELAY", 1)  # the SDK refuses 0
    export_timeout = _bsp_int("OTEL_BSP_EXPORT_TIMEOUT", 0)
    queue_size = DEFAULT_MAX_QUEUE_SIZE if queue is None else queue
    batch_arg: int | None = None
    if batch is None:
        batch_arg = min(DEFAULT_MAX_EXPORT_BATCH_SIZE, queue_size)
    elif batch > queue_size:
        logger.warning(
            "telemetry: OTEL_BSP_MAX_EXPORT_BATCH_SIZE=%d is larger than the queue (%d); using %d",
            batch,
            queue_size,
            queue_size,
        )
        batch_arg = queue_size
    processor = BatchSpanProcessor(
        exporter,
        max_queue_size=DEFAULT_MAX_QUEUE_SIZE if queue is None else None,
        schedule_delay_millis=DEFAULT_SCHEDULE_DELAY_MILLIS if delay is None else None,
        max_export_batch_size=batch_arg,
        export_timeout_millis=_SDK_EXPORT_TIMEOUT_MILLIS if export_timeout is None else None,
    )
    return processor, queue_size


def _resource(fallback_name: str) -> Resource:
    """The SDK's resource (its detectors read ``OTEL_RESOURCE_ATTRIBUTES`` and
    ``OTEL_SERVICE_NAME``, the latter first), with ``fallback_name`` as ``service.name`` only
    when nothing named the service."""
    detected = Resource.create()
    if OTELResourceDetector().detect().attributes.get(SERVICE_NAME):
        return detected  # the environment named it, even if "unknown_service"
    name = str(detected.attributes.get(SERVICE_NAME, ""))
    if name and name != _UNKNOWN_SERVICE and not name.startswith(_UNKNOWN_SERVICE + ":"):
        return detected  # another configured detector named it
    return detected.merge(Resource({SERVICE_NAME: fallback_name}))


def _signal_url(endpoint: str) -> str:
    """An ``endpoint=`` argument for OTLP/HTTP is a base URL, like OTEL_EXPORTER_OTLP_ENDPOINT:
    the traces path is appended (unless it is there already)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def _timeout_hint() -> None:
    """The spec gives OTEL_EXPORTER_OTLP_TIMEOUT in milliseconds; the Python exporters read
    seconds (opentelemetry-python#4044). A value that looks like milliseconds deserves a word."""
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        value = _env(variable)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            return  # the exporter warns, or fails and is built again with the default
        if seconds >= 1000:
            logger.warning(
                "telemetry: %s=%s is read by the Python OTLP exporters in seconds (%.1f hours "
                "per export), not milliseconds as the specification has it",
                variable,
                value,
                seconds / 3600,
            )
        return


def _otlp_exporter(
    protocol: str, endpoint: str | None, export_timeout: float | None
) -> SpanExporter | None:
    """The OTLP exporter of ``protocol``, reading its own variables for whatever is not
    given here; None (and a warning) if it cannot be built even with defaults."""
    exporter_class: Any
    no_compression: Any
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        grpc: Any = import_module("grpc")  # installed with the exporter; no type stubs
        exporter_class, no_compression = GrpcExporter, grpc.Compression.NoCompression
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        exporter_class, no_compression = HttpExporter, HttpCompression.NoCompression
    arguments: dict[str, Any] = {}
    if endpoint is not None:
        # an argument wins; gRPC takes the URL as it is (http:// means insecure)
        arguments["endpoint"] = _signal_url(endpoint) if protocol != "grpc" else endpoint
    if export_timeout is not None:
        arguments["timeout"] = export_timeout
    elif (
        _env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") is None
        and _env("OTEL_EXPORTER_OTLP_TIMEOUT") is None
    ):
        arguments["timeout"] = DEFAULT_EXPORT_TIMEOUT
    else:
        _timeout_hint()
    try:
        exporter: SpanExporter = exporter_class(**arguments)
        return exporter
    except Exception as exc:
        logger.warning(
            "telemetry: the OTLP exporter could not be set up from the environment (%s); "
            "using the default timeout and no compression",
            exc,
        )
    arguments.setdefault("timeout", DEFAULT_EXPORT_TIMEOUT)
    # The values given here replace the variables', but some exporters parse a variable even
    # then (the gRPC one: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT): set them aside while it is built.
    aside = {name: os.environ.pop(name) for name in _REPLACED_VARIABLES if name in os.environ}
    try:
        exporter = exporter_class(**arguments, compression=no_compression)
        return exporter
    except Exception:
        logger.warning("telemetry: no OTLP exporter; spans are not exported", exc_info=True)
        return None
    finally:
        os.environ.update(aside)


_REPLACED_VARIABLES = (
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
)


def _describe(exporter: SpanExporter) -> str | None:
    """Where an OTLP exporter sends (for logs and the handle; None if it does not say)."""
    endpoint = getattr(exporter, "_endpoint", None)
    return endpoint if isinstance(endpoint, str) else None


def configure(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    traces_exporter: str | Sequence[str] | None = None,
    span_exporter: SpanExporter | None = None,
    console: bool = False,
    metrics_port: int | None = None,
    metrics_addr: str = "127.0.0.1",
    registry: CollectorRegistry = REGISTRY,
    export_timeout: float | None = None,
    batch: bool = True,
) -> TelemetryHandle:
    """Set up tracing (and optionally the metrics endpoint) for an application.

    - ``service_name``: the fallback ``service.name``, used only when neither
      ``OTEL_SERVICE_NAME`` nor ``OTEL_RESOURCE_ATTRIBUTES`` names the service (default
      ``rh-parallel``).
    - ``traces_exporter``: ``otlp``, ``console``, ``none`` or a list of them; default
      ``OTEL_TRACES_EXPORTER``, then ``otlp``.
    - ``endpoint``: the OTLP collector's base URL (``http://localhost:4318`` for HTTP, the
      traces path is appended; ``http://localhost:4317`` for gRPC); implies ``otlp``. Without
      it the exporter reads ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as given) or
      ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the traces path appended), then its default.
    - ``protocol``: ``grpc`` or ``http/protobuf``; default
      ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL``, then ``http/protobuf``.
    - ``export_timeout``: seconds per OTLP export; default
      ``OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`` (read by the exporter, in seconds), then 5.
    - ``span_exporter``: an exporter of the application's own, batched and drop-counted like
      OTLP, instead of the exporters above (not with ``endpoint``).
    - ``console``: also print every span on stdout.
    - ``metrics_port``: also serve ``/metrics`` of ``registry`` (see
      :func:`start_metrics_server`).

    ``OTEL_SDK_DISABLED=true`` leaves tracing off. The sampler follows
    ``OTEL_TRACES_SAMPLER``. Bad arguments raise ``ValueError``; a bad variable is a warning.
    """
    # arguments are checked before anything starts; the environment only where it applies
    if span_exporter is not None and endpoint is not None:
        raise ValueError("pass endpoint= (OTLP) or span_exporter=, not both")
    if protocol is not None:
        _protocol(protocol)
    if traces_exporter is not None:
        _exporter_names(traces_exporter)
    register_span_drops(registry)
    handle = TelemetryHandle()
    if metrics_port is not None:
        handle.metrics_server = start_metrics_server(metrics_port, metrics_addr, registry)
    if _sdk_disabled():
        logger.info("OTEL_SDK_DISABLED is true: tracing stays off")
        return handle
    existing = trace.get_tracer_provider()
    if not isinstance(existing, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        logger.info(
            "a tracer provider is already set (%s); rh-parallel uses it as it is",
            type(existing).__name__,
        )
        handle.tracer_provider = existing
        return handle
    names = ["custom"] if span_exporter is not None else _exporter_names(traces_exporter)
    if endpoint is not None and "otlp" not in names:
        names.append("otlp")  # the application asked for this collector
    if console and "console" not in names:
        names.append("console")
    provider = TracerProvider(resource=_resource(service_name or "rh-parallel"))
    for name in names:
        _add_exporter(
            handle, provider, name, span_exporter, endpoint, protocol, export_timeout, batch
        )
    trace.set_tracer_provider(provider)
    handle.tracer_provider = provider
    handle.owns_provider = True
    logger.info(
        "tracing configured: service %s, exporters %s",
        provider.resource.attributes.get(SERVICE_NAME),
        ", ".join(
            f"otlp ({handle.protocol} to {handle.exporter_endpoint})" if name == "otlp" else name
            for name in handle.exporters
        )
        or "none",
    )
    return handle


def _add_exporter(
    handle: TelemetryHandle,
    provider: TracerProvider,
    name: str,
    span_exporter: SpanExporter | None,
    endpoint: str | None,
    protocol: str | None,
    export_timeout: float | None,
    batch: bool,
) -> None:
    """Build the exporter ``name`` and its (counting) processor; a failure is a warning."""
    exporter: SpanExporter | None
    if name == "custom":
        exporter = span_exporter
    elif name == "otlp":
        chosen = _protocol(protocol)
        exporter = _otlp_exporter(chosen, endpoint, export_timeout)
        if exporter is not None:
            handle.protocol = chosen
            handle.exporter_endpoint = _describe(exporter) or endpoint
    elif name == "console":
        exporter = ConsoleSpanExporter()
        batch = False  # the spec pairs the standard-output exporter with a simple processor
    else:
        found = _entry_point(name)
        try:
            exporter = found.load()() if found is not None else None
        except Exception:
            logger.warning("telemetry: exporter %r could not be set up", name, exc_info=True)
            exporter = None
    if exporter is None:
        return
    capacity: int | None = None
    pipeline = _Pipeline(name, None)
    counting = _CountingExporter(exporter, pipeline)
    inner: SpanProcessor
    if batch:
        try:
            inner, capacity = _batch_processor(counting)
        except Exception:
            logger.warning("telemetry: OTEL_BSP_* rejected; using defaults", exc_info=True)
            inner = BatchSpanProcessor(
                counting,
                max_queue_size=DEFAULT_MAX_QUEUE_SIZE,
                schedule_delay_millis=DEFAULT_SCHEDULE_DELAY_MILLIS,
                max_export_batch_size=DEFAULT_MAX_EXPORT_BATCH_SIZE,
                export_timeout_millis=_SDK_EXPORT_TIMEOUT_MILLIS,
            )
            capacity = DEFAULT_MAX_QUEUE_SIZE
    else:
        inner = SimpleSpanProcessor(counting)
    pipeline.capacity = capacity
    processor = _CountingProcessor(inner, pipeline)
    provider.add_span_processor(processor)
    handle.processors.append(processor)
    handle._pipelines.append(pipeline)
    handle.exporters.append(name)
