"""Bad arguments fail at once, naming the argument and the fix."""

from __future__ import annotations

import asyncio

import pytest

from rh_parallel import ErrorStrategy, ExecutionState, RetryPolicy


def work() -> int:
    return 1


async def needs_arg(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_workers": 0}, ValueError, "max_workers=0 must be >= 1"),
        ({"max_workers": 2.5}, TypeError, "max_workers takes an int"),
        ({"timeout": 0}, ValueError, "timeout=0 must be a finite number of seconds > 0"),
        ({"event_timeout": -1}, ValueError, "event_timeout=-1 must be a finite number"),
        ({"timeout": float("nan")}, ValueError, "timeout=nan must be a finite number"),
        ({"event_timeout": float("nan")}, ValueError, "event_timeout=nan must be a finite"),
        ({"timeout": float("inf")}, ValueError, "timeout=inf must be a finite number"),
        ({"timeout": 10**400}, ValueError, "must be a finite number of seconds"),
        ({"timeout": "5"}, TypeError, "timeout takes seconds as a number"),
        (
            {"error_strategy": ErrorStrategy.FAIL_FAST, "failure_threshold": 2},
            ValueError,
            "FAIL_FAST stops at the first failure, so failure_threshold=2 would never apply",
        ),
        ({"failure_threshold": 0}, ValueError, "failure_threshold=0 must be >= 1"),
        ({"failure_threshold": 1.5}, ValueError, r"share of the group, in \(0, 1\]"),
        ({"error_strategy": ErrorStrategy.FAIL_THRESHOLD}, ValueError, "needs failure_threshold"),
        ({"error_strategy": "sometimes"}, ValueError, "use one of ErrorStrategy.FAIL_SLOW"),
        ({"retry": 3}, TypeError, r"retry takes a RetryPolicy"),
    ],
)
def test_bad_group_options(state: ExecutionState, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        state.parallel(**kwargs)


def test_bad_global_limit() -> None:
    with pytest.raises(ValueError, match="global_max_workers=0 must be an int >= 1"):
        ExecutionState(global_max_workers=0, observers=[])


async def test_duplicate_names(state: ExecutionState) -> None:
    p = state.parallel(name="g")
    p.add("a", asyncio.sleep(0))
    with pytest.raises(ValueError, match="duplicate item name 'a' in group 'g'"):
        p.add("a", asyncio.sleep(0))
    await p.gather()


async def test_add_after_the_group_ran(state: ExecutionState) -> None:
    p = state.parallel()
    await p.gather()
    with pytest.raises(RuntimeError, match="add\\(\\) after group 'parallel' ran"):
        p.add(asyncio.sleep(0))


async def test_non_awaitable_work_shows_the_fix(state: ExecutionState) -> None:
    p = state.parallel()
    with pytest.raises(TypeError, match=r"pass it uncalled with its arguments: p.add\(fn, x\)"):
        p.add(work())
    with pytest.raises(TypeError, match="with 0 argument\\(s\\), but it takes 1"):
        p.add(needs_arg)
    with pytest.raises(TypeError, match="with 2 argument\\(s\\), but it takes 1"):
        p.add(needs_arg, 1, 2)
    with pytest.raises(TypeError, match="got str 'b'"):
        p.add("a", "b", "c")
    with pytest.raises(TypeError, match="add\\(\\) needs work"):
        p.add("only-a-name")
    with pytest.raises(TypeError, match="got arguments for coroutine"):
        p.add(asyncio.sleep(0), asyncio.sleep(0))  # both closed: no "never awaited" warning
    assert p.group.total == 0 and await p.gather() == []


async def test_lambda_returning_a_non_awaitable_fails_the_item(state: ExecutionState) -> None:
    async with state.parallel() as p:
        p.add(lambda: 1)
    (result,) = await p.gather()
    assert not result.ok and result.error_type == "TypeError"
    assert "not an awaitable" in (result.error_message or "")


async def test_bare_coroutine_with_retries_is_refused(state: ExecutionState) -> None:
    p = state.parallel(retry=RetryPolicy(max_attempts=3))
    with pytest.raises(TypeError, match=r"p.add\(fetch, url\) rather than p.add\(fetch\(url\)\)"):
        p.add(asyncio.sleep(0))
    p.add(asyncio.sleep, 0)
    await p.gather()


async def test_unknown_and_cyclic_dependencies(state: ExecutionState) -> None:
    ran: list[str] = []

    async def mark(tag: str) -> None:
        ran.append(tag)

    p = state.parallel(name="deps")
    p.add("a", mark("a"), depends_on=["missing"])
    with pytest.raises(ValueError, match="item 'a' depends on 'missing', which is not in"):
        await p.gather()

    q = state.parallel(name="cycle")
    q.add("a", mark("a"), depends_on=["c"])
    q.add("b", mark("b"), depends_on=["a"])
    q.add("c", mark("c"), depends_on=["b"])
    q.add("free", mark("free"))
    with pytest.raises(ValueError, match="dependency cycle in group 'cycle': 'a' -> "):
        await q.gather()
    assert ran == []  # raised before anything ran
