from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, ValidationError

from rh_parallel import (
    LLM,
    Agent,
    EventType,
    ExecutionEvent,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    ResultStatus,
    Tool,
)
from rh_parallel.testing import RecordCapture
from tests.helpers import Numbers


async def test_sequential_event_returns_a_result(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    result = await double_event({"x": 21}, None, state)
    assert isinstance(result, ExecutionResult)
    assert result.ok and result.result == 42 and result.status is ResultStatus.COMPLETED


async def test_handler_exception_becomes_a_failed_result(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    result = await double_event({"x": -1}, None, state)
    assert not result.ok
    assert result.status is ResultStatus.FAILED
    assert isinstance(result.error, ValueError)
    assert result.error_type == "ValueError" and result.error_message == "negative: -1"


async def test_invalid_input_is_a_failed_result_not_a_raise(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    result = await double_event({"x": "not a number"}, None, state)
    assert not result.ok and result.error_type == "ValidationError"


async def test_an_invocation_awaits_once_and_recreates(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    invocation = double_event({"x": 2}, None, state)
    assert (await invocation).result == 4
    with pytest.raises(RuntimeError, match="already awaited"):
        await invocation
    assert (await invocation.recreate()).result == 4


async def test_calling_without_state_names_the_fix(double_event: ExecutionEvent) -> None:
    with pytest.raises(TypeError, match="needs the ExecutionState"):
        double_event({"x": 1})


async def test_one_event_runs_many_times_at_once(
    state: ExecutionState, double_event: ExecutionEvent
) -> None:
    results = await asyncio.gather(*(double_event({"x": i}, None, state) for i in range(10)))
    assert [r.result for r in results] == [i * 2 for i in range(10)]
    assert double_event.execution_status is None  # the description itself never changes


def test_actor_types_set_event_type() -> None:
    async def handler(i: object, c: object, s: object) -> None:
        return None

    assert Tool(name="t", input_model=Numbers, handler=handler).event_type is EventType.TOOL_CALL
    assert LLM(name="m", input_model=Numbers, handler=handler).event_type is EventType.LLM_CALL
    assert Agent(name="a", input_model=Numbers, handler=handler).event_type is EventType.AGENT_CALL
    assert EventType.LLM_CALL.kind == "llm" and EventType.TASK.kind == "task"


def test_llm_and_agent_name_their_model_and_provider() -> None:
    async def handler(i: object, c: object, s: object) -> None:
        return None

    llm = LLM(name="summarizer", input_model=Numbers, handler=handler)
    assert (llm.model, llm.provider) == ("summarizer", None)  # the model defaults to the name
    named = LLM(
        name="summarizer",
        model="gpt-4o-mini",
        provider="openai",
        input_model=Numbers,
        handler=handler,
    )
    assert (named.name, named.model, named.provider) == ("summarizer", "gpt-4o-mini", "openai")
    assert LLM(name="m", model=None, input_model=Numbers, handler=handler).model == "m"
    with pytest.raises(ValidationError):
        named.model = "gpt-4o"  # type: ignore[misc]  # actors stay frozen
    for empty in ({"model": ""}, {"provider": ""}):
        with pytest.raises(ValidationError):
            LLM(name="m", input_model=Numbers, handler=handler, **empty)  # type: ignore[arg-type]
    agent = Agent(name="planner", provider="anthropic", input_model=Numbers, handler=handler)
    assert (agent.model, agent.provider) == (None, "anthropic")  # no model unless given


async def test_output_model_is_validated(state: ExecutionState) -> None:
    class Out(BaseModel):
        y: int

    async def handler(i: Numbers, c: object, s: object) -> dict[str, int]:
        return {"y": i.x}

    tool = Tool(name="typed", input_model=Numbers, output_model=Out, handler=handler)
    result = await ExecutionEvent(actor=tool)({"x": 3}, None, state)
    assert result.result == Out(y=3)


async def test_sequential_records_and_deterministic_unique_addresses(
    bus: object, double_event: ExecutionEvent
) -> None:
    async def run_once() -> list[str]:
        from rh_parallel import EventBus

        local_bus = EventBus()
        capture = RecordCapture(local_bus)
        state = ExecutionState(event_bus=local_bus, observers=[])
        await double_event({"x": 1}, None, state)
        await double_event({"x": 2}, None, state)
        await capture.flush()
        await local_bus.aclose()
        statuses = [r.execution_status for r in capture.items()]
        assert statuses == [ExecutionStatus.STARTED, ExecutionStatus.COMPLETED] * 2
        return [r.address for r in capture.items(status=ExecutionStatus.COMPLETED)]

    first, second = await run_once(), await run_once()
    assert first == second == ["double", "double#1"]


async def test_nested_events_address_under_their_parent(state: ExecutionState) -> None:
    capture = RecordCapture(state.event_bus)
    inner = ExecutionEvent(actor=Tool(name="inner", input_model=Numbers, handler=_inner))

    async def outer_handler(i: Numbers, c: object, s: ExecutionState) -> int:
        result = await inner(i, None, s)
        return int(result.result)

    outer = ExecutionEvent(actor=Agent(name="outer", input_model=Numbers, handler=outer_handler))
    assert (await outer({"x": 5}, None, state)).result == 5
    await capture.flush()
    assert {r.address for r in capture.items()} == {"outer", "outer/inner"}


async def _inner(i: Numbers, c: object, s: object) -> int:
    return i.x


def test_result_unwrap() -> None:
    assert ExecutionResult(ok=True, result=3).unwrap() == 3
    with pytest.raises(KeyError):
        ExecutionResult.failure(KeyError("k")).unwrap()
