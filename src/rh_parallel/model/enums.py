"""The enumerations shared by every layer: event kinds and lifecycle statuses."""

from __future__ import annotations

from enum import EnumType, StrEnum
from typing import TYPE_CHECKING, Any

__all__ = ["ErrorStrategy", "EventType", "ExecutionStatus", "GroupStatus", "ResultStatus"]


class _Renamed(EnumType):
    """Finds members by the names RH-Agents and the specification gave them: a renamed one
    with a DeprecationWarning, a removed one with an AttributeError naming its replacement
    (the table is ``rh_parallel._migration``). Called only when a name is not a member."""

    if not TYPE_CHECKING:  # type checkers keep refusing unknown members

        def __getattr__(cls, name: str) -> Any:
            member = cls.__dict__.get("_member_map_", {}).get(name)
            if member is not None:  # a member Python 3.11 keeps out of the class dict
                return member
            if name.startswith("_"):  # never an old name: Python's own AttributeError
                return type.__getattribute__(cls, name)
            from rh_parallel import _migration

            return _migration.member(cls, name)


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


class ExecutionStatus(StrEnum, metaclass=_Renamed):
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


class ErrorStrategy(StrEnum, metaclass=_Renamed):
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

    @classmethod
    def _missing_(cls, value: object) -> Any:
        from rh_parallel import _migration

        return _migration.missing_value(cls, value)  # "collect_all", with a warning
