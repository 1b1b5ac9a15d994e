"""FAIL_SLOW, FAIL_FAST and FAIL_THRESHOLD."""

from __future__ import annotations

import asyncio

import pytest

from rh_parallel import (
    ErrorStrategy,
    ExecutionEvent,
    ExecutionState,
    FailureThresholdExceeded,
    GroupStatus,
    ResultStatus,
)
from tests.helpers import no_tasks_left


async def fail(message: str) -> None:
    await asyncio.sleep(0)
    raise KeyError(message)


async def test_fail_slow_runs_everything(state: ExecutionState) -> None:
    async with state.parallel(max_workers=2) as p:
        p.add(fail("a"))
        p.add(asyncio.sleep(0.01, result="ok"))
        p.add(fail("b"))
    results = await p.gather()
    assert [r.ok for r in results] == [False, True, False]
    assert p.group.failed == 2 and p.group.completed == 1


async def test_fail_fast_cancels_the_rest_and_reraises(state: ExecutionState) -> None:
    cancelled: list[int] = []
    gate = asyncio.Event()

    async def wait_forever(n: int) -> None:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    p = state.parallel(max_workers=3, error_strategy=ErrorStrategy.FAIL_FAST)
    p.add(wait_forever(0))
    p.add(wait_forever(1))
    p.add(fail("first"))
    p.add(wait_forever(3))  # never starts: closed, not left un-awaited
    with pytest.raises(KeyError, match="first"):
        await p.gather()
    assert sorted(cancelled) == [0, 1]
    statuses = [r.status for r in p.results if r]
    assert statuses == [
        ResultStatus.CANCELLED,
        ResultStatus.CANCELLED,
        ResultStatus.FAILED,
        ResultStatus.CANCELLED,
    ]
    group = p.group
    assert group.status is GroupStatus.FAILED
    assert group.completed + group.failed + group.cancelled == group.total == 4
    assert no_tasks_left()
    with pytest.raises(KeyError):  # later calls raise the stored error again
        await p.gather()


async def test_fail_fast_counts_a_returned_failure(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    p = state.parallel(error_strategy=ErrorStrategy.FAIL_FAST)
    p.add(double_event({"x": -1}, None, state))
    p.add(asyncio.sleep(5))
    with pytest.raises(ValueError, match="negative"):
        await p.gather()


@pytest.mark.parametrize(("threshold", "expected_failed"), [(2, 2), (0.5, 2)])
async def test_threshold_as_count_or_share(
    state: ExecutionState, threshold: float, expected_failed: int
) -> None:
    p = state.parallel(max_workers=1, failure_threshold=threshold)
    p.add(fail("1"))
    p.add(asyncio.sleep(0, result=1))
    p.add(fail("2"))
    p.add(asyncio.sleep(0, result=2))
    with pytest.raises(FailureThresholdExceeded) as caught:
        await p.gather()
    assert len(caught.value.results) == 4
    assert [r.status for r in caught.value.results] == [
        ResultStatus.FAILED,
        ResultStatus.COMPLETED,
        ResultStatus.FAILED,
        ResultStatus.CANCELLED,
    ]
    assert p.group.failed == expected_failed and p.group.status is GroupStatus.FAILED


async def test_threshold_not_reached_returns_results(state: ExecutionState) -> None:
    p = state.parallel(error_strategy=ErrorStrategy.FAIL_THRESHOLD, failure_threshold=3)
    p.add(fail("1"))
    p.add(asyncio.sleep(0, result=1))
    results = await p.gather()
    assert [r.ok for r in results] == [False, True]


async def test_stream_under_fail_fast_yields_the_failure_then_raises(
    state: ExecutionState,
) -> None:
    p = state.parallel(error_strategy=ErrorStrategy.FAIL_FAST)
    p.add(asyncio.sleep(10))
    p.add(fail("streamed"))
    seen = []
    with pytest.raises(KeyError):
        async for result in p.stream():
            seen.append(result.status)
    assert seen == [ResultStatus.FAILED]
