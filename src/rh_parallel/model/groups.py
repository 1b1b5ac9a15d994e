"""The live state of one parallel group, and the record a group publishes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rh_parallel.model.enums import GroupStatus

__all__ = ["GroupError", "ParallelEventGroup"]


class GroupError(BaseModel):
    """One failed item of a group, as printers list it."""

    model_config = ConfigDict(extra="forbid")

    index: int
    name: str
    status: str
    error_type: str | None = None
    error_message: str | None = None


class ParallelEventGroup(BaseModel):
    """A parallel group: its identity, live counters and final status.

    Once the group has ended, ``completed + failed + cancelled == total``: ``completed`` counts
    ok results, ``cancelled`` the cancelled ones and ``failed`` every other status (failed,
    timed_out, rejected, skipped); ``recovered`` and ``cached`` count the completed items whose
    value came from the run store or the cache. ``group_id`` is derived from the run id and the
    group's address (its parent, name and ordinal there), so a resumed run gets the same ids and
    another run different ones.
    """

    model_config = ConfigDict(extra="forbid")

    group_id: str
    run_id: str | None = None
    name: str = "parallel"
    address: str = ""
    parent_group_id: str | None = None
    depth: int = 0
    max_workers: int = 1
    total: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    recovered: int = 0
    cached: int = 0
    retries: int = 0
    status: GroupStatus = GroupStatus.PENDING
    start_time: float | None = None
    end_time: float | None = None
    duration: float | None = None
    errors: list[GroupError] = Field(default_factory=list)
    error_strategy: str = "fail_slow"
    trace_id: str | None = None
    span_id: str | None = None

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
        group = cls.__new__(cls)
        object.__setattr__(group, "__dict__", values)
        object.__setattr__(group, "__pydantic_fields_set__", set(fields))
        object.__setattr__(group, "__pydantic_extra__", None)
        object.__setattr__(group, "__pydantic_private__", None)
        return group

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
