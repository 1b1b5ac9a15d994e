"""Retries: backoff, slot release, re-creation, cancellation never retried."""

from __future__ import annotations

import asyncio
import math
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
        ({"max_attempts": 0}, r"max_attempts=0\).*pass an int >= 1"),
        ({"backoff": 0.5}, r"backoff=0\.5\) must be a finite number >= 1.*backoff=2\.0"),
        ({"backoff": math.nan}, r"backoff=nan\) must be a finite number >= 1"),
        ({"backoff": math.inf}, r"backoff=inf\) must be a finite number >= 1"),
        ({"jitter": 2}, r"jitter=2\) is a share from 0 to 1.*jitter=0\.1"),
        ({"jitter": math.nan}, r"jitter=nan\) is a share from 0 to 1"),
        ({"initial_delay": -1}, r"initial_delay=-1\) must be a finite number of seconds >= 0"),
        ({"initial_delay": math.nan}, r"initial_delay=nan\) must be a finite number of seconds"),
        ({"initial_delay": math.inf}, r"initial_delay=inf\) must be a finite number of seconds"),
        ({"max_delay": -0.5}, r"max_delay=-0\.5\) must be a finite number of seconds >= 0"),
        ({"max_delay": math.nan}, r"max_delay=nan\) must be a finite number of seconds"),
        # an infinite cap would let the delay grow until a retry never wakes up
        ({"max_delay": math.inf}, r"max_delay=inf\) must be a finite.*max_delay=10\.0"),
        ({"max_delay": 10**400}, r"max_delay=1000.*\) must be a finite number of seconds"),
    ],
)
def test_bad_policy_values_are_refused_naming_the_argument_and_the_fix(
    kwargs: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_attempts": True}, r"max_attempts=True\).*pass an int, not a bool"),
        ({"max_attempts": 2.0}, r"max_attempts=2\.0\).*pass an int, not a float"),
        ({"max_attempts": "3"}, r"max_attempts='3'\).*pass an int, not a str"),
        ({"initial_delay": "0.1"}, r"initial_delay='0\.1'\) is a number of seconds.*float"),
        ({"initial_delay": None}, r"initial_delay=None\) is a number of seconds"),
        ({"max_delay": True}, r"max_delay=True\) is a number of seconds"),
        ({"backoff": "2"}, r"backoff='2'\) is a growth factor; pass a float"),
        ({"jitter": True}, r"jitter=True\) is a share from 0 to 1; pass a float"),
    ],
)
def test_wrong_types_are_type_errors_naming_the_argument_and_the_fix(
    kwargs: dict, match: str
) -> None:
    with pytest.raises(TypeError, match=match):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"retry_on": [ConnectionError]}, "pass a tuple: retry_on=(ConnectionError,)"),
        ({"retry_on": {TimeoutError}}, "pass a tuple: retry_on=(TimeoutError,)"),
        ({"exclude": [KeyError, ValueError]}, "pass a tuple: exclude=(KeyError, ValueError)"),
        ({"retry_on": []}, "pass a tuple: retry_on=()"),
        ({"retry_on": "ConnectionError"}, "pass a tuple: retry_on=(ConnectionError,)"),
        ({"retry_on": int}, "pass a tuple: retry_on=(ConnectionError,)"),
        ({"retry_on": (ConnectionError, "x")}, "pass a tuple: retry_on=(ConnectionError,)"),
        ({"exclude": None}, "pass a tuple: exclude=(ConnectionError,)"),
    ],
)
def test_retry_on_or_exclude_not_a_class_or_tuple_is_refused_with_a_tuple_hint(
    kwargs: dict, fix: str
) -> None:
    # a list used to be accepted, and then every failure raised from gather() after the
    # work had run: refused at once instead, with the tuple to write
    with pytest.raises(TypeError, match="takes an exception class or a tuple of them") as info:
        RetryPolicy(**kwargs)
    assert fix in str(info.value)


def test_one_exception_class_or_a_tuple_is_accepted() -> None:
    one = RetryPolicy(retry_on=ConnectionError, exclude=ConnectionRefusedError)
    assert one.retry_on == (ConnectionError,) and one.exclude == (ConnectionRefusedError,)
    assert one.should_retry(ConnectionResetError(), 1)
    assert not one.should_retry(ConnectionRefusedError(), 1)
    assert RetryPolicy(retry_on=()).should_retry(ValueError(), 1) is False


def test_a_huge_max_attempts_is_a_valid_count() -> None:
    policy = RetryPolicy(max_attempts=10**400, jitter=0)
    assert policy.retries and policy.should_retry(ConnectionError(), 10**6)
    assert policy.delay(10**399) == policy.max_delay


def test_backoff_never_overflows_and_stays_at_the_cap() -> None:
    # ``initial_delay * backoff ** (attempt - 1)`` overflows a float after ~1,000 attempts
    policy = RetryPolicy(max_attempts=10**9, initial_delay=0.1, backoff=2.0, max_delay=30.0)
    for attempt in (1_025, 1_100, 10_000, 10**6, 10**30):
        assert policy.base_delay(attempt) == 30.0
        assert 27.0 <= policy.delay(attempt) <= 33.0
    delays = [policy.base_delay(n) for n in range(1, 3_000)]
    assert delays == sorted(delays) and delays[-1] == 30.0
    # the widest range a float allows: still grows smoothly, never above the cap
    wide = RetryPolicy(initial_delay=5e-324, backoff=2.0, max_delay=1e308, jitter=1.0)
    wide_delays = [wide.base_delay(n) for n in range(1, 2_500, 7)]
    assert wide_delays == sorted(wide_delays) and wide_delays[-1] == 1e308
    assert all(math.isfinite(wide.delay(n)) for n in (1_000, 2_100, 10**6))
    assert RetryPolicy(initial_delay=0.0, jitter=0).delay(10**6) == 0.0
    assert RetryPolicy(initial_delay=1.0, backoff=1.0, max_delay=5.0).base_delay(10**6) == 1.0


async def test_retrying_record_says_why(state: ExecutionState, capture: RecordCapture) -> None:
    async with state.parallel(retry=FAST) as p:
        p.add("f", Flaky(1))
    await p.gather()
    await capture.flush()
    (retrying,) = capture.items(status=ExecutionStatus.RETRYING)
    assert retrying.error_type == "ConnectionError" and "attempt 1" in (retrying.message or "")
