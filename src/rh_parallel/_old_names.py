"""Old spellings (RH-Agents', the specification's) as class attributes of the classes that had
them: reading one warns and gives the new attribute, or raises an AttributeError naming it.

A descriptor per old name rather than a ``__getattr__``: a class with ``__getattr__`` pays for
it on every attribute read (CPython no longer specialises them: an ``ExecutionState`` read
took 4x as long, ``bus.publish()`` 40% longer), and an enum class pays on every member lookup
from Python 3.12 on (``ExecutionStatus.STARTED`` 4x, ``ExecutionStatus("started")`` 2x).
This module is cheap to import; the table and the messages are in :mod:`rh_parallel._migration`,
imported only when an old name is read. tests/test_migration.py checks that ``OLD_NAMES`` holds
exactly the table's attribute and member rows.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OLD_NAMES", "OldName", "install", "public_dir"]

OLD_NAMES: dict[str, tuple[str, ...]] = {
    "ExecutionState": (
        "history",
        "log",
        "request_interrupt",
        "parallel_execute_stream",
        "state_id",
        "storage",
        "add_step_result",
        "get_steps_result",
        "get_last_step_result",
        "get_all_steps_results",
        "save_checkpoint",
        "to_snapshot",
        "load_from_state_id",
        "from_snapshot",
        "replay_mode",
        "resume_from_address",
        "set_timeout",
        "cancel_timeout",
        "get_current_address",
        "push_context",
        "pop_context",
        "execution_stack",
    ),
    "EventBus": ("events", "subscribers", "queue"),
    "ErrorStrategy": ("COLLECT_ALL",),
    "ExecutionStatus": ("INTERRUPTED", "CANCELLING", "AWAITING", "HUMAN_INTERVENTION"),
}


class OldName:
    """The old name ``name`` of class ``owner``, read on the class or on an instance."""

    __slots__ = ("name", "owner")

    def __init__(self, owner: str, name: str) -> None:
        self.owner = owner
        self.name = name

    def __get__(self, obj: object, cls: type | None = None) -> Any:
        from rh_parallel import _migration

        return _migration.attribute(cls if obj is None else obj, self.owner, self.name)


def install(cls: type) -> None:
    """Put the old names of ``cls`` (by its name in ``OLD_NAMES``) on it."""
    for name in OLD_NAMES[cls.__name__]:
        setattr(cls, name, OldName(cls.__name__, name))


def public_dir(obj: object) -> list[str]:
    """``dir(obj)`` without the old names, which only warn or raise."""
    old = {
        name
        for klass in type(obj).__mro__
        for name, value in vars(klass).items()
        if isinstance(value, OldName)
    }
    return sorted(name for name in object.__dir__(obj) if name not in old)
