"""A group's options, checked up front with messages that name the argument and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rh_parallel.execution.breaker import CircuitBreaker
from rh_parallel.execution.checks import check_seconds
from rh_parallel.execution.executors import ItemExecutor, as_item_executor
from rh_parallel.execution.rate import AdaptiveLimit, RateLimit
from rh_parallel.execution.retry import RetryPolicy
from rh_parallel.model.enums import ErrorStrategy

__all__ = ["GroupOptions"]


@dataclass(frozen=True, slots=True)
class GroupOptions:
    """Everything ``state.parallel()`` accepts besides the name."""

    max_workers: int | AdaptiveLimit = 5
    error_strategy: ErrorStrategy = ErrorStrategy.FAIL_SLOW
    failure_threshold: int | float | None = None
    timeout: float | None = None
    event_timeout: float | None = None
    retry: RetryPolicy | None = None
    circuit_breaker: CircuitBreaker | None = None
    executor: ItemExecutor | Any = None  # what the user gave; an ItemExecutor once checked
    rate_limit: RateLimit | None = None

    def __post_init__(self) -> None:
        workers = self.max_workers
        if isinstance(workers, AdaptiveLimit):
            workers = workers.limit
        elif isinstance(workers, bool) or not isinstance(workers, int):
            raise TypeError(
                f"max_workers takes an int or an AdaptiveLimit(initial, min, max), got {workers!r}"
            )
        if workers < 1:
            raise ValueError(f"max_workers={workers} must be >= 1 (1 runs the items one at a time)")
        strategy = self.error_strategy
        if not isinstance(strategy, ErrorStrategy):
            try:
                object.__setattr__(self, "error_strategy", ErrorStrategy(strategy))
            except ValueError:
                choices = ", ".join(f"ErrorStrategy.{s.name}" for s in ErrorStrategy)
                raise ValueError(f"error_strategy={strategy!r}; use one of {choices}") from None
        self._check_threshold()
        for name in ("timeout", "event_timeout"):
            if getattr(self, name) is not None:  # None: no limit
                check_seconds("state.parallel", name, getattr(self, name), positive=True)
        if self.retry is not None and not isinstance(self.retry, RetryPolicy):
            raise TypeError(f"retry takes a RetryPolicy(...), got {self.retry!r}")
        if self.circuit_breaker is not None and not isinstance(
            self.circuit_breaker, CircuitBreaker
        ):
            raise TypeError(
                f"circuit_breaker takes a CircuitBreaker(...), got {self.circuit_breaker!r}"
            )
        if self.executor is not None:
            object.__setattr__(self, "executor", as_item_executor(self.executor))
        if self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            raise TypeError(
                f"rate_limit takes a RateLimit(rate, per=1.0, name=...), got {self.rate_limit!r}"
            )

    @property
    def workers(self) -> int:
        """The concurrency limit now (an adaptive limit's current value)."""
        workers = self.max_workers
        return workers.limit if isinstance(workers, AdaptiveLimit) else workers

    @property
    def adaptive(self) -> AdaptiveLimit | None:
        workers = self.max_workers
        return workers if isinstance(workers, AdaptiveLimit) else None

    def _check_threshold(self) -> None:
        threshold = self.failure_threshold
        if self.error_strategy is ErrorStrategy.FAIL_THRESHOLD and threshold is None:
            raise ValueError(
                "error_strategy=FAIL_THRESHOLD needs failure_threshold=N (a count) or a share "
                "in (0, 1], e.g. failure_threshold=0.2"
            )
        if threshold is None:
            return
        if self.error_strategy is ErrorStrategy.FAIL_FAST:
            raise ValueError(
                f"error_strategy=FAIL_FAST stops at the first failure, so failure_threshold="
                f"{threshold!r} would never apply; pass one of them (failure_threshold alone "
                "means FAIL_THRESHOLD)"
            )
        if self.error_strategy is not ErrorStrategy.FAIL_THRESHOLD:
            object.__setattr__(self, "error_strategy", ErrorStrategy.FAIL_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise TypeError(f"failure_threshold takes a count or a share, got {threshold!r}")
        if isinstance(threshold, int) and threshold < 1:
            raise ValueError(
                f"failure_threshold={threshold} must be >= 1 (a count) or a float in (0, 1]"
            )
        if isinstance(threshold, float) and not 0 < threshold <= 1:
            raise ValueError(
                f"failure_threshold={threshold} as a float is a share of the group, in (0, 1]; "
                "pass an int for a count"
            )
