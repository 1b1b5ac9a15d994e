"""Recall for sequential events (``await event(...)`` outside a group's items).

Like a group item, an event whose result the run store saved (same run id and address) comes
back ``recovered`` without running, and a cacheable actor's event whose input is cached comes
back ``cached``; concurrent events of one cache key run once. A completed event is saved and
cached, unless work inside it failed (it then runs again on resume, and only what failed
inside it runs again).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rh_parallel.execution.recall import Recall, followed_result
from rh_parallel.model.enums import ResultStatus
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime.scope import Scope, current_scope

if TYPE_CHECKING:
    from rh_parallel.execution.state import ExecutionState
    from rh_parallel.model.actors import BaseActor
    from rh_parallel.model.events import EventInvocation
    from rh_parallel.runtime.observer import ItemInfo

__all__ = ["run_recalled"]

logger = logging.getLogger("rh_parallel.store")


async def run_recalled(
    state: ExecutionState,
    recall: Recall,
    invocation: EventInvocation,
    parent: Scope,
    info: ItemInfo | None,
) -> ExecutionResult:
    """Run a sequential event in its own (current) scope unless its result is known."""
    scope = current_scope.get()
    assert scope is not None
    address = scope.address
    event = invocation.event
    name = event.actor.name
    epoch = recall.flights.landings
    known, fingerprint, key = await recall.prepare_event(invocation, parent.address, address)
    if key is not None and info is not None:
        hit = known is not None and known.cached
        state.observer_set.on_cache_lookups(None, int(hit), int(not hit))
    leads = False
    if known is None and key is not None:
        landed = recall.flights.landed(key, epoch)
        if landed is not None:  # a call of this key completed since the lookup
            known = followed_result(landed, {"name": name}, event.actor)
        else:
            known = await _follow(recall, key, name, event.actor)
            leads = known is None
    if known is not None:
        if info is not None:
            info.attempts = 0  # it does not run
            state.observer_set.on_item_end(info, known)
        if state.publisher.bus.has_subscribers:
            state.publisher.event_ended(event, address, known, info.span if info else None)
        if known.status is ResultStatus.RECOVERED or recall.store is None:
            return known
        result = known
    else:
        ran: ExecutionResult | None = None
        complete = False
        try:
            ran = await state.run_observed(invocation, info)
            complete = ran.ok and not scope.incomplete
        finally:
            if not complete:
                parent.incomplete = True
            if leads:
                assert key is not None
                recall.flights.settle(key, ran if complete else None)
        if not complete:
            return ran
        result = ran
    if result.status is ResultStatus.COMPLETED:
        problem = recall.keep(parent.address, address, name, fingerprint, key, event.actor, result)
        if problem is not None:
            logger.warning("event %r: %s", name, problem)
    return result


async def _follow(recall: Recall, key: str, name: str, actor: BaseActor) -> ExecutionResult | None:
    """Wait for the call of ``key`` in flight and take its value; ``None`` when this event
    leads the flight (there was none, or the leader failed and handed it on)."""
    waiter = _Waiter(asyncio.get_running_loop().create_future())
    if not recall.flights.join(key, waiter):
        return None
    try:
        leader = await waiter.future
    except asyncio.CancelledError:
        future = waiter.future
        if future.done() and not future.cancelled() and future.result() is None:
            recall.flights.settle(key, None)  # promoted, then cancelled: hand the lead on
        raise
    return followed_result(leader, {"name": name}, actor) if leader is not None else None


class _Waiter:
    """A sequential event waiting for a call of its cache key that another one runs."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[ExecutionResult | None]) -> None:
        self.future = future

    @property
    def waiting(self) -> bool:
        return not self.future.done()

    def deliver(self, leader: ExecutionResult) -> None:
        self.future.set_result(leader)

    def lead(self) -> None:
        self.future.set_result(None)
