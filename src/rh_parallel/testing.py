"""Test doubles for users' own tests of workflows built on rh-parallel.

- :class:`RecordCapture`: subscribe to a bus and keep every record, with helpers to filter.
- :class:`ConcurrencyProbe`: count how many calls run at once (measure limits, don't guess).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rh_parallel.model.enums import ExecutionStatus
from rh_parallel.model.events import ExecutionEvent
from rh_parallel.model.groups import ParallelEventGroup
from rh_parallel.runtime.bus import EventBus, Subscription

__all__ = ["ConcurrencyProbe", "RecordCapture"]

T = TypeVar("T")


class RecordCapture:
    """Every record a bus publishes, in publish order.

    >>> capture = RecordCapture(bus)
    >>> # ... run ...; await capture.flush()
    >>> # capture.items(status=ExecutionStatus.FAILED), capture.groups()
    """

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.records: list[Any] = []
        self.subscription: Subscription = bus.subscribe(self.records.append, name="capture")

    async def flush(self) -> list[Any]:
        """Wait for every published record to arrive; returns them."""
        await self.bus.flush()
        return self.records

    def items(
        self, status: ExecutionStatus | None = None, group_id: str | None = None
    ) -> list[ExecutionEvent]:
        """Item and event records, optionally of one status and/or one group."""
        return [
            r
            for r in self.records
            if isinstance(r, ExecutionEvent)
            and (status is None or r.execution_status == status)
            and (group_id is None or r.group_id == group_id)
        ]

    def groups(self) -> list[ParallelEventGroup]:
        """Group records (each group publishes one at start and one at end)."""
        return [r for r in self.records if isinstance(r, ParallelEventGroup)]

    def statuses(self, item_name: str) -> list[str]:
        """The lifecycle of one item, e.g. ``['started', 'retrying', 'completed']``."""
        return [
            r.execution_status.value
            for r in self.items()
            if r.item_name == item_name and r.execution_status is not None
        ]

    def close(self) -> None:
        self.subscription.unsubscribe()


class ConcurrencyProbe:
    """Counts calls running at once; ``peak`` is the most seen together.

    >>> probe = ConcurrencyProbe()
    >>> p.add(lambda: probe.run(work()))   # or: async with probe: ...
    """

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self.entered = 0
        self.exited = 0

    async def __aenter__(self) -> ConcurrencyProbe:
        self.current += 1
        self.entered += 1
        self.peak = max(self.peak, self.current)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.current -= 1
        self.exited += 1

    async def run(self, awaitable: Awaitable[T]) -> T:
        async with self:
            return await awaitable

    def wrap(self, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """``fn`` counted by this probe on every call."""

        async def counted(*args: Any, **kwargs: Any) -> T:
            async with self:
                return await fn(*args, **kwargs)

        return counted
