"""structlog renderers, one per printer mode: the last processor of a structlog chain.

Each takes the event dicts :class:`~rh_parallel.console.printer.ParallelEventPrinter` builds
from bus records (see ``EVENT_KEYS``) and returns the text to print, or raises
``structlog.DropEvent`` for what its mode does not show. They are usable in any structlog
configuration that produces the same keys. (The ``live`` mode's renderer, which draws with
rich instead of returning lines, is in :mod:`rh_parallel.console.live`.)

Two rules every mode keeps:

- A parent is shown before its children. ``realtime`` and ``progress`` print a group's header
  when it starts; ``collapsed`` prints a group's block when it ends, so a group with nested
  groups gets a one-line header (``▶ 📦 Parallel Group: docs (4 events)``) printed just before
  the first block of a nested group, and its full block when it ends (see
  :class:`CollapsedRenderer`).
- In ``progress`` mode an item line is tagged with its group (``· docs #2``) when its group
  started while another group was open (a nested group, or one beside another), and then on
  every line of that group; a group that started with no other group open is never tagged.
  At most one untagged group is open at any time, so an untagged line always belongs to it.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import structlog

from rh_parallel.console.style import Style, duration

__all__ = [
    "EVENT_KEYS",
    "PRESENTATION_KEYS",
    "CollapsedRenderer",
    "JSONRenderer",
    "ProgressRenderer",
    "RealtimeRenderer",
    "SmartRenderer",
]

EventDict = MutableMapping[str, Any]

EVENT_KEYS = (
    "event",
    "run_id",
    "status",
    "name",
    "actor",
    "kind",
    "address",
    "depth",
    "group_id",
    "group_name",
    "group_label",
    "group_overlaps",
    "parent_group_id",
    "parallel_index",
    "attempt",
    "execution_time",
    "queue_time",
    "error_type",
    "message",
    "cached",
    "trace_id",
    "span_id",
    "timestamp",
    "group_total",
    "group_done",
    "groups_active",
    "total",
    "completed",
    "failed",
    "cancelled",
    "recovered",
    "retries",
    "duration",
    "max_workers",
    "errors",
)
# keys that say how to draw a record, not what happened: not in JSON lines
PRESENTATION_KEYS = frozenset({"group_label", "group_overlaps"})
_TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "skipped", "recovered"}


def _indent(depth: int) -> str:
    return "  " * max(depth, 0)


def label(event: EventDict) -> str:
    """How a group is named on screen: its name, or ``doc-03 › analyze`` for a nested group
    (the item that opened it, then its name)."""
    return str(event.get("group_label") or event["group_name"])


class _Base:
    def __init__(self, style: Style | None = None) -> None:
        self.style = style or Style()

    def item_line(self, event: EventDict, tag: bool) -> str:
        style = self.style
        status = str(event["status"])
        parts = [
            _indent(int(event["depth"])) + style.symbol(status),
            style.icon(str(event["kind"])),
            str(event["name"]),
            style.paint(f"[{status.upper()}]", status),
        ]
        if event.get("cached"):
            parts.append(style.paint("(cached)", "dim"))
        elif status in _TERMINAL and event.get("execution_time") is not None:
            parts.append(f"({duration(event['execution_time'])})")
        if status in ("retrying", "waiting") and event.get("message"):
            parts.append(style.paint(str(event["message"]), "dim"))
        elif (
            status in _TERMINAL
            and status not in ("completed", "recovered")
            and event.get("error_type")
        ):
            parts.append(f"{event['error_type']}: {event.get('message') or ''}".rstrip(": "))
        if tag and event.get("group_name") is not None:
            parts.append(
                style.paint(f"{style.dot} {label(event)} #{event.get('parallel_index')}", "dim")
            )
        return " ".join(p for p in parts if p)

    def group_header(self, event: EventDict) -> str:
        style = self.style
        return (
            f"{_indent(int(event['depth']))}{style.symbol('started')} {style.icon('group')} "
            f"Parallel Group: {label(event)} [0/{event['total']}]"
        )

    def progress_line(
        self, event: EventDict, done: int, total: int, depth: int, name: str, symbol: str = ""
    ) -> str:
        style = self.style
        percent = 100 if total == 0 else round(100 * done / total)
        lead = f"{symbol} " if symbol else ""
        return (
            f"{_indent(depth)}{lead}{style.icon('group')} Parallel Group: {name} "
            f"[{done}/{total}] {style.bar(done, total)} {percent}%"
        )

    def group_footer(self, event: EventDict) -> str:
        style = self.style
        status = str(event["status"])
        total = int(event["total"])
        done = int(event["completed"]) + int(event["failed"]) + int(event["cancelled"])
        line = self.progress_line(
            event, done, total, int(event["depth"]), label(event), style.symbol(status)
        )
        return f"{line} ({duration(event.get('duration'))}) {style.dot} {self.counts(event)}"

    def counts(self, event: EventDict) -> str:
        text = f"{event['completed']} completed"
        reused = [f"{event[key]} {key}" for key in ("recovered", "cached") if event.get(key)]
        if reused:
            text += f" ({', '.join(reused)})"
        text += f", {event['failed']} failed"
        if event.get("cancelled"):
            text += f", {event['cancelled']} cancelled"
        if event.get("retries"):
            text += f", {event['retries']} retries"
        return text


class RealtimeRenderer(_Base):
    """One line per record as it happens, interleaved, indented by address depth."""

    def __call__(self, logger: Any, method: str, event: EventDict) -> str:
        kind = event["event"]
        if kind == "group_start":
            return (
                f"{_indent(int(event['depth']))}{self.style.symbol('started')} "
                f"{self.style.icon('group')} {label(event)} "
                f"({event['total']} items, max {event['max_workers']} at once)"
            )
        if kind == "group_end":
            return self.group_footer(event)
        return self.item_line(event, tag=kind == "item")


class ProgressRenderer(_Base):
    """Items under their group's header, a progress bar at each completion, then a footer."""

    def __init__(self, style: Style | None = None, show_progress: bool = True) -> None:
        super().__init__(style)
        self.show_progress = show_progress

    def __call__(self, logger: Any, method: str, event: EventDict) -> str:
        kind = event["event"]
        if kind == "group_start":
            return self.group_header(event)
        if kind == "group_end":
            return self.group_footer(event)
        tag = kind == "item" and bool(event.get("group_overlaps"))
        line = self.item_line(event, tag)
        if kind != "item" or event["status"] not in _TERMINAL or not self.show_progress:
            return line
        if event.get("group_total") is None:  # its group's start record was not seen
            return line
        progress = self.progress_line(
            event,
            int(event["group_done"]),
            int(event["group_total"]),
            int(event["depth"]) - 1,
            label(event),
        )
        return f"{progress}\n{line}"


class _Open:
    """A group the collapsed renderer has seen start: its parent and its header line."""

    __slots__ = ("header", "parent", "shown")

    def __init__(self, parent: str | None, header: str, shown: bool) -> None:
        self.parent = parent
        self.header = header
        self.shown = shown  # its header (or a progress header) is on screen already


class CollapsedRenderer(_Base):
    """One block per group when it ends: size, bar, counts, every failure; nothing else.

    Parents come first: a group's block prints when it ends, after its nested groups, so the
    first block of a nested group is preceded by a one-line header of each enclosing group
    not shown yet (``▶ 📦 Parallel Group: docs (4 events)``, indented by depth); the
    enclosing group's full block follows when it ends. A group without nested groups prints
    its block alone. What is kept is bounded: one short entry per open group, at most
    ``max_open`` (the oldest dropped past it, as when an end record never arrives).
    """

    max_open = 10_000

    def __init__(self, style: Style | None = None) -> None:
        super().__init__(style)
        self._open: dict[str, _Open] = {}

    def track(self, event: EventDict, shown: bool = False) -> None:
        """Note a starting group (``shown``: its header is printed by someone else)."""
        header = (
            f"{_indent(int(event['depth']))}{self.style.symbol('started')} "
            f"{self.style.icon('group')} Parallel Group: {label(event)} ({event['total']} events)"
        )
        groups = self._open
        groups[str(event["group_id"])] = _Open(event.get("parent_group_id"), header, shown)
        while len(groups) > self.max_open:
            del groups[next(iter(groups))]

    def pending(self, group_id: str | None) -> str:
        """The headers of ``group_id`` and of its enclosing groups not shown yet, outermost
        first, each ending with a newline (now marked shown)."""
        chain = []
        groups = self._open
        entry = groups.get(group_id) if group_id is not None else None
        while entry is not None and not entry.shown:
            entry.shown = True
            chain.append(entry.header)
            entry = groups.get(entry.parent) if entry.parent is not None else None
        return "".join(f"{header}\n" for header in reversed(chain))

    def __call__(self, logger: Any, method: str, event: EventDict) -> str:
        kind = event["event"]
        if kind == "group_start":
            self.track(event)
        if kind != "group_end":
            raise structlog.DropEvent
        entry = self._open.pop(str(event["group_id"]), None)
        parent = entry.parent if entry is not None else event.get("parent_group_id")
        return self.pending(parent) + self.block(event)

    def block(self, event: EventDict) -> str:
        style = self.style
        indent = _indent(int(event["depth"]))
        total = int(event["total"])
        done = int(event["completed"]) + int(event["failed"]) + int(event["cancelled"])
        percent = 100 if total == 0 else round(100 * done / total)
        status = str(event["status"])
        lines = [
            f"{indent}{style.symbol(status)} {style.icon('group')} Parallel Group: "
            f"{label(event)} ({total} events)",
            f"{indent}  [{style.bar(done, total, 20)}] {percent}% ({duration(event['duration'])})",
            f"{indent}  {style.symbol('completed' if not event['failed'] else 'failed')} "
            f"{self.counts(event)}",
        ]
        for error in event.get("errors") or []:
            reason = error.get("error_type") or error["status"]
            message = error.get("error_message") or ""
            line = f"{indent}  {style.symbol(str(error['status']))} {error['name']}: {reason}"
            lines.append(f"{line}: {message}" if message else line)
        lines.append(
            f"{indent}  {style.branch} details: p.results / p.group.errors "
            f"(group_id {event['group_id']})"
        )
        return "\n".join(lines)


class SmartRenderer:
    """``progress`` for groups of up to ``threshold`` items, ``collapsed`` above.

    Parents first here too: a small group drawn with progress inside a large, collapsed one
    is preceded by the collapsed group's one-line header.
    """

    def __init__(
        self, style: Style | None = None, threshold: int = 10, show_progress: bool = True
    ) -> None:
        self.threshold = threshold
        self.progress = ProgressRenderer(style, show_progress)
        self.collapsed = CollapsedRenderer(style)

    def __call__(self, logger: Any, method: str, event: EventDict) -> str:
        kind = event["event"]
        grouped = kind.startswith("group")
        size = event.get("total") if grouped else event.get("group_total")
        if size is not None and int(size) > self.threshold:
            return self.collapsed(logger, method, event)
        if kind == "group_start":  # a progress group: its own header shows it
            self.collapsed.track(event, shown=True)
            return self.collapsed.pending(event.get("parent_group_id")) + self.progress(
                logger, method, event
            )
        if kind == "group_end":
            self.collapsed._open.pop(str(event["group_id"]), None)
        return self.progress(logger, method, event)


class JSONRenderer:
    """One JSON object per record, for production logs (keys as in ``EVENT_KEYS``, less the
    ``PRESENTATION_KEYS``)."""

    def __call__(self, logger: Any, method: str, event: EventDict) -> str:
        return json.dumps(
            {k: v for k, v in event.items() if v is not None and k not in PRESENTATION_KEYS},
            default=str,
        )
