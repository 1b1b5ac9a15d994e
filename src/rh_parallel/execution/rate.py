"""Provider backpressure: shared rate limits, ``Retry-After`` hints, adaptive concurrency.

``RateLimit`` spaces item starts at ``rate`` per ``per`` seconds across everything that
shares it (one per provider or API key, like a breaker). The bucket is aiolimiter's
``AsyncLimiter`` (a well-kept leaky bucket), sized to one start at a time so no window of
``per`` seconds ever sees more than ``rate`` starts; one bucket per running loop, since a
state serves successive ``asyncio.run()`` calls. A 429 with a ``Retry-After`` hint pauses the
limit for every group that shares it.

``AdaptiveLimit`` finds a provider's capacity by itself: additive increase on success,
multiplicative decrease on rate-limit errors, within ``[min, max]``.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from typing import TYPE_CHECKING, Any

from rh_parallel.execution.checks import check_count, check_real, show

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter

__all__ = ["AdaptiveLimit", "RateLimit", "is_rate_limited", "retry_after"]


def _positive(owner: str, name: str, value: Any, example: str) -> float:
    number = check_real(owner, name, value, "a finite number > 0", example)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(
            f"{owner}({name}={show(value)}) must be a finite number > 0; pass e.g. {name}={example}"
        )
    return number


class RateLimit:
    """At most ``rate`` item starts per ``per`` seconds, across every group (and state) that
    shares this instance. An item waits for the rate before it runs, holding no global slot.

    Example::

        openai = RateLimit(10, per=1.0, name="openai")     # 10 requests a second
        async with state.parallel(20, rate_limit=openai) as p: ...
    """

    __slots__ = ("_buckets", "_paused_until", "name", "per", "rate")

    def __init__(self, rate: float, per: float = 1.0, *, name: str | None = None) -> None:
        self.rate = _positive("RateLimit", "rate", rate, "10")
        self.per = _positive("RateLimit", "per", per, "1.0")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"RateLimit(name={show(name)}): a name is a non-empty string")
        self.name = name or f"{self.rate:g}/{self.per:g}s"
        self._buckets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncLimiter] = (
            weakref.WeakKeyDictionary()
        )
        self._paused_until = 0.0  # time.monotonic(): a Retry-After holds every start until then

    @property
    def interval(self) -> float:
        """Seconds between two starts."""
        return self.per / self.rate

    def _bucket(self) -> AsyncLimiter:
        loop = asyncio.get_running_loop()
        bucket = self._buckets.get(loop)
        if bucket is None:
            from aiolimiter import AsyncLimiter  # loaded by the first limit used, not at import

            bucket = self._buckets[loop] = AsyncLimiter(1, self.interval)
        return bucket

    def ready(self) -> bool:
        """Whether a start may happen now without waiting."""
        return time.monotonic() >= self._paused_until and self._bucket().has_capacity()

    async def wait(self) -> float:
        """Wait for this limit's next start; the seconds waited."""
        began = time.monotonic()
        paused = self._paused_until - began
        if paused > 0:
            await asyncio.sleep(paused)
        await self._bucket().acquire()
        return time.monotonic() - began

    def pause(self, seconds: float) -> None:
        """Hold every start for ``seconds`` (a provider answered 429 with ``Retry-After``)."""
        if seconds > 0 and math.isfinite(seconds):
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def __repr__(self) -> str:
        return f"RateLimit({self.rate:g}, per={self.per:g}, name={self.name!r})"


def retry_after(error: BaseException | None) -> float | None:
    """The retry-after hint an error carries, in seconds: an attribute ``retry_after``, or the
    ``Retry-After`` (or ``retry-after-ms``) header of an HTTP response it holds, in seconds or
    as an HTTP date (httpx and openai SDK errors carry ``.response``)."""
    if error is None:
        return None
    hint = getattr(error, "retry_after", None)
    if isinstance(hint, int | float) and not isinstance(hint, bool):
        return float(hint) if math.isfinite(hint) and hint >= 0 else None
    headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        import email.utils  # an HTTP date: rare, and the module costs ms at import

        try:
            when = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def is_rate_limited(error: BaseException | None, classes: tuple[type[BaseException], ...]) -> bool:
    """Whether ``error`` says "slow down": an instance of ``classes``, or an error holding an
    HTTP response with status 429 (httpx, the openai SDK), or with ``status_code == 429``."""
    if error is None:
        return False
    if classes and isinstance(error, classes):
        return True
    status = getattr(error, "status_code", None)
    if status is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
    return status == 429


class AdaptiveLimit:
    """A concurrency limit that finds a provider's capacity: usable wherever ``max_workers``
    is. It starts at ``initial``, grows by one after a limit's worth of successes (additive
    increase) and halves on a rate-limit error (an HTTP 429, or an instance of a class in
    ``decrease_on``), at most once per limit's worth of completions, never leaving
    ``[min, max]``. ``limit`` is the current value (shown as ``rh_parallel_workers_limit``).

    Example::

        async with state.parallel(AdaptiveLimit(initial=8, min=1, max=64), ...) as p: ...
    """

    __slots__ = ("_since_decrease", "_successes", "decrease_on", "limit", "max", "min")

    def __init__(
        self,
        initial: int = 8,
        min: int = 1,
        max: int = 64,
        decrease_on: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.min = check_count("AdaptiveLimit", "min", min, "the smallest limit")
        self.max = check_count("AdaptiveLimit", "max", max, "the largest limit")
        initial = check_count("AdaptiveLimit", "initial", initial, "the limit to start at")
        if not self.min <= initial <= self.max:
            raise ValueError(
                f"AdaptiveLimit(initial={initial}, min={self.min}, max={self.max}): initial "
                "must lie between min and max"
            )
        if isinstance(decrease_on, type):
            decrease_on = (decrease_on,)
        if not isinstance(decrease_on, tuple) or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in decrease_on
        ):
            raise TypeError(
                f"AdaptiveLimit(decrease_on={show(decrease_on)}) takes a tuple of exception "
                "classes, e.g. decrease_on=(openai.RateLimitError,)"
            )
        self.decrease_on = decrease_on
        self.limit: int = initial
        """The limit now: how many items may run at once (``initial`` until it adapts)."""
        self._successes = 0
        self._since_decrease = math.inf  # completions since the last decrease

    def observe(self, error: BaseException | None) -> int | None:
        """Learn from one ended attempt (``error`` None: a success): the new limit when it
        changes, else ``None``."""
        self._since_decrease += 1
        if is_rate_limited(error, self.decrease_on):
            self._successes = 0
            if self._since_decrease <= self.limit:
                return None  # one decrease per round of calls: 429s arrive in bursts
            self._since_decrease = 0
            return self._set(self.limit // 2)
        if error is None:
            self._successes += 1
            if self._successes >= self.limit:
                self._successes = 0
                return self._set(self.limit + 1)
        return None

    def _set(self, limit: int) -> int | None:
        limit = min(self.max, max(self.min, limit))
        if limit == self.limit:
            return None
        self.limit = limit
        return limit

    def __repr__(self) -> str:
        return f"AdaptiveLimit(limit={self.limit}, min={self.min}, max={self.max})"
