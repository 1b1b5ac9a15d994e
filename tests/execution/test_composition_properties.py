"""Stateful property test of composition: generated programs of nested groups on one state.

Each step runs a generated program in a fresh ``asyncio.run()`` on the same ExecutionState:
groups whose items do leaf work, fail, raise a BaseException, or open nested groups one after
another, at once, or stream one and leave early; under a global limit of 1-3, with timeouts,
FAIL_FAST, thresholds and retries, and the whole run cancelled at a random moment.
After every step: never above the limit, no deadlock, every item of every group accounted for
exactly once, counters that add up, no task left, every slot back, the state still usable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rh_parallel import ErrorStrategy, ExecutionState, GroupStatus, RetryPolicy
from rh_parallel.execution.manager import ParallelExecutionManager
from rh_parallel.testing import ConcurrencyProbe
from tests.helpers import Boom


@dataclass
class Leaf:
    yields: int
    outcome: str  # "ok", "fail", "boom"


@dataclass
class Nest:
    how: str  # "one_by_one", "at_once", "stream_and_leave"
    groups: list[Group]


@dataclass
class Group:
    max_workers: int
    options: str  # "fail_slow", "fail_fast", "threshold", "timeout", "retry", "event_timeout"
    items: list[Leaf | Nest] = field(default_factory=list)


leaves = st.builds(
    Leaf,
    st.integers(0, 4),
    st.sampled_from(["ok"] * 6 + ["fail"] * 2 + ["boom"]),
)
OPTIONS = ["fail_slow", "fail_slow", "fail_fast", "threshold", "timeout", "retry", "event_timeout"]


def groups_of(items: st.SearchStrategy[Any]) -> st.SearchStrategy[Group]:
    return st.builds(
        Group, st.integers(1, 3), st.sampled_from(OPTIONS), st.lists(items, max_size=4)
    )


programs = st.recursive(
    groups_of(leaves),
    lambda inner: groups_of(
        st.one_of(
            leaves,
            st.builds(
                Nest,
                st.sampled_from(["one_by_one", "at_once", "stream_and_leave"]),
                st.lists(inner, min_size=1, max_size=2),
            ),
        )
    ),
    max_leaves=12,
)


def group_options(group: Group) -> dict[str, Any]:
    match group.options:
        case "fail_fast":
            return {"error_strategy": ErrorStrategy.FAIL_FAST}
        case "threshold":
            return {"failure_threshold": 2}
        case "timeout":
            return {"timeout": 0.003}
        case "retry":
            return {"retry": RetryPolicy(max_attempts=2, initial_delay=0.0, jitter=0.0)}
        case "event_timeout":
            return {"event_timeout": 0.002}
    return {}


class Program:
    """Runs one generated program, recording every group it opens."""

    def __init__(self, state: ExecutionState, probe: ConcurrencyProbe) -> None:
        self.state = state
        self.probe = probe
        self.managers: list[ParallelExecutionManager] = []

    async def leaf(self, leaf: Leaf) -> str:
        async with self.probe:
            for _ in range(leaf.yields):
                await asyncio.sleep(0)
        if leaf.outcome == "fail":
            raise ValueError("planned failure")
        if leaf.outcome == "boom":
            raise Boom("planned BaseException")
        return "ok"

    async def nest(self, nest: Nest) -> str:
        async with self.probe:  # the item's own work before it opens groups
            await asyncio.sleep(0)
        managers = [self.open(group) for group in nest.groups]
        if nest.how == "one_by_one":
            for manager in managers:
                await _quietly(manager.gather)
        elif nest.how == "at_once":
            await asyncio.gather(*(_quietly(m.gather) for m in managers))
        else:
            for manager in managers:
                stream = manager.stream()
                try:
                    async for _ in stream:
                        break
                except Exception:
                    pass
        async with self.probe:  # and after: it waits for a global slot like any other
            await asyncio.sleep(0)
        return "nested"

    def open(self, group: Group) -> ParallelExecutionManager:
        manager = self.state.parallel(group.max_workers, **group_options(group))
        self.managers.append(manager)
        for item in group.items:
            if isinstance(item, Leaf):
                manager.add(self.leaf, item)
            else:
                manager.add(self.nest, item)
        return manager


async def _quietly(start: Callable[[], Awaitable[Any]]) -> None:
    """Await what ``start()`` makes (made only once this task runs), ignoring failures."""
    with contextlib.suppress(Exception):
        await start()


class Composition(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.limit = 1
        self.state: ExecutionState | None = None
        self.probe = ConcurrencyProbe()

    @rule(limit=st.integers(1, 3))
    def new_state(self, limit: int) -> None:
        self.limit = limit
        self.state = ExecutionState(global_max_workers=limit, observers=[])
        self.probe = ConcurrencyProbe()

    @rule(program=programs, cancel_after=st.one_of(st.none(), st.integers(0, 30)))
    def run_program(self, program: Group, cancel_after: int | None) -> None:
        if self.state is None:
            self.new_state(self.limit)
        assert self.state is not None
        run = Program(self.state, self.probe)
        asyncio.run(self._run(run, program, cancel_after))
        for manager in run.managers:
            group = manager.group
            if group.status is GroupStatus.PENDING:
                continue  # never started: its parent stopped before it ran
            assert group.status in (
                GroupStatus.COMPLETED,
                GroupStatus.FAILED,
                GroupStatus.CANCELLED,
            )
            results = manager.results
            assert all(r is not None for r in results), "an item was never accounted for"
            assert [r.index for r in results if r is not None] == list(range(group.total))
            assert group.completed + group.failed + group.cancelled == group.total
            assert group.completed == sum(r.ok for r in results if r is not None)

    async def _run(self, run: Program, program: Group, cancel_after: int | None) -> None:
        top = asyncio.ensure_future(_quietly(run.open(program).gather))
        if cancel_after is not None:
            for _ in range(cancel_after):
                await asyncio.sleep(0)
            top.cancel()
        async with asyncio.timeout(10) as bound:
            with contextlib.suppress(asyncio.CancelledError, Boom):
                await top
        assert not bound.expired(), "deadlock: the program did not finish"
        for _ in range(3):  # abandoned streams are closed by asyncio's async-generator hook
            await asyncio.sleep(0)
        left = asyncio.all_tasks() - {asyncio.current_task()}
        assert not left, f"tasks left running: {left}"

    @invariant()
    def never_above_the_limit(self) -> None:
        assert self.probe.peak <= self.limit
        assert self.probe.current == 0

    @invariant()
    def every_slot_is_back_and_the_state_is_usable(self) -> None:
        state = self.state
        if state is None:
            return
        assert state.global_limiter is not None and state.global_limiter.free == self.limit

        async def check() -> None:
            results = await state.parallel_execute([asyncio.sleep(0, 1) for _ in range(3)])
            assert [r.result for r in results] == [1, 1, 1]

        asyncio.run(check())


Composition.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_composition = Composition.TestCase
