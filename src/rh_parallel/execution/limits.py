"""The state-wide concurrency limit, as a lease an item holds and can lend back."""

from __future__ import annotations

import asyncio

__all__ = ["GlobalLease"]


class GlobalLease:
    """A slot of the state-wide limit, held by one item.

    The item releases it while it waits for a nested group (whose items need slots of the
    same limit), and takes it back afterwards: that is what keeps nesting deadlock-free.
    """

    __slots__ = ("_limiter", "held")

    def __init__(self, limiter: asyncio.Semaphore) -> None:
        self._limiter = limiter
        self.held = False

    async def reacquire(self) -> None:
        if not self.held:
            await self._limiter.acquire()
            self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._limiter.release()
