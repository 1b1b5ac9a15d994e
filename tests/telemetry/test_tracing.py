"""Spans: names, attributes, parent links, statuses, as DESIGN.md section 4 names them."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from rh_parallel import (
    LLM,
    Agent,
    CircuitBreaker,
    ExecutionEvent,
    ExecutionState,
    RetryPolicy,
    Tool,
)
from rh_parallel.testing import InMemoryTelemetry


class Text(BaseModel):
    text: str


async def echo(data: Text, ctx: object, state: object) -> str:
    return data.text


@pytest.fixture
def telemetry() -> InMemoryTelemetry:
    return InMemoryTelemetry()


async def test_group_and_item_spans(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    tool = ExecutionEvent(actor=Tool(name="search", input_model=Text, handler=echo))
    llm = ExecutionEvent(actor=LLM(name="gpt-small", input_model=Text, handler=echo))
    agent = ExecutionEvent(actor=Agent(name="planner", input_model=Text, handler=echo))

    async def plain() -> int:
        return 1

    async with state.parallel(max_workers=2, name="Document Processing") as p:
        p.add(tool({"text": "a"}, None, state))
        p.add(llm({"text": "b"}, None, state))
        p.add(agent({"text": "c"}, None, state))
        p.add("fetch", plain())
    group = telemetry.span("invoke_workflow Document Processing")
    assert group.kind is SpanKind.INTERNAL
    assert (
        dict(group.attributes or {}).items()
        >= {
            "gen_ai.operation.name": "invoke_workflow",
            "rh_parallel.group_id": p.group.group_id,
            "rh_parallel.group_name": "Document Processing",
            "rh_parallel.group_size": 4,
            "rh_parallel.max_workers": 2,
        }.items()
    )
    assert group.status.status_code is StatusCode.UNSET
    expected = {
        "execute_tool search": ("execute_tool", "gen_ai.tool.name", "search", 0),
        "chat gpt-small": ("chat", "gen_ai.request.model", "gpt-small", 1),
        "invoke_agent planner": ("invoke_agent", "gen_ai.agent.name", "planner", 2),
    }
    for name, (operation, key, value, index) in expected.items():
        span = telemetry.span(name)  # exactly one span per actor event run as an item
        attributes = span.attributes or {}
        assert attributes["gen_ai.operation.name"] == operation
        assert attributes[key] == value
        assert attributes["rh_parallel.parallel_index"] == index
        assert attributes["rh_parallel.group_id"] == p.group.group_id
        assert attributes["rh_parallel.attempts"] == 1
        assert str(attributes["rh_parallel.address"]).startswith(p.group.address + "/")
        assert span.parent is not None and span.parent.span_id == group.context.span_id
        assert span.status.status_code is StatusCode.UNSET
    task = telemetry.span("execute_task fetch")
    assert task.parent is not None and task.parent.span_id == group.context.span_id
    assert len(telemetry.spans()) == 5


async def test_user_spans_nest_under_the_item(telemetry: InMemoryTelemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("user-code")

    async def http_call() -> None:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("GET /search"):
            await asyncio.sleep(0)

    state = telemetry.state()
    async with state.parallel(name="g") as p:
        p.add("a", http_call())
        p.add("b", http_call())
    items = {s.context.span_id: s for s in telemetry.spans() if s.name.startswith("execute_task")}
    user_spans = [s for s in telemetry.spans() if s.name == "GET /search"]
    assert len(user_spans) == 2
    assert {s.parent.span_id for s in user_spans if s.parent} == set(items)


async def test_nested_group_span_is_a_child_of_its_item(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()

    async def opens_group() -> None:
        async with state.parallel(name="inner") as q:
            q.add(asyncio.sleep(0))

    async with state.parallel(name="outer") as p:
        p.add("parent", opens_group())
    item = telemetry.span("execute_task parent")
    inner = telemetry.span("invoke_workflow inner")
    outer = telemetry.span("invoke_workflow outer")
    assert inner.parent is not None and inner.parent.span_id == item.context.span_id
    assert item.parent is not None and item.parent.span_id == outer.context.span_id
    assert inner.context.trace_id == outer.context.trace_id


async def test_error_statuses_and_types(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    breaker = CircuitBreaker("api", failure_threshold=1, recovery_timeout=60)

    async def fails() -> None:
        raise KeyError("missing")

    async with state.parallel(name="errors", event_timeout=0.01) as p:
        p.add("raises", fails())
        p.add("slow", asyncio.sleep(5))
        p.add("dependent", asyncio.sleep(0), depends_on=["raises"])
    async with state.parallel(name="guarded", max_workers=1, circuit_breaker=breaker) as q:
        q.add("trips", fails())
        q.add("rejected", asyncio.sleep(0))
    expected = {
        "execute_task raises": "KeyError",
        "execute_task slow": "timeout",
        "execute_task dependent": "dependency_failed",
        "execute_task rejected": "circuit_open",
    }
    for name, error_type in expected.items():
        span = telemetry.span(name)
        assert span.status.status_code is StatusCode.ERROR, name
        assert (span.attributes or {})["error.type"] == error_type
    raised = telemetry.span("execute_task raises")
    assert [e.name for e in raised.events] == ["exception"]
    assert telemetry.span("invoke_workflow errors").status.status_code is StatusCode.ERROR


async def test_cancelled_items_are_recorded(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    p = state.parallel(name="cancel me", max_workers=1)
    p.add("running", asyncio.sleep(5))
    p.add("queued", asyncio.sleep(5))
    runner = asyncio.create_task(p.gather())
    await asyncio.sleep(0.01)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    for name in ("execute_task running", "execute_task queued"):
        assert (telemetry.span(name).attributes or {})["error.type"] == "cancelled"
    group = telemetry.span("invoke_workflow cancel me")
    assert (group.attributes or {})["error.type"] == "cancelled"


async def test_retries_are_events_on_the_item_span(telemetry: InMemoryTelemetry) -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("again")
        return "ok"

    state = telemetry.state()
    retry = RetryPolicy(max_attempts=3, initial_delay=0, jitter=0)
    async with state.parallel(name="r", retry=retry) as p:
        p.add("flaky", flaky)
    span = telemetry.span("execute_task flaky")
    retries = [e for e in span.events if e.name == "retry"]
    assert [e.attributes["rh_parallel.attempt"] for e in retries if e.attributes] == [1, 2]
    assert (span.attributes or {})["rh_parallel.attempts"] == 3
    assert span.status.status_code is StatusCode.UNSET


async def test_sequential_events_get_spans_too(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    tool = ExecutionEvent(actor=Tool(name="lookup", input_model=Text, handler=echo))
    await tool({"text": "x"}, None, state)
    span = telemetry.span("execute_tool lookup")
    assert (span.attributes or {})["rh_parallel.address"] == "lookup"
    assert span.parent is None


async def test_records_carry_the_span_ids(telemetry: InMemoryTelemetry) -> None:
    from rh_parallel.testing import RecordCapture

    state = telemetry.state()
    capture = RecordCapture(state.event_bus)
    async with state.parallel(name="ids") as p:
        p.add("a", asyncio.sleep(0))
    await capture.flush()
    span = telemetry.span("execute_task a")
    completed = [r for r in capture.items() if r.execution_status == "completed"]
    assert completed[0].span_id == format(span.context.span_id, "016x")
    assert completed[0].trace_id == format(span.context.trace_id, "032x")
    group_span = telemetry.span("invoke_workflow ids")
    assert capture.groups()[-1].span_id == format(group_span.context.span_id, "016x")
    await state.aclose()


async def test_no_sdk_means_no_spans_and_a_working_run() -> None:
    state = ExecutionState()  # default observers, no SDK configured in this process
    async with state.parallel(name="plain") as p:
        p.add(asyncio.sleep(0, result=1))
    assert (await p.gather())[0].result == 1
    assert p.group.trace_id is None


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


async def test_an_exception_whose_str_raises_still_ends_its_span_as_an_error(
    telemetry: InMemoryTelemetry,
) -> None:
    state = telemetry.state()

    async def bad() -> None:
        raise UnprintableError

    async with state.parallel(name="g") as p:
        p.add(bad)
    (result,) = await p.gather()
    assert not result.ok
    span = telemetry.span("execute_task bad")
    assert span.status.status_code is StatusCode.ERROR
    (event,) = [e for e in span.events if e.name == "exception"]
    assert str((event.attributes or {})["exception.type"]).endswith("UnprintableError")
