"""Stopping a group: when a failure stops it, what each unfinished item becomes, what it raises.

Every rule about an early end is decided here, and only decided: the scheduler asks and acts.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rh_parallel.exceptions import FailureThresholdExceeded, GroupTimeoutError, RhParallelError
from rh_parallel.model.enums import ErrorStrategy, GroupStatus, ResultStatus
from rh_parallel.model.results import ExecutionResult

__all__ = [
    "Stop",
    "StopReason",
    "failure_stop",
    "group_status",
    "outcome_error",
    "shown_in_stream",
    "stop_for",
    "stopped_outcome",
    "threshold_count",
]


class StopReason(StrEnum):
    """Why a group stopped before every item ran."""

    CANCELLED = "cancelled"  # cancelled from outside: its awaiting task, p.cancel(), the block
    TIMEOUT = "timeout"  # the group's timeout passed
    FAIL_FAST = "fail_fast"  # the first failure under FAIL_FAST
    THRESHOLD = "threshold"  # the failure threshold was reached
    ABORTED = "aborted"  # an item raised a BaseException that is not an Exception


@dataclass(frozen=True, slots=True)
class Stop:
    """A decided stop: the status and error every unfinished item gets."""

    reason: StopReason
    status: ResultStatus
    error: BaseException
    cause: BaseException | None = None  # the timeout error, or the aborting BaseException


def stop_for(
    reason: StopReason,
    group_name: str,
    *,
    timeout: float | None = None,
    cause: BaseException | None = None,
) -> Stop:
    """What stopping a group for ``reason`` does to the items that have not finished."""
    if reason is StopReason.TIMEOUT:
        error = GroupTimeoutError(f"group {group_name!r} passed its timeout of {timeout}s")
        return Stop(reason, ResultStatus.TIMED_OUT, error, error)
    if reason is StopReason.CANCELLED:
        message = f"group {group_name!r} was cancelled"
    elif reason is StopReason.ABORTED:
        message = f"group {group_name!r} stopped: an item raised {type(cause).__name__}"
    else:
        message = f"group {group_name!r} stopped early ({reason.value})"
    return Stop(reason, ResultStatus.CANCELLED, asyncio.CancelledError(message), cause)


def stopped_outcome(
    stop: Stop | None, cancelled: BaseException
) -> tuple[ResultStatus, BaseException]:
    """The status and error of an item whose run was cut short: the stop's when the group is
    stopping, else ``cancelled`` (the item alone was cancelled)."""
    if stop is None:
        return ResultStatus.CANCELLED, cancelled
    return stop.status, stop.error


def threshold_count(threshold: int | float | None, total: int) -> int:
    """The number of failures that stops a group (0: no threshold)."""
    if threshold is None:
        return 0
    if isinstance(threshold, float):
        return max(1, math.ceil(threshold * total))
    return threshold


def failure_stop(strategy: ErrorStrategy, failed: int, threshold: int) -> StopReason | None:
    """Whether a group with ``failed`` failures so far stops, under its error strategy."""
    if strategy is ErrorStrategy.FAIL_FAST:
        return StopReason.FAIL_FAST
    if strategy is ErrorStrategy.FAIL_THRESHOLD and failed >= threshold:
        return StopReason.THRESHOLD
    return None


def group_status(stop: Stop | None, failed: int, cancelled: int) -> GroupStatus:
    """A group's final status."""
    if stop is not None and stop.reason in (StopReason.CANCELLED, StopReason.ABORTED):
        return GroupStatus.CANCELLED
    if stop is not None or failed or cancelled:
        return GroupStatus.FAILED
    return GroupStatus.COMPLETED


def shown_in_stream(stop: Stop | None, stopped_item: bool) -> bool:
    """Whether ``stream()`` yields a result: not those a FAIL_FAST or threshold stop made (the
    stream raises instead); a timeout's ``timed_out`` results are yielded."""
    return not stopped_item or stop is None or stop.reason is StopReason.TIMEOUT


def outcome_error(
    group_name: str,
    stop: Stop | None,
    results: Sequence[ExecutionResult],
    first_failure: ExecutionResult | None,
    failed: int,
    threshold: int,
    abort: BaseException | None = None,
) -> BaseException | None:
    """The exception ``gather()`` raises (``None``: it returns the results).

    A BaseException an item raised (``abort``) wins, also when it came while the group was
    already stopping for another reason, as with ``asyncio.TaskGroup``.
    """
    if abort is not None:
        return abort
    if stop is None:
        return None
    if stop.reason is StopReason.TIMEOUT:
        assert isinstance(stop.cause, GroupTimeoutError)
        stop.cause.results = list(results)
        return stop.cause
    if stop.reason is StopReason.CANCELLED:
        return asyncio.CancelledError(f"group {group_name!r} was cancelled")
    if stop.reason is StopReason.THRESHOLD:
        return FailureThresholdExceeded(
            f"group {group_name!r} reached its failure threshold "
            f"({failed} failed, threshold {threshold})",
            results,
        )
    assert first_failure is not None
    if first_failure.error is not None:
        return first_failure.error
    return RhParallelError(
        f"item {first_failure.name!r} failed ({first_failure.status.value}): "
        f"{first_failure.error_message}"
    )
