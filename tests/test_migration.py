"""Every row of the RH-Agents migration table (``rh_parallel._migration``) is exercised.

A row accepted with a warning must warn, from the caller's line, naming the new spelling (and
still do what the old one did); a refused row must raise its error, naming the new spelling;
a row that works as is must work (and show the difference the table states). The checks are
keyed by row: a row without a check, or a check without a row, fails the suite.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import rh_parallel
from rh_parallel import (
    LLM,
    Agent,
    ErrorStrategy,
    EventBus,
    EventPrinter,
    ExecutionEvent,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    FailureThresholdExceeded,
    ParallelEventGroup,
    ParallelEventPrinter,
    RetryPolicy,
    Tool,
)
from rh_parallel._migration import SPELLINGS, Spelling, Status, group_retry, markdown_table, plain
from rh_parallel.testing import RecordCapture
from tests.helpers import DOUBLE, Numbers

ROOT = Path(__file__).resolve().parents[1]
Check = Callable[[], Any]
CHECKS: dict[str, Check] = {}


def check(key: str) -> Callable[[Check], Check]:
    """Register the check of the row ``key``: code spelled the old way."""

    def register(function: Check) -> Check:
        assert key not in CHECKS, f"two checks for {key}"
        CHECKS[key] = function
        return function

    return register


def new_state(bus: EventBus | None = None) -> ExecutionState:
    return ExecutionState(event_bus=bus, observers=[])


def record() -> ExecutionEvent:
    return ExecutionEvent(actor=DOUBLE)


async def fetch(x: int) -> int:
    await asyncio.sleep(0)
    return x


class Flaky:
    """Fails ``failures`` times, then returns "ok"."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"call {self.calls}")
        return "ok"


# -- groups -------------------------------------------------------------------------------


@check("parallel.max_retries")
async def _max_retries() -> None:
    flaky = Flaky(failures=2)
    async with new_state().parallel(2, max_retries=2, retry_delay=0.001) as p:
        p.add(flaky)
    [result] = await p.gather()
    assert result.ok and result.attempts == 3 and flaky.calls == 3


@check("parallel.retry_delay")
async def _retry_delay() -> None:
    flaky = Flaky(failures=1)
    async with new_state().parallel(2, retry_delay=0.5) as p:  # without max_retries: no retry
        p.add(flaky)
    [result] = await p.gather()
    assert not result.ok and result.attempts == 1


@check("parallel.circuit_breaker_threshold")
def _breaker_threshold() -> None:
    new_state().parallel(2, circuit_breaker_threshold=3)  # type: ignore[call-arg]


@check("parallel.circuit_breaker_timeout")
def _breaker_timeout() -> None:
    new_state().parallel(2, circuit_breaker_timeout=30.0)  # type: ignore[call-arg]


@check("ErrorStrategy.COLLECT_ALL")
async def _collect_all() -> None:
    assert ErrorStrategy.COLLECT_ALL is ErrorStrategy.FAIL_SLOW  # type: ignore[attr-defined]
    async with new_state().parallel(2, error_strategy="collect_all") as p:  # type: ignore[arg-type]
        p.add(Flaky(failures=1))
        p.add(fetch, 1)
    assert [r.ok for r in await p.gather()] == [False, True]  # every item ran
    assert p.group.error_strategy == "fail_slow"


@check("rh_parallel.ParallelErrorStrategy")
def _parallel_error_strategy() -> None:
    from rh_parallel import ParallelErrorStrategy

    assert ParallelErrorStrategy is ErrorStrategy


@check("ErrorStrategy.FAIL_THRESHOLD")
async def _fail_threshold() -> None:
    state = new_state()
    with pytest.raises(ValueError, match="failure_threshold="):
        state.parallel(2, error_strategy=ErrorStrategy.FAIL_THRESHOLD)
    with pytest.raises(FailureThresholdExceeded):
        async with state.parallel(1, error_strategy=ErrorStrategy.FAIL_THRESHOLD,
                                  failure_threshold=1) as p:  # fmt: skip
            p.add(Flaky(failures=1))
            p.add(fetch, 1)


@check("ParallelExecutionManager.gather_stream")
async def _gather_stream() -> None:
    async with new_state().parallel(2) as p:
        p.add(fetch, 1)
        p.add(fetch, 2)
        assert sorted([r.result async for r in p.gather_stream()]) == [1, 2]


@check("ExecutionState.parallel_execute_stream")
def _parallel_execute_stream() -> None:
    new_state().parallel_execute_stream([fetch(1)])  # type: ignore[attr-defined]


@check("ParallelExecutionManager.add.coroutine")
async def _coroutine_in_a_retrying_group() -> None:
    async with new_state().parallel(2, retry=RetryPolicy(max_attempts=2)) as p:
        p.add(fetch(1))


@check("ParallelExecutionManager.add.lambda")
async def _lambda() -> None:
    docs = [1, 2, 3]
    async with new_state().parallel(2) as p:
        for doc in docs:
            p.add(lambda doc=doc: fetch(doc))  # bound: each item sees its own doc
        for doc in docs:
            p.add(fetch, doc)  # the spelling the docs recommend
    assert [r.result for r in await p.gather()] == docs + docs
    flaky = Flaky(failures=1)
    async with new_state().parallel(2, retry=RetryPolicy(max_attempts=2, initial_delay=0.001)) as p:
        p.add(lambda: flaky())  # called anew for each attempt
    [result] = await p.gather()
    assert result.ok and result.attempts == 2


@check("ParallelExecutionManager.add.event")
async def _event_invocation() -> None:
    state = new_state()
    async with state.parallel(2, retry=RetryPolicy(max_attempts=2)) as p:
        p.add(ExecutionEvent(actor=DOUBLE)({"x": 21}, "", state))
    assert [r.result for r in await p.gather()] == [42]


@check("ParallelExecutionManager.add.name")
async def _named() -> None:
    async with new_state().parallel(2) as p:
        p.add(fetch(1), name="doc1")
        p.add("doc2", fetch, 2)
        p.add(fetch, 3)
    assert {k: r.result for k, r in (await p.gather_dict()).items()} == {
        "doc1": 1,
        "doc2": 2,
        "2": 3,
    }


@check("ParallelExecutionManager.gather")
async def _gather_inside() -> None:
    async with new_state().parallel(2) as p:
        p.add(fetch, 1)
        inside = await p.gather()
    assert [r.result for r in inside] == [1]
    assert [r.result for r in await p.gather()] == [1]


@check("ParallelExecutionManager.as_completed")
async def _as_completed() -> None:
    async with new_state().parallel(2) as p:
        p.add(fetch, 1)
        assert [r.result async for r in p.as_completed()] == [1]
        assert [r.result async for r in p.stream()] == [1]


@check("ExecutionState.parallel_execute")
async def _parallel_execute() -> None:
    state = new_state()
    assert [r.result for r in await state.parallel_execute([fetch(1), fetch(2)])] == [1, 2]
    named = await state.parallel_execute({"doc1": fetch(1)}, max_workers=3)
    assert named["doc1"].result == 1


@check("ParallelExecutionManager.gather(items)")
async def _gather_items() -> None:
    async with new_state().parallel(2) as p:
        with pytest.raises(TypeError, match=r"p\.gather\(\) takes no arguments"):
            await p.gather([fetch(1)])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"p\.gather_dict\(\) takes no arguments"):
            await p.gather_dict({"doc1": fetch(1)})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"p\.stream\(\) and p\.as_completed\(\) take"):
            [r async for r in p.stream([fetch(1)])]  # type: ignore[arg-type]
        p.add(fetch, 1)  # the coroutines given were closed (-W error), the group still runs
    assert [r.result for r in await p.gather()] == [1]
    [r async for r in p.as_completed([fetch(2)])]  # type: ignore[arg-type]


@check("parallel.timeout")
async def _timeout() -> None:
    try:
        async with new_state().parallel(2, timeout=0.01) as p:
            p.add(asyncio.sleep, 5)
    except asyncio.TimeoutError as exc:  # noqa: UP041 - RH-Agents' spelling still catches it
        assert [r.status for r in exc.results] == ["timed_out"]  # type: ignore[attr-defined]
    else:
        raise AssertionError("the group did not time out")


@check("parallel(positional)")
def _positional_strategy() -> None:
    spelled = r"here: error_strategy=ErrorStrategy\.FAIL_FAST, timeout=30"
    with pytest.raises(TypeError, match=spelled):
        new_state().parallel(5, ErrorStrategy.FAIL_FAST, 30)  # type: ignore[arg-type]
    new_state().parallel(5, ErrorStrategy.FAIL_FAST)  # type: ignore[arg-type]


@check("ParallelEventGroup.execution_time")
async def _group_execution_time() -> None:
    async with new_state().parallel(2) as p:
        p.add(fetch, 1)
    assert p.group.execution_time == p.group.duration  # type: ignore[attr-defined]


@check("ParallelEventGroup.success_rate")
async def _success_rate() -> None:
    async with new_state().parallel(2) as p:
        p.add(fetch, 1)
    p.group.success_rate  # type: ignore[attr-defined]  # noqa: B018


# -- results ------------------------------------------------------------------------------


@check("ExecutionResult.erro_message")
async def _erro_message() -> None:
    async with new_state().parallel(2) as p:
        p.add(Flaky(failures=1))
    [result] = await p.gather()
    assert result.erro_message == result.error_message == "call 1"  # type: ignore[attr-defined]
    built = ExecutionResult(ok=False, erro_message="no")  # type: ignore[call-arg]
    assert built.error_message == "no"


@check("ExecutionResult.ok")
def _result_without_ok() -> None:
    ExecutionResult(result=1)  # type: ignore[call-arg]


@check("ExecutionResult.event_id")
def _event_id() -> None:
    ExecutionResult.success(1, index=0, name="a").event_id  # type: ignore[attr-defined]  # noqa: B018


@check("ExecutionResult[T]")
def _generic_result() -> None:
    assert ExecutionResult[str] is ExecutionResult  # type: ignore[misc]


@check("ExecutionResult.result")
async def _result_fields() -> None:
    async with new_state().parallel(2) as p:
        p.add(fetch, 7)
    [result] = await p.gather()
    assert result.ok and result.result == 7 and isinstance(result.execution_time, float)


# -- records ------------------------------------------------------------------------------


@check("ExecutionEvent.from_cache")
def _from_cache() -> None:
    assert record().from_cache is False  # type: ignore[attr-defined]
    assert ExecutionEvent(actor=DOUBLE, from_cache=True).cached  # type: ignore[call-arg]


@check("ExecutionEvent[T]")
def _generic_event() -> None:
    assert ExecutionEvent[int] is ExecutionEvent  # type: ignore[misc]


def _reads(name: str) -> Check:
    def read() -> None:
        getattr(record(), name)

    return read


for _name in (
    "datetime",
    "metadata",
    "result",
    "is_replayed",
    "skip_republish",
    "retry_attempt",
    "is_retry",
    "original_error",
    "retry_delay",
    "retry_config",
    "max_detail_length",
):
    check(f"ExecutionEvent.{_name}")(_reads(_name))


@check("ExecutionEvent.address")
async def _address() -> None:
    bus = EventBus()
    capture = RecordCapture(bus)
    state = new_state(bus)
    async with state.parallel(2, name="Document Processing") as p:
        p.add("doc-1", fetch, 1)
        p.add(fetch, 2)
    await ExecutionEvent(actor=DOUBLE)({"x": 1}, "", state)
    await capture.flush()
    addresses = {r.address for r in capture.items()}
    assert addresses == {"Document Processing/doc-1", "Document Processing/1:fetch", "double"}


@check("ExecutionEvent.tag")
async def _tag() -> None:
    bus = EventBus()
    capture = RecordCapture(bus)
    state = new_state(bus)
    async with state.parallel(2, name="reviews") as p:
        p.add(ExecutionEvent(actor=DOUBLE, tag="positive")({"x": 1}, "", state))
    await capture.flush()
    assert {(r.tag, r.address) for r in capture.items()} == {("positive", "reviews/0:double")}


def _member(name: str) -> Check:
    def read() -> None:
        getattr(ExecutionStatus, name)

    return read


for _name in ("INTERRUPTED", "CANCELLING", "AWAITING", "HUMAN_INTERVENTION"):
    check(f"ExecutionStatus.{_name}")(_member(_name))


# -- state and bus ------------------------------------------------------------------------


@check("ExecutionState.history")
def _history() -> None:
    new_state().history  # type: ignore[attr-defined]  # noqa: B018


@check("ExecutionState.history.get_group")
def _get_group() -> None:
    new_state().history.get_group("doc_processing")  # type: ignore[attr-defined]


@check("ExecutionState.log")
async def _log() -> None:
    await new_state().log("Processing started")  # type: ignore[attr-defined]


@check("ExecutionState.request_interrupt")
def _request_interrupt() -> None:
    new_state().request_interrupt()  # type: ignore[attr-defined]


@check("ExecutionState.state_id")
def _state_id() -> None:
    state = ExecutionState(observers=[], run_id="ingest-1")
    assert state.state_id == "ingest-1"  # type: ignore[attr-defined]


def _state_reads(name: str) -> Check:
    def read() -> None:
        getattr(new_state(), name)

    return read


for _name in (
    "storage",
    "add_step_result",
    "get_steps_result",
    "get_last_step_result",
    "get_all_steps_results",
    "save_checkpoint",
    "to_snapshot",
    "replay_mode",
    "resume_from_address",
    "set_timeout",
    "cancel_timeout",
    "get_current_address",
    "push_context",
    "pop_context",
    "execution_stack",
):
    check(f"ExecutionState.{_name}")(_state_reads(_name))


@check("ExecutionState.load_from_state_id")
def _load_from_state_id() -> None:
    ExecutionState.load_from_state_id("run-1", None)  # type: ignore[attr-defined]


@check("ExecutionState.from_snapshot")
def _from_snapshot() -> None:
    ExecutionState.from_snapshot({})  # type: ignore[attr-defined]


@check("ExecutionState.event_bus")
def _event_bus() -> None:
    bus = EventBus()
    assert ExecutionState(event_bus=bus).event_bus is bus


@check("EventBus.publish")
async def _awaited_publish() -> None:
    bus = EventBus()
    got: list[str] = []
    bus.subscribe(got.append)
    await bus.publish("record")  # type: ignore[func-returns-value, misc]
    await bus.flush()
    assert got == ["record"]


@check("EventBus.events")
def _bus_events() -> None:
    EventBus().events  # type: ignore[attr-defined]  # noqa: B018


@check("EventBus.subscribers")
def _bus_subscribers() -> None:
    EventBus().subscribers  # type: ignore[attr-defined]  # noqa: B018


@check("EventBus.queue")
def _bus_queue() -> None:
    EventBus().queue  # type: ignore[attr-defined]  # noqa: B018


@check("EventBus.subscribe")
async def _subscribe() -> None:
    bus = EventBus()
    got: list[str] = []
    bus.subscribe(got.append)
    bus.publish("record")
    assert got == []  # delivered later, from the subscriber's own queue
    await bus.flush()
    assert got == ["record"]


# -- printers -----------------------------------------------------------------------------


@check("ParallelEventPrinter.print_event")
async def _print_event() -> None:
    bus, out = EventBus(), io.StringIO()
    printer = ParallelEventPrinter(parallel_mode="realtime", file=out)
    bus.subscribe(printer.print_event)
    async with new_state(bus).parallel(2, name="docs") as p:
        p.add(fetch, 1)
    await bus.flush()
    assert "docs" in out.getvalue()


@check("rh_parallel.ParallelDisplayMode")
def _display_mode() -> None:
    mode = rh_parallel.ParallelDisplayMode.PROGRESS  # type: ignore[attr-defined]
    assert ParallelEventPrinter(parallel_mode=mode, file=io.StringIO()).mode == "progress"


@check("ParallelEventPrinter.parallel_mode")
def _parallel_mode() -> None:
    assert ParallelEventPrinter(file=io.StringIO()).mode == "smart"  # auto, not a terminal
    assert ParallelEventPrinter(parallel_mode="realtime", file=io.StringIO()).mode == "realtime"


@check("ParallelEventPrinter.show_progress")
def _show_progress() -> None:
    printer = ParallelEventPrinter(
        parallel_mode="progress", show_progress=False, collapse_parallel=True, file=io.StringIO()
    )
    assert printer.mode == "collapsed"


@check("ParallelEventPrinter.show_parallel_details")
def _show_parallel_details() -> None:
    ParallelEventPrinter(parallel_mode="progress", show_parallel_details=True)  # type: ignore[call-arg]


@check("ParallelEventPrinter.show_timestamp")
def _show_timestamp() -> None:
    with pytest.raises(TypeError, match="json"):
        EventPrinter(show_timestamp=True)  # type: ignore[call-arg]
    ParallelEventPrinter(show_timestamp=True)  # type: ignore[call-arg]


@check("ParallelEventPrinter.show_address")
def _show_address() -> None:
    ParallelEventPrinter(show_address=False)  # type: ignore[call-arg]


# -- actors -------------------------------------------------------------------------------


async def handler(input_data: Numbers, extra_context: object, state: object) -> int:
    return input_data.x


def _actor_field(actor: type[Any], name: str, value: Any) -> Check:
    def build() -> None:
        actor(name="a", input_model=Numbers, handler=handler, **{name: value})

    return build


for _actor, _name, _value in (
    (Tool, "preconditions", []),
    (Tool, "postconditions", []),
    (LLM, "version", "2.0.0"),
    (Tool, "is_artifact", True),
    (Tool, "retry_config", None),
    (Agent, "tools", []),
    (Agent, "llm", None),
):
    check(f"BaseActor.{_name}")(_actor_field(_actor, _name, _value))


@check("BaseActor.cacheable")
def _cacheable() -> None:
    llm = LLM(name="gpt-4o-mini", input_model=Numbers, handler=handler)
    assert llm.cacheable is False and llm.cache_ttl is None  # RH-Agents: True, 3600
    cached = LLM(
        name="gpt-4o-mini", input_model=Numbers, handler=handler, cacheable=True, cache_ttl=3600
    )
    assert cached.cacheable and cached.cache_ttl == 3600


# -- the rows -----------------------------------------------------------------------------


async def run(function: Check) -> None:
    outcome = function()
    if inspect.isawaitable(outcome):
        await outcome


def by_status(*statuses: Status) -> list[Spelling]:
    return [s for s in SPELLINGS if s.status in statuses]


def test_every_row_has_a_check_and_every_check_a_row() -> None:
    keys = [s.key for s in SPELLINGS]
    assert len(keys) == len(set(keys)), "two rows share a key"
    assert set(CHECKS) == set(keys)


@pytest.mark.parametrize("spelling", by_status(Status.WARNS), ids=lambda s: s.key)
async def test_accepted_with_a_warning_naming_the_new_spelling(spelling: Spelling) -> None:
    with pytest.warns(DeprecationWarning) as caught:
        await run(CHECKS[spelling.key])
    naming = [w for w in caught if plain(spelling.new) in str(w.message)]
    assert naming, [str(w.message) for w in caught]
    for warning in caught:  # every warning points at the caller's line, here
        assert warning.filename == __file__, (warning.filename, str(warning.message))
        assert "docs/migration.md" in str(warning.message)


@pytest.mark.parametrize("spelling", by_status(Status.REFUSED), ids=lambda s: s.key)
async def test_refused_with_a_message_naming_the_new_spelling(spelling: Spelling) -> None:
    with pytest.raises(Exception) as caught:
        await run(CHECKS[spelling.key])
    assert type(caught.value).__name__ == spelling.error
    assert plain(spelling.new) in str(caught.value)


@pytest.mark.parametrize("spelling", by_status(Status.SAME, Status.DIFFERS), ids=lambda s: s.key)
async def test_works_as_the_table_says(spelling: Spelling) -> None:
    await run(CHECKS[spelling.key])  # -W error: no warning either


def test_the_guide_holds_the_table() -> None:
    page = (ROOT / "docs/migration.md").read_text("utf-8")
    assert markdown_table() in page, (
        "docs/migration.md's mapping tables differ from rh_parallel._migration.SPELLINGS; "
        "paste the output of `python -m rh_parallel._migration` between the table markers"
    )


def test_table_cells_hold_no_pipe() -> None:
    for spelling in SPELLINGS:
        for cell in (spelling.old, spelling.new, spelling.why):
            assert "|" not in cell, spelling.key


# -- details of the accepted spellings ------------------------------------------------------


def test_max_retries_spells_rh_agents_delays() -> None:
    """RH-Agents slept retry_delay * 2 ** attempt, unbounded and without jitter."""
    with pytest.warns(DeprecationWarning, match=re.escape("max_attempts=4")):
        policy = group_retry({"max_retries": 3}, None)
    assert policy == RetryPolicy(max_attempts=4, initial_delay=1.0, jitter=0.0)
    with pytest.warns(DeprecationWarning):
        long = group_retry({"max_retries": 6, "retry_delay": 1.0}, None)
    assert long is not None and long.max_delay == 32.0
    with pytest.warns(DeprecationWarning, match="no retry"):
        assert group_retry({"max_retries": 0}, None) is None


def test_max_retries_refuses_what_it_cannot_map() -> None:
    state = new_state()
    with pytest.raises(TypeError, match="retry=RetryPolicy"):
        state.parallel(2, max_retries=2, retry=RetryPolicy())
    with pytest.raises(TypeError, match="int >= 0"):
        state.parallel(2, max_retries=-1)
    with pytest.raises(TypeError, match="initial_delay"):
        state.parallel(2, max_retries=1, retry_delay="soon")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"parallel\(\) got an unexpected keyword argument 'nmae'"):
        state.parallel(2, nmae="typo")  # type: ignore[call-arg]


def test_printers_refuse_unknown_keywords_as_python_does() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour_mode'"):
        ParallelEventPrinter(colour_mode=True)  # type: ignore[call-arg]


async def test_a_bus_can_still_forward_to_another_bus() -> None:
    """publish() returns a token that awaiting warns about; a bus subscribed to another bus
    (its publish() as the handler) is not awaited, so it does not warn (-W error)."""
    first, second = EventBus(), EventBus()
    got: list[str] = []
    second.subscribe(got.append)
    first.subscribe(second.publish)
    first.publish("record")
    await first.flush()
    await second.flush()
    assert got == ["record"]


# -- unknown fields: an error that lists the fields, never dropped ------------------------------


@pytest.mark.parametrize(
    ("build", "fields"),
    [
        (lambda: Tool(name="a", input_model=Numbers, handler=handler, retries=3), "cache_ttl"),  # type: ignore[call-arg]
        (lambda: LLM(name="a", input_model=Numbers, handler=handler, temp=0), "provider"),  # type: ignore[call-arg]
        (lambda: ExecutionEvent(actor=DOUBLE, label="x"), "item_name"),  # type: ignore[call-arg]
        (lambda: ExecutionResult(ok=True, value=1), "error_message"),  # type: ignore[call-arg]
        (lambda: ParallelEventGroup(group_id="g", size=3), "max_workers"),  # type: ignore[call-arg]
    ],
    ids=["Tool", "LLM", "ExecutionEvent", "ExecutionResult", "ParallelEventGroup"],
)
def test_an_unknown_field_is_an_error_listing_the_fields(
    build: Callable[[], Any], fields: str
) -> None:
    with pytest.raises(ValidationError, match="has no field") as caught:
        build()
    assert fields in str(caught.value)


def test_a_refused_field_names_its_replacement_as_a_keyword_too() -> None:
    with pytest.raises(ValidationError, match=re.escape('tag="...")')):
        ExecutionEvent(actor=DOUBLE, metadata={"k": "v"})  # type: ignore[call-arg]


def test_a_subclass_may_add_fields() -> None:
    class Reviewer(Agent):
        rubric: str = "strict"

    reviewer = Reviewer(name="r", input_model=Numbers, handler=handler, rubric="lenient")
    assert reviewer.rubric == "lenient"
    with pytest.raises(ValidationError, match="rubric"):  # listed among its fields
        Reviewer(name="r", input_model=Numbers, handler=handler, rubrik="x")  # type: ignore[call-arg]


def test_misspelt_attributes_keep_pythons_error() -> None:
    with pytest.raises(AttributeError, match="'ExecutionResult' object has no attribute 'rsult'"):
        ExecutionResult.success(1).rsult  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match="'ExecutionState' object has no attribute 'runid'"):
        new_state().runid  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match="type object 'ErrorStrategy' has no attribute"):
        ErrorStrategy.FAIL_SLOWLY  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ValueError, match="'fail_slowly' is not a valid ErrorStrategy"):
        ErrorStrategy("fail_slowly")


# -- found in review: lookups, warnings' lines, the publish token, printers' positions ------


def test_a_subclass_property_that_raises_attribute_error_keeps_its_own_error() -> None:
    """The __getattr__ hooks must not turn a property's AttributeError into "no attribute"
    naming the property."""

    class MyState(ExecutionState):
        @property
        def label(self) -> str:
            return self.config.name  # type: ignore[attr-defined, no-any-return]

    class MyBus(EventBus):
        @property
        def label(self) -> str:
            return self.config.name  # type: ignore[attr-defined, no-any-return]

    for obj in (MyState(observers=[]), MyBus()):
        with pytest.raises(AttributeError, match="no attribute 'config'"):
            obj.label  # noqa: B018
        assert not hasattr(obj, "label") and getattr(obj, "nope", 7) == 7


def _import_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, code: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(code, "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, name, raising=False)
    __import__(name)
    return path


def test_an_old_top_level_name_imported_warns_at_the_import_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``from rh_parallel import X`` looks X up from an import-system frame too, which
    warnings.warn skips without counting: every warning still names the import line."""
    with pytest.warns(DeprecationWarning) as caught:
        path = _import_fresh(
            tmp_path, monkeypatch, "ported_rh", "\nfrom rh_parallel import ParallelErrorStrategy\n"
        )
    assert {(w.filename, w.lineno) for w in caught} == {(str(path), 2)}


def test_an_old_generic_in_an_evaluated_annotation_warns_at_the_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic evaluates ``from __future__ import annotations`` strings with eval(): the
    warning names the model's module, not ``<string>``."""
    code = (
        "from __future__ import annotations\n"
        "from pydantic import BaseModel\n"
        "from rh_parallel import ExecutionResult\n"
        "class Report(BaseModel):\n"
        "    result: ExecutionResult[str]\n"
    )
    with pytest.warns(DeprecationWarning, match=r"ExecutionResult\[T\]") as caught:
        path = _import_fresh(tmp_path, monkeypatch, "ported_model", code)
    assert {w.filename for w in caught} == {str(path)}


async def test_the_publish_token_is_falsy_and_says_what_to_do_when_scheduled() -> None:
    bus = EventBus()
    bus.subscribe(lambda record: None)
    token = bus.publish("record")
    assert not token  # as the None publish() is typed to return
    with pytest.raises(TypeError, match=r"returns at once, with nothing to await"):
        asyncio.create_task(token)  # type: ignore[arg-type]  # noqa: RUF006 - RH-Agents: a coroutine
    await bus.aclose()


def test_old_member_names_and_values_name_the_new_spelling() -> None:
    with pytest.warns(DeprecationWarning, match="ErrorStrategy.FAIL_SLOW") as caught:
        assert ErrorStrategy["COLLECT_ALL"] is ErrorStrategy.FAIL_SLOW
    assert caught[0].filename == __file__
    with pytest.raises(KeyError, match=r"ExecutionStatus\.CANCELLED"):
        ExecutionStatus["INTERRUPTED"]
    with pytest.raises(ValueError, match=r"Instead: ExecutionStatus\.CANCELLED"):
        ExecutionStatus("interrupted")
    with pytest.raises(ValidationError, match=r"Instead: ExecutionStatus\.CANCELLED"):
        ExecutionEvent(actor=DOUBLE, execution_status="interrupted")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"Input should be 'started'"):  # pydantic's own
        ExecutionEvent(actor=DOUBLE, execution_status="nope")  # type: ignore[arg-type]
    done = ExecutionEvent(actor=DOUBLE, execution_status="completed")  # type: ignore[arg-type]
    assert done.execution_status is ExecutionStatus.COMPLETED
    with pytest.raises(KeyError, match=r"^'NOPE'$"):
        ErrorStrategy["NOPE"]
    with pytest.raises(ValueError, match=r"^'nope' is not a valid ExecutionStatus$"):
        ExecutionStatus("nope")
    assert ErrorStrategy["FAIL_FAST"] is ErrorStrategy.FAIL_FAST
    assert list(ErrorStrategy) == [ErrorStrategy[n] for n in ErrorStrategy.__members__]


@pytest.mark.parametrize(
    "build",
    [
        lambda: EventPrinter(False),  # type: ignore[arg-type]
        lambda: ParallelEventPrinter(True, False),  # type: ignore[arg-type]
        lambda: ParallelEventPrinter(False, True, "progress"),  # type: ignore[arg-type]
    ],
    ids=["EventPrinter(False)", "ParallelEventPrinter(True, False)", "three positions"],
)
def test_rh_agents_positional_printer_flags_are_refused(build: Callable[[], Any]) -> None:
    """RH-Agents' printers took show_timestamp and show_address first: a bool where
    rh-parallel takes the mode or the file is refused at once, naming the fix."""
    with pytest.raises(TypeError, match=r"show_timestamp by position; pass parallel_mode="):
        build()


def test_a_subclass_that_allows_extra_fields_still_takes_them() -> None:
    """extra="forbid" and its messages are the base models'; a subclass that sets another
    ``extra`` keeps pydantic's behaviour for its fields (old spellings are still renamed)."""
    from pydantic import ConfigDict

    class TeamTool(Tool):
        model_config = ConfigDict(extra="allow")

    class TaggedResult(ExecutionResult):
        model_config = ConfigDict(extra="ignore")

    tool = TeamTool(name="t", input_model=Numbers, handler=handler, team="search")  # type: ignore[call-arg]
    assert tool.team == "search"  # type: ignore[attr-defined]
    assert not hasattr(TaggedResult(ok=True, source="cache"), "source")  # type: ignore[call-arg]
    with pytest.warns(DeprecationWarning, match="error_message"):
        renamed = TaggedResult(ok=False, erro_message="no")  # type: ignore[call-arg]
    assert renamed.error_message == "no"


def test_a_generic_subclass_can_still_be_parametrized() -> None:
    """Only ``ExecutionResult[T]`` / ``ExecutionEvent[T]`` themselves are RH-Agents'
    spelling: a subclass that is generic in its own right is parametrized by pydantic."""
    from typing import Generic, TypeVar

    T = TypeVar("T")

    class TypedResult(ExecutionResult, Generic[T]):
        result: T | None = None

    class TypedEvent(ExecutionEvent, Generic[T]):
        payload: T | None = None

    assert TypedResult[int](ok=True, result="3").result == 3
    assert TypedEvent[int](actor=DOUBLE, payload="4").payload == 4


def test_a_subclass_may_give_ok_a_default() -> None:
    class Done(ExecutionResult):
        ok: bool = True

    assert Done(result=1).ok
    with pytest.raises(ValidationError, match=re.escape("ExecutionResult(ok=True, result=x)")):
        ExecutionResult(result=1)  # type: ignore[call-arg]


def test_the_old_names_on_the_classes_are_the_tables() -> None:
    """Old attribute and member names are descriptors listed in ``_old_names.OLD_NAMES``:
    exactly the table's accepted and refused rows of those classes that are no real names."""
    from rh_parallel._old_names import OLD_NAMES, OldName

    classes: dict[str, type] = {
        "ExecutionState": ExecutionState,
        "EventBus": EventBus,
        "ErrorStrategy": ErrorStrategy,
        "ExecutionStatus": ExecutionStatus,
    }
    assert set(OLD_NAMES) == set(classes)
    for owner, cls in classes.items():
        rows = {s.key.partition(".")[2] for s in by_status(Status.WARNS, Status.REFUSED)
                if s.key.partition(".")[0] == owner}  # fmt: skip
        old = {
            name
            for name in rows
            if "." not in name and isinstance(inspect.getattr_static(cls, name, None), OldName)
        }
        real = {name for name in rows if "." not in name} - old  # EventBus.publish: a method
        assert old == set(OLD_NAMES[owner]), owner
        assert all(inspect.getattr_static(cls, name, None) is not None for name in real), owner


def test_no_getattr_hook_slows_the_hot_classes() -> None:
    """A ``__getattr__`` makes every attribute read of a class slower (an ExecutionState read
    took 4x as long, publish() 40% longer), and, on an enum's metaclass from Python 3.12 on,
    every member lookup: the old names are descriptors instead."""
    from enum import EnumType

    assert not hasattr(ExecutionState, "__getattr__")
    assert not hasattr(EventBus, "__getattr__")
    for enum in (ErrorStrategy, ExecutionStatus):  # Python 3.11's EnumType has one already
        assert hasattr(type(enum), "__getattr__") == hasattr(EnumType, "__getattr__")
    state, bus = new_state(), EventBus()
    assert "history" not in dir(state) and "events" not in dir(bus)
    assert "parallel" in dir(state) and "publish" in dir(bus)
    with pytest.raises(AttributeError, match=r"Instead: p\.results"):
        ExecutionState.history  # type: ignore[attr-defined]  # noqa: B018
