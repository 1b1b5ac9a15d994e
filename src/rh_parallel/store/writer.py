"""The writer thread of a store: queued writes committed in batches, off the event loop.

``submit`` is an append to a deque (plus, for the first write of a batch, a notify), so the
event loop pays well under a microsecond per completed item. The thread commits a batch at
most ``flush_interval`` seconds after its first write was queued, at once on ``flush()``, and
everything on ``close()``. A batch that fails is logged and counted, never raised.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rh_parallel.exceptions import StoreError

__all__ = ["BatchWriter", "check_optional_seconds", "check_seconds"]

logger = logging.getLogger("rh_parallel.store")


def check_seconds(name: str, value: object) -> float:
    """``value`` as a finite number of seconds > 0.

    ``TypeError`` for a non-number (or a bool), ``ValueError`` for <= 0, NaN or infinity;
    both messages name the argument.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return seconds


def check_optional_seconds(name: str, value: object) -> float | None:
    """``None``, or ``value`` checked by :func:`check_seconds`."""
    if value is None:
        return None
    try:
        return check_seconds(name, value)
    except TypeError:
        raise TypeError(
            f"{name} must be None or a number of seconds, got {type(value).__name__}"
        ) from None


class BatchWriter:
    """Commits submitted operations in batches on one daemon thread, started lazily.

    ``write(batch)`` commits a list of operations (in submission order) and runs on the writer
    thread only (on the caller's thread for what is left after the thread is gone). When it
    raises, the batch is lost: a warning naming ``label``, ``path`` and ``hint`` is logged
    and ``lost(batch)`` (by default ``len``) is added to ``write_failures``. ``on_close`` runs
    once, after the last write. The writer holds no reference to its owner, so an owner can
    register ``weakref.finalize(owner, writer.close)`` and still be collected.
    """

    def __init__(
        self,
        write: Callable[[list[Any]], None],
        *,
        path: str,
        flush_interval: float,
        lost: Callable[[list[Any]], int] = len,
        on_close: Callable[[], None] | None = None,
        label: str = "rh-parallel store",
        hint: str = "",
    ) -> None:
        self.flush_interval = flush_interval
        self.path = path
        self.label = label
        self.hint = hint
        self.batches = 0
        """How many batches were written (or attempted): tests count commits with it."""
        self._write = write
        self._lost = lost
        self._on_close = on_close
        self._pending: deque[Any] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._scheduled = False  # a batch has started: the thread commits it by its deadline
        self._deadline = 0.0
        self._flush_requested = False
        self._busy = False  # the thread is writing a batch it took from _pending
        self._waiters: list[threading.Event] = []
        self._closing = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._close_lock = threading.Lock()

    @property
    def write_failures(self) -> int:
        """How many operations were lost to failed writes."""
        return self._failures

    def pending(self) -> int:
        """How many operations are queued and not yet taken by the thread."""
        return len(self._pending)

    def submit(self, op: Any) -> None:
        """Queue ``op`` for the next batch (``StoreError`` after ``close``)."""
        if self._closing:
            raise StoreError(f"the store at {self.path!r} is closed", self.path)
        self._pending.append(op)
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        with self._cond:
            if self._thread is None:
                if self._closing:
                    return  # close() takes what is pending
                self._thread = threading.Thread(
                    target=self._run, name=f"rh-parallel-writer:{self.path}", daemon=True
                )
                self._thread.start()
            if not self._scheduled:
                self._scheduled = True
                self._deadline = time.monotonic() + self.flush_interval
                self._cond.notify()

    def flush(self) -> None:
        """Ask the thread to commit what is queued now, without waiting for it."""
        with self._cond:
            if self._scheduled:
                self._flush_requested = True
                self._cond.notify()

    def sync(self) -> None:
        """Commit everything queued before this call and wait for it (written or failed)."""
        with self._cond:
            thread = self._thread
            if thread is None or thread is threading.current_thread() or not thread.is_alive():
                return  # nothing was ever queued, a write callback, or close() is done
            if self._closing:
                done = None  # the thread takes everything before it ends
            elif not self._pending and not self._busy and not self._scheduled:
                return
            else:
                done = threading.Event()
                self._waiters.append(done)
                self._cond.notify()
        if done is None:
            thread.join()
        else:
            done.wait()

    def close(self) -> None:
        """Commit everything queued, stop the thread and wait for it (idempotent; any
        thread)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            # what the thread did not take (it never started, or a submit raced the close)
            self._write_batch(self._take())
            if self._on_close is not None:
                self._on_close()

    def _take(self) -> list[Any]:
        pending = self._pending
        return [pending.popleft() for _ in range(len(pending))]

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    if self._closing or self._waiters or self._flush_requested:
                        break
                    if self._scheduled:
                        remaining = self._deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        cond.wait(remaining)
                    else:
                        cond.wait()
                closing = self._closing
                waiters, self._waiters = self._waiters, []
                self._scheduled = self._flush_requested = False
                self._busy = True
                batch = self._take()
            try:
                self._write_batch(batch)
            finally:
                with cond:
                    self._busy = False
                for done in waiters:
                    done.set()
            if closing:
                return

    def _write_batch(self, batch: list[Any]) -> None:
        if not batch:
            return
        self.batches += 1
        try:
            self._write(batch)
        except Exception as exc:
            lost = self._lost(batch)
            self._failures += lost
            logger.warning(
                "%s %s: could not write %d item(s), they are lost%s: %s: %s",
                self.label,
                self.path,
                lost,
                self.hint,
                type(exc).__name__,
                exc,
            )
