"""The scheduler of one group: admission, attempts, policies, stopping and accounting.

Work is driven by callbacks, not by a supervising task: the group starts as many item tasks as
it has free slots, and each item, as it ends, admits the next ready item. So a 100,000-item
group keeps at most ``max_workers`` tasks alive, and ``gather()`` only waits for an event.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

from rh_parallel.exceptions import DependencyFailedError, GroupTimeoutError
from rh_parallel.execution.items import Item, WorkKind, adopt
from rh_parallel.execution.limits import GlobalLease
from rh_parallel.execution.outcome import StopReason, outcome_error
from rh_parallel.execution.records import RecordPublisher
from rh_parallel.model.enums import ErrorStrategy, GroupStatus, ResultStatus
from rh_parallel.model.groups import GroupError, ParallelEventGroup
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.observer import GroupInfo, ItemInfo, ObserverSet
from rh_parallel.runtime.scope import Scope, current_scope

if TYPE_CHECKING:
    from rh_parallel.execution.options import GroupOptions

__all__ = ["GroupRun"]

_perf = time.perf_counter
_OK_OR_CANCELLED = (ResultStatus.COMPLETED, ResultStatus.CANCELLED)


class GroupRun:
    """Runs the items of one group under its options; see ParallelExecutionManager for the API."""

    def __init__(
        self,
        group: ParallelEventGroup,
        options: GroupOptions,
        observers: ObserverSet,
        publisher: RecordPublisher,
        global_limiter: asyncio.Semaphore | None,
        depth: int,
    ) -> None:
        self.group = group
        self.options = options
        self.observers = observers
        self.publisher = publisher
        self._bus = publisher.bus
        self.global_limiter = global_limiter
        self.depth = depth
        self.items: list[Item] = []
        self.results: list[ExecutionResult | None] = []
        self.completion_order: list[int] = []
        self.error: BaseException | None = None
        self.stop_reason: str | None = None
        self.info: GroupInfo | None = None
        # None when no observer wants item hooks: the hot path tests identity, not truthiness
        self.item_observers: ObserverSet | None = observers if observers.observers else None
        self.done = asyncio.Event()
        self.progress: asyncio.Event | None = None
        self._ready: deque[Item] = deque()
        self._running: dict[asyncio.Task[None], Item] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._free = options.max_workers
        self._finished = 0
        self._stop_status: ResultStatus | None = None
        self._first_failure: ExecutionResult | None = None
        self._threshold = 0
        self._timer: asyncio.TimerHandle | None = None
        self._context: contextvars.Context | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._filling = False

    # -- starting -------------------------------------------------------------------------

    def start(self, parent_item: ItemInfo | None) -> None:
        """Check dependencies, publish the start, admit the first items; never awaits."""
        group = self.group
        total = group.total = len(self.items)
        self.results = [None] * total
        threshold = self.options.failure_threshold
        if threshold is not None:
            self._threshold = (
                threshold if isinstance(threshold, int) else max(1, math.ceil(threshold * total))
            )
        group.status = GroupStatus.RUNNING
        group.start_time = time.time()
        self._context = contextvars.copy_context()
        self._loop = asyncio.get_running_loop()
        if self.observers:
            breaker = self.options.circuit_breaker
            self.info = GroupInfo(
                group, parent_item, (breaker.name, breaker.state.value) if breaker else None
            )
            chosen = self.observers.on_group_start(self.info)
            self.item_observers = chosen if chosen.observers else None
        self.publisher.group(group)
        now = _perf()
        ready = self._ready
        for item in self.items:
            item.queued_at = now
            if item.pending == 0:
                ready.append(item)
        if self.options.timeout is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.options.timeout, self._on_timeout)
        self._fill()
        self._check_done()

    # -- admission ------------------------------------------------------------------------

    def _fill(self) -> None:
        if self._filling:
            return
        self._filling = True
        try:
            breaker = self.options.circuit_breaker
            ready = self._ready
            loop = self._loop
            while self._free > 0 and ready and self._stop_status is None:
                item = ready.popleft()
                if breaker is not None:
                    permit = breaker.acquire(self._on_breaker_change)
                    if permit is None:
                        self._reject(item)
                        continue
                    item.permit = permit
                self._free -= 1
                item.holds_slot = True
                assert self._context is not None
                # Task() directly: loop.create_task adds a Python frame per item for a task
                # factory hook that asyncio's default loop never uses.
                task = asyncio.Task(self._run_item(item), loop=loop, context=self._context.copy())
                item.task = task
                self._running[task] = item
        finally:
            self._filling = False

    def _release_slot(self, item: Item) -> None:
        if not item.holds_slot:
            return
        item.holds_slot = False
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
        self._fill()

    async def _reacquire_slot(self, item: Item) -> None:
        if self._free > 0:
            self._free -= 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    item.holds_slot = True
                    self._release_slot(item)
                raise
        item.holds_slot = True

    def _reject(self, item: Item) -> None:
        breaker = self.options.circuit_breaker
        assert breaker is not None
        if self.item_observers is not None:
            self.item_observers.on_breaker_rejection(breaker.name)
        item.close_unrun()
        self._finish(item, self._failed(item, breaker.rejection(), ResultStatus.REJECTED))

    def _on_breaker_change(self, breaker: str, state: str) -> None:
        if self.observers:
            self.observers.on_breaker_state(breaker, state)

    # -- running one item -----------------------------------------------------------------

    async def _run_item(self, item: Item) -> None:
        """The body of an item's task. It removes itself from the running set when it ends;
        ``stop()`` adds a done callback for tasks cancelled before their first step."""
        lease = GlobalLease(self.global_limiter) if self.global_limiter is not None else None
        task = item.task
        try:
            observers = self.item_observers
            current_scope.set(
                Scope(
                    item.address,
                    self.depth + 1,
                    self.group.group_id,
                    lease,
                    item if observers is not None else None,
                )
            )
            if observers is not None:
                item.group = self.info
                entered = observers.enter_item(item)
                try:
                    self._finish(item, await self._attempts(item, lease))
                finally:
                    observers.exit_item(entered)
            else:
                self._finish(item, await self._attempts(item, lease))
        except Exception as exc:  # a bug in rh-parallel itself: keep the group consistent
            self.error = exc
            if item.result is None:
                self._finish(item, self._failed(item, exc, ResultStatus.FAILED))
        finally:
            if task is not None and self._running.pop(task, None) is not None:
                self._check_done()

    async def _attempts(self, item: Item, lease: GlobalLease | None) -> ExecutionResult:
        options = self.options
        retry = options.retry
        event_timeout = options.event_timeout
        try:
            if lease is not None:
                await lease.reacquire()
            started = _perf()
            item.queue_time += started - item.queued_at
            observers = self.item_observers
            if observers is not None:
                observers.on_item_start(item)
            if self._bus._subscriptions:
                self.publisher.item_started(self, item)
            attempt = 0
            while True:
                attempt += 1
                item.attempts = attempt
                began = _perf()
                try:
                    if event_timeout is None:
                        if item.work_kind is WorkKind.COROUTINE and attempt == 1:
                            value = await item.work  # type: ignore[misc]
                        else:
                            value = await item.make_attempt(attempt)
                    else:
                        async with asyncio.timeout(event_timeout) as deadline:
                            value = await item.make_attempt(attempt)
                except TimeoutError as timeout_error:
                    item.execution_time += _perf() - began
                    if event_timeout is not None and deadline.expired():
                        expired = TimeoutError(
                            f"item {item.name!r} passed event_timeout={event_timeout}s"
                        )
                        result = self._failed(item, expired, ResultStatus.TIMED_OUT)
                    else:
                        result = self._failed(item, timeout_error, ResultStatus.FAILED)
                except Exception as exc:
                    item.execution_time += _perf() - began
                    result = self._failed(item, exc, ResultStatus.FAILED)
                else:
                    item.execution_time += _perf() - began
                    result = self._result(item, value)
                permit = item.permit
                if permit is not None:
                    if result.ok:
                        permit.success(self._on_breaker_change)
                    else:
                        permit.failure(self._on_breaker_change)
                    item.permit = None
                if result.ok or retry is None or not retry.should_retry(result.error, attempt):
                    return result
                if self._stop_status is not None:
                    return result
                delay = retry.delay(attempt)
                self.group.retries += 1
                if observers is not None:
                    observers.on_item_retry(item, result.error, delay)
                self.publisher.item_retrying(self, item, result, delay)
                self._release_slot(item)
                if lease is not None:
                    lease.release()
                await asyncio.sleep(delay)
                waited = _perf()
                await self._reacquire_slot(item)
                if lease is not None:
                    await lease.reacquire()
                item.queue_time += _perf() - waited
                breaker = options.circuit_breaker
                if breaker is not None:
                    item.permit = breaker.acquire(self._on_breaker_change)
                    if item.permit is None:
                        if observers is not None:
                            observers.on_breaker_rejection(breaker.name)
                        return self._failed(item, breaker.rejection(), ResultStatus.REJECTED)
        except asyncio.CancelledError as exc:
            if item.permit is not None:
                item.permit.release()
                item.permit = None
            item.close_unrun()
            status = self._stop_status or ResultStatus.CANCELLED
            return self._failed(item, self.error or exc, status)
        finally:
            if lease is not None:
                lease.release()

    def _fields(self, item: Item) -> dict[str, Any]:
        return {
            "index": item.index,
            "name": item.name,
            "group_id": self.group.group_id,
            "attempts": item.attempts or 1,
            "execution_time": item.execution_time,
            "queue_time": item.queue_time,
        }

    def _result(self, item: Item, value: Any) -> ExecutionResult:
        if isinstance(value, ExecutionResult):
            return adopt(value, self._fields(item))
        return ExecutionResult.from_complete(
            {
                "ok": True,
                "result": value,
                "status": ResultStatus.COMPLETED,
                "error": None,
                "error_type": None,
                "error_message": None,
                "index": item.index,
                "name": item.name,
                "group_id": self.group.group_id,
                "attempts": item.attempts,
                "execution_time": item.execution_time,
                "queue_time": item.queue_time,
            }
        )

    def _failed(self, item: Item, error: BaseException, status: ResultStatus) -> ExecutionResult:
        return ExecutionResult.failure(error, status, **self._fields(item))

    # -- ending ---------------------------------------------------------------------------

    def _finish(self, first: Item, first_result: ExecutionResult) -> None:
        """Record a result; skip dependents of a failure; apply the error strategy; admit more."""
        first_task = first.task
        pending = [(first, first_result)]
        group = self.group
        observers = self.item_observers
        while pending:
            item, result = pending.pop()
            if item.result is not None:
                continue
            item.result = result
            self.results[item.index] = result
            self.completion_order.append(item.index)
            self._finished += 1
            status = result.status
            counters = group.__dict__  # the live counters, without pydantic's setattr per item
            if result.ok:
                counters["completed"] += 1
            elif status is ResultStatus.CANCELLED:
                counters["cancelled"] += 1
            else:
                counters["failed"] += 1
                group.errors.append(
                    GroupError(
                        index=item.index,
                        name=item.name,
                        status=status.value,
                        error_type=result.error_type,
                        error_message=result.error_message,
                    )
                )
            if observers is not None:
                item.group = self.info
                observers.on_item_end(item, result)
            if self._bus._subscriptions:
                self.publisher.item_ended(self, item, result)
            item.task = None
            if item.work_kind is not WorkKind.INVOCATION:
                item.work = None  # free the finished coroutine now, not when the group ends
            if item.dependents:
                for dependent in item.dependents:
                    if dependent.result is not None:
                        continue
                    if result.ok:
                        dependent.pending -= 1
                        if dependent.pending == 0 and self._stop_status is None:
                            dependent.queued_at = _perf()
                            self._ready.append(dependent)
                    else:
                        error = DependencyFailedError(dependent.name, item.name, status.value)
                        dependent.close_unrun()
                        pending.append(
                            (dependent, self._failed(dependent, error, ResultStatus.SKIPPED))
                        )
            if status not in _OK_OR_CANCELLED and self._stop_status is None:
                self._apply_strategy(result)
        if self.progress is not None:
            self.progress.set()
        self._release_slot(first)
        if first_task is None:
            self._check_done()  # a running item's task checks when it leaves the running set

    def _apply_strategy(self, failure: ExecutionResult) -> None:
        strategy = self.options.error_strategy
        if strategy is ErrorStrategy.FAIL_FAST:
            self._first_failure = failure
            self.stop(StopReason.FAIL_FAST, ResultStatus.CANCELLED)
        elif strategy is ErrorStrategy.FAIL_THRESHOLD and self.group.failed >= self._threshold:
            self._first_failure = failure
            self.stop(StopReason.THRESHOLD, ResultStatus.CANCELLED)

    def _on_timeout(self) -> None:
        self._timer = None
        self.stop(StopReason.TIMEOUT, ResultStatus.TIMED_OUT)

    def stop(self, reason: str, status: ResultStatus) -> None:
        """Stop admitting, end what waits with ``status`` and cancel what runs."""
        if self._stop_status is not None or self.done.is_set():
            return
        self._stop_status = status
        self.stop_reason = reason
        if reason == StopReason.TIMEOUT:
            self.error = GroupTimeoutError(
                f"group {self.group.name!r} passed its timeout of {self.options.timeout}s"
            )
        self._ready.clear()
        for item in self.items:
            if item.result is None and item.task is None:
                item.close_unrun()
                error = self.error or asyncio.CancelledError(f"group {self.group.name!r} stopped")
                self._finish(item, self._failed(item, error, status))
        for task, item in list(self._running.items()):
            task.add_done_callback(partial(self._on_task_done, item))
            task.cancel()
        self._check_done()

    def _on_task_done(self, item: Item, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        if not task.cancelled():
            task.exception()  # retrieved: _run_item records its own failures
        if item.result is None:
            # Cancelled before its first step: none of its code ran, so account for it here.
            if item.permit is not None:
                item.permit.release()
            item.close_unrun()
            error = self.error or asyncio.CancelledError(f"group {self.group.name!r} stopped")
            status = self._stop_status or ResultStatus.CANCELLED
            self._finish(item, self._failed(item, error, status))
        self._check_done()

    def _check_done(self) -> None:
        if self._finished < len(self.items) or self._running or self.done.is_set():
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group = self.group
        end = time.time()
        group.end_time = end
        group.duration = end - (group.start_time or end)
        reason = self.stop_reason
        if reason == StopReason.CANCELLED:
            group.status = GroupStatus.CANCELLED
        elif reason is not None or group.failed or group.cancelled:
            group.status = GroupStatus.FAILED
        else:
            group.status = GroupStatus.COMPLETED
        self.error = self._outcome_error()
        if self.info is not None:
            self.observers.on_group_end(self.info)
        self.publisher.group(group)
        self.done.set()
        if self.progress is not None:
            self.progress.set()

    def _outcome_error(self) -> BaseException | None:
        return outcome_error(
            self.group,
            self.stop_reason,
            [r for r in self.results if r is not None],
            self.error,
            self._first_failure,
            self._threshold,
        )
