"""Worker slots: a group's own limit, the state-wide limit, and an item's share of the latter.

Every rule about who may run lives here:

- :class:`GroupSlots` counts a group's free slots. An item that gave its slot back for a retry
  backoff waits in line for the next free one, ahead of items that have not started.
- :class:`GlobalLimiter` is the optional state-wide limit. It is not tied to an event loop
  (a state serves successive ``asyncio.run()`` calls): its waiters are futures of whichever
  loop is running when they wait.
- :class:`GlobalLease` is one item's hold on the state-wide limit. The item lends it back
  while it *waits* on groups it opened (their items need slots of the same limit), counted, so
  an item that awaits two nested groups at once lends once and takes its slot back only when
  it stops waiting on both. Whenever the item's own code runs, it holds the slot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType

from rh_parallel.runtime.scope import Lease, current_scope

__all__ = ["GlobalLease", "GlobalLimiter", "GroupSlots", "Loan"]


def _wake_first(waiters: deque[asyncio.Future[None]]) -> bool:
    """Hand a freed slot to the first live waiter; ``False`` when nobody was waiting."""
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done() and not waiter.get_loop().is_closed():
            waiter.set_result(None)
            return True
    return False


async def _wait_for_handoff(
    waiters: deque[asyncio.Future[None]], give_back: Callable[[], object]
) -> None:
    """Queue up for a slot. A slot handed over just as the wait is cancelled is given back
    with ``give_back()`` before the cancellation goes on, so no slot is lost."""
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    except asyncio.CancelledError:
        if waiter.done() and not waiter.cancelled():
            give_back()
        raise


class GroupSlots:
    """The free slots of one group (``max_workers``)."""

    __slots__ = ("_waiters", "free", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot for an item that has not started, if one is free now."""
        if self.free > 0:
            self.free -= 1
            return True
        return False

    def give_back(self) -> bool:
        """Return a slot: to a retrying item waiting for one, else to the pool.

        Returns ``True`` when the slot went back to the pool (the caller may admit new items).
        """
        if self.free >= 0 and self._waiters and _wake_first(self._waiters):
            return False
        self.free += 1
        return True

    def resize(self, limit: int) -> None:
        """Change the limit (an adaptive limit moved): more slots are free at once, fewer are
        taken back as items give theirs back (``free`` may go below zero meanwhile)."""
        self.free += limit - self.limit
        self.limit = limit

    async def take_back(self) -> None:
        """Wait for a slot after a backoff; retrying items go before items not started."""
        if self.free > 0:
            self.free -= 1
            return
        await _wait_for_handoff(self._waiters, self.give_back)


class GlobalLimiter:
    """The state-wide limit: at most ``limit`` items hold a slot at once, over every loop."""

    __slots__ = ("_loop", "_waiters", "free", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def held(self) -> int:
        """Slots held now."""
        return self.limit - self.free

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            owner = self._loop
            if owner is not None and self.free < self.limit and owner.is_running():
                raise RuntimeError(
                    "this ExecutionState's global_max_workers limit is in use by another "
                    "event loop (another thread); a state serves one loop at a time: give "
                    "each thread its own ExecutionState"
                )
            self._loop = loop
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        await _wait_for_handoff(self._waiters, self.release)

    def release(self) -> None:
        if not _wake_first(self._waiters):
            self.free += 1


class GlobalLease:
    """One item's hold on the state-wide limit, lent back while it waits on nested groups.

    Several tasks can share one lease (``asyncio.gather`` inside an item runs its awaitables
    in tasks of their own, with the item's scope): one of them takes the slot, the others
    wait for that, so a lease never holds more than one slot.
    """

    __slots__ = ("_followers", "_limiter", "acquiring", "closed", "held", "lent")

    def __init__(self, limiter: GlobalLimiter) -> None:
        self._limiter = limiter
        self.held = False
        self.closed = False  # the item ended: a late end of a loan takes nothing back
        self.lent = 0  # how many waits on nested groups are under way
        self.acquiring = False
        self._followers: list[asyncio.Future[None]] = []

    async def acquire(self) -> None:
        """Hold the slot, waiting for it (no-op when held, lent out, or the item ended)."""
        while not self.held and not self.closed and self.lent == 0:
            if self.acquiring:  # another task of this item is taking it: wait for that
                follower: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._followers.append(follower)
                await follower
                continue
            self.acquiring = True
            try:
                await self._limiter.acquire()
            finally:
                self.acquiring = False
                followers, self._followers = self._followers, []
                for follower in followers:
                    if not follower.done():
                        follower.set_result(None)
            if self.closed or self.lent:  # ended, or lent out again while it waited
                self._limiter.release()
                return
            self.held = True

    def release(self) -> None:
        """Give the slot back for good (the item ended or backs off)."""
        if self.held:
            self.held = False
            self._limiter.release()

    def close(self) -> None:
        """The item ended: give the slot back and never take it again."""
        self.closed = True
        self.release()

    def lend(self) -> None:
        """A wait on a nested group begins: the first one lends the slot out."""
        self.lent += 1
        if self.lent == 1:
            self.release()

    async def end_loan(self) -> None:
        """A wait on a nested group ended: the last one takes the slot back (waiting for it).

        If the wait for the slot is cancelled, the loan still ends: the item is stopping.
        """
        self.lent -= 1
        await self.acquire()


class Loan:
    """``async with Loan():`` lends the running code's global slot while it waits on groups.

    Whoever waits for a group to end must not hold a slot meanwhile: the group's items (or an
    item being cancelled, taking its own slot back) may need it. Without a lease (no global
    limit, or code outside any item) it does nothing.
    """

    __slots__ = ("_lease",)

    def __init__(self) -> None:
        scope = current_scope.get()
        self._lease: Lease | None = scope.lease if scope is not None else None

    async def __aenter__(self) -> None:
        if self._lease is not None:
            self._lease.lend()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._lease is not None:
            await self._lease.end_loan()
