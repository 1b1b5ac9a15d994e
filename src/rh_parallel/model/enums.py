"""The enumerations shared by every layer: event kinds and lifecycle statuses."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ErrorStrategy", "EventType", "ExecutionStatus", "GroupStatus", "ResultStatus"]


class EventType(StrEnum):
    """What kind of work an event is; it picks the span name and the metric ``kind`` label."""

    AGENT_CALL = "agent_call"
    TOOL_CALL = "tool_call"
    LLM_CALL = "llm_call"
    TASK = "task"

    @property
    def kind(self) -> str:
        """The short name used in metric labels: ``agent``, ``tool``, ``llm`` or ``task``."""
        return _KINDS[self]


_KINDS = {
    EventType.AGENT_CALL: "agent",
    EventType.TOOL_CALL: "tool",
    EventType.LLM_CALL: "llm",
    EventType.TASK: "task",
}


class ExecutionStatus(StrEnum):
    """The status an event record carries at one point of its lifecycle."""

    STARTED = "started"
    WAITING = "waiting"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    RECOVERED = "recovered"


class ResultStatus(StrEnum):
    """How an item ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    RECOVERED = "recovered"

    @property
    def as_execution_status(self) -> ExecutionStatus:
        """The record status matching this terminal result status."""
        return ExecutionStatus(self.value)


class GroupStatus(StrEnum):
    """The lifecycle of a parallel group."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ErrorStrategy(StrEnum):
    """What a group does when an item fails.

    ``FAIL_SLOW`` runs everything and reports failures as results; ``FAIL_FAST`` cancels the
    rest at the first failure and re-raises it; ``FAIL_THRESHOLD`` cancels the rest once
    ``failure_threshold`` failures (a count, or a share of the group) have happened.

    Example::

        async with state.parallel(4, error_strategy=ErrorStrategy.FAIL_FAST) as p:
            ...
        # passing failure_threshold=3 (or 0.25) selects FAIL_THRESHOLD by itself
    """

    FAIL_SLOW = "fail_slow"
    FAIL_FAST = "fail_fast"
    FAIL_THRESHOLD = "fail_threshold"
