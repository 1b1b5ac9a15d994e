"""Group items: what ``p.add()`` accepts, how each attempt is made, and how a value is read."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from rh_parallel.model.actors import BaseActor
from rh_parallel.model.enums import EventType, ResultStatus
from rh_parallel.model.events import EventInvocation
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.observer import ItemInfo

if TYPE_CHECKING:
    from rh_parallel.execution.breaker import BreakerPermit

__all__ = ["Item", "WorkKind", "adopt", "classify_work"]


class WorkKind(IntEnum):
    COROUTINE = 0  # awaited once
    AWAITABLE = 1  # a future, task or other awaitable: awaited once
    INVOCATION = 2  # an event invocation: its actor's handler runs on every attempt
    FACTORY = 3  # a zero-argument callable: called on every attempt


def classify_work(work: object) -> WorkKind:
    """Tell what kind of work ``p.add()`` was given, or raise a TypeError that shows the fix."""
    if isinstance(work, EventInvocation):
        return WorkKind.INVOCATION
    if inspect.iscoroutine(work):
        return WorkKind.COROUTINE
    if inspect.isawaitable(work):
        return WorkKind.AWAITABLE
    if callable(work):
        code = getattr(work, "__code__", None)
        if code is not None and not inspect.ismethod(work):
            required = code.co_argcount - len(getattr(work, "__defaults__", None) or ())
            if required > 0:
                raise TypeError(
                    f"p.add() got {getattr(work, '__qualname__', work)!r}, which needs "
                    f"{required} argument(s); pass the call, p.add(fn(x)), or a zero-argument "
                    "callable, p.add(lambda: fn(x))"
                )
        return WorkKind.FACTORY
    raise TypeError(
        f"p.add() needs a coroutine, an event invocation or a zero-argument callable returning "
        f"an awaitable; got {type(work).__name__} {work!r}. Did you call a regular function "
        "(p.add(fn(x)) runs fn now)? Make it async def, or pass lambda: asyncio.to_thread(fn, x)"
    )


def work_name(work: object, kind: WorkKind) -> str:
    """The name an unnamed item is known by: its function's (or actor's) name."""
    if kind is WorkKind.INVOCATION:
        assert isinstance(work, EventInvocation)
        return work.event.actor.name
    if kind is WorkKind.COROUTINE:
        return str(getattr(work, "__name__", "coroutine"))
    name = getattr(work, "__name__", None) or type(work).__name__
    return "lambda" if name == "<lambda>" else str(name)


class Item(ItemInfo):
    """One item of a group, from ``add()`` until its result; observers see it as ItemInfo."""

    index: int

    __slots__ = (
        "dependents",
        "depends_on",
        "execution_time",
        "explicit_name",
        "holds_slot",
        "pending",
        "permit",
        "queued_at",
        "result",
        "task",
        "work",
        "work_kind",
    )

    def __init__(
        self,
        index: int,
        work: object,
        kind: WorkKind,
        explicit_name: str | None,
        depends_on: tuple[str | int, ...],
    ) -> None:
        self.index = index
        self.work: object = work
        self.work_kind = kind
        self.explicit_name = explicit_name
        self.name = explicit_name if explicit_name is not None else work_name(work, kind)
        if kind is WorkKind.INVOCATION:
            assert isinstance(work, EventInvocation)
            self.actor: BaseActor | None = work.event.actor
            self.event_type = work.event.actor.event_type
        else:
            self.actor = None
            self.event_type = EventType.TASK
        self.kind = self.event_type.kind
        self.group = None
        self.scratch = None
        self.depends_on = depends_on
        self.dependents: list[Item] | None = None
        self.pending = 0
        self.address = ""
        self.attempts = 0
        self.execution_time = 0.0
        self.queue_time = 0.0
        self.queued_at = 0.0
        self.holds_slot = False
        self.result: ExecutionResult | None = None
        self.task: asyncio.Task[None] | None = None
        self.permit: BreakerPermit | None = None

    def make_attempt(self, attempt: int) -> Awaitable[Any]:
        """The awaitable for attempt number ``attempt`` (1-based)."""
        kind = self.work_kind
        work = self.work
        if kind is WorkKind.FACTORY:
            assert callable(work)
            made = work()
            if not inspect.isawaitable(made):
                raise TypeError(
                    f"item {self.name!r}: its callable returned {type(made).__name__}, not an "
                    "awaitable; pass an async def function or a lambda that returns a coroutine"
                )
            return made
        if kind is WorkKind.INVOCATION:
            assert isinstance(work, EventInvocation)
            work._awaited = True
            return work.run_body()
        if attempt > 1:
            raise RuntimeError(f"item {self.name!r} cannot be re-created for another attempt")
        return work  # type: ignore[return-value]

    def close_unrun(self) -> None:
        """Release work that will never run, so no coroutine is left un-awaited."""
        work = self.work
        if self.work_kind is WorkKind.COROUTINE and self.attempts == 0:
            work.close()  # type: ignore[attr-defined]
        elif self.work_kind is WorkKind.AWAITABLE and isinstance(work, asyncio.Future):
            work.cancel()
        elif self.work_kind is WorkKind.INVOCATION:
            work._awaited = True  # type: ignore[attr-defined]


def adopt(value: Any, fields: dict[str, Any]) -> ExecutionResult:
    """The item's result for what its work returned; a returned ExecutionResult is adopted."""
    if isinstance(value, ExecutionResult):
        if value.ok:
            return ExecutionResult.success(value.result, **fields)
        status = value.status if value.status is not ResultStatus.COMPLETED else ResultStatus.FAILED
        fields.update(
            ok=False,
            result=value.result,
            status=status,
            error=value.error,
            error_type=value.error_type,
            error_message=value.error_message,
        )
        return ExecutionResult.build(fields)
    return ExecutionResult.success(value, **fields)
