from __future__ import annotations

import gc
import hashlib
import logging
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from rh_parallel.store import (
    ResultCache,
    RunStore,
    RunSummary,
    SavedItem,
    SQLiteCache,
    SQLiteStore,
    StoreError,
    _schema,
)

EVIL = "x'); DROP TABLE rh_parallel_items; --\"\\ ☃"


class Answer(BaseModel):
    text: str
    score: float
    tags: tuple[str, ...] = ()


@dataclass
class Pair:
    left: int
    right: list[str]


class Opaque:
    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]


def item(
    address: str,
    value: Any = None,
    *,
    run_id: str = "run-1",
    parent: str = "group",
    saved_at: float = 0.0,
) -> SavedItem:
    return SavedItem(
        run_id=run_id,
        address=address,
        parent=parent,
        name=f"name-{address}",
        fingerprint=f"fp-{address}",
        value={"address": address} if value is None else value,
        attempts=2,
        execution_time=0.25,
        saved_at=saved_at,
    )


def poll(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def count(path: Path, table: str = "rh_parallel_items") -> int:
    """Rows of ``table`` as another connection sees them (committed ones only)."""
    conn = sqlite3.connect(path)
    try:
        if table == "rh_parallel_items":
            return int(conn.execute("SELECT count(*) FROM rh_parallel_items").fetchone()[0])
        return int(conn.execute("SELECT count(*) FROM rh_parallel_cache").fetchone()[0])
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_python(code: str, timeout: float = 45) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(db) as opened:
        yield opened


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="rh_parallel.store")
    return caplog


# -- the run store ------------------------------------------------------------------------


def test_it_implements_the_protocol(store: SQLiteStore) -> None:
    assert isinstance(store, RunStore)
    assert store.blocking is True


def test_items_round_trip_as_plain_data(store: SQLiteStore) -> None:
    values = {
        "model": Answer(text="hi", score=0.5, tags=("a",)),
        "dataclass": Pair(1, ["x"]),
        "nested": {"a": [1, {"b": (2, 3)}], "none": None, "big": 10**25},
        "nan": {"v": math.nan, "i": [math.inf, -math.inf]},
        "text": "naïve ☃",
    }
    for address, value in values.items():
        store.save(item(address, value))
    loaded = store.load("run-1", "group")
    assert set(loaded) == set(values)
    assert loaded["model"].value == {"text": "hi", "score": 0.5, "tags": ["a"]}
    assert loaded["dataclass"].value == {"left": 1, "right": ["x"]}
    assert loaded["nested"].value == {"a": [1, {"b": [2, 3]}], "none": None, "big": 10**25}
    assert math.isnan(loaded["nan"].value["v"])
    assert loaded["nan"].value["i"] == [math.inf, -math.inf]
    assert loaded["text"].value == "naïve ☃"
    saved = loaded["model"]
    assert (saved.run_id, saved.address, saved.parent, saved.name) == (
        "run-1",
        "model",
        "group",
        "name-model",
    )
    assert (saved.fingerprint, saved.attempts, saved.execution_time) == ("fp-model", 2, 0.25)
    assert saved.saved_at > 0  # 0 means "now"


def test_a_none_fingerprint_and_a_given_saved_at_are_kept(store: SQLiteStore) -> None:
    store.save(SavedItem("r", "a", "p", "n", None, [1], saved_at=123.5))
    (saved,) = store.load("r", "p").values()
    assert saved.fingerprint is None
    assert saved.saved_at == 123.5
    assert saved.attempts == 1


def test_load_returns_the_items_under_one_parent_of_one_run(store: SQLiteStore) -> None:
    store.save(item("a", parent="g1"))
    store.save(item("b", parent="g1"))
    store.save(item("c", parent="g2"))
    store.save(item("a", parent="g1", run_id="run-2"))
    assert set(store.load("run-1", "g1")) == {"a", "b"}
    assert set(store.load("run-1", "g2")) == {"c"}
    assert set(store.load("run-2", "g1")) == {"a"}
    assert store.load("run-1", "g3") == {}
    assert store.load("run-3", "g1") == {}


def test_a_save_overwrites_its_address(store: SQLiteStore) -> None:
    store.save(item("a", [1]))
    store.sync()
    store.save(item("a", [2]))
    assert store.load("run-1", "group")["a"].value == [2]
    assert store.runs()[0].items == 1


def test_has_run(store: SQLiteStore) -> None:
    assert not store.has_run("run-1")
    store.save(item("a"))
    assert store.has_run("run-1")  # this process's queued save counts
    assert not store.has_run("run-2")


def test_the_value_is_encoded_when_saved(store: SQLiteStore) -> None:
    value = {"n": [1]}
    store.save(item("a", value))
    value["n"].append(2)
    assert store.load("run-1", "group")["a"].value == {"n": [1]}


def test_an_unencodable_value_raises_a_type_error_naming_it_and_queues_nothing(
    store: SQLiteStore,
) -> None:
    with pytest.raises(TypeError, match="Opaque"):
        store.save(item("a", {"x": Opaque(1)}))
    store.sync()
    assert not store.has_run("run-1")
    assert store.write_failures == 0


def test_pickle_only_when_asked(db: Path) -> None:
    with SQLiteStore(db, serializer="pickle") as store:
        store.save(item("a", {"t": (1, 2), "s": {3}, "o": Opaque(4)}))
        value = store.load("run-1", "group")["a"].value
    assert value == {"t": (1, 2), "s": {3}, "o": Opaque(4)}
    with SQLiteStore(db) as store, pytest.raises(TypeError, match="Opaque"):
        store.save(item("b", Opaque(5)))


def test_a_json_store_refuses_pickled_rows_with_a_warning(
    db: Path, quiet: pytest.LogCaptureFixture
) -> None:
    with SQLiteStore(db, serializer="pickle") as store:
        store.save(item("pickled", (1, 2)))
    with SQLiteStore(db) as store:
        store.save(item("plain", [3]))
        loaded = store.load("run-1", "group")
        listed = store.items("run-1")
    assert set(loaded) == {"plain"}  # the pickled item runs again
    assert [i.address for i in listed] == ["plain"]
    warnings = [r.getMessage() for r in quiet.records if r.name == "rh_parallel.store"]
    assert any("pickle" in m and str(db) in m and "1 saved item" in m for m in warnings)
    with SQLiteStore(db, serializer="pickle") as store:  # reads both
        loaded = store.load("run-1", "group")
    assert loaded["pickled"].value == (1, 2)
    assert loaded["plain"].value == [3]


class Marker:
    """Unpickling it creates a file: proof that a row was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path(self.path), "unpickled"))


def test_a_pickle_row_is_never_unpickled_by_a_json_store(
    db: Path, quiet: pytest.LogCaptureFixture
) -> None:
    marker = db.parent / "unpickled"
    with SQLiteStore(db, serializer="pickle") as store:
        store.save(item("bomb", Marker(str(marker))))
    with SQLiteStore(db) as store:
        assert store.load("run-1", "group") == {}
        assert store.items("run-1") == []
    assert not marker.exists()
    with SQLiteStore(db, serializer="pickle") as store:  # the test can tell
        store.load("run-1", "group")
    assert marker.exists()


def test_an_undecodable_row_is_left_out_with_a_warning(
    db: Path, store: SQLiteStore, quiet: pytest.LogCaptureFixture
) -> None:
    store.save(item("a"))
    store.save(item("b"))
    store.sync()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE rh_parallel_items SET value = ? WHERE address = ?", (b"{oops", "a"))
    conn.commit()
    conn.close()
    assert set(store.load("run-1", "group")) == {"b"}
    assert any("cannot be decoded" in r.getMessage() for r in quiet.records)


def test_many_saves_are_committed_in_few_transactions(db: Path) -> None:
    with SQLiteStore(db, flush_interval=0.5) as store:
        for i in range(5000):
            store.save(item(f"a{i}"))
    assert count(db) == 5000
    assert store._writer.batches < 50


def test_a_save_is_committed_within_flush_interval_without_flush(db: Path) -> None:
    with SQLiteStore(db, flush_interval=0.2) as store:
        store.save(item("a"))
        # another connection sees it once committed, with no flush, sync or close
        assert poll(lambda: count(db) == 1)


def test_nothing_is_committed_before_flush_interval_unless_flushed(db: Path) -> None:
    with SQLiteStore(db, flush_interval=30) as store:
        store.save(item("a"))
        time.sleep(0.3)
        assert count(db) == 0
        store.flush()
        assert poll(lambda: count(db) == 1)  # long before 30 s


def test_close_commits_everything(db: Path) -> None:
    store = SQLiteStore(db, flush_interval=60)
    for i in range(500):
        store.save(item(f"a{i}"))
    store.close()
    assert count(db) == 500
    store.close()  # idempotent
    with SQLiteStore(db) as again:
        assert len(again.load("run-1", "group")) == 500


def test_use_after_close_is_refused(db: Path) -> None:
    store = SQLiteStore(db)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.save(item("a"))
    with pytest.raises(StoreError, match="closed"):
        store.load("run-1", "group")
    store.flush()
    store.sync()


def test_a_collected_store_commits_and_is_not_kept_alive(db: Path) -> None:
    store = SQLiteStore(db, flush_interval=60)
    store.save(item("a"))
    ref = weakref.ref(store)
    del store
    gc.collect()
    assert ref() is None
    assert count(db) == 1


def test_a_program_that_never_closes_still_commits_at_exit(db: Path) -> None:
    run_python(
        f"""
        from rh_parallel.store import SQLiteStore, SavedItem
        store = SQLiteStore({str(db)!r}, flush_interval=60)
        for i in range(100):
            store.save(SavedItem("r", f"a{{i}}", "p", "n", None, {{"i": i}}))
        """
    )
    assert count(db) == 100


def test_write_failures_are_counted_and_logged_never_raised(
    db: Path, store: SQLiteStore, quiet: pytest.LogCaptureFixture
) -> None:
    store.save(item("first"))
    store.sync()
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE rh_parallel_items")  # pulled from under the writer
    conn.commit()
    conn.close()
    for i in range(3):
        store.save(item(f"lost{i}"))
    store.sync()
    assert store.write_failures == 3
    (warning,) = [r for r in quiet.records if r.name == "rh_parallel.store"]
    assert warning.levelno == logging.WARNING
    assert str(db) in warning.getMessage()
    assert "3 item(s)" in warning.getMessage()
    SQLiteStore(db).close()  # opening it again recreates the missing table
    store.save(item("after"))
    store.sync()
    assert store.write_failures == 3
    assert set(store.load("run-1", "group")) == {"after"}


def test_runs_items_and_delete(db: Path) -> None:
    clock = iter(float(t) for t in range(100, 1000))
    with SQLiteStore(db, _clock=lambda: next(clock)) as store:
        store.save(item("b", run_id="old", saved_at=2.0))
        store.save(item("a", run_id="old", saved_at=1.0))
        store.sync()
        store.save(item("x", run_id="new", saved_at=3.0))
        runs = store.runs()
        assert [r.run_id for r in runs] == ["new", "old"]
        assert isinstance(runs[0], RunSummary)
        assert [r.items for r in runs] == [1, 2]
        assert runs[0].updated > runs[1].updated
        assert runs[1].created <= runs[1].updated
        assert [i.address for i in store.items("old")] == ["a", "b"]
        assert store.items("missing") == []
        store.save(item("c", run_id="old"))  # queued: delete commits it first
        assert store.delete("old") == 3
        assert not store.has_run("old")
        assert [r.run_id for r in store.runs()] == ["new"]
        assert store.delete("old") == 0


def test_sql_text_in_ids_is_just_data(db: Path) -> None:
    with SQLiteStore(db) as store:
        store.save(item(EVIL, [EVIL], run_id=EVIL, parent=EVIL))
        store.save(SavedItem(EVIL, "b", EVIL, EVIL, EVIL, {EVIL: EVIL}))
        loaded = store.load(EVIL, EVIL)
        assert loaded[EVIL].value == [EVIL]
        assert loaded["b"].value == {EVIL: EVIL}
        assert loaded["b"].name == EVIL
        assert store.has_run(EVIL)
        assert [r.run_id for r in store.runs()] == [EVIL]
        assert store.delete(EVIL) == 2
    assert count(db) == 0  # the table is still there


def test_threads_save_and_read_at_once(db: Path) -> None:
    errors: list[BaseException] = []
    with SQLiteStore(db, flush_interval=0.01) as store:

        def save(n: int) -> None:
            try:
                for i in range(300):
                    store.save(item(f"{n}-{i}", parent=f"g{n}"))
            except BaseException as exc:
                errors.append(exc)

        def read(n: int) -> None:
            try:
                for _ in range(50):
                    store.load("run-1", f"g{n}")
                    store.has_run("run-1")
                    store.runs()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=f, args=(n,)) for n in range(4) for f in (save, read)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=50)
        assert errors == []
        for n in range(4):
            assert len(store.load("run-1", f"g{n}")) == 300
    assert store.write_failures == 0


def test_context_manager_and_repr(db: Path) -> None:
    with SQLiteStore(db, flush_interval=0.5, serializer="pickle") as store:
        text = repr(store)
        assert store.path == str(db)
    assert "SQLiteStore" in text
    assert str(db) in text
    assert "pickle" in text
    assert "0.5" in text
    assert "closed" in repr(store)


def test_a_path_like_is_accepted(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as store:
        assert store.path == str(tmp_path / "a.db")
    with SQLiteStore(str(tmp_path / "b.db")) as store:
        assert store.path == str(tmp_path / "b.db")


# -- opening: refused paths and files -------------------------------------------------------


def assert_store_error(error: StoreError, path: Path | str, *words: str) -> None:
    message = str(error)
    assert str(path) in message
    assert error.path == str(path)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("backend", [SQLiteStore, SQLiteCache])
def test_a_missing_directory_is_refused(tmp_path: Path, backend: Callable[..., Any]) -> None:
    path = tmp_path / "missing" / "runs.db"
    with pytest.raises(StoreError) as info:
        backend(path)
    assert_store_error(info.value, path, "does not exist", "create it")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("backend", [SQLiteStore, SQLiteCache])
def test_a_directory_is_refused(tmp_path: Path, backend: Callable[..., Any]) -> None:
    with pytest.raises(StoreError) as info:
        backend(tmp_path)
    assert_store_error(info.value, tmp_path, "is a directory", "runs.db")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_a_directory_nobody_may_write_is_refused() -> None:
    path = "/proc/rh-parallel-test.db"  # not even root creates files there
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert_store_error(info.value, path, "cannot open")


def test_a_store_opened_read_only_is_refused_when_opened(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a read-only file gives even to root: SQLite opens it read-only
    SQLiteStore(db).close()
    before = digest(db)

    def read_only(path: str) -> sqlite3.Connection:
        uri = Path(path).absolute().as_uri() + "?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)

    monkeypatch.setattr(_schema, "connect", read_only)
    with pytest.raises(StoreError) as info:
        SQLiteStore(db)
    assert_store_error(info.value, db, "not writable", "make the file and its directory writable")
    assert digest(db) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_store_is_refused_when_opened(db: Path) -> None:
    SQLiteStore(db).close()
    db.chmod(0o444)
    try:
        with pytest.raises(StoreError) as info:
            SQLiteStore(db)
    finally:
        db.chmod(0o644)
    assert_store_error(info.value, db, "not writable")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only directories")
def test_a_read_only_directory_is_refused_when_opened(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        with pytest.raises(StoreError) as info:
            SQLiteStore(directory / "runs.db")
    finally:
        directory.chmod(0o755)
    assert_store_error(info.value, directory / "runs.db")


@pytest.mark.parametrize("backend", [SQLiteStore, SQLiteCache])
def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(
    db: Path, backend: Callable[..., Any]
) -> None:
    db.write_bytes(b"name,value\n" * 500)
    before = digest(db)
    with pytest.raises(StoreError) as info:
        backend(db)
    assert_store_error(info.value, db, "not an rh-parallel store", "untouched")
    assert digest(db) == before


@pytest.mark.parametrize("backend", [SQLiteStore, SQLiteCache])
def test_a_foreign_sqlite_file_is_refused_and_left_untouched(
    db: Path, backend: Callable[..., Any]
) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("INSERT INTO users VALUES ('ada')")
    conn.commit()
    conn.close()
    before = digest(db)
    with pytest.raises(StoreError) as info:
        backend(db)
    assert_store_error(info.value, db, "not an rh-parallel store", "untouched", "users")
    assert digest(db) == before
    conn = sqlite3.connect(db)
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert tables == {"users"}


def test_a_meta_table_of_another_format_is_refused(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE rh_parallel_meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO rh_parallel_meta VALUES ('format', 'something-else')")
    conn.commit()
    conn.close()
    before = digest(db)
    with pytest.raises(StoreError) as info:
        SQLiteStore(db)
    assert_store_error(info.value, db, "not an rh-parallel store")
    assert digest(db) == before


def test_a_newer_schema_is_refused(db: Path) -> None:
    SQLiteStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE rh_parallel_meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        SQLiteCache(db)
    assert_store_error(info.value, db, "newer", "upgrade")


def test_an_empty_file_gets_the_schema(db: Path) -> None:
    db.write_bytes(b"")
    with SQLiteStore(db) as store:
        store.save(item("a"))
    assert count(db) == 1
    conn = sqlite3.connect(db)
    meta = dict(conn.execute("SELECT key, value FROM rh_parallel_meta"))
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert meta == {"format": "rh-parallel", "schema_version": "1"}
    assert mode == "wal"


@pytest.mark.parametrize("path", [":memory:", ""])
def test_an_in_memory_database_is_refused_with_a_hint(path: str) -> None:
    with pytest.raises(ValueError, match="MemoryStore"):
        SQLiteStore(path)
    with pytest.raises(ValueError, match="MemoryCache"):
        SQLiteCache(path)


def test_arguments_are_checked(db: Path) -> None:
    with pytest.raises(TypeError, match="flush_interval"):
        SQLiteStore(db, flush_interval="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="flush_interval"):
        SQLiteStore(db, flush_interval=True)
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="flush_interval"):
            SQLiteStore(db, flush_interval=bad)
    with pytest.raises(ValueError, match=r"serializer must be 'json' or 'pickle'"):
        SQLiteStore(db, serializer="yaml")  # type: ignore[arg-type]
    for bad in (0, -5, math.nan, math.inf):
        with pytest.raises(ValueError, match="ttl"):
            SQLiteCache(db, ttl=bad)
    with pytest.raises(TypeError, match="ttl"):
        SQLiteCache(db, ttl="60")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path"):
        SQLiteStore(3)  # type: ignore[arg-type]
    assert not db.exists()  # arguments are checked before the file is touched


def test_a_store_and_a_cache_share_one_file(db: Path) -> None:
    with SQLiteStore(db) as store, SQLiteCache(db) as cache:
        store.save(item("a"))
        cache.put("k", 1)
        store.sync()
        cache.sync()
    with SQLiteStore(db) as store, SQLiteCache(db) as cache:
        assert set(store.load("run-1", "group")) == {"a"}
        assert cache.get_many(["k"]) == {"k": 1}


def test_two_stores_on_one_file_both_commit(db: Path) -> None:
    with SQLiteStore(db, flush_interval=0.01) as one, SQLiteStore(db, flush_interval=0.01) as two:
        for i in range(200):
            one.save(item(f"one{i}"))
            two.save(item(f"two{i}"))
    assert count(db) == 400
    assert one.write_failures == two.write_failures == 0


# -- the cache ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cache(db: Path) -> Iterator[SQLiteCache]:
    with SQLiteCache(db) as opened:
        yield opened


def test_the_cache_implements_the_protocol(cache: SQLiteCache) -> None:
    assert isinstance(cache, ResultCache)
    assert cache.blocking is True


def test_cache_round_trips_and_misses(db: Path, cache: SQLiteCache) -> None:
    cache.put("model", Answer(text="t", score=math.nan))
    cache.put("tuple", (1, 2))
    cache.put("none", None)
    hits = cache.get_many(["model", "tuple", "none", "missing", "tuple"])
    assert set(hits) == {"model", "tuple", "none"}
    assert hits["tuple"] == [1, 2]
    assert hits["none"] is None
    assert math.isnan(hits["model"]["score"])
    cache.sync()
    assert cache.get_many(["tuple", "missing"]) == {"tuple": [1, 2]}  # from the file now
    assert count(db, "cache") == 3
    assert len(cache) == 3
    with pytest.raises(TypeError, match="Opaque"):
        cache.put("bad", Opaque(1))


def test_a_hit_is_a_fresh_copy(cache: SQLiteCache) -> None:
    value = {"n": [1]}
    cache.put("k", value)
    value["n"].append(2)
    hit = cache.get_many(["k"])["k"]
    assert hit == {"n": [1]}
    hit["n"].append(3)
    assert cache.get_many(["k"])["k"] == {"n": [1]}


def test_a_pending_put_is_seen_at_once_and_the_overlay_empties_on_commit(
    db: Path,
) -> None:
    with SQLiteCache(db, flush_interval=30) as cache:
        cache.put("k", "v1")
        assert cache.get_many(["k"]) == {"k": "v1"}
        assert count(db, "cache") == 0  # not committed yet
        cache.put("k", "v2")
        assert cache.get_many(["k"]) == {"k": "v2"}
        cache.sync()
        assert count(db, "cache") == 1
        assert cache._overlay == {}
        assert cache.get_many(["k"]) == {"k": "v2"}


def test_a_put_is_committed_within_flush_interval(db: Path) -> None:
    with SQLiteCache(db, flush_interval=0.2) as cache:
        cache.put("k", 1)
        assert poll(lambda: count(db, "cache") == 1)


def test_entries_expire_after_their_ttl(db: Path) -> None:
    clock = Clock()
    with SQLiteCache(db, ttl=10, _clock=clock) as cache:
        cache.put("default", 1)
        cache.put("short", 2, ttl=1)
        cache.put("long", 3, ttl=100)
        assert set(cache.get_many(["default", "short", "long"])) == {"default", "short", "long"}
        clock.now += 5
        assert set(cache.get_many(["default", "short", "long"])) == {"default", "long"}
        cache.sync()
        clock.now += 10
        assert set(cache.get_many(["default", "short", "long"])) == {"long"}
        cache.sync()  # the expired rows read from the file are deleted by the writer
        assert count(db, "cache") == 1
        assert len(cache) == 1
        clock.now += 1000
        assert cache.get_many(["long"]) == {}
        with pytest.raises(ValueError, match="ttl"):
            cache.put("k", 1, ttl=0)


def test_no_ttl_means_no_expiry(db: Path) -> None:
    clock = Clock()
    with SQLiteCache(db, _clock=clock) as cache:
        cache.put("k", 1)
        cache.sync()
        clock.now += 10**9
        assert cache.get_many(["k"]) == {"k": 1}


def test_an_expired_row_refreshed_meanwhile_is_not_deleted(db: Path) -> None:
    clock = Clock()
    with SQLiteCache(db, ttl=1, flush_interval=30, _clock=clock) as reader:
        reader.put("k", "old")
        reader.sync()
        clock.now += 5
        with SQLiteCache(db, ttl=100, _clock=clock) as other:
            assert reader.get_many(["k"]) == {}  # queues the deletion of the expired row
            other.put("k", "new")  # another process refreshes it before that commits
        reader.sync()
        assert reader.get_many(["k"]) == {"k": "new"}


def test_the_cache_is_shared_by_two_processes(db: Path) -> None:
    with SQLiteCache(db, ttl=3600) as cache:
        cache.put("from-parent", {"who": "parent"})
        cache.sync()
        out = run_python(
            f"""
            from rh_parallel.store import SQLiteCache
            with SQLiteCache({str(db)!r}) as cache:
                print(cache.get_many(["from-parent"]))
                cache.put("from-child", {{"who": "child", "pid": __import__("os").getpid()}})
            """
        )
        assert "'who': 'parent'" in out
        hit = cache.get_many(["from-child"])["from-child"]
    assert hit["who"] == "child"
    assert hit["pid"] != os.getpid()


def test_the_cache_is_thread_safe(db: Path) -> None:
    errors: list[BaseException] = []
    with SQLiteCache(db, flush_interval=0.01) as cache:

        def work(n: int) -> None:
            try:
                for i in range(300):
                    cache.put(f"{n}-{i}", [n, i])
                    got = cache.get_many([f"{n}-{i}", f"{n}-{max(i - 1, 0)}"])
                    assert got[f"{n}-{i}"] == [n, i]
                    assert f"{n}-{max(i - 1, 0)}" in got
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=50)
        assert errors == []
        keys = [f"{n}-{i}" for n in range(8) for i in range(300)]
        assert len(cache.get_many(keys)) == 2400
    assert count(db, "cache") == 2400


def test_many_keys_at_once(cache: SQLiteCache) -> None:
    for i in range(1200):
        cache.put(f"k{i}", i)
    cache.sync()
    hits = cache.get_many([f"k{i}" for i in range(1300)])
    assert hits == {f"k{i}": i for i in range(1200)}


def test_cache_keys_with_sql_text_are_just_data(db: Path, cache: SQLiteCache) -> None:
    cache.put(EVIL, EVIL)
    cache.sync()
    assert cache.get_many([EVIL, "other"]) == {EVIL: EVIL}
    assert count(db, "cache") == 1


def test_a_json_cache_ignores_pickled_values(db: Path, quiet: pytest.LogCaptureFixture) -> None:
    with SQLiteCache(db, serializer="pickle") as cache:
        cache.put("k", {1, 2})
        assert cache.get_many(["k"]) == {"k": {1, 2}}
    with SQLiteCache(db) as cache:
        assert cache.get_many(["k"]) == {}
    assert any("pickle" in r.getMessage() for r in quiet.records)


def test_clear_and_len(db: Path, cache: SQLiteCache) -> None:
    cache.put("a", 1)
    cache.put("b", 2)
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0
    assert cache.get_many(["a", "b"]) == {}
    assert count(db, "cache") == 0


def test_cache_write_failures_are_counted_and_the_overlay_does_not_leak(
    db: Path, cache: SQLiteCache, quiet: pytest.LogCaptureFixture
) -> None:
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE rh_parallel_cache")
    conn.commit()
    conn.close()
    cache.put("a", 1)
    cache.put("b", 2)
    cache.sync()
    assert cache.write_failures == 2
    assert cache._overlay == {}
    assert any(str(db) in r.getMessage() for r in quiet.records)


def test_the_cache_closes_and_commits(db: Path) -> None:
    cache = SQLiteCache(db, flush_interval=60)
    cache.put("k", 1)
    cache.close()
    cache.close()
    assert count(db, "cache") == 1
    with pytest.raises(StoreError, match="closed"):
        cache.put("j", 2)
    with pytest.raises(StoreError, match="closed"):
        cache.get_many(["k"])
    assert "closed" in repr(cache)
