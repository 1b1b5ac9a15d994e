"""``state.parallel()``: the user's handle on one parallel group."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rh_parallel.execution.items import Item, WorkKind, classify_work
from rh_parallel.execution.options import GroupOptions
from rh_parallel.execution.outcome import StopReason
from rh_parallel.execution.runner import GroupRun
from rh_parallel.model.enums import GroupStatus, ResultStatus
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.scope import Lease, current_scope

if TYPE_CHECKING:
    from rh_parallel.execution.state import ExecutionState

__all__ = ["ParallelExecutionManager"]


def _group_id(address: str) -> str:
    return "grp-" + hashlib.blake2b(address.encode(), digest_size=8).hexdigest()


class ParallelExecutionManager:
    """One parallel group: add work, then read results as a list, a dict or a stream.

    Nothing runs until the first of ``gather()``, ``gather_dict()``, ``stream()`` or the end of
    the ``async with`` block::

        async with state.parallel(max_workers=5, name="Document Processing") as p:
            for doc in docs:
                p.add(process_doc(doc, ctx, state))
        results = await p.gather()      # after the block: the results, already run
    """

    def __init__(self, state: ExecutionState, name: str | None, options: GroupOptions) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name={name!r}: a group's name is a non-empty string")
        self._state = state
        name = name or "parallel"
        parent = current_scope.get() or state.root_scope
        address = parent.child_address("group", name)
        self.group = ParallelEventGroup(
            group_id=_group_id(address),
            name=name,
            address=address,
            parent_group_id=parent.group_id,
            depth=parent.depth,
            max_workers=options.max_workers,
            error_strategy=options.error_strategy.value,
        )
        self._run = GroupRun(
            self.group,
            options,
            state.observer_set,
            state.publisher,
            state.global_limiter,
            parent.depth,
        )
        self._names: dict[str, int] = {}
        self._has_dependencies = False
        self._started = False
        self._parent_lease: Lease | None = None

    # -- building -------------------------------------------------------------------------

    def add(
        self,
        *args: Any,
        name: str | None = None,
        depends_on: Iterable[str | int] | None = None,
    ) -> int:
        """Add work: ``add(work)``, ``add(name, work)`` or ``add(work, name=..., depends_on=...)``.

        ``work`` is a coroutine, an event invocation or a zero-argument callable that returns
        an awaitable (a callable can be re-created for retries). Returns the item's index.
        """
        if len(args) == 2 and isinstance(args[0], str):
            if name is not None:
                raise TypeError("add() got the name twice: positionally and as name=")
            name, work = args
        elif len(args) == 1:
            (work,) = args
        else:
            for arg in args:  # nothing passed in is left un-awaited
                if asyncio.iscoroutine(arg):
                    arg.close()
            raise TypeError(
                "add() takes add(work), add(name, work) or add(work, name=..., depends_on=[...])"
            )
        if self._started:
            if asyncio.iscoroutine(work):
                work.close()
            raise RuntimeError(
                f"add() after group {self.group.name!r} ran; open a new state.parallel() group "
                "for more work"
            )
        try:
            kind = classify_work(work)
            options = self._run.options
            retry = options.retry
            if kind in (WorkKind.COROUTINE, WorkKind.AWAITABLE) and retry and retry.retries:
                raise TypeError(
                    f"group {self.group.name!r} retries failed items, but a bare coroutine "
                    "can run only once; pass a zero-argument callable instead: "
                    "p.add(lambda: fetch(x)) rather than p.add(fetch(x))"
                )
            if name is not None:
                if not isinstance(name, str) or not name:
                    raise ValueError(f"name={name!r}: an item's name is a non-empty string")
                if name in self._names:
                    raise ValueError(
                        f"duplicate item name {name!r} in group {self.group.name!r}; names are "
                        "unique within a group (add a suffix, e.g. the index)"
                    )
        except (TypeError, ValueError):
            if asyncio.iscoroutine(work):
                work.close()
            raise
        deps: tuple[str | int, ...] = ()
        if depends_on is not None:
            if isinstance(depends_on, str | int):
                depends_on = [depends_on]
            deps = tuple(depends_on)
            self._has_dependencies = self._has_dependencies or bool(deps)
        items = self._run.items
        index = len(items)
        item = Item(index, work, kind, name, deps)
        item.address = f"{self.group.address}/{index}:{item.name}"
        if name is not None:
            self._names[name] = index
        items.append(item)
        return index

    def _resolve(self, ref: str | int, who: str | None = None) -> int:
        items = self._run.items
        if isinstance(ref, bool) or not isinstance(ref, str | int):
            raise TypeError(f"items are named by str or int index, got {ref!r}")
        if isinstance(ref, int):
            if 0 <= ref < len(items):
                return ref
        elif ref in self._names:
            return self._names[ref]
        where = f"item {who!r} depends on" if who else "there is no item"
        known = ", ".join(repr(n) for n in self._names) or "none"
        raise ValueError(
            f"{where} {ref!r}, which is not in group {self.group.name!r} "
            f"(named items: {known}; indices 0..{len(items) - 1})"
        )

    def _link_dependencies(self) -> None:
        items = self._run.items
        for item in items:
            for ref in item.depends_on:
                dependency = items[self._resolve(ref, item.name)]
                if dependency.dependents is None:
                    dependency.dependents = []
                dependency.dependents.append(item)
                item.pending += 1
        cycle = _find_cycle(items)
        if cycle:
            raise ValueError(
                f"dependency cycle in group {self.group.name!r}: "
                + " -> ".join(repr(items[i].name) for i in cycle)
            )

    # -- running --------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            if self._has_dependencies:
                self._link_dependencies()
        except ValueError as exc:
            self._abandon(GroupStatus.FAILED, exc)
            raise
        scope = current_scope.get()
        lease = scope.lease if scope is not None else None
        if lease is not None:
            lease.release()
            self._parent_lease = lease
        self._run.start(self._state.current_item_info())

    def _abandon(self, status: GroupStatus, error: BaseException) -> None:
        """End a group that never started: close its work, publish nothing."""
        run = self._run
        run.results = []
        for item in run.items:
            item.close_unrun()
            result = ExecutionResult.failure(
                error,
                ResultStatus.CANCELLED,
                index=item.index,
                name=item.name,
                group_id=self.group.group_id,
            )
            run.results.append(result)
        self.group.total = len(run.items)
        self.group.cancelled = len(run.items)
        self.group.status = status
        run.error = error
        run.done.set()

    async def _wait(self) -> None:
        run = self._run
        cancelled = False
        if not run.done.is_set():
            try:
                await run.done.wait()
            except asyncio.CancelledError:
                cancelled = True
                run.stop(StopReason.CANCELLED, ResultStatus.CANCELLED)
                while not run.done.is_set():
                    try:
                        await run.done.wait()
                    except asyncio.CancelledError:
                        continue
        await self._restore_parent_lease()
        if cancelled:
            raise asyncio.CancelledError

    async def _restore_parent_lease(self) -> None:
        lease, self._parent_lease = self._parent_lease, None
        if lease is not None:
            await lease.reacquire()

    def _raise_outcome(self) -> None:
        error = self._run.error
        if error is not None:
            raise error

    @property
    def results(self) -> list[ExecutionResult | None]:
        """Every item's result in add order (``None`` for items that have not ended)."""
        return list(self._run.results)

    async def gather(self) -> list[ExecutionResult]:
        """Run the group (if it has not run) and return the results in add order."""
        self._start()
        await self._wait()
        self._raise_outcome()
        return self._run.results  # type: ignore[return-value]

    async def gather_dict(self) -> dict[str, ExecutionResult]:
        """Like ``gather()``, keyed by item name (an unnamed item: its index as a string)."""
        results = await self.gather()
        return {
            (item.explicit_name if item.explicit_name is not None else str(item.index)): result
            for item, result in zip(self._run.items, results, strict=True)
        }

    async def stream(self) -> AsyncIterator[ExecutionResult]:
        """Yield results in completion order as they finish.

        Under FAIL_FAST or a threshold, the failing result is yielded, then what ``gather()``
        would raise is raised.
        """
        run = self._run
        self._start()
        if run.progress is None:
            run.progress = asyncio.Event()
        position = 0
        try:
            while True:
                order = run.completion_order
                while position < len(order):
                    result = run.results[order[position]]
                    position += 1
                    assert result is not None
                    if (
                        run.stop_reason is not None
                        and result.status
                        in (
                            ResultStatus.CANCELLED,
                            ResultStatus.TIMED_OUT,
                        )
                        and run.stop_reason != StopReason.TIMEOUT
                    ):
                        continue
                    yield result
                if run.done.is_set():
                    break
                run.progress.clear()
                try:
                    await run.progress.wait()
                except asyncio.CancelledError:
                    run.stop(StopReason.CANCELLED, ResultStatus.CANCELLED)
                    await self._wait()
                    raise
        finally:
            if run.done.is_set():
                await self._restore_parent_lease()
        self._raise_outcome()

    as_completed = stream

    def result_of(self, ref: str | int) -> ExecutionResult:
        """The result of a finished item, by name or index (a dependent reads its inputs so)."""
        item = self._run.items[self._resolve(ref)]
        if item.result is None:
            raise RuntimeError(
                f"item {item.name!r} has not finished; read it from an item that "
                f"depends_on=[{ref!r}], or after gather()"
            )
        return item.result

    def cancel(self) -> None:
        """Cancel every queued and running item; ``gather()`` then raises CancelledError."""
        if not self._started:
            self._abandon(GroupStatus.CANCELLED, asyncio.CancelledError("cancelled before start"))
            self._started = True
            return
        self._run.stop(StopReason.CANCELLED, ResultStatus.CANCELLED)

    async def __aenter__(self) -> ParallelExecutionManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._run
        if exc_type is None:
            if not self._started:
                self._start()
            if not run.done.is_set():
                await self._wait()
                self._raise_outcome()
            return
        if not self._started:
            self._started = True
            self._abandon(GroupStatus.CANCELLED, exc or asyncio.CancelledError())
            return
        if not run.done.is_set():
            run.stop(StopReason.CANCELLED, ResultStatus.CANCELLED)
            with contextlib.suppress(asyncio.CancelledError):
                await self._wait()

    def __repr__(self) -> str:
        g = self.group
        return f"<ParallelExecutionManager {g.name!r} {g.status.value} {g.finished}/{g.total}>"


def _find_cycle(items: list[Item]) -> list[int] | None:
    """A dependency cycle as a list of indices (first repeated at the end), or None."""
    white, grey, black = 0, 1, 2
    color = [white] * len(items)
    for root in range(len(items)):
        if color[root] != white:
            continue
        stack: list[tuple[int, int]] = [(root, 0)]
        path: list[int] = []
        color[root] = grey
        path.append(root)
        while stack:
            node, child_pos = stack[-1]
            dependents = items[node].dependents or []
            if child_pos < len(dependents):
                stack[-1] = (node, child_pos + 1)
                child = dependents[child_pos].index
                if color[child] == grey:
                    cycle = [*path[path.index(child) :], child]
                    return list(reversed(cycle))
                if color[child] == white:
                    color[child] = grey
                    path.append(child)
                    stack.append((child, 0))
            else:
                color[node] = black
                path.pop()
                stack.pop()
    return None
