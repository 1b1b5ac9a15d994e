"""Circuit breakers: on their own, in groups, shared, and with retries."""

from __future__ import annotations

import asyncio
import math

import pytest

from rh_parallel import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ErrorStrategy,
    ExecutionState,
    ResultStatus,
    RetryPolicy,
)
from rh_parallel.testing import ConcurrencyProbe


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def failing() -> None:
    raise ConnectionError("down")


async def ok() -> str:
    return "up"


async def test_opens_after_consecutive_failures_and_rejects() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("api", failure_threshold=2, recovery_timeout=5, clock=clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(failing)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError, match=r"'api' is open; it half-opens in 5\.00s"):
        await breaker.call(ok)
    clock.now = 5
    assert breaker.state is CircuitState.HALF_OPEN
    assert await breaker.call(ok) == "up"
    assert breaker.state is CircuitState.CLOSED


async def test_a_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker("api", failure_threshold=2)
    with pytest.raises(ConnectionError):
        await breaker.call(failing)
    await breaker.call(ok)
    with pytest.raises(ConnectionError):
        await breaker.call(failing)
    assert breaker.state is CircuitState.CLOSED


async def test_half_open_lets_a_limited_number_of_probes_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "api", failure_threshold=1, recovery_timeout=1, half_open_max_calls=2, clock=clock
    )
    with pytest.raises(ConnectionError):
        await breaker.call(failing)
    clock.now = 1
    release = asyncio.Event()
    probe = ConcurrencyProbe()

    async def held() -> None:
        async with probe:
            await release.wait()

    probes = [asyncio.create_task(breaker.call(held)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        await breaker.call(ok)  # a third arriving meanwhile is rejected
    release.set()
    await asyncio.gather(*probes)
    assert probe.peak == 2 and breaker.state is CircuitState.CLOSED


async def test_a_failed_probe_reopens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("api", failure_threshold=1, recovery_timeout=1, clock=clock)
    with pytest.raises(ConnectionError):
        await breaker.call(failing)
    clock.now = 1
    with pytest.raises(ConnectionError):
        async with breaker:
            await failing()
    assert breaker.state is CircuitState.OPEN


async def test_open_breaker_rejects_group_items_without_running_or_slots(
    state: ExecutionState,
) -> None:
    breaker = CircuitBreaker("search", failure_threshold=2, recovery_timeout=60)
    ran: list[int] = []

    async def call(n: int) -> None:
        ran.append(n)
        raise ConnectionError("down")

    async with state.parallel(max_workers=1, circuit_breaker=breaker) as p:
        for n in range(5):
            p.add(call(n))
    results = await p.gather()
    assert ran == [0, 1]
    assert [r.status for r in results] == [ResultStatus.FAILED] * 2 + [ResultStatus.REJECTED] * 3
    assert all(r.error_type == "CircuitOpenError" for r in results[2:])
    assert breaker.rejections == 3
    assert p.group.failed == 5


async def test_one_breaker_shared_between_groups(state: ExecutionState) -> None:
    breaker = CircuitBreaker("shared", failure_threshold=1, recovery_timeout=60)
    async with state.parallel(circuit_breaker=breaker, name="first") as first:
        first.add(failing())
    async with state.parallel(circuit_breaker=breaker, name="second") as second:
        second.add(ok())
    assert (await second.gather())[0].status is ResultStatus.REJECTED


async def test_retry_breaker_and_fail_fast(state: ExecutionState) -> None:
    breaker = CircuitBreaker("api", failure_threshold=2, recovery_timeout=60)
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    retry = RetryPolicy(max_attempts=5, initial_delay=0, jitter=0)
    p = state.parallel(
        max_workers=2, retry=retry, circuit_breaker=breaker, error_strategy=ErrorStrategy.FAIL_FAST
    )
    p.add(flaky)
    p.add(asyncio.Event().wait)  # holds a closed-state permit until cancelled
    with pytest.raises(CircuitOpenError):
        await p.gather()
    # each attempt counts: two failures open the breaker, the third attempt is rejected
    assert calls == 2
    assert [r.status for r in p.results if r] == [ResultStatus.REJECTED, ResultStatus.CANCELLED]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"failure_threshold": 0}, r"failure_threshold=0\).*pass an int >= 1"),
        ({"half_open_max_calls": 0}, r"half_open_max_calls=0\).*pass an int >= 1"),
        ({"recovery_timeout": 0}, r"recovery_timeout=0\) must be a finite number of seconds > 0"),
        ({"recovery_timeout": -5}, r"recovery_timeout=-5\) must be a finite.*=30\.0"),
        # NaN used to keep the breaker open for good (no time is >= NaN)
        ({"recovery_timeout": math.nan}, r"recovery_timeout=nan\) must be a finite number"),
        # so would an infinite one: refused too (``reset()`` closes a breaker by hand)
        ({"recovery_timeout": math.inf}, r"recovery_timeout=inf\) must be a finite number"),
    ],
)
def test_bad_breaker_values_are_refused_naming_the_argument_and_the_fix(
    kwargs: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        CircuitBreaker("x", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"failure_threshold": True}, r"failure_threshold=True\).*pass an int, not a bool"),
        ({"failure_threshold": 2.5}, r"failure_threshold=2\.5\).*pass an int, not a float"),
        ({"half_open_max_calls": True}, r"half_open_max_calls=True\).*not a bool"),
        ({"recovery_timeout": "30"}, r"recovery_timeout='30'\) is a number of seconds > 0"),
        ({"recovery_timeout": None}, r"recovery_timeout=None\) is a number of seconds > 0"),
        ({"clock": 5.0}, r"clock=5\.0\) must be a function returning seconds"),
    ],
)
def test_wrong_breaker_types_are_type_errors_naming_the_argument_and_the_fix(
    kwargs: dict, match: str
) -> None:
    with pytest.raises(TypeError, match=match):
        CircuitBreaker("x", **kwargs)


@pytest.mark.parametrize("name", [123, None, b"search-api", ("search-api",)])
def test_a_breaker_name_that_is_not_a_str_is_a_type_error(name: object) -> None:
    # it labels the breaker's metrics: a non-str name used to break every Prometheus scrape
    with pytest.raises(TypeError, match=r"a breaker's name is a non-empty str") as info:
        CircuitBreaker(name)  # type: ignore[arg-type]
    assert f"CircuitBreaker(name={name!r})" in str(info.value)
    assert 'CircuitBreaker("search-api")' in str(info.value)


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_breaker_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"a breaker's name is a non-empty str"):
        CircuitBreaker(name)


def test_a_fractional_recovery_timeout_is_accepted() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("api", failure_threshold=1, recovery_timeout=0.25, clock=clock)
    breaker.acquire().failure()  # type: ignore[union-attr]
    assert breaker.state is CircuitState.OPEN
    clock.now = 0.25
    assert breaker.state is CircuitState.HALF_OPEN
