"""Every exception rh-parallel raises on purpose, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rh_parallel.model.results import ExecutionResult

__all__ = [
    "CircuitOpenError",
    "DependencyFailedError",
    "EventTimeoutError",
    "FailureThresholdExceeded",
    "GroupTimeoutError",
    "RhParallelError",
    "StoreError",
    "WorkerLostError",
]


class RhParallelError(Exception):
    """The base of every error rh-parallel raises itself."""


class GroupTimeoutError(RhParallelError, TimeoutError):
    """A group's ``timeout`` passed; ``results`` holds every item's result (unfinished ones
    with status ``timed_out``)."""

    def __init__(self, message: str, results: Sequence[ExecutionResult] = ()) -> None:
        super().__init__(message)
        self.results: list[ExecutionResult] = list(results)
        """Every item's result, in add order; the items the timeout stopped are ``timed_out``."""


class FailureThresholdExceeded(RhParallelError):
    """A ``FAIL_THRESHOLD`` group reached its ``failure_threshold``; ``results`` holds every
    item's result (the ones stopped early with status ``cancelled``)."""

    def __init__(self, message: str, results: Sequence[ExecutionResult] = ()) -> None:
        super().__init__(message)
        self.results: list[ExecutionResult] = list(results)
        """Every item's result, in add order; the items stopped early are ``cancelled``."""


class CircuitOpenError(RhParallelError):
    """A circuit breaker rejected a call without running it."""

    def __init__(self, breaker: str, retry_after: float | None = None) -> None:
        hint = f"; it half-opens in {retry_after:.2f}s" if retry_after is not None else ""
        super().__init__(f"circuit breaker {breaker!r} is open{hint}")
        self.breaker: str = breaker
        """The name of the breaker that rejected the call."""
        self.retry_after: float | None = retry_after
        """Seconds until the breaker half-opens (``None`` when it is half-open already, with
        every probe taken); a ``RetryPolicy(respect_retry_after=True)`` that retries this
        error waits at least that long."""


class DependencyFailedError(RhParallelError):
    """An item was skipped because an item it depends on did not complete ok."""

    def __init__(self, item: str, dependency: str, dependency_status: str) -> None:
        super().__init__(
            f"item {item!r} skipped: its dependency {dependency!r} ended {dependency_status}"
        )
        self.item: str = item
        """The name of the skipped item."""
        self.dependency: str = dependency
        """The name of the dependency that did not complete ok."""
        self.dependency_status: str = dependency_status
        """How the dependency ended: ``failed``, ``timed_out``, ``cancelled``, ..."""


class StoreError(RhParallelError):
    """A run store or cache cannot be used: its path cannot be opened or written, or the file
    is not an rh-parallel store (it is never overwritten then)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path: str | None = path
        """The path of the store or cache file concerned (``None`` when there is none)."""


class WorkerLostError(RhParallelError):
    """The worker process (or Ray worker) running an item died before it returned: the item
    failed, and a retry policy that retries this error runs it again elsewhere."""


class EventTimeoutError(RhParallelError, TimeoutError):
    """An attempt of an item passed the group's ``event_timeout`` (its status: ``timed_out``);
    a ``TimeoutError``, so ``retry_on=(TimeoutError,)`` retries it."""
