"""Group timeouts and per-attempt event timeouts."""

from __future__ import annotations

import asyncio

import pytest

from rh_parallel import (
    ErrorStrategy,
    ExecutionState,
    GroupStatus,
    GroupTimeoutError,
    ResultStatus,
    RetryPolicy,
    RhParallelError,
)
from rh_parallel.testing import ConcurrencyProbe
from tests.helpers import no_tasks_left


async def test_group_timeout_cancels_unfinished_items(state: ExecutionState) -> None:
    p = state.parallel(max_workers=2, timeout=0.05)
    p.add(asyncio.sleep(0, result="fast"))
    p.add(asyncio.sleep(10))
    p.add(asyncio.sleep(10))  # still queued when the timeout passes
    with pytest.raises(GroupTimeoutError) as caught:
        await p.gather()
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, RhParallelError)
    assert [r.status for r in error.results] == [
        ResultStatus.COMPLETED,
        ResultStatus.TIMED_OUT,
        ResultStatus.TIMED_OUT,
    ]
    assert p.group.status is GroupStatus.FAILED
    assert p.group.failed == 2 and p.group.completed == 1
    assert no_tasks_left()


async def test_event_timeout_fails_the_item_and_frees_its_slot(state: ExecutionState) -> None:
    probe = ConcurrencyProbe()
    async with state.parallel(max_workers=1, event_timeout=0.02) as p:
        p.add("slow", lambda: probe.run(asyncio.sleep(10)))
        p.add("next", lambda: probe.run(asyncio.sleep(0, result="ran")))
    slow, nxt = await p.gather()
    assert slow.status is ResultStatus.TIMED_OUT and slow.error_type == "EventTimeoutError"
    assert isinstance(slow.error, TimeoutError)  # retry_on=(TimeoutError,) retries it
    assert "event_timeout=0.02" in (slow.error_message or "")
    assert nxt.ok and nxt.result == "ran"
    assert probe.peak == 1


async def test_event_timeout_excludes_queue_time(state: ExecutionState) -> None:
    async with state.parallel(max_workers=1, event_timeout=0.5) as p:
        for _ in range(4):
            p.add(lambda: asyncio.sleep(0.2, result=1))
    assert all(r.ok for r in await p.gather())  # 4 x 200 ms in a row > 500 ms; each < 500


async def test_user_timeout_error_is_a_plain_failure(state: ExecutionState) -> None:
    async def raises_timeout() -> None:
        raise TimeoutError("upstream said timeout")

    async with state.parallel(event_timeout=5) as p:
        p.add(raises_timeout())
    (result,) = await p.gather()
    assert result.status is ResultStatus.FAILED
    assert result.error_type == "TimeoutError"
    assert result.error_message == "upstream said timeout"


async def test_event_timeout_with_retry_then_success(state: ExecutionState) -> None:
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(10 if calls == 1 else 0)
        return "done"

    retry = RetryPolicy(max_attempts=3, initial_delay=0, jitter=0)
    async with state.parallel(event_timeout=0.02, retry=retry) as p:
        p.add(slow_then_fast)
    (result,) = await p.gather()
    assert result.ok and result.attempts == 2 and result.status is ResultStatus.COMPLETED


async def test_event_timeout_under_fail_fast(state: ExecutionState) -> None:
    p = state.parallel(event_timeout=0.01, error_strategy=ErrorStrategy.FAIL_FAST)
    p.add(asyncio.sleep(10))
    p.add(asyncio.sleep(10))
    with pytest.raises(TimeoutError, match="event_timeout"):
        await p.gather()
    assert no_tasks_left()
