"""Where a group's callable items run: a ``concurrent.futures`` executor or Ray.

``state.parallel(executor=...)`` ships each callable item (a function and its arguments) to
the executor on every attempt; event invocations and coroutines stay on the loop. Everything
else (limits, retries, timeouts, breakers, records, spans, metrics) works as for local items:
the item holds its slot while its remote call runs, and the loop only awaits a future.

The item span's context travels with the call (W3C trace context through the OpenTelemetry
propagator) and is attached in the worker, so spans the function makes there are children of
the item span. Work that cannot be shipped (a lambda or a local function for a process pool)
is refused at ``add()`` with a message naming the item and the fix.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from opentelemetry import context as otel_context
from opentelemetry import trace

from rh_parallel.exceptions import WorkerLostError

__all__ = ["ItemExecutor", "as_item_executor", "invoke", "trace_carrier"]


@runtime_checkable
class ItemExecutor(Protocol):
    """What a group needs from the place its callable items run."""

    def check(self, function: Callable[..., Any], args: tuple[Any, ...], item: str) -> None:
        """Raise ``TypeError`` naming ``item`` and the fix when the work cannot be shipped."""
        ...

    async def run(
        self, function: Callable[..., Any], args: tuple[Any, ...], carrier: dict[str, str]
    ) -> Any:
        """Run ``function(*args)`` there and return its value (an awaitable it returns is
        awaited there). Cancelling the awaiting task cancels the remote work where the
        executor can."""
        ...


def trace_carrier() -> dict[str, str]:
    """The current trace context as W3C headers, to send along with a call."""
    from opentelemetry import propagate  # loaded by as_item_executor(), not at import

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def invoke(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    carrier: dict[str, str],
    flush: bool = False,
) -> Any:
    """Run one shipped call in the worker, under the caller's trace context.

    Module-level, so a process pool can pickle it. An ``async def`` (or anything returning an
    awaitable) runs to completion on a loop of the worker's own. ``flush``: export the spans
    the call made before returning (a worker process may be stopped before its next batch).
    """
    from opentelemetry import propagate

    token = otel_context.attach(propagate.extract(carrier)) if carrier else None
    try:
        value = function(*args)
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
        return value
    finally:
        if token is not None:
            otel_context.detach(token)
        if flush:
            force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
            if force_flush is not None:
                force_flush(5_000)


class _NeverRaised(Exception):
    """What a thread pool's adapter catches instead of ``BrokenProcessPool``."""


def _qualified(function: Callable[..., Any]) -> str:
    return str(getattr(function, "__qualname__", None) or type(function).__name__)


class FuturesExecutor:
    """A ``concurrent.futures.Executor`` as an item executor.

    For a process pool, work is checked for pickling at ``add()``, and a pool broken by a
    dying worker process is replaced (with the same settings) for the items that follow, so
    one crash fails its own items and the group goes on.
    """

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self.executor = executor
        # the process-pool module (multiprocessing, pickle) loads only once a pool exists
        process = sys.modules.get("concurrent.futures.process")
        self.ships = process is not None and isinstance(executor, process.ProcessPoolExecutor)
        self._broken: type[Exception] = (
            process.BrokenProcessPool if process is not None else _NeverRaised
        )
        self._lock = threading.Lock()
        self._replacement: concurrent.futures.ProcessPoolExecutor | None = None

    def check(self, function: Callable[..., Any], args: tuple[Any, ...], item: str) -> None:
        if not self.ships:
            return
        import pickle

        try:
            pickle.dumps(function)
        except Exception as exc:
            raise TypeError(
                f"item {item!r}: {_qualified(function)} cannot be sent to a process pool "
                f"({type(exc).__name__}: {exc}); define it at module level (lambdas and local "
                "functions cannot be pickled), or run it without executor="
            ) from None
        for position, arg in enumerate(args):
            try:
                pickle.dumps(arg)
            except Exception as exc:
                raise TypeError(
                    f"item {item!r}: argument {position} ({type(arg).__name__}) cannot be sent "
                    f"to a process pool ({type(exc).__name__}: {exc}); pass plain data (or a "
                    "picklable object) instead"
                ) from None

    def _pool(self) -> concurrent.futures.Executor:
        return self._replacement or self.executor

    async def run(
        self, function: Callable[..., Any], args: tuple[Any, ...], carrier: dict[str, str]
    ) -> Any:
        pool = self._pool()
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(pool, invoke, function, args, carrier, self.ships)
        except self._broken:  # broken by an earlier crash: this call runs on a fresh one
            self._replace(pool)
            pool = self._pool()
            future = loop.run_in_executor(pool, invoke, function, args, carrier, self.ships)
        try:
            return await future
        except self._broken as exc:
            self._replace(pool)
            raise WorkerLostError(
                f"the worker process running {_qualified(function)} died ({exc}); the process "
                "pool was restarted for the items that follow"
            ) from exc

    def _replace(self, broken: concurrent.futures.Executor) -> None:
        """Put a fresh pool with ``broken``'s settings in its place (once per breakage)."""
        with self._lock:
            if self._pool() is not broken or not isinstance(
                broken, concurrent.futures.ProcessPoolExecutor
            ):
                return
            old = self._replacement
            fresh = concurrent.futures.ProcessPoolExecutor(
                max_workers=getattr(broken, "_max_workers", None),
                mp_context=getattr(broken, "_mp_context", None),
                initializer=getattr(broken, "_initializer", None),
                initargs=getattr(broken, "_initargs", ()),
            )
            self._replacement = fresh
            weakref.finalize(self, fresh.shutdown, wait=False, cancel_futures=True)
            if old is not None:
                old.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"<FuturesExecutor {self.executor!r}>"


_adapters: weakref.WeakKeyDictionary[concurrent.futures.Executor, FuturesExecutor] = (
    weakref.WeakKeyDictionary()
)
_adapters_lock = threading.Lock()


def as_item_executor(executor: object) -> ItemExecutor:
    """The item executor for what ``state.parallel(executor=...)`` was given.

    A ``concurrent.futures.Executor`` gets one adapter however many groups share it (so a
    replaced process pool is shared too); an ``ItemExecutor`` (``RayExecutor``) is used as is.
    """
    # the propagator loads here, as the group is made, not at import, nor while items run
    # (an import on the loop while worker threads hold the GIL would stall it)
    import opentelemetry.propagate  # noqa: F401

    if isinstance(executor, concurrent.futures.Executor):
        with _adapters_lock:
            adapter = _adapters.get(executor)
            if adapter is None:
                adapter = _adapters[executor] = FuturesExecutor(executor)
            return adapter
    if isinstance(executor, ItemExecutor):
        return executor
    raise TypeError(
        f"executor takes a concurrent.futures.Executor (e.g. ProcessPoolExecutor()) or "
        f"rh_parallel.ray.RayExecutor(), got {executor!r}; omit it to run items on the loop "
        "(sync functions in a worker thread)"
    )
