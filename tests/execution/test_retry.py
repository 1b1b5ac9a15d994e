"""Retries: backoff, slot release, re-creation, cancellation never retried."""

from __future__ import annotations

import asyncio
import random

import pytest

from rh_parallel import (
    ExecutionEvent,
    ExecutionState,
    ExecutionStatus,
    ResultStatus,
    RetryPolicy,
)
from rh_parallel.testing import ConcurrencyProbe, RecordCapture

FAST = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0)


class Flaky:
    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(0)
        if self.calls <= self.failures:
            raise self.error(f"attempt {self.calls}")
        return "ok"


async def test_retry_until_success_counts_attempts(
    state: ExecutionState, capture: RecordCapture
) -> None:
    flaky = Flaky(2)
    async with state.parallel(retry=FAST) as p:
        p.add("flaky", flaky)
    (result,) = await p.gather()
    assert result.ok and result.attempts == 3 and result.status is ResultStatus.COMPLETED
    assert flaky.calls == 3
    await capture.flush()
    assert capture.statuses("flaky") == ["started", "retrying", "retrying", "completed"]
    assert p.group.retries == 2


async def test_retries_exhausted_fail_with_the_last_error(state: ExecutionState) -> None:
    async with state.parallel(retry=FAST) as p:
        p.add(Flaky(10))
    (result,) = await p.gather()
    assert not result.ok and result.attempts == 3 and result.error_message == "attempt 3"


async def test_retry_on_and_exclude(state: ExecutionState) -> None:
    only_conn = RetryPolicy(
        max_attempts=3,
        initial_delay=0,
        retry_on=(ConnectionError,),
        exclude=(ConnectionRefusedError,),
    )
    async with state.parallel(retry=only_conn) as p:
        p.add(Flaky(1, KeyError))
        p.add(Flaky(1, ConnectionRefusedError))
        p.add(Flaky(1, ConnectionResetError))
    assert [r.attempts for r in await p.gather()] == [1, 1, 2]


async def test_event_invocations_are_re_created(state: ExecutionState) -> None:
    from pydantic import BaseModel

    from rh_parallel import Tool

    class In(BaseModel):
        n: int

    calls: list[int] = []

    async def handler(i: In, ctx: object, s: object) -> int:
        calls.append(i.n)
        if len(calls) < 2:
            raise ConnectionError("flaky")
        return i.n

    event = ExecutionEvent(actor=Tool(name="api", input_model=In, handler=handler))
    async with state.parallel(retry=FAST) as p:
        p.add(event({"n": 7}, None, state))
    (result,) = await p.gather()
    assert result.ok and result.result == 7 and calls == [7, 7]


async def test_slot_is_released_during_backoff(state: ExecutionState) -> None:
    probe = ConcurrencyProbe()
    other_ran_during_backoff = asyncio.Event()
    slow_retry = RetryPolicy(max_attempts=2, initial_delay=0.05, jitter=0)
    attempts = 0

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("once")
        assert other_ran_during_backoff.is_set()

    async def other() -> None:
        other_ran_during_backoff.set()

    async with state.parallel(max_workers=1, retry=slow_retry) as p:
        p.add(lambda: probe.run(flaky()))
        p.add(lambda: probe.run(other()))
    assert all(r.ok for r in await p.gather())
    assert probe.peak == 1


async def test_cancellation_is_never_retried(state: ExecutionState) -> None:
    calls = 0

    async def slow() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(10)

    p = state.parallel(retry=RetryPolicy(max_attempts=5, initial_delay=0))
    p.add(slow)
    runner = asyncio.create_task(p.gather())
    await asyncio.sleep(0.01)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert calls == 1 and p.results[0] is not None
    assert p.results[0].status is ResultStatus.CANCELLED


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(initial_delay=0.1, backoff=2.0, max_delay=0.5, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]
    jittered = RetryPolicy(initial_delay=1.0, jitter=0.1)
    rng = random.Random(1)
    delays = [jittered.delay(1, rng) for _ in range(200)]
    assert all(0.9 <= d <= 1.1 for d in delays) and len(set(delays)) > 100


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_attempts": 0}, "max_attempts=0"),
        ({"backoff": 0.5}, "backoff=0.5"),
        ({"jitter": 2}, "jitter=2"),
        ({"initial_delay": -1}, "delays must be >= 0"),
    ],
)
def test_bad_policy_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RetryPolicy(**kwargs)


async def test_retrying_record_says_why(state: ExecutionState, capture: RecordCapture) -> None:
    async with state.parallel(retry=FAST) as p:
        p.add("f", Flaky(1))
    await p.gather()
    await capture.flush()
    (retrying,) = capture.items(status=ExecutionStatus.RETRYING)
    assert retrying.error_type == "ConnectionError" and "attempt 1" in (retrying.message or "")
