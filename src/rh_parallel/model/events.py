"""Events: descriptions of an actor call, the records they publish, and their invocations."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

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

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", defer_build=True)

    actor: BaseActor
    """The actor the event calls."""
    tag: str = ""
    """A label of your own, copied to every record of the event (not part of the address)."""
    address: str = ""
    """On a record: the call's address in the execution tree, e.g. ``docs/doc-1``."""
    execution_status: ExecutionStatus | None = None
    """On a record: the point of the lifecycle it reports (``started``, ``retrying``,
    ``waiting``, then one terminal status); ``None`` on an event itself."""
    execution_time: float | None = None
    """On a ``retrying`` or terminal record: seconds spent running so far, over all attempts."""
    queue_time: float | None = None
    """On a group item's record: seconds spent waiting for a worker slot so far."""
    timestamp: float | None = None
    """On a record: when it was made, in seconds since the epoch."""
    detail: str | None = None
    """On a terminal record of an ok call, with ``ExecutionState(capture_io=True)``: the
    result's ``repr``, cut to ``max_io_chars``."""
    message: str | None = None
    """On a record: the error message of a failed call, the failure and delay of a retry, or
    the rate limit a ``waiting`` item waits for."""
    error_type: str | None = None
    """On a failed or ``retrying`` record: the exception's class name."""
    attempt: int = 1
    """On a group item's record: the attempt it is about (1 for the first)."""
    group_id: str | None = None
    """On a record: the id of the item's group; for a sequential event, of the group whose
    item runs it (``None`` at top level)."""
    parallel_index: int | None = None
    """On a group item's record: the item's position in its group, in add order."""
    is_parallel: bool = False
    """True on the records of group items."""
    item_name: str | None = None
    """On a group item's record: the item's name."""
    run_id: str | None = None
    """On a record: the run's id."""
    cached: bool = False
    """On a terminal record: whether the state's cache served the value."""
    trace_id: str | None = None
    """On a record: the trace id (hex) of the call's span when it is traced, else of the span
    current when the record was published (``None`` without one)."""
    span_id: str | None = None
    """The span id (hex) that goes with ``trace_id``."""

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        """RH-Agents' ``from_cache=`` is renamed with a warning; an unknown field is an error
        naming what to use (or listing the fields), never silently dropped."""
        if isinstance(data, dict) and not data.keys() <= cls.model_fields.keys():
            from rh_parallel import _migration

            return _migration.check_fields(cls, data, cls.model_fields)
        return data

    @field_validator("execution_status", mode="before")
    @classmethod
    def _old_status(cls, value: Any) -> Any:
        """RH-Agents' ``"interrupted"`` (and its other statuses) is an error naming the new
        status: pydantic's enum check would swallow the one ``ExecutionStatus._missing_``
        raises. Runs only when the field is given (records are built without validation)."""
        if isinstance(value, str) and value not in ExecutionStatus._value2member_map_:
            from rh_parallel import _migration

            member = _migration.missing_value(ExecutionStatus, value)  # raises for "interrupted"
            return value if member is None else member  # anything else: pydantic's own error
        return value

    if not TYPE_CHECKING:  # type checkers keep refusing unknown attributes

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):  # pydantic's own (private attributes), never an old name
                return super().__getattr__(name)
            from rh_parallel import _migration

            if _migration.lookup("ExecutionEvent", name) is None:
                return super().__getattr__(name)
            return _migration.attribute(self, "ExecutionEvent", name)  # from_cache, ...

        def __class_getitem__(cls, params: Any) -> Any:
            if cls is not ExecutionEvent:  # a generic subclass of the user's: pydantic's own
                return super().__class_getitem__(params)
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
