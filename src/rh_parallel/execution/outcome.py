"""What a group that ended raises from ``gather()``, by why it stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rh_parallel.exceptions import FailureThresholdExceeded, GroupTimeoutError, RhParallelError
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.model.results import ExecutionResult

__all__ = ["StopReason", "outcome_error"]


class StopReason:
    """Why a group stopped before every item ran."""

    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    FAIL_FAST = "fail_fast"
    THRESHOLD = "threshold"


def outcome_error(
    group: ParallelEventGroup,
    reason: str | None,
    results: Sequence[ExecutionResult],
    error: BaseException | None,
    first_failure: ExecutionResult | None,
    threshold: int,
) -> BaseException | None:
    """The exception ``gather()`` raises (``None``: it returns the results).

    ``error`` is what the group already holds: the GroupTimeoutError made when the timeout
    fired, or a failure of rh-parallel itself.
    """
    if reason == StopReason.TIMEOUT:
        assert isinstance(error, GroupTimeoutError)
        error.results = list(results)
        return error
    if reason == StopReason.CANCELLED:
        return asyncio.CancelledError(f"group {group.name!r} was cancelled")
    if reason == StopReason.THRESHOLD:
        return FailureThresholdExceeded(
            f"group {group.name!r} reached its failure threshold "
            f"({group.failed} failed, threshold {threshold})",
            results,
        )
    if reason == StopReason.FAIL_FAST and first_failure is not None:
        if first_failure.error is not None:
            return first_failure.error
        return RhParallelError(
            f"item {first_failure.name!r} failed ({first_failure.status.value}): "
            f"{first_failure.error_message}"
        )
    return error
