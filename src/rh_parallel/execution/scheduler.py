"""The scheduler of one group: it admits items, records their results and ends the group.

It acts on what the deciding modules say: ``slots`` (who may run), ``dependencies`` (what an
ended item frees or skips), ``stopping`` (when a failure stops the group, what a stop does to
each item, what the group raises) and ``attempts`` (one item's run).

Work is driven by callbacks, not by a supervising task: the group starts as many item tasks as
it has free slots, and each item, as it ends, admits the next ready item. So a 100,000-item
group keeps at most ``max_workers`` tasks alive, and ``gather()`` only waits for an event.
Results are recorded through one queue drained by one non-reentrant loop (:meth:`_settle`), so
the consequences of a result (skipped dependents, a stop, admissions) happen in one order.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from typing import TYPE_CHECKING

from rh_parallel.exceptions import DependencyFailedError
from rh_parallel.execution import dependencies, stopping
from rh_parallel.execution.attempts import failed, run_attempts
from rh_parallel.execution.group_recall import RecallingGroup
from rh_parallel.execution.items import INVOCATION, Item
from rh_parallel.execution.slots import GlobalLease, GlobalLimiter, GroupSlots, Loan
from rh_parallel.model.enums import GroupStatus, ResultStatus
from rh_parallel.model.groups import GroupError, ParallelEventGroup
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.observer import GroupInfo, ItemInfo, ObserverSet
from rh_parallel.runtime.scope import Scope, current_scope

if TYPE_CHECKING:
    from rh_parallel.execution.options import GroupOptions
    from rh_parallel.execution.rate import RateLimit
    from rh_parallel.execution.recall import Recall, Recalled
    from rh_parallel.execution.records import RecordPublisher

__all__ = ["GroupRun"]

_perf = time.perf_counter
_RECOVERED = ResultStatus.RECOVERED
_RUNNING = GroupStatus.RUNNING


class GroupRun(RecallingGroup):
    """Runs the items of one group under its options; see ParallelExecutionManager for the API."""

    def __init__(
        self,
        group: ParallelEventGroup,
        options: GroupOptions,
        observers: ObserverSet,
        publisher: RecordPublisher,
        global_limiter: GlobalLimiter | None,
        depth: int,
        recall: Recall | None = None,
        parent_scope: Scope | None = None,
        rates: tuple[RateLimit, ...] = (),
    ) -> None:
        self.group = group
        self.rates = rates  # the rate limits every attempt waits for (group's, state's)
        self.recall = recall
        self.parent_scope = parent_scope
        self.options = options
        self.observers = observers
        self.publisher = publisher
        self.global_limiter = global_limiter
        self.depth = depth
        self.slots = GroupSlots(options.workers)
        self.adaptive = options.adaptive  # read once per item end: a property of the options
        self.items: list[Item] = []
        self.results: list[ExecutionResult | None] = []
        self.completion_order: list[int] = []
        self.stop: stopping.Stop | None = None
        self.error: BaseException | None = None  # what gather() raises, final once done
        self.info: GroupInfo | None = None
        # None when no observer wants item hooks: the hot path tests identity, not truthiness
        self.item_observers: ObserverSet | None = observers if observers.observers else None
        self.done = asyncio.Event()
        self.progress: asyncio.Event | None = None
        self._threshold = 0
        self._ready: deque[Item] = deque()
        self._ended: deque[tuple[Item, ExecutionResult]] = deque()
        self._running: dict[asyncio.Task[None], Item] = {}
        self._first_failure: ExecutionResult | None = None
        self._unhandled_failure: ExecutionResult | None = None
        self._abort: BaseException | None = None
        self._internal_error: BaseException | None = None
        self._settling = False
        self._timer: asyncio.TimerHandle | None = None
        self._context: contextvars.Context | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unkept_logged = False
        self.lookup_epoch = 0
        self._incomplete = False  # an item failed, or completed over failed work inside it

    @property
    def aborted(self) -> BaseException | None:
        """The BaseException (not an Exception) an item raised, if one did."""
        return self._abort

    @property
    def started(self) -> bool:
        return self._loop is not None

    # -- starting -------------------------------------------------------------------------

    def start(
        self,
        parent_item: ItemInfo | None,
        recalled: Recalled | None = None,
        looked_up: float = 0.0,
    ) -> None:
        """Publish the start and admit the first items; never awaits.

        ``recalled`` holds the results known before running (recovered or cached): those
        items end at once, taking no slot. ``looked_up`` seconds of the group's timeout were
        spent looking them up.
        """
        group = self.group
        total = len(self.items)
        self.results = [None] * total
        self._threshold = stopping.threshold_count(self.options.failure_threshold, total)
        fields = group.__dict__  # the live model, without pydantic's setattr per field
        fields["total"] = total
        fields["status"] = _RUNNING
        fields["start_time"] = time.time()
        self._context = contextvars.copy_context()
        self._loop = asyncio.get_running_loop()
        if self.observers.observers:
            breaker = self.options.circuit_breaker
            self.info = GroupInfo(
                group, parent_item, (breaker.name, breaker.state.value) if breaker else None
            )
            chosen = self.observers.on_group_start(self.info)
            self.item_observers = chosen if chosen.observers else None
        if self.publisher.bus._subscriptions:
            self.publisher.group(group)
        now = _perf()
        recall = self.recall
        for item in self.items:
            item.queued_at = now
            if recall is not None:
                result = recalled.get(item.index) if recalled is not None else None
                if result is not None:
                    item.close_unrun()
                    self._queue_end(item, result)
                    continue
                if item.pending == 0:
                    self._make_ready(recall, item)
                continue
            if item.pending == 0:
                self._ready.append(item)
        if recall is not None and self.item_observers is not None:
            self._count_cache_lookups(recalled or {})
        if self.options.timeout is not None:
            self._timer = self._loop.call_later(
                max(0.0, self.options.timeout - looked_up), self._on_timeout
            )
        self._settle()

    # -- admission ------------------------------------------------------------------------

    def _admit(self) -> None:
        """Start ready items while slots are free; a breaker's rejections end as results."""
        breaker = self.options.circuit_breaker
        ready = self._ready
        slots = self.slots
        adaptive = self.adaptive
        if adaptive is not None and adaptive.limit != slots.limit:
            self._resize(adaptive.limit)
        limiter = self.global_limiter
        loop = self._loop
        assert self._context is not None
        while ready and self.stop is None and slots.free > 0:
            item = ready.popleft()
            if breaker is not None:
                permit = breaker.acquire(self.on_breaker_change)
                if permit is None:
                    if self.item_observers is not None:
                        self.item_observers.on_breaker_rejection(breaker.name)
                    item.close_unrun()
                    error = breaker.rejection()
                    self._queue_end(
                        item, failed(item, self.group.group_id, error, ResultStatus.REJECTED)
                    )
                    continue
                item.permit = permit
            slots.try_take()
            item.holds_slot = True
            if limiter is not None:
                item.lease = GlobalLease(limiter)
            # Task() directly: loop.create_task adds a Python frame per item for a task
            # factory hook that asyncio's default loop never uses.
            task = asyncio.Task(self._run_item(item), loop=loop, context=self._context.copy())
            item.task = task
            self._running[task] = item

    def _resize(self, limit: int) -> None:
        """An adaptive limit moved: the group's slots follow it."""
        old = self.slots.limit
        self.slots.resize(limit)
        self.group.__dict__["max_workers"] = limit
        if self.info is not None:
            self.observers.on_limit_change(self.info, old, limit)

    def give_back_slot(self, item: Item) -> None:
        """``item`` no longer holds its group slot (it ended, or backs off before a retry):
        the slot goes to a retrying item waiting for one, or admits the next ready item."""
        if item.holds_slot:
            item.holds_slot = False
            self.slots.give_back()
        self._settle()

    def on_breaker_change(self, breaker: str, state: str) -> None:
        if self.observers:
            self.observers.on_breaker_state(breaker, state)

    # -- running one item -----------------------------------------------------------------

    async def _run_item(self, item: Item) -> None:
        """The body of an item's task: its attempts, inside the observers' scope."""
        observers = self.item_observers
        scope = Scope(
            item.address,
            self.depth + 1,
            self.group.group_id,
            item.lease,
            item if observers is not None else None,
            [],
        )
        item.scope = scope
        current_scope.set(scope)
        # the end is recorded inside the observers' scope: its records carry the item's span
        entered = None
        if observers is not None:
            item.group = self.info
            entered = observers.enter_item(item)
        try:
            try:
                result = await run_attempts(self, item)
            except asyncio.CancelledError:
                result = self._stopped_result(item)
            except BaseException as exc:
                result = self._abnormal_end(item, exc)
            # Leave the running set first, so a group whose last item this is ends now.
            task = item.task
            if task is not None:
                del self._running[task]
            self._end(item, result)
        finally:
            if entered is not None:
                observers.exit_item(entered)  # type: ignore[union-attr]  # set with entered

    def _abnormal_end(self, item: Item, exc: BaseException) -> ExecutionResult:
        """An item raised past its attempts: a BaseException that is not an Exception (it
        stops the group as a cancel does and propagates from gather()), or a bug of ours."""
        item.close_unrun()
        if isinstance(exc, Exception):  # a bug in rh-parallel itself: keep the group sound
            self._internal_error = self._internal_error or exc
        elif self._abort is None:
            self._abort = exc
        return failed(item, self.group.group_id, exc, ResultStatus.FAILED)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        """A task the stop cancelled ended; one cancelled before its first step never ran
        its body, so it is accounted for here."""
        item = self._running.pop(task, None)
        if item is None:  # the body ran to its end and accounted for itself
            return
        if not task.cancelled():
            task.exception()  # retrieved: _run_item records its own failures
        if item.result is None and not item.finishing:
            # Cancelled before its first step: none of its code ran.
            if item.permit is not None:
                item.permit.release()
                item.permit = None
            item.close_unrun()
            self._end(item, self._stopped_result(item))
        else:
            self._settle()

    def _stopped_result(self, item: Item) -> ExecutionResult:
        item.stopped = self.stop is not None
        cancelled = asyncio.CancelledError(f"item {item.name!r} was cancelled")
        status, error = stopping.stopped_outcome(self.stop, cancelled)
        return failed(item, self.group.group_id, error, status)

    # -- ending ---------------------------------------------------------------------------

    def _end(self, item: Item, result: ExecutionResult) -> None:
        """An item's work is over: record its result, free its slot, settle the group."""
        item.finishing = True
        self._ended.append((item, result))
        self.give_back_slot(item)

    def _queue_end(self, item: Item, result: ExecutionResult) -> None:
        item.finishing = True
        self._ended.append((item, result))

    def _settle(self) -> None:
        """Record ended items, then act on what follows, until nothing more follows.

        Per round: every queued result is recorded (a failure's dependents are skipped at
        once, so they are counted before any strategy looks), then the error strategy decides
        once, then free slots admit ready items. Never re-entered: an end reported while
        settling is queued and taken in the same loop.
        """
        if self._settling:
            return
        self._settling = True
        ended = self._ended
        try:
            while True:
                while ended:
                    self._record(*ended.popleft())
                if self.stop is None:
                    if self._unhandled_failure is not None or self._abort is not None:
                        decided = self._decide_stop()
                        if decided is not None:
                            self._begin_stop(decided)
                            continue
                    if self._ready and self.slots.free > 0:
                        self._admit()
                        if ended:
                            continue
                break
            self._unhandled_failure = None
            if len(self.completion_order) == len(self.items) and not self._running:
                self._check_done()
        finally:
            self._settling = False

    def _record(self, item: Item, result: ExecutionResult) -> None:
        if item.result is not None:
            return
        item.result = result
        self.results[item.index] = result
        self.completion_order.append(item.index)
        group = self.group
        counters = group.__dict__  # the live counters, without pydantic's setattr per item
        status = result.status
        if result.ok:
            counters["completed"] += 1
            if status is _RECOVERED:
                counters["recovered"] += 1
            elif result.cached:
                counters["cached"] += 1
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
            if self._unhandled_failure is None and not item.stopped:
                self._unhandled_failure = result
        observers = self.item_observers
        if observers is not None:
            item.group = self.info
            observers.on_item_end(item, result)
        if self.publisher.bus._subscriptions:  # checked here: once per item, usually empty
            self.publisher.item_ended(self.group, item, result)
        if self.recall is not None:
            self._keep(self.recall, item, result)
        item.task = None
        item.scope = None
        item.span = None
        if item.work_kind is not INVOCATION:
            item.work = None  # free the finished work now, not when the group ends
        if item.dependents:
            ready, skipped = dependencies.released_by(item, result.ok)
            now = _perf()
            for dependent in ready:
                dependent.queued_at = now
                if self.recall is not None:
                    self._make_ready(self.recall, dependent)
                else:
                    self._ready.append(dependent)
            for dependent in skipped:
                dependent.close_unrun()
                error = DependencyFailedError(dependent.name, item.name, status.value)
                self._queue_end(
                    dependent, failed(dependent, group.group_id, error, ResultStatus.SKIPPED)
                )
        if self.progress is not None:
            self.progress.set()

    def _decide_stop(self) -> stopping.Stop | None:
        group_name = self.group.name
        if self._abort is not None:
            return stopping.stop_for(stopping.StopReason.ABORTED, group_name, cause=self._abort)
        failure = self._unhandled_failure
        if failure is None:
            return None
        self._unhandled_failure = None
        reason = stopping.failure_stop(
            self.options.error_strategy, self.group.failed, self._threshold
        )
        if reason is None:
            return None
        self._first_failure = failure
        return stopping.stop_for(reason, group_name)

    def _on_timeout(self) -> None:
        self._timer = None
        self.cancel(stopping.StopReason.TIMEOUT)

    def cancel(self, reason: stopping.StopReason = stopping.StopReason.CANCELLED) -> None:
        """Stop the group from outside (a cancel, the timeout); a no-op once it stops."""
        if self.stop is not None or self.done.is_set() or not self.started:
            return
        cause = stopping.stop_for(reason, self.group.name, timeout=self.options.timeout)
        self._begin_stop(cause)
        self._settle()

    def _begin_stop(self, stop: stopping.Stop) -> None:
        """End what has not started with the stop's status and cancel what runs."""
        self.stop = stop
        self._ready.clear()
        for item in self.items:
            if item.task is None and not item.finishing:
                item.close_unrun()
                item.stopped = True
                self._queue_end(item, failed(item, self.group.group_id, stop.error, stop.status))
        for task in self._running:
            task.add_done_callback(self._on_task_done)
            task.cancel()

    def _check_done(self) -> None:
        if len(self.completion_order) < len(self.items) or self._running or self.done.is_set():
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group = self.group
        end = time.time()
        fields = group.__dict__
        fields["end_time"] = end
        fields["duration"] = end - (group.start_time or end)
        fields["status"] = stopping.group_status(self.stop, group.failed, group.cancelled)
        if self.stop is not None or self._internal_error is not None:
            self.error = self._internal_error or stopping.outcome_error(
                group.name,
                self.stop,
                [r for r in self.results if r is not None],
                self._first_failure,
                group.failed,
                self._threshold,
                self._abort,
            )
        if self.recall is not None:
            self.recall.flush()
            if self._incomplete and self.parent_scope is not None:
                self.parent_scope.incomplete = True  # its item is not saved as completed
        if self.info is not None:
            if fields["status"] is not GroupStatus.COMPLETED:
                self.info.deciding = self._deciding_failure()
            self.observers.on_group_end(self.info)
        if self.publisher.bus._subscriptions:
            self.publisher.group(group)
        self.done.set()
        if self.progress is not None:
            self.progress.set()

    def _deciding_failure(self) -> ExecutionResult | None:
        """The result that decided a group's unsuccessful outcome (what observers report it
        as): the failure that stopped it under FAIL_FAST or its threshold; for a timeout or a
        cancel, the first item the stop ended; otherwise the first failure recorded."""
        stop = self.stop
        if stop is not None and self._first_failure is not None:
            return self._first_failure
        wanted = stop.status if stop is not None else None
        results = self.results
        for index in self.completion_order:
            result = results[index]
            if result is not None and not result.ok and (wanted is None or result.status is wanted):
                return result
        return None

    # -- waiting (the NestedRun protocol) -------------------------------------------------

    async def wait_stopped(self) -> None:
        """Wait until the group has ended, whatever cancels the waiter meanwhile (lending the
        waiter's global slot); a cancellation received while waiting is re-raised at the end."""
        interrupted = False
        async with Loan():
            while not self.done.is_set():
                try:
                    await self.done.wait()
                except asyncio.CancelledError:
                    interrupted = True
                    self.cancel()
        if interrupted:
            raise asyncio.CancelledError
