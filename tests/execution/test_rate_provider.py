"""Provider backpressure end to end: groups of LLM actors call a local OpenAI-compatible server
(rh_parallel.provider_double under uvicorn) through the real openai SDK, and the server's own
log says what it saw."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from rh_parallel import (
    LLM,
    AdaptiveLimit,
    ExecutionEvent,
    ExecutionState,
    RateLimit,
    RetryPolicy,
)
from rh_parallel.provider_double import ProviderDouble, RequestRecord, serve
from rh_parallel.runtime.observer import ExecutionObserver, GroupInfo
from tests.execution.test_rate import most_in_any_window

openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")

MODEL = "gpt-4o-mini"


class Prompt(BaseModel):
    prompt: str


async def chat(data: Prompt, client: Any, state: object) -> str:
    """The handler of every LLM actor here: one chat completion; the SDK's own retries are off
    (``max_retries=0``), so every retry is rh-parallel's."""
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": data.prompt}]
    )
    return str(completion.choices[0].message.content)


ASK = ExecutionEvent(
    actor=LLM(name="ask", model=MODEL, provider="openai", input_model=Prompt, handler=chat)
)


@contextlib.asynccontextmanager
async def provider(double: ProviderDouble) -> AsyncIterator[Any]:
    """``double`` served, and an SDK client for it, warmed up: the SDK's first call in a
    process takes tens of milliseconds more than the next ones, which would bunch up the
    first arrivals. The double then forgets the warm-up call."""
    with serve(double) as base_url:
        async with openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0) as client:
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "warm-up"}]
            )
            double.reset()
            yield client


async def run_group(
    state: ExecutionState, client: Any, tag: str, count: int, **options: Any
) -> list[Any]:
    """A group of ``count`` LLM calls, each asking ``"{tag}-{n}"`` (the server logs it)."""
    async with state.parallel(name=tag, **options) as p:
        for n in range(count):
            p.add(f"{tag}-{n}", ASK({"prompt": f"{tag}-{n}"}, client, state))
    return await p.gather()


def by_prompt(records: list[RequestRecord]) -> dict[str | None, list[RequestRecord]]:
    """Each caller's requests in arrival order."""
    calls: dict[str | None, list[RequestRecord]] = defaultdict(list)
    for record in records:  # already in arrival order
        calls[record.prompt].append(record)
    return calls


# -- a shared rate limit -------------------------------------------------------------------


async def test_a_shared_rate_limit_keeps_the_server_within_its_rate() -> None:
    """Two groups share one RateLimit(10 per 0.5 s) in front of a server that allows as much:
    the server never sees more than 10 requests in any window of 0.5 s."""
    double = ProviderDouble(rate=10, per=0.5, latency=0.005)
    limit = RateLimit(10, per=0.5, name="openai")
    retry = RetryPolicy(max_attempts=5, initial_delay=0.05, respect_retry_after=True)
    state = ExecutionState(observers=[])
    async with provider(double) as client:
        groups = await asyncio.gather(
            *(
                run_group(state, client, tag, 12, max_workers=8, rate_limit=limit, retry=retry)
                for tag in ("a", "b")
            )
        )
    assert all(r.ok for results in groups for r in results)
    arrivals = [r.arrived for r in double.requests]
    assert len(arrivals) >= 24
    # measured after the fact, across a socket: allow a fifth of an interval for the latency
    # between a start and its arrival
    assert most_in_any_window(arrivals, 0.5 - limit.interval * 0.2) <= 10
    print(f"\nshared RateLimit: {len(arrivals)} requests, {double.count(429)} answered 429")


async def test_without_the_rate_limit_the_same_groups_overrun_the_server() -> None:
    """The sanity check of the test above: without the limit, the server refuses some."""
    double = ProviderDouble(rate=10, per=0.5, latency=0.005, retry_after=0.01)
    state = ExecutionState(observers=[])
    async with provider(double) as client:
        await asyncio.gather(
            *(run_group(state, client, tag, 12, max_workers=8) for tag in ("a", "b"))
        )
    assert double.count(429) >= 4
    assert most_in_any_window([r.arrived for r in double.requests], 0.5) > 10


# -- Retry-After ---------------------------------------------------------------------------


async def _retry_after_run(respect: bool) -> list[tuple[RequestRecord, RequestRecord]]:
    """Six calls at once against a server that takes two and asks the rest to come back in
    0.25 s; every (429, the same caller's next request) pair."""
    double = ProviderDouble(max_concurrent=2, latency=0.1, retry_after=0.25)
    retry = RetryPolicy(max_attempts=10, initial_delay=0.01, jitter=0, respect_retry_after=respect)
    state = ExecutionState(observers=[])
    async with provider(double) as client:
        results = await run_group(state, client, "q", 6, max_workers=6, retry=retry)
    assert all(r.ok for r in results)
    pairs = [
        (refused, retried)
        for calls in by_prompt(double.requests).values()
        for refused, retried in itertools.pairwise(calls)
        if refused.status == 429
    ]
    assert len(pairs) >= 4 and all(refused.retry_after == 0.25 for refused, _ in pairs)
    return pairs


async def test_with_respect_retry_after_no_retry_arrives_before_the_hint() -> None:
    pairs = await _retry_after_run(respect=True)
    early = [
        (retried.arrived - refused.arrived)
        for refused, retried in pairs
        if retried.arrived < refused.arrived + (refused.retry_after or 0)
    ]
    assert not early, f"retries arrived {early} s after their 429, before the 0.25 s hint"


async def test_without_respect_retry_after_retries_may_arrive_before_the_hint() -> None:
    pairs = await _retry_after_run(respect=False)
    assert any(
        retried.arrived < refused.arrived + (refused.retry_after or 0) for refused, retried in pairs
    )


# -- adaptive concurrency ------------------------------------------------------------------


class LimitWatch(ExecutionObserver):
    """The group's concurrency limit over time (``on_limit_change``)."""

    def __init__(self, initial: int) -> None:
        self.changes: list[tuple[float, int]] = [(time.monotonic(), initial)]

    def on_limit_change(self, group: GroupInfo, old: int, new: int) -> None:
        self.changes.append((time.monotonic(), new))

    def mean(self, end: float) -> float:
        """The limit's time-weighted mean from the start to ``end``."""
        ends = [t for t, _ in self.changes[1:]] + [end]
        spans = zip(self.changes, ends, strict=True)
        total = sum(limit * (stop - start) for (start, limit), stop in spans)
        return total / (end - self.changes[0][0])


async def _capacity_run(max_workers: int | AdaptiveLimit) -> tuple[int, float]:
    """80 calls against a server that serves 4 at once (20 ms each): the 429s it answered,
    and the group's time-weighted mean limit."""
    double = ProviderDouble(max_concurrent=4, latency=0.02)
    retry = RetryPolicy(
        max_attempts=100, initial_delay=0.005, max_delay=0.05, respect_retry_after=True
    )
    initial = max_workers.limit if isinstance(max_workers, AdaptiveLimit) else max_workers
    watch = LimitWatch(initial)
    state = ExecutionState(observers=[watch])
    async with provider(double) as client:
        watch.changes[0] = (time.monotonic(), initial)
        async with state.parallel(name="calls", max_workers=max_workers, retry=retry) as p:
            for n in range(80):
                p.add(f"c{n}", ASK({"prompt": f"c{n}"}, client, state))
        results = await p.gather()
        mean = watch.mean(time.monotonic())
    assert all(r.ok for r in results)
    assert double.count(200) == 80 and double.peak_in_flight <= 4
    return double.count(429), mean


async def test_an_adaptive_limit_settles_near_the_server_capacity(
    record_property: Any,
) -> None:
    """Capacity 4: AdaptiveLimit(initial=8) comes down to about 4 and stays near it, with
    fewer 429s than a fixed limit of 16."""
    adaptive = AdaptiveLimit(initial=8, min=1, max=32)
    refused_adaptive, mean = await _capacity_run(adaptive)
    refused_fixed, _ = await _capacity_run(16)
    record_property("429s_adaptive", refused_adaptive)
    record_property("429s_fixed_16", refused_fixed)
    record_property("final_limit", adaptive.limit)
    record_property("mean_limit", round(mean, 2))
    print(
        f"\nserver capacity 4 at once, 80 calls: AdaptiveLimit(initial=8, min=1, max=32) got "
        f"{refused_adaptive} 429s (final limit {adaptive.limit}, time-weighted mean "
        f"{mean:.2f}); max_workers=16 got {refused_fixed} 429s"
    )
    assert 2 <= adaptive.limit <= 6
    assert 2 <= mean <= 6
    assert refused_adaptive < refused_fixed
