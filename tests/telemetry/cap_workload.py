"""A workload at the group-label cap, for the series-count bound of the metrics observer.

``run_cap_workload`` runs ``groups`` groups of distinct names (past ``max_groups``, the rest
fold into ``_other``) whose items are of every kind asked for, each kind once completed and
once failed after a retry, plus the same events run outside any group (``_none``) and one
breaker that trips and rejects. Used by the unit test (a scrape of a private registry) and by
the integration program ``tests/integration/metrics_program.py`` (a real Prometheus scrape).
It only uses the public API, so it also runs against older versions of rh-parallel (how the
"before" numbers were measured).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

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

KINDS = ("agent", "tool", "llm", "task")


class Call(BaseModel):
    fail: bool = False


class Flaky(ConnectionError):
    """A failure the retry policy retries once."""


async def _handler(data: Call, ctx: Any, state: Any) -> str:
    await asyncio.sleep(0)
    if data.fail:
        raise Flaky("no answer")
    return "ok"


async def _task(fail: bool) -> str:
    await asyncio.sleep(0)
    if fail:
        raise Flaky("no answer")
    return "ok"


def _events() -> dict[str, ExecutionEvent]:
    return {
        "agent": ExecutionEvent(actor=Agent(name="planner", input_model=Call, handler=_handler)),
        "tool": ExecutionEvent(actor=Tool(name="search", input_model=Call, handler=_handler)),
        "llm": ExecutionEvent(actor=LLM(name="writer", input_model=Call, handler=_handler)),
    }


def add(p: Any, events: dict[str, ExecutionEvent], kind: str, fail: bool, state: Any) -> None:
    """Add one item of ``kind`` to group ``p`` (a plain function for ``task``)."""
    name = f"{kind}-{'failed' if fail else 'ok'}"
    if kind == "task":
        p.add(name, _task, fail)
    else:
        p.add(name, events[kind](Call(fail=fail), None, state))


async def run_cap_workload(
    state: ExecutionState,
    groups: int = 120,
    kinds: tuple[str, ...] = KINDS,
    name: Callable[[int], str] = lambda n: f"group-{n:03d}",
) -> None:
    events = _events()
    retry = RetryPolicy(max_attempts=2, initial_delay=0.0, jitter=0.0, retry_on=(Flaky,))
    for n in range(groups):
        async with state.parallel(max_workers=4, name=name(n), retry=retry) as p:
            for kind in kinds:
                add(p, events, kind, False, state)
                add(p, events, kind, True, state)
        await p.gather()
    for kind in kinds:  # outside any group: group="_none"
        if kind != "task":
            await events[kind](Call(), None, state)
    breaker = CircuitBreaker("search-api", failure_threshold=1, recovery_timeout=60)
    async with state.parallel(max_workers=1, name=name(0), circuit_breaker=breaker) as q:
        q.add("trips", _task(True))
        q.add("rejected", _task(False))
    await q.gather()
