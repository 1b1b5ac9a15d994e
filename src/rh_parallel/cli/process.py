"""The CLI as a Unix process: exit statuses, SIGINT/SIGTERM, and a stdout that can go away.

Exit statuses (the same for every command):

- 0: the run (or command) finished.
- 1: standard output is closed or cannot be written (``rh-parallel demo >&-``), or ``runs``
  was given a run id its store does not have; one line on stderr says so.
- 2: bad arguments, a metrics address that cannot be served, or a store or cache file that
  cannot be used (missing for ``runs``, foreign, unwritable): argparse's status.
- 130 / 143: stopped by SIGINT (Ctrl-C) / SIGTERM, 128 + the signal's number as shells report.
- 141: the reader of a pipe went away (``rh-parallel demo | head -1``): 128 + SIGPIPE, what a
  shell reports for a classic filter in the same place, but reached by a clean stop and with
  nothing on stderr.

Signals are handled once: the first SIGINT or SIGTERM cancels the run (which then flushes its
telemetry), a second one ends the process at once, so an impatient user is never stuck and
never sees a traceback. A signal that was ignored when the process started (a background job
of a non-interactive shell, ``nohup``) stays ignored, as it does for any well-behaved tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

__all__ = [
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_PIPE",
    "Interrupted",
    "Output",
    "Signals",
    "say",
    "signal_status",
    "silence_stdout",
]

EXIT_OK = 0
EXIT_OUTPUT = 1
EXIT_PIPE = 128 + signal.SIGPIPE

_HANDLED = (signal.SIGINT, signal.SIGTERM)


def signal_status(signum: int) -> int:
    """The exit status a shell reports for a process ended by ``signum``: 128 + its number."""
    return 128 + signum


def say(line: str) -> None:
    """One line on stderr, if anyone can read it (stderr may be closed or a broken pipe)."""
    stream = sys.stderr
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        stream.write(line + "\n")
        stream.flush()


def silence_stdout(stream: TextIO | None = None) -> None:
    """Point the file descriptor of ``stream`` (default ``sys.stdout``) at /dev/null, so output
    still buffered (and Python's own flush at exit) goes nowhere instead of raising
    ``BrokenPipeError`` again on the way out (the recipe of the ``signal`` module's notes)."""
    stream = sys.stdout if stream is None else stream
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


class Output:
    """Standard output for a run, which notices when nobody can read it any more.

    The printer writes from a bus subscriber task: an exception there would be caught and
    logged by the bus for every later record (thousands of stderr lines after ``| head -1``)
    while the run went on. Instead, the first failed write is recorded in ``failure``, stdout
    is pointed at /dev/null, ``on_lost`` is called (the CLI cancels the run) and every later
    write is dropped quietly. Use it where a ``TextIO`` is expected (see :meth:`as_text`).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.failure: OSError | None = None
        self.on_lost: Callable[[], object] | None = None

    def as_text(self) -> TextIO:
        """This object typed as the ``TextIO`` printers take (it has what they use)."""
        return self  # type: ignore[return-value]

    @property
    def pipe_closed(self) -> bool:
        """Whether the reader went away (as opposed to a stdout that was never writable)."""
        return isinstance(self.failure, BrokenPipeError)

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:
        return getattr(self._stream, "errors", None)

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    def writable(self) -> bool:
        return self.failure is None

    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                return self._stream.write(text)
            except OSError as exc:
                self._lose(exc)
        return len(text)

    def flush(self) -> None:
        if self.failure is None:
            try:
                self._stream.flush()
            except OSError as exc:
                self._lose(exc)

    def _lose(self, exc: OSError) -> None:
        self.failure = exc
        silence_stdout(self._stream)
        if self.on_lost is not None:
            self.on_lost()


class Interrupted(BaseException):
    """A first signal that arrived before the run started: unwinds the start-up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Signals:
    """SIGINT and SIGTERM for the whole life of the process, handled once.

    One handler, installed with ``signal.signal`` before anything starts, covers start-up,
    the run and the final telemetry flush. (``loop.add_signal_handler`` would cover only the
    run: asyncio puts the default handlers back when its loop closes, just before the flush.)
    The first signal, before the run, raises :class:`Interrupted`; during the run, it cancels
    the task given to :meth:`running` from inside its loop (an exception raised in the middle
    of the engine's callbacks could leave a group unable to finish; a cancellation is what the
    engine is built to handle); after the run (:meth:`finishing`), it is only recorded
    (the clean-up under way is what it asks for, and the flush is bounded). Either way it sets
    the exit status. A second signal ends the process at once with the first one's status,
    skipping whatever clean-up is still going on.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._finishing = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on, except where they are ignored already."""
        for signum in _HANDLED:
            previous = signal.getsignal(signum)
            if previous is not signal.SIG_IGN:
                self._previous[signum] = previous
                signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Put back the handlers :meth:`install` replaced (for callers that carry on after)."""
        while self._previous:
            signum, previous = self._previous.popitem()
            signal.signal(signum, previous)

    def running(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        """The run started: the first signal cancels ``task`` (a task of ``loop``)."""
        self._loop, self._task = loop, task

    def idle(self) -> None:
        """No run is going (between two runs): a first signal raises :class:`Interrupted`,
        which is safe in plain synchronous code but never inside a loop's callbacks."""
        self._loop = self._task = None

    def finishing(self) -> None:
        """The run ended: a first signal from now on is recorded, a second ends the process."""
        self._loop = self._task = None
        self._finishing = True

    @property
    def status(self) -> int | None:
        """The exit status the received signal asks for, or None if none came."""
        return None if self.received is None else signal_status(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self._exit_now(self.received)
        self.received = signum
        if self._finishing:
            return
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            # Python runs this handler between two bytecodes of the main thread, possibly in
            # the middle of the loop's own bookkeeping: hand the cancel to the loop
            with contextlib.suppress(RuntimeError):  # the loop just closed: nothing to cancel
                loop.call_soon_threadsafe(task.cancel)
            return
        raise Interrupted(signum)

    @staticmethod
    def _exit_now(signum: int) -> None:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                with contextlib.suppress(Exception):  # e.g. a reentrant flush: exit anyway
                    stream.flush()
        os._exit(signal_status(signum))
