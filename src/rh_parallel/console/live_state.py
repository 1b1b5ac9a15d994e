"""What the live view knows: the open groups and top-level events, and the lines to keep.

:class:`LiveState` takes the printer's event dicts one at a time and updates counters in
constant time (no rendering here: frames are drawn on a timer from this state). It also
collects the lines that go above the live area and stay there: every failed item (failed,
timed out, rejected, skipped), every group that ended, every top-level event that ended.
Parents come first in those lines too: before the first line about something inside a group
(or a top-level event), that group's header is written once.

Bounded: an entry per open group (at most ``max_groups``, the oldest dropped past it, as when
an end record never arrives), per running item of an open group, per running top-level event
(at most ``max_events``); ended groups and items leave nothing behind.
"""

from __future__ import annotations

from typing import Any

from rh_parallel.console.renderers import _Base, _indent, label

__all__ = ["FAILURES", "LiveEvent", "LiveGroup", "LiveState"]

FAILURES = frozenset({"failed", "timed_out", "rejected", "skipped"})
_OK = frozenset({"completed", "recovered"})
_TERMINAL = FAILURES | _OK | {"cancelled"}


class LiveEvent:
    """A running top-level (sequential) event."""

    __slots__ = ("address", "header", "kind", "logged", "name", "started")

    def __init__(self, name: str, kind: str, address: str, started: float, header: str) -> None:
        self.name = name
        self.kind = kind
        self.address = address
        self.started = started
        self.header = header
        self.logged = False  # its header line was kept (something inside it was)

    @property
    def enclosing(self) -> None:
        return None  # a top-level event is the outermost


class LiveGroup:
    """An open group: its place in the tree and live counters that add up to ``total``:
    ``ok + failed + cancelled + running + waiting + retrying + queued``."""

    __slots__ = (
        "address",
        "cancelled",
        "children",
        "depth",
        "failed",
        "group_id",
        "label",
        "level",
        "logged",
        "max_workers",
        "ok",
        "opener",
        "order",
        "parent",
        "retries",
        "retrying",
        "running",
        "started",
        "states",
        "total",
        "waiting",
    )

    def __init__(self, event: Any, parent: LiveGroup | None, opener: LiveEvent | None) -> None:
        self.group_id: str = str(event["group_id"])
        self.label = label(event)
        self.address: str = event["address"]
        self.depth = int(event["depth"])
        self.total = int(event["total"])
        self.max_workers = int(event.get("max_workers") or 1)
        self.parent = parent
        self.opener = opener  # the top-level event that opened a top-level group
        self.level: int = 0 if parent is None else parent.level + 1
        self.children: dict[str, LiveGroup] = {}
        self.started = 0.0
        self.order = 0
        self.logged = False
        self.ok = self.failed = self.cancelled = self.retries = 0
        self.running = self.waiting = self.retrying = 0
        self.states: dict[int, str] = {}  # index -> running | waiting | retrying

    @property
    def enclosing(self) -> LiveGroup | LiveEvent | None:
        """What encloses it: its parent group, or the top-level event that opened it."""
        return self.parent if self.parent is not None else self.opener

    @property
    def finished(self) -> int:
        return self.ok + self.failed + self.cancelled

    @property
    def in_flight(self) -> int:
        return self.running + self.waiting + self.retrying

    @property
    def queued(self) -> int:
        return max(self.total - self.finished - self.in_flight, 0)

    def item(self, index: int, status: str) -> None:
        """Move item ``index`` to ``status`` (a record's status)."""
        states = self.states
        before = states.get(index)
        if status in _TERMINAL:
            if before is not None:
                del states[index]
                self._count(before, -1)
            if status in _OK:
                self.ok += 1
            elif status == "cancelled":
                self.cancelled += 1
            else:
                self.failed += 1
            return
        if status == "retrying":
            self.retries += 1
            after = "retrying"
        elif before == "retrying":
            after = "retrying"  # an item in a retry stays there until it ends
        elif status == "waiting":
            after = "waiting"
        else:
            after = "running"
        if after != before:
            if before is not None:
                self._count(before, -1)
            self._count(after, 1)
            states[index] = after

    def _count(self, state: str, n: int) -> None:
        if state == "running":
            self.running += n
        elif state == "waiting":
            self.waiting += n
        else:
            self.retrying += n


class LiveState:
    """The open groups (``groups``, ``roots`` in start order) and running top-level events
    (``events``), updated by :meth:`apply`; ``take_lines()`` hands over the lines to keep."""

    max_groups = 10_000
    max_events = 1_000

    def __init__(self, lines: _Base) -> None:
        self.format = lines
        self.groups: dict[str, LiveGroup] = {}
        self.roots: dict[str, LiveGroup] = {}
        self.events: dict[str, LiveEvent] = {}
        self.lines: list[str] = []
        self._order = 0

    @property
    def idle(self) -> bool:
        """Nothing runs: no open group, no running top-level event."""
        return not self.groups and not self.events

    def take_lines(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines

    def apply(self, event: Any, now: float) -> None:
        kind = event["event"]
        if kind == "item":
            self._item(event)
        elif kind == "group_start":
            self._group_start(event, now)
        elif kind == "group_end":
            self._group_end(event)
        elif kind == "event":
            self._event(event, now)

    # -- items and groups -------------------------------------------------------------------

    def _item(self, event: Any) -> None:
        status = event["status"]
        group = self.groups.get(event["group_id"] or "")
        if group is not None:
            group.item(int(event["parallel_index"] or 0), status)
        if status in FAILURES:
            self._keep_header(group)
            self.lines.append(self.format.item_line(event, tag=True))

    def _group_start(self, event: Any, now: float) -> None:
        parent = self.groups.get(event.get("parent_group_id") or "")
        opener = self._opener(event["address"]) if parent is None else None
        group = LiveGroup(event, parent, opener)
        group.started = now
        group.order = self._order = self._order + 1
        groups = self.groups
        groups[group.group_id] = group
        (parent.children if parent is not None else self.roots)[group.group_id] = group
        while len(groups) > self.max_groups:
            self._forget(groups[next(iter(groups))])

    def _group_end(self, event: Any) -> None:
        group = self.groups.get(str(event["group_id"]))
        if group is not None:
            self._forget(group)
            self._keep_header(group.enclosing)
        else:
            self._keep_header(self.groups.get(event.get("parent_group_id") or ""))
        self.lines.append(self.format.group_footer(event))

    def _forget(self, group: LiveGroup) -> None:
        del self.groups[group.group_id]
        siblings = group.parent.children if group.parent is not None else self.roots
        siblings.pop(group.group_id, None)
        for child in group.children.values():  # its end came first: they stand alone now
            child.parent = None
            self.roots[child.group_id] = child
        group.children = {}

    def _opener(self, address: str) -> LiveEvent | None:
        """The running top-level event whose address encloses ``address``."""
        events = self.events
        if not events:
            return None
        head = address.split("/", 1)[0]
        return events.get(head)

    # -- top-level events -------------------------------------------------------------------

    def _event(self, event: Any, now: float) -> None:
        status = event["status"]
        address = event["address"]
        top = int(event["depth"]) == 0
        if status not in _TERMINAL:
            if top and status == "started" and len(self.events) < self.max_events:
                header = self.format.item_line(event, tag=False)
                name, kind = str(event["name"]), str(event["kind"])
                self.events[address] = LiveEvent(name, kind, address, now, header)
            return
        running = self.events.pop(address, None) if top else None
        if running is not None or top:
            self.lines.append(self.format.item_line(event, tag=False))
        elif status in FAILURES:
            self._keep_header(self.groups.get(event.get("group_id") or ""))
            self.lines.append(self.format.item_line(event, tag=False))

    # -- parents first ----------------------------------------------------------------------

    def _keep_header(self, node: LiveGroup | LiveEvent | None) -> None:
        """Keep the header line of ``node`` and of what encloses it, outermost first, for
        each not kept yet."""
        chain: list[LiveGroup | LiveEvent] = []
        while node is not None and not node.logged:
            node.logged = True
            chain.append(node)
            node = node.enclosing
        for node in reversed(chain):
            self.lines.append(node.header if isinstance(node, LiveEvent) else self._header(node))

    def _header(self, group: LiveGroup) -> str:
        style = self.format.style
        return (
            f"{_indent(group.depth)}{style.symbol('started')} {style.icon('group')} "
            f"{group.label} ({group.total} items, max {group.max_workers} at once)"
        )
