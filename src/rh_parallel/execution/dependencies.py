"""Dependencies between the items of a group: references, the graph, and what a result frees.

Decides only: which item a reference names, whether the graph is valid, and which dependents
an ended item makes ready or skipped. The scheduler acts on the answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rh_parallel.execution.items import Item

__all__ = ["check_references", "find_cycle", "link", "released_by", "resolve"]


def check_references(depends_on: Any) -> tuple[str | int, ...]:
    """``depends_on`` as a tuple of names and indices, or a TypeError naming the bad entry."""
    if depends_on is None:
        return ()
    if isinstance(depends_on, str | int) and not isinstance(depends_on, bool):
        return (depends_on,)
    if not isinstance(depends_on, Iterable) or isinstance(depends_on, bytes | dict):
        raise TypeError(
            f"depends_on={depends_on!r}: pass a name, an index, or a list of them, "
            "e.g. depends_on=['fetch', 0]"
        )
    refs = tuple(depends_on)
    for ref in refs:
        if isinstance(ref, bool) or not isinstance(ref, str | int):
            raise TypeError(
                f"depends_on entry {ref!r} ({type(ref).__name__}) is neither an item's name "
                "(str) nor its index (int), as add() returns it"
            )
    return refs


def resolve(
    ref: str | int, items: Sequence[Item], names: dict[str, int], group: str, who: str | None
) -> int:
    """The index ``ref`` names, or a ValueError listing what exists."""
    if isinstance(ref, bool) or not isinstance(ref, str | int):
        raise TypeError(f"items are named by str or int index, got {ref!r}")
    if isinstance(ref, int):
        if 0 <= ref < len(items):
            return ref
    elif ref in names:
        return names[ref]
    where = f"item {who!r} depends on" if who else "there is no item"
    known = ", ".join(repr(n) for n in names) or "none"
    raise ValueError(
        f"{where} {ref!r}, which is not in group {group!r} "
        f"(named items: {known}; indices 0..{len(items) - 1})"
    )


def link(items: Sequence[Item], names: dict[str, int], group: str) -> None:
    """Connect every item to what it depends on; ValueError for an unknown ref or a cycle."""
    for item in items:
        for ref in item.depends_on:
            dependency = items[resolve(ref, items, names, group, item.name)]
            if dependency.dependents is None:
                dependency.dependents = []
            dependency.dependents.append(item)
            item.pending += 1
    cycle = find_cycle(items)
    if cycle:
        raise ValueError(
            f"dependency cycle in group {group!r}: "
            + " -> ".join(repr(items[i].name) for i in cycle)
        )


def released_by(item: Item, ok: bool) -> tuple[list[Item], list[Item]]:
    """The dependents ``item``'s end makes ready (all their dependencies ok) and those it
    skips (a dependency did not complete ok)."""
    ready: list[Item] = []
    skipped: list[Item] = []
    for dependent in item.dependents or ():
        if dependent.finishing:  # ended already (recalled, stopped): nothing to release
            continue
        if ok:
            dependent.pending -= 1
            if dependent.pending == 0:
                ready.append(dependent)
        elif dependent.pending > 0:
            dependent.pending = -1  # marked: skipped once, however many dependencies fail
            skipped.append(dependent)
    return ready, skipped


def find_cycle(items: Sequence[Item]) -> list[int] | None:
    """A dependency cycle as a list of indices (first repeated at the end), or None."""
    white, grey, black = 0, 1, 2
    color = [white] * len(items)
    for root in range(len(items)):
        if color[root] != white:
            continue
        stack: list[tuple[int, int]] = [(root, 0)]
        path = [root]
        color[root] = grey
        while stack:
            node, child_pos = stack[-1]
            dependents = items[node].dependents or []
            if child_pos < len(dependents):
                stack[-1] = (node, child_pos + 1)
                child = dependents[child_pos].index
                if color[child] == grey:
                    return list(reversed([*path[path.index(child) :], child]))
                if color[child] == white:
                    color[child] = grey
                    path.append(child)
                    stack.append((child, 0))
            else:
                color[node] = black
                path.pop()
                stack.pop()
    return None
