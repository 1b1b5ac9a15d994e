"""The outcome of one event or group item."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rh_parallel.model._assemble import assemble
from rh_parallel.model.enums import ResultStatus

__all__ = ["ExecutionResult", "describe"]


class ExecutionResult(BaseModel):
    """What running an event or a group item produced.

    ``ok`` is the one flag to test; ``status`` says how it ended; ``error`` is the exception
    object itself (never serialized), ``error_type`` and ``error_message`` its printable form.
    ``execution_time`` counts seconds spent running (all attempts), ``queue_time`` seconds spent
    waiting for a worker slot. ``cached`` is true for a value served by the state's cache;
    status ``recovered`` marks a value saved by an earlier run under the same run id (its
    ``attempts`` and ``execution_time`` are those of the run that computed it).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", defer_build=True)

    ok: bool
    """Whether it produced a value: true for status ``completed`` and ``recovered``."""
    result: Any = None
    """The value the work returned, when ``ok``."""
    status: ResultStatus = ResultStatus.COMPLETED
    """How it ended: ``completed``, ``recovered``, or ``failed``, ``timed_out``, ``rejected``,
    ``skipped``, ``cancelled``."""
    error: BaseException | None = Field(default=None, exclude=True, repr=False)
    """The exception itself; never serialized, so ``None`` in a result loaded from JSON."""
    error_type: str | None = None
    """The exception's class name, e.g. ``TimeoutError`` (``None`` when ok)."""
    error_message: str | None = None
    """The exception's message, ``str(error)`` (``None`` when ok)."""
    index: int | None = None
    """The item's position in its group, in add order (``None`` for a sequential event)."""
    name: str | None = None
    """The item's name: the one given to ``add()``, else its function's or actor's name."""
    group_id: str | None = None
    """The id of the item's group (``None`` for a sequential event)."""
    attempts: int = 1
    """Attempts made: 0 when the cache served the value; for ``recovered``, the earlier run's."""
    execution_time: float = 0.0
    """Seconds spent running, over all attempts."""
    queue_time: float = 0.0
    """Seconds spent waiting for a worker slot."""
    cached: bool = False
    """Whether the state's cache served the value (the work did not run)."""

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        """RH-Agents' ``erro_message=`` is renamed with a warning; an unknown field is an
        error naming what to use (or listing the fields), never silently dropped."""
        if isinstance(data, dict) and ("ok" not in data or data.keys() - cls.model_fields):
            from rh_parallel import _migration

            if "ok" not in data and cls.model_fields["ok"].is_required():  # a subclass may
                raise ValueError(_migration.message("ExecutionResult.ok"))  # give it a default
            return _migration.check_fields(cls, data, cls.model_fields)
        return data

    if not TYPE_CHECKING:  # type checkers keep refusing unknown attributes

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):  # pydantic's own (private attributes), never an old name
                return super().__getattr__(name)
            from rh_parallel import _migration

            if _migration.lookup("ExecutionResult", name) is None:
                return super().__getattr__(name)
            return _migration.attribute(self, "ExecutionResult", name)  # erro_message, ...

        def __class_getitem__(cls, params: Any) -> Any:
            if cls is not ExecutionResult:  # a generic subclass of the user's: pydantic's own
                return super().__class_getitem__(params)
            from rh_parallel import _migration

            _migration.warn("ExecutionResult[T]")  # RH-Agents' ExecutionResult was generic
            return cls

    @classmethod
    def build(cls, fields: dict[str, Any]) -> ExecutionResult:
        """A result from trusted fields, without validation (the executor's hot path).

        Equivalent to ``model_construct`` for this model's own fields, at a fraction of its
        cost: the executor builds one result per item.
        """
        values = _DEFAULTS.copy()
        values.update(fields)
        return cls.from_complete(values)

    @classmethod
    def from_complete(cls, values: dict[str, Any]) -> ExecutionResult:
        """A result from a dict that has every field already (no defaults, no validation)."""
        return assemble(cls, values, _ALL_FIELDS)

    @classmethod
    def success(cls, result: Any = None, **fields: Any) -> ExecutionResult:
        """A completed result (built without re-validation: the executor's hot path)."""
        fields["ok"] = True
        fields["result"] = result
        return cls.build(fields)

    @classmethod
    def failure(
        cls,
        error: BaseException | None,
        status: ResultStatus = ResultStatus.FAILED,
        **fields: Any,
    ) -> ExecutionResult:
        """A failed result for ``error`` with the given terminal status."""
        fields["ok"] = False
        fields["status"] = status
        fields["error"] = error
        fields["error_type"] = type(error).__name__ if error is not None else None
        fields["error_message"] = describe(error) if error is not None else None
        return cls.build(fields)

    def unwrap(self) -> Any:
        """Return ``result`` when ok, raise the error otherwise (handy in dependents)."""
        if self.ok:
            return self.result
        if self.error is not None:
            raise self.error
        raise RuntimeError(f"item {self.name!r} ended {self.status.value}: {self.error_message}")


def describe(error: BaseException) -> str:
    """``str(error)``, or a stand-in when the exception's own ``__str__`` raises (a broken
    message must not turn a failed result into a crash)."""
    try:
        return str(error)
    except Exception as broken:
        return f"<{type(error).__name__}: str() raised {type(broken).__name__}>"


_DEFAULTS: dict[str, Any] = {
    name: info.get_default(call_default_factory=True)
    for name, info in ExecutionResult.model_fields.items()
    if name != "ok"
}
_ALL_FIELDS = set(ExecutionResult.model_fields)
