"""Retry policy: which failures to retry, how often, and how long to wait in between."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from rh_parallel.execution.checks import check_count, check_real, check_seconds, show

__all__ = ["RetryPolicy"]


def _exception_classes(name: str, value: Any) -> tuple[type[BaseException], ...]:
    """``retry_on`` / ``exclude`` as a tuple of exception classes, or a TypeError with a fix."""
    if isinstance(value, type):
        if issubclass(value, BaseException):
            return _retryable(name, (value,))
    elif isinstance(value, tuple):
        if all(isinstance(t, type) and issubclass(t, BaseException) for t in value):
            return _retryable(name, value)
    elif isinstance(value, (list, set, frozenset)) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        names = ", ".join(t.__name__ for t in value) + ("," if len(value) == 1 else "")
        raise TypeError(
            f"RetryPolicy({name}={show(value)}) takes an exception class or a tuple of them, "
            f"not a {type(value).__name__}; pass a tuple: {name}=({names})"
        )
    raise TypeError(
        f"RetryPolicy({name}={show(value)}) takes an exception class or a tuple of them; "
        f"pass a tuple: {name}=(ConnectionError,)"
    )


def _retryable(
    name: str, classes: tuple[type[BaseException], ...]
) -> tuple[type[BaseException], ...]:
    """Only Exceptions are ever retried: a BaseException that is not one (KeyboardInterrupt,
    CancelledError, ...) stops the group, so naming it in ``retry_on`` is a mistake."""
    if name == "retry_on":
        for cls in classes:
            if not issubclass(cls, Exception):
                raise TypeError(
                    f"RetryPolicy(retry_on=...) names {cls.__name__}, which is never retried: "
                    "it stops the group (cancellation and BaseExceptions always do); name "
                    "Exception subclasses only"
                )
    return classes


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry failed attempts with exponential backoff and jitter.

    The delay before attempt ``n + 1`` is ``initial_delay * backoff ** (n - 1)``, capped at
    ``max_delay``, then spread by ``±jitter`` (a share of the delay) so that many items failing
    together do not retry in lockstep. An attempt's failure is retried when its error is an
    instance of ``retry_on`` and not of ``exclude``; cancellation is never retried. The worker
    slot is released during the backoff sleep. With ``respect_retry_after=True``, a failure
    that carries a retry-after hint (an attribute ``retry_after``, or an HTTP response with a
    ``Retry-After`` header, as httpx and openai SDK errors do) waits at least that long, and
    pauses the rate limits of the item's group for as long.

    Every delay is a finite number of seconds (``max_delay`` included: a retry always wakes
    up), ``backoff`` a finite factor >= 1, ``jitter`` a share from 0 to 1, and
    ``max_attempts`` an int >= 1 of any size. ``retry_on`` and ``exclude`` take an exception
    class or a tuple of them. Anything else is refused at once with the fix in the message.

    Example::

        retry = RetryPolicy(max_attempts=4, initial_delay=0.2, retry_on=(ConnectionError,))
        async with state.parallel(max_workers=8, retry=retry) as p:
            for url in urls:
                p.add(fetch, url)   # a function and its arguments: each attempt is fresh
    """

    max_attempts: int = 3
    initial_delay: float = 0.1
    backoff: float = 2.0
    max_delay: float = 10.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    exclude: tuple[type[BaseException], ...] = field(default=())
    respect_retry_after: bool = False

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        set_(
            "max_attempts",
            check_count(
                "RetryPolicy",
                "max_attempts",
                self.max_attempts,
                "it counts every attempt, the first included; use 1 for no retry",
            ),
        )
        set_(
            "initial_delay",
            check_seconds("RetryPolicy", "initial_delay", self.initial_delay, example="0.1"),
        )
        set_("max_delay", check_seconds("RetryPolicy", "max_delay", self.max_delay, example="10.0"))
        backoff = check_real("RetryPolicy", "backoff", self.backoff, "a growth factor", "2.0")
        if not (math.isfinite(backoff) and backoff >= 1):
            raise ValueError(
                f"RetryPolicy(backoff={show(self.backoff)}) must be a finite number >= 1 "
                "(1 keeps the delay constant); pass e.g. backoff=2.0"
            )
        set_("backoff", backoff)
        jitter = check_real("RetryPolicy", "jitter", self.jitter, "a share from 0 to 1", "0.1")
        if not 0 <= jitter <= 1:  # False for NaN too
            raise ValueError(
                f"RetryPolicy(jitter={show(self.jitter)}) is a share from 0 to 1; "
                "pass e.g. jitter=0.1"
            )
        set_("jitter", jitter)
        set_("retry_on", _exception_classes("retry_on", self.retry_on))
        set_("exclude", _exception_classes("exclude", self.exclude))
        if not isinstance(self.respect_retry_after, bool):
            raise TypeError(
                f"RetryPolicy(respect_retry_after={show(self.respect_retry_after)}) takes True "
                "or False"
            )

    @property
    def retries(self) -> bool:
        """Whether this policy ever runs an item more than once."""
        return self.max_attempts > 1

    def should_retry(self, error: BaseException | None, attempt: int) -> bool:
        """Whether a failure of attempt number ``attempt`` (1-based) gets another attempt."""
        if attempt >= self.max_attempts:
            return False
        if error is None:
            return Exception in self.retry_on
        return isinstance(error, self.retry_on) and not isinstance(error, self.exclude)

    def base_delay(self, attempt: int) -> float:
        """The delay after attempt number ``attempt`` before jitter: never above ``max_delay``,
        never an overflow, for any ``attempt``."""
        initial, cap, backoff = self.initial_delay, self.max_delay, self.backoff
        if initial >= cap:
            return cap
        if initial == 0:
            return 0.0
        steps = attempt - 1
        if steps <= 0 or backoff == 1.0:
            return initial * backoff**steps if steps < 0 else initial
        # the number of steps after which the delay reaches the cap, compared in log space:
        # ``backoff ** steps`` itself overflows a float after ~1,000 steps of 2.0
        if steps >= (math.log(cap) - math.log(initial)) / math.log(backoff):
            return cap
        try:
            grown = initial * backoff**steps
        except OverflowError:  # below the cap but ``backoff ** steps`` alone is out of range
            grown = math.exp(math.log(initial) + steps * math.log(backoff))
        return min(grown, cap)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the failure of attempt number ``attempt`` (1-based)."""
        base = self.base_delay(attempt)
        if self.jitter and base:
            spread = (rng or random).uniform(-self.jitter, self.jitter)
            jittered = max(0.0, base * (1 + spread))
            return jittered if math.isfinite(jittered) else base
        return base
