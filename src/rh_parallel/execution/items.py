"""Group items: what ``p.add()`` accepts, how each attempt is made, and how a value is read."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from enum import IntEnum
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from rh_parallel.execution.executors import trace_carrier
from rh_parallel.model.actors import BaseActor
from rh_parallel.model.enums import EventType, ResultStatus
from rh_parallel.model.events import EventInvocation
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.observer import ItemInfo

if TYPE_CHECKING:
    from rh_parallel.execution.breaker import BreakerPermit
    from rh_parallel.execution.executors import ItemExecutor
    from rh_parallel.execution.slots import GlobalLease
    from rh_parallel.runtime.scope import Scope

__all__ = ["Item", "WorkKind", "adopt", "check_work", "close_work"]


class WorkKind(IntEnum):
    COROUTINE = 0  # awaited once
    AWAITABLE = 1  # a future, task or other awaitable: awaited once
    INVOCATION = 2  # an event invocation: its actor's handler runs on every attempt
    ASYNC_CALL = 3  # an async function (or a lambda building an awaitable): called per attempt
    SYNC_CALL = 4  # a plain function: called per attempt in a worker thread
    SHIPPED = 5  # a function sent with its arguments to the group's executor per attempt


_TASK_KIND = EventType.TASK.kind
# The members as module globals for the per-item path: on Python 3.11 reading an Enum member
# from its class costs about 90 ns, a global about 10.
COROUTINE = WorkKind.COROUTINE
AWAITABLE = WorkKind.AWAITABLE
INVOCATION = WorkKind.INVOCATION
SHIPPED = WorkKind.SHIPPED
_TASK = EventType.TASK
_FIX = "pass the function and its arguments, p.add(fetch, url), so each attempt calls it anew"


def close_work(work: object) -> None:
    """Release work that will never run, so no coroutine is left un-awaited."""
    if inspect.iscoroutine(work):
        work.close()
    elif isinstance(work, asyncio.Future):
        work.cancel()
    elif isinstance(work, EventInvocation):
        work._awaited = True


def _is_async_callable(work: Callable[..., Any]) -> bool:
    target: Any = work
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target) or getattr(target, "__name__", "") == "<lambda>":
        return True
    call = getattr(type(target), "__call__", None)  # noqa: B004 - the class's method
    return call is not None and not inspect.isroutine(target) and inspect.iscoroutinefunction(call)


def _check_arity(work: Callable[..., Any], given: int) -> None:
    """Refuse a plain function called with the wrong number of arguments, at add()."""
    code = getattr(work, "__code__", None)
    if code is None:
        return
    bound = 1 if inspect.ismethod(work) else 0
    accepted = code.co_argcount - bound
    required = accepted - len(getattr(work, "__defaults__", None) or ())
    takes_more = bool(code.co_flags & inspect.CO_VARARGS)
    if given < required or (given > accepted and not takes_more):
        name = getattr(work, "__qualname__", work)
        raise TypeError(
            f"p.add() got {name!r} with {given} argument(s), but it takes "
            f"{required if required == accepted or takes_more else f'{required} to {accepted}'}"
            f"; {_FIX}"
        )


def check_work(work: object, args: tuple[Any, ...]) -> WorkKind:
    """Tell what kind of work ``p.add()`` was given, or raise a TypeError that shows the fix."""
    if isinstance(work, EventInvocation):
        if work._awaited:
            raise TypeError(
                f"this invocation of {work.event.actor.name!r} was already awaited; call the "
                "event again to add another run of it"
            )
        kind = WorkKind.INVOCATION
    elif type(work) is CoroutineType:
        if work.cr_frame is None or work.cr_running or work.cr_suspended:
            raise TypeError(
                f"coroutine {work.__qualname__} was already awaited (or is running); a "
                f"coroutine runs once: {_FIX}"
            )
        kind = COROUTINE
    elif inspect.iscoroutine(work):
        kind = WorkKind.AWAITABLE  # a coroutine-like object of another kind: awaited once
    elif inspect.isawaitable(work):
        kind = WorkKind.AWAITABLE
    elif callable(work):
        target = work.func if isinstance(work, functools.partial) else work
        if inspect.isasyncgenfunction(target):
            raise TypeError(
                f"p.add() got the async generator function {target.__qualname__!r}; an item "
                "is awaited, not iterated: collect its values in an async def, e.g. "
                "async def run(): return [x async for x in gen()]"
            )
        _check_arity(work, len(args))
        return WorkKind.ASYNC_CALL if _is_async_callable(work) else WorkKind.SYNC_CALL
    else:
        raise TypeError(
            f"p.add() takes a coroutine, an event invocation, an awaitable or a function; got "
            f"{type(work).__name__} {work!r}. To run a function, pass it uncalled with its "
            "arguments: p.add(fn, x) (an async def runs on the loop, a plain def in a thread)"
        )
    if args:
        raise TypeError(
            f"p.add() got arguments for {type(work).__name__} {work!r}, which is not callable; "
            f"{_FIX}"
        )
    return kind


def work_name(work: object, kind: WorkKind) -> str:
    """The name an unnamed item is known by: its function's (or actor's) name."""
    if kind is WorkKind.INVOCATION:
        assert isinstance(work, EventInvocation)
        return work.event.actor.name
    if kind is WorkKind.COROUTINE:
        return work.__name__  # type: ignore[attr-defined, no-any-return]
    target = work
    while isinstance(target, functools.partial):
        target = target.func
    name = getattr(target, "__name__", None) or type(target).__name__
    return "lambda" if name == "<lambda>" else str(name)


class Item(ItemInfo):
    """One item of a group, from ``add()`` until its result; observers see it as ItemInfo."""

    index: int

    __slots__ = (
        "args",
        "began",
        "cache_key",
        "dependents",
        "depends_on",
        "execution_time",
        "executor",
        "explicit_name",
        "fingerprint",
        "finishing",
        "holds_slot",
        "leads",
        "lease",
        "pending",
        "permit",
        "queued_at",
        "result",
        "scope",
        "stopped",
        "tag",
        "task",
        "work",
        "work_kind",
    )

    def __init__(
        self,
        index: int,
        work: object,
        args: tuple[Any, ...],
        kind: WorkKind,
        explicit_name: str | None,
        depends_on: tuple[str | int, ...],
        run_id: str | None = None,
    ) -> None:
        self.index = index
        self.run_id = run_id
        self.work: object = work
        self.args = args
        self.work_kind = kind
        self.explicit_name = explicit_name
        if explicit_name is not None:
            self.name = explicit_name
        elif kind is COROUTINE:
            self.name = work.__name__  # type: ignore[attr-defined]
        else:
            self.name = work_name(work, kind)
        if kind is INVOCATION:
            assert isinstance(work, EventInvocation)
            self.actor: BaseActor | None = work.event.actor
            self.tag = work.event.tag
            self.event_type = work.event.actor.event_type
            self.kind = self.event_type.kind
        else:
            self.actor = None
            self.tag = ""
            self.event_type = _TASK
            self.kind = _TASK_KIND
        self.group = None
        self.scratch = None
        self.span = None
        self.depends_on = depends_on
        self.dependents: list[Item] | None = None
        self.pending = 0
        self.address = ""
        self.attempts = 0
        self.execution_time = 0.0
        self.queue_time = 0.0
        self.queued_at = 0.0
        self.began = 0.0  # perf_counter at the start of the attempt under way, 0.0 between
        self.holds_slot = False
        self.running = False
        self.stopped = False  # its result was decided by a stop of the group, not by its work
        self.finishing = False  # its result is known and queued for recording
        self.result: ExecutionResult | None = None
        self.task: asyncio.Task[None] | None = None
        self.permit: BreakerPermit | None = None
        self.lease: GlobalLease | None = None
        self.scope: Scope | None = None
        self.executor: ItemExecutor  # set by add() for SHIPPED work only
        self.cache_key: str | None = None
        self.fingerprint: str | None = None
        self.leads = False  # it leads the flight of its cache key (single flight)

    def make_attempt(self, attempt: int) -> Awaitable[Any]:
        """The awaitable for attempt number ``attempt`` (1-based)."""
        kind = self.work_kind
        work: Any = self.work
        if kind is WorkKind.ASYNC_CALL:
            made = work(*self.args)
            if not inspect.isawaitable(made):
                raise TypeError(
                    f"item {self.name!r}: its callable returned {type(made).__name__}, not an "
                    "awaitable; a lambda must build an awaitable (pass a plain function "
                    "itself, p.add(fn, x), to run it in a worker thread)"
                )
            return made
        if kind is WorkKind.SYNC_CALL:
            return _in_thread(work, self.args)
        if kind is WorkKind.SHIPPED:
            return self.executor.run(work, self.args, trace_carrier())
        if kind is WorkKind.INVOCATION:
            work._awaited = True
            return work.run_body()  # type: ignore[no-any-return]
        if attempt > 1:
            raise RuntimeError(f"item {self.name!r} cannot be re-created for another attempt")
        return work  # type: ignore[no-any-return]

    def close_unrun(self) -> None:
        """Release work that will never run (again), and coroutines passed as its arguments
        (``p.add(asyncio.wait_for, fetch(), 5)``) if it never ran."""
        if self.attempts == 0:
            close_work(self.work)
            for arg in self.args:
                if inspect.iscoroutine(arg):
                    arg.close()
        elif self.work_kind is WorkKind.INVOCATION:
            close_work(self.work)


async def _in_thread(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Run a plain function in the loop's default thread pool, in this task's context; an
    awaitable it returns is awaited here, on the loop."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    value = await loop.run_in_executor(None, functools.partial(context.run, function, *args))
    if inspect.isawaitable(value):
        value = await value
    return value


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
