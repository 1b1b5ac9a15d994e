"""Cancellation from outside, p.cancel(), and exceptions inside the block."""

from __future__ import annotations

import asyncio

import pytest

from rh_parallel import (
    EventBus,
    ExecutionState,
    FailureThresholdExceeded,
    GroupStatus,
    ResultStatus,
)
from rh_parallel.testing import RecordCapture
from tests.helpers import no_tasks_left


async def test_cancelling_the_awaiting_task_cancels_everything(state: ExecutionState) -> None:
    started = asyncio.Event()
    inner_cancelled: list[str] = []

    async def slow(tag: str) -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            inner_cancelled.append(tag)
            raise

    async def nested() -> None:
        async with state.parallel(max_workers=2, name="inner") as q:
            q.add(slow("n1"))
            q.add(slow("n2"))

    p = state.parallel(max_workers=2, name="outer")
    p.add(slow("a"))
    p.add(nested())
    p.add(slow("queued"))
    runner = asyncio.create_task(p.gather())
    await started.wait()
    await asyncio.sleep(0.01)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert sorted(inner_cancelled) == ["a", "n1", "n2"]
    assert p.group.status is GroupStatus.CANCELLED
    assert [r.status for r in p.results if r] == [ResultStatus.CANCELLED] * 3
    assert p.group.cancelled == 3
    assert no_tasks_left()


async def test_p_cancel_stops_the_group(state: ExecutionState) -> None:
    p = state.parallel(max_workers=1)

    async def cancel_soon() -> None:
        await asyncio.sleep(0)
        p.cancel()
        await asyncio.sleep(10)

    p.add(cancel_soon())
    p.add(asyncio.sleep(10))
    with pytest.raises(asyncio.CancelledError):
        await p.gather()
    assert p.group.status is GroupStatus.CANCELLED
    assert p.group.cancelled == 2
    assert no_tasks_left()


async def test_exception_in_the_block_before_start_runs_nothing(bus: EventBus) -> None:
    capture = RecordCapture(bus)
    state = ExecutionState(event_bus=bus, observers=[])
    ran: list[int] = []

    async def mark() -> None:
        ran.append(1)

    with pytest.raises(ZeroDivisionError):
        async with state.parallel() as p:
            p.add(mark())  # closed, so no "never awaited" warning (warnings are errors)
            p.add(mark)
            _ = 1 / 0
    await capture.flush()
    assert ran == [] and capture.records == []
    assert p.group.status is GroupStatus.CANCELLED


async def test_exception_in_the_block_cancels_what_runs(state: ExecutionState) -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(LookupError):
        async with state.parallel() as p:
            p.add(slow())
            background = asyncio.create_task(p.gather())
            await asyncio.sleep(0.01)
            raise LookupError("user code failed")
    assert cancelled.is_set()
    with pytest.raises(asyncio.CancelledError):
        await background
    assert p.group.status is GroupStatus.CANCELLED
    assert no_tasks_left()


async def test_leaving_an_ended_group_is_left_alone(state: ExecutionState) -> None:
    async def fail() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        async with state.parallel(failure_threshold=1) as p:
            p.add(fail())
            with pytest.raises(FailureThresholdExceeded):
                await p.gather()
            raise KeyError("after")
    assert p.group.status is GroupStatus.FAILED  # unchanged by the exception in the block


async def test_cancelling_a_stream_consumer_cancels_the_group(state: ExecutionState) -> None:
    p = state.parallel()
    p.add(asyncio.sleep(10))
    p.add(asyncio.sleep(0, result="fast"))

    async def consume() -> list[object]:
        return [r.result async for r in p.stream()]

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert p.group.status is GroupStatus.CANCELLED
    assert no_tasks_left()
