"""Single flight: concurrent misses of one cache key run once.

The first item to miss a key leads its flight; the others follow it, holding no slot. When the
leader ends ok, every follower still waiting gets its value; when it fails, the first follower
still waiting takes the lead and runs. This module only decides who gets what; the scheduler
acts on its answers.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rh_parallel.model.results import ExecutionResult

__all__ = ["Flights", "Follower"]


class Follower(Protocol):
    """One waiter on a flight (an item of some group, or a sequential event)."""

    @property
    def waiting(self) -> bool:
        """Whether it still wants the value (its group may have ended it meanwhile)."""
        ...

    def deliver(self, leader: ExecutionResult) -> None:
        """The call it waited for completed with ``leader``: take its value."""
        ...

    def lead(self) -> None:
        """The call it waited for failed: run, leading the flight now."""
        ...


LANDED_KEPT = 64


class Flights:
    """The calls in flight, by cache key, and the last ``LANDED_KEPT`` that landed ok, so a
    call whose cache lookup missed just before another call of its key landed takes that value
    instead of paying again. Not thread-safe: used on the event loop only."""

    __slots__ = ("_flights", "_landed", "landings")

    def __init__(self) -> None:
        self._flights: dict[str, deque[Follower]] = {}
        self._landed: OrderedDict[str, tuple[int, ExecutionResult]] = OrderedDict()
        self.landings = 0
        """How many calls landed ok so far: read it before a cache lookup, and pass it to
        :meth:`landed` to learn what landed since."""

    def landed(self, key: str, since: int) -> ExecutionResult | None:
        """The result of a call of ``key`` that landed ok after ``since`` landings (newer
        than a cache lookup made then), if it is still kept."""
        entry = self._landed.get(key)
        return entry[1] if entry is not None and entry[0] > since else None

    def __len__(self) -> int:
        return len(self._flights)

    def lead(self, key: str) -> bool:
        """Take the lead of ``key``'s flight: ``True`` unless another call leads it already."""
        if key in self._flights:
            return False
        self._flights[key] = deque()
        return True

    def join(self, key: str, follower: Follower) -> bool:
        """Follow ``key``'s flight (``True``), or lead a new one when there is none
        (``False``: the caller runs)."""
        followers = self._flights.get(key)
        if followers is None:
            self._flights[key] = deque()
            return False
        followers.append(follower)
        return True

    def settle(self, key: str, leader: ExecutionResult | None) -> None:
        """The leader of ``key`` ended with ``leader`` (``None``: nothing to share, as if it
        failed): hand its followers what follows."""
        delivered, promoted = self.land(key, leader)
        for follower in delivered:
            assert leader is not None
            follower.deliver(leader)
        if promoted is not None:
            promoted.lead()

    def land(
        self, key: str, leader: ExecutionResult | None
    ) -> tuple[list[Follower], Follower | None]:
        """The leader of ``key`` ended with ``leader`` (``None``: nothing to share): the
        followers that get its value (when ok), or the follower that leads now (when not;
        ``None`` when nobody waits any more)."""
        ok = leader is not None and leader.ok
        if ok:
            assert leader is not None
            self.landings += 1
            landed = self._landed
            landed[key] = (self.landings, leader)
            landed.move_to_end(key)
            if len(landed) > LANDED_KEPT:
                landed.popitem(last=False)
        followers = self._flights.get(key)
        if followers is None:
            return [], None
        if ok:
            del self._flights[key]
            return [f for f in followers if f.waiting], None
        while followers:
            follower = followers.popleft()
            if follower.waiting:
                return [], follower  # the flight stays, led by this follower
        del self._flights[key]
        return [], None
