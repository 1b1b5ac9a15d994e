"""The tracing observer: an OpenTelemetry span for every group and every item.

Spans follow the OpenTelemetry GenAI semantic conventions v1.41.1 (``SEMCONV_VERSION``; see
docs/telemetry-reference.md for the table): ``invoke_workflow {group}`` (INTERNAL) for groups,
``chat {model}`` (CLIENT), ``invoke_agent {name}`` and ``execute_tool {name}`` (INTERNAL) for
actor events, and ``execute_task {name}`` (INTERNAL, ours) for plain awaitables. The item's
span is current while its code runs, so spans the user's own code opens (an HTTP client, an
LLM SDK) nest under it. Only ``opentelemetry-api`` is used: with no SDK configured, the
observer costs almost nothing and records nothing.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from rh_parallel.exceptions import EventTimeoutError
from rh_parallel.execution.rate import retry_after
from rh_parallel.model.enums import EventType, GroupStatus, ResultStatus
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.observer import ExecutionObserver, GroupInfo, ItemInfo

__all__ = [
    "OTHER",
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "TracingObserver",
    "error_type",
    "exception_type",
]

SEMCONV_VERSION = "1.41.1"
"""The release of the OpenTelemetry semantic conventions these spans follow."""
SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"
"""The tracer's schema: 1.41.1 is a patch release without a schema file of its own (its GenAI
conventions are those of 1.41.0)."""
OTHER = "_OTHER"
"""The conventions' fallback value: ``error.type`` when nothing fits, ``gen_ai.provider.name``
when an actor names no provider."""

_ERROR_TYPES = {
    ResultStatus.TIMED_OUT: "timeout",
    ResultStatus.CANCELLED: "cancelled",
    ResultStatus.REJECTED: "circuit_open",
    ResultStatus.SKIPPED: "dependency_failed",
}
_NO_OP_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def exception_type(error: BaseException) -> str:
    """The fully qualified class name of ``error``, as the SDK writes ``exception.type``:
    ``module.QualName``, or just ``QualName`` for a builtin (``ValueError``)."""
    cls = type(error)
    module = cls.__module__
    return f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__


def _retried_error_type(error: BaseException | None) -> str:
    """The ``error.type`` of a failed attempt, spelled as on an item span that ended so."""
    if error is None:
        return OTHER
    if isinstance(error, EventTimeoutError):
        return "timeout"
    return exception_type(error)


def error_type(result: ExecutionResult) -> str:
    """The ``error.type`` of a failed result: ``timeout``, ``cancelled``, ``circuit_open`` or
    ``dependency_failed`` by its status, else the exception's fully qualified class name, else
    ``_OTHER``."""
    keyword = _ERROR_TYPES.get(result.status)
    if keyword is not None:
        return keyword
    if result.error is not None:
        return exception_type(result.error)
    return result.error_type or OTHER  # a result built without its exception: its own word


class TracingObserver(ExecutionObserver):
    """Spans for groups and items. ``tracer_provider`` defaults to the global one, looked up
    at each group so that an SDK configured after the state was made is still used."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._provider = tracer_provider
        self._tracer: Tracer | None = None
        self._tracer_for: object = None

    def _active_tracer(self) -> Tracer | None:
        provider = self._provider or trace.get_tracer_provider()
        if isinstance(provider, _NO_OP_PROVIDERS):
            return None  # no SDK configured: spans would record nothing
        if self._tracer is None or self._tracer_for is not provider:
            self._tracer = provider.get_tracer("rh_parallel", schema_url=SCHEMA_URL)
            self._tracer_for = provider
        return self._tracer

    # -- groups ---------------------------------------------------------------------------

    def on_group_start(self, group: GroupInfo) -> bool | None:
        tracer = self._active_tracer()
        if tracer is None:
            return False  # no SDK: nothing to record for this group's items
        model = group.group
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.workflow.name": model.name,
            "rh_parallel.group_id": model.group_id,
            "rh_parallel.group_name": model.name,
            "rh_parallel.group_size": model.total,
            "rh_parallel.max_workers": model.max_workers,
            "rh_parallel.address": model.address,
        }
        if model.run_id is not None:
            attributes["rh_parallel.run_id"] = model.run_id
        span = tracer.start_span(
            f"invoke_workflow {model.name}", kind=SpanKind.INTERNAL, attributes=attributes
        )
        group.scratch[self] = (tracer, span, trace.set_span_in_context(span))
        context = span.get_span_context()
        if context.is_valid:
            model.trace_id = format(context.trace_id, "032x")
            model.span_id = format(context.span_id, "016x")
        return None

    def on_group_end(self, group: GroupInfo) -> None:
        entry = group.scratch.pop(self, None)
        if entry is None:
            return
        span: Span = entry[1]
        model = group.group
        span.set_attributes(
            {
                "rh_parallel.completed": model.completed,
                "rh_parallel.failed": model.failed,
                "rh_parallel.cancelled": model.cancelled,
                "rh_parallel.group_status": model.status.value,
            }
        )
        if model.status is not GroupStatus.COMPLETED:
            # the failure that decided the outcome, spelled as on that item's span
            deciding = group.deciding
            if model.status is GroupStatus.CANCELLED:
                kind = "cancelled"
            elif deciding is not None:
                kind = error_type(deciding)
            else:
                kind = OTHER
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, _group_description(model, deciding)))
        span.end()

    # -- items ----------------------------------------------------------------------------

    def _start_item_span(self, item: ItemInfo) -> Span | None:
        if item.group is not None:
            entry = item.group.scratch.get(self)
            if entry is None:
                return None
            tracer, _, context = entry
        else:
            tracer = self._active_tracer()
            if tracer is None:
                return None
            context = None
        attributes: dict[str, Any] = {"rh_parallel.address": item.address}
        if item.run_id is not None:
            attributes["rh_parallel.run_id"] = item.run_id
        name, kind = _describe(item, attributes)
        if item.group is not None:
            attributes["rh_parallel.group_id"] = item.group.group.group_id
            attributes["rh_parallel.parallel_index"] = item.index
        attributes["rh_parallel.attempts"] = max(item.attempts, 1)
        span: Span = tracer.start_span(name, context=context, kind=kind, attributes=attributes)
        item.span = span
        return span

    def item_scope(self, item: ItemInfo) -> AbstractContextManager[None] | None:
        span = self._start_item_span(item)
        if span is None:
            return None
        if item.scratch is None:
            item.scratch = {}
        item.scratch[self] = span
        return _CurrentSpan(span)

    def on_item_retry(self, item: ItemInfo, error: BaseException | None, delay: float) -> None:
        span = item.scratch.get(self) if item.scratch else None
        if span is not None:
            span.set_attribute("rh_parallel.attempts", item.attempts + 1)
            attributes: dict[str, Any] = {
                "rh_parallel.attempt": item.attempts,
                "error.type": _retried_error_type(error),
                "rh_parallel.retry_delay_s": delay,
            }
            hint = retry_after(error)
            if hint is not None:  # the provider said how long to wait (Retry-After)
                attributes["rh_parallel.retry_after_s"] = hint
            span.add_event("retry", attributes)

    def on_item_wait(self, item: ItemInfo, limiter: str, seconds: float) -> None:
        span = item.scratch.get(self) if item.scratch else None
        if span is not None:
            span.add_event(
                "rate_limit_wait",
                {"rh_parallel.limiter": limiter, "rh_parallel.wait_s": seconds},
            )

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        # ended here, not when the item's task leaves the span's scope: the group can end
        # in between, and a child span must not outlive its parent
        span: Span | None = item.scratch.pop(self, None) if item.scratch else None
        if span is None:  # never ran (skipped, rejected, stopped while queued): a short span
            span = self._start_item_span(item)
            if span is None:
                return
        if result.ok:
            if result.status is ResultStatus.RECOVERED:
                span.set_attribute("rh_parallel.recovered", True)
            elif result.cached:
                span.set_attribute("rh_parallel.cache_hit", True)
        else:
            span.set_attributes(
                {
                    "rh_parallel.attempts": result.attempts if item.attempts else 0,
                    "rh_parallel.status": result.status.value,
                }
            )
            kind = error_type(result)
            span.set_attribute("error.type", kind)
            if result.status is ResultStatus.FAILED and result.error is not None:
                _record_exception(span, result)
            # the description is the message; never a repeat of error.type (Recording Errors)
            span.set_status(Status(StatusCode.ERROR, result.error_message or None))
        span.end()


def _record_exception(span: Span, result: ExecutionResult) -> None:
    """The exception event; an exception whose ``__str__`` raises gets the result's stand-in
    message instead of failing the hook (and losing the span's status)."""
    error = result.error
    assert error is not None
    try:
        span.record_exception(error)
    except Exception:
        span.add_event(
            "exception",
            {
                "exception.type": exception_type(error),
                "exception.message": result.error_message or "",
            },
        )


def _describe(item: ItemInfo, attributes: dict[str, Any]) -> tuple[str, SpanKind]:
    """The span name and kind of ``item``, adding its ``gen_ai.*`` attributes: by the actor's
    type, the conventions' span for it; ``execute_task {name}`` for a plain awaitable."""
    actor = item.actor
    event_type = item.event_type
    if actor is None or event_type is EventType.TASK:
        return f"execute_task {item.name}", SpanKind.INTERNAL
    if event_type is EventType.LLM_CALL:
        model = getattr(actor, "model", None) or actor.name
        attributes["gen_ai.operation.name"] = "chat"
        attributes["gen_ai.provider.name"] = getattr(actor, "provider", None) or OTHER
        attributes["gen_ai.request.model"] = model
        return f"chat {model}", SpanKind.CLIENT
    if event_type is EventType.AGENT_CALL:
        attributes["gen_ai.operation.name"] = "invoke_agent"
        attributes["gen_ai.provider.name"] = getattr(actor, "provider", None) or OTHER
        attributes["gen_ai.agent.name"] = actor.name
        if actor.description:
            attributes["gen_ai.agent.description"] = actor.description
        model = getattr(actor, "model", None)
        if model:
            attributes["gen_ai.request.model"] = model
        return f"invoke_agent {actor.name}", SpanKind.INTERNAL
    attributes["gen_ai.operation.name"] = "execute_tool"
    attributes["gen_ai.tool.name"] = actor.name
    attributes["gen_ai.tool.type"] = "function"  # application code the client runs itself
    if actor.description:
        attributes["gen_ai.tool.description"] = actor.description
    return f"execute_tool {actor.name}", SpanKind.INTERNAL


def _group_description(model: Any, deciding: ExecutionResult | None) -> str:
    """A group span's status description: what ended it, never a repeat of ``error.type``."""
    summary = f"{model.failed} failed, {model.cancelled} cancelled of {model.total}"
    if deciding is None:
        return summary
    message = deciding.error_message or deciding.status.value
    return f"{summary}; item {deciding.name!r}: {message}"


class _CurrentSpan(AbstractContextManager[None]):
    """Makes an item's span current in the item's task; ends it on exit if the item's end
    did not.

    A lighter ``trace.use_span(span, end_on_exit=True)``: the executor already turns errors
    into results, so there is no exception to record here.
    """

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: Token[Context] | None = None

    def __enter__(self) -> None:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            otel_context.detach(self._token)
        if self._span.is_recording():  # not ended by on_item_end (the item never ended)
            self._span.end()
