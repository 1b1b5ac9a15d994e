"""RayExecutor on a real local Ray instance (2 CPUs), started once per session."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rh_parallel import ExecutionState, ResultStatus, RetryPolicy
from rh_parallel.exceptions import WorkerLostError
from rh_parallel.ray import RayExecutor
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

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def executor(ray_cluster: Any) -> RayExecutor:
    return RayExecutor(num_cpus=1)


async def test_results_in_add_order_from_ray_workers(
    state: ExecutionState, executor: RayExecutor
) -> None:
    async with state.parallel(4, executor=executor) as p:
        for x in range(6):
            p.add(square, x)
        p.add(async_square, 7)
        p.add(lambda: "lambdas ship to Ray")  # cloudpickle: fine for Ray
    results = await p.gather()
    assert [r.result[1] for r in results[:6]] == [x * x for x in range(6)]
    assert results[6].result == 49 and results[7].result == "lambdas ship to Ray"
    assert os.getpid() not in {r.result[0] for r in results[:6]}


@pytest.fixture
def counter(tmp_path: Path) -> str:
    path = tmp_path / "counter"
    path.write_text("0 0")
    return str(path)


async def test_max_workers_bounds_what_runs_on_ray(
    state: ExecutionState, executor: RayExecutor, counter: str
) -> None:
    async with state.parallel(1, executor=executor) as p:
        for _ in range(3):
            p.add(counted, counter, 0.05)
    assert {r.result for r in await p.gather()} == {1}  # two CPUs, yet one at a time


async def test_a_retry_resubmits_and_exceptions_come_back_as_themselves(
    state: ExecutionState, executor: RayExecutor, tmp_path: Path
) -> None:
    retry = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0)
    async with state.parallel(2, executor=executor, retry=retry) as p:
        p.add(fails_until, str(tmp_path / "a"), 3)
    async with state.parallel(2, executor=executor) as q:
        q.add(fails_until, str(tmp_path / "b"), 9)
    (retried,) = await p.gather()
    (failed,) = await q.gather()
    assert retried.ok and retried.attempts == 3
    assert type(failed.error) is ConnectionError and failed.error_type == "ConnectionError"


def marks(path: str, seconds: float) -> str:
    """Write ``started``, work for ``seconds``, then write ``finished``."""
    Path(path).write_text("started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    Path(path).write_text("finished")
    return "finished"


async def test_a_timeout_cancels_the_ray_task(
    state: ExecutionState, executor: RayExecutor, tmp_path: Path
) -> None:
    mark = tmp_path / "mark"
    async with state.parallel(1, executor=executor, event_timeout=0.5) as p:
        p.add(marks, str(mark), 1.5)
    (result,) = await p.gather()
    assert result.status is ResultStatus.TIMED_OUT
    deadline = time.monotonic() + 30
    while not mark.exists() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.5)  # well past the task's own end, had it not been cancelled
    assert mark.read_text() == "started"


async def test_a_dying_ray_worker_fails_its_item_and_the_group_goes_on(
    state: ExecutionState, executor: RayExecutor
) -> None:
    async with state.parallel(1, executor=executor) as p:
        p.add(dies, 3)
        p.add(square, 4)
    crashed, after = await p.gather()
    assert isinstance(crashed.error, WorkerLostError) and "died" in str(crashed.error)
    assert after.ok and after.result[1] == 16


async def test_unshippable_work_is_refused_at_add(
    state: ExecutionState, executor: RayExecutor
) -> None:
    p = state.parallel(2, executor=executor)
    with pytest.raises(TypeError, match=r"item 'square': argument 0 \(lock\).*cannot be sent"):
        p.add(square, threading.Lock())
    with pytest.raises(TypeError, match="Ray refused these task options"):
        state.parallel(2, executor=RayExecutor(num_cpus="many")).add(square, 1)


async def test_trace_context_crosses_into_the_ray_worker(executor: RayExecutor) -> None:
    telemetry = InMemoryTelemetry()
    state = telemetry.state()
    async with state.parallel(1, executor=executor) as p:
        p.add("ids", trace_ids)
    (result,) = await p.gather()
    span = telemetry.span("execute_task ids")
    assert span.context is not None
    assert result.result == (
        format(span.context.trace_id, "032x"),
        format(span.context.span_id, "016x"),
    )


async def test_the_loop_stays_responsive_while_ray_runs_cpu_bound_items(
    state: ExecutionState, executor: RayExecutor
) -> None:
    p = state.parallel(2, executor=executor)
    for _ in range(4):
        p.add(spin, 0.1)
    ticks, elapsed = await ticks_during(p.gather())
    assert ticks >= 0.2 * elapsed / 0.005


TWO_NODES = """
import asyncio, json
import ray
from ray.cluster_utils import Cluster
from rh_parallel import ExecutionState
from rh_parallel.ray import RayExecutor
from tests.execution.helpers import node_and_square

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
cluster.add_node(num_cpus=1)
ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
cluster.wait_for_nodes()

async def main():
    state = ExecutionState(observers=[])
    async with state.parallel(2, executor=RayExecutor(num_cpus=1)) as p:
        for x in range(8):
            p.add(node_and_square, x, 0.2)
    return [r.result for r in await p.gather()]

results = asyncio.run(main())
print(json.dumps(results))
ray.shutdown()
cluster.shutdown()
"""


def test_a_two_node_cluster_runs_items_on_both_nodes() -> None:
    """``ray.cluster_utils.Cluster`` with two 1-CPU nodes, in its own process (one Ray per
    process): items land on both nodes, results come back in add order."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", TWO_NODES],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert [square for _, square in results] == [x * x for x in range(8)]
    assert len({node for node, _ in results}) == 2
