"""The embedded backends: a run store and a result cache in an SQLite file.

Both open and check the file when they are built (``StoreError`` naming the path and the fix
when it cannot be used) and write through a :class:`~rh_parallel.store.writer.BatchWriter`:
``save`` / ``put`` encode on the caller's thread and queue, a writer thread commits in batches
(one transaction each) at most ``flush_interval`` seconds apart. Reads use a second connection,
shared by the reading threads under a lock. WAL mode and a busy timeout let two processes share
a file; one file can hold a run store and a cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from rh_parallel.exceptions import StoreError
from rh_parallel.store._schema import SQLiteBackend, transaction
from rh_parallel.store.protocols import RunSummary, SavedItem, Serializer
from rh_parallel.store.serialization import encode
from rh_parallel.store.writer import check_optional_seconds, check_seconds

__all__ = ["SQLiteCache", "SQLiteStore"]

logger = logging.getLogger("rh_parallel.store")

_SAVE_ITEM = (
    "INSERT OR REPLACE INTO rh_parallel_items (run_id, address, parent, name, fingerprint,"
    " encoding, value, attempts, execution_time, saved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SAVE_RUN = (
    "INSERT INTO rh_parallel_runs (run_id, created, updated) VALUES (?, ?, ?)"
    " ON CONFLICT (run_id) DO UPDATE SET updated = excluded.updated"
)
_ITEM_COLUMNS = (
    "SELECT run_id, address, parent, name, fingerprint, encoding, value, attempts,"
    " execution_time, saved_at FROM rh_parallel_items"
)
_PUT = (
    "INSERT OR REPLACE INTO rh_parallel_cache (key, encoding, value, expires, created)"
    " VALUES (?, ?, ?, ?, ?)"
)
_EXPIRE = "DELETE FROM rh_parallel_cache WHERE key = ? AND expires IS NOT NULL AND expires <= ?"
_GET = "SELECT key, encoding, value, expires FROM rh_parallel_cache"
_CHUNK = 500  # keys per SELECT ... IN (...), well under SQLite's variable limit


def _write_items(clock: Callable[[], float]) -> Callable[[sqlite3.Connection, list[Any]], None]:
    def write(conn: sqlite3.Connection, batch: list[Any]) -> None:
        now = clock()
        runs = [(run_id, now, now) for run_id in {row[0] for row in batch}]

        def body(conn: sqlite3.Connection) -> None:
            conn.executemany(_SAVE_ITEM, batch)
            conn.executemany(_SAVE_RUN, runs)

        transaction(conn, body)

    return write


class SQLiteStore(SQLiteBackend):
    """A :class:`~rh_parallel.store.protocols.RunStore` in an SQLite file.

    ``SQLiteStore("runs.db")`` creates the file (and its schema) or opens an existing store;
    ``StoreError`` when it cannot be used. ``serializer="pickle"`` keeps Python types but
    runs code when loading: only for a file nobody else can write. Use it as a context
    manager, or call ``close()``; what is still queued is also committed when the store is
    collected or the interpreter exits.
    """

    _what = "run store"
    _hint = " (they run again on resume)"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        flush_interval: float = 0.1,
        serializer: Serializer = "json",
        _clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = _clock
        super().__init__(
            path, _write_items(_clock), flush_interval=flush_interval, serializer=serializer
        )

    def __enter__(self) -> SQLiteStore:
        return self

    def has_run(self, run_id: str) -> bool:
        """Whether anything was saved under ``run_id`` (this process's queued saves
        included)."""
        self._writer.sync()
        return bool(self._read("SELECT 1 FROM rh_parallel_runs WHERE run_id = ?", (run_id,)))

    def load(self, run_id: str, parent: str) -> dict[str, SavedItem]:
        """The saved items of ``run_id`` directly under ``parent``, by address.

        An item this store cannot read (stored with ``pickle`` while it uses ``json``, or
        undecodable) is left out with a warning, so it runs again.
        """
        self._writer.sync()
        rows = self._read(_ITEM_COLUMNS + " WHERE run_id = ? AND parent = ?", (run_id, parent))
        return {item.address: item for item in self._items(rows)}

    def save(self, item: SavedItem) -> None:
        """Queue ``item`` (its value encoded now; ``TypeError`` naming the type when it
        cannot be)."""
        data = encode(item.value, self._serializer)
        self._writer.submit(
            (
                item.run_id,
                item.address,
                item.parent,
                item.name,
                item.fingerprint,
                self._serializer,
                data,
                item.attempts,
                item.execution_time,
                item.saved_at or self._clock(),
            )
        )

    def runs(self) -> list[RunSummary]:
        """Every run in the file, the most recently updated first."""
        self._writer.sync()
        rows = self._read(
            "SELECT r.run_id, r.created, r.updated,"
            " (SELECT count(*) FROM rh_parallel_items AS i WHERE i.run_id = r.run_id)"
            " FROM rh_parallel_runs AS r ORDER BY r.updated DESC, r.run_id"
        )
        return [RunSummary(*row) for row in rows]

    def items(self, run_id: str) -> list[SavedItem]:
        """The saved items of ``run_id`` (readable ones), in the order they were saved."""
        self._writer.sync()
        rows = self._read(_ITEM_COLUMNS + " WHERE run_id = ? ORDER BY saved_at, address", (run_id,))
        return self._items(rows)

    def delete(self, run_id: str) -> int:
        """Remove ``run_id`` and its items (what is queued is committed first); how many
        items were removed."""

        def body(conn: sqlite3.Connection) -> int:
            removed = conn.execute("DELETE FROM rh_parallel_items WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM rh_parallel_runs WHERE run_id = ?", (run_id,))
            return removed.rowcount

        count: int = self._change(body)
        return count

    def _items(self, rows: list[tuple[Any, ...]]) -> list[SavedItem]:
        items: list[SavedItem] = []
        refused: dict[str, int] = {}
        for run_id, address, parent, name, fingerprint, encoding, data, *rest in rows:
            ok, value = self._decode(encoding, data)
            if ok:
                attempts, execution_time, saved_at = rest
                items.append(
                    SavedItem(
                        run_id,
                        address,
                        parent,
                        name,
                        fingerprint,
                        value,
                        attempts,
                        execution_time,
                        saved_at,
                    )
                )
            else:
                refused[value] = refused.get(value, 0) + 1
        for why, count in refused.items():
            logger.warning(
                "rh-parallel store %s: %d saved item(s) left out, they run again: %s",
                self.path,
                count,
                why,
            )
        return items


def _write_cache(
    overlay: dict[str, Any], expiring: set[str], lock: threading.Lock
) -> Callable[[sqlite3.Connection, list[Any]], None]:
    def write(conn: sqlite3.Connection, batch: list[Any]) -> None:
        puts = [op for op in batch if len(op) == 2]
        expired = [op[1:] for op in batch if len(op) == 3]
        try:

            def body(conn: sqlite3.Connection) -> None:
                conn.executemany(_EXPIRE, expired)
                conn.executemany(_PUT, [(key, *entry) for key, entry in puts])

            transaction(conn, body)
        finally:  # committed or lost: other processes see the file from now on, so do we
            with lock:
                for key, entry in puts:
                    if overlay.get(key) is entry:
                        del overlay[key]
                for key, _ in expired:
                    expiring.discard(key)

    return write


def _puts(batch: list[Any]) -> int:
    return sum(1 for op in batch if len(op) == 2)


class SQLiteCache(SQLiteBackend):
    """A :class:`~rh_parallel.store.protocols.ResultCache` in an SQLite file, shareable by
    processes.

    Entries live ``ttl`` seconds (``None``: until ``clear()``) unless ``put`` says otherwise.
    A ``put`` is visible to this process's ``get_many`` at once and to other processes once
    its batch is committed (within ``flush_interval``). Expired entries are ignored and
    deleted lazily by the writer.
    """

    _what = "result cache"
    _label = "rh-parallel cache"
    _hint = " (not cached)"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ttl: float | None = None,
        flush_interval: float = 0.1,
        serializer: Serializer = "json",
        _clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = check_optional_seconds("ttl", ttl)
        self._clock = _clock
        # key -> (encoding, value, expires, created) of a put not committed yet
        self._overlay: dict[str, Any] = {}
        self._expiring: set[str] = set()
        self._overlay_lock = threading.Lock()
        super().__init__(
            path,
            _write_cache(self._overlay, self._expiring, self._overlay_lock),
            flush_interval=flush_interval,
            serializer=serializer,
            lost=_puts,
        )

    def __enter__(self) -> SQLiteCache:
        return self

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """The unexpired cached values of ``keys`` (decoded; misses are absent)."""
        now = self._clock()
        found: dict[str, tuple[str, bytes]] = {}
        rest: list[str] = []
        with self._overlay_lock:
            for key in dict.fromkeys(keys):
                entry = self._overlay.get(key)
                if entry is None:
                    rest.append(key)
                elif entry[2] is None or entry[2] > now:
                    found[key] = (entry[0], entry[1])
        expired: list[tuple[str, str, float]] = []
        for start in range(0, len(rest), _CHUNK):
            chunk = rest[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))  # placeholders only: the keys are parameters
            sql = _GET + " WHERE key IN (" + marks + ")"
            for key, encoding, data, expires in self._read(sql, chunk):
                if expires is None or expires > now:
                    found[key] = (encoding, data)
                else:
                    expired.append(("expire", key, expires))
        if expired:
            with self._overlay_lock:
                fresh = [op for op in expired if op[1] not in self._expiring]
                self._expiring.update(op[1] for op in fresh)
            for op in fresh:
                self._submit_quietly(op)
        hits: dict[str, Any] = {}
        refused: dict[str, int] = {}
        for key, (encoding, data) in found.items():
            ok, value = self._decode(encoding, data)
            if ok:
                hits[key] = value
            else:
                refused[value] = refused.get(value, 0) + 1
        for why, count in refused.items():
            logger.warning(
                "rh-parallel cache %s: %d cached value(s) ignored: %s", self.path, count, why
            )
        return hits

    def put(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Cache ``value`` under ``key`` for ``ttl`` seconds (``None``: the cache's ``ttl``);
        encoded now (``TypeError`` when it cannot be), committed in the next batch."""
        seconds = self.ttl if ttl is None else check_seconds("ttl", ttl)
        data = encode(value, self._serializer)
        now = self._clock()
        entry = (self._serializer, data, None if seconds is None else now + seconds, now)
        with self._overlay_lock:
            self._overlay[key] = entry
        try:
            self._writer.submit((key, entry))
        except StoreError:  # closed
            with self._overlay_lock:
                if self._overlay.get(key) is entry:
                    del self._overlay[key]
            raise

    def clear(self) -> None:
        """Remove every entry (this process's queued puts are committed, then removed)."""

        def body(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM rh_parallel_cache")

        self._change(body)
        with self._overlay_lock:
            self._overlay.clear()

    def __len__(self) -> int:
        """How many unexpired entries the file holds (queued puts committed first)."""
        self._writer.sync()
        now = self._clock()
        rows = self._read(
            "SELECT count(*) FROM rh_parallel_cache WHERE expires IS NULL OR expires > ?", (now,)
        )
        count: int = rows[0][0]
        return count

    def _submit_quietly(self, op: tuple[str, str, float]) -> None:
        with contextlib.suppress(StoreError):  # closed: a later get_many deletes it
            self._writer.submit(op)
