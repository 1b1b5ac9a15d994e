"""The event bus: lifecycle records out of band to subscribers, never blocking the publisher.

Each subscriber has its own queue and a dispatcher task that delivers records in publish order;
the task exists only while records are waiting, so an idle bus holds no task. A subscriber that
raises is logged and keeps receiving later records.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from opentelemetry import trace

__all__ = ["EventBus", "Subscription"]

logger = logging.getLogger("rh_parallel.bus")

Handler = Callable[[Any], Awaitable[None] | None]

_CLOSED = object()


class Subscription:
    """One subscriber: its queue, its dispatcher task, and how to unsubscribe."""

    __slots__ = ("_bus", "_queue", "_task", "handler", "is_stream", "name")

    def __init__(self, bus: EventBus, handler: Handler, name: str, is_stream: bool = False) -> None:
        self._bus = bus
        self.handler = handler
        self.name = name
        self.is_stream = is_stream
        self._queue: deque[Any] = deque()
        self._task: asyncio.Task[None] | None = None

    def unsubscribe(self) -> None:
        """Stop receiving records (records already queued are still delivered)."""
        self._bus._remove(self)

    def _push(self, record: Any) -> None:
        self._queue.append(record)
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._dispatch(), name=f"rh_parallel-bus-{self.name}")

    async def _dispatch(self) -> None:
        queue = self._queue
        try:
            while queue:
                record = queue.popleft()
                try:
                    outcome = self.handler(record)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    logger.warning(
                        "bus subscriber %s raised on a record; ignored", self.name, exc_info=True
                    )
        finally:
            self._task = None

    async def _wait_idle(self) -> None:
        while (task := self._task) is not None and task is not asyncio.current_task():
            await asyncio.wait([task])

    async def _close(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._queue.clear()


class EventBus:
    """Publishes records to subscribers without waiting for them.

    >>> bus = EventBus()
    >>> sub = bus.subscribe(print)          # sync or async handler
    >>> # bus.publish(record); await bus.flush(); await bus.aclose()
    """

    def __init__(self) -> None:
        self._subscriptions: tuple[Subscription, ...] = ()

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens: the executor builds no record when nobody does."""
        return bool(self._subscriptions)

    def subscribe(self, handler: Handler, *, name: str | None = None) -> Subscription:
        """Deliver every record published from now on to ``handler``, in publish order."""
        if not callable(handler):
            raise TypeError(
                f"subscribe() takes a callable (def or async def handler(record)), got {handler!r}"
            )
        label = name or str(getattr(handler, "__qualname__", type(handler).__name__))
        subscription = Subscription(self, handler, label)
        self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    def publish(self, record: Any) -> None:
        """Queue ``record`` for every subscriber and return at once (needs a running loop).

        Records carrying ``trace_id`` / ``span_id`` fields that are still unset get the ids of
        the span current now, since subscribers run later in their own tasks.
        """
        subscriptions = self._subscriptions
        if not subscriptions:
            return
        if getattr(record, "span_id", "") is None:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                record.trace_id = format(context.trace_id, "032x")
                record.span_id = format(context.span_id, "016x")
        for subscription in subscriptions:
            subscription._push(record)

    async def flush(self) -> None:
        """Wait until every record published so far has been delivered."""
        for subscription in self._subscriptions:
            await subscription._wait_idle()

    async def stream(self) -> AsyncIterator[Any]:
        """Iterate over records published from now on (until the bus is closed)."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        subscription = Subscription(self, queue.put_nowait, "stream", is_stream=True)
        self._subscriptions = (*self._subscriptions, subscription)
        try:
            while True:
                record = await queue.get()
                if record is _CLOSED:
                    return
                yield record
        finally:
            subscription.unsubscribe()

    async def aclose(self) -> None:
        """Deliver what is queued, then stop every dispatcher and end every ``stream()``."""
        await self.flush()
        for subscription in self._subscriptions:
            if subscription.is_stream:
                subscription.handler(_CLOSED)
            await subscription._close()
        self._subscriptions = ()

    async def __aenter__(self) -> EventBus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
