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
import copy
import functools
import hashlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from rh_parallel.execution.flights import Flights
from rh_parallel.execution.items import WorkKind
from rh_parallel.model.enums import ResultStatus
from rh_parallel.model.events import EventInvocation
from rh_parallel.model.results import ExecutionResult
from rh_parallel.store.protocols import SavedItem

if TYPE_CHECKING:
    from rh_parallel.execution.items import Item
    from rh_parallel.model.actors import BaseActor
    from rh_parallel.store.protocols import ResultCache, RunStore

__all__ = ["Recall", "Recalled", "cached_result", "followed_result", "identify", "user_cache_key"]

logger = logging.getLogger("rh_parallel.store")

Recalled = dict[int, ExecutionResult]
"""Results known before a group runs, by item index (recovered or cached)."""


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _canonical(value: Any) -> str | None:
    """Canonical JSON of ``value`` (sorted keys), or ``None`` when it has no JSON form."""
    try:  # plain data, the common case, needs no conversion first
        return _dumps(value)
    except (TypeError, ValueError):
        pass
    try:  # models, dataclasses, dates, enums...
        return _dumps(to_jsonable_python(value))
    except (TypeError, ValueError):
        return None


_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def user_cache_key(key: str) -> str:
    """The cache key of an item added with ``cache_key=key``."""
    return _digest("key\0" + key)


def identify(
    kind: WorkKind, work: object, args: tuple[Any, ...], cacheable: bool
) -> tuple[str | None, str | None]:
    """The fingerprint of some work (``None``: nothing to compare) and, when ``cacheable``
    and the work is a cacheable actor's event, its cache key.

    An event: its actor's name and the canonical JSON of its validated input. A function:
    its qualified name and its arguments (the name alone when they have no JSON form). A
    coroutine or other awaitable: nothing that can be compared.
    """
    if kind is WorkKind.INVOCATION:
        assert isinstance(work, EventInvocation)
        actor = work.event.actor
        try:
            data = _canonical(actor.validate_input(work.input_data))
        except Exception:  # invalid input: the item fails when it runs
            return None, None
        if data is None:
            return None, None
        basis = f"event\0{actor.name}\0{data}"
        return _digest(basis), (
            _digest("actor\0" + basis) if cacheable and actor.cacheable else None
        )
    if kind in (WorkKind.ASYNC_CALL, WorkKind.SYNC_CALL):
        target: Any = work
        extra: list[Any] = []
        keywords: dict[str, Any] = {}
        while isinstance(target, functools.partial):
            extra[:0] = target.args
            keywords = {**target.keywords, **keywords}
            target = target.func
        name = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
        data = _canonical([[*extra, *args], keywords])
        return _digest(f"call\0{name}\0{data if data is not None else '?'}"), None
    return None, None


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
        """Identify ``items`` and look them up: the results known before they run."""
        cache = self.cache
        keys: list[str] = []
        for item in items:
            fingerprint, key = identify(item.work_kind, item.work, item.args, cache is not None)
            item.fingerprint = fingerprint
            if item.cache_key is None:
                item.cache_key = key
            if item.cache_key is not None:
                keys.append(item.cache_key)
        if cache is None:
            for item in items:
                item.cache_key = None
            keys = []
        saved, hits = await self._fetch(parent, keys)
        if not saved and not hits:
            return None
        recalled: Recalled = {}
        for item in items:
            found = saved.get(item.address)
            if found is not None:
                result = self.recovered(
                    item.actor, found, item.fingerprint, _fields(item, group_id)
                )
                if result is not None:
                    recalled[item.index] = result
                    continue
            if item.cache_key is not None and item.cache_key in hits:
                value = hits[item.cache_key]
                recalled[item.index] = cached_result(value, _fields(item, group_id))
        return recalled

    async def prepare_event(
        self, invocation: EventInvocation, parent: str, address: str
    ) -> tuple[ExecutionResult | None, str | None, str | None]:
        """The result of a sequential event known before it runs (or ``None``), with its
        fingerprint and cache key."""
        fingerprint, key = identify(WorkKind.INVOCATION, invocation, (), self.cache is not None)
        fields = {"index": None, "name": invocation.event.actor.name}
        saved, hits = await self._fetch(parent, [key] if key is not None else [], one=address)
        found = saved.get(address)
        if found is not None:
            result = self.recovered(invocation.event.actor, found, fingerprint, fields)
            if result is not None:
                return result, fingerprint, key
        if key is not None and key in hits:
            return cached_result(hits[key], fields), fingerprint, key
        return None, fingerprint, key

    async def _fetch(
        self, parent: str, keys: list[str], one: str | None = None
    ) -> tuple[dict[str, SavedItem], dict[str, Any]]:
        store, cache = self.store, self.cache
        wants_store = store is not None and self._resuming is not False
        if not wants_store and not keys:
            return {}, {}
        if one is not None and parent in self._loaded:
            saved = self._loaded[parent]
            found = saved.pop(one, None)
            wants_store = False
            if not keys:
                return ({one: found} if found is not None else {}), {}
        blocking = (wants_store and store is not None and store.blocking) or (
            bool(keys) and cache is not None and cache.blocking
        )
        fetch = functools.partial(
            self._read, parent, keys if cache is not None else [], wants_store
        )
        if blocking:
            saved, hits = await asyncio.get_running_loop().run_in_executor(None, fetch)
        else:
            saved, hits = fetch()
        if one is not None and wants_store:
            found = saved.pop(one, None)
            self._loaded[parent] = saved
            saved = {one: found} if found is not None else {}
        return saved, hits

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
                    self._resuming = store.has_run(self.run_id)
                if self._resuming:
                    saved = store.load(self.run_id, parent)
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
                hits = self.cache.get_many(keys)
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


def followed_result(leader: ExecutionResult, fields: dict[str, Any]) -> ExecutionResult:
    """The result of a call that waited for ``leader`` (same key): a copy of its value, so
    no two results share a mutable value."""
    try:
        value = copy.deepcopy(leader.result)
    except Exception:
        value = leader.result
    return cached_result(value, fields)


def _fields(item: Item, group_id: str) -> dict[str, Any]:
    return {"index": item.index, "name": item.name, "group_id": group_id}
