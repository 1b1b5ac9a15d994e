"""The ``live`` mode: a view redrawn in place while something runs, on rich.

:class:`LiveRenderer` is the last processor of the printer's structlog chain, like the other
modes' renderers, but it draws with rich instead of returning lines:

- Per record it only updates :class:`~rh_parallel.console.live_state.LiveState` (constant
  time). Frames are drawn at most ``refresh_per_second`` times a second: when a record
  arrives and the next frame is due, or on a timer of the running loop while nothing arrives
  (so elapsed times and ETAs move). A burst of records draws one frame, not one per record:
  frames are dropped, records never are.
- Lines that stay (failures, ended groups, ended top-level events; see ``LiveState``) are
  printed above the live area with the next frame, all at once.
- A view starts when something starts running and is put away when nothing runs any more
  (everything has ended: the bus has delivered the last end record), the cursor shown again;
  the kept lines hold every group's totals and every failure. :meth:`close` puts it away at
  once (its last frame printed and kept, if groups were still open), and so does the exit
  of the process.
- If rich raises, the view is put away (the cursor restored), a warning is logged once and
  the rest of the run prints as ``smart`` lines: a broken terminal never breaks the run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any, TextIO

import structlog
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from rh_parallel.console.live_state import LiveState
from rh_parallel.console.live_view import frame, lines_to_text
from rh_parallel.console.renderers import _Base
from rh_parallel.console.style import Style, is_terminal

__all__ = ["LiveRenderer", "make_console"]

logger = logging.getLogger("rh_parallel.console")

_SHOW_CURSOR = "\x1b[?25h"
_open_views: weakref.WeakSet[LiveRenderer] = weakref.WeakSet()


def _close_all() -> None:
    for renderer in list(_open_views):
        with contextlib.suppress(Exception):
            renderer.close()


atexit.register(_close_all)


def _same_terminal(stream: TextIO | None, file: TextIO) -> bool:
    """Whether ``stream`` and ``file`` are both the same terminal device."""
    if stream is None or not (is_terminal(stream) and is_terminal(file)):
        return False
    try:
        return os.fstat(stream.fileno()).st_rdev == os.fstat(file.fileno()).st_rdev
    except (AttributeError, OSError, ValueError):
        return False


def make_console(file: TextIO, style: Style) -> Console:
    """A rich console on ``file`` that draws as ``style`` says (colours, ASCII) and moves the
    cursor only on a terminal."""
    terminal = is_terminal(file)
    return Console(
        file=file,
        force_terminal=terminal,
        force_interactive=terminal or None,
        color_system="standard" if style.colour else None,
        no_color=not style.colour,
        markup=False,
        emoji=False,
        highlight=False,
        legacy_windows=False,
    )


class LiveRenderer:
    """Draws the live view of the records it is given (see the module's notes)."""

    def __init__(
        self,
        file: TextIO,
        style: Style,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_groups: int = 12,
        refresh_per_second: float = 10.0,
        fallback: Callable[[Any, str, Any], str],
    ) -> None:
        self.style = style
        self.console = console if console is not None else make_console(file, style)
        self.clock = clock
        self.interval = 1.0 / refresh_per_second
        self.max_groups = max_groups
        self.fallback = fallback  # draws the records once rich has failed
        self.state = LiveState(_Base(style))
        self.frames = 0  # frames drawn so far (kept lines printed alone are not frames)
        self.broken: BaseException | None = None
        self._live: Live | None = None
        self._next_frame = 0.0
        self._timer: asyncio.TimerHandle | None = None
        # what the program writes to sys.stdout / sys.stderr while the view is up goes above
        # it, when that stream is the very terminal the view is drawn on
        self._redirect_stdout = self.console.is_terminal and _same_terminal(sys.stdout, file)
        self._redirect_stderr = self.console.is_terminal and _same_terminal(sys.stderr, file)

    # -- the structlog processor ------------------------------------------------------------

    def __call__(self, logger: Any, method: str, event: Any) -> str:
        if self.broken is not None:
            return self.fallback(logger, method, event)
        try:
            now = self.clock()
            state = self.state
            state.apply(event, now)
            if state.idle:
                self._finish()
            elif self._live is None:
                self._start(now)
            elif now >= self._next_frame:
                self._draw(now)
            else:
                self._schedule()
        except Exception as exc:
            self._break(exc)
        raise structlog.DropEvent

    # -- the view -----------------------------------------------------------------------------

    def frame(self, now: float | None = None) -> RenderableType:
        """The live area as it would be drawn now (or at ``now`` on the printer's clock)."""
        return frame(
            self.state,
            self.style,
            self.clock() if now is None else now,
            self._rows(),
            self.console.width,
        )

    def _rows(self) -> int:
        """The busiest groups shown: ``max_groups``, fewer on a short terminal."""
        return max(1, min(self.max_groups, self.console.height - 6))

    def _start(self, now: float) -> None:
        live = Live(
            console=self.console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=self._redirect_stdout,
            redirect_stderr=self._redirect_stderr,
            vertical_overflow="ellipsis",
        )
        self._live = live
        _open_views.add(self)
        live.start()
        self._next_frame = now + self.interval  # nothing drawn for what ends at once
        self._flush_lines()
        self._cancel_timer()  # one left by a view whose loop has ended
        self._schedule()

    def _draw(self, now: float) -> None:
        live = self._live
        assert live is not None
        view = self.frame(now)
        lines = self.state.take_lines()
        with self.console:  # one write to the terminal per frame
            if lines:  # above the view (rich draws the view again below them)
                self._print_lines(lines)
            live.update(view, refresh=True)
        self.frames += 1
        self._next_frame = now + self.interval
        self._schedule()

    def _flush_lines(self) -> None:
        lines = self.state.take_lines()
        if lines:
            self._print_lines(lines)

    def _print_lines(self, lines: list[str]) -> None:
        """Kept lines, as they are: a long one is wrapped by the terminal, not cut by rich."""
        self.console.print(lines_to_text(lines, self.style.colour), soft_wrap=True)

    def _schedule(self) -> None:
        """A timer for the next frame, on the running loop (none outside one)."""
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._live is None or self.broken is not None:
            return
        try:
            now = self.clock()
            if now >= self._next_frame:
                self._draw(now)
            else:
                self._schedule()
        except Exception as exc:
            self._break(exc)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self) -> None:
        """Put the view away: kept lines printed, then the last frame if anything is still
        open, the live area erased and the cursor shown."""
        self._cancel_timer()
        live, self._live = self._live, None
        _open_views.discard(self)
        lines = self.state.take_lines()
        if live is None:
            if lines:
                self._print_lines(lines)
            return
        try:
            with self.console:
                live.update(Text(""), refresh=True)  # the view erased
                if lines:
                    self._print_lines(lines)
                if not self.state.idle:  # closed while groups are open: their last frame
                    self.console.print(self.frame())
        finally:
            live.stop()

    def close(self) -> None:
        """Put the view away now (see :meth:`_finish`); safe to call more than once."""
        if self.broken is not None:
            return
        try:
            self._finish()
        except Exception as exc:
            self._break(exc)

    def _break(self, exc: Exception) -> None:
        """rich failed: restore the terminal and print lines from now on."""
        self.broken = exc
        self._cancel_timer()
        _open_views.discard(self)
        logger.warning(
            "the live view failed (%s: %s); printing lines instead",
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        live, self._live = self._live, None
        if live is not None:
            with contextlib.suppress(Exception):
                live.stop()
            with contextlib.suppress(Exception):
                live._disable_redirect_io()
        if self.console.is_terminal:
            with contextlib.suppress(Exception):
                file = self.console.file
                file.write(_SHOW_CURSOR)
                file.flush()
