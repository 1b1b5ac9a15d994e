"""Bad arguments fail at once, naming the argument and the fix."""

from __future__ import annotations

import asyncio

import pytest

from rh_parallel import ErrorStrategy, ExecutionEvent, ExecutionState, RetryPolicy


def work() -> int:
    return 1


async def needs_arg(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_workers": 0}, ValueError, "max_workers=0 must be >= 1"),
        ({"max_workers": 2.5}, TypeError, "max_workers takes an int"),
        (
            {"timeout": 0},
            ValueError,
            r"parallel\(timeout=0\) must be a finite number of seconds > 0",
        ),
        ({"event_timeout": -1}, ValueError, r"event_timeout=-1\) must be a finite number"),
        ({"timeout": float("nan")}, ValueError, r"timeout=nan\) must be a finite number"),
        ({"event_timeout": float("nan")}, ValueError, r"event_timeout=nan\) must be a finite"),
        ({"timeout": float("inf")}, ValueError, r"timeout=inf\) must be a finite number"),
        ({"timeout": 10**400}, ValueError, "must be a finite number of seconds"),
        ({"timeout": "5"}, TypeError, r"timeout='5'\) is a number of seconds > 0"),
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


# -- refused add() calls close what they were given (issue 9: items 3, 5, 10, 19) -------------


@pytest.mark.parametrize("bad", [[True], [1.5], [None], 5.0, object()], ids=repr)
async def test_a_bad_depends_on_entry_is_refused_at_add_and_closes_the_work(
    state: ExecutionState, bad: object
) -> None:
    p = state.parallel(name="g")
    p.add("a", asyncio.sleep(0))
    coro = asyncio.sleep(0)
    with pytest.raises(TypeError, match="depends_on"):
        p.add(coro, depends_on=bad)
    assert coro.cr_frame is None  # closed, so no "never awaited" warning
    async with asyncio.timeout(5):  # the group is whole and still runs
        assert [r.ok for r in await p.gather()] == [True]


async def test_a_coroutine_is_added_once(state: ExecutionState) -> None:
    p = state.parallel(name="g")
    coro = asyncio.sleep(0, "once")
    p.add(coro)
    with pytest.raises(TypeError, match="already added to group 'g'"):
        p.add(coro)
    assert [r.result for r in await p.gather()] == ["once"]  # the first item still runs it
    with pytest.raises(TypeError, match="already awaited"):
        state.parallel().add(coro)


async def test_an_awaited_invocation_is_refused(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    invocation = double_event({"x": 1}, None, state)
    assert (await invocation).ok
    with pytest.raises(TypeError, match="already awaited; call the event again"):
        state.parallel().add(invocation)


async def test_a_numeric_name_cannot_take_another_items_key(state: ExecutionState) -> None:
    p = state.parallel()
    p.add(asyncio.sleep, 0, "unnamed")
    with pytest.raises(ValueError, match="item name '0' is the dict key of another item"):
        p.add("0", asyncio.sleep, 0)
    p.add("1", asyncio.sleep, 0, "its own index")  # a name equal to its own index is fine
    assert {k: r.result for k, r in (await p.gather_dict()).items()} == {
        "0": "unnamed",
        "1": "its own index",
    }


async def test_parallel_execute_keeps_the_callers_keys(state: ExecutionState) -> None:
    results = await state.parallel_execute({10: asyncio.sleep(0, "a"), "x": asyncio.sleep(0, "b")})
    assert {k: r.result for k, r in results.items()} == {10: "a", "x": "b"}
    numeric = await state.parallel_execute({"7": asyncio.sleep(0, "c"), "3": asyncio.sleep(0)})
    assert list(numeric) == ["7", "3"]


async def test_messages_never_recommend_a_late_binding_lambda(state: ExecutionState) -> None:
    p = state.parallel(retry=RetryPolicy(max_attempts=2))
    messages = []
    for bad in (asyncio.sleep(0), 42):
        try:
            p.add(bad)
        except TypeError as exc:
            messages.append(str(exc))
    assert len(messages) == 2
    assert all("lambda" not in m and "p.add(f" in m for m in messages)


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


async def test_an_exception_whose_str_raises_is_still_a_result(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    async def bad() -> None:
        raise UnprintableError

    async with state.parallel() as p:
        p.add(bad)
        p.add(asyncio.sleep, 0, "fine")
    first, second = await p.gather()
    assert not first.ok and first.error_type == "UnprintableError"
    assert "str() raised RuntimeError" in (first.error_message or "")
    assert second.ok


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"global_max_workers": "3"}, TypeError, "global_max_workers='3' takes an int"),
        ({"capture_io": "yes"}, TypeError, "capture_io takes True or False"),
        ({"max_io_chars": float("nan")}, TypeError, "max_io_chars takes an int"),
        ({"max_io_chars": 0}, ValueError, "max_io_chars=0 must be >= 2"),
        ({"observers": 5}, TypeError, "observers takes a list of ExecutionObserver"),
        ({"event_bus": object()}, TypeError, "event_bus takes an EventBus"),
    ],
)
def test_bad_state_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ExecutionState(**kwargs)


async def test_more_refusals_name_the_fix(state: ExecutionState) -> None:
    with pytest.raises(TypeError, match="a group's name is a non-empty string"):
        state.parallel(name=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="names KeyboardInterrupt, which is never retried"):
        RetryPolicy(retry_on=(KeyboardInterrupt,))

    async def numbers():  # type: ignore[no-untyped-def]
        yield 1

    p = state.parallel()
    with pytest.raises(TypeError, match="async generator function"):
        p.add(numbers)
    for bad in (b"x", {"a": 1}):
        with pytest.raises(TypeError, match="depends_on"):
            p.add(asyncio.sleep, 0, depends_on=bad)
    assert await p.gather() == []


async def test_a_refused_add_leaves_the_callers_tasks_alone(state: ExecutionState) -> None:
    mine = asyncio.ensure_future(asyncio.sleep(0, "mine"))
    p = state.parallel()
    p.add("a", asyncio.sleep, 0)
    with pytest.raises(ValueError, match="duplicate item name"):
        p.add("a", asyncio.wait_for, mine, 5)
    assert await mine == "mine"
    await p.gather()


async def test_an_item_waiting_for_its_own_group_is_refused(state: ExecutionState) -> None:
    p = state.parallel()

    async def waits_for_itself() -> None:
        await p.gather()

    p.add(waits_for_itself)
    async with asyncio.timeout(5):
        (result,) = await p.gather()
    assert result.error_type == "RuntimeError"
    assert "waits for that group, which would never end" in (result.error_message or "")


async def test_leaving_the_block_raises_what_the_group_decided_at_its_start(
    state: ExecutionState,
) -> None:
    from rh_parallel import CircuitBreaker, CircuitOpenError

    breaker = CircuitBreaker("down", failure_threshold=1, recovery_timeout=60)
    breaker.acquire().failure()  # type: ignore[union-attr]  # opened before the group
    with pytest.raises(CircuitOpenError):
        async with state.parallel(
            circuit_breaker=breaker, error_strategy=ErrorStrategy.FAIL_FAST
        ) as p:
            p.add(asyncio.sleep, 0)


def test_one_state_used_by_two_loops_at_once_says_so() -> None:
    import threading

    state = ExecutionState(global_max_workers=1, observers=[])
    inside = threading.Event()
    release = threading.Event()

    async def hold() -> None:
        inside.set()
        await asyncio.to_thread(release.wait, 10)

    async def first() -> None:
        await state.parallel_execute([hold()])

    thread = threading.Thread(target=asyncio.run, args=(first(),))
    thread.start()
    try:
        assert inside.wait(10)

        async def second() -> None:
            await state.parallel_execute([asyncio.sleep(0)])

        with pytest.raises(RuntimeError, match="serves one loop at a time"):
            asyncio.run(second())
    finally:
        release.set()
        thread.join(10)


async def test_an_event_whose_handler_raises_an_unprintable_error_returns_a_result(
    state: ExecutionState,
) -> None:
    from rh_parallel import Tool
    from tests.helpers import Numbers

    async def broken(data: Numbers, ctx: object, st: object) -> None:
        raise UnprintableError

    event = ExecutionEvent(actor=Tool(name="broken", input_model=Numbers, handler=broken))
    result = await event({"x": 1}, None, state)  # documented never to raise
    assert not result.ok and result.error_type == "UnprintableError"


@pytest.mark.parametrize("how", ["task", "gather", "nested"])
async def test_an_item_waiting_for_its_own_group_through_a_task_is_refused(
    state: ExecutionState, how: str
) -> None:
    p = state.parallel(name="outer")

    async def waits_for_its_group() -> None:
        if how == "task":
            await asyncio.create_task(p.gather())
        elif how == "gather":
            await asyncio.gather(p.gather())
        else:  # from an item of a nested group
            async with state.parallel(name="inner") as inner:
                inner.add(p.gather)
            (inner_result,) = await inner.gather()
            inner_result.unwrap()  # raises the RuntimeError the nested item got

    p.add(waits_for_its_group)
    async with asyncio.timeout(5):
        (result,) = await p.gather()
    assert not result.ok
