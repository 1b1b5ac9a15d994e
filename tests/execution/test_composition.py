"""Composition: what broke when groups were nested, stopped and abandoned (issue 9's list).

Each test is named for the behaviour a user relies on; concurrency is counted, not timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap

import pytest

from rh_parallel import (
    ErrorStrategy,
    ExecutionState,
    GroupStatus,
    ResultStatus,
)
from rh_parallel.testing import ConcurrencyProbe
from tests.helpers import Boom, no_tasks_left


async def hold(probe: ConcurrencyProbe, seconds: float = 0.005) -> str:
    async with probe:
        await asyncio.sleep(seconds)
    return "held"


async def raise_it(exc: BaseException) -> None:
    await asyncio.sleep(0.001)
    raise exc


# -- 1. a BaseException from an item ---------------------------------------------------------


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt(), SystemExit(3), GeneratorExit(), Boom("custom")], ids=repr
)
async def test_base_exception_from_an_item_stops_the_group_and_propagates(
    state: ExecutionState, exc: BaseException
) -> None:
    probe = ConcurrencyProbe()
    p = state.parallel(max_workers=2, name="g")
    p.add(raise_it, exc)
    p.add(hold, probe, 10.0)  # would run for 10 s: cancelled instead
    p.add(hold, probe)  # never started
    async with asyncio.timeout(5):
        with pytest.raises(type(exc)) as raised:
            await p.gather()
    assert raised.value is exc
    assert p.group.status is GroupStatus.CANCELLED
    statuses = [r.status for r in p.results if r is not None]
    assert statuses == [ResultStatus.FAILED, ResultStatus.CANCELLED, ResultStatus.CANCELLED]
    assert p.group.completed + p.group.failed + p.group.cancelled == 3
    assert probe.current == 0 and no_tasks_left()
    with pytest.raises(type(exc)):  # stored, raised again
        await p.gather()


async def test_base_exception_propagates_from_a_stream(state: ExecutionState) -> None:
    p = state.parallel(max_workers=2)
    p.add(asyncio.sleep, 0, "first")
    p.add(raise_it, Boom())
    seen: list[object] = []
    async with asyncio.timeout(5):
        with pytest.raises(Boom):
            async for result in p.stream():
                seen.append(result.result)
    assert seen == ["first", None]  # the failing result, then what gather() raises
    assert no_tasks_left()


def test_sys_exit_in_an_item_ends_the_process() -> None:
    program = textwrap.dedent(
        """
        import asyncio, sys
        from rh_parallel import ExecutionState

        async def main():
            state = ExecutionState(observers=[])
            async with state.parallel(max_workers=2) as p:
                p.add(asyncio.sleep, 30)
                p.add(sys.exit, 7)          # a plain function: it runs in a worker thread
            async with state.parallel(max_workers=2) as q:
                async def leave():
                    sys.exit(3)
                q.add(asyncio.sleep, 30)
                q.add(leave)

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=30)
    assert done.returncode == 7, done.stderr.decode()


# -- 2. nested groups awaited at once under a global limit -----------------------------------


@pytest.mark.parametrize("limit", [1, 2])
async def test_nested_groups_awaited_at_once_do_not_deadlock(limit: int) -> None:
    state = ExecutionState(global_max_workers=limit, observers=[])
    probe = ConcurrencyProbe()

    async def item(n: int) -> int:
        g1 = state.parallel(2, name="left")
        g2 = state.parallel(2, name="right")
        for _ in range(3):
            g1.add(hold, probe)
            g2.add(hold, probe)
        left, right = await asyncio.gather(g1.gather(), g2.gather())
        async with probe:  # the item's own work after the nested groups: holds a slot again
            await asyncio.sleep(0)
        return len(left) + len(right)

    async with asyncio.timeout(10):
        results = await state.parallel_execute([item(n) for n in range(3)], max_workers=3)
    assert [r.result for r in results] == [6, 6, 6]
    assert probe.peak <= limit
    assert state.global_limiter is not None and state.global_limiter.free == limit


# -- 8. a stream left early inside an item ---------------------------------------------------


async def test_a_stream_left_early_keeps_the_global_limit_and_ends_with_its_item() -> None:
    state = ExecutionState(global_max_workers=2, observers=[])
    probe = ConcurrencyProbe()
    inner_groups = []

    async def item() -> str:
        inner = state.parallel(4, name="inner")
        inner_groups.append(inner)
        for _ in range(6):
            inner.add(hold, probe, 0.05)
        async for _ in inner.stream():
            break  # left early; the rest of the group is still running
        async with probe:  # the item's own work: counted against the same limit
            await asyncio.sleep(0.02)
        return "done"

    async with asyncio.timeout(10):
        results = await state.parallel_execute([item(), item(), item()], max_workers=3)
    assert all(r.ok for r in results)
    assert probe.peak <= 2
    for inner in inner_groups:  # nothing of an inner group outlived its item
        assert inner.group.status in (GroupStatus.COMPLETED, GroupStatus.CANCELLED)
        group = inner.group
        assert group.completed + group.failed + group.cancelled == group.total == 6
    assert no_tasks_left()
    assert state.global_limiter is not None and state.global_limiter.free == 2


async def test_a_nested_group_never_outlives_its_item(state: ExecutionState) -> None:
    started = asyncio.Event()
    inner_refs = []

    async def item() -> str:
        inner = state.parallel(2, name="inner")
        inner_refs.append(inner)
        inner.add(hold, ConcurrencyProbe(), 30.0)
        background = asyncio.ensure_future(inner.gather())
        await asyncio.sleep(0.01)
        started.set()
        background.cancel()  # the item's own bookkeeping: it leaves the group behind
        return "returned"

    async with asyncio.timeout(5):
        (result,) = await state.parallel_execute([item()])
    assert result.ok
    (inner,) = inner_refs
    assert inner.group.status is GroupStatus.CANCELLED
    assert no_tasks_left()


# -- 12. items stopped while running report the time they ran --------------------------------


@pytest.mark.parametrize("how", ["timeout", "fail_fast", "cancel"])
async def test_items_stopped_while_running_report_their_running_time(
    state: ExecutionState, how: str
) -> None:
    options: dict[str, object] = {"max_workers": 2}
    if how == "timeout":
        options["timeout"] = 0.05
    if how == "fail_fast":
        options["error_strategy"] = ErrorStrategy.FAIL_FAST
    p = state.parallel(**options)  # type: ignore[arg-type]
    p.add(asyncio.sleep, 30)
    if how == "fail_fast":
        p.add(raise_it, ValueError("x"))
    runner = asyncio.ensure_future(p.gather())
    if how == "cancel":
        await asyncio.sleep(0.05)
        p.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(BaseException):  # noqa: B017 - each way raises its own error
            await runner
    stopped = p.results[0]
    assert stopped is not None and stopped.status is not ResultStatus.COMPLETED
    assert stopped.execution_time > 0.0


# -- 13. stream() under FAIL_FAST yields the failing result ----------------------------------


async def test_stream_yields_the_failure_that_stopped_a_fail_fast_group(
    state: ExecutionState,
) -> None:
    p = state.parallel(max_workers=3, event_timeout=0.02, error_strategy=ErrorStrategy.FAIL_FAST)
    p.add("slow", asyncio.sleep, 10)
    p.add("other", asyncio.sleep, 10)
    seen = []
    async with asyncio.timeout(5):
        with pytest.raises(TimeoutError):
            async for result in p.stream():
                seen.append((result.name, result.status))
    assert seen[0][1] is ResultStatus.TIMED_OUT
    assert len(seen) == 1 or seen[1][1] is ResultStatus.TIMED_OUT  # both may time out at once


# -- 14. results are the caller's ------------------------------------------------------------


async def test_gather_returns_a_new_list_each_time(state: ExecutionState) -> None:
    async with state.parallel() as p:
        p.add(asyncio.sleep, 0, 1)
    first = await p.gather()
    first.clear()
    assert [r.result for r in await p.gather()] == [1]
    by_name = await p.gather_dict()
    by_name.clear()
    assert list(await p.gather_dict()) == ["0"]


# -- 15. a dependent of a failure is skipped under every strategy ----------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"error_strategy": ErrorStrategy.FAIL_FAST}, {"failure_threshold": 1}],
    ids=["fail_slow", "fail_fast", "threshold"],
)
async def test_a_dependent_of_a_failure_is_skipped_under_every_strategy(
    state: ExecutionState, options: dict[str, object]
) -> None:
    p = state.parallel(max_workers=2, **options)  # type: ignore[arg-type]
    p.add("bad", raise_it, ValueError("bad"))
    p.add("after-bad", asyncio.sleep, 0, depends_on=["bad"])
    p.add("after-after", asyncio.sleep, 0, depends_on=["after-bad"])
    with contextlib.suppress(Exception):
        await p.gather()
    statuses = {r.name: r.status for r in p.results if r is not None}
    assert statuses["after-bad"] is ResultStatus.SKIPPED
    assert statuses["after-after"] is ResultStatus.SKIPPED


# -- 17. one state, successive event loops ---------------------------------------------------


def test_a_state_with_a_global_limit_serves_successive_event_loops() -> None:
    state = ExecutionState(global_max_workers=2, observers=[])
    probe = ConcurrencyProbe()

    async def run() -> list[str]:
        results = await state.parallel_execute([hold(probe) for _ in range(5)], max_workers=5)
        return [r.result for r in results]

    for _ in range(3):
        assert asyncio.run(run()) == ["held"] * 5
    assert probe.peak == 2
    assert state.global_limiter is not None and state.global_limiter.free == 2


# -- sync functions run off the loop ---------------------------------------------------------


async def test_a_plain_function_runs_in_a_worker_thread(state: ExecutionState) -> None:
    import threading

    loop_thread = threading.get_ident()

    def where(tag: str) -> tuple[str, bool]:
        return tag, threading.get_ident() != loop_thread

    async with state.parallel(max_workers=2) as p:
        p.add(where, "a")
        p.add("named", where, "b")
    assert [r.result for r in await p.gather()] == [("a", True), ("b", True)]


# -- records never fail a run ----------------------------------------------------------------


async def test_a_record_that_cannot_be_published_costs_a_log_line_not_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rh_parallel import EventBus

    class BrokenBus(EventBus):
        def publish(self, record: object) -> None:
            raise RuntimeError("the bus is down")

    bus = BrokenBus()
    bus.subscribe(lambda record: None, name="listener")
    state = ExecutionState(event_bus=bus, observers=[], capture_io=True)

    class Unprintable:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    async def value() -> Unprintable:
        return Unprintable()

    async with asyncio.timeout(5):
        async with state.parallel(name="g") as p:
            p.add(value)
            p.add(asyncio.sleep, 0, "ok")
    assert [r.ok for r in await p.gather()] == [True, True]
    assert "could not publish" in caplog.text
    await bus.aclose()
