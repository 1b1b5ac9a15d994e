"""The observer interface: in-line, synchronous hooks the executor calls at lifecycle points.

Tracing and metrics are observers. Hooks must be cheap; one that raises is logged and ignored
(:class:`ObserverSet` guarantees it), so an observer can never fail a run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any

from rh_parallel.model.actors import BaseActor
from rh_parallel.model.enums import EventType
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.model.results import ExecutionResult

__all__ = ["ExecutionObserver", "GroupInfo", "ItemInfo", "ObserverSet", "current_item"]

logger = logging.getLogger("rh_parallel.observer")


class GroupInfo:
    """What observers see of a running group: its live model and a scratch dict of their own."""

    __slots__ = ("group", "parent_item", "scratch")

    def __init__(self, group: ParallelEventGroup, parent_item: ItemInfo | None) -> None:
        self.group = group
        self.parent_item = parent_item
        self.scratch: dict[object, Any] = {}


class ItemInfo:
    """What observers see of one item (or one sequential event) while it runs."""

    __slots__ = (
        "actor",
        "address",
        "attempts",
        "event_type",
        "group",
        "index",
        "name",
        "queue_time",
        "scratch",
    )

    def __init__(
        self,
        index: int | None,
        name: str,
        address: str,
        event_type: EventType,
        actor: BaseActor | None,
        group: GroupInfo | None,
    ) -> None:
        self.index = index
        self.name = name
        self.address = address
        self.event_type = event_type
        self.actor = actor
        self.group = group
        self.attempts = 0
        self.queue_time = 0.0
        self.scratch: dict[object, Any] | None = None

    @property
    def kind(self) -> str:
        """``agent``, ``tool``, ``llm`` or ``task``."""
        return self.event_type.kind


current_item: ContextVar[ItemInfo | None] = ContextVar("rh_parallel_item", default=None)
"""The observer view of the item (or event) whose code runs now; set only with observers."""


class ExecutionObserver:
    """Base class of observers: override the hooks you need; each default does nothing.

    ``item_scope`` wraps an item's whole run (every attempt) in the item's own task, so an
    observer can make something current there (the tracing observer makes the item's span
    current, so spans the user's code opens nest under it).
    """

    def on_group_start(self, group: GroupInfo) -> None:
        """A group starts running (status ``running``)."""

    def on_group_end(self, group: GroupInfo) -> None:
        """A group ended; its status and counters are final."""

    def item_scope(self, item: ItemInfo) -> AbstractContextManager[None] | None:
        """A context manager around the item's run, or ``None`` for no scope."""
        return None

    def on_item_start(self, item: ItemInfo) -> None:
        """An item got its worker slot(s) and its first attempt starts."""

    def on_item_retry(self, item: ItemInfo, error: BaseException | None, delay: float) -> None:
        """An attempt failed and the item will retry after ``delay`` seconds."""

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        """An item ended with ``result`` (also called for items that never ran)."""

    def on_breaker_state(self, breaker: str, state: str) -> None:
        """A circuit breaker changed state (``closed``, ``open``, ``half_open``)."""

    def on_breaker_rejection(self, breaker: str) -> None:
        """A circuit breaker rejected a call."""


def _log_failure(observer: ExecutionObserver, hook: str) -> None:
    logger.warning(
        "observer %s raised in %s; ignored", type(observer).__name__, hook, exc_info=True
    )


class ObserverSet:
    """Calls every observer's hook, isolating failures. ``bool(observers)`` is the fast path."""

    __slots__ = ("observers",)

    def __init__(self, observers: Sequence[ExecutionObserver]) -> None:
        self.observers = tuple(observers)

    def __bool__(self) -> bool:
        return bool(self.observers)

    def on_group_start(self, group: GroupInfo) -> None:
        for observer in self.observers:
            try:
                observer.on_group_start(group)
            except Exception:
                _log_failure(observer, "on_group_start")

    def on_group_end(self, group: GroupInfo) -> None:
        for observer in self.observers:
            try:
                observer.on_group_end(group)
            except Exception:
                _log_failure(observer, "on_group_end")

    @contextlib.contextmanager
    def item_scope(self, item: ItemInfo) -> Iterator[None]:
        """Enter every observer's item scope; a scope that fails to enter or exit is skipped."""
        with contextlib.ExitStack() as stack:
            for observer in self.observers:
                try:
                    scope = observer.item_scope(item)
                    if scope is not None:
                        stack.enter_context(_Guarded(observer, scope))
                except Exception:
                    _log_failure(observer, "item_scope")
            yield

    def on_item_start(self, item: ItemInfo) -> None:
        for observer in self.observers:
            try:
                observer.on_item_start(item)
            except Exception:
                _log_failure(observer, "on_item_start")

    def on_item_retry(self, item: ItemInfo, error: BaseException | None, delay: float) -> None:
        for observer in self.observers:
            try:
                observer.on_item_retry(item, error, delay)
            except Exception:
                _log_failure(observer, "on_item_retry")

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        for observer in self.observers:
            try:
                observer.on_item_end(item, result)
            except Exception:
                _log_failure(observer, "on_item_end")

    def on_breaker_state(self, breaker: str, state: str) -> None:
        for observer in self.observers:
            try:
                observer.on_breaker_state(breaker, state)
            except Exception:
                _log_failure(observer, "on_breaker_state")

    def on_breaker_rejection(self, breaker: str) -> None:
        for observer in self.observers:
            try:
                observer.on_breaker_rejection(breaker)
            except Exception:
                _log_failure(observer, "on_breaker_rejection")


class _Guarded(AbstractContextManager[None]):
    """Wraps one observer's scope so that an exception in its exit is logged, not raised."""

    __slots__ = ("_observer", "_scope")

    def __init__(self, observer: ExecutionObserver, scope: AbstractContextManager[None]) -> None:
        self._observer = observer
        self._scope = scope

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._scope.__exit__(*exc_info)
        except Exception:
            _log_failure(self._observer, "item_scope exit")
