"""Retry policy: which failures to retry, how often, and how long to wait in between."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry failed attempts with exponential backoff and jitter.

    The delay before attempt ``n + 1`` is ``initial_delay * backoff ** (n - 1)``, capped at
    ``max_delay``, then spread by ``±jitter`` (a share of the delay) so that many items failing
    together do not retry in lockstep. An attempt's failure is retried when its error is an
    instance of ``retry_on`` and not of ``exclude``; cancellation is never retried. The worker
    slot is released during the backoff sleep.

    Example::

        retry = RetryPolicy(max_attempts=4, initial_delay=0.2, retry_on=(ConnectionError,))
        async with state.parallel(max_workers=8, retry=retry) as p:
            for url in urls:
                p.add(lambda url=url: fetch(url))   # a callable, so each attempt is fresh
    """

    max_attempts: int = 3
    initial_delay: float = 0.1
    backoff: float = 2.0
    max_delay: float = 10.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    exclude: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(
                f"RetryPolicy(max_attempts={self.max_attempts!r}): it counts every attempt, "
                "the first included; use 1 for no retry"
            )
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must be >= 0 seconds")
        if self.backoff < 1:
            raise ValueError(
                f"RetryPolicy(backoff={self.backoff!r}) must be >= 1 (1 keeps the delay constant)"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"RetryPolicy(jitter={self.jitter!r}) is a share from 0 to 1")
        for name in ("retry_on", "exclude"):
            value = getattr(self, name)
            if isinstance(value, type):
                object.__setattr__(self, name, (value,))
            elif not all(isinstance(t, type) and issubclass(t, BaseException) for t in value):
                raise TypeError(f"RetryPolicy({name}=...) takes exception classes, got {value!r}")

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

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the failure of attempt number ``attempt`` (1-based)."""
        base = min(self.initial_delay * self.backoff ** (attempt - 1), self.max_delay)
        if self.jitter and base:
            spread = (rng or random).uniform(-self.jitter, self.jitter)
            base = max(0.0, base * (1 + spread))
        return base
