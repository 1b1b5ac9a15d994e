"""In-process backends: a run store and an LRU result cache, for tests and short programs.

They keep values encoded with the chosen serializer, exactly as the SQLite backends do, so
a value comes back as SQLite would return it (a tuple as a list, a model as a dict with
``"json"``) and never shares a mutable object with the code that saved it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rh_parallel.store.protocols import RunSummary, SavedItem, Serializer
from rh_parallel.store.serialization import check_serializer, decode, encode
from rh_parallel.store.writer import check_optional_seconds, check_seconds

__all__ = ["MemoryCache", "MemoryStore"]

logger = logging.getLogger("rh_parallel.store")


@dataclass(slots=True)
class _Run:
    created: float
    updated: float
    items: dict[str, _Kept]  # by address
    parents: dict[str, set[str]]  # parent -> addresses


_Kept = tuple[str, str, str | None, int, float, float, bytes]
"""What is kept of a saved item: parent, name, fingerprint, attempts, execution_time,
saved_at, encoded value."""


class MemoryStore:
    """A :class:`~rh_parallel.store.protocols.RunStore` in a dict: what a run saved is gone
    when the process ends. Thread-safe."""

    blocking = False
    """Reads are dict look-ups: the executor calls them on the event loop."""

    def __init__(
        self, *, serializer: Serializer = "json", _clock: Callable[[], float] = time.time
    ) -> None:
        self._serializer: Serializer = check_serializer(serializer)
        self._clock = _clock
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    @property
    def serializer(self) -> Serializer:
        return self._serializer

    @property
    def write_failures(self) -> int:
        """Always 0: a dict write does not fail."""
        return 0

    def has_run(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._runs

    def load(self, run_id: str, parent: str) -> dict[str, SavedItem]:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return {}
            saved = [(a, run.items[a]) for a in run.parents.get(parent, ())]
        loaded: dict[str, SavedItem] = {}
        broken: list[str] = []
        for address, kept in saved:
            try:
                loaded[address] = self._decoded(run_id, address, kept)
            except Exception:  # that item runs again; the others are still recovered
                broken.append(address)
        if broken:
            logger.warning(
                "run %r: %d saved value(s) under %r could not be decoded (%s...); they run again",
                run_id,
                len(broken),
                parent,
                broken[0],
            )
        return loaded

    def save(self, item: SavedItem) -> None:
        """Keep ``item`` (its value encoded now: ``TypeError`` naming the type when it cannot
        be)."""
        data = encode(item.value, self._serializer)
        now = self._clock()
        parent = item.parent
        kept = (
            parent, item.name, item.fingerprint, item.attempts, item.execution_time,
            item.saved_at or now, data,
        )  # fmt: skip
        with self._lock:
            run = self._runs.get(item.run_id)
            if run is None:
                run = self._runs[item.run_id] = _Run(now, now, {}, {})
            run.updated = now
            previous = run.items.get(item.address)
            if previous is not None and previous[0] != parent:
                run.parents[previous[0]].discard(item.address)
            run.items[item.address] = kept
            addresses = run.parents.get(parent)
            if addresses is None:
                addresses = run.parents[parent] = set()
            addresses.add(item.address)

    def flush(self) -> None:
        """Nothing to do: a save is kept at once."""

    def sync(self) -> None:
        """Nothing to do: a save is kept at once."""

    def close(self) -> None:
        """Nothing to release: the items stay readable."""

    def runs(self) -> list[RunSummary]:
        """Every run, the most recently updated first."""
        with self._lock:
            summaries = [
                RunSummary(run_id, run.created, run.updated, len(run.items))
                for run_id, run in self._runs.items()
            ]
        summaries.sort(key=lambda s: s.run_id)
        summaries.sort(key=lambda s: s.updated, reverse=True)
        return summaries

    def items(self, run_id: str) -> list[SavedItem]:
        """The saved items of ``run_id``, in the order they were saved."""
        with self._lock:
            run = self._runs.get(run_id)
            saved = [] if run is None else list(run.items.items())
        saved.sort(key=lambda pair: (pair[1][5], pair[0]))
        return [self._decoded(run_id, address, kept) for address, kept in saved]

    def delete(self, run_id: str) -> int:
        """Remove ``run_id`` and its items; how many items were removed."""
        with self._lock:
            run = self._runs.pop(run_id, None)
        return 0 if run is None else len(run.items)

    def _decoded(self, run_id: str, address: str, kept: _Kept) -> SavedItem:
        parent, name, fingerprint, attempts, execution_time, saved_at, data = kept
        value = decode(data, self._serializer)
        return SavedItem(
            run_id, address, parent, name, fingerprint, value, attempts, execution_time, saved_at
        )

    def __repr__(self) -> str:
        with self._lock:
            runs = len(self._runs)
        return f"MemoryStore(serializer={self._serializer!r}, runs={runs})"


class MemoryCache:
    """A :class:`~rh_parallel.store.protocols.ResultCache` holding the ``maxsize`` most
    recently used entries of this process (least recently used evicted first). Thread-safe.
    """

    blocking = False
    """Reads are dict look-ups: the executor calls them on the event loop."""

    def __init__(
        self,
        maxsize: int = 1024,
        *,
        ttl: float | None = None,
        serializer: Serializer = "json",
        _clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, got {type(maxsize).__name__}")
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.ttl = check_optional_seconds("ttl", ttl)
        self._serializer: Serializer = check_serializer(serializer)
        self._clock = _clock
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def serializer(self) -> Serializer:
        return self._serializer

    @property
    def write_failures(self) -> int:
        """Always 0: a dict write does not fail."""
        return 0

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """The unexpired values of ``keys`` (each a fresh copy; misses are absent)."""
        now = self._clock()
        found: dict[str, bytes] = {}
        with self._lock:
            entries = self._entries
            for key in keys:
                entry = entries.get(key)
                if entry is None:
                    continue
                data, expires = entry
                if expires is not None and expires <= now:
                    del entries[key]
                    continue
                entries.move_to_end(key)
                found[key] = data
        return {key: decode(data, self._serializer) for key, data in found.items()}

    def put(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Cache ``value`` under ``key`` for ``ttl`` seconds (``None``: the cache's ``ttl``);
        ``TypeError`` naming the type when it cannot be encoded."""
        seconds = self.ttl if ttl is None else check_seconds("ttl", ttl)
        data = encode(value, self._serializer)
        expires = None if seconds is None else self._clock() + seconds
        with self._lock:
            entries = self._entries
            entries[key] = (data, expires)
            entries.move_to_end(key)
            while len(entries) > self.maxsize:
                entries.popitem(last=False)

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._entries.clear()

    def sync(self) -> None:
        """Nothing to do: a put is kept at once."""

    def close(self) -> None:
        """Nothing to release: the entries stay readable."""

    def __len__(self) -> int:
        """How many entries are held (expired ones included until they are looked up)."""
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"MemoryCache(maxsize={self.maxsize}, ttl={self.ttl}, "
            f"serializer={self._serializer!r}, entries={len(self)})"
        )
