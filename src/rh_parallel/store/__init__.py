"""Durable runs and cached results: where the executor saves completed items and call results.

A run given a ``store`` and a ``run_id`` saves each completed item; run again under the same
id, it skips what was saved (a crashed or interrupted run resumes). A ``cache`` keeps values
of earlier calls by key, across runs and, for SQLite, across processes::

    from rh_parallel import ExecutionState
    from rh_parallel.store import SQLiteCache, SQLiteStore

    state = ExecutionState(
        store=SQLiteStore("runs.db"),
        run_id="ingest-2026-11-28",
        cache=SQLiteCache("cache.db", ttl=86_400),
    )

``SQLiteStore`` / ``SQLiteCache`` are the embedded defaults (one file can hold both);
``MemoryStore`` / ``MemoryCache`` keep everything in the process (tests). Another backend
plugs in by implementing the :class:`RunStore` / :class:`ResultCache` protocols. Values are
stored as JSON by default (plain data back); ``serializer="pickle"`` keeps Python types but
runs code when loading, so only use it for a store nobody else can write.
"""

from typing import TYPE_CHECKING, Any

from rh_parallel.exceptions import StoreError
from rh_parallel.store.protocols import ResultCache, RunStore, RunSummary, SavedItem

if TYPE_CHECKING:
    from rh_parallel.store.memory import MemoryCache, MemoryStore
    from rh_parallel.store.sqlite import SQLiteCache, SQLiteStore

# The backends load on first use: the executor needs only the protocols, and
# `import rh_parallel` must stay fast for programs that keep no store (sqlite3, the writer).
_LAZY = {
    "MemoryCache": "rh_parallel.store.memory",
    "MemoryStore": "rh_parallel.store.memory",
    "SQLiteCache": "rh_parallel.store.sqlite",
    "SQLiteStore": "rh_parallel.store.sqlite",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rh_parallel.store' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "MemoryCache",
    "MemoryStore",
    "ResultCache",
    "RunStore",
    "RunSummary",
    "SQLiteCache",
    "SQLiteStore",
    "SavedItem",
    "StoreError",
]
