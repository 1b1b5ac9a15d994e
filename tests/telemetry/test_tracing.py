"""Spans: names, attributes, parent links, statuses, as DESIGN.md section 4 names them."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from rh_parallel import (
    LLM,
    Agent,
    CircuitBreaker,
    ErrorStrategy,
    EventBus,
    ExecutionEvent,
    ExecutionResult,
    ExecutionState,
    ResultStatus,
    RetryPolicy,
    Tool,
)
from rh_parallel.console import ParallelEventPrinter
from rh_parallel.model.actors import BaseActor
from rh_parallel.telemetry.tracing import SCHEMA_URL, SEMCONV_VERSION, error_type
from rh_parallel.testing import InMemoryTelemetry


class Text(BaseModel):
    text: str


async def echo(data: Text, ctx: object, state: object) -> str:
    return data.text


@pytest.fixture
def telemetry() -> InMemoryTelemetry:
    return InMemoryTelemetry()


# The spans of GenAI semantic conventions v1.41.1 we emit, one row per kind of actor: the span
# name, its kind and its gen_ai.* attributes, exactly (no other gen_ai.* key may appear).
# Required by the conventions: gen_ai.operation.name everywhere, gen_ai.provider.name on chat and
# invoke_agent, gen_ai.tool.name on execute_tool; gen_ai.request.model, gen_ai.agent.name and
# gen_ai.agent.description are conditionally required; gen_ai.tool.type and
# gen_ai.tool.description recommended.
SPEC_REQUIRED = {
    "chat": {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model"},
    "invoke_agent": {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.agent.name"},
    "execute_tool": {"gen_ai.operation.name", "gen_ai.tool.name"},
    "invoke_workflow": {"gen_ai.operation.name", "gen_ai.workflow.name"},
}
ACTOR_SPANS = [
    pytest.param(
        LLM(
            name="summarizer",
            model="gpt-4o-mini",
            provider="openai",
            input_model=Text,
            handler=echo,
        ),
        "chat gpt-4o-mini",
        SpanKind.CLIENT,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
        },
        id="llm",
    ),
    pytest.param(
        LLM(name="local-model", input_model=Text, handler=echo),
        "chat local-model",
        SpanKind.CLIENT,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "_OTHER",
            "gen_ai.request.model": "local-model",
        },
        id="llm-without-model-or-provider",
    ),
    pytest.param(
        Agent(
            name="planner",
            description="Plans the work",
            provider="anthropic",
            model="claude-sonnet-4",
            input_model=Text,
            handler=echo,
        ),
        "invoke_agent planner",
        SpanKind.INTERNAL,
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.agent.name": "planner",
            "gen_ai.agent.description": "Plans the work",
            "gen_ai.request.model": "claude-sonnet-4",
        },
        id="agent",
    ),
    pytest.param(
        Agent(name="bare", input_model=Text, handler=echo),
        "invoke_agent bare",
        SpanKind.INTERNAL,
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": "_OTHER",
            "gen_ai.agent.name": "bare",
        },
        id="agent-without-provider",
    ),
    pytest.param(
        Tool(name="search", description="Searches the web", input_model=Text, handler=echo),
        "execute_tool search",
        SpanKind.INTERNAL,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "search",
            "gen_ai.tool.type": "function",
            "gen_ai.tool.description": "Searches the web",
        },
        id="tool",
    ),
]


def gen_ai(span: ReadableSpan) -> dict[str, object]:
    return {k: v for k, v in (span.attributes or {}).items() if k.startswith("gen_ai.")}


@pytest.mark.parametrize(("actor", "name", "kind", "expected"), ACTOR_SPANS)
@pytest.mark.parametrize("as_item", [True, False], ids=["item", "sequential"])
async def test_actor_spans_follow_the_conventions(
    telemetry: InMemoryTelemetry,
    actor: BaseActor,
    name: str,
    kind: SpanKind,
    expected: dict[str, object],
    as_item: bool,
) -> None:
    state = telemetry.state()
    event = ExecutionEvent(actor=actor)
    if as_item:
        async with state.parallel(name="g") as p:
            p.add(event({"text": "a"}, None, state))
    else:
        await event({"text": "a"}, None, state)
    span = telemetry.span(name)  # exactly one span per actor event
    assert span.kind is kind
    assert gen_ai(span) == expected
    operation = str(expected["gen_ai.operation.name"])
    assert SPEC_REQUIRED[operation] <= set(expected)
    assert span.status.status_code is StatusCode.UNSET
    attributes = span.attributes or {}
    assert attributes["rh_parallel.run_id"] == state.run_id
    assert attributes["rh_parallel.attempts"] == 1
    if as_item:
        assert attributes["rh_parallel.group_id"] == p.group.group_id
        assert attributes["rh_parallel.parallel_index"] == 0
        assert str(attributes["rh_parallel.address"]).startswith(p.group.address + "/")
    else:
        assert "rh_parallel.group_id" not in attributes
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.schema_url == SCHEMA_URL


def test_the_semconv_version_is_named() -> None:
    assert SEMCONV_VERSION == "1.41.1"
    assert SCHEMA_URL == "https://opentelemetry.io/schemas/1.41.0"


async def test_group_and_item_spans(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    tool = ExecutionEvent(actor=Tool(name="search", input_model=Text, handler=echo))
    llm = ExecutionEvent(
        actor=LLM(name="summarizer", model="gpt-small", input_model=Text, handler=echo)
    )
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
    assert gen_ai(group) == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "Document Processing",
    }
    assert (
        dict(group.attributes or {}).items()
        >= {
            "rh_parallel.run_id": state.run_id,
            "rh_parallel.group_id": p.group.group_id,
            "rh_parallel.group_name": "Document Processing",
            "rh_parallel.group_size": 4,
            "rh_parallel.max_workers": 2,
        }.items()
    )
    assert "error.type" not in (group.attributes or {})
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
    assert task.kind is SpanKind.INTERNAL
    assert gen_ai(task) == {}  # not a GenAI operation: our own name, no gen_ai.* attributes
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


async def test_every_span_ends_within_its_parent(telemetry: InMemoryTelemetry) -> None:
    """The last item of a group ends its span before the group does (a child never outlives
    its parent in the trace), nested groups included, whatever the items' outcomes."""
    state = telemetry.state()

    async def leaf(n: int) -> int:
        await asyncio.sleep(0.001 * n)
        if n == 2:
            raise ValueError("two")
        return n

    async def opens_group(size: int) -> None:
        async with state.parallel(2, name="inner") as q:
            for n in range(size):
                q.add(leaf, n)

    async with state.parallel(3, name="outer") as p:
        for size in (1, 3, 4):
            p.add(f"parent-{size}", opens_group, size)
    spans = {span.context.span_id: span for span in telemetry.spans()}
    children = [span for span in spans.values() if span.parent is not None]
    assert len(children) == 3 + 8 + 3  # items of outer, items of inner, inner groups
    for span in children:
        assert span.parent is not None
        parent = spans[span.parent.span_id]
        assert span.end_time is not None and parent.end_time is not None
        assert span.end_time <= parent.end_time, (span.name, parent.name)


class Boom(Exception):
    """An exception class of a module: error.type is ``tests.telemetry.test_tracing.Boom``."""


class Outer:
    class InnerError(Exception):
        """A nested class: its qualified name has the enclosing class."""


BOOM = f"{__name__}.Boom"


def raising(error: BaseException, delay: float = 0.0) -> Callable[[], Coroutine[Any, Any, None]]:
    async def fails() -> None:
        await asyncio.sleep(delay)
        raise error

    return fails


async def test_error_statuses_and_types(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    breaker = CircuitBreaker("api", failure_threshold=1, recovery_timeout=60)

    async with state.parallel(name="errors", event_timeout=0.05) as p:
        p.add("raises", raising(KeyError("missing")))
        p.add("boom", raising(Boom("bang")))
        p.add("inner", raising(Outer.InnerError("deep")))
        p.add("json", raising(json.JSONDecodeError("bad", "{", 0)))
        p.add("empty", raising(Boom()))
        p.add("slow", asyncio.sleep(5))
        p.add("dependent", asyncio.sleep(0), depends_on=["raises"])
    async with state.parallel(name="guarded", max_workers=1, circuit_breaker=breaker) as q:
        q.add("trips", raising(KeyError("missing")))
        q.add("rejected", asyncio.sleep(0))
    expected = {
        "execute_task raises": "KeyError",  # a builtin: its bare name, as the SDK writes it
        "execute_task boom": BOOM,
        "execute_task inner": f"{__name__}.Outer.InnerError",
        "execute_task json": "json.decoder.JSONDecodeError",
        "execute_task empty": BOOM,
        "execute_task slow": "timeout",
        "execute_task dependent": "dependency_failed",
        "execute_task rejected": "circuit_open",
    }
    for name, spelled in expected.items():
        span = telemetry.span(name)
        assert span.status.status_code is StatusCode.ERROR, name
        assert (span.attributes or {})["error.type"] == spelled, name
        exceptions = [e for e in span.events if e.name == "exception"]
        if exceptions:  # the exception event and error.type spell the class alike
            assert (exceptions[0].attributes or {})["exception.type"] == spelled, name
    for name in ("raises", "boom", "inner", "json", "empty"):
        assert [e.name for e in telemetry.span(f"execute_task {name}").events] == ["exception"]
    # the status description is the message, never a repeat of error.type
    assert telemetry.span("execute_task boom").status.description == "bang"
    assert telemetry.span("execute_task empty").status.description is None
    assert telemetry.span("invoke_workflow errors").status.status_code is StatusCode.ERROR


@pytest.mark.parametrize(
    ("result", "spelled"),
    [
        (ExecutionResult.failure(ValueError("x")), "ValueError"),
        (ExecutionResult.failure(Boom("x")), BOOM),
        (ExecutionResult.failure(asyncio.CancelledError(), ResultStatus.CANCELLED), "cancelled"),
        (ExecutionResult.failure(TimeoutError(), ResultStatus.TIMED_OUT), "timeout"),
        (ExecutionResult.failure(Boom(), ResultStatus.REJECTED), "circuit_open"),
        (ExecutionResult.failure(Boom(), ResultStatus.SKIPPED), "dependency_failed"),
        (ExecutionResult(ok=False, status=ResultStatus.FAILED), "_OTHER"),
        (ExecutionResult(ok=False, error_type="RemoteError"), "RemoteError"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_error_type_spellings(result: ExecutionResult, spelled: str) -> None:
    assert error_type(result) == spelled


def item_error_types(telemetry: InMemoryTelemetry) -> dict[str, str]:
    return {
        s.name.removeprefix("execute_task "): str((s.attributes or {})["error.type"])
        for s in telemetry.spans()
        if s.name.startswith("execute_task") and "error.type" in (s.attributes or {})
    }


def group_error_type(telemetry: InMemoryTelemetry, name: str) -> str:
    span = telemetry.span(f"invoke_workflow {name}")
    assert span.status.status_code is StatusCode.ERROR
    return str((span.attributes or {})["error.type"])


async def test_group_and_item_agree_on_a_circuit_open_rejection(
    telemetry: InMemoryTelemetry,
) -> None:
    state = telemetry.state()
    breaker = CircuitBreaker("api", failure_threshold=1, recovery_timeout=60)
    with pytest.raises(Boom):
        await breaker.call(raising(Boom()))  # open before the group starts
    async with state.parallel(name="guarded", circuit_breaker=breaker) as p:
        p.add("a", asyncio.sleep(0))
        p.add("b", asyncio.sleep(0))
    assert item_error_types(telemetry) == {"a": "circuit_open", "b": "circuit_open"}
    assert group_error_type(telemetry, "guarded") == "circuit_open"


async def test_group_and_item_agree_under_fail_fast(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    with pytest.raises(Boom):
        async with state.parallel(name="ff", error_strategy=ErrorStrategy.FAIL_FAST) as p:
            p.add("ok", asyncio.sleep(0))
            p.add("boom", raising(Boom(), delay=0.01))
            p.add("slow", asyncio.sleep(5))
    assert item_error_types(telemetry) == {"boom": BOOM, "slow": "cancelled"}
    assert group_error_type(telemetry, "ff") == BOOM


async def test_group_and_item_agree_at_the_threshold(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    with pytest.raises(Exception, match="failure threshold"):
        async with state.parallel(name="th", max_workers=1, failure_threshold=2) as p:
            p.add("first", raising(ValueError("one")))
            p.add("second", raising(Boom("two")))  # reaches the threshold: it decides
            p.add("never", asyncio.sleep(5))
    assert item_error_types(telemetry) == {
        "first": "ValueError",
        "second": BOOM,
        "never": "cancelled",
    }
    assert group_error_type(telemetry, "th") == BOOM


async def test_group_and_item_agree_on_a_timeout(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    with pytest.raises(TimeoutError):
        async with state.parallel(name="late", timeout=0.05) as p:
            p.add("quick", asyncio.sleep(0))
            p.add("slow", asyncio.sleep(5))
    assert item_error_types(telemetry) == {"slow": "timeout"}
    assert group_error_type(telemetry, "late") == "timeout"


async def test_group_and_item_agree_on_a_cancel(telemetry: InMemoryTelemetry) -> None:
    state = telemetry.state()
    p = state.parallel(name="stopped", max_workers=1)
    p.add("failed", raising(Boom()))  # an earlier failure does not decide a cancelled group
    p.add("running", asyncio.sleep(5))
    runner = asyncio.create_task(p.gather())
    await asyncio.sleep(0.05)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert item_error_types(telemetry) == {"failed": BOOM, "running": "cancelled"}
    assert group_error_type(telemetry, "stopped") == "cancelled"


async def test_group_and_item_agree_when_dependents_are_skipped(
    telemetry: InMemoryTelemetry,
) -> None:
    state = telemetry.state()
    async with state.parallel(name="deps") as p:
        p.add("root", raising(json.JSONDecodeError("bad", "{", 0)))
        p.add("child", asyncio.sleep(0), depends_on=["root"])
        p.add("grandchild", asyncio.sleep(0), depends_on=["child"])
    assert item_error_types(telemetry) == {
        "root": "json.decoder.JSONDecodeError",
        "child": "dependency_failed",
        "grandchild": "dependency_failed",
    }
    # under FAIL_SLOW the first failure recorded decides: the dependency, not its dependents
    assert group_error_type(telemetry, "deps") == "json.decoder.JSONDecodeError"


async def test_a_failure_under_fail_slow_is_spelled_on_the_group(
    telemetry: InMemoryTelemetry,
) -> None:
    state = telemetry.state()
    async with state.parallel(name="slow", max_workers=1) as p:
        p.add("ok", asyncio.sleep(0))
        p.add("first", raising(Outer.InnerError()))
        p.add("second", raising(Boom()))
    assert group_error_type(telemetry, "slow") == f"{__name__}.Outer.InnerError"


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
    # spelled as error.type is on item spans: ConnectionError is a builtin
    assert {(e.attributes or {})["error.type"] for e in retries} == {"ConnectionError"}
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
    assert (event.attributes or {})["exception.type"] == f"{__name__}.UnprintableError"
    assert (span.attributes or {})["error.type"] == f"{__name__}.UnprintableError"


async def test_retry_events_spell_error_types_like_spans(telemetry: InMemoryTelemetry) -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Boom("again")

    state = telemetry.state()
    async with state.parallel(name="r", retry=RetryPolicy(max_attempts=2, initial_delay=0)) as p:
        p.add("flaky", flaky)
    (event,) = [e for e in telemetry.span("execute_task flaky").events if e.name == "retry"]
    assert (event.attributes or {})["error.type"] == BOOM


async def test_json_log_lines_carry_their_own_items_span_ids(
    telemetry: InMemoryTelemetry,
) -> None:
    """Every item line of the json printer names the span of its own item: also skipped items,
    items the breaker rejects before they start, and ones it rejects after a retry's wait."""
    out = io.StringIO()
    bus = EventBus()
    bus.subscribe(ParallelEventPrinter("json", file=out))
    state = ExecutionState(event_bus=bus, observers=telemetry.observers)
    breaker = CircuitBreaker("api", failure_threshold=1, recovery_timeout=60)
    async with state.parallel(name="docs", max_workers=1, circuit_breaker=breaker) as p:
        p.add("ok", asyncio.sleep(0))
        p.add("root", raising(Boom()))
        for i in range(3):
            p.add(f"child{i}", asyncio.sleep(0), depends_on=["root"])
            p.add(f"grandchild{i}", asyncio.sleep(0), depends_on=[f"child{i}"])
        for i in range(5):
            p.add(f"rejected{i}", asyncio.sleep(0))
    other = CircuitBreaker("other", failure_threshold=1, recovery_timeout=60)
    retry = RetryPolicy(max_attempts=2, initial_delay=0)
    async with state.parallel(
        name="retried", max_workers=2, circuit_breaker=other, retry=retry
    ) as q:
        q.add("a", raising(Boom(), delay=0.01))
        q.add("b", raising(Boom(), delay=0.01))
    await bus.aclose()
    spans: dict[str, ReadableSpan] = {}
    for span in telemetry.spans():
        if not span.name.startswith("invoke_workflow"):
            address = str((span.attributes or {})["rh_parallel.address"])
            assert address not in spans, address
            spans[address] = span
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    items = [line for line in lines if line["event"] == "item"]
    statuses = {line["status"] for line in items}
    assert {"started", "completed", "failed", "skipped", "rejected", "retrying"} <= statuses
    assert len({line["address"] for line in items}) == len(spans) == 1 + 1 + 6 + 5 + 2
    for line in items:
        span = spans[line["address"]]
        assert line["span_id"] == format(span.context.span_id, "016x"), line
        assert line["trace_id"] == format(span.context.trace_id, "032x"), line


async def test_a_retry_after_an_event_timeout_says_timeout() -> None:
    telemetry = InMemoryTelemetry()
    state = telemetry.state()
    calls = 0

    async def slow_then_quick() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1)
        return "ok"

    retry = RetryPolicy(max_attempts=2, initial_delay=0, jitter=0)
    async with state.parallel(1, event_timeout=0.05, retry=retry) as p:
        p.add("slow", slow_then_quick)
    (result,) = await p.gather()
    assert result.ok and result.attempts == 2
    (event,) = [e for e in telemetry.span("execute_task slow").events if e.name == "retry"]
    assert event.attributes is not None and event.attributes["error.type"] == "timeout"


# -- provider backpressure: waits for a rate, Retry-After hints ---------------------------------


async def test_an_item_that_waited_for_a_rate_has_a_rate_limit_wait_event() -> None:
    from rh_parallel import RateLimit

    telemetry = InMemoryTelemetry()
    state = telemetry.state()
    limit = RateLimit(10, per=0.5, name="openai")  # one start every 0.05 s

    async def call() -> str:
        return "ok"

    async with state.parallel(3, name="calls", rate_limit=limit) as p:
        for n in range(3):
            p.add(f"c{n}", call)
    await p.gather()
    first = telemetry.span("execute_task c0")
    assert not [e for e in first.events if e.name == "rate_limit_wait"]  # it did not wait
    for name in ("c1", "c2"):
        (event,) = [
            e for e in telemetry.span(f"execute_task {name}").events if e.name == "rate_limit_wait"
        ]
        attributes = event.attributes or {}
        assert attributes["rh_parallel.limiter"] == "openai"
        waited = attributes["rh_parallel.wait_s"]
        assert isinstance(waited, float) and 0.02 < waited < 1.0
    (third,) = [e for e in telemetry.span("execute_task c2").events if e.name == "rate_limit_wait"]
    assert (third.attributes or {})["rh_parallel.wait_s"] > 0.06  # type: ignore[operator]


class Throttled(Exception):
    """A provider's 429 as an HTTP client raises it: a response with a Retry-After header."""

    def __init__(self, retry_after: str) -> None:
        super().__init__("HTTP 429")
        self.response = type(
            "Response", (), {"status_code": 429, "headers": {"retry-after": retry_after}}
        )()


@pytest.mark.parametrize("respect", [True, False])
async def test_a_retry_event_carries_the_retry_after_hint(respect: bool) -> None:
    """The hint the error carried is on the retry event, whether or not the policy waited
    for it; the delay shows what the policy chose."""
    telemetry = InMemoryTelemetry()
    state = telemetry.state()
    errors = [Throttled("0.05"), ValueError("no hint")]

    async def flaky() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    retry = RetryPolicy(max_attempts=3, initial_delay=0.001, jitter=0, respect_retry_after=respect)
    async with state.parallel(1, retry=retry) as p:
        p.add("flaky", flaky)
    (result,) = await p.gather()
    assert result.ok and result.attempts == 3
    hinted, plain = [e for e in telemetry.span("execute_task flaky").events if e.name == "retry"]
    assert hinted.attributes is not None and plain.attributes is not None
    assert hinted.attributes["rh_parallel.retry_after_s"] == 0.05
    assert hinted.attributes["error.type"] == f"{__name__}.Throttled"
    assert hinted.attributes["rh_parallel.retry_delay_s"] == (0.05 if respect else 0.001)
    assert "rh_parallel.retry_after_s" not in plain.attributes
