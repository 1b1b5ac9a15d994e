"""Property-based tests of the group invariants under random work, limits and policies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rh_parallel import (
    ErrorStrategy,
    ExecutionState,
    FailureThresholdExceeded,
    GroupStatus,
    GroupTimeoutError,
    ResultStatus,
    RetryPolicy,
)
from rh_parallel.testing import ConcurrencyProbe


@dataclass
class Plan:
    yields: int  # how many times the item yields to the loop (its "delay")
    fails: bool
    deps: list[int]


plans = st.lists(
    st.tuples(st.integers(0, 5), st.booleans(), st.lists(st.integers(0, 30), max_size=3)),
    min_size=0,
    max_size=30,
).map(
    lambda raw: [
        # only depend on earlier items, so the graph is acyclic
        Plan(y, f, sorted({d for d in deps if d < i}))
        for i, (y, f, deps) in enumerate(raw)
    ]
)

TERMINAL = {
    ResultStatus.COMPLETED,
    ResultStatus.FAILED,
    ResultStatus.CANCELLED,
    ResultStatus.TIMED_OUT,
    ResultStatus.SKIPPED,
    ResultStatus.REJECTED,
}


async def run_plan(
    items: list[Plan],
    max_workers: int,
    global_limit: int | None,
    strategy: ErrorStrategy,
    use_deps: bool,
    retry: bool,
    group_timeout: float | None,
) -> None:
    state = ExecutionState(global_max_workers=global_limit, observers=[])
    probe = ConcurrencyProbe()
    finished_ok: set[int] = set()
    started_before_deps: list[int] = []

    def make(index: int, plan: Plan):  # type: ignore[no-untyped-def]
        async def work() -> int:
            async with probe:
                if use_deps and any(d not in finished_ok for d in plan.deps):
                    started_before_deps.append(index)
                for _ in range(plan.yields):
                    await asyncio.sleep(0)
                if plan.fails:
                    raise ValueError(f"item {index}")
            finished_ok.add(index)
            return index

        return work

    options: dict[str, object] = {"error_strategy": strategy}
    if strategy is ErrorStrategy.FAIL_THRESHOLD:
        options["failure_threshold"] = 2
    if retry:
        options["retry"] = RetryPolicy(max_attempts=2, initial_delay=0, jitter=0)
    if group_timeout is not None:
        options["timeout"] = group_timeout
    p = state.parallel(max_workers, **options)  # type: ignore[arg-type]
    for index, plan in enumerate(items):
        p.add(make(index, plan), name=f"i{index}", depends_on=plan.deps if use_deps else None)
    try:
        results = await p.gather()
    except (ValueError, FailureThresholdExceeded, GroupTimeoutError):
        assert strategy is not ErrorStrategy.FAIL_SLOW or group_timeout is not None
        results = [r for r in p.results if r is not None]

    assert len(results) == len(items)
    assert [r.index for r in results] == list(range(len(items)))
    assert all(r.status in TERMINAL for r in results)
    group = p.group
    assert group.completed + group.failed + group.cancelled == group.total == len(items)
    assert group.completed == sum(r.ok for r in results)
    assert group.status in (GroupStatus.COMPLETED, GroupStatus.FAILED)
    assert (group.status is GroupStatus.COMPLETED) == all(r.ok for r in results)
    assert probe.peak <= max_workers
    if global_limit is not None:
        assert probe.peak <= global_limit
    assert probe.current == 0
    assert started_before_deps == []
    if strategy is ErrorStrategy.FAIL_SLOW and group_timeout is None:
        for index, plan in enumerate(items):
            upstream_ok = not use_deps or all(results[d].ok for d in plan.deps)
            expected = (
                ResultStatus.SKIPPED
                if not upstream_ok
                else (ResultStatus.FAILED if plan.fails else ResultStatus.COMPLETED)
            )
            assert results[index].status is expected
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=plans,
    max_workers=st.integers(1, 6),
    global_limit=st.one_of(st.none(), st.integers(1, 4)),
    strategy=st.sampled_from(list(ErrorStrategy)),
    use_deps=st.booleans(),
    retry=st.booleans(),
    timeout=st.one_of(st.none(), st.sampled_from([0.001, 5.0])),
)
def test_group_invariants(
    items: list[Plan],
    max_workers: int,
    global_limit: int | None,
    strategy: ErrorStrategy,
    use_deps: bool,
    retry: bool,
    timeout: float | None,
) -> None:
    asyncio.run(run_plan(items, max_workers, global_limit, strategy, use_deps, retry, timeout))


@settings(max_examples=40, deadline=None)
@given(
    widths=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    global_limit=st.integers(1, 3),
)
def test_nested_groups_never_deadlock(widths: list[int], global_limit: int) -> None:
    async def main() -> None:
        state = ExecutionState(global_max_workers=global_limit, observers=[])
        probe = ConcurrencyProbe()

        async def leaf() -> int:
            async with probe:
                await asyncio.sleep(0)
            return 1

        async def node(level: int) -> int:
            if level == len(widths):
                return await leaf()
            async with state.parallel(max_workers=widths[level], name=f"l{level}") as p:
                for _ in range(2):
                    p.add(lambda: node(level + 1))
            return sum(r.result for r in await p.gather())

        total = await asyncio.wait_for(node(0), timeout=20)
        assert total == 2 ** len(widths)
        assert probe.peak <= global_limit

    asyncio.run(main())
