"""One frame of the live view, drawn with rich from a :class:`LiveState`.

On a terminal 100 columns wide::

    ▶ 🤖 orchestrator · 2.1s
    group               progress        done fail retry wait run queue time  rate  eta
    Document Processing ███▒▒▒▒▒▒▒ 5/13    4    1     0    0   4     4 2.1s 2.4/s 3.4s
      doc-06 › analyze  █████▒▒▒▒▒  1/2    1    0     0    0   1     0 210ms 4.8/s 210ms
    +3 more groups · 6 items running, 2 queued

(words as headers and 20-wide bars from 120 columns, no bar under 90).

A row per open group, nested groups under the group whose item opened them (their label
names that item), the busiest ``max_groups`` shown (most items in flight first, then the
oldest) with the groups that enclose them; the rest summed up in a last line. Per row:
finished/total and a bar, then counts that add up to the total (done, failed, retrying,
waiting, running, queued; cancelled too when a shown group has any), elapsed time since the
group started, rate (finished items per second) and ETA (what is left at that rate).
"""

from __future__ import annotations

import heapq

from rich.console import Group, OverflowMethod, RenderableType
from rich.table import Table
from rich.text import Text

from rh_parallel.console.live_state import LiveGroup, LiveState
from rh_parallel.console.style import RICH_TONES, Style, duration

__all__ = ["frame", "lines_to_text", "shown_groups"]

# (attribute, tone, header on wide terminals, header on narrow ones)
_COUNTS = (
    ("ok", "completed", "done", "done"),
    ("failed", "failed", "failed", "fail"),
    ("retrying", "retrying", "retrying", "retry"),
    ("waiting", "waiting", "waiting", "wait"),
    ("running", "running", "running", "run"),
    ("queued", "dim", "queued", "queue"),
)
WIDE = 120  # columns from which headers are words and bars are 20 wide
NARROW = 90  # columns under which no bar is drawn (finished/total only)


def shown_groups(state: LiveState, max_groups: int) -> tuple[list[LiveGroup], int]:
    """The groups to draw, in tree order, and how many open groups are left out.

    The ``max_groups`` busiest, and what encloses them (a row never appears without its
    parent, so a deep one may bring a few more rows)."""
    groups = state.groups
    if len(groups) <= max_groups:
        chosen = list(groups.values())
    else:
        busiest = heapq.nsmallest(
            max_groups, groups.values(), key=lambda g: (-g.in_flight, g.order)
        )
        seen: dict[str, LiveGroup] = {}
        for group in busiest:
            node: LiveGroup | None = group
            while node is not None and node.group_id not in seen:
                seen[node.group_id] = node
                node = node.parent
        chosen = list(seen.values())
    chosen.sort(key=_tree_key)
    return chosen, len(groups) - len(chosen)


def _tree_key(group: LiveGroup) -> tuple[int, ...]:
    path = []
    node: LiveGroup | None = group
    while node is not None:
        path.append(node.order)
        node = node.parent
    path.reverse()
    return tuple(path)


def _rate(per_second: float) -> str:
    if per_second >= 100:
        return f"{per_second:.0f}/s"
    return f"{per_second:.1f}/s"


def frame(
    state: LiveState, style: Style, now: float, max_groups: int, width: int = 100
) -> RenderableType:
    """The live area for ``state`` at ``now`` (the printer's clock)."""
    parts: list[RenderableType] = []
    for event in list(state.events.values())[:3]:
        line = Text(f"{style.glyph('running')} {style.icon(event.kind)} {event.name} ")
        line.stylize(RICH_TONES["running"], 0, 1)
        line.append(f"{style.dot} {duration(max(now - event.started, 0.0))}", "dim")
        parts.append(line)
    groups, hidden = shown_groups(state, max_groups)
    if groups:
        parts.append(_table(groups, style, now, width))
    if hidden:
        shown = {g.group_id for g in groups}
        rest = [g for g in state.groups.values() if g.group_id not in shown]
        running = sum(g.in_flight for g in rest)
        queued = sum(g.queued for g in rest)
        parts.append(
            Text(
                f"+{hidden} more group{'s' if hidden > 1 else ''} {style.dot} "
                f"{running} items running, {queued} queued",
                "dim",
            )
        )
    return Group(*parts)


def _table(groups: list[LiveGroup], style: Style, now: float, width: int) -> Table:
    wide = width >= WIDE
    bar = 20 if wide else (10 if width >= NARROW else 0)
    cancelled = any(g.cancelled for g in groups)
    table = Table(
        box=None,
        pad_edge=False,
        show_edge=False,
        padding=(0, 1),
        header_style="dim",
        collapse_padding=True,
    )
    overflow: OverflowMethod = "ellipsis" if style.unicode else "crop"
    table.add_column("group", no_wrap=True, overflow=overflow, max_width=max(20, width // 4))
    if bar:
        table.add_column("progress", no_wrap=True)
    table.add_column("" if bar else "progress", justify="right", no_wrap=True)
    for _attribute, _tone, long, short in _COUNTS:
        table.add_column(long if wide else short, justify="right", no_wrap=True)
    if cancelled:
        table.add_column("cancelled" if wide else "cncl", justify="right", no_wrap=True)
    for title in ("elapsed" if wide else "time", "rate", "eta"):
        table.add_column(title, justify="right", no_wrap=True)
    for group in groups:
        table.add_row(*_row(group, style, now, bar, cancelled))
    return table


def _row(group: LiveGroup, style: Style, now: float, bar: int, cancelled: bool) -> list[Text]:
    finished, total = group.finished, group.total
    cells = [Text("  " * group.level + group.label)]
    if bar:
        tone = "failed" if group.failed else "completed"
        cells.append(Text(style.bar(finished, total, bar), RICH_TONES[tone]))
    cells.append(Text(f"{finished}/{total}"))
    counts = [(getattr(group, attribute), tone) for attribute, tone, _long, _short in _COUNTS]
    if cancelled:
        counts.append((group.cancelled, "cancelled"))
    for value, tone in counts:
        cells.append(Text(str(value), "dim" if not value else RICH_TONES[tone]))
    elapsed = max(now - group.started, 0.0)
    rate = finished / elapsed if elapsed > 0 else 0.0
    left = total - finished
    if not left:
        eta = "0s"
    elif rate > 0:
        eta = duration(left / rate)
    else:
        eta = "-"
    cells += [Text(duration(elapsed)), Text(_rate(rate) if finished else "-"), Text(eta)]
    return cells


def lines_to_text(lines: list[str], colour: bool) -> Text:
    """Kept lines (with ANSI colours when ``colour``) as one rich ``Text``."""
    if colour:
        return Text("\n").join(Text.from_ansi(line) for line in lines)
    return Text("\n".join(lines))
