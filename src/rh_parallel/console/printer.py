"""Printers: bus subscribers that turn records into structlog events, rendered per mode."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import structlog

from rh_parallel.console.renderers import (
    CollapsedRenderer,
    JSONRenderer,
    ProgressRenderer,
    RealtimeRenderer,
    SmartRenderer,
)
from rh_parallel.console.style import Style, duration, style_for
from rh_parallel.model.enums import GroupStatus
from rh_parallel.model.events import ExecutionEvent
from rh_parallel.model.groups import ParallelEventGroup

__all__ = ["MODES", "EventPrinter", "ParallelEventPrinter"]

MODES = ("realtime", "progress", "collapsed", "smart", "json")
OTHER_GROUPS = "(other groups)"  # the summary row of the names beyond the cap
_TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "skipped", "recovered"}


@dataclass
class _GroupView:
    """What the printer knows of a running group: enough to draw progress lines."""

    name: str
    total: int
    depth: int
    done: int = 0


@dataclass
class _GroupTotals:
    """Summary figures for every group of one name."""

    runs: int = 0
    items: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    retries: int = 0
    duration: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)


class ParallelEventPrinter:
    """Prints bus records as they arrive: ``bus.subscribe(ParallelEventPrinter())``.

    ``parallel_mode`` is ``realtime``, ``progress`` (default), ``collapsed``, ``smart``
    (progress up to ``smart_threshold`` items, collapsed above) or ``json``;
    ``collapse_parallel=True`` draws groups collapsed whatever the mode; ``show_progress``
    toggles the progress lines. Colours appear only on terminals (``NO_COLOR``/``FORCE_COLOR``
    honoured; ``colour=`` forces a choice), symbols fall back to ASCII where the output cannot
    show them.

    A printer can live as long as the process: what it keeps is bounded. A group's view lives
    from its start record to its end record (at most ``max_running_groups`` at once: past that
    the oldest view is dropped, as when an end record never arrives, and its items print
    without their group); the summary keeps totals for at most ``max_summary_groups`` group
    names, the rest added up under "(other groups)".
    """

    max_running_groups = 10_000
    max_summary_groups = 100

    def __init__(
        self,
        parallel_mode: str = "progress",
        show_progress: bool = True,
        collapse_parallel: bool = False,
        smart_threshold: int = 10,
        file: TextIO | None = None,
        *,
        colour: bool | None = None,
        unicode: bool | None = None,
    ) -> None:
        if parallel_mode not in MODES:
            raise ValueError(f"parallel_mode={parallel_mode!r}; use one of {', '.join(MODES)}")
        if smart_threshold < 1:
            raise ValueError(f"smart_threshold={smart_threshold} must be >= 1")
        self.file = file if file is not None else sys.stdout
        self.mode = (
            "collapsed" if collapse_parallel and parallel_mode == "progress" else (parallel_mode)
        )
        self.style: Style = style_for(self.file, colour, unicode)
        self.renderer = self._renderer(self.mode, show_progress, smart_threshold)
        self._logger = structlog.wrap_logger(
            structlog.PrintLogger(self.file),
            processors=[self.renderer],
            context_class=dict,
            cache_logger_on_first_use=True,
        )
        self._groups: dict[str, _GroupView] = {}
        self._totals: dict[str, _GroupTotals] = {}
        self._sequential = _GroupTotals()

    def _renderer(self, mode: str, show_progress: bool, threshold: int) -> Any:
        if mode == "realtime":
            return RealtimeRenderer(self.style)
        if mode == "progress":
            return ProgressRenderer(self.style, show_progress)
        if mode == "collapsed":
            return CollapsedRenderer(self.style)
        if mode == "smart":
            return SmartRenderer(self.style, threshold, show_progress)
        return JSONRenderer()

    # -- records in -----------------------------------------------------------------------

    def __call__(self, record: Any) -> None:
        """The bus handler: one record in, zero or more lines out."""
        if isinstance(record, ParallelEventGroup):
            event = self._group_event(record)
        elif isinstance(record, ExecutionEvent):
            event = self._item_event(record)
        else:
            return
        self._logger.info(**event)

    def _group_event(self, group: ParallelEventGroup) -> dict[str, Any]:
        starting = group.status is GroupStatus.RUNNING
        depth = group.address.count("/")
        if starting:
            views = self._groups
            views[group.group_id] = _GroupView(group.name, group.total, depth)
            while len(views) > self.max_running_groups:  # the oldest first (insertion order)
                del views[next(iter(views))]
        else:
            self._groups.pop(group.group_id, None)
            totals = self._totals_of(group.name)
            totals.runs += 1
            totals.items += group.total
            totals.completed += group.completed
            totals.failed += group.failed
            totals.cancelled += group.cancelled
            totals.retries += group.retries
            totals.duration += group.duration or 0.0
        return {
            "event": "group_start" if starting else "group_end",
            "run_id": group.run_id,
            "status": group.status.value,
            "group_id": group.group_id,
            "group_name": group.name,
            "address": group.address,
            "depth": depth,
            "total": group.total,
            "completed": group.completed,
            "failed": group.failed,
            "cancelled": group.cancelled,
            "recovered": group.recovered,
            "cached": group.cached,
            "retries": group.retries,
            "duration": group.duration,
            "max_workers": group.max_workers,
            "errors": [e.model_dump() for e in group.errors],
            "trace_id": group.trace_id,
            "span_id": group.span_id,
            "timestamp": group.end_time if not starting else group.start_time,
        }

    def _item_event(self, record: ExecutionEvent) -> dict[str, Any]:
        status = record.execution_status.value if record.execution_status else "started"
        view = self._groups.get(record.group_id or "") if record.is_parallel else None
        name = record.item_name or record.actor.name
        if status in _TERMINAL:
            self._account(record, status, name)
            if view is not None:
                view.done += 1
        return {
            "event": "item" if record.is_parallel else "event",
            "run_id": record.run_id,
            "status": status,
            "name": name,
            "actor": record.actor.name,
            "kind": record.actor.event_type.kind,
            "address": record.address,
            "depth": record.address.count("/"),
            "group_id": record.group_id,
            "group_name": view.name if view is not None else None,
            "parallel_index": record.parallel_index,
            "attempt": record.attempt,
            "execution_time": record.execution_time,
            "queue_time": record.queue_time,
            "error_type": record.error_type,
            "message": record.message,
            "cached": record.cached or None,
            "trace_id": record.trace_id,
            "span_id": record.span_id,
            "timestamp": record.timestamp,
            "group_total": view.total if view is not None else None,
            "group_done": view.done if view is not None else None,
            "groups_active": len(self._groups),
        }

    def _account(self, record: ExecutionEvent, status: str, name: str) -> None:
        if record.is_parallel:
            view = self._groups.get(record.group_id or "")
            totals = self._totals_of(view.name if view else "?")
        else:
            totals = self._sequential
            totals.items += 1
            totals.completed += status in ("completed", "recovered")
            totals.failed += status not in ("completed", "cancelled", "recovered")
        seconds = record.execution_time or 0.0
        slowest = totals.slowest
        if len(slowest) < 3 or seconds > slowest[-1][0]:
            slowest.append((seconds, name))
            slowest.sort(key=lambda pair: -pair[0])
            del slowest[3:]

    def _totals_of(self, name: str) -> _GroupTotals:
        """The summary totals of group ``name`` (those of "(other groups)" past the cap)."""
        totals = self._totals.get(name)
        if totals is None:
            if len(self._totals) >= self.max_summary_groups:
                name = OTHER_GROUPS
            totals = self._totals.setdefault(name, _GroupTotals())
        return totals

    # -- summary --------------------------------------------------------------------------

    def print_summary(self) -> None:
        """Totals per group name and overall: completed, failed, retried, slowest items."""
        write = self.file.write
        style = self.style
        write("Summary\n")
        overall = _GroupTotals()
        rows = [*self._totals.items()]
        if self._sequential.items:
            rows.append(("(sequential events)", self._sequential))
        for name, totals in rows:
            overall.items += totals.items
            overall.completed += totals.completed
            overall.failed += totals.failed
            overall.cancelled += totals.cancelled
            overall.retries += totals.retries
            runs = f"{totals.runs} runs, " if totals.runs > 1 else ""
            write(
                f"  {style.icon('group')} {name}: {runs}{totals.items} items, "
                f"{totals.completed} completed, {totals.failed} failed, "
                f"{totals.retries} retried"
                + (f", {totals.cancelled} cancelled" if totals.cancelled else "")
                + "\n"
            )
            if totals.slowest:
                slow = ", ".join(f"{n} {duration(s)}" for s, n in totals.slowest)
                write(f"      slowest: {slow}\n")
        write(
            f"  total: {overall.items} items, {overall.completed} completed, "
            f"{overall.failed} failed, {overall.retries} retried\n"
        )


class EventPrinter(ParallelEventPrinter):
    """The same printer for sequential flows: one line per event as it happens."""

    def __init__(
        self,
        file: TextIO | None = None,
        *,
        mode: str = "realtime",
        colour: bool | None = None,
        unicode: bool | None = None,
    ) -> None:
        super().__init__(parallel_mode=mode, file=file, colour=colour, unicode=unicode)
