"""Rate limits, Retry-After hints and the adaptive limit, as units."""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from typing import Any

import pytest

from rh_parallel.execution.rate import AdaptiveLimit, RateLimit, is_rate_limited, retry_after


def most_in_any_window(times: list[float], window: float) -> int:
    """The most timestamps that fall in one half-open window of ``window`` seconds."""
    times = sorted(times)
    most = 0
    for i, start in enumerate(times):
        most = max(most, sum(1 for t in times[i:] if t < start + window))
    return most


async def test_a_rate_limit_spaces_starts_across_tasks() -> None:
    limit = RateLimit(5, per=0.2)
    starts: list[float] = []

    async def start() -> None:
        await limit.wait()
        starts.append(time.monotonic())

    await asyncio.gather(*(start() for _ in range(12)))
    # measured after the fact: allow a tenth of an interval for the loop's own latency
    assert most_in_any_window(starts, 0.2 - limit.interval * 0.1) <= 5


async def test_a_pause_holds_every_start() -> None:
    limit = RateLimit(1000)
    await limit.wait()
    limit.pause(0.05)
    assert not limit.ready()
    waited = await limit.wait()
    assert waited >= 0.04


def test_a_rate_limit_serves_successive_event_loops() -> None:
    limit = RateLimit(1000)
    for _ in range(2):
        asyncio.run(limit.wait())  # no "reused across loops" warning (warnings are errors)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rate": 0}, ValueError, r"rate=0\) must be a finite number > 0"),
        ({"rate": -1}, ValueError, "rate=-1"),
        ({"rate": math.nan}, ValueError, "rate=nan"),
        ({"rate": math.inf}, ValueError, "rate=inf"),
        ({"rate": True}, TypeError, "rate=True"),
        ({"rate": "10"}, TypeError, "rate='10'"),
        ({"rate": 1, "per": 0}, ValueError, "per=0"),
        ({"rate": 1, "name": ""}, TypeError, "name=''"),
    ],
)
def test_bad_rates_are_refused_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        RateLimit(**kwargs)


class Response:
    def __init__(self, status_code: int, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.headers = headers


class HTTPError(Exception):
    def __init__(self, status: int, **headers: str) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status, {k.replace("_", "-"): v for k, v in headers.items()})


class Hinted(Exception):
    retry_after = 2.5


def test_retry_after_hints_in_every_form() -> None:
    assert retry_after(Hinted()) == 2.5
    assert retry_after(HTTPError(429, retry_after="3")) == 3.0
    assert retry_after(HTTPError(429, retry_after_ms="1500")) == 1.5
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after(HTTPError(429, retry_after=future)) or 0) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert retry_after(HTTPError(503, retry_after=past)) == 0.0
    assert retry_after(HTTPError(429, retry_after="soon")) is None
    assert retry_after(HTTPError(429)) is None
    assert retry_after(ValueError("no hint")) is None and retry_after(None) is None


def test_rate_limited_errors_are_recognized() -> None:
    class Mine(Exception):
        pass

    assert is_rate_limited(HTTPError(429), ())
    assert not is_rate_limited(HTTPError(500), ())
    assert is_rate_limited(Mine(), (Mine,)) and not is_rate_limited(Mine(), ())


def test_adaptive_limit_increases_additively_and_halves_once_per_round() -> None:
    limit = AdaptiveLimit(initial=4, min=1, max=6)
    changes = [limit.observe(None) for _ in range(4)]
    assert changes == [None, None, None, 5] and limit.limit == 5
    for _ in range(5):
        limit.observe(None)
    assert limit.limit == 6
    for _ in range(20):
        limit.observe(None)
    assert limit.limit == 6  # never above max
    burst = [limit.observe(HTTPError(429)) for _ in range(4)]
    assert burst == [3, None, None, None]  # a burst of 429s is one signal
    for _ in range(10):
        limit.observe(HTTPError(429))
    assert limit.limit == 1  # never below min
    limit.observe(ValueError("not a rate limit"))
    assert limit.limit == 1


def test_adaptive_limit_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="initial must lie between min and max"):
        AdaptiveLimit(initial=10, min=1, max=5)
    with pytest.raises(ValueError, match="min=0"):
        AdaptiveLimit(initial=1, min=0)
    with pytest.raises(TypeError, match="decrease_on"):
        AdaptiveLimit(decrease_on=["429"])  # type: ignore[arg-type]


# -- in groups --------------------------------------------------------------------------


async def test_a_shared_rate_limit_spaces_the_starts_of_every_group() -> None:
    from rh_parallel import ExecutionState

    limit = RateLimit(10, per=0.5, name="api")
    state = ExecutionState(observers=[])
    starts: list[float] = []

    async def call() -> None:
        starts.append(time.monotonic())

    async def group() -> None:
        async with state.parallel(8, rate_limit=limit) as p:
            for _ in range(8):
                p.add(call)

    await asyncio.gather(group(), group())
    assert len(starts) == 16
    assert most_in_any_window(starts, 0.5 - limit.interval * 0.1) <= 10


async def test_waiting_for_a_rate_holds_no_global_slot() -> None:
    """One global slot; group A's second item waits a long time for its rate; group B (no
    rate) gets the slot meanwhile and finishes."""
    from rh_parallel import ExecutionState

    state = ExecutionState(observers=[], global_max_workers=1)
    slow = RateLimit(1, per=60, name="slow")
    b_done = asyncio.Event()

    async def noop() -> None:
        return None

    async def a_group() -> None:
        async with state.parallel(2, rate_limit=slow) as a:
            a.add(noop)
            a.add(noop)  # waits ~60 s for the rate

    async def b_group() -> None:
        async with state.parallel(2) as b:
            for _ in range(3):
                b.add(noop)
        b_done.set()

    waiting = asyncio.ensure_future(a_group())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(b_group(), 10)
    assert b_done.is_set() and not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert state.global_limiter is not None and state.global_limiter.free == 1


async def test_a_retry_after_hint_delays_the_next_attempt_and_pauses_the_limit() -> None:
    from rh_parallel import ExecutionState, RetryPolicy

    state = ExecutionState(observers=[])
    limit = RateLimit(1000, name="provider")
    attempts: list[float] = []

    async def throttled() -> str:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise Hinted()  # retry_after = 2.5 s is too long for a test: patched below
        return "ok"

    Hinted.retry_after = 0.3
    try:
        retry = RetryPolicy(max_attempts=2, initial_delay=0.001, respect_retry_after=True)
        async with state.parallel(2, retry=retry, rate_limit=limit) as p:
            p.add(throttled)
        (result,) = await p.gather()
    finally:
        Hinted.retry_after = 2.5
    assert result.ok and result.attempts == 2
    assert attempts[1] - attempts[0] >= 0.29  # at least the hint (a lower bound)


async def test_retry_after_is_ignored_unless_asked() -> None:
    from rh_parallel import ExecutionState, RetryPolicy

    state = ExecutionState(observers=[])
    attempts: list[float] = []

    async def throttled() -> str:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise Hinted()  # asks for 2.5 s
        return "ok"

    retry = RetryPolicy(max_attempts=2, initial_delay=0.001, jitter=0)
    async with state.parallel(1, retry=retry) as p:
        p.add(throttled)
    await p.gather()
    assert attempts[1] - attempts[0] < 2.5


async def test_a_waiting_item_says_why_on_the_bus() -> None:
    from rh_parallel import EventBus, ExecutionEvent, ExecutionState
    from rh_parallel.testing import RecordCapture

    bus = EventBus()
    capture = RecordCapture(bus)
    state = ExecutionState(event_bus=bus, observers=[])
    limit = RateLimit(20, name="search-api")

    async def noop() -> None:
        return None

    async with state.parallel(4, rate_limit=limit) as p:
        for _ in range(3):
            p.add(noop)
    await state.aclose()
    waiting = [
        r
        for r in capture.records
        if isinstance(r, ExecutionEvent) and r.execution_status == "waiting"
    ]
    assert len(waiting) == 2  # the first start does not wait
    assert all(r.message == "waiting for rate limit 'search-api'" for r in waiting)


class TooMany(Exception):
    """A provider's 429, as an HTTP client raises it."""

    def __init__(self) -> None:
        super().__init__("HTTP 429")
        self.response = Response(429, {})


async def test_an_adaptive_limit_settles_near_the_capacity() -> None:
    """A provider that takes 3 calls at once and answers 429 above: the adaptive limit comes
    down from 8 and the group finishes with fewer 429s than a fixed limit of 8."""
    from rh_parallel import ExecutionState, RetryPolicy

    async def run(max_workers: Any) -> tuple[int, int]:
        state = ExecutionState(observers=[])
        running = refused = 0
        limits: list[int] = []  # the group's limit as each attempt starts

        async def call() -> str:
            nonlocal running, refused
            limits.append(p.group.max_workers)
            running += 1
            try:
                await asyncio.sleep(0.002)
                if running > 3:
                    refused += 1
                    raise TooMany()
                return "ok"
            finally:
                running -= 1

        retry = RetryPolicy(max_attempts=50, initial_delay=0.002, max_delay=0.01)
        async with state.parallel(max_workers, retry=retry) as p:
            for _ in range(60):
                p.add(call)
        results = await p.gather()
        assert all(r.ok for r in results)
        return refused, min(limits)

    adaptive = AdaptiveLimit(initial=8, min=1, max=16)
    refused_adaptive, lowest = await run(adaptive)
    refused_fixed, _ = await run(8)
    # the group came down to the provider's capacity (as the last items finish without
    # contention, the limit may climb back by one: additive increase)
    assert lowest <= 3
    assert refused_adaptive < refused_fixed
