from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from rh_parallel.store import MemoryCache, MemoryStore, ResultCache, RunStore, SavedItem


class Answer(BaseModel):
    text: str
    score: float


@dataclass
class Pair:
    left: int
    right: tuple[int, ...]


class Opaque:
    pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def item(address: str, value: Any = None, *, run_id: str = "r", parent: str = "g") -> SavedItem:
    return SavedItem(run_id, address, parent, f"n-{address}", f"fp-{address}", value, 3, 0.5)


# -- MemoryStore ----------------------------------------------------------------------------


def test_the_store_implements_the_protocol() -> None:
    store = MemoryStore()
    assert isinstance(store, RunStore)
    assert store.blocking is False
    assert store.write_failures == 0


def test_values_come_back_as_sqlite_would_return_them() -> None:
    store = MemoryStore()
    store.save(item("model", Answer(text="a", score=math.nan)))
    store.save(item("dataclass", Pair(1, (2, 3))))
    store.save(item("tuple", (1, [2, (3,)])))
    loaded = store.load("r", "g")
    assert loaded["dataclass"].value == {"left": 1, "right": [2, 3]}
    assert loaded["tuple"].value == [1, [2, [3]]]
    assert loaded["model"].value["text"] == "a"
    assert math.isnan(loaded["model"].value["score"])
    saved = loaded["tuple"]
    assert (saved.run_id, saved.parent, saved.name, saved.fingerprint) == (
        "r",
        "g",
        "n-tuple",
        "fp-tuple",
    )
    assert (saved.attempts, saved.execution_time) == (3, 0.5)
    assert saved.saved_at > 0


def test_values_are_copies_both_ways() -> None:
    store = MemoryStore()
    value = {"n": [1]}
    store.save(item("a", value))
    value["n"].append(2)
    loaded = store.load("r", "g")["a"].value
    assert loaded == {"n": [1]}
    loaded["n"].append(3)
    assert store.load("r", "g")["a"].value == {"n": [1]}


def test_an_unencodable_value_raises_a_type_error_naming_it() -> None:
    store = MemoryStore()
    with pytest.raises(TypeError, match="Opaque"):
        store.save(item("a", Opaque()))
    assert not store.has_run("r")


def test_pickle_keeps_python_types_when_asked() -> None:
    store = MemoryStore(serializer="pickle")
    store.save(item("a", {"t": (1, 2), "s": {3}}))
    assert store.load("r", "g")["a"].value == {"t": (1, 2), "s": {3}}
    with pytest.raises(ValueError, match="serializer"):
        MemoryStore(serializer="yaml")  # type: ignore[arg-type]


def test_load_by_run_and_parent_and_overwrites() -> None:
    store = MemoryStore()
    assert not store.has_run("r")
    store.save(item("a", 1, parent="g1"))
    store.save(item("b", 2, parent="g1"))
    store.save(item("c", 3, parent="g2"))
    store.save(item("a", 4, run_id="other", parent="g1"))
    assert store.has_run("r")
    assert {k: v.value for k, v in store.load("r", "g1").items()} == {"a": 1, "b": 2}
    assert set(store.load("r", "g2")) == {"c"}
    assert store.load("r", "g3") == {}
    assert store.load("missing", "g1") == {}
    store.save(item("a", 5, parent="g2"))  # the same address, now under another parent
    assert set(store.load("r", "g1")) == {"b"}
    assert {k: v.value for k, v in store.load("r", "g2").items()} == {"a": 5, "c": 3}


def test_runs_items_and_delete() -> None:
    clock = Clock()
    store = MemoryStore(_clock=clock)
    store.save(item("b", run_id="old"))
    clock.now += 1
    store.save(item("a", run_id="old"))
    clock.now += 1
    store.save(item("x", run_id="new"))
    runs = store.runs()
    assert [(r.run_id, r.items) for r in runs] == [("new", 1), ("old", 2)]
    assert runs[1].created == 1000.0
    assert runs[1].updated == 1001.0
    assert [i.address for i in store.items("old")] == ["b", "a"]  # the order they were saved
    assert store.items("missing") == []
    assert store.delete("old") == 2
    assert store.delete("old") == 0
    assert not store.has_run("old")
    assert [r.run_id for r in store.runs()] == ["new"]
    store.flush()
    store.sync()
    store.close()
    assert store.has_run("new")
    assert "MemoryStore" in repr(store)


def test_the_store_is_thread_safe() -> None:
    store = MemoryStore()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(500):
                store.save(item(f"{n}-{i}", [n, i], parent=f"g{i % 3}"))
                if i % 50 == 0:
                    store.load("r", f"g{i % 3}")
                    store.runs()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert store.runs()[0].items == 4000
    assert sum(len(store.load("r", f"g{k}")) for k in range(3)) == 4000


# -- MemoryCache ----------------------------------------------------------------------------


def test_the_cache_implements_the_protocol() -> None:
    cache = MemoryCache()
    assert isinstance(cache, ResultCache)
    assert cache.blocking is False
    assert cache.write_failures == 0


def test_cache_round_trips_as_plain_data() -> None:
    cache = MemoryCache()
    cache.put("model", Answer(text="t", score=1.5))
    cache.put("tuple", (1, 2))
    cache.put("none", None)
    assert cache.get_many(["model", "tuple", "none", "missing"]) == {
        "model": {"text": "t", "score": 1.5},
        "tuple": [1, 2],
        "none": None,
    }
    with pytest.raises(TypeError, match="Opaque"):
        cache.put("bad", Opaque())
    assert cache.get_many(["bad"]) == {}


def test_a_hit_never_shares_a_mutable_object() -> None:
    cache = MemoryCache()
    value = {"n": [1]}
    cache.put("k", value)
    value["n"].append(2)
    hit = cache.get_many(["k"])["k"]
    hit["n"].append(3)
    assert cache.get_many(["k"])["k"] == {"n": [1]}


def test_the_least_recently_used_entry_is_evicted() -> None:
    cache = MemoryCache(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get_many(["a"]) == {"a": 1}  # "a" is now the most recently used
    cache.put("c", 3)
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}
    cache.put("a", 10)  # a put counts as a use too
    cache.put("d", 4)
    assert cache.get_many(["a", "c", "d"]) == {"a": 10, "d": 4}
    assert len(cache) == 2


def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    cache = MemoryCache(ttl=10, _clock=clock)
    cache.put("default", 1)
    cache.put("short", 2, ttl=1)
    cache.put("long", 3, ttl=100)
    clock.now += 5
    assert set(cache.get_many(["default", "short", "long"])) == {"default", "long"}
    clock.now += 10
    assert set(cache.get_many(["default", "short", "long"])) == {"long"}
    assert len(cache) == 1  # expired entries that were looked up are dropped
    with pytest.raises(ValueError, match="ttl"):
        cache.put("k", 1, ttl=-1)


def test_no_ttl_means_no_expiry() -> None:
    clock = Clock()
    cache = MemoryCache(_clock=clock)
    cache.put("k", 1)
    clock.now += 10**9
    assert cache.get_many(["k"]) == {"k": 1}


def test_pickle_cache_keeps_python_types() -> None:
    cache = MemoryCache(serializer="pickle")
    cache.put("k", {1, 2})
    assert cache.get_many(["k"]) == {"k": {1, 2}}


@pytest.mark.parametrize(
    ("maxsize", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("8", TypeError)],
)
def test_maxsize_is_checked(maxsize: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="maxsize"):
        MemoryCache(maxsize)


def test_ttl_and_serializer_are_checked() -> None:
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="ttl"):
            MemoryCache(ttl=bad)
    with pytest.raises(TypeError, match="ttl"):
        MemoryCache(ttl="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"serializer must be 'json' or 'pickle'"):
        MemoryCache(serializer="marshal")  # type: ignore[arg-type]


def test_clear_len_and_no_op_methods() -> None:
    cache = MemoryCache()
    cache.put("a", 1)
    cache.put("b", 2)
    assert len(cache) == 2
    cache.sync()
    cache.close()
    assert cache.get_many(["a"]) == {"a": 1}
    cache.clear()
    assert len(cache) == 0
    assert cache.get_many(["a", "b"]) == {}
    assert "MemoryCache" in repr(cache)


def test_the_cache_is_thread_safe() -> None:
    cache = MemoryCache(maxsize=100_000)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(1000):
                cache.put(f"{n}-{i}", [n, i])
                assert cache.get_many([f"{n}-{i}"]) == {f"{n}-{i}": [n, i]}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(cache) == 8000


def test_eviction_under_threads_keeps_maxsize() -> None:
    cache = MemoryCache(maxsize=50)

    def work(n: int) -> None:
        for i in range(500):
            cache.put(f"{n}-{i}", i)
            cache.get_many([f"{n}-{i - 1}"])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(cache) == 50
