"""The enumerations shared by every layer: event kinds and lifecycle statuses."""

from __future__ import annotations

from enum import EnumType, StrEnum
from typing import TYPE_CHECKING, Any

from rh_parallel._old_names import install

__all__ = ["ErrorStrategy", "EventType", "ExecutionStatus", "GroupStatus", "ResultStatus"]


class _Renamed(EnumType):
    """Enums with members RH-Agents and the specification named otherwise. Their old names
    are descriptors put on the class (``rh_parallel._old_names``): a renamed one warns and
    gives the new member, a removed one raises an AttributeError naming its replacement (a
    KeyError for ``ErrorStrategy["..."]``). No ``__getattr__`` from Python 3.12 on, where it
    would slow every member lookup."""

    if not TYPE_CHECKING:  # type checkers keep refusing unknown members
        if hasattr(EnumType, "__getattr__"):  # Python 3.11 has one: it must not hide the
            # old names' errors (it runs after theirs) behind a bare AttributeError

            def __getattr__(cls, name: str) -> Any:
                member = cls.__dict__.get("_member_map_", {}).get(name)
                if member is not None:  # a member Python 3.11 keeps out of the class dict
                    return member
                return type.__getattribute__(cls, name)  # an old name's error, or Python's

        def __getitem__(cls, name: str) -> Any:  # ErrorStrategy["COLLECT_ALL"]: an old name
            member = cls._member_map_.get(name)  # read from a config file, say
            if member is not None:
                return member
            from rh_parallel import _migration

            return _migration.member_item(cls, name)


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

    @classmethod
    def _missing_(cls, value: object) -> Any:
        from rh_parallel import _migration

        return _migration.missing_value(cls, value)  # RH-Agents' "interrupted": names the fix


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


install(ExecutionStatus)  # INTERRUPTED, ...: an AttributeError naming the replacement
install(ErrorStrategy)  # COLLECT_ALL: FAIL_SLOW, with a DeprecationWarning
