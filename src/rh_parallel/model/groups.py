"""The live state of one parallel group, and the record a group publishes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rh_parallel.model._assemble import assemble
from rh_parallel.model.enums import GroupStatus

__all__ = ["GroupError", "ParallelEventGroup"]


class GroupError(BaseModel):
    """One failed item of a group, as printers list it."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    index: int
    """The item's position in the group, in add order."""
    name: str
    """The item's name: the one given to ``add()``, else its function's or actor's name."""
    status: str
    """How the item ended: ``failed``, ``timed_out``, ``rejected`` or ``skipped`` (a
    :class:`ResultStatus` value)."""
    error_type: str | None = None
    """The exception's class name, as in the item's result."""
    error_message: str | None = None
    """The exception's message, as in the item's result."""


class ParallelEventGroup(BaseModel):
    """A parallel group: its identity, live counters and final status.

    Once the group has ended, ``completed + failed + cancelled == total``: ``completed`` counts
    ok results, ``cancelled`` the cancelled ones and ``failed`` every other status (failed,
    timed_out, rejected, skipped); ``recovered`` and ``cached`` count the completed items whose
    value came from the run store or the cache. ``group_id`` is derived from the run id and the
    group's address (its parent, name and ordinal there), so a resumed run gets the same ids and
    another run different ones.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    group_id: str
    """``grp-`` and 16 hex digits, derived from the run id and the address."""
    run_id: str | None = None
    """The id of the run the group belongs to."""
    name: str = "parallel"
    """The ``name=`` given to ``state.parallel()`` (``parallel`` when none was)."""
    address: str = ""
    """The group's address in the execution tree: ``docs``, ``docs#1``, ``researcher/drafts``."""
    parent_group_id: str | None = None
    """The id of the enclosing group: the one whose item's code opened this group (``None``
    at top level)."""
    depth: int = 0
    """How many items and events enclose the group: 0 at top level."""
    max_workers: int = 1
    """How many items may run at once (with an ``AdaptiveLimit``, its value now)."""
    total: int = 0
    """How many items the group has."""
    completed: int = 0
    """Items that ended ok (``recovered`` and ``cached`` ones included)."""
    failed: int = 0
    """Items that ended neither ok nor cancelled: failed, timed out, rejected or skipped."""
    cancelled: int = 0
    """Items that ended with status ``cancelled``."""
    recovered: int = 0
    """Completed items whose value a run store kept from an earlier run."""
    cached: int = 0
    """Completed items whose value the state's cache served."""
    retries: int = 0
    """Retries made, over all items."""
    status: GroupStatus = GroupStatus.PENDING
    """``pending``, ``running``, then ``completed``, ``failed`` or ``cancelled``."""
    start_time: float | None = None
    """When the group started running, in seconds since the epoch."""
    end_time: float | None = None
    """When the group ended, in seconds since the epoch."""
    duration: float | None = None
    """Seconds from start to end."""
    errors: list[GroupError] = Field(default_factory=list)
    """One entry per failed item (not for cancelled ones), in the order they ended."""
    error_strategy: str = "fail_slow"
    """The group's :class:`ErrorStrategy` value: ``fail_slow``, ``fail_fast`` or
    ``fail_threshold``."""
    trace_id: str | None = None
    """The trace id (hex) of the group's span when it is traced; on a record, else that of
    the span current when it was published (``None`` without one)."""
    span_id: str | None = None
    """The span id (hex) that goes with ``trace_id``."""

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        """An unknown field is an error listing the fields, never silently dropped."""
        if isinstance(data, dict) and not data.keys() <= cls.model_fields.keys():
            from rh_parallel import _migration

            return _migration.check_fields(cls, data, cls.model_fields)
        return data

    if not TYPE_CHECKING:  # type checkers keep refusing unknown attributes

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):  # pydantic's own (private attributes), never an old name
                return super().__getattr__(name)
            from rh_parallel import _migration

            if _migration.lookup("ParallelEventGroup", name) is None:
                return super().__getattr__(name)
            return _migration.attribute(self, "ParallelEventGroup", name)  # execution_time

    @classmethod
    def trusted(cls, **fields: Any) -> ParallelEventGroup:
        """A group from fields the executor already checked, without validation (one per
        group on the hot path; ``ParallelEventGroup(...)`` validates and costs ~3 us)."""
        values = _DEFAULTS.copy()
        values.update(fields)
        values["errors"] = list(fields.get("errors", ()))  # never a shared default list
        return assemble(cls, values, set(fields))

    @property
    def finished(self) -> int:
        """How many items have ended, whatever their status."""
        return self.completed + self.failed + self.cancelled

    @property
    def progress(self) -> float:
        """Share of the group's items that have ended, from 0.0 to 1.0."""
        return self.finished / self.total if self.total else 1.0


_DEFAULTS: dict[str, Any] = {
    name: None if info.is_required() else info.get_default(call_default_factory=True)
    for name, info in ParallelEventGroup.model_fields.items()
}
