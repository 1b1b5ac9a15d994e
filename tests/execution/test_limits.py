"""Concurrency limits, measured with counters: per group, global, nested, admission."""

from __future__ import annotations

import asyncio
import gc

from rh_parallel import ExecutionState
from rh_parallel.testing import ConcurrencyProbe


async def test_max_workers_bounds_a_group(state: ExecutionState) -> None:
    probe = ConcurrencyProbe()
    async with state.parallel(max_workers=3) as p:
        for _ in range(20):
            p.add(probe.run(asyncio.sleep(0.001)))
    assert probe.peak == 3 and probe.entered == 20 and probe.current == 0


async def test_global_limit_bounds_every_group_of_the_state() -> None:
    state = ExecutionState(global_max_workers=4, observers=[])
    probe = ConcurrencyProbe()

    async def group(tag: str) -> None:
        async with state.parallel(max_workers=3, name=tag) as p:
            for _ in range(10):
                p.add(probe.run(asyncio.sleep(0.001)))

    await asyncio.gather(group("a"), group("b"), group("c"))
    assert probe.peak == 4 and probe.entered == 30


async def test_nested_groups_do_not_deadlock_under_a_global_limit() -> None:
    state = ExecutionState(global_max_workers=2, observers=[])
    leaves = ConcurrencyProbe()

    async def parent(n: int) -> int:
        async with state.parallel(max_workers=2, name=f"child-{n}") as child:
            for _ in range(3):
                child.add(leaves.run(asyncio.sleep(0.001, result=1)))
        return sum(r.result for r in await child.gather())

    async with asyncio.timeout(10):  # a deadlock would hang at the block's end
        async with state.parallel(max_workers=4, name="parents") as p:
            for n in range(4):
                p.add(parent, n)
    results = await p.gather()
    assert [r.result for r in results] == [3, 3, 3, 3]
    assert leaves.peak <= 2


async def test_admission_keeps_tasks_bounded(state: ExecutionState) -> None:
    peak_tasks = 0

    async def item() -> None:
        nonlocal peak_tasks
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0)

    async with state.parallel(max_workers=8) as p:
        for _ in range(2_000):
            p.add(item)
    assert peak_tasks <= 8 + 1  # the items plus the test's own task


async def test_large_group_completes_with_bounded_tasks(state: ExecutionState) -> None:
    peak_tasks = 0

    async def trivial(n: int) -> int:
        nonlocal peak_tasks
        if n % 997 == 0:  # sampled: counting every task of every item would dominate the run
            peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        return 1

    async with state.parallel(max_workers=50) as p:
        for n in range(100_000):
            p.add(trivial, n)
    assert p.group.completed == 100_000
    assert 1 < peak_tasks <= 50 + 1  # the items running plus the test's own task
    assert len(asyncio.all_tasks()) == 1
    gc.collect()
