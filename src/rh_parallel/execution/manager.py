"""``state.parallel()``: the user's handle on one parallel group."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Never

from rh_parallel.execution import dependencies
from rh_parallel.execution.identity import user_cache_key
from rh_parallel.execution.items import (
    AWAITABLE,
    COROUTINE,
    SHIPPED,
    Item,
    WorkKind,
    check_work,
    close_work,
    work_name,
)
from rh_parallel.execution.options import GroupOptions
from rh_parallel.execution.scheduler import GroupRun
from rh_parallel.execution.stopping import shown_in_stream
from rh_parallel.model.enums import GroupStatus, ResultStatus
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.runs import group_id, item_leaf
from rh_parallel.runtime.scope import current_scope

if TYPE_CHECKING:
    from rh_parallel.execution.rate import RateLimit
    from rh_parallel.execution.state import ExecutionState

__all__ = ["ParallelExecutionManager"]


def _rates(group_rate: RateLimit | None, state_rate: RateLimit | None) -> tuple[RateLimit, ...]:
    """The rate limits a group's attempts wait for: its own, then the state's, once each."""
    if group_rate is None and state_rate is None:
        return ()
    return tuple(dict.fromkeys(r for r in (group_rate, state_rate) if r))


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
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name={name!r}: a group's name is a non-empty string")
        if name is not None and not name:
            raise ValueError("name='': a group's name is a non-empty string (or None)")
        name = name or "parallel"
        parent = current_scope.get() or state.root_scope
        address = parent.child_address(name)
        self.group: ParallelEventGroup = ParallelEventGroup.trusted(
            group_id=group_id(state.run_id, address),
            run_id=state.run_id,
            name=name,
            address=address,
            parent_group_id=parent.group_id,
            depth=parent.depth,
            max_workers=options.workers,
            error_strategy=options.error_strategy.value,
        )
        """The group's live :class:`~rh_parallel.ParallelEventGroup`: its ids, counters,
        status and errors, updated as items end (the bus gets copies)."""
        self._state = state
        self._run = GroupRun(
            self.group,
            options,
            state.observer_set,
            state.publisher,
            state.global_limiter,
            parent.depth,
            state.recall,
            parent,
            _rates(options.rate_limit, state.rate_limit),
        )
        self._names: dict[str, int] = {}
        self._coroutines: set[int] = set()
        self._has_dependencies = False
        self._closed = False  # started, or abandoned before it started: add() is refused
        self._cancel_early = False  # cancel() came while the start looked items up
        self._delivered = False  # gather() or stream() handed out the outcome
        self._inside = address + "/"  # the address prefix of code running inside its items
        if parent.children is not None:
            parent.children.append(self)  # a nested group ends with the item that opened it

    # -- building -------------------------------------------------------------------------

    def add(
        self,
        *args: Any,
        name: str | None = None,
        depends_on: Any = None,
        cache_key: str | None = None,
    ) -> int:
        """Add work and return its index: ``add(work, *args)`` or ``add(name, work, *args)``.

        ``work`` is a coroutine, an event invocation, any awaitable, or a function called with
        ``*args`` on each attempt (an ``async def`` on the loop, a plain ``def`` in a worker
        thread): ``p.add(fetch, url)`` binds ``url`` now and can be retried. Keywords:
        ``name`` (unique in the group), ``depends_on`` (names or indices) and ``cache_key``
        (the state's cache serves work added with an equal key; ignored without a cache).
        """
        try:
            if args and isinstance(args[0], str):
                if name is not None:
                    raise TypeError("add() got the name twice: positionally and as name=")
                name, args = args[0], args[1:]
            if not args:
                raise TypeError(
                    "add() needs work: add(work, *args), add(name, work, *args) or "
                    "add(work, *args, name=..., depends_on=[...])"
                )
            work, work_args = args[0], args[1:]
            if self._closed:
                raise RuntimeError(
                    f"add() after group {self.group.name!r} ran; open a new state.parallel() "
                    "group for more work"
                )
            kind = check_work(work, work_args)
            executor = self._run.options.executor
            if executor is not None and kind in (WorkKind.ASYNC_CALL, WorkKind.SYNC_CALL):
                executor.check(work, work_args, name or work_name(work, kind))
                kind = WorkKind.SHIPPED
            retry = self._run.options.retry
            if (kind is COROUTINE or kind is AWAITABLE) and retry and retry.retries:
                what = "a bare coroutine" if kind is WorkKind.COROUTINE else "an awaitable"
                raise TypeError(
                    f"group {self.group.name!r} retries failed items, but {what} can run "
                    "only once; pass the function and its arguments instead: "
                    "p.add(fetch, url) rather than p.add(fetch(url))"
                )
            index = len(self._run.items)
            if name is not None:
                self._check_name(name, index)
            deps = () if depends_on is None else dependencies.check_references(depends_on)
            if cache_key is not None and (not isinstance(cache_key, str) or not cache_key):
                raise TypeError(
                    f"cache_key={cache_key!r}: a cache key is a non-empty string that "
                    "identifies the work and its input, e.g. f'summary:{doc_id}'"
                )
        except BaseException:
            for arg in args:  # never awaited now; futures and tasks stay the caller's
                if asyncio.iscoroutine(arg) and id(arg) not in self._coroutines:
                    close_work(arg)
            raise
        if kind is COROUTINE:
            if id(work) in self._coroutines:  # it belongs to an item already: leave it open
                raise TypeError(
                    f"this coroutine ({work.__qualname__}) was already added to group "
                    f"{self.group.name!r}; a coroutine runs once: pass the function and its "
                    "arguments, p.add(fetch, url), to run it more than once"
                )
            self._coroutines.add(id(work))  # the items keep the objects alive meanwhile
        if deps:
            self._has_dependencies = True
        item = Item(index, work, work_args, kind, name, deps, self.group.run_id)
        if kind is SHIPPED:
            item.executor = executor
        if cache_key is not None and self._run.recall is not None:
            item.cache_key = user_cache_key(cache_key)
        item.address = self._inside + item_leaf(index, name, item.name)
        if name is not None:
            self._names[name] = index
        self._run.items.append(item)
        return index

    def _check_name(self, name: object, index: int) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name={name!r}: an item's name is a non-empty string")
        if name in self._names:
            raise ValueError(
                f"duplicate item name {name!r} in group {self.group.name!r}; names are "
                "unique within a group (add a suffix, e.g. the index)"
            )
        if name.isdecimal() and name != str(index):
            raise ValueError(
                f"item name {name!r} is the dict key of another item (gather_dict() keys "
                "unnamed items by index); give it a name that is not a number"
            )

    # -- running --------------------------------------------------------------------------

    async def _start(self) -> None:
        run = self._run
        if self._closed:
            return
        self._closed = True
        self._coroutines.clear()
        if self._has_dependencies:
            try:
                dependencies.link(run.items, self._names, self.group.name)
            except ValueError as exc:
                self._abandon(GroupStatus.FAILED, exc)
                raise
        recalled = None
        looked_up = 0.0
        if run.recall is not None:
            loop = asyncio.get_running_loop()
            began = loop.time()
            run.lookup_epoch = run.recall.flights.landings
            try:
                # the group's timeout counts from here: a hung backend cannot stall it
                async with asyncio.timeout(run.options.timeout):
                    recalled = await run.recall.prepare(
                        self.group.address, self.group.group_id, run.items
                    )
            except TimeoutError:
                pass  # no time left: it starts and times out at once, as its timeout says
            except BaseException as exc:  # cancelled while looking up: it never started
                self._abandon(GroupStatus.CANCELLED, exc)
                raise
            if self._cancel_early:
                self._abandon(GroupStatus.CANCELLED, asyncio.CancelledError("cancelled"))
                return
            looked_up = loop.time() - began
        run.start(self._state.current_item_info(), recalled, looked_up)

    def _abandon(self, status: GroupStatus, error: BaseException) -> None:
        """End a group that never started: close its work, publish nothing."""
        self._closed = True
        run = self._run
        run.results = []
        for item in run.items:
            item.close_unrun()
            run.results.append(
                ExecutionResult.failure(
                    error,
                    ResultStatus.CANCELLED,
                    index=item.index,
                    name=item.name,
                    group_id=self.group.group_id,
                )
            )
        self.group.total = len(run.items)
        self.group.cancelled = len(run.items)
        self.group.status = status
        run.error = error
        run.done.set()

    async def _wait(self, event: asyncio.Event) -> None:
        """Wait for ``event`` (the end, or progress), lending the caller's global slot
        meanwhile; a cancelled wait stops the group and returns once it has ended."""
        scope = current_scope.get()
        if scope is not None and scope.address.startswith(self._inside):
            raise RuntimeError(
                f"code of an item of group {self.group.name!r} (or of a task it started) waits "
                "for that group, which would never end; read other items' results with "
                "depends_on=[...] and p.result_of()"
            )
        # Loan() inlined (once per group): the caller's global slot is lent while it waits
        lease = scope.lease if scope is not None else None
        if lease is not None:
            lease.lend()
        try:
            await event.wait()
        except asyncio.CancelledError:
            self.cancel()  # also before it started (its start may be looking items up)
            await self._run.wait_stopped()
            if self._run.aborted is not None:  # a KeyboardInterrupt beats the cancel
                raise self._run.aborted from None
            raise
        finally:
            if lease is not None:
                await lease.end_loan()

    def _outcome(self) -> list[ExecutionResult]:
        self._delivered = True
        error = self._run.error
        if error is not None:
            raise error
        return list(self._run.results)  # type: ignore[arg-type]

    @property
    def results(self) -> list[ExecutionResult | None]:
        """Every item's result in add order (``None`` for items that have not ended)."""
        return list(self._run.results)

    async def gather(self, *items: Never) -> list[ExecutionResult]:
        """Run the group (if it has not run) and return a new list of results in add order.

        It takes no work (``items``: the specification's ``p.gather([...])`` is a TypeError
        naming ``p.add()``)."""
        if items:
            from rh_parallel import _migration

            _migration.refuse_items("gather", items)
        await self._start()
        if not self._run.done.is_set():
            await self._wait(self._run.done)
        return self._outcome()

    async def gather_dict(self, *items: Never) -> dict[str, ExecutionResult]:
        """Like ``gather()``, keyed by item name (an unnamed item: its index as a string)."""
        if items:
            from rh_parallel import _migration

            _migration.refuse_items("gather_dict", items)
        results = await self.gather()
        return {
            (item.explicit_name if item.explicit_name is not None else str(item.index)): result
            for item, result in zip(self._run.items, results, strict=True)
        }

    async def stream(self, *items: Never) -> AsyncIterator[ExecutionResult]:
        """Yield results in completion order as they finish.

        Under FAIL_FAST or a threshold, the failing result is yielded, then what ``gather()``
        would raise is raised. Inside an item, a stream left early is stopped when the item
        ends (a nested group never outlives its item). It takes no work (``items``: the
        specification's ``p.stream([...])`` is a TypeError naming ``p.add()``).
        """
        if items:
            from rh_parallel import _migration

            _migration.refuse_items("stream", items)
        run = self._run
        await self._start()
        if run.progress is None:
            run.progress = asyncio.Event()
        position = 0
        while True:
            order = run.completion_order
            while position < len(order):
                index = order[position]
                position += 1
                result = run.results[index]
                assert result is not None
                if shown_in_stream(run.stop, run.items[index].stopped):
                    yield result
            if run.done.is_set():
                break
            run.progress.clear()
            await self._wait(run.progress)
        self._outcome()

    as_completed = stream
    """Another name for :meth:`stream` (results in completion order)."""

    def gather_stream(self) -> AsyncIterator[ExecutionResult]:
        """Deprecated: the specification's name of :meth:`stream` (warns, then streams)."""
        from rh_parallel import _migration

        _migration.warn("ParallelExecutionManager.gather_stream")
        return self.stream()

    def result_of(self, ref: str | int) -> ExecutionResult:
        """The result of a finished item, by name or index (a dependent reads its inputs so)."""
        items = self._run.items
        item = items[dependencies.resolve(ref, items, self._names, self.group.name, None)]
        if item.result is None:
            raise RuntimeError(
                f"item {item.name!r} has not finished; read it from an item that "
                f"depends_on=[{ref!r}], or after gather()"
            )
        return item.result

    async def wait_stopped(self) -> None:
        """Wait until the group has ended (the NestedRun protocol: its item ends)."""
        await self._run.wait_stopped()

    def cancel(self) -> None:
        """Cancel every queued and running item; ``gather()`` then raises CancelledError."""
        if not self._closed:
            self._abandon(GroupStatus.CANCELLED, asyncio.CancelledError("cancelled before start"))
        elif not self._run.started:
            self._cancel_early = True  # its start is looking items up: abandoned after
        else:
            self._run.cancel()

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
            await self._start()
            if not run.done.is_set():
                await self._wait(run.done)
            if not self._delivered:  # raise what gather() would, unless it was handed out
                self._outcome()
            return
        if not self._closed:
            self._abandon(GroupStatus.CANCELLED, exc or asyncio.CancelledError())
            return
        if not run.done.is_set():
            self.cancel()
            try:
                await run.wait_stopped()
            except asyncio.CancelledError:
                if exc_type is not asyncio.CancelledError:
                    raise

    def __repr__(self) -> str:
        g = self.group
        return f"<ParallelExecutionManager {g.name!r} {g.status.value} {g.finished}/{g.total}>"
