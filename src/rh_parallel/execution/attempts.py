"""One item's run: its attempts under the group's timeout, retry and breaker policies.

The item holds its group slot (and its global lease) while an attempt runs, gives both back
during a retry's backoff, and takes them back, ahead of items that have not started, before the
next attempt. Groups the item's code opened are stopped and awaited after each attempt, so a
nested group never outlives the attempt that opened it.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Protocol

from rh_parallel.exceptions import EventTimeoutError
from rh_parallel.execution.items import COROUTINE, Item, adopt
from rh_parallel.execution.rate import retry_after
from rh_parallel.execution.stopping import stopped_outcome
from rh_parallel.model.enums import ResultStatus
from rh_parallel.model.results import ExecutionResult

if TYPE_CHECKING:
    from rh_parallel.execution.options import GroupOptions
    from rh_parallel.execution.rate import AdaptiveLimit, RateLimit
    from rh_parallel.execution.records import RecordPublisher
    from rh_parallel.execution.slots import GroupSlots
    from rh_parallel.execution.stopping import Stop
    from rh_parallel.model.groups import ParallelEventGroup
    from rh_parallel.runtime.observer import ObserverSet

__all__ = ["AttemptHost", "failed", "run_attempts"]

_perf = time.perf_counter
_COMPLETED = ResultStatus.COMPLETED


class AttemptHost(Protocol):
    """What an item's attempts need from the group that runs them."""

    group: ParallelEventGroup
    options: GroupOptions
    slots: GroupSlots
    publisher: RecordPublisher
    item_observers: ObserverSet | None
    stop: Stop | None
    rates: tuple[RateLimit, ...]
    adaptive: AdaptiveLimit | None

    def give_back_slot(self, item: Item) -> None: ...

    def on_breaker_change(self, breaker: str, state: str) -> None: ...


def _fields(item: Item, group_id: str) -> dict[str, Any]:
    return {
        "index": item.index,
        "name": item.name,
        "group_id": group_id,
        "attempts": item.attempts or 1,
        "execution_time": item.execution_time,
        "queue_time": item.queue_time,
    }


def _completed(item: Item, group_id: str, value: Any) -> ExecutionResult:
    """The result of an attempt that returned ``value`` (a returned result is adopted)."""
    if isinstance(value, ExecutionResult):
        return adopt(value, _fields(item, group_id))
    return ExecutionResult.from_complete(
        {
            "ok": True,
            "result": value,
            "status": _COMPLETED,
            "error": None,
            "error_type": None,
            "error_message": None,
            "index": item.index,
            "name": item.name,
            "group_id": group_id,
            "attempts": item.attempts,
            "execution_time": item.execution_time,
            "queue_time": item.queue_time,
            "cached": False,
        }
    )


def failed(
    item: Item, group_id: str, error: BaseException, status: ResultStatus
) -> ExecutionResult:
    """A failed result of ``item`` with ``status``."""
    return ExecutionResult.failure(error, status, **_fields(item, group_id))


async def _close_children(item: Item) -> None:
    """Stop and await what remains of the groups this item's code opened."""
    scope = item.scope
    assert scope is not None and scope.children
    children = scope.children
    scope.children = []
    for child in children:
        child.cancel()
    for child in children:
        await child.wait_stopped()


async def run_attempts(host: AttemptHost, item: Item) -> ExecutionResult:
    """Run ``item``'s attempts and return its result; never raises for the item's own failure.

    A BaseException that is not an Exception (KeyboardInterrupt, SystemExit, ...) propagates:
    the scheduler records it as the item's failure and stops the group.
    """
    options = host.options
    retry = options.retry
    event_timeout = options.event_timeout
    group_id = host.group.group_id
    lease = item.lease
    try:
        if host.rates:
            await _wait_for_rates(host, item)
        if lease is not None:
            await lease.acquire()
        item.queue_time += _perf() - item.queued_at
        item.running = True
        observers = host.item_observers
        if observers is not None:
            observers.on_item_start(item)
        if host.publisher.bus._subscriptions:  # checked here: twice per item, usually empty
            host.publisher.item_started(host.group, item)
        attempt = 0
        while True:
            attempt += 1
            item.attempts = attempt
            if item.scope is not None:
                item.scope.incomplete = False  # what failed inside an earlier attempt is over
            item.began = _perf()
            try:
                try:
                    if event_timeout is None:
                        if item.work_kind is COROUTINE:
                            value = await item.work  # type: ignore[misc]
                        else:
                            value = await item.make_attempt(attempt)
                    else:
                        async with asyncio.timeout(event_timeout) as deadline:
                            value = await item.make_attempt(attempt)
                finally:
                    item.execution_time += _perf() - item.began
                    item.began = 0.0
                    if item.scope is not None and item.scope.children:
                        await _close_children(item)
            except TimeoutError as timeout_error:
                if event_timeout is not None and deadline.expired():
                    expired = EventTimeoutError(
                        f"item {item.name!r} passed event_timeout={event_timeout}s"
                    )
                    result = failed(item, group_id, expired, ResultStatus.TIMED_OUT)
                else:
                    result = failed(item, group_id, timeout_error, ResultStatus.FAILED)
            except Exception as exc:
                result = failed(item, group_id, exc, ResultStatus.FAILED)
            else:
                result = _completed(item, group_id, value)
            adaptive = host.adaptive
            if adaptive is not None:
                adaptive.observe(result.error if not result.ok else None)
            permit = item.permit
            if permit is not None:
                item.permit = None
                if result.ok:
                    permit.success(host.on_breaker_change)
                else:
                    permit.failure(host.on_breaker_change)
            if result.ok or retry is None or host.stop is not None:
                return result
            if not retry.should_retry(result.error, attempt):
                return result
            rejected = await _back_off(host, item, result)
            if rejected is not None:
                return rejected
    except asyncio.CancelledError as exc:
        item.close_unrun()  # cancelled before its first attempt: close what never ran
        item.stopped = host.stop is not None
        status, error = stopped_outcome(host.stop, exc)
        return failed(item, group_id, error, status)
    finally:
        if item.permit is not None:
            item.permit.release()
            item.permit = None
        if lease is not None:
            lease.close()


async def _back_off(
    host: AttemptHost, item: Item, failure: ExecutionResult
) -> ExecutionResult | None:
    """Wait out a retry's backoff holding no slot, then take the slots back: ``None`` when the
    next attempt may run, the item's final result when the breaker rejects it."""
    retry = host.options.retry
    assert retry is not None
    delay = retry.delay(item.attempts)
    hint = retry_after(failure.error) if retry.respect_retry_after else None
    if hint is not None:
        delay = max(delay, hint)
        for rate in host.rates:
            rate.pause(hint)  # the provider asked everyone who shares the limit to wait
    host.group.retries += 1
    item.running = False
    observers = host.item_observers
    if observers is not None:
        observers.on_item_retry(item, failure.error, delay)
    host.publisher.item_retrying(host.group, item, failure, delay, hint is not None)
    host.give_back_slot(item)
    lease = item.lease
    if lease is not None:
        lease.release()
    await asyncio.sleep(delay)
    waited = _perf()
    if host.rates:
        await _wait_for_rates(host, item)  # holding no slot
    await host.slots.take_back()
    item.holds_slot = True
    if lease is not None:
        await lease.acquire()
    item.queue_time += _perf() - waited
    item.running = True
    if observers is not None:
        observers.on_item_resume(item)
    breaker = host.options.circuit_breaker
    if breaker is not None:
        item.permit = breaker.acquire(host.on_breaker_change)
        if item.permit is None:
            if observers is not None:
                observers.on_breaker_rejection(breaker.name)
            return failed(item, host.group.group_id, breaker.rejection(), ResultStatus.REJECTED)
    return None


async def _wait_for_rates(host: AttemptHost, item: Item) -> None:
    """Wait for each rate limit of the group before an attempt, holding no global slot;
    a wait is announced (printers say why the item waits) and counted."""
    for rate in host.rates:
        if not rate.ready():
            host.publisher.item_waiting(host.group, item, f"waiting for rate limit {rate.name!r}")
        seconds = await rate.wait()
        if seconds > 0.0005 and host.item_observers is not None:
            host.item_observers.on_item_wait(item, rate.name, seconds)
