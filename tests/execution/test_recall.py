"""Durable runs in the engine: recovery of saved items, the result cache, single flight."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from rh_parallel import (
    EventBus,
    ExecutionEvent,
    ExecutionState,
    ParallelEventGroup,
    ResultStatus,
    Tool,
)
from rh_parallel.store import MemoryCache, MemoryStore, SavedItem
from rh_parallel.testing import InMemoryTelemetry, RecordCapture


class Calls:
    """Counts calls per key, from inside the work (what was paid for)."""

    def __init__(self) -> None:
        self.count: Counter[Any] = Counter()

    async def fetch(self, key: Any) -> dict[str, Any]:
        self.count[key] += 1
        await asyncio.sleep(0)
        return {"key": key, "calls": self.count[key]}


async def run_docs(state: ExecutionState, calls: Calls, n: int, workers: int = 4) -> list[Any]:
    async with state.parallel(workers, name="docs") as p:
        for i in range(n):
            p.add(f"doc-{i}", calls.fetch, i)
    return await p.gather()


# -- recovery ---------------------------------------------------------------------------


async def test_a_resumed_run_recovers_completed_items_without_running_them() -> None:
    store, calls = MemoryStore(), Calls()
    first = await run_docs(ExecutionState(store=store, run_id="r1", observers=[]), calls, 20)
    assert sum(calls.count.values()) == 20
    resumed = await run_docs(ExecutionState(store=store, run_id="r1", observers=[]), calls, 20)
    assert sum(calls.count.values()) == 20  # nothing ran again
    assert all(r.status is ResultStatus.RECOVERED and r.ok for r in resumed)
    assert [r.result for r in resumed] == [r.result for r in first]
    assert [r.name for r in resumed] == [f"doc-{i}" for i in range(20)]


async def test_failed_items_run_again_and_only_they() -> None:
    store = MemoryStore()
    attempts: Counter[int] = Counter()

    async def flaky(i: int) -> int:
        attempts[i] += 1
        if i % 3 == 0 and attempts[i] == 1:
            raise RuntimeError(f"first call of {i} fails")
        return i * 10

    async def run() -> list[Any]:
        state = ExecutionState(store=store, run_id="flaky", observers=[])
        async with state.parallel(4) as p:
            for i in range(9):
                p.add(flaky, i)
        return await p.gather()

    first = await run()
    assert [r.ok for r in first].count(False) == 3
    second = await run()
    assert all(r.ok for r in second)
    assert dict(attempts) == {i: 2 if i % 3 == 0 else 1 for i in range(9)}
    statuses = [r.status for r in second]
    assert statuses == [
        ResultStatus.COMPLETED if i % 3 == 0 else ResultStatus.RECOVERED for i in range(9)
    ]


async def test_recovered_items_take_no_slot() -> None:
    """1,000 saved items and one new item holding the only slot until every recovered item
    has ended: recovered items must not need the slot, or this never ends."""
    store, calls = MemoryStore(), Calls()
    await run_docs(ExecutionState(store=store, run_id="big", observers=[]), calls, 1000)
    state = ExecutionState(store=store, run_id="big", observers=[])
    async with state.parallel(1, name="docs") as p:

        async def gate() -> int:
            while p.group.recovered < 1000:  # noqa: ASYNC110 - polls the engine's counter
                await asyncio.sleep(0)
            return p.group.recovered

        for i in range(1000):
            p.add(f"doc-{i}", calls.fetch, i)
        p.add("gate", gate)
    results = await p.gather()
    assert results[-1].result == 1000
    assert sum(calls.count.values()) == 1000  # only the first run paid
    assert (p.group.completed, p.group.recovered, p.group.failed) == (1001, 1000, 0)


async def test_dependents_read_recovered_results() -> None:
    store = MemoryStore()
    ran: list[str] = []

    async def run(fail_report: bool) -> Any:
        state = ExecutionState(store=store, run_id="deps", observers=[])
        async with state.parallel(2) as p:

            async def part(n: int) -> int:
                ran.append(f"part{n}")
                return n

            async def report() -> int:
                ran.append("report")
                if fail_report:
                    raise RuntimeError("report failed")
                return p.result_of("a").result + p.result_of("b").result

            p.add("a", part, 1)
            p.add("b", part, 2)
            p.add("report", report, depends_on=["a", "b"])
        return await p.gather_dict()

    first = await run(fail_report=True)
    assert not first["report"].ok
    second = await run(fail_report=False)
    assert second["report"].result == 3 and second["report"].status is ResultStatus.COMPLETED
    assert second["a"].status is ResultStatus.RECOVERED
    assert ran == ["part1", "part2", "report", "report"]


async def test_a_fingerprint_mismatch_runs_again_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, calls = MemoryStore(), Calls()

    async def run(arg: str) -> Any:
        state = ExecutionState(store=store, run_id="fp", observers=[])
        async with state.parallel(1) as p:
            p.add("item", calls.fetch, arg)
        return (await p.gather())[0]

    await run("v1")
    with caplog.at_level(logging.WARNING, logger="rh_parallel.store"):
        changed = await run("v2")
    assert changed.status is ResultStatus.COMPLETED and changed.result["key"] == "v2"
    assert any("docs" not in r.message and "item" in r.message for r in caplog.records)
    again = await run("v2")  # the new result replaced the old one
    assert again.status is ResultStatus.RECOVERED and again.result["key"] == "v2"
    assert calls.count == Counter({"v1": 1, "v2": 1})


async def test_event_results_are_validated_into_the_output_model() -> None:
    class In(BaseModel):
        text: str

    class Out(BaseModel):
        words: int

    calls: list[str] = []

    async def count(data: In, ctx: Any, state: Any) -> Out:
        calls.append(data.text)
        return Out(words=len(data.text.split()))

    event = ExecutionEvent(
        actor=Tool(name="count", input_model=In, output_model=Out, handler=count)
    )
    store = MemoryStore()
    for _ in range(2):
        state = ExecutionState(store=store, run_id="models", observers=[])
        async with state.parallel(2) as p:
            p.add(event({"text": "one two"}, None, state))
            p.add(event({"text": "three"}, None, state))
        results = await p.gather()
        assert [r.result for r in results] == [Out(words=2), Out(words=1)]
    assert calls == ["one two", "three"]
    assert {r.status for r in results} == {ResultStatus.RECOVERED}


async def test_different_run_ids_share_neither_results_nor_group_ids() -> None:
    store, calls = MemoryStore(), Calls()
    a = ExecutionState(store=store, run_id="a", observers=[])
    b = ExecutionState(store=store, run_id="b", observers=[])
    await run_docs(a, calls, 3)
    results = await run_docs(b, calls, 3)
    assert {r.status for r in results} == {ResultStatus.COMPLETED}
    assert sum(calls.count.values()) == 6
    assert results[0].group_id != (await run_docs(a, calls, 3))[0].group_id


async def test_coroutine_items_are_recovered_and_closed_unawaited() -> None:
    store, calls = MemoryStore(), Calls()
    for _ in range(2):
        state = ExecutionState(store=store, run_id="coros", observers=[])
        async with state.parallel(2) as p:
            for i in range(3):
                p.add(calls.fetch(i))  # coroutine objects: no fingerprint, same addresses
        results = await p.gather()
    assert sum(calls.count.values()) == 3  # and no "never awaited" warning (-W error)
    assert {r.status for r in results} == {ResultStatus.RECOVERED}


async def test_an_unserializable_value_is_not_saved_and_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    calls: list[int] = []

    async def opaque(i: int) -> object:
        calls.append(i)
        return object()

    for _ in range(2):
        state = ExecutionState(store=store, run_id="opaque", observers=[])
        with caplog.at_level(logging.WARNING, logger="rh_parallel.store"):
            async with state.parallel(2, name="blobs") as p:
                for i in range(3):
                    p.add(opaque, i)
            results = await p.gather()
        assert all(r.ok for r in results)
    assert sorted(calls) == [0, 0, 1, 1, 2, 2]
    warnings = [r for r in caplog.records if "blobs" in r.getMessage()]
    assert len(warnings) == 2  # once per group, not once per item
    assert "object" in warnings[0].getMessage()


class BrokenStore(MemoryStore):
    """A store whose every operation fails, as a full disk or a dropped server would."""

    def has_run(self, run_id: str) -> bool:
        raise OSError("disk on fire")

    def save(self, item: SavedItem) -> None:
        raise OSError("disk on fire")

    def flush(self) -> None:
        raise OSError("disk on fire")

    def sync(self) -> None:
        raise OSError("disk on fire")


async def test_a_failing_store_costs_log_lines_never_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = ExecutionState(store=BrokenStore(), run_id="broken", observers=[])
    with caplog.at_level(logging.WARNING, logger="rh_parallel.store"):
        results = await run_docs(state, Calls(), 5)
        await state.aclose()
    assert all(r.ok and r.status is ResultStatus.COMPLETED for r in results)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "could not read run 'broken'" in messages and "not saved" in messages


async def test_records_and_counters_show_recovered_items() -> None:
    store, calls = MemoryStore(), Calls()
    await run_docs(ExecutionState(store=store, run_id="rec", observers=[]), calls, 3)
    bus = EventBus()
    capture = RecordCapture(bus)
    state = ExecutionState(event_bus=bus, store=store, run_id="rec", observers=[])
    await run_docs(state, calls, 4)
    await state.aclose()
    items = [r for r in capture.records if isinstance(r, ExecutionEvent)]
    assert Counter(r.execution_status for r in items) == Counter(
        {"recovered": 3, "started": 1, "completed": 1}
    )
    assert {r.run_id for r in capture.records} == {"rec"}
    end = [r for r in capture.records if isinstance(r, ParallelEventGroup)][-1]
    assert (end.completed, end.recovered, end.cached, end.total) == (4, 3, 0, 4)


# -- the cache --------------------------------------------------------------------------


async def test_cache_hits_come_back_completed_and_cached_without_running() -> None:
    cache, calls = MemoryCache(), Calls()
    for run in range(2):
        state = ExecutionState(cache=cache, observers=[])
        async with state.parallel(2) as p:
            for i in range(4):
                p.add(calls.fetch, i, cache_key=f"fetch:{i}")
        results = await p.gather()
        assert {r.status for r in results} == {ResultStatus.COMPLETED}
        assert all(r.cached is (run == 1) for r in results)
    assert sum(calls.count.values()) == 4
    assert [r.result["key"] for r in results] == [0, 1, 2, 3]


async def test_cache_hits_take_no_slot() -> None:
    cache, calls = MemoryCache(), Calls()
    state = ExecutionState(cache=cache, observers=[])
    async with state.parallel(1) as warm:
        for i in range(50):
            warm.add(calls.fetch, i, cache_key=str(i))
    async with state.parallel(1) as p:

        async def gate() -> int:
            while p.group.cached < 50:  # noqa: ASYNC110 - polls the engine's counter
                await asyncio.sleep(0)
            return p.group.cached

        p.add("gate", gate)
        for i in range(50):
            p.add(calls.fetch, i, cache_key=str(i))
    assert (await p.gather())[0].result == 50


async def test_concurrent_misses_of_one_key_run_once() -> None:
    cache = MemoryCache()
    started = 0
    release = asyncio.Event()

    async def expensive(key: str) -> str:
        nonlocal started
        started += 1
        await release.wait()
        return key.upper()

    state = ExecutionState(cache=cache, observers=[])

    async def group(n: int) -> list[Any]:
        async with state.parallel(n) as p:
            for _ in range(n):
                p.add(expensive, "k", cache_key="k")
            p.add(expensive, "other", cache_key="other")
        return await p.gather()

    both = asyncio.gather(group(5), group(3))
    while started < 2:  # noqa: ASYNC110 - one leader per key, across both groups
        await asyncio.sleep(0)
    for _ in range(10):
        await asyncio.sleep(0)
    assert started == 2
    release.set()
    first, second = await both
    values = [r.result for r in first + second]
    assert values.count("K") == 8 and values.count("OTHER") == 2
    ran = [r for r in first + second if not r.cached]
    assert len(ran) == 2  # the two leaders; every other result was served


async def test_when_the_leader_fails_a_follower_runs_instead() -> None:
    cache = MemoryCache()
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise RuntimeError("first call fails")
        return "ok"

    state = ExecutionState(cache=cache, observers=[])
    async with state.parallel(3) as p:
        for _ in range(3):
            p.add(flaky, cache_key="k")
    results = await p.gather()
    assert calls == 2
    assert [(r.ok, r.cached) for r in results] == [(False, False), (True, False), (True, True)]


async def test_a_follower_whose_group_is_cancelled_is_not_delivered_to_later() -> None:
    cache = MemoryCache()
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "v"

    state = ExecutionState(cache=cache, observers=[])
    leader = state.parallel(1)
    leader.add(slow, cache_key="k")
    follower = state.parallel(1)
    follower.add(slow, cache_key="k")
    leading = asyncio.ensure_future(leader.gather())
    following = asyncio.ensure_future(follower.gather())
    for _ in range(5):
        await asyncio.sleep(0)
    following.cancel()
    with pytest.raises(asyncio.CancelledError):
        await following
    assert follower.results[0] is not None
    assert follower.results[0].status is ResultStatus.CANCELLED
    release.set()
    assert (await leading)[0].result == "v"
    assert follower.results[0].status is ResultStatus.CANCELLED  # unchanged


async def test_cacheable_actors_are_keyed_by_actor_and_input() -> None:
    class In(BaseModel):
        q: str

    calls: list[tuple[str, str]] = []

    def actor(name: str) -> ExecutionEvent:
        async def handler(data: In, ctx: Any, state: Any) -> str:
            calls.append((name, data.q))
            return f"{name}:{data.q}"

        return ExecutionEvent(
            actor=Tool(name=name, input_model=In, handler=handler, cacheable=True)
        )

    search, lookup = actor("search"), actor("lookup")
    state = ExecutionState(cache=MemoryCache(), observers=[])
    for _ in range(2):
        async with state.parallel(4) as p:
            p.add(search({"q": "a"}, None, state))
            p.add(search(In(q="a"), None, state))  # an equal input, however it is passed
            p.add(search({"q": "b"}, None, state))
            p.add(lookup({"q": "a"}, None, state))
        results = await p.gather()
        assert [r.result for r in results] == ["search:a", "search:a", "search:b", "lookup:a"]
    assert sorted(calls) == [("lookup", "a"), ("search", "a"), ("search", "b")]


async def test_a_cache_ttl_expires_entries() -> None:
    now = [1000.0]
    cache = MemoryCache(ttl=60, _clock=lambda: now[0])
    calls = Calls()
    state = ExecutionState(cache=cache, observers=[])
    await state.parallel_execute([lambda: calls.fetch("x")], 1)  # not keyed: not cached
    for step in (0, 30, 31):
        now[0] += step
        async with state.parallel(1) as p:
            p.add(calls.fetch, "x", cache_key="x")
        await p.gather()
    assert calls.count["x"] == 3  # unkeyed, first keyed, after expiry (30 + 31 > 60)


async def test_sequential_events_are_recovered_and_cached() -> None:
    class In(BaseModel):
        n: int

    calls: list[int] = []

    async def square(data: In, ctx: Any, state: Any) -> int:
        calls.append(data.n)
        return data.n * data.n

    pure = ExecutionEvent(actor=Tool(name="square", input_model=In, handler=square, cacheable=True))
    store, cache = MemoryStore(), MemoryCache()
    state = ExecutionState(store=store, run_id="seq", observers=[])
    assert (await pure({"n": 3}, None, state)).result == 9
    resumed = ExecutionState(store=store, run_id="seq", observers=[])
    result = await pure({"n": 3}, None, resumed)
    assert result.status is ResultStatus.RECOVERED and result.result == 9
    cached = ExecutionState(cache=cache, observers=[])
    await pure({"n": 4}, None, cached)
    hit = await pure({"n": 4}, None, cached)
    assert hit.cached and hit.result == 16
    assert calls == [3, 4]


async def test_spans_and_metrics_show_recovery_and_cache_hits() -> None:
    telemetry = InMemoryTelemetry()
    store, cache, calls = MemoryStore(), MemoryCache(), Calls()
    for _ in range(2):
        state = telemetry.state(store=store, cache=cache, run_id="observed")
        async with state.parallel(2, name="docs") as p:
            p.add("saved", calls.fetch, 1)
            p.add("keyed", calls.fetch, 2, cache_key="two")
        await p.gather()
    recovered = [s for s in telemetry.spans() if s.attributes.get("rh_parallel.recovered")]
    assert len(recovered) == 2  # both were saved by the first run
    assert all(s.attributes["rh_parallel.run_id"] == "observed" for s in telemetry.spans())
    sample = telemetry.sample
    assert sample("rh_parallel_events_total", kind="task", outcome="recovered", group="docs") == 2
    assert sample("rh_parallel_cache_requests_total", result="miss", group="docs") == 1
    # the second run recovered "keyed" from the store before the cache was consulted
    third = telemetry.state(cache=cache)
    async with third.parallel(2, name="docs") as p:
        p.add("keyed", calls.fetch, 2, cache_key="two")
    await p.gather()
    hits = [s for s in telemetry.spans() if s.attributes.get("rh_parallel.cache_hit")]
    assert len(hits) == 1
    assert sample("rh_parallel_cache_requests_total", result="hit", group="docs") == 1


async def test_bad_cache_keys_and_backends_are_refused_clearly() -> None:
    state = ExecutionState(cache=MemoryCache(), observers=[])
    p = state.parallel()
    with pytest.raises(TypeError, match="cache_key=3"):
        p.add(asyncio.sleep, 0, cache_key=3)
    with pytest.raises(TypeError, match="store takes a run store"):
        ExecutionState(store="runs.db")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache takes a result cache"):
        ExecutionState(cache={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="run_id"):
        ExecutionState(run_id="")
    with pytest.raises(TypeError, match="run_id"):
        ExecutionState(run_id=7)  # type: ignore[arg-type]


async def test_an_item_over_failed_nested_work_reruns_and_only_the_failed_work_inside() -> None:
    """A parent that returned although a nested item failed is not saved: resuming enters it
    again, its completed nested items are recovered and only the failed one runs again."""
    store = MemoryStore()
    calls: Counter[str] = Counter()
    broken = {"b"}

    async def step(name: str) -> str:
        calls[name] += 1
        if name in broken:
            raise RuntimeError(f"{name} failed")
        return name.upper()

    async def parent(state: ExecutionState) -> str:
        calls["parent"] += 1
        async with state.parallel(3, name="steps") as steps:
            for name in ("a", "b", "c"):
                steps.add(name, step, name)
        results = await steps.gather()
        return "".join(r.result if r.ok else "?" for r in results)

    async def run() -> tuple[Any, Any]:
        state = ExecutionState(store=store, run_id="nested", observers=[])
        async with state.parallel(2, name="top") as top:
            top.add("parent", parent, state)
            top.add("sibling", step, "s")
        return tuple(await top.gather())  # type: ignore[return-value]

    first_parent, _ = await run()
    assert first_parent.result == "A?C" and first_parent.status is ResultStatus.COMPLETED
    broken.clear()
    second_parent, sibling = await run()
    assert second_parent.result == "ABC" and second_parent.status is ResultStatus.COMPLETED
    assert sibling.status is ResultStatus.RECOVERED
    assert calls == Counter({"parent": 2, "a": 1, "b": 2, "c": 1, "s": 1})
    third_parent, _ = await run()
    assert third_parent.status is ResultStatus.RECOVERED and calls["parent"] == 2
