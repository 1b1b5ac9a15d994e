"""Printers: bus subscribers that turn records into structlog events, rendered per mode."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, Unpack

import structlog

from rh_parallel.console.renderers import (
    CollapsedRenderer,
    JSONRenderer,
    ProgressRenderer,
    RealtimeRenderer,
    SmartRenderer,
)
from rh_parallel.console.style import Style, is_terminal, style_for
from rh_parallel.console.summary import OTHER_GROUPS, Summary
from rh_parallel.model.enums import GroupStatus
from rh_parallel.model.events import ExecutionEvent
from rh_parallel.model.groups import ParallelEventGroup

if TYPE_CHECKING:
    from rich.console import Console

    from rh_parallel import _migration as legacy

__all__ = ["MODES", "OTHER_GROUPS", "EventPrinter", "ParallelEventPrinter", "resolve_mode"]

MODES = ("auto", "live", "realtime", "progress", "collapsed", "smart", "json")
_TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "skipped", "recovered"}


def resolve_mode(mode: str, file: TextIO) -> str:
    """What ``auto`` means for ``file``: ``live`` on a terminal that can redraw (not
    ``TERM=dumb``), ``smart`` otherwise. Other modes are returned as they are."""
    if mode != "auto":
        return mode
    dumb = os.environ.get("TERM", "").lower() in ("dumb", "unknown")
    return "live" if is_terminal(file) and not dumb else "smart"


@dataclass
class _GroupView:
    """What the printer knows of a running group: enough to draw it and its items."""

    name: str
    label: str  # on screen: the name, or "doc-03 › analyze" for a nested group
    address: str
    total: int
    depth: int
    overlaps: bool  # another group was open when it started: its progress lines are tagged
    done: int = 0


class ParallelEventPrinter:
    """Prints bus records as they arrive: ``bus.subscribe(ParallelEventPrinter())``.

    ``parallel_mode`` is ``auto`` (the default: ``live`` when ``file`` is a terminal,
    ``smart`` otherwise), ``live`` (a view redrawn in place, on rich), ``realtime``,
    ``progress``, ``collapsed``, ``smart`` (progress up to ``smart_threshold`` items,
    collapsed above) or ``json``. ``collapse_parallel=True`` turns ``progress`` into
    ``collapsed`` and changes no other mode. ``show_progress`` toggles the progress lines of
    ``progress`` and ``smart``. Colours appear on terminals only (a non-empty ``NO_COLOR``
    turns them off, a non-empty ``FORCE_COLOR`` on; ``colour=`` decides instead); symbols
    fall back to ASCII where the output's encoding cannot show them (``unicode=`` decides).
    ``mode`` is the mode in use (``auto`` resolved).

    In ``live`` mode (see :mod:`rh_parallel.console.live`) the view is shown while something
    runs and put away when everything has ended; :meth:`close` (called by
    :meth:`print_summary`) puts it away at once, printing its last frame. ``console`` (a
    ``rich.console.Console``) replaces the console made on ``file``; ``clock`` replaces
    ``time.monotonic`` for elapsed times, rates and frame pacing; ``max_live_groups``
    bounds the groups shown at once; ``refresh_per_second`` the frames.

    A printer can live as long as the process: what it keeps is bounded. A group's view lives
    from its start record to its end record (at most ``max_running_groups`` at once: past that
    the oldest view is dropped, as when an end record never arrives, and its items print
    without their group); the summary keeps totals for at most ``max_summary_groups`` group
    names, the rest added up under "(other groups)".
    """

    max_running_groups = 10_000
    """How many running groups' views are kept at once; past that the oldest is dropped."""
    max_summary_groups = 100
    """How many group names the summary keeps totals for; the rest add up under "(other
    groups)". Read when the printer is made: a subclass may change it."""

    def __init__(
        self,
        parallel_mode: str = "auto",
        show_progress: bool = True,
        collapse_parallel: bool = False,
        smart_threshold: int = 10,
        file: TextIO | None = None,
        *,
        colour: bool | None = None,
        unicode: bool | None = None,
        console: Console | None = None,
        clock: Callable[[], float] | None = None,
        max_live_groups: int = 12,
        refresh_per_second: float = 10.0,
        **legacy_options: Unpack[legacy.NoLegacyOptions],
    ) -> None:
        if legacy_options:  # RH-Agents' show_timestamp=, the spec's show_parallel_details=
            from rh_parallel import _migration

            _migration.refuse_options(
                "ParallelEventPrinter", f"{type(self).__name__}.__init__", legacy_options
            )
        if isinstance(parallel_mode, bool) or isinstance(file, bool):  # RH-Agents' positions
            from rh_parallel import _migration

            flag = parallel_mode if isinstance(parallel_mode, bool) else file
            raise TypeError(
                _migration.message(
                    "ParallelEventPrinter.show_timestamp",
                    f"{type(self).__name__}({flag}, ...) passes RH-Agents' show_timestamp by "
                    "position; pass parallel_mode= (or mode=) and file= by keyword",
                )
            )
        if parallel_mode not in MODES:
            raise ValueError(f"parallel_mode={parallel_mode!r}; use one of {', '.join(MODES)}")
        if smart_threshold < 1:
            raise ValueError(f"smart_threshold={smart_threshold} must be >= 1")
        if max_live_groups < 1:
            raise ValueError(f"max_live_groups={max_live_groups} must be >= 1")
        if not refresh_per_second > 0:
            raise ValueError(f"refresh_per_second={refresh_per_second} must be > 0")
        self.file = file if file is not None else sys.stdout
        mode = resolve_mode(parallel_mode, self.file)
        self.mode: str = "collapsed" if collapse_parallel and mode == "progress" else mode
        """The mode in use: ``parallel_mode`` with ``auto`` resolved (and ``progress`` made
        ``collapsed`` by ``collapse_parallel=True``)."""
        self.style: Style = style_for(self.file, colour, unicode)
        if self.mode == "live":
            from rh_parallel.console.live import LiveRenderer

            self.renderer: Any = LiveRenderer(
                self.file,
                self.style,
                console=console,
                clock=clock or time.monotonic,
                max_groups=max_live_groups,
                refresh_per_second=refresh_per_second,
                fallback=SmartRenderer(self.style, smart_threshold, show_progress),
            )
        else:
            self.renderer = self._renderer(self.mode, show_progress, smart_threshold)
        # The live renderer is a structlog processor too, but draws with rich: nothing goes
        # through a PrintLogger, so the printer calls it directly (a BoundLogger call costs
        # ~5 us a record, three times what the live view itself spends on one).
        self._direct = self.mode == "live"
        self._logger = structlog.wrap_logger(
            structlog.PrintLogger(self.file),
            processors=[self.renderer],
            context_class=dict,
            cache_logger_on_first_use=True,
        )
        self._groups: dict[str, _GroupView] = {}
        self.summary = Summary(self.max_summary_groups)

    @property
    def _totals(self) -> dict[str, Any]:
        return self.summary.totals

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
        if not self._direct:
            self._logger.info(**event)
            return
        try:
            line = self.renderer(None, "info", event)
        except structlog.DropEvent:
            return
        self.file.write(f"{line}\n")  # the live view failed: lines from now on
        self.file.flush()

    def _label(self, group: ParallelEventGroup) -> str:
        """``name``, or ``opener › name`` for a nested group whose parent is known (the
        opener: the address between the parent group's and this one's, the item's name)."""
        parent = self._groups.get(group.parent_group_id or "")
        if parent is None:
            return group.name
        address, prefix = group.address, parent.address + "/"
        relative = address[len(prefix) :] if address.startswith(prefix) else address
        suffix = "/" + group.name
        if not relative.endswith(suffix):
            return group.name
        arrow = f" {self.style.arrow} "
        return arrow.join([*relative[: -len(suffix)].split("/"), group.name])

    def _group_event(self, group: ParallelEventGroup) -> dict[str, Any]:
        starting = group.status is GroupStatus.RUNNING
        depth = group.address.count("/")
        views = self._groups
        if starting:
            view = _GroupView(
                group.name, self._label(group), group.address, group.total, depth, bool(views)
            )
            views[group.group_id] = view
            while len(views) > self.max_running_groups:  # the oldest first (insertion order)
                del views[next(iter(views))]
        else:
            ended = views.pop(group.group_id, None)
            label = ended.label if ended is not None else group.name
            self.summary.group_ended(group.name, group)
        return {
            "event": "group_start" if starting else "group_end",
            "run_id": group.run_id,
            "status": group.status.value,
            "group_id": group.group_id,
            "group_name": group.name,
            "group_label": view.label if starting else label,
            "parent_group_id": group.parent_group_id,
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
            group_name = (view.name if view is not None else "?") if record.is_parallel else None
            # in a nested group the item's name repeats (page-0 of every document): the
            # slowest list names it by its address (docs/doc-1/pages/page-0)
            label = record.address if record.address.count("/") > 1 else name
            self.summary.item_ended(
                group_name, label, status, record.execution_time or 0.0, not record.cached
            )
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
            "group_label": view.label if view is not None else None,
            "group_overlaps": True if view is not None and view.overlaps else None,
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

    # -- the end --------------------------------------------------------------------------

    @property
    def print_event(self) -> ParallelEventPrinter:
        """Deprecated: RH-Agents' ``bus.subscribe(printer.print_event)``; the printer itself
        is the handler, ``bus.subscribe(printer)``."""
        from rh_parallel import _migration

        _migration.warn("ParallelEventPrinter.print_event")
        return self

    def close(self) -> None:
        """Put the live view away (its last frame printed, the cursor shown again); a no-op
        in the other modes and when already closed. Records after it start a new view."""
        close = getattr(self.renderer, "close", None)
        if close is not None:
            close()

    def print_summary(self) -> None:
        """Totals per group name and overall: completed, failed, retried, slowest items.

        One JSON object (``{"event": "summary", ...}``) in ``json`` mode, text otherwise.
        Closes the live view first.
        """
        self.close()
        if self.mode == "json":
            self.file.write(self.summary.json())
        else:
            self.file.write(self.summary.text(self.style))


class EventPrinter(ParallelEventPrinter):
    """The same printer for sequential flows: one line per event as it happens."""

    def __init__(
        self,
        file: TextIO | None = None,
        *,
        mode: str = "realtime",
        colour: bool | None = None,
        unicode: bool | None = None,
        **legacy_options: Unpack[legacy.NoLegacyOptions],
    ) -> None:
        super().__init__(
            parallel_mode=mode, file=file, colour=colour, unicode=unicode, **legacy_options
        )
