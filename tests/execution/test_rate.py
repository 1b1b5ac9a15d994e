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
