"""The run summary a printer keeps: totals per group name and overall, slowest items.

Bounded whatever the run: at most ``max_names`` group names get their own totals, the rest are
added up under ``"(other groups)"``; each name keeps its three slowest items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rh_parallel.console.style import Style, duration

__all__ = ["OTHER_GROUPS", "SEQUENTIAL", "GroupTotals", "Summary"]

OTHER_GROUPS = "(other groups)"  # the summary row of the names beyond the cap
SEQUENTIAL = "(sequential events)"
_SLOWEST = 3


@dataclass
class GroupTotals:
    """Summary figures for every group of one name."""

    runs: int = 0
    items: int = 0
    completed: int = 0
    recovered: int = 0  # of completed: saved by an earlier run, not run in this one
    failed: int = 0
    cancelled: int = 0
    retries: int = 0
    duration: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)

    def add(self, other: GroupTotals) -> None:
        self.items += other.items
        self.completed += other.completed
        self.recovered += other.recovered
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.retries += other.retries

    def note_time(self, seconds: float, name: str) -> None:
        slowest = self.slowest
        if len(slowest) < _SLOWEST or seconds > slowest[-1][0]:
            slowest.append((seconds, name))
            slowest.sort(key=lambda pair: -pair[0])
            del slowest[_SLOWEST:]

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "items": self.items,
            "completed": self.completed,
            "recovered": self.recovered,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "retries": self.retries,
            "slowest": [{"name": n, "seconds": round(s, 6)} for s, n in self.slowest],
        }


class Summary:
    """Totals per group name (``totals``) and of sequential events (``sequential``)."""

    def __init__(self, max_names: int = 100) -> None:
        self.max_names = max_names
        self.totals: dict[str, GroupTotals] = {}
        self.sequential = GroupTotals()

    def of(self, name: str) -> GroupTotals:
        """The totals of group ``name`` (those of "(other groups)" past the cap)."""
        totals = self.totals.get(name)
        if totals is None:
            if len(self.totals) >= self.max_names:
                name = OTHER_GROUPS
            totals = self.totals.setdefault(name, GroupTotals())
        return totals

    def group_ended(self, name: str, group: Any) -> None:
        """Count a group's end record (a ``ParallelEventGroup``)."""
        totals = self.of(name)
        totals.runs += 1
        totals.items += group.total
        totals.completed += group.completed
        totals.recovered += group.recovered
        totals.failed += group.failed
        totals.cancelled += group.cancelled
        totals.retries += group.retries
        totals.duration += group.duration or 0.0

    def item_ended(
        self, group_name: str | None, name: str, status: str, seconds: float, ran: bool = True
    ) -> None:
        """Count an item's (``group_name`` set) or a sequential event's terminal record.

        Only what ran in this run (``ran``: not recovered, not served by the cache) can be
        among the slowest: a recovered item's time is that of the run that computed it."""
        if group_name is not None:
            totals = self.of(group_name)
        else:
            totals = self.sequential
            totals.items += 1
            totals.completed += status in ("completed", "recovered")
            totals.recovered += status == "recovered"
            totals.failed += status not in ("completed", "cancelled", "recovered")
            totals.cancelled += status == "cancelled"
        if ran and status != "recovered":
            totals.note_time(seconds, name)

    def rows(self) -> list[tuple[str, GroupTotals]]:
        rows = [*self.totals.items()]
        if self.sequential.items:
            rows.append((SEQUENTIAL, self.sequential))
        return rows

    def text(self, style: Style) -> str:
        """The summary as text lines."""
        lines = ["Summary"]
        overall = GroupTotals()
        for name, totals in self.rows():
            overall.add(totals)
            runs = f"{totals.runs} runs, " if totals.runs > 1 else ""
            lines.append(
                f"  {style.icon('group')} {name}: {runs}{totals.items} items, "
                f"{_completed(totals)}, {totals.failed} failed, "
                f"{totals.retries} retried"
                + (f", {totals.cancelled} cancelled" if totals.cancelled else "")
            )
            if totals.slowest:
                slow = ", ".join(f"{n} {duration(s)}" for s, n in totals.slowest)
                lines.append(f"      slowest: {slow}")
        lines.append(
            f"  total: {overall.items} items, {_completed(overall)}, "
            f"{overall.failed} failed, {overall.retries} retried"
            + (f", {overall.cancelled} cancelled" if overall.cancelled else "")
        )
        return "\n".join(lines) + "\n"

    def json(self) -> str:
        """The summary as one JSON object on one line (``"event": "summary"``)."""
        overall = GroupTotals()
        groups = []
        for name, totals in self.rows():
            overall.add(totals)
            groups.append({"name": name, **totals.as_dict()})
        total = overall.as_dict()
        del total["runs"], total["slowest"]
        return json.dumps({"event": "summary", "groups": groups, "total": total}) + "\n"


def _completed(totals: GroupTotals) -> str:
    """``12 completed``, or ``12 completed (9 recovered)`` after a resume (as group ends say)."""
    recovered = f" ({totals.recovered} recovered)" if totals.recovered else ""
    return f"{totals.completed} completed{recovered}"
