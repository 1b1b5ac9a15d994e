"""Builds the bus records of items and groups, and only when someone subscribes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from rh_parallel.execution.items import Item, WorkKind
from rh_parallel.model.actors import BaseActor
from rh_parallel.model.enums import EventType, ExecutionStatus
from rh_parallel.model.events import EventInvocation, ExecutionEvent
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.bus import EventBus
from rh_parallel.runtime.scope import current_scope

if TYPE_CHECKING:
    from rh_parallel.execution.runner import GroupRun

__all__ = ["RecordPublisher", "truncate"]


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


def truncate(value: Any, limit: int) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RecordPublisher:
    """Publishes item and group records on a bus; a no-op while nobody subscribes.

    ``capture_io`` puts a truncated ``repr`` of each result into the record's ``detail``; off by
    default, since inputs and outputs may hold what should not reach a log.
    """

    __slots__ = ("_stand_ins", "bus", "capture_io", "max_io_chars")

    def __init__(self, bus: EventBus, capture_io: bool = False, max_io_chars: int = 200) -> None:
        self.bus = bus
        self.capture_io = capture_io
        self.max_io_chars = max_io_chars
        self._stand_ins: dict[str, BaseActor] = {}

    def group(self, group: ParallelEventGroup) -> None:
        if self.bus.has_subscribers:
            self.bus.publish(group.model_copy(update={"errors": list(group.errors)}))

    def _record(
        self, run: GroupRun, item: Item, status: ExecutionStatus, **fields: Any
    ) -> ExecutionEvent:
        if item.work_kind is WorkKind.INVOCATION:
            assert isinstance(item.work, EventInvocation)
            actor = item.work.event.actor
            tag = item.work.event.tag
        else:
            actor = self._stand_ins.get(item.name) or self._stand_ins.setdefault(
                item.name, stand_in_actor(item.name)
            )
            tag = ""
        return ExecutionEvent.model_construct(
            actor=actor,
            tag=tag,
            address=item.address,
            execution_status=status,
            timestamp=time.time(),
            group_id=run.group.group_id,
            parallel_index=item.index,
            is_parallel=True,
            item_name=item.name,
            attempt=max(item.attempts, 1),
            queue_time=item.queue_time,
            trace_id=None,
            span_id=None,
            **fields,
        )

    def item_started(self, run: GroupRun, item: Item) -> None:
        if self.bus.has_subscribers:
            self.bus.publish(self._record(run, item, ExecutionStatus.STARTED))

    def item_retrying(
        self, run: GroupRun, item: Item, result: ExecutionResult, delay: float
    ) -> None:
        if self.bus.has_subscribers:
            self.bus.publish(
                self._record(
                    run,
                    item,
                    ExecutionStatus.RETRYING,
                    execution_time=item.execution_time,
                    error_type=result.error_type,
                    message=f"attempt {item.attempts} failed: {result.error_message}; "
                    f"retrying in {delay:.2f}s",
                )
            )

    def item_ended(self, run: GroupRun, item: Item, result: ExecutionResult) -> None:
        if self.bus.has_subscribers:
            self.bus.publish(self.end_record(run, item, result))

    def end_record(self, run: GroupRun, item: Item, result: ExecutionResult) -> ExecutionEvent:
        return self._record(run, item, result.status.as_execution_status, **self._outcome(result))

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
        }

    # -- sequential events (run on their own, not as group items) --------------------------

    def _event_record(
        self, event: ExecutionEvent, address: str, status: ExecutionStatus, **fields: Any
    ) -> ExecutionEvent:
        scope = current_scope.get()
        return event.model_copy(
            update={
                "address": address,
                "execution_status": status,
                "timestamp": time.time(),
                "group_id": scope.group_id if scope is not None else None,
                "trace_id": None,
                "span_id": None,
                **fields,
            }
        )

    def event_started(self, event: ExecutionEvent, address: str) -> None:
        self.bus.publish(self._event_record(event, address, ExecutionStatus.STARTED))

    def event_ended(self, event: ExecutionEvent, address: str, result: ExecutionResult) -> None:
        status = result.status.as_execution_status
        self.bus.publish(self._event_record(event, address, status, **self._outcome(result)))
