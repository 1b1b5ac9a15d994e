"""Executors: callable items run in a thread or process pool with the group's semantics.

Worker functions are module-level so a process pool can pickle them. Concurrency is counted
from inside the workers (a shared counter file for processes), never guessed from timings.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rh_parallel import ExecutionState, ResultStatus, RetryPolicy
from rh_parallel.exceptions import WorkerLostError
from rh_parallel.testing import InMemoryTelemetry
from tests.execution.helpers import (
    async_square,
    counted,
    dies,
    fails_until,
    spin,
    square,
    ticks_during,
    trace_ids,
)
from tests.helpers import no_tasks_left


@pytest.fixture(scope="module")
def processes() -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        yield pool


@pytest.fixture
def counter(tmp_path: Path) -> str:
    path = tmp_path / "counter"
    path.write_text("0 0")
    return str(path)


async def test_process_pool_results_in_add_order_from_other_processes(
    state: ExecutionState, processes: concurrent.futures.ProcessPoolExecutor
) -> None:
    async with state.parallel(4, executor=processes) as p:
        for x in range(8):
            p.add(square, x)
        p.add(async_square, 9)  # an async def runs on a loop of the worker's own
    results = await p.gather()
    assert [r.result[1] for r in results[:8]] == [x * x for x in range(8)]
    assert results[8].result == 81
    assert os.getpid() not in {r.result[0] for r in results[:8]}


async def test_max_workers_bounds_what_runs_remotely(
    state: ExecutionState, processes: concurrent.futures.ProcessPoolExecutor, counter: str
) -> None:
    async with state.parallel(1, executor=processes) as p:
        for _ in range(4):
            p.add(counted, counter, 0.05)
    assert {r.result for r in await p.gather()} == {1}  # never two at once, though 2 processes


async def test_the_global_limit_counts_remote_items(
    bus: Any, processes: concurrent.futures.ProcessPoolExecutor, counter: str
) -> None:
    state = ExecutionState(event_bus=bus, global_max_workers=1, observers=[])
    async with (
        state.parallel(2, executor=processes) as a,
        state.parallel(2, executor=processes) as b,
    ):
        for group in (a, b):
            for _ in range(2):
                group.add(counted, counter, 0.05)
    results = await a.gather() + await b.gather()
    assert max(r.result for r in results) == 1


async def test_a_retry_resubmits_after_a_remote_failure(
    state: ExecutionState, processes: concurrent.futures.ProcessPoolExecutor, tmp_path: Path
) -> None:
    retry = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0)
    async with state.parallel(2, executor=processes, retry=retry) as p:
        p.add(fails_until, str(tmp_path / "calls"), 3)
    (result,) = await p.gather()
    assert result.ok and result.result == 3 and result.attempts == 3


async def test_a_remote_exception_comes_back_as_itself(
    state: ExecutionState, processes: concurrent.futures.ProcessPoolExecutor, tmp_path: Path
) -> None:
    async with state.parallel(2, executor=processes) as p:
        p.add(fails_until, str(tmp_path / "calls"), 5)
    (result,) = await p.gather()
    assert isinstance(result.error, ConnectionError) and result.error_type == "ConnectionError"


async def test_a_timeout_marks_the_remote_item_timed_out_and_frees_its_slot(
    state: ExecutionState,
) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        async with state.parallel(1, executor=threads, event_timeout=0.05) as p:
            p.add(spin, 0.5)
            p.add(square, 3)
        slow, quick = await p.gather()
    assert slow.status is ResultStatus.TIMED_OUT
    assert quick.ok and quick.result[1] == 9


async def test_a_dying_worker_fails_its_item_and_the_group_goes_on(state: ExecutionState) -> None:
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        async with state.parallel(1, executor=pool) as p:
            p.add(dies, 3)
            for x in range(3):
                p.add(square, x)
        crashed, *rest = await p.gather()
    assert isinstance(crashed.error, WorkerLostError)
    assert "died" in (crashed.error_message or "") and "restarted" in (crashed.error_message or "")
    assert [r.result[1] for r in rest] == [0, 1, 4]  # on the replacement pool


async def test_unshippable_work_is_refused_at_add_naming_the_item_and_the_fix(
    state: ExecutionState, processes: concurrent.futures.ProcessPoolExecutor
) -> None:
    p = state.parallel(2, executor=processes)
    with pytest.raises(TypeError, match=r"item 'lambda'.*define it at module level"):
        p.add(lambda: 1)

    def local() -> int:
        return 1

    with pytest.raises(TypeError, match=r"item 'mine'.*cannot be sent to a process pool"):
        p.add("mine", local)
    with pytest.raises(TypeError, match=r"argument 0 \(generator\).*plain data"):
        p.add(square, (x for x in range(3)))
    with pytest.raises(TypeError, match=r"executor takes a concurrent\.futures\.Executor"):
        state.parallel(2, executor="processes")


async def test_event_invocations_and_coroutines_stay_on_the_loop(
    state: ExecutionState, processes: concurrent.futures.ProcessPoolExecutor, double_event: Any
) -> None:
    loop_thread = os.getpid()

    async def here() -> int:
        return os.getpid()

    async with state.parallel(2, executor=processes) as p:
        p.add(double_event({"x": 2}, None, state))
        p.add(here())
    invocation, coroutine = await p.gather()
    assert invocation.result == 4 and coroutine.result == loop_thread


async def test_trace_context_crosses_into_the_worker(
    processes: concurrent.futures.ProcessPoolExecutor,
) -> None:
    telemetry = InMemoryTelemetry()
    state = telemetry.state()
    async with state.parallel(2, name="remote", executor=processes) as p:
        p.add("ids", trace_ids)
    (result,) = await p.gather()
    item_span = telemetry.span("execute_task ids")
    assert item_span.context is not None
    assert result.result == (
        format(item_span.context.trace_id, "032x"),
        format(item_span.context.span_id, "016x"),
    )


@pytest.mark.parametrize("kind", ["thread", "process"])
async def test_the_loop_stays_responsive_while_cpu_bound_items_run(
    state: ExecutionState, kind: str
) -> None:
    """A ticker on the loop keeps ticking while CPU-bound items run in the executor (counted;
    the bound is generous, as machines are shared)."""
    pool_type = (
        concurrent.futures.ThreadPoolExecutor
        if kind == "thread"
        else concurrent.futures.ProcessPoolExecutor
    )
    with pool_type(2) as pool:
        p = state.parallel(2, executor=pool)
        for _ in range(4):
            p.add(spin, 0.25)
        ticks, elapsed = await ticks_during(p.gather())
    # blocking the loop instead would give ~1 tick; two pure-Python threads holding the GIL
    # in turns leave the loop 15-30% of its ticks on a shared 2-core machine
    assert ticks >= 0.1 * elapsed / 0.005
    assert no_tasks_left()
