"""The observer interface: in-line, synchronous hooks the executor calls at lifecycle points.

Tracing and metrics are observers. Hooks must be cheap; one that raises is logged and ignored
(:class:`ObserverSet` guarantees it), so an observer can never fail a run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from rh_parallel.model.actors import BaseActor
from rh_parallel.model.enums import EventType
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.model.results import ExecutionResult

__all__ = ["ExecutionObserver", "GroupInfo", "ItemInfo", "ObserverSet"]

logger = logging.getLogger("rh_parallel.observer")


class GroupInfo:
    """What observers see of a running group: its live model and a scratch dict of their own.

    ``deciding`` is set when the group has ended without completing, before ``on_group_end``:
    the result of the item whose failure decided the outcome (the one that stopped the group
    under FAIL_FAST or its threshold; for a timeout or a cancel, the first item the stop ended;
    otherwise the first failure recorded), ``None`` when no item result explains it.
    """

    __slots__ = ("breaker", "deciding", "group", "parent_item", "scratch")

    def __init__(
        self,
        group: ParallelEventGroup,
        parent_item: ItemInfo | None,
        breaker: tuple[str, str] | None = None,
    ) -> None:
        self.group: ParallelEventGroup = group
        """The group's live model (its counters and status as they are now)."""
        self.parent_item: ItemInfo | None = parent_item
        """The item (or sequential event) whose code opened this group; ``None`` at top level."""
        self.breaker: tuple[str, str] | None = breaker
        """``(name, state)`` of the group's circuit breaker when the group started, or
        ``None`` without one."""
        self.scratch: dict[object, Any] = {}
        """Per-observer storage for this group's run: key it by the observer
        (``group.scratch[self] = span``), so observers never see each other's entries."""
        self.deciding: ExecutionResult | None = None
        """The result that decided a failed or cancelled outcome, set before ``on_group_end``
        (see above); ``None`` before then, when the group completed, or when no item's result
        explains it."""


class ItemInfo:
    """What observers see of one item (or one sequential event) while it runs."""

    __slots__ = (
        "actor",
        "address",
        "attempts",
        "event_type",
        "group",
        "index",
        "kind",
        "name",
        "queue_time",
        "run_id",
        "running",
        "scratch",
        "span",
    )

    def __init__(
        self,
        index: int | None,
        name: str,
        address: str,
        event_type: EventType,
        actor: BaseActor | None,
        group: GroupInfo | None,
        run_id: str | None = None,
    ) -> None:
        self.index: int | None = index
        """The item's position in its group, in add order (``None`` for a sequential event)."""
        self.name: str = name
        """The item's name: the one given to ``add()``, else its function's or actor's name."""
        self.address: str = address
        """The item's address in the execution tree: ``docs/doc-1``, ``docs/2:fetch``."""
        self.event_type: EventType = event_type
        """The kind of work: an actor's ``event_type``, ``TASK`` for other work."""
        self.kind: str = event_type.kind
        """``agent``, ``tool``, ``llm`` or ``task``: the ``kind`` metric label."""
        self.actor: BaseActor | None = actor
        """The actor of an event invocation, ``None`` for other work."""
        self.group: GroupInfo | None = group
        """The item's group (``None`` for a sequential event)."""
        self.run_id: str | None = run_id
        """The run's id."""
        self.running: bool = False
        """Whether an attempt runs now, holding the item's slot (not waiting to start, not
        backing off before a retry, not ended)."""
        self.attempts: int = 0
        """Attempts started so far."""
        self.queue_time: float = 0.0
        """Seconds spent waiting for a worker slot so far."""
        self.scratch: dict[object, Any] | None = None
        """Per-observer storage, as :attr:`GroupInfo.scratch`; ``None`` until an observer
        sets it to a dict (most items never need one)."""
        # the item's own span, when a tracer records one: its records carry its ids, whatever
        # task publishes them (an item skipped or stopped is recorded from another one)
        self.span: Any = None


class ExecutionObserver:
    """Base class of observers: override the hooks you need; each default does nothing.

    ``item_scope`` wraps an item's whole run (every attempt) in the item's own task, so an
    observer can make something current there (the tracing observer makes the item's span
    current, so spans the user's code opens nest under it).
    """

    def on_group_start(self, group: GroupInfo) -> bool | None:
        """A group starts running (status ``running``).

        Return ``False`` to skip this group's item hooks (the tracing observer does when no
        SDK is configured, so an unobserved group costs nothing per item).
        """
        return None

    def on_group_end(self, group: GroupInfo) -> None:
        """A group ended; its status and counters are final."""

    def item_scope(self, item: ItemInfo) -> AbstractContextManager[None] | None:
        """A context manager around the item's run, or ``None`` for no scope."""
        return None

    def on_item_start(self, item: ItemInfo) -> None:
        """An item got its worker slot(s) and its first attempt starts."""

    def on_item_retry(self, item: ItemInfo, error: BaseException | None, delay: float) -> None:
        """An attempt failed and the item will retry after ``delay`` seconds; it gave its
        slot back for the wait."""

    def on_item_resume(self, item: ItemInfo) -> None:
        """An item took its slot back after a retry's wait; its next attempt starts."""

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        """An item ended with ``result`` (also called for items that never ran)."""

    def on_breaker_state(self, breaker: str, state: str) -> None:
        """A circuit breaker changed state (``closed``, ``open``, ``half_open``)."""

    def on_breaker_rejection(self, breaker: str) -> None:
        """A circuit breaker rejected a call."""

    def on_cache_lookups(self, group: GroupInfo | None, hits: int, misses: int) -> None:
        """Items (of ``group``, or a sequential event when ``None``) looked up in the state's
        cache before running: ``hits`` were served from it, ``misses`` run."""

    def on_item_wait(self, item: ItemInfo, limiter: str, seconds: float) -> None:
        """An item waited ``seconds`` for the rate limit named ``limiter`` before an attempt."""

    def on_limit_change(self, group: GroupInfo, old: int, new: int) -> None:
        """A group's concurrency limit moved (an ``AdaptiveLimit``) from ``old`` to ``new``."""


def _log_failure(observer: ExecutionObserver, hook: str) -> None:
    logger.warning(
        "observer %s raised in %s; ignored", type(observer).__name__, hook, exc_info=True
    )


def _overrides(observer: ExecutionObserver, hook: str) -> bool:
    return getattr(type(observer), hook) is not getattr(ExecutionObserver, hook)


class ObserverSet:
    """Calls every observer's hook, isolating failures. ``bool(observers)`` is the fast path.

    Each hook is dispatched only to the observers that override it.
    """

    __slots__ = ("_by_hook", "observers")

    def __init__(self, observers: Sequence[ExecutionObserver]) -> None:
        self.observers = tuple(observers)
        self._by_hook = {
            hook: tuple((o, getattr(o, hook)) for o in self.observers if _overrides(o, hook))
            for hook in (
                "on_group_start",
                "on_group_end",
                "item_scope",
                "on_item_start",
                "on_item_retry",
                "on_item_resume",
                "on_item_end",
                "on_breaker_state",
                "on_breaker_rejection",
                "on_cache_lookups",
                "on_item_wait",
                "on_limit_change",
            )
        }

    def __bool__(self) -> bool:
        return bool(self.observers)

    def on_group_start(self, group: GroupInfo) -> ObserverSet:
        """Tell every observer; returns the set that wants this group's item hooks."""
        declined = []
        for observer in self.observers:
            try:
                if observer.on_group_start(group) is False:
                    declined.append(observer)
            except Exception:
                _log_failure(observer, "on_group_start")
        if not declined:
            return self
        return ObserverSet([o for o in self.observers if o not in declined])

    def _notify(self, hook: str, *args: object) -> None:
        """Call ``hook`` on every observer that overrides it; log and skip what raises."""
        for observer, method in self._by_hook[hook]:
            try:
                method(*args)
            except Exception:
                _log_failure(observer, hook)

    def on_group_end(self, group: GroupInfo) -> None:
        self._notify("on_group_end", group)

    def enter_item(
        self, item: ItemInfo
    ) -> list[tuple[ExecutionObserver, AbstractContextManager[None]]] | None:
        """Enter every observer's item scope (a scope that fails to enter is skipped)."""
        entered = None
        for observer, item_scope in self._by_hook["item_scope"]:
            try:
                scope = item_scope(item)
                if scope is not None:
                    scope.__enter__()
                    if entered is None:
                        entered = []
                    entered.append((observer, scope))
            except Exception:
                _log_failure(observer, "item_scope")
        return entered

    def exit_item(
        self, entered: list[tuple[ExecutionObserver, AbstractContextManager[None]]] | None
    ) -> None:
        """Leave the scopes ``enter_item`` entered, innermost first; failures are logged."""
        if not entered:
            return
        for observer, scope in reversed(entered):
            try:
                scope.__exit__(None, None, None)
            except Exception:
                _log_failure(observer, "item_scope exit")

    # on_item_start / on_item_end run once per item: they loop inline rather than through
    # _notify, which measurably costs a frame and an argument tuple per item.

    def on_item_start(self, item: ItemInfo) -> None:
        for observer, method in self._by_hook["on_item_start"]:
            try:
                method(item)
            except Exception:
                _log_failure(observer, "on_item_start")

    def on_item_retry(self, item: ItemInfo, error: BaseException | None, delay: float) -> None:
        self._notify("on_item_retry", item, error, delay)

    def on_item_resume(self, item: ItemInfo) -> None:
        self._notify("on_item_resume", item)

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        for observer, method in self._by_hook["on_item_end"]:
            try:
                method(item, result)
            except Exception:
                _log_failure(observer, "on_item_end")

    def on_breaker_state(self, breaker: str, state: str) -> None:
        self._notify("on_breaker_state", breaker, state)

    def on_breaker_rejection(self, breaker: str) -> None:
        self._notify("on_breaker_rejection", breaker)

    def on_cache_lookups(self, group: GroupInfo | None, hits: int, misses: int) -> None:
        self._notify("on_cache_lookups", group, hits, misses)

    def on_item_wait(self, item: ItemInfo, limiter: str, seconds: float) -> None:
        self._notify("on_item_wait", item, limiter, seconds)

    def on_limit_change(self, group: GroupInfo, old: int, new: int) -> None:
        self._notify("on_limit_change", group, old, new)
