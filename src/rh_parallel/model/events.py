"""Events: descriptions of an actor call, the records they publish, and their invocations."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from rh_parallel.model.actors import BaseActor
from rh_parallel.model.enums import ExecutionStatus
from rh_parallel.model.results import ExecutionResult

__all__ = ["EventInvocation", "EventRunner", "ExecutionEvent"]


class EventRunner(Protocol):
    """What an invocation hands its work to (an ``ExecutionState``)."""

    async def run_event(self, invocation: EventInvocation) -> ExecutionResult: ...


class ExecutionEvent(BaseModel):
    """A reusable description of an actor call, and the record it publishes as it runs.

    ``await event(input_data, extra_context, state)`` runs the actor through ``state`` and
    returns an :class:`ExecutionResult` (a handler exception gives ``ok=False``, it does not
    raise). Each invocation works on its own copy, so one event can run many times at once.
    The parallel fields (``group_id``, ``parallel_index``, ``is_parallel``, ``item_name``) are
    filled in on the records an event publishes while it runs as a group item. ``run_id`` is
    the run's id on every record; ``cached`` marks a record of a value served by the cache.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    actor: BaseActor
    tag: str = ""
    address: str = ""
    execution_status: ExecutionStatus | None = None
    execution_time: float | None = None
    queue_time: float | None = None
    timestamp: float | None = None
    detail: str | None = None
    message: str | None = None
    error_type: str | None = None
    attempt: int = 1
    group_id: str | None = None
    parallel_index: int | None = None
    is_parallel: bool = False
    item_name: str | None = None
    run_id: str | None = None
    cached: bool = False
    trace_id: str | None = None
    span_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        """RH-Agents' ``from_cache=`` is renamed with a warning; an unknown field is an error
        naming what to use (or listing the fields), never silently dropped."""
        if isinstance(data, dict) and not data.keys() <= cls.model_fields.keys():
            from rh_parallel import _migration

            return _migration.check_fields(cls, data, cls.model_fields)
        return data

    if not TYPE_CHECKING:  # type checkers keep refusing unknown attributes

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):  # pydantic's own (private attributes), never an old name
                return super().__getattr__(name)
            from rh_parallel import _migration

            if _migration.lookup("ExecutionEvent", name) is None:
                return super().__getattr__(name)
            return _migration.attribute(self, "ExecutionEvent", name)  # from_cache, ...

        def __class_getitem__(cls, params: Any) -> Any:
            from rh_parallel import _migration

            _migration.warn("ExecutionEvent[T]")  # RH-Agents' ExecutionEvent was generic
            return cls

    def __call__(
        self, input_data: Any, extra_context: Any = None, state: EventRunner | None = None
    ) -> EventInvocation:
        """Package one call; awaiting the invocation runs it through ``state``."""
        if state is None:
            raise TypeError(
                f"event {self.actor.name!r} needs the ExecutionState that runs it: "
                "call it as event(input_data, extra_context, state)"
            )
        return EventInvocation(self, input_data, extra_context, state)


class EventInvocation:
    """One packaged call of an event: awaitable once, re-creatable for retries."""

    __slots__ = ("_awaited", "event", "extra_context", "input_data", "state")

    def __init__(
        self, event: ExecutionEvent, input_data: Any, extra_context: Any, state: EventRunner
    ) -> None:
        self.event = event
        self.input_data = input_data
        self.extra_context = extra_context
        self.state = state
        self._awaited = False

    def recreate(self) -> EventInvocation:
        """A fresh invocation with the same arguments (what a retry awaits)."""
        return EventInvocation(self.event, self.input_data, self.extra_context, self.state)

    async def run_body(self) -> Any:
        """Run the actor's handler once: validated input in, validated output out; raises."""
        actor = self.event.actor
        output = await actor.handler(
            actor.validate_input(self.input_data), self.extra_context, self.state
        )
        return actor.validate_output(output)

    def __await__(self) -> Generator[Any, None, ExecutionResult]:
        if self._awaited:
            raise RuntimeError(
                f"this invocation of {self.event.actor.name!r} was already awaited; "
                "call the event again (or use .recreate()) to run it once more"
            )
        self._awaited = True
        return self.state.run_event(self).__await__()

    def __repr__(self) -> str:
        return f"<EventInvocation {self.event.actor.name!r}>"
