"""What a state recalls before work runs, and keeps after it ends.

Before a group starts, its items are looked up at once (one trip to a worker thread for a
blocking backend): an item saved as completed under this run id and its address comes back
``recovered``; an item whose cache key has a value comes back ``completed`` with
``cached=True``. Neither takes a slot, a retry or a breaker permit. After an item completes,
its result is saved to the run store and its value put in the cache. A failing backend costs
a log line, never the run: the affected items simply run (again).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from rh_parallel.execution.flights import Flights
from rh_parallel.execution.identity import identify
from rh_parallel.execution.items import WorkKind
from rh_parallel.model.enums import ResultStatus
from rh_parallel.model.events import EventInvocation
from rh_parallel.model.results import ExecutionResult
from rh_parallel.store.protocols import SavedItem

if TYPE_CHECKING:
    from rh_parallel.execution.items import Item
    from rh_parallel.model.actors import BaseActor
    from rh_parallel.store.protocols import ResultCache, RunStore

__all__ = ["Recall", "Recalled", "cached_result", "followed_result"]

logger = logging.getLogger("rh_parallel.store")

SCOPES_KEPT = 1024  # scopes whose saved sequential events are kept loaded (least recent out)

Recalled = dict[int, ExecutionResult]
"""Results known before a group runs, by item index (recovered or cached)."""


class Recall:
    """A state's run store and cache, its run id, and the cache keys in flight."""

    __slots__ = ("_loaded", "_resuming", "cache", "flights", "run_id", "store")

    def __init__(
        self,
        run_id: str,
        store: RunStore | None,
        cache: ResultCache | None,
        fresh: bool,
    ) -> None:
        self.run_id = run_id
        self.store = store
        self.cache = cache
        self.flights = Flights()
        # whether the store holds anything of this run: known for a fresh run id, looked up
        # once otherwise
        self._resuming: bool | None = False if fresh else None
        # saved sequential events by scope address, loaded once per scope
        self._loaded: dict[str, dict[str, SavedItem]] = {}

    # -- before running -------------------------------------------------------------------

    async def prepare(self, parent: str, group_id: str, items: list[Item]) -> Recalled | None:
        """Identify ``items`` and look them up: the results known before they run.

        Never raises but for cancellation: a backend that fails or answers nonsense costs a
        log line, and the items run.
        """
        try:
            keys = self._identify(items)
            saved, hits = await self._fetch(parent, keys, self._wants_store())
            if not saved and not hits:
                return None
            recalled: Recalled = {}
            for item in items:
                result = self._known(
                    item.actor,
                    saved.get(item.address),
                    item.fingerprint,
                    hits,
                    item.cache_key,
                    _fields(item, group_id),
                )
                if result is not None:
                    recalled[item.index] = result
            return recalled
        except Exception:
            logger.warning(
                "run %r: could not recall the items under %r; they run",
                self.run_id,
                parent or "the top level",
                exc_info=True,
            )
            return None

    def _identify(self, items: list[Item]) -> list[str]:
        """Set each item's fingerprint and (with a cache) its cache key; the keys."""
        cache = self.cache
        keys: list[str] = []
        for item in items:
            fingerprint, key = identify(item.work_kind, item.work, item.args, cache is not None)
            item.fingerprint = fingerprint
            if cache is None:
                item.cache_key = None
                continue
            if item.cache_key is None:
                item.cache_key = key
            if item.cache_key is not None:
                keys.append(item.cache_key)
        return keys

    async def prepare_event(
        self, invocation: EventInvocation, parent: str, address: str
    ) -> tuple[ExecutionResult | None, str | None, str | None]:
        """The result of a sequential event known before it runs (or ``None``), with its
        fingerprint and cache key. Saved events are loaded once per scope."""
        fingerprint, key = identify(WorkKind.INVOCATION, invocation, (), self.cache is not None)
        wants_store = self._wants_store() and parent not in self._loaded
        try:
            saved, hits = await self._fetch(parent, [key] if key is not None else [], wants_store)
        except Exception:  # nonsense from a backend: the event runs
            logger.warning("run %r: could not recall %r", self.run_id, address, exc_info=True)
            return None, fingerprint, key
        loaded = self._loaded
        if wants_store:
            loaded[parent] = saved
            if len(loaded) > SCOPES_KEPT:
                del loaded[next(iter(loaded))]
        found = loaded[parent].pop(address, None) if parent in loaded else None
        actor = invocation.event.actor
        fields = {"index": None, "name": actor.name}
        return self._known(actor, found, fingerprint, hits, key, fields), fingerprint, key

    def _wants_store(self) -> bool:
        return self.store is not None and self._resuming is not False

    def _known(
        self,
        actor: BaseActor | None,
        found: object,
        fingerprint: str | None,
        hits: dict[str, Any],
        key: str | None,
        fields: dict[str, Any],
    ) -> ExecutionResult | None:
        """The result known for one item: recovered from ``found``, or served from ``hits``."""
        if isinstance(found, SavedItem):
            result = self.recovered(actor, found, fingerprint, fields)
            if result is not None:
                return result
        if key is None or key not in hits:
            return None
        value = hits[key]
        if actor is not None:
            try:
                value = actor.validate_output(value)
            except Exception as exc:
                logger.warning(
                    "the cached value of %s does not fit its output model (%s); it runs",
                    actor.name,
                    exc,
                )
                return None
        return cached_result(value, fields)

    async def _fetch(
        self, parent: str, keys: list[str], wants_store: bool
    ) -> tuple[dict[str, SavedItem], dict[str, Any]]:
        """The saved items under ``parent`` (when ``wants_store``) and the cache hits among
        ``keys``, from a worker thread when a backend blocks."""
        store, cache = self.store, self.cache
        if not keys and not wants_store:
            return {}, {}
        blocking = (wants_store and store is not None and store.blocking) or (
            bool(keys) and cache is not None and cache.blocking
        )
        fetch = functools.partial(self._read, parent, keys, wants_store)
        if blocking:
            return await asyncio.get_running_loop().run_in_executor(None, fetch)
        return fetch()

    def _read(
        self, parent: str, keys: list[str], wants_store: bool
    ) -> tuple[dict[str, SavedItem], dict[str, Any]]:
        """The store's and the cache's answers (run in a worker thread for blocking ones)."""
        saved: dict[str, SavedItem] = {}
        hits: dict[str, Any] = {}
        store = self.store
        if wants_store and store is not None:
            try:
                if self._resuming is None:
                    self._resuming = bool(store.has_run(self.run_id))
                if self._resuming:
                    saved = _checked(store.load(self.run_id, parent), "load()", store)
            except Exception:
                logger.warning(
                    "could not read run %r from %r; its items under %r run again",
                    self.run_id,
                    store,
                    parent or "the top level",
                    exc_info=True,
                )
        if keys and self.cache is not None:
            try:
                hits = _checked(self.cache.get_many(keys), "get_many()", self.cache)
            except Exception:
                logger.warning("could not read the cache %r; ignored", self.cache, exc_info=True)
        return saved, hits

    def recovered(
        self,
        actor: BaseActor | None,
        saved: SavedItem,
        fingerprint: str | None,
        fields: dict[str, Any],
    ) -> ExecutionResult | None:
        """The ``recovered`` result of a saved item, or ``None`` when it must run again (its
        fingerprint differs, or its value no longer fits the actor's output model)."""
        if (
            saved.fingerprint is not None
            and fingerprint is not None
            and saved.fingerprint != fingerprint
        ):
            logger.warning(
                "run %r: the saved result of %r was made from other work or input; it runs "
                "again and its result is replaced",
                self.run_id,
                saved.address,
            )
            return None
        value = saved.value
        if actor is not None:
            try:
                value = actor.validate_output(value)
            except Exception as exc:
                logger.warning(
                    "run %r: the saved result of %r does not fit %s's output model (%s); it "
                    "runs again",
                    self.run_id,
                    saved.address,
                    actor.name,
                    exc,
                )
                return None
        fields.update(
            ok=True,
            result=value,
            status=ResultStatus.RECOVERED,
            attempts=saved.attempts,
            execution_time=saved.execution_time,
        )
        return ExecutionResult.build(fields)

    # -- after running --------------------------------------------------------------------

    def keep(
        self,
        parent: str,
        address: str,
        name: str,
        fingerprint: str | None,
        cache_key: str | None,
        actor: BaseActor | None,
        result: ExecutionResult,
    ) -> str | None:
        """Save a completed result and cache its value; what could not be kept, or None."""
        problem = None
        store = self.store
        if store is not None:
            try:
                store.save(
                    SavedItem(
                        run_id=self.run_id,
                        address=address,
                        parent=parent,
                        name=name,
                        fingerprint=fingerprint,
                        value=result.result,
                        attempts=result.attempts,
                        execution_time=result.execution_time,
                        saved_at=time.time(),
                    )
                )
            except Exception as exc:
                problem = f"{address!r} not saved ({exc}); it runs again on resume"
        if cache_key is not None and self.cache is not None and not result.cached:
            try:
                self.cache.put(cache_key, result.result, actor.cache_ttl if actor else None)
            except Exception as exc:
                problem = problem or f"{address!r} not cached ({exc})"
        return problem

    def flush(self) -> None:
        """Ask the store to commit what it has queued (a group ended)."""
        if self.store is not None:
            try:
                self.store.flush()
            except Exception:
                logger.warning("could not flush %r; ignored", self.store, exc_info=True)


def cached_result(value: Any, fields: dict[str, Any]) -> ExecutionResult:
    """The result of a value the cache served."""
    fields.update(ok=True, result=value, status=ResultStatus.COMPLETED, attempts=0, cached=True)
    return ExecutionResult.build(fields)


def followed_result(
    leader: ExecutionResult, fields: dict[str, Any], actor: BaseActor | None = None
) -> ExecutionResult:
    """The result of a call that waited for ``leader`` (same key): a copy of its value (no
    two results share a mutable value), in ``actor``'s output model when it fits."""
    try:
        value = copy.deepcopy(leader.result)
    except Exception:
        value = leader.result
    if actor is not None:
        # another kind of work under the same key: its value as it is
        with contextlib.suppress(Exception):
            value = actor.validate_output(value)
    return cached_result(value, fields)


def _checked(answer: object, method: str, backend: object) -> dict[str, Any]:
    """A backend's answer if it is a dict; a log line and nothing if not."""
    if isinstance(answer, dict):
        return answer
    logger.warning("%r.%s returned %s, not a dict; ignored", backend, method, type(answer).__name__)
    return {}


def _fields(item: Item, group_id: str) -> dict[str, Any]:
    return {"index": item.index, "name": item.name, "group_id": group_id}
