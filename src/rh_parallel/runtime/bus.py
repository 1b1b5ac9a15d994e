"""The event bus: lifecycle records out of band to subscribers, never blocking the publisher.

DESIGN.md section 1, and how it is kept:

- Each subscriber has its own bounded queue (``max_queue``) and a dispatcher task that exists
  only while records wait. Past ``max_queue`` the oldest records are dropped, counted by
  subscription, by bus and process-wide by name (read by the telemetry layer through
  :func:`dropped_by_subscriber`; names capped at ``MAX_SUBSCRIBER_LABELS``, then ``_other``),
  and warned about once per subscriber.
- A subscriber that raises anything is logged and delivery goes on. Only a real cancellation of
  the dispatcher (its ``cancelling()`` count is up: loop shutdown, ``aclose()``),
  ``KeyboardInterrupt`` and ``SystemExit`` stop it; its queue then waits for the next one.
- ``publish()`` is safe from any thread. Dispatchers run on the bus's *owner* loop: the first
  running loop that uses it, replaced once closed or stopped (a bus serves successive
  ``asyncio.run()`` calls). Other threads put records in a bounded inbox and wake the owner;
  with no live owner they wait there for the next ``publish()`` from a loop, ``flush()`` or
  ``aclose()``, and are delivered before anything newer.
- Nothing is kept per record or per item name: a record lives only in the queues it waits in.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
import weakref
from asyncio.events import _get_running_loop
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from threading import get_ident
from typing import Any

from opentelemetry import trace

from rh_parallel._old_names import install, public_dir

__all__ = [
    "MAX_SUBSCRIBER_LABELS",
    "OTHER_SUBSCRIBER",
    "EventBus",
    "RecordStream",
    "Subscription",
    "dropped_by_subscriber",
]

logger = logging.getLogger("rh_parallel.bus")

Handler = Callable[[Any], Awaitable[None] | None]

DEFAULT_MAX_QUEUE = 100_000
MAX_SUBSCRIBER_LABELS = 50  # distinct subscriber names counted apart; the rest fold into:
OTHER_SUBSCRIBER = "_other"

# name -> [dropped, time of the first drop], for every bus of the process; at most 51 names
_drops: dict[str, list[float]] = {}
_drops_lock = threading.Lock()  # guards every drop count: drops may be counted on any thread


def dropped_by_subscriber() -> dict[str, tuple[int, float]]:
    """Records dropped so far in this process: ``{subscriber: (count, time of first drop)}``."""
    with _drops_lock:
        return {name: (int(entry[0]), entry[1]) for name, entry in _drops.items()}


def _capped(counts: dict[str, Any], name: str) -> str:
    """``name`` if it has or may take its own entry in ``counts``, else ``_other``."""
    if name in counts or len(counts) < MAX_SUBSCRIBER_LABELS:
        return name
    return OTHER_SUBSCRIBER


class Subscription:
    """One subscriber: its bounded queue, its dispatcher task (or stream waiter), its drops."""

    def __init__(self, bus: EventBus, handler: Handler | None, name: str, max_queue: int) -> None:
        self._bus = bus
        self.handler = handler  # None for a stream, whose consumer pulls from the queue
        self.name = name
        self.max_queue = max_queue  # the most records that may wait; past it the oldest drop
        self.dropped = 0  # records this subscriber lost to a full queue
        self._warned = False
        self._queue: deque[Any] = deque(maxlen=max_queue)
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None  # a stream's consumer, waiting
        self._closed = False  # a stream ends once its queue is empty

    def unsubscribe(self) -> None:
        """Stop receiving records (records already queued are still delivered)."""
        self._bus._remove(self)

    def _push(self, record: Any) -> None:
        """Queue ``record`` (on the owner's thread) and start the dispatcher if none runs."""
        queue = self._queue
        if len(queue) == self.max_queue:
            self._count_drops(1)
        queue.append(record)
        if self._task is None:
            if self.handler is None:
                self._wake()
            else:
                self._start()

    def _start(self) -> None:
        task = self._task = asyncio.get_running_loop().create_task(
            self._dispatch(), name=f"rh_parallel-bus-{self.name}"
        )
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        # also for a task cancelled before it ran, whose ``finally`` never did
        if self._task is task:
            self._task = None

    async def _dispatch(self) -> None:
        me = asyncio.current_task()
        queue, handler = self._queue, self.handler
        assert me is not None and handler is not None
        try:
            while queue and self._task is me and not me.cancelling():  # even if swallowed
                record = queue.popleft()
                try:
                    outcome = handler(record)
                    # a handler may be another bus's publish(), whose token is not awaited
                    if (
                        outcome is not None
                        and outcome is not _PUBLISHED
                        and inspect.isawaitable(outcome)
                    ):
                        await outcome
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    # this task cancelled (not just the handler), or this coroutine closed
                    if (isinstance(exc, asyncio.CancelledError) and me.cancelling()) or (
                        isinstance(exc, GeneratorExit) and not _running_task_is(me)
                    ):
                        raise
                    message = "bus subscriber %r raised %s on a record; delivery goes on"
                    logger.warning(message, self.name, type(exc).__name__, exc_info=exc)
        finally:
            if self._task is me:
                self._task = None
            if not queue:
                self._bus._retiring.discard(self)

    def _wake(self) -> None:
        """Wake a stream's consumer, which may wait on another loop's thread."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        loop = waiter.get_loop()
        if loop is _get_running_loop():
            waiter.set_result(None)
        else:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, waiter)

    def _count_drops(self, n: int) -> None:
        """Count ``n`` lost records here, on the bus and process-wide; warn the first time."""
        with _drops_lock:
            self.dropped += n
            counts = self._bus._dropped
            key = _capped(counts, self.name)
            counts[key] = counts.get(key, 0) + n
            entry = _drops.setdefault(_capped(_drops, self.name), [0, time.time()])
            entry[0] += n
            warn, self._warned = not self._warned, True
        if warn:
            message = "bus subscriber %r is too slow: its queue is full (max_queue=%d), so the "
            message += "oldest records are dropped (counted in bus.dropped(name) and in "
            message += "rh_parallel_bus_dropped_total); make it faster or raise max_queue"
            logger.warning(message, self.name, self.max_queue)


class RecordStream:
    """The records published after ``bus.stream()`` was called, as an async iterator.

    It ends when the bus is closed (after yielding what was queued) or :meth:`aclose` is
    called; a stream dropped without either unsubscribes itself when it is collected.
    """

    def __init__(self, bus: EventBus, max_queue: int, name: str) -> None:
        self.subscription = subscription = Subscription(bus, None, name, max_queue)
        bus._add(subscription)
        self._finalizer = weakref.finalize(self, bus._remove, subscription)

    def __aiter__(self) -> RecordStream:
        return self

    async def __anext__(self) -> Any:
        subscription = self.subscription
        queue = subscription._queue
        while True:
            if queue:
                return queue.popleft()
            if subscription._closed:
                raise StopAsyncIteration
            waiter = subscription._waiter = asyncio.get_running_loop().create_future()
            try:
                if not queue and not subscription._closed:  # a pusher may be on another thread
                    await waiter
            finally:
                subscription._waiter = None

    async def aclose(self) -> None:
        """Stop receiving records; the iteration ends after what is already queued."""
        self._finalizer()


class EventBus:
    """Publishes records to subscribers without waiting for them.

    >>> bus = EventBus()
    >>> sub = bus.subscribe(print, name="printer")   # sync or async handler
    >>> # bus.publish(record); await bus.flush(); await bus.aclose()
    """

    def __init__(self) -> None:
        self._subscriptions: tuple[Subscription, ...] = ()
        self._retiring: set[Subscription] = set()  # unsubscribed with records still to deliver
        self._dropped: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # the owner: runs the dispatchers
        self._inbox: deque[Any] = deque()  # records from other threads, for the owner
        self._inbox_max = DEFAULT_MAX_QUEUE
        self._wake_scheduled = False
        # guards the owner, the inbox and the subscription tuple; re-entrant, as a handler of
        # the log warnings _push() may emit under it can publish
        self._lock = threading.RLock()

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens: the executor builds no record when nobody does."""
        return bool(self._subscriptions)

    def subscribe(
        self, handler: Handler, *, name: str | None = None, max_queue: int = DEFAULT_MAX_QUEUE
    ) -> Subscription:
        """Deliver every record published from now on to ``handler``, in publish order.

        At most ``max_queue`` records wait for the handler; past that the oldest are dropped
        and counted under ``name`` (default: the handler's qualified name).
        """
        if not callable(handler):
            raise TypeError(
                f"subscribe() takes a callable (def or async def handler(record)), got {handler!r}"
            )
        if name is None:
            name = str(getattr(handler, "__qualname__", type(handler).__name__))
        _check("subscribe", name, max_queue)
        return self._add(Subscription(self, handler, name, max_queue))

    def stream(self, *, max_queue: int = DEFAULT_MAX_QUEUE, name: str = "stream") -> RecordStream:
        """An async iterator over the records published from now on, until the bus is closed.

        ``async for record in bus.stream(): ...``; at most ``max_queue`` records wait for the
        consumer (past it the oldest are dropped, as for ``subscribe()``).
        """
        _check("stream", name, max_queue)
        return RecordStream(self, max_queue, name)

    def dropped(self, name: str | None = None) -> int:
        """Records dropped on this bus for subscribers called ``name`` (all when ``None``)."""
        with _drops_lock:
            return sum(self._dropped.values()) if name is None else self._dropped.get(name, 0)

    def _add(self, subscription: Subscription) -> Subscription:
        with self._lock:
            self._set_subscriptions((*self._subscriptions, subscription))
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            self._set_subscriptions(tuple(s for s in self._subscriptions if s is not subscription))
            if subscription.handler is None:  # a stream: it ends after what it has queued
                subscription._closed = True
                subscription._wake()
            elif subscription._queue or subscription._task is not None:
                self._retiring.add(subscription)  # flush() still waits for its records

    def _set_subscriptions(self, subscriptions: tuple[Subscription, ...]) -> None:
        self._subscriptions = subscriptions
        self._inbox_max = max((s.max_queue for s in subscriptions), default=DEFAULT_MAX_QUEUE)

    # -- publishing -----------------------------------------------------------------------

    def publish(self, record: Any) -> None:
        """Queue ``record`` for every subscriber and return at once; safe from any thread.

        Records carrying ``trace_id`` / ``span_id`` fields that are still unset get the ids of
        the span current now, since subscribers run later in their own tasks. There is nothing
        to wait for (RH-Agents' ``await bus.publish(record)`` still works, with a
        DeprecationWarning); ``await bus.flush()`` waits until the records are delivered.
        """
        subscriptions = self._subscriptions
        if not subscriptions:
            return _PUBLISHED  # type: ignore[return-value]  # None to type checkers: no await
        if getattr(record, "span_id", "") is None:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                record.trace_id = format(context.trace_id, "032x")
                record.span_id = format(context.span_id, "016x")
        owner = self._loop
        # on the owner's thread while it runs? asyncio's loops tell by their thread id, cheaply
        # (_get_running_loop() makes a getpid() system call on Python 3.11)
        if owner is None or getattr(owner, "_thread_id", None) != get_ident():
            running = _get_running_loop()
            if running is None or (running is not owner and not self._claim(running)):
                self._post(record)
                return _PUBLISHED  # type: ignore[return-value]
        if self._inbox:  # earlier records from other threads, or from before a loop, go first
            self._drain()
        for subscription in subscriptions:
            subscription._push(record)
        return _PUBLISHED  # type: ignore[return-value]

    def _claim(self, running: asyncio.AbstractEventLoop) -> bool:
        """Make ``running`` the owner unless another live loop owns the bus."""
        with self._lock:
            owner = self._loop
            if owner is running:
                return True
            if owner is not None and owner.is_running() and not owner.is_closed():
                return False
            self._loop = running
            self._wake_scheduled = False
            subscriptions = (*self._subscriptions, *self._retiring)
        for subscription in subscriptions:
            subscription._task = None  # a task of the old loop will never run again
        return True

    def _post(self, record: Any) -> None:
        """Off the owner's thread: inbox the record and wake the owner."""
        with self._lock:
            inbox = self._inbox
            overflow = len(inbox) >= self._inbox_max
            if overflow:
                inbox.popleft()
            inbox.append(record)
            owner = self._loop
            wake = not self._wake_scheduled and owner is not None and not owner.is_closed()
            self._wake_scheduled |= wake
        if overflow:  # every subscriber lost the oldest record
            for subscription in self._subscriptions:
                subscription._count_drops(1)
        if wake and owner is not None:
            try:
                owner.call_soon_threadsafe(self._woken)
            except RuntimeError:  # closed meanwhile: the next loop to claim the bus delivers
                with self._lock:
                    self._wake_scheduled = False

    def _woken(self) -> None:
        if _get_running_loop() is self._loop:
            self._drain()

    def _drain(self) -> None:
        """Hand the inbox to the subscribers (on the owner's thread)."""
        with self._lock:  # held throughout, so that _busy() never sees records in transit
            self._wake_scheduled = False
            batch, self._inbox = self._inbox, deque()
            subscriptions = self._subscriptions
            for record in batch:
                for subscription in subscriptions:
                    subscription._push(record)

    # -- waiting and closing --------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every record published so far (from any thread) has been delivered.

        Streams are not waited for: their consumers pull at their own pace.
        """
        running = asyncio.get_running_loop()
        while not self._claim(running):  # the owner is another loop, running on another thread:
            if not self._busy():  # its dispatchers deliver; look again shortly
                return
            await asyncio.sleep(0.005)
        await self._flush_on_owner()

    def _busy(self) -> bool:
        """Whether records wait (or are being delivered) for a handler subscription."""
        with self._lock:  # not halfway through a _drain() on the owner's thread
            return bool(self._inbox) or any(
                s.handler is not None and (s._queue or s._task is not None)
                for s in (*self._subscriptions, *self._retiring)
            )

    async def _flush_on_owner(self) -> None:
        self._drain()
        me = asyncio.current_task()
        for subscription in (*self._subscriptions, *self._retiring):
            while subscription.handler is not None and (
                subscription._queue or subscription._task is not None
            ):
                if subscription._task is None:  # records left by an earlier loop or dispatcher
                    subscription._start()
                task = subscription._task
                if task is None or task is me:  # flush() from this subscriber's own handler
                    break
                await asyncio.wait([task])

    async def aclose(self) -> None:
        """Deliver what is queued, then stop every dispatcher and end every ``stream()``.

        Handler subscriptions stay: the bus can be used again (by a later event loop, too).
        """
        await self.flush()
        for subscription in self._subscriptions:
            if subscription.handler is None:
                subscription.unsubscribe()
        if self._loop is not asyncio.get_running_loop():
            return  # the owner is another loop: flush() saw its dispatchers finish
        me = asyncio.current_task()
        tasks = [s._task for s in self._subscriptions if s._task not in (None, me)]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> EventBus:
        return self

    def __dir__(self) -> list[str]:
        return public_dir(self)  # without RH-Agents' names, which only raise

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _Published:
    """What ``publish()`` returns: nothing to wait for. Awaiting it, as RH-Agents programs
    did (``await bus.publish(record)``), completes at once with a DeprecationWarning."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        from rh_parallel import _migration

        _migration.warn("EventBus.publish")
        yield from ()

    def __bool__(self) -> bool:
        return False  # false, as the None that publish() is typed to return

    def __repr__(self) -> str:  # what asyncio.create_task(bus.publish(record)) says it got
        return (
            "<the record is queued already: bus.publish(record) returns at once, with "
            "nothing to await or to run as a task (docs/migration.md)>"
        )


_PUBLISHED = _Published()
install(EventBus)  # RH-Agents' bus.events: an AttributeError naming the fix


def _check(where: str, name: object, max_queue: object) -> None:
    """Refuse a bad ``name`` / ``max_queue`` at once, saying what to pass instead."""
    if type(name) is not str or not name or not name.isprintable():
        error = TypeError if type(name) is not str else ValueError
        raise error(f"{where}(name=...) takes a non-empty printable str, got {name!r}")
    if type(max_queue) is not int or max_queue < 1:
        error = TypeError if type(max_queue) is not int else ValueError
        raise error(
            f"{where}(max_queue=...) takes an int >= 1, the most records that may wait for this "
            f"subscriber (default {DEFAULT_MAX_QUEUE}); got {max_queue!r}"
        )


def _running_task_is(task: asyncio.Task[None]) -> bool:
    loop = _get_running_loop()
    return loop is not None and asyncio.current_task(loop) is task


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
