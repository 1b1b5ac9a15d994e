"""The SQLite file of a store or cache: opening it (checked at once, never taken over) and
what both SQLite backends share (connections, the writer, closing, decoding).

A new or empty file gets the schema; a file with the rh-parallel meta table is checked for its
schema version; anything else (not SQLite, or an SQLite database of something else) is refused
with a ``StoreError`` and left untouched. Writability is checked by a write in a transaction
that is rolled back, so an unwritable store fails when it is opened, not in the middle of a run.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from rh_parallel.exceptions import StoreError
from rh_parallel.store.protocols import Serializer
from rh_parallel.store.serialization import check_serializer, decode
from rh_parallel.store.writer import BatchWriter, check_seconds

__all__ = [
    "BUSY_TIMEOUT",
    "SCHEMA_VERSION",
    "SQLiteBackend",
    "connect",
    "open_database",
    "store_path",
    "transaction",
]

FORMAT = "rh-parallel"
SCHEMA_VERSION = 1
BUSY_TIMEOUT = 5.0
"""Seconds a statement waits for another connection's (or process's) write lock."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rh_parallel_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rh_parallel_runs ("
    " run_id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL"
    ") WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS rh_parallel_items ("
    " run_id TEXT NOT NULL, address TEXT NOT NULL, parent TEXT NOT NULL, name TEXT NOT NULL,"
    " fingerprint TEXT, encoding TEXT NOT NULL, value BLOB NOT NULL,"
    " attempts INTEGER NOT NULL, execution_time REAL NOT NULL, saved_at REAL NOT NULL,"
    " PRIMARY KEY (run_id, address)"
    ") WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS rh_parallel_items_parent ON rh_parallel_items (run_id, parent)",
    "CREATE TABLE IF NOT EXISTS rh_parallel_cache ("
    " key TEXT PRIMARY KEY, encoding TEXT NOT NULL, value BLOB NOT NULL,"
    " expires REAL, created REAL NOT NULL"
    ")",
)
_TABLES = frozenset(
    {"rh_parallel_meta", "rh_parallel_runs", "rh_parallel_items", "rh_parallel_cache"}
)

# sqlite3 primary result codes (the low byte of an extended code)
_SQLITE_PERM = 3
_SQLITE_READONLY = 8
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


def store_path(path: object, what: str) -> str:
    """``path`` as a string, refusing what cannot be shared between threads."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"the {what} path must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"the {what} path must be a str path, got {type(text).__name__}")
    if text in ("", ":memory:"):
        memory = "MemoryStore()" if what == "run store" else "MemoryCache()"
        raise ValueError(
            f"an in-memory SQLite database ({text!r}) cannot be shared by the writer thread "
            f"and the readers; use {memory} for an in-memory {what}, or pass a file path"
        )
    return text


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread
    (its owner serializes its use), waiting up to ``BUSY_TIMEOUT`` for a lock."""
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def open_database(path: str, what: str) -> sqlite3.Connection:
    """A connection to ``path``, checked to be a writable rh-parallel store (created when the
    file is new or empty); ``StoreError`` naming the path and the fix otherwise."""
    if os.path.isdir(path):
        raise StoreError(
            f"cannot open the {what} at {path!r}: it is a directory; pass the path of a file "
            f"in it, such as {os.path.join(path, 'runs.db')!r}",
            path,
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StoreError(
            f"cannot open the {what} at {path!r}: the directory {directory!r} does not exist; "
            "create it first (os.makedirs) or choose another path",
            path,
        )
    try:
        conn = connect(path)
    except sqlite3.Error as exc:
        raise _open_error(path, what, exc) from exc
    try:
        _check_ours(conn, path, what)  # reads only: a foreign file is not touched
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            created = _check_ours(conn, path, what)  # again: another process may have won
            if created or not _tables(conn) >= _TABLES:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.executemany(
                    "INSERT OR IGNORE INTO rh_parallel_meta (key, value) VALUES (?, ?)",
                    [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION))],
                )
            # a real write: BEGIN IMMEDIATE alone succeeds on a read-only file
            conn.execute("UPDATE rh_parallel_meta SET value = value WHERE key = ?", ("format",))
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise _open_error(path, what, exc) from exc
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = ?", ("table",)).fetchall()
    return {name for (name,) in rows}


def _check_ours(conn: sqlite3.Connection, path: str, what: str) -> bool:
    """Whether the file is empty (``True``: the schema must be created); ``StoreError`` when
    it is not an rh-parallel store or is a newer one."""
    entries = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    if not entries:
        return True
    if "rh_parallel_meta" not in {name for (_, name) in entries}:
        names = sorted(name for (kind, name) in entries if kind == "table")
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise _foreign(path, f"an SQLite database of something else (tables: {shown})")
    try:
        meta = dict(conn.execute("SELECT key, value FROM rh_parallel_meta").fetchall())
    except sqlite3.OperationalError as exc:
        raise _foreign(path, f"its rh_parallel_meta table is not rh-parallel's ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise _foreign(path, f"its format is {meta.get('format')!r}, not {FORMAT!r}")
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        raise _foreign(
            path, f"its schema version {meta.get('schema_version')!r} is not a number"
        ) from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the {what} at {path!r} has schema version {version}, written by a newer "
            f"rh-parallel (this one reads version {SCHEMA_VERSION}); upgrade rh-parallel or "
            "choose another path (the file was left untouched)",
            path,
        )
    return False


def _foreign(path: str, detail: str) -> StoreError:
    return StoreError(
        f"{path!r} is not an rh-parallel store: {detail}; it was left untouched, choose "
        "another path (or delete the file if it is not needed)",
        path,
    )


def _open_error(path: str, what: str, exc: sqlite3.Error) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == _SQLITE_NOTADB:
        return _foreign(path, f"it is not an SQLite database ({exc})")
    if code in (_SQLITE_READONLY, _SQLITE_PERM):
        return StoreError(
            f"the {what} at {path!r} is not writable ({exc}); make the file and its "
            "directory writable (SQLite also writes -wal and -shm files beside it) or choose "
            "another path",
            path,
        )
    if code == _SQLITE_CANTOPEN:
        return StoreError(
            f"cannot open the {what} at {path!r} ({exc}); check that its directory exists "
            "and that you may create and write files in it, or choose another path",
            path,
        )
    return StoreError(f"cannot use the {what} at {path!r}: {type(exc).__name__}: {exc}", path)


def transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], Any]) -> Any:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = body(conn)
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    return result


class SQLiteBackend:
    """What both backends share: the file, its reading connection, the writer, closing."""

    _what = "run store"
    _label = "rh-parallel store"  # how its log lines start
    _hint = ""  # what a lost write means

    def __init__(
        self,
        path: object,
        write: Callable[[sqlite3.Connection, list[Any]], None],
        *,
        flush_interval: float,
        serializer: str,
        lost: Callable[[list[Any]], int] = len,
    ) -> None:
        self._serializer: Serializer = check_serializer(serializer)
        self.flush_interval = check_seconds("flush_interval", flush_interval)
        self.path = store_path(path, self._what)
        self._lock = threading.Lock()
        self._conn = open_database(self.path, self._what)
        try:
            writer_conn = connect(self.path)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(
                f"cannot open the {self._what} at {self.path!r}: {exc}", self.path
            ) from exc
        self._closed = False
        self._writer = BatchWriter(
            lambda batch: write(writer_conn, batch),
            path=self.path,
            flush_interval=self.flush_interval,
            lost=lost,
            on_close=writer_conn.close,
            label=self._label,
            hint=self._hint,
        )
        # commits what is queued when the backend is collected or the interpreter exits; the
        # writer does not reference the backend, so the backend can still be collected
        self._finalizer = weakref.finalize(self, self._writer.close)

    blocking = True
    """Reads do I/O: the executor calls them from a worker thread."""

    @property
    def serializer(self) -> Serializer:
        return self._serializer

    @property
    def write_failures(self) -> int:
        """How many items (or cache entries) could not be written (logged when it happened)."""
        return self._writer.write_failures

    def flush(self) -> None:
        """Commit what is queued soon, without waiting."""
        self._writer.flush()

    def sync(self) -> None:
        """Commit everything queued and wait for it (written, or logged and counted as a
        write failure); the backend stays open."""
        self._writer.sync()

    def close(self) -> None:
        """Commit everything queued, wait for it, and close the file (idempotent)."""
        self._finalizer.detach()
        self._writer.close()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            if self._closed:
                raise StoreError(f"the {self._what} at {self.path!r} is closed", self.path)
            try:
                return self._conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot read the {self._what} at {self.path!r}: {type(exc).__name__}: {exc}",
                    self.path,
                ) from exc

    def _change(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``body`` in a write transaction on the reading connection (after the writer
        committed what was queued)."""
        self._writer.sync()
        with self._lock:
            if self._closed:
                raise StoreError(f"the {self._what} at {self.path!r} is closed", self.path)
            try:
                return transaction(self._conn, body)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot write the {self._what} at {self.path!r}: {type(exc).__name__}: {exc}",
                    self.path,
                ) from exc

    def _decode(self, encoding: str, data: bytes) -> tuple[bool, Any]:
        """``(True, value)``, or ``(False, why)`` when this backend must not or cannot read
        it."""
        if encoding != "json" and encoding != self._serializer:
            if encoding == "pickle":
                return False, (
                    "stored with serializer='pickle'; open the store with serializer='pickle' "
                    "to read it (only if nobody else can write the file)"
                )
            return False, f"stored with an unknown encoding {encoding!r}"
        try:
            return True, decode(data, "json" if encoding == "json" else self._serializer)
        except Exception as exc:
            return False, f"its stored value cannot be decoded ({type(exc).__name__}: {exc})"

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"pending={self._writer.pending()}"
        return (
            f"{type(self).__name__}({self.path!r}, serializer={self._serializer!r}, "
            f"flush_interval={self.flush_interval}, {state}, "
            f"write_failures={self.write_failures})"
        )
