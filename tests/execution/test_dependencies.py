"""depends_on: ordering, skipping, reading dependencies' results."""

from __future__ import annotations

import asyncio

from rh_parallel import (
    DependencyFailedError,
    ExecutionState,
    GroupStatus,
    ParallelExecutionManager,
    ResultStatus,
)


async def test_dependents_run_after_their_dependencies_and_read_them(
    state: ExecutionState,
) -> None:
    order: list[str] = []

    async def fetch(doc: str) -> str:
        await asyncio.sleep(0.01 if doc == "a" else 0)
        order.append(doc)
        return doc.upper()

    async def summarize(p: ParallelExecutionManager) -> str:
        order.append("summary")
        return "+".join(p.result_of(name).result for name in ("a", "b"))

    async with state.parallel(max_workers=3) as p:
        p.add(lambda: summarize(p), name="summary", depends_on=["a", "b"])  # added first
        p.add("a", fetch("a"))
        p.add("b", fetch("b"))
    results = await p.gather_dict()
    assert results["summary"].result == "A+B"
    assert order.index("summary") > max(order.index("a"), order.index("b"))


async def test_failed_dependency_skips_dependents_transitively(state: ExecutionState) -> None:
    ran: list[str] = []

    async def step(tag: str, fail: bool = False) -> str:
        ran.append(tag)
        if fail:
            raise RuntimeError(tag)
        return tag

    async with state.parallel() as p:
        p.add("extract", step("extract", fail=True))
        p.add("transform", step("transform"), depends_on="extract")
        p.add("load", step("load"), depends_on=["transform"])
        p.add("independent", step("independent"))
    results = await p.gather_dict()
    assert ran == ["extract", "independent"]
    assert results["transform"].status is ResultStatus.SKIPPED
    assert results["load"].status is ResultStatus.SKIPPED
    error = results["load"].error
    assert isinstance(error, DependencyFailedError)
    assert error.dependency == "transform" and error.dependency_status == "skipped"
    assert "'transform' ended skipped" in str(error)
    group = p.group
    assert (group.completed, group.failed, group.cancelled) == (1, 3, 0)
    assert group.status is GroupStatus.FAILED


async def test_dependencies_by_index(state: ExecutionState) -> None:
    async with state.parallel(max_workers=2) as p:
        first = p.add(asyncio.sleep(0.01, result=1))
        p.add(lambda: asyncio.sleep(0, result=p.result_of(first).result + 1), depends_on=[first])
    assert [r.result for r in await p.gather()] == [1, 2]
