"""A group's side of recall: items that end before running, follow a call in flight, or
save what they produced.

``GroupRun`` takes these methods as a mixin; they use its queue of ended items and its settle
loop, and :mod:`rh_parallel.execution.recall` and :mod:`~rh_parallel.execution.flights` decide.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from rh_parallel.execution.recall import Recall, Recalled, followed_result
from rh_parallel.model.enums import ResultStatus
from rh_parallel.model.results import ExecutionResult

if TYPE_CHECKING:
    from rh_parallel.execution.items import Item
    from rh_parallel.model.groups import ParallelEventGroup
    from rh_parallel.runtime.observer import GroupInfo, ObserverSet

__all__ = ["RecallingGroup"]

logger = logging.getLogger("rh_parallel.store")
_perf = time.perf_counter


class RecallingGroup:
    """The recall methods of a group run (a mixin of ``GroupRun``)."""

    group: ParallelEventGroup
    items: list[Item]
    info: GroupInfo | None
    item_observers: ObserverSet | None
    _ready: deque[Item]
    _unkept_logged: bool
    lookup_epoch: int  # landings of the state's flights when the group's lookup began
    _incomplete: bool

    if TYPE_CHECKING:  # provided by GroupRun

        def _queue_end(self, item: Item, result: ExecutionResult) -> None: ...

        def _settle(self) -> None: ...

    def _make_ready(self, recall: Recall, item: Item) -> None:
        """Queue an item whose dependencies are met, unless a call of its cache key is in
        flight (it waits for that value, holding no slot) or just landed (it takes it)."""
        key = item.cache_key
        if key is not None and not item.leads:
            landed = recall.flights.landed(key, self.lookup_epoch)
            if landed is not None:
                self._serve(item, landed)
                return
            if recall.flights.join(key, _Parked(self, item)):
                return
            item.leads = True
        self._ready.append(item)

    def _count_cache_lookups(self, recalled: Recalled) -> None:
        hits = misses = 0
        for item in self.items:
            if item.cache_key is not None:
                result = recalled.get(item.index)
                if result is None:
                    misses += 1
                elif result.cached:
                    hits += 1
        if hits or misses:
            assert self.item_observers is not None and self.info is not None
            self.item_observers.on_cache_lookups(self.info, hits, misses)

    def _serve(self, item: Item, leader: ExecutionResult) -> None:
        item.close_unrun()
        fields = {"index": item.index, "name": item.name, "group_id": self.group.group_id}
        self._queue_end(item, followed_result(leader, fields, item.actor))

    def deliver(self, item: Item, leader: ExecutionResult) -> None:
        """The call ``item`` waited for completed: ``item`` ends with its value."""
        if not item.finishing:
            self._serve(item, leader)
            self._settle()

    def promote(self, item: Item) -> None:
        """The call ``item`` waited for failed: ``item`` runs now, leading its key's flight
        (it waited with its dependencies met)."""
        if item.finishing:
            return
        item.leads = True
        item.queued_at = _perf()
        self._ready.append(item)
        self._settle()

    def _keep(self, recall: Recall, item: Item, result: ExecutionResult) -> None:
        """Save a completed result, cache its value, and settle its key's flight.

        A result is kept only when the item's whole subtree completed: an item that returned
        over failed work inside it (a nested group with failures, a failed event) is neither
        saved nor shared, so a resumed run enters it again and only the failed work reruns.
        """
        complete = result.ok and not (item.scope is not None and item.scope.incomplete)
        if not complete:
            self._incomplete = True
        if item.leads:
            item.leads = False
            assert item.cache_key is not None
            recall.flights.settle(item.cache_key, result if complete else None)
        if complete and result.status is ResultStatus.COMPLETED:
            problem = recall.keep(
                self.group.address,
                item.address,
                item.name,
                item.fingerprint,
                item.cache_key,
                item.actor,
                result,
            )
            if problem is not None and not self._unkept_logged:
                self._unkept_logged = True
                logger.warning(
                    "group %r: %s (further such items of this group are not logged)",
                    self.group.name,
                    problem,
                )


class _Parked:
    """An item waiting for a call of its cache key that another item runs."""

    __slots__ = ("item", "run")

    def __init__(self, run: RecallingGroup, item: Item) -> None:
        self.run = run
        self.item = item

    @property
    def waiting(self) -> bool:
        return not self.item.finishing

    def deliver(self, leader: ExecutionResult) -> None:
        self.run.deliver(self.item, leader)

    def lead(self) -> None:
        self.run.promote(self.item)
