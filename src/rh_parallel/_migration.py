"""RH-Agents' names (and the parallel-execution specification's) and their rh-parallel spellings.

One table, :data:`SPELLINGS`, holds every name a program ported from RH-Agents, or written from
the specification, meets here: what to write instead, and whether the old spelling is accepted
(with a ``DeprecationWarning`` naming the new one), refused (with an error naming it), or works
as it is (perhaps behaving differently, which the page says). The code that accepts or refuses
a spelling takes its message from this table, the table of docs/migration.md is
:func:`markdown_table` (``python -m rh_parallel._migration`` prints it), and
tests/test_migration.py exercises every row, so the three cannot drift apart.

Nothing here runs on the executor's hot path: the helpers are called when an old name is read
(the descriptors of ``rh_parallel._old_names``, the models' ``__getattr__``, which pydantic
has anyway), when a model is validated from user input, or when a deprecated keyword was
given. This module is imported only then.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict

if TYPE_CHECKING:
    from rh_parallel.execution.retry import RetryPolicy

__all__ = [
    "SPELLINGS",
    "LegacyGroupOptions",
    "NoLegacyOptions",
    "ParallelDisplayMode",
    "Spelling",
    "Status",
    "markdown_table",
]

GUIDE = "see the migration guide, docs/migration.md"


class Status(StrEnum):
    """What rh-parallel does with an old spelling."""

    WARNS = "accepted, warns"  # works, with a DeprecationWarning naming the new spelling
    REFUSED = "refused"  # raises, and the message names the new spelling
    SAME = "works as is"  # the same spelling, the same behaviour
    DIFFERS = "works, differs"  # the same spelling, but it behaves differently (see why)


@dataclass(frozen=True, slots=True)
class Spelling:
    """One row: an old spelling, ours, and what happens to the old one.

    ``key`` is how the code finds the row (``owner.name``); ``old``, ``new`` and ``why`` are
    Markdown (code in backticks); ``error`` names the exception a refused spelling raises;
    ``target`` is the new attribute, field or member name of a mechanical rename.
    """

    key: str
    area: str
    origin: str  # "RH-Agents", "spec" or "both"
    old: str
    new: str
    status: Status
    why: str
    error: str = ""
    target: str = ""

    @property
    def status_text(self) -> str:
        return f"refused ({self.error})" if self.status is Status.REFUSED else self.status.value


W, R, S, D = Status.WARNS, Status.REFUSED, Status.SAME, Status.DIFFERS  # for the rows below
GROUPS = "Groups"
RESULTS = "Results"
RECORDS = "Records (ExecutionEvent)"
STATE = "Execution state and event bus"
PRINTERS = "Printers"
ACTORS = "Actors"

SPELLINGS: tuple[Spelling, ...] = (
    # -- groups ---------------------------------------------------------------------------
    Spelling(
        "parallel.max_retries",
        GROUPS,
        "RH-Agents",
        "`state.parallel(max_retries=N)`",
        "`retry=RetryPolicy(max_attempts=N + 1)`",
        W,
        "Unambiguous: the warning spells the exact policy (the first delay `retry_delay`, "
        "doubling, no jitter). `max_attempts` counts the first attempt too.",
    ),
    Spelling(
        "parallel.retry_delay",
        GROUPS,
        "RH-Agents",
        "`state.parallel(retry_delay=D)`",
        "`RetryPolicy(initial_delay=D)`",
        W,
        "Goes into the policy made for `max_retries`; alone it does nothing, as in RH-Agents.",
    ),
    Spelling(
        "parallel.circuit_breaker_threshold",
        GROUPS,
        "RH-Agents",
        "`state.parallel(circuit_breaker_threshold=N)`",
        '`circuit_breaker=CircuitBreaker("service", failure_threshold=N)`',
        R,
        "A breaker guards one downstream service, is shared by every group that calls it and "
        "is named for its metrics; RH-Agents made one per group, with other rules (a success "
        "took a failure back, no half-open probes). No keyword maps to that.",
        "TypeError",
    ),
    Spelling(
        "parallel.circuit_breaker_timeout",
        GROUPS,
        "RH-Agents",
        "`state.parallel(circuit_breaker_timeout=T)`",
        '`CircuitBreaker("service", recovery_timeout=T)`',
        R,
        "As for `circuit_breaker_threshold`.",
        "TypeError",
    ),
    Spelling(
        "ErrorStrategy.COLLECT_ALL",
        GROUPS,
        "spec",
        "`ErrorStrategy.COLLECT_ALL`",
        "`ErrorStrategy.FAIL_SLOW`",
        W,
        "The same behaviour under another name: every item runs, failures are results (the "
        'string `"collect_all"` is accepted too).',
        target="FAIL_SLOW",
    ),
    Spelling(
        "rh_parallel.ParallelErrorStrategy",
        GROUPS,
        "RH-Agents",
        "`ParallelErrorStrategy` (RH-Agents' top-level name)",
        "`ErrorStrategy`",
        W,
        "One `ErrorStrategy`: RH-Agents' builder strategies have no counterpart here.",
        target="ErrorStrategy",
    ),
    Spelling(
        "ErrorStrategy.FAIL_THRESHOLD",
        GROUPS,
        "spec",
        "`ErrorStrategy.FAIL_THRESHOLD`",
        "`failure_threshold=N` (a count) or a share in (0, 1]",
        S,
        "The strategy needs its number: `failure_threshold=` alone selects it, and the "
        "strategy without one is a `ValueError`.",
    ),
    Spelling(
        "ParallelExecutionManager.gather_stream",
        GROUPS,
        "spec",
        "`p.gather_stream()`",
        "`p.stream()`",
        W,
        "The same iterator, in completion order (`p.as_completed()` is its asyncio name).",
        target="stream",
    ),
    Spelling(
        "ExecutionState.parallel_execute_stream",
        GROUPS,
        "spec",
        "`state.parallel_execute_stream(items)`",
        "`async for result in p.stream()` in an `async with state.parallel() as p` block",
        R,
        "A stream needs the group's handle `p` (to add items, cancel, read counters); the "
        "one-liner `state.parallel_execute(items)` returns a list or a dict.",
        "AttributeError",
    ),
    Spelling(
        "ParallelExecutionManager.add.coroutine",
        GROUPS,
        "RH-Agents",
        "`p.add(fetch(url))` in a group that retries",
        "`p.add(fetch, url)`",
        R,
        "A coroutine runs once. RH-Agents failed such an item when it retried; rh-parallel "
        "refuses it at `add()`.",
        "TypeError",
    ),
    Spelling(
        "ParallelExecutionManager.add.lambda",
        GROUPS,
        "RH-Agents",
        "`p.add(lambda: process_doc(doc))`",
        "`p.add(process_doc, doc)`",
        S,
        "A lambda is called on the loop for each attempt, so it can be retried. Nothing runs "
        "before `gather()`: in a loop, pass the arguments to `add()` (or bind them, "
        "`lambda doc=doc: ...`), or every item sees the last `doc`, as in RH-Agents.",
    ),
    Spelling(
        "ParallelExecutionManager.add.event",
        GROUPS,
        "RH-Agents",
        "`p.add(event(input, ctx, state))`",
        "`p.add(event(input, ctx, state))`",
        S,
        "An event invocation is re-created for each attempt: no lambda is needed to retry it.",
    ),
    Spelling(
        "ParallelExecutionManager.add.name",
        GROUPS,
        "both",
        '`p.add(work, name="doc1")`, `p.add("doc1", work)`',
        '`p.add(work, name="doc1")`, `p.add("doc1", work)`',
        S,
        "Names are unique in a group; `gather_dict()` keys unnamed items by their index.",
    ),
    Spelling(
        "ParallelExecutionManager.gather",
        GROUPS,
        "RH-Agents",
        "`await p.gather()` inside the `async with` block",
        "`await p.gather()`, inside or after the block",
        S,
        "The first call runs the group; leaving the block then runs nothing more, and later "
        "calls return the stored results.",
    ),
    Spelling(
        "ParallelExecutionManager.as_completed",
        GROUPS,
        "spec",
        "`p.stream()`, `p.as_completed()`",
        "`p.stream()`, `p.as_completed()`",
        S,
        "Both take no arguments: add the work with `p.add()` first.",
    ),
    Spelling(
        "ExecutionState.parallel_execute",
        GROUPS,
        "spec",
        '`state.parallel_execute([...])`, `state.parallel_execute({"doc1": ...})`',
        '`state.parallel_execute([...])`, `state.parallel_execute({"doc1": ...})`',
        S,
        "A list gives a list, a mapping a dict with your keys.",
    ),
    Spelling(
        "ParallelExecutionManager.gather(items)",
        GROUPS,
        "spec",
        "`p.gather([...])`, `p.gather_dict({...})`, `p.stream([...])`, `p.as_completed([...])`",
        "`p.add(...)` for each item, then `p.gather()`; or `state.parallel_execute([...])`",
        R,
        "A group's work is added with `p.add()`; the methods that read results take no "
        "arguments. `state.parallel_execute()` runs a list or a mapping in one call.",
        "TypeError",
    ),
    Spelling(
        "parallel.timeout",
        GROUPS,
        "RH-Agents",
        "`state.parallel(timeout=S)`",
        "`state.parallel(timeout=S)`",
        S,
        "Raises `GroupTimeoutError`, a `TimeoutError`, so `except asyncio.TimeoutError` still "
        "catches it; it carries `.results`.",
    ),
    Spelling(
        "parallel(positional)",
        GROUPS,
        "RH-Agents",
        "`state.parallel(5, ErrorStrategy.FAIL_FAST)`",
        "`state.parallel(5, error_strategy=ErrorStrategy.FAIL_FAST)`",
        R,
        "Only `max_workers` is positional; the other settings are keywords (RH-Agents took "
        "`error_strategy`, `timeout` and `name` by position too).",
        "TypeError",
    ),
    Spelling(
        "ParallelEventGroup.execution_time",
        GROUPS,
        "RH-Agents",
        "`p.group.execution_time`",
        "`p.group.duration`",
        W,
        "The same seconds, from the group's start to its end.",
        target="duration",
    ),
    Spelling(
        "ParallelEventGroup.success_rate",
        GROUPS,
        "RH-Agents",
        "`p.group.success_rate`",
        "`100 * p.group.completed / p.group.total`",
        R,
        "Computed from the counters when you need it.",
        "AttributeError",
    ),
    # -- results --------------------------------------------------------------------------
    Spelling(
        "ExecutionResult.erro_message",
        RESULTS,
        "RH-Agents",
        "`result.erro_message`, `ExecutionResult(erro_message=...)`",
        "`result.error_message`",
        W,
        "The misspelling is gone; `error_type` and `error` (the exception itself) are new.",
        target="error_message",
    ),
    Spelling(
        "ExecutionResult.ok",
        RESULTS,
        "RH-Agents",
        "`ExecutionResult(result=x)` (`ok` defaulted to true)",
        "`ExecutionResult(ok=True, result=x)`",
        R,
        "`ok` has no default: a result says whether it succeeded.",
        "ValidationError",
    ),
    Spelling(
        "ExecutionResult.event_id",
        RESULTS,
        "spec",
        "`result.event_id`",
        "`result.index`, `result.name`",
        R,
        "Every result knows its index, name and `group_id`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionResult[T]",
        RESULTS,
        "RH-Agents",
        "`ExecutionResult[T]`",
        "`ExecutionResult`",
        W,
        "Not generic: `result` is `Any`. The subscript returns the class itself.",
    ),
    Spelling(
        "ExecutionResult.result",
        RESULTS,
        "RH-Agents",
        "`result.ok`, `result.result`, `result.execution_time`",
        "`result.ok`, `result.result`, `result.execution_time`",
        S,
        "`execution_time` is a float (0.0 for an item that never ran), never `None`.",
    ),
    # -- records --------------------------------------------------------------------------
    Spelling(
        "ExecutionEvent.from_cache",
        RECORDS,
        "RH-Agents",
        "`record.from_cache`",
        "`record.cached`",
        W,
        "Renamed to match `ExecutionResult.cached`.",
        target="cached",
    ),
    Spelling(
        "ExecutionEvent[T]",
        RECORDS,
        "RH-Agents",
        "`ExecutionEvent[T]`",
        "`ExecutionEvent`",
        W,
        "Not generic. The subscript returns the class itself.",
    ),
    Spelling(
        "ExecutionEvent.datetime",
        RECORDS,
        "RH-Agents",
        "`record.datetime` (an ISO string)",
        "`record.timestamp` (seconds since the epoch)",
        R,
        "Another type: `datetime.fromtimestamp(record.timestamp)` gives the old value.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.metadata",
        RECORDS,
        "RH-Agents",
        "`record.metadata`",
        '`ExecutionEvent(actor=..., tag="...")`',
        R,
        "Records are snapshots shared by every subscriber; a `tag` labels an event, other data "
        "stays in your code.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.result",
        RECORDS,
        "RH-Agents",
        "`record.result`",
        "the `ExecutionResult` (`await event(...)`, `p.gather()`)",
        R,
        "Records carry no values (they may be private or large); "
        "`ExecutionState(capture_io=True)` puts a truncated copy in `record.detail`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.is_replayed",
        RECORDS,
        "RH-Agents",
        "`record.is_replayed`",
        "`record.execution_status is ExecutionStatus.RECOVERED`",
        R,
        "A recovered item's record has status `recovered`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.skip_republish",
        RECORDS,
        "RH-Agents",
        "`ExecutionEvent(skip_republish=True)`",
        "nothing: a recovered item's record says `recovered`",
        R,
        "What is published is the executor's business, not the event's.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.retry_attempt",
        RECORDS,
        "RH-Agents",
        "`record.retry_attempt` (from 0)",
        "`record.attempt` (from 1)",
        R,
        "The count starts at 1, so the old name would be off by one.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.is_retry",
        RECORDS,
        "RH-Agents",
        "`record.is_retry`",
        "`record.attempt > 1`",
        R,
        "Derived from `attempt`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.original_error",
        RECORDS,
        "RH-Agents",
        "`record.original_error`",
        "`record.message` of the `retrying` record",
        R,
        "A `retrying` record says the failed attempt's error and the delay in `message`, and "
        "the error's class in `error_type`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.retry_delay",
        RECORDS,
        "RH-Agents",
        "`record.retry_delay`",
        "`record.message` of the `retrying` record",
        R,
        "As for `original_error`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.retry_config",
        RECORDS,
        "RH-Agents",
        "`ExecutionEvent(retry_config=...)`",
        "`state.parallel(retry=RetryPolicy(...))`",
        R,
        "Retries belong to a group; run one call as a one-item group to retry it.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.max_detail_length",
        RECORDS,
        "RH-Agents",
        "`ExecutionEvent(max_detail_length=N)`",
        "`ExecutionState(capture_io=True, max_io_chars=N)`",
        R,
        "Set once for the state; values are left out of records unless you ask.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionEvent.address",
        RECORDS,
        "RH-Agents",
        '`record.address` (`"agent::tool_call"`)',
        '`record.address` (`"Document Processing/doc-1"`)',
        D,
        "A path joined by `/`: group names, then item names (or `index:function`), the same "
        "on every run and unique; no `::` and no event type. Split on `/`, not `::`.",
    ),
    Spelling(
        "ExecutionEvent.tag",
        RECORDS,
        "RH-Agents",
        '`ExecutionEvent(actor=..., tag="x")`',
        '`ExecutionEvent(actor=..., tag="x")`',
        D,
        "The tag is on every record but is not part of the address (RH-Agents added it); "
        "items are told apart by their group and index or name.",
    ),
    Spelling(
        "ExecutionStatus.INTERRUPTED",
        RECORDS,
        "RH-Agents",
        "`ExecutionStatus.INTERRUPTED`",
        "`ExecutionStatus.CANCELLED`",
        R,
        "rh-parallel cancels (`p.cancel()`, or cancelling the task) instead of interrupting; "
        "the items end `cancelled`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionStatus.CANCELLING",
        RECORDS,
        "RH-Agents",
        "`ExecutionStatus.CANCELLING`",
        "`ExecutionStatus.CANCELLED`",
        R,
        "There is no intermediate status: a record says `cancelled` once the item stopped.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionStatus.AWAITING",
        RECORDS,
        "RH-Agents",
        "`ExecutionStatus.AWAITING`",
        "`ExecutionStatus.WAITING`",
        R,
        "`waiting` is a group item waiting for a rate limit, not a pause for input: not the "
        "same meaning.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionStatus.HUMAN_INTERVENTION",
        RECORDS,
        "RH-Agents",
        "`ExecutionStatus.HUMAN_INTERVENTION`",
        "waiting for input inside your handler",
        R,
        "rh-parallel has no human-in-the-loop pause.",
        "AttributeError",
    ),
    # -- state and bus --------------------------------------------------------------------
    Spelling(
        "ExecutionState.history",
        STATE,
        "both",
        "`state.history`",
        "`p.results` and `p.group`; records from `bus.subscribe()` or `bus.stream()`; "
        "saved results in a `store=`",
        R,
        "The state keeps nothing per item, so a long run's memory stays flat: results come "
        "back to you, records go to the bus, completed results to a store.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.history.get_group",
        STATE,
        "spec",
        "`state.history.get_group(name)`",
        "`p.group`",
        R,
        "The group's name, counters, status, duration and `errors` are on `p.group`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.log",
        STATE,
        "RH-Agents",
        "`await state.log(message)`",
        "`logging` or `structlog`",
        R,
        "Log lines are not bus records here: log with your own logging setup.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.request_interrupt",
        STATE,
        "RH-Agents",
        "`state.request_interrupt()`",
        "`p.cancel()`, or cancel the task that awaits the group",
        R,
        "Cancellation is asyncio's: every queued and running item ends `cancelled`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.state_id",
        STATE,
        "RH-Agents",
        "`state.state_id`",
        "`state.run_id`",
        W,
        "The run's id, on every record (time-sortable, not a UUID). Read-only under the old "
        "name: set it with `ExecutionState(run_id=...)`.",
        target="run_id",
    ),
    Spelling(
        "ExecutionState.storage",
        STATE,
        "RH-Agents",
        "`state.storage`",
        "return values, `p.result_of(name)`; saved results in a `store=`",
        R,
        "The state holds no key-value store: a step returns its value, a dependent item reads "
        "its inputs with `p.result_of()`, and a run store saves completed results.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.add_step_result",
        STATE,
        "RH-Agents",
        "`state.add_step_result(i, value)`",
        "return the value from the step",
        R,
        "As for `storage`: values come back from `await event(...)` and `p.gather()`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.get_steps_result",
        STATE,
        "RH-Agents",
        "`state.get_steps_result([i, j])`",
        "the results of `p.gather()`, or `p.result_of(name)`",
        R,
        "As for `storage`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.get_last_step_result",
        STATE,
        "RH-Agents",
        "`state.get_last_step_result()`",
        "the result of the last `await event(...)`",
        R,
        "As for `storage`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.get_all_steps_results",
        STATE,
        "RH-Agents",
        "`state.get_all_steps_results()`",
        "`await p.gather_dict()`",
        R,
        "As for `storage`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.save_checkpoint",
        STATE,
        "RH-Agents",
        "`state.save_checkpoint()`",
        '`ExecutionState(store=SQLiteStore("runs.db"), run_id=...)`',
        R,
        "A run store saves each item as it completes (durable runs); there is no snapshot of "
        "the state to take.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.to_snapshot",
        STATE,
        "RH-Agents",
        "`state.to_snapshot()`",
        '`ExecutionState(store=SQLiteStore("runs.db"), run_id=...)`',
        R,
        "As for `save_checkpoint`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.load_from_state_id",
        STATE,
        "RH-Agents",
        "`ExecutionState.load_from_state_id(state_id, backend)`",
        "`ExecutionState(store=..., run_id=...)` with the run's `run_id`",
        R,
        "Running the program again with the same store and run id recovers the completed "
        "items (status `recovered`) and runs the rest.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.from_snapshot",
        STATE,
        "RH-Agents",
        "`ExecutionState.from_snapshot(snapshot)`",
        "`ExecutionState(store=..., run_id=...)` with the run's `run_id`",
        R,
        "As for `load_from_state_id`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.replay_mode",
        STATE,
        "RH-Agents",
        "`state.replay_mode`",
        "the same `run_id` to resume, a new one (or none) to run everything again",
        R,
        "A resumed run recovers every item its store saved and runs the rest; there are no "
        "replay modes.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.resume_from_address",
        STATE,
        "RH-Agents",
        "`state.resume_from_address`",
        "the same `run_id` to resume, a new one (or none) to run everything again",
        R,
        "As for `replay_mode`: what a run resumes is what its store saved, not a point.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.set_timeout",
        STATE,
        "RH-Agents",
        "`state.set_timeout(S)`",
        "`state.parallel(timeout=S)`, or `async with asyncio.timeout(S)`",
        R,
        "A timeout bounds a group (`GroupTimeoutError`) or any block, with asyncio's own; "
        "there is no state-wide interrupt.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.cancel_timeout",
        STATE,
        "RH-Agents",
        "`state.cancel_timeout()`",
        "leaving the `async with asyncio.timeout(S)` block",
        R,
        "As for `set_timeout`: a timeout ends with its group or block.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.get_current_address",
        STATE,
        "RH-Agents",
        "`state.get_current_address(event_type)`",
        "`state.current_address()`",
        R,
        "No event type: the address (`docs/doc-3`) of the item or event whose code runs now, "
        "or `None` outside any.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.push_context",
        STATE,
        "RH-Agents",
        "`state.push_context(name)`",
        "a group's `name=`, an item's `name=`, or an event (addresses follow them)",
        R,
        "The executor builds each address from the groups, items and events that run; there "
        "is no stack to push to.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.pop_context",
        STATE,
        "RH-Agents",
        "`state.pop_context()`",
        "nothing: a level ends with its group, item or event",
        R,
        "As for `push_context`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.execution_stack",
        STATE,
        "RH-Agents",
        "`state.execution_stack`",
        "`state.current_address()` (its levels joined by `/`)",
        R,
        "As for `push_context`.",
        "AttributeError",
    ),
    Spelling(
        "ExecutionState.event_bus",
        STATE,
        "both",
        "`ExecutionState(event_bus=bus)`",
        "`ExecutionState(event_bus=bus)`",
        S,
        "A plain class, not a pydantic model: its other settings are keywords too "
        "(`global_max_workers`, `run_id`, `store`, `cache`, ...).",
    ),
    Spelling(
        "EventBus.publish",
        STATE,
        "RH-Agents",
        "`await bus.publish(record)`",
        "`bus.publish(record)`",
        W,
        "`publish()` queues the record for each subscriber and returns at once; awaiting it "
        "waits for nothing. `await bus.flush()` waits until the records are delivered.",
    ),
    Spelling(
        "EventBus.events",
        STATE,
        "RH-Agents",
        "`bus.events`",
        "`bus.subscribe(handler)` or `bus.stream()`",
        R,
        "The bus keeps no history: a record lives only in the queues of its subscribers.",
        "AttributeError",
    ),
    Spelling(
        "EventBus.subscribers",
        STATE,
        "RH-Agents",
        "`bus.subscribers`",
        "the `Subscription` that `bus.subscribe()` returns (`.unsubscribe()`), "
        "`bus.has_subscribers`",
        R,
        "Subscribers are no list to edit: each has its own queue and task, and leaves with "
        "`unsubscribe()`.",
        "AttributeError",
    ),
    Spelling(
        "EventBus.queue",
        STATE,
        "RH-Agents",
        "`bus.queue`",
        "`async for record in bus.stream()`",
        R,
        "The bus has no queue of its own: each subscriber and each stream has a bounded one.",
        "AttributeError",
    ),
    Spelling(
        "EventBus.subscribe",
        STATE,
        "both",
        "`bus.subscribe(printer)`",
        "`bus.subscribe(printer)`",
        D,
        "Each subscriber gets the records from its own queue, in its own task, after "
        "`publish()` returned; one that raises is logged and skipped. Leave "
        "`async with ExecutionState()` (or `await bus.flush()`) before you rely on its output.",
    ),
    # -- printers -------------------------------------------------------------------------
    Spelling(
        "ParallelEventPrinter.print_event",
        PRINTERS,
        "RH-Agents",
        "`bus.subscribe(printer.print_event)`",
        "`bus.subscribe(printer)`",
        W,
        "The printer itself is the handler; `print_event` returns it.",
    ),
    Spelling(
        "rh_parallel.ParallelDisplayMode",
        PRINTERS,
        "RH-Agents",
        "`ParallelDisplayMode.PROGRESS`",
        '`parallel_mode="progress"`',
        W,
        "Modes are strings; `rh_parallel.ParallelDisplayMode` (realtime, progress) still works.",
    ),
    Spelling(
        "ParallelEventPrinter.parallel_mode",
        PRINTERS,
        "both",
        '`ParallelEventPrinter(parallel_mode="realtime")`',
        '`ParallelEventPrinter(parallel_mode="realtime")`',
        D,
        'Without it the mode is `"auto"` (live on a terminal, smart elsewhere), not '
        '`"realtime"`; there are also `progress`, `collapsed`, `smart`, `json` and `live`.',
    ),
    Spelling(
        "ParallelEventPrinter.show_progress",
        PRINTERS,
        "spec",
        "`show_progress=`, `collapse_parallel=`",
        "`show_progress=`, `collapse_parallel=`",
        S,
        "As the specification spells them.",
    ),
    Spelling(
        "ParallelEventPrinter.show_parallel_details",
        PRINTERS,
        "spec",
        "`ParallelEventPrinter(show_parallel_details=...)`",
        '`parallel_mode="progress"` (every item) or `parallel_mode="collapsed"` (one block '
        "per group)",
        R,
        "The mode decides how much of a group is shown; a flag beside it would contradict it.",
        "TypeError",
    ),
    Spelling(
        "ParallelEventPrinter.show_timestamp",
        PRINTERS,
        "RH-Agents",
        "`ParallelEventPrinter(show_timestamp=...)`, `EventPrinter(show_timestamp=...)`",
        '`parallel_mode="json"` (`EventPrinter(mode="json")`)',
        R,
        "JSON lines carry timestamps, addresses and trace ids; the text modes show neither.",
        "TypeError",
    ),
    Spelling(
        "ParallelEventPrinter.show_address",
        PRINTERS,
        "RH-Agents",
        "`ParallelEventPrinter(show_address=...)`, `EventPrinter(show_address=...)`",
        '`parallel_mode="json"` (`EventPrinter(mode="json")`)',
        R,
        "As for `show_timestamp`: the text modes place an item by its group and index.",
        "TypeError",
    ),
    # -- actors ---------------------------------------------------------------------------
    Spelling(
        "BaseActor.preconditions",
        ACTORS,
        "RH-Agents",
        "`Tool(..., preconditions=[check])`",
        "a call `check(input_data, extra_context, state)` first in the handler",
        R,
        "A check that raises fails the call like any handler error (`ok=False`), and a retry "
        "policy sees it.",
        "ValidationError",
    ),
    Spelling(
        "BaseActor.postconditions",
        ACTORS,
        "RH-Agents",
        "`Tool(..., postconditions=[check])`",
        "`output_model=`, or a check before the handler returns",
        R,
        "`output_model` validates what the handler returns.",
        "ValidationError",
    ),
    Spelling(
        "BaseActor.version",
        ACTORS,
        "RH-Agents",
        '`Tool(..., version="2.0.0")`',
        'a new `name` (`"summarize-v2"`), or clear the cache',
        R,
        "A cache key is the actor's name, `model` and input; a new name starts new entries.",
        "ValidationError",
    ),
    Spelling(
        "BaseActor.is_artifact",
        ACTORS,
        "RH-Agents",
        "`Tool(..., is_artifact=True)`",
        '`ExecutionState(store=SQLiteStore("runs.db"), run_id=...)`',
        R,
        "A run store saves completed values (as JSON) under the run id; there is no separate "
        "artifact store.",
        "ValidationError",
    ),
    Spelling(
        "BaseActor.retry_config",
        ACTORS,
        "RH-Agents",
        "`Tool(..., retry_config=RetryConfig(...))`",
        "`state.parallel(retry=RetryPolicy(...))`",
        R,
        "Retries belong to a group. RH-Agents also tried tool and LLM calls up to three times "
        "by default; rh-parallel retries only when asked.",
        "ValidationError",
    ),
    Spelling(
        "BaseActor.tools",
        ACTORS,
        "RH-Agents",
        "`Agent(..., tools=ToolSet([...]))`",
        "the handler's closure, or `extra_context`",
        R,
        "An agent is a handler; what it calls is up to it.",
        "ValidationError",
    ),
    Spelling(
        "BaseActor.llm",
        ACTORS,
        "RH-Agents",
        "`Agent(..., llm=llm)`",
        '`Agent(..., model="gpt-4o-mini", provider="openai")`, and the `LLM` in its handler',
        R,
        "`model` and `provider` label the agent's spans; the call itself is the handler's.",
        "ValidationError",
    ),
    Spelling(
        "BaseActor.cacheable",
        ACTORS,
        "RH-Agents",
        "`LLM(...)` (cacheable for an hour by default)",
        "`LLM(..., cacheable=True, cache_ttl=3600)` and `ExecutionState(cache=...)`",
        D,
        "Nothing is cacheable unless it says so, LLMs included, and a state caches only with "
        "a `cache=`.",
    ),
)

_BY_KEY: dict[str, Spelling] = {row.key: row for row in SPELLINGS}
_ORIGINS = {"RH-Agents": "an RH-Agents spelling", "spec": "the specification's spelling"}


def lookup(owner: str, name: str) -> Spelling | None:
    """The row for ``owner.name`` (an old field, attribute or member), if there is one."""
    return _BY_KEY.get(f"{owner}.{name}")


def row(key: str) -> Spelling:
    """The row called ``key`` (it must exist: the code names its own rows)."""
    return _BY_KEY[key]


def plain(text: str) -> str:
    """Markdown to message text: the code spans lose their backticks."""
    return text.replace("`", "")


def _origin(spelling: Spelling) -> str:
    return _ORIGINS.get(spelling.origin, "an RH-Agents and specification spelling")


def message(key: str, detail: str = "") -> str:
    """What a warning or an error says about the row ``key``: the old spelling, the new one,
    why (for a refusal), and where to read more."""
    spelling = _BY_KEY[key]
    old, new = plain(spelling.old), plain(spelling.new)
    if spelling.status is Status.WARNS:
        text = f"{old}: deprecated, {_origin(spelling)}. Instead: {new}"
    else:
        text = f"{old}: {_origin(spelling)} that rh-parallel does not accept. Instead: {new}"
    if detail:
        text += f"; {detail}"
    if spelling.status is not Status.WARNS:
        text += f". {plain(spelling.why)}"
    related = [r for r in SPELLINGS if r.key.startswith(key + ".") and r.status is Status.REFUSED]
    for other in related:  # state.history also answers for state.history.get_group
        text += f" For {plain(other.old)}, instead: {plain(other.new)}."
    return f"{text} ({GUIDE})"


_INTERNAL_PACKAGES = (
    "rh_parallel",
    "pydantic",
    "pydantic_core",
    "enum",
    "importlib",
    "typing",
    "typing_extensions",
)


def _internal(frame: FrameType) -> bool:
    if frame.f_globals.get("__name__", "").partition(".")[0] in _INTERNAL_PACKAGES:
        return True
    # an annotation (``r: ExecutionResult[str]`` under ``from __future__ import
    # annotations``) that pydantic or typing evaluates: eval'd code in the user's globals
    back = frame.f_back
    return frame.f_code.co_filename == "<string>" and back is not None and _internal(back)


def _user_level() -> int:
    """The ``stacklevel`` of the first frame outside rh-parallel and the libraries it runs
    user calls through (pydantic validates, enum looks members up, typing evaluates
    annotations): the user's own line."""
    frame: FrameType | None = sys._getframe(1)  # the caller of warnings.warn: stacklevel 1
    level = 1
    while frame is not None and _internal(frame):
        frame = frame.f_back
        # warnings.warn skips the import system's frames without counting them (``from
        # rh_parallel import ParallelErrorStrategy`` looks the name up from one of them)
        code = frame.f_code.co_filename if frame is not None else ""
        if not ("importlib" in code and "_bootstrap" in code):
            level += 1
    return level


def warn(key: str, detail: str = "") -> None:
    """A ``DeprecationWarning`` for the row ``key``, pointing at the user's line."""
    warnings.warn(message(key, detail), DeprecationWarning, stacklevel=_user_level())


# -- attributes, fields and members -------------------------------------------------------


def attribute(obj: object, owner: str, name: str) -> Any:
    """An old attribute or member read (a descriptor of ``rh_parallel._old_names``, or a
    model's ``__getattr__``): a renamed one (with a warning), a refused one (an AttributeError
    naming the new spelling), or Python's own AttributeError."""
    spelling = lookup(owner, name)
    if spelling is None or spelling.status not in (Status.WARNS, Status.REFUSED):
        where = (
            f"type object {obj.__name__!r}"
            if isinstance(obj, type)
            else (f"{type(obj).__name__!r} object")
        )
        raise AttributeError(f"{where} has no attribute {name!r}", name=name, obj=obj)
    if spelling.status is Status.REFUSED or not spelling.target:
        raise AttributeError(message(spelling.key), name=name, obj=obj)
    warn(spelling.key)
    return getattr(obj, spelling.target)


def member_item(enum: Any, name: object) -> Any:
    """``enum[name]`` for a name that is not a member: renamed (a warning) or refused (a
    KeyError naming the new spelling); any other name stays Python's own KeyError."""
    spelling = lookup(enum.__name__, name) if isinstance(name, str) else None
    if spelling is None or spelling.status not in (Status.WARNS, Status.REFUSED):
        raise KeyError(name)
    if spelling.status is Status.REFUSED or not spelling.target:
        raise KeyError(message(spelling.key))
    warn(spelling.key)
    return enum[spelling.target]


def missing_value(enum: Any, value: object) -> Any:
    """``_missing_`` for an enum: an old member's value (``"collect_all"``) gives its new
    member with a warning; a removed one's (``"interrupted"``) is a ValueError naming the
    new spelling; anything else stays Python's own error."""
    if isinstance(value, str):
        spelling = lookup(enum.__name__, value.upper())
        if spelling is not None and spelling.status is Status.WARNS and spelling.target:
            warn(spelling.key)
            return enum[spelling.target]
        if spelling is not None and spelling.status is Status.REFUSED:
            raise ValueError(f"{value!r} is not a valid {enum.__name__}: {message(spelling.key)}")
    return None


def check_fields(model: type, data: Any, fields: Iterable[str]) -> Any:
    """A ``model_validator(mode="before")`` body: a renamed field is renamed (with a warning);
    a refused or unknown one raises a ValueError (pydantic's ValidationError) that names what
    to use instead, or lists the valid fields. A subclass configured with another ``extra``
    than ``"forbid"`` gets the renames only: pydantic keeps or drops its other fields."""
    if not isinstance(data, dict):
        return data
    forbid = getattr(model, "model_config", {}).get("extra") == "forbid"
    valid = fields if isinstance(fields, Mapping) else set(fields)
    unknown = [name for name in data if name not in valid]
    if not unknown:
        return data
    data = dict(data)
    for name in unknown:
        spelling = next(
            (s for s in (lookup(c.__name__, name) for c in model.__mro__) if s is not None), None
        )
        if spelling is not None and spelling.status is Status.WARNS and spelling.target:
            if spelling.target in data:
                raise ValueError(
                    f"{model.__name__} got both {name}= and {spelling.target}=; pass "
                    f"{spelling.target}= only"
                )
            warn(spelling.key)
            data[spelling.target] = data.pop(name)
        elif not forbid:
            continue
        elif spelling is not None and spelling.status is Status.REFUSED:
            raise ValueError(message(spelling.key))
        else:
            raise ValueError(
                f"{model.__name__} has no field {name!r}; its fields are: "
                f"{', '.join(valid)} ({GUIDE})"
            )
    return data


# -- state.parallel(): RH-Agents' keywords --------------------------------------------------


class LegacyGroupOptions(TypedDict, total=False):
    """The RH-Agents keywords ``state.parallel()`` still accepts, with a DeprecationWarning
    (``circuit_breaker_threshold`` and ``circuit_breaker_timeout`` are refused)."""

    max_retries: int
    retry_delay: float


class NoLegacyOptions(TypedDict, total=False):
    """No keyword: the printers refuse RH-Agents' options with a message naming the fix."""


def group_retry(legacy: Mapping[str, Any], retry: RetryPolicy | None) -> RetryPolicy | None:
    """The retry policy for RH-Agents' ``max_retries`` / ``retry_delay``; refused and unknown
    keywords raise a TypeError, as Python would, naming the fix."""
    refuse_options(
        "parallel", "ExecutionState.parallel", legacy, LegacyGroupOptions.__annotations__
    )
    if retry is not None and "max_retries" in legacy:
        raise TypeError(
            "state.parallel() got both retry= and max_retries=; pass retry=RetryPolicy(...) only"
        )
    retries = legacy.get("max_retries", 0)
    delay = legacy.get("retry_delay", 1.0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise TypeError(
            f"max_retries={retries!r} takes an int >= 0; better, pass "
            f"retry=RetryPolicy(max_attempts=N + 1) ({GUIDE})"
        )
    from rh_parallel.execution.retry import RetryPolicy

    if retries == 0:
        if "max_retries" in legacy:
            warn("parallel.max_retries", "max_retries=0 means no retry: drop it")
        if "retry_delay" in legacy:
            warn("parallel.retry_delay", "without max_retries it does nothing, as in RH-Agents")
        return retry
    try:
        largest = float(delay) * 2.0 ** (retries - 1)  # the last delay RH-Agents slept
    except (TypeError, ValueError, OverflowError):
        largest = 0.0  # RetryPolicy below says what is wrong with retry_delay
    options: dict[str, Any] = {"max_attempts": retries + 1, "initial_delay": delay, "jitter": 0.0}
    if math.isfinite(largest) and largest > RetryPolicy().max_delay:
        options["max_delay"] = largest  # RH-Agents' delays kept doubling
    policy = RetryPolicy(**options)  # checks retry_delay, naming RetryPolicy's own field
    spelled = ", ".join(f"{k}={v!r}" for k, v in options.items())
    key = "parallel.max_retries" if "max_retries" in legacy else "parallel.retry_delay"
    warn(key, f"here: retry=RetryPolicy({spelled})")
    return policy


# RH-Agents' order of state.parallel()'s parameters after max_workers
_PARALLEL_POSITIONS = (
    "error_strategy",
    "timeout",
    "name",
    "max_retries",
    "retry_delay",
    "circuit_breaker_threshold",
    "circuit_breaker_timeout",
)


def refuse_positions(values: tuple[Any, ...]) -> NoReturn:
    """``state.parallel(5, ErrorStrategy.FAIL_FAST)``: a TypeError that spells the keywords
    RH-Agents' positions stood for."""
    spelled = ", ".join(
        f"{name}={_spell(value)}" for name, value in zip(_PARALLEL_POSITIONS, values, strict=False)
    )
    detail = f"here: {spelled}" if len(values) <= len(_PARALLEL_POSITIONS) else ""
    raise TypeError(message("parallel(positional)", detail))


def _spell(value: object) -> str:
    if isinstance(value, Enum):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


def refuse_items(method: str, items: tuple[Any, ...]) -> NoReturn:
    """The specification's ``p.gather([...])`` (and ``gather_dict``, ``stream``,
    ``as_completed``): a TypeError naming ``p.add()``, after closing the work it was given
    (no coroutine is left un-awaited)."""
    from rh_parallel.execution.items import close_work

    for given in items:
        if isinstance(given, Mapping):
            works: Iterable[Any] = given.values()
        elif isinstance(given, list | tuple | set):
            works = given
        else:
            works = (given,)
        for work in works:
            close_work(work)
    detail = (
        "p.stream() and p.as_completed() take no arguments"
        if method == "stream"
        else f"p.{method}() takes no arguments"
    )
    raise TypeError(message("ParallelExecutionManager.gather(items)", detail))


def refuse_options(
    owner: str, function: str, legacy: Mapping[str, Any], accepted: Iterable[str] = ()
) -> None:
    """Raise for the keywords a ``**legacy`` parameter caught, but those ``accepted``: a known
    old one names its fix, any other gets Python's own TypeError."""
    for name in legacy:
        if name in accepted:
            continue
        spelling = lookup(owner, name)
        if spelling is None:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
        raise TypeError(message(spelling.key))


# -- old names in the package's namespace -------------------------------------------------


class ParallelDisplayMode(StrEnum):
    """RH-Agents' printer modes, kept for ported code: the members are the mode strings
    ``ParallelEventPrinter(parallel_mode=...)`` takes (it takes the strings themselves too)."""

    REALTIME = "realtime"
    PROGRESS = "progress"


def package_name(name: str) -> Any:
    """``rh_parallel.<name>`` for an old top-level name (with a warning), or None."""
    if name == "ParallelErrorStrategy":
        from rh_parallel.model.enums import ErrorStrategy

        warn("rh_parallel.ParallelErrorStrategy")
        return ErrorStrategy
    if name == "ParallelDisplayMode":
        warn("rh_parallel.ParallelDisplayMode")
        return ParallelDisplayMode
    return None


# -- the table of docs/migration.md -------------------------------------------------------

AREAS = (GROUPS, RESULTS, RECORDS, STATE, PRINTERS, ACTORS)


def markdown_table() -> str:
    """The mapping tables of docs/migration.md, one per area, generated from
    :data:`SPELLINGS` (the docs test checks the page holds exactly this text)."""
    parts = []
    for area in AREAS:
        parts.append(f"### {area}\n")
        parts.append("| From | Old spelling | rh-parallel | The old spelling | Why |")
        parts.append("|---|---|---|---|---|")
        for spelling in SPELLINGS:
            if spelling.area == area:
                cells = (
                    spelling.origin,
                    spelling.old,
                    "the same" if spelling.new == spelling.old else spelling.new,
                    spelling.status_text,
                    spelling.why,
                )
                parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
