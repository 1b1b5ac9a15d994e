"""Builds the bus records of items and groups, and only when someone subscribes."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec

from pydantic import BaseModel

from rh_parallel.model.actors import BaseActor
from rh_parallel.model.enums import EventType, ExecutionStatus
from rh_parallel.model.events import ExecutionEvent
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.bus import EventBus
from rh_parallel.runtime.scope import current_scope

if TYPE_CHECKING:
    from rh_parallel.execution.items import Item

__all__ = ["RecordPublisher", "truncate"]

logger = logging.getLogger("rh_parallel.records")
P = ParamSpec("P")

_STAND_INS_KEPT = 256  # stand-in actors reused by name; the least recently made are dropped


async def _no_handler(input_data: Any, extra_context: Any, state: Any) -> None:
    """The handler of stand-in actors: they describe plain awaitables and never run."""


def stand_in_actor(name: str) -> BaseActor:
    """The actor a plain awaitable's records carry: named after the item, type TASK."""
    return BaseActor.model_construct(
        name=name,
        description="",
        input_model=BaseModel,
        handler=_no_handler,
        output_model=None,
        event_type=EventType.TASK,
    )


def _never_raises(publish: Callable[P, None]) -> Callable[P, None]:
    """A record that cannot be built or published costs a log line, never the run."""

    @functools.wraps(publish)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            publish(*args, **kwargs)
        except Exception:
            logger.warning(
                "could not publish a %s record; ignored", publish.__name__, exc_info=True
            )

    return guarded


def span_ids(span: Any) -> tuple[str | None, str | None]:
    """The hex trace and span ids of ``span`` (an OpenTelemetry span), or ``(None, None)``:
    the bus then stamps the ids of the span current where the record is published."""
    if span is None:
        return None, None
    context = span.get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def truncate(value: Any, limit: int) -> str:
    """``repr(value)`` cut to ``limit`` characters; a ``__repr__`` that raises gives a
    stand-in (a record must never fail the run it describes)."""
    try:
        text = repr(value)
    except Exception as broken:
        text = f"<{type(value).__name__}: repr() raised {type(broken).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RecordPublisher:
    """Publishes item and group records on a bus; a no-op while nobody subscribes (tested on
    the bus's subscription tuple directly: this runs twice per item).

    ``capture_io`` puts a truncated ``repr`` of each result into the record's ``detail``; off by
    default, since inputs and outputs may hold what should not reach a log.
    """

    __slots__ = ("_stand_ins", "bus", "capture_io", "max_io_chars", "run_id")

    def __init__(
        self,
        bus: EventBus,
        capture_io: bool = False,
        max_io_chars: int = 200,
        run_id: str | None = None,
    ) -> None:
        self.bus = bus
        self.run_id = run_id
        self.capture_io = capture_io
        self.max_io_chars = max_io_chars
        self._stand_ins: dict[str, BaseActor] = {}

    @_never_raises
    def group(self, group: ParallelEventGroup) -> None:
        if self.bus._subscriptions:
            self.bus.publish(group.model_copy(update={"errors": list(group.errors)}))

    def _stand_in(self, name: str) -> BaseActor:
        stand_ins = self._stand_ins
        actor = stand_ins.get(name)
        if actor is None:
            if len(stand_ins) >= _STAND_INS_KEPT:
                del stand_ins[next(iter(stand_ins))]
            actor = stand_ins[name] = stand_in_actor(name)
        return actor

    def _record(
        self, group: ParallelEventGroup, item: Item, status: ExecutionStatus, **fields: Any
    ) -> ExecutionEvent:
        actor = item.actor if item.actor is not None else self._stand_in(item.name)
        trace_id, span_id = span_ids(item.span)
        return ExecutionEvent.model_construct(
            actor=actor,
            tag=item.tag,
            address=item.address,
            execution_status=status,
            timestamp=time.time(),
            group_id=group.group_id,
            parallel_index=item.index,
            is_parallel=True,
            item_name=item.name,
            attempt=max(item.attempts, 1),
            queue_time=item.queue_time,
            trace_id=trace_id,
            span_id=span_id,
            run_id=self.run_id,
            **fields,
        )

    @_never_raises
    def item_started(self, group: ParallelEventGroup, item: Item) -> None:
        if self.bus._subscriptions:
            self.bus.publish(self._record(group, item, ExecutionStatus.STARTED))

    @_never_raises
    def item_retrying(
        self,
        group: ParallelEventGroup,
        item: Item,
        result: ExecutionResult,
        delay: float,
        asked: bool = False,
    ) -> None:
        """``asked``: the delay is the one the failure's Retry-After hint asked for."""
        if self.bus._subscriptions:
            reason = " (Retry-After)" if asked else ""
            self.bus.publish(
                self._record(
                    group,
                    item,
                    ExecutionStatus.RETRYING,
                    execution_time=item.execution_time,
                    error_type=result.error_type,
                    message=f"attempt {item.attempts} failed: {result.error_message}; "
                    f"retrying in {delay:.2f}s{reason}",
                )
            )

    @_never_raises
    def item_waiting(self, group: ParallelEventGroup, item: Item, why: str) -> None:
        if self.bus._subscriptions:
            self.bus.publish(self._record(group, item, ExecutionStatus.WAITING, message=why))

    @_never_raises
    def item_ended(self, group: ParallelEventGroup, item: Item, result: ExecutionResult) -> None:
        if self.bus._subscriptions:
            self.bus.publish(
                self._record(
                    group, item, result.status.as_execution_status, **self._outcome(result)
                )
            )

    def _outcome(self, result: ExecutionResult) -> dict[str, Any]:
        """The fields a terminal record takes from its result."""
        detail = None
        if self.capture_io and result.ok:
            detail = truncate(result.result, self.max_io_chars)
        return {
            "execution_time": result.execution_time,
            "error_type": result.error_type,
            "message": result.error_message,
            "detail": detail,
            "cached": result.cached,
        }

    # -- sequential events (run on their own, not as group items) --------------------------

    def _event_record(
        self,
        event: ExecutionEvent,
        address: str,
        status: ExecutionStatus,
        span: Any = None,
        **fields: Any,
    ) -> ExecutionEvent:
        scope = current_scope.get()
        trace_id, span_id = span_ids(span)
        return event.model_copy(
            update={
                "address": address,
                "execution_status": status,
                "timestamp": time.time(),
                "group_id": scope.group_id if scope is not None else None,
                "trace_id": trace_id,
                "span_id": span_id,
                "run_id": self.run_id,
                **fields,
            }
        )

    @_never_raises
    def event_started(self, event: ExecutionEvent, address: str) -> None:
        self.bus.publish(self._event_record(event, address, ExecutionStatus.STARTED))

    @_never_raises
    def event_ended(
        self, event: ExecutionEvent, address: str, result: ExecutionResult, span: Any = None
    ) -> None:
        """The end of a sequential event (``span``: its own, when it is not current now)."""
        status = result.status.as_execution_status
        self.bus.publish(self._event_record(event, address, status, span, **self._outcome(result)))
