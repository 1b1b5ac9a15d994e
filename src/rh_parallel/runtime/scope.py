"""Per-task addressing: where in the execution tree the running code is.

The current :class:`Scope` lives in a ``contextvars.ContextVar``: every item of a group runs in
its own task with its own scope, so concurrent items never see each other's address, and the
ordinals that make addresses unique are counted per parent scope, which makes them
deterministic as long as each scope's own code runs its children in a deterministic order.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rh_parallel.runtime.observer import ItemInfo

__all__ = ["Lease", "NestedRun", "Scope", "current_scope"]


class Lease(Protocol):
    """A worker slot held by the code running in a scope (a global-limit slot).

    Code that waits on a nested group lends its item's lease while it waits (the nested items
    need slots of the same limit), so nested groups cannot deadlock under a global limit.
    """

    def lend(self) -> None: ...

    async def end_loan(self) -> None: ...


class NestedRun(Protocol):
    """A group opened by the code of an item: stopped and awaited when that item ends."""

    def cancel(self) -> None: ...

    async def wait_stopped(self) -> None: ...


KEPT_NAMES = 1024


class Scope:
    """One node of the execution tree: an address plus the ordinals of its children."""

    __slots__ = (
        "_evicted",
        "_opened",
        "_ordinals",
        "address",
        "children",
        "depth",
        "group_id",
        "incomplete",
        "item",
        "lease",
    )

    def __init__(
        self,
        address: str,
        depth: int = 0,
        group_id: str | None = None,
        lease: Lease | None = None,
        item: ItemInfo | None = None,
        children: list[NestedRun] | None = None,
    ) -> None:
        self.address = address
        self.depth = depth
        self.group_id = group_id
        self.lease = lease
        self.item = item  # the item or event whose code runs in this scope (for observers)
        # the groups opened by the group item this scope belongs to (None outside group items)
        self.children = children
        self._ordinals: dict[str, int] | None = None
        self._opened = 0  # children opened here so far, of every name
        self._evicted = False
        # some work under this scope did not complete (a failed event, a group with failures):
        # with a run store, the scope's own item is then not saved, so a resumed run enters it
        # again and runs only what did not complete inside it
        self.incomplete = False

    def child_address(self, name: str) -> str:
        """A new unique, deterministic child address: ``parent/name``, ``parent/name#1``, ...

        At most ``KEPT_NAMES`` names are remembered per scope (a long-lived state must not
        grow with every distinct name). Once one was forgotten, a name not remembered starts
        at the scope's count of children so far, which no earlier child of any name reached:
        addresses stay unique and deterministic.
        """
        ordinals = self._ordinals
        if ordinals is None:
            ordinals = self._ordinals = {}
        ordinal = ordinals.pop(name, None)
        if ordinal is None:
            ordinal = self._opened if self._evicted else 0
            if len(ordinals) >= KEPT_NAMES:
                del ordinals[next(iter(ordinals))]  # the least recently used name
                self._evicted = True
        ordinals[name] = ordinal + 1
        self._opened += 1
        leaf = name if ordinal == 0 else f"{name}#{ordinal}"
        return f"{self.address}/{leaf}" if self.address else leaf


current_scope: ContextVar[Scope | None] = ContextVar("rh_parallel_scope", default=None)
"""The scope of the code running now (``None``: the state's root scope)."""
