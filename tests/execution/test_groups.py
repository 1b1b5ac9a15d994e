"""Groups: the add forms, when work runs, the result modes, records and group state."""

from __future__ import annotations

import asyncio

import pytest

from rh_parallel import (
    EventBus,
    EventType,
    ExecutionEvent,
    ExecutionState,
    ExecutionStatus,
    GroupStatus,
    ParallelEventGroup,
    ResultStatus,
    RetryPolicy,
)
from rh_parallel.testing import RecordCapture


async def value(v: object, delay: float = 0.0) -> object:
    await asyncio.sleep(delay)
    return v


async def boom(message: str = "boom") -> None:
    await asyncio.sleep(0)
    raise RuntimeError(message)


async def test_three_add_forms_and_list_in_add_order(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    async with state.parallel(max_workers=3, name="forms") as p:
        assert p.add(value("coro", 0.02)) == 0
        assert p.add(double_event({"x": 4}, None, state)) == 1
        assert p.add("named", lambda: value("factory")) == 2
        assert p.add(lambda: value("kw"), name="kw") == 3
    results = await p.gather()
    assert [r.result for r in results] == ["coro", 8, "factory", "kw"]
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.name for r in results] == ["value", "double", "named", "kw"]
    assert {r.group_id for r in results} == {p.group.group_id}


async def test_nothing_runs_before_gather(state: ExecutionState) -> None:
    started: list[int] = []

    async def mark(n: int) -> int:
        started.append(n)
        return n

    p = state.parallel(max_workers=2)
    p.add(mark(1))
    p.add(lambda: mark(2))
    await asyncio.sleep(0.01)
    assert started == [] and p.group.status is GroupStatus.PENDING
    assert [r.result for r in await p.gather()] == [1, 2]
    # a second gather returns the stored results without running anything again
    assert [r.result for r in await p.gather()] == [1, 2]
    assert started == [1, 2]


async def test_leaving_the_block_runs_the_group(state: ExecutionState) -> None:
    async with state.parallel(max_workers=2) as p:
        p.add(value(1))
        p.add(value(2))
        assert p.group.status is GroupStatus.PENDING
    assert p.group.status is GroupStatus.COMPLETED
    assert [r.result for r in p.results if r] == [1, 2]


async def test_gather_dict_keys_by_name_or_index(state: ExecutionState) -> None:
    async with state.parallel() as p:
        p.add("doc1", value("a"))
        p.add(value("b"))
        p.add("doc3", lambda: value("c"))
    results = await p.gather_dict()
    assert {k: r.result for k, r in results.items()} == {"doc1": "a", "1": "b", "doc3": "c"}


async def test_stream_yields_in_completion_order(state: ExecutionState) -> None:
    gates = [asyncio.Event() for _ in range(4)]

    async def wait_gate(n: int) -> int:
        await gates[n].wait()
        return n

    p = state.parallel(max_workers=4)
    for n in range(4):
        p.add(wait_gate(n))
    order: list[int] = []
    stream = p.stream()
    for n in (2, 0, 3, 1):
        gates[n].set()
        result = await anext(stream)
        order.append(result.result)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert order == [2, 0, 3, 1]


async def test_as_completed_is_stream(state: ExecutionState) -> None:
    p = state.parallel()
    p.add(value(1, 0.02))
    p.add(value(2))
    assert [r.result async for r in p.as_completed()] == [2, 1]
    # after the run, stream replays the stored completion order
    assert [r.result async for r in p.stream()] == [2, 1]


async def test_parallel_execute_list_and_mapping(state: ExecutionState) -> None:
    listed = await state.parallel_execute([value(1), value(2)], max_workers=2)
    assert [r.result for r in listed] == [1, 2]
    mapped = await state.parallel_execute({"a": value("x"), "b": lambda: value("y")})
    assert {k: r.result for k, r in mapped.items()} == {"a": "x", "b": "y"}


async def test_group_counters_status_and_timing(state: ExecutionState) -> None:
    async with state.parallel(max_workers=2, name="Document Processing") as p:
        p.add(value(1))
        p.add(boom())
        p.add(value(3))
    group = p.group
    assert (group.total, group.completed, group.failed, group.cancelled) == (3, 2, 1, 0)
    assert group.status is GroupStatus.FAILED
    assert group.start_time is not None and group.end_time is not None
    assert group.duration is not None and group.duration >= 0
    assert [(e.index, e.error_type, e.error_message) for e in group.errors] == [
        (1, "RuntimeError", "boom")
    ]


async def test_returned_failed_result_counts_as_failure(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    async def wrapped() -> object:
        return await double_event({"x": -5}, None, state)

    async with state.parallel() as p:
        p.add(double_event({"x": -1}, None, state))
        p.add(wrapped())
    results = await p.gather()
    assert [r.ok for r in results] == [False, False]
    assert all(r.error_type == "ValueError" for r in results)
    assert not isinstance(results[1].result, type(results[0]))  # adopted, never nested
    assert p.group.failed == 2 and p.group.status is GroupStatus.FAILED


async def test_records_for_items_and_groups(
    bus: EventBus, capture: RecordCapture, double_event: ExecutionEvent
) -> None:
    state = ExecutionState(event_bus=bus, observers=[])
    async with state.parallel(max_workers=2, name="docs") as p:
        p.add("one", double_event({"x": 1}, None, state))
        p.add("two", value(2))
        p.add("bad", boom())
    await capture.flush()
    groups = capture.groups()
    assert [g.status for g in groups] == [GroupStatus.RUNNING, GroupStatus.FAILED]
    assert groups[0].total == 3 and groups[0].completed == 0  # a snapshot, not the live object
    assert groups[1].completed == 2 and groups[1].failed == 1
    gid = p.group.group_id
    items = capture.items(group_id=gid)
    assert {(r.item_name, r.execution_status) for r in items} == {
        ("one", ExecutionStatus.STARTED),
        ("one", ExecutionStatus.COMPLETED),
        ("two", ExecutionStatus.STARTED),
        ("two", ExecutionStatus.COMPLETED),
        ("bad", ExecutionStatus.STARTED),
        ("bad", ExecutionStatus.FAILED),
    }
    for record in items:
        assert record.is_parallel and record.group_id == gid
        assert record.address.startswith(p.group.address + "/")
    one = next(r for r in items if r.item_name == "one")
    two = next(r for r in items if r.item_name == "two")
    assert one.actor.name == "double" and one.actor.event_type is EventType.TOOL_CALL
    assert two.actor.name == "two" and two.actor.event_type is EventType.TASK
    bad = capture.items(status=ExecutionStatus.FAILED)[0]
    assert bad.error_type == "RuntimeError" and bad.message == "boom" and bad.parallel_index == 2
    assert len({r.address for r in items}) == 3  # unique per item


async def test_no_record_is_built_without_subscribers(
    state: ExecutionState, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    monkeypatch.setattr(ExecutionEvent, "model_construct", lambda **f: built.append(f))
    monkeypatch.setattr(ParallelEventGroup, "model_copy", lambda *a, **k: built.append(a))
    assert not state.event_bus.has_subscribers
    async with state.parallel() as p:
        p.add(value(1))
        p.add(value(2))
    assert p.group.completed == 2
    assert built == []  # neither item nor group records were made for nobody


async def test_group_ids_are_stable_within_a_run_id_and_distinct_between_runs() -> None:
    async def program(run_id: str | None) -> list[str]:
        state = ExecutionState(observers=[], run_id=run_id)
        ids = []
        for _ in range(2):
            async with state.parallel(name="batch") as p:
                p.add(value(1))
            ids.append(p.group.group_id)
        async with state.parallel() as q:
            q.add(value(1))
        ids.append(q.group.group_id)
        return ids

    first, resumed = await program("run-1"), await program("run-1")
    assert first == resumed  # a resumed run gets the same ids
    assert len(set(first)) == 3
    other, fresh = await program("run-2"), await program(None)
    assert not set(first) & set(other) and not set(first) & set(fresh)


async def test_unnamed_group_is_called_parallel(state: ExecutionState) -> None:
    p = state.parallel()
    assert p.group.name == "parallel"
    await p.gather()
    assert p.group.status is GroupStatus.COMPLETED and p.group.total == 0


async def test_result_of_reads_finished_items(state: ExecutionState) -> None:
    p = state.parallel()
    p.add("a", value(1))
    with pytest.raises(RuntimeError, match="has not finished"):
        p.result_of("a")
    await p.gather()
    assert p.result_of("a").result == 1 and p.result_of(0).result == 1


async def test_item_context_does_not_leak_between_items(state: ExecutionState) -> None:
    import contextvars

    var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=-1)
    seen: list[int] = []

    async def set_and_read(n: int) -> None:
        assert var.get() == -1
        var.set(n)
        await asyncio.sleep(0)
        seen.append(var.get())

    async with state.parallel(max_workers=3) as p:
        for n in range(6):
            p.add(set_and_read(n))
    assert sorted(seen) == list(range(6))
    assert all(r.ok for r in p.results if r)
    assert var.get() == -1


def test_group_model_progress() -> None:
    group = ParallelEventGroup(group_id="g", total=4, completed=1, failed=1)
    assert group.finished == 2 and group.progress == 0.5


async def test_result_fields(state: ExecutionState) -> None:
    async with state.parallel(max_workers=1) as p:
        p.add(value(1, 0.01))
        p.add(value(2, 0.01))
    first, second = await p.gather()
    assert first.execution_time > 0 and first.attempts == 1
    assert second.queue_time >= first.execution_time * 0.5
    assert first.status is ResultStatus.COMPLETED


async def test_records_keep_nothing_per_item_name(state: ExecutionState) -> None:
    capture = RecordCapture(state.event_bus)
    for batch in range(4):
        async with state.parallel(max_workers=50) as p:
            for n in range(500):
                p.add(f"item-{batch}-{n}", value, n)  # 2,000 distinct names
    await capture.flush()
    assert len(capture.items(status=ExecutionStatus.COMPLETED)) == 2_000
    assert len(state.publisher._stand_ins) <= 256  # stand-in actors are reused, not hoarded


async def test_current_address_names_the_running_item_the_same_on_every_attempt(
    state: ExecutionState,
) -> None:
    """The address an idempotency key derives from: the running item's, nested groups
    included, equal across attempts; None outside any item."""
    seen: list[str | None] = []

    async def page(n: int) -> int:
        seen.append(state.current_address())
        if len(seen) == 2:  # the document's own entry, then the page's first attempt
            raise ConnectionError("first attempt fails")
        return n

    async def document() -> None:
        seen.append(state.current_address())
        async with state.parallel(name="pages", retry=RetryPolicy(initial_delay=0)) as q:
            q.add("page-1", page, 1)

    assert state.current_address() is None
    async with state.parallel(name="docs") as p:
        p.add("doc-3", document)
        p.add(asyncio.sleep, 0)
    assert (await p.gather())[0].ok
    assert seen == ["docs/doc-3", "docs/doc-3/pages/page-1", "docs/doc-3/pages/page-1"]
    assert state.current_address() is None
