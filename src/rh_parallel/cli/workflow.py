"""The demo's simulated agent workflow: an orchestrator fanning out document processing.

Each document is a tool call that opens a nested group of two LLM calls (summarize, classify)
and an enrichment call to a flaky external API, guarded by a retry policy and one circuit
breaker shared by every document's group. An aggregation step depends on all documents.
Latencies and failures are drawn from RNGs seeded per document and step, so a run with the
same ``seed`` fails the same way whatever the scheduling.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from rh_parallel import (
    LLM,
    Agent,
    CircuitBreaker,
    ExecutionEvent,
    ExecutionResult,
    ExecutionState,
    RetryPolicy,
    Tool,
)

__all__ = ["DemoConfig", "DemoReport", "run_workflow"]


@dataclass(frozen=True)
class DemoConfig:
    docs: int = 12
    workers: int = 4
    fail_rate: float = 0.1
    seed: int = 7
    latency: float = 0.25  # mean seconds of one simulated call
    round: int = 0  # which repetition of the workflow (for --duration)


@dataclass
class DemoReport:
    """What one run of the workflow produced; ``results`` come from the documents' group."""

    results: list[ExecutionResult] = field(default_factory=list)
    summary: ExecutionResult | None = None

    @property
    def completed(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.completed


class DocumentInput(BaseModel):
    doc_id: str


class TextInput(BaseModel):
    doc_id: str
    step: str


class Nothing(BaseModel):
    pass


class SimulatedFailure(RuntimeError):
    """A failure the demo injects on purpose."""


class UpstreamUnavailable(ConnectionError):
    """The flaky external API did not answer."""


def _rng(config: DemoConfig, *parts: object) -> random.Random:
    return random.Random(":".join(map(str, (config.seed, config.round, *parts))))


async def _simulate(config: DemoConfig, rng: random.Random, scale: float = 1.0) -> None:
    await asyncio.sleep(rng.uniform(0.3, 1.7) * config.latency * scale)


def build_actors(config: DemoConfig, breaker: CircuitBreaker) -> dict[str, ExecutionEvent]:
    """The demo's events, closed over its configuration and shared breaker."""
    attempts: dict[str, int] = {}

    async def llm_call(data: TextInput, ctx: Any, state: ExecutionState) -> str:
        await _simulate(config, _rng(config, data.doc_id, data.step), 0.6)
        return f"{data.step} of {data.doc_id}"

    async def enrich(data: TextInput, ctx: Any, state: ExecutionState) -> dict[str, str]:
        key = data.doc_id
        attempts[key] = attempts.get(key, 0) + 1
        rng = _rng(config, key, "enrich", attempts[key])
        await _simulate(config, rng, 0.4)
        if rng.random() < config.fail_rate * 2:
            raise UpstreamUnavailable(f"search-api did not answer for {key}")
        return {"doc": key, "related": f"{rng.randint(1, 9)} documents"}

    summarize = ExecutionEvent(
        actor=LLM(name="summarizer-small", input_model=TextInput, handler=llm_call)
    )
    classify = ExecutionEvent(
        actor=LLM(name="classifier-small", input_model=TextInput, handler=llm_call)
    )
    search = ExecutionEvent(actor=Tool(name="search_api", input_model=TextInput, handler=enrich))
    retry = RetryPolicy(
        max_attempts=3, initial_delay=0.05, backoff=2.0, retry_on=(UpstreamUnavailable,)
    )

    async def process_document(
        data: DocumentInput, ctx: Any, state: ExecutionState
    ) -> dict[str, Any]:
        rng = _rng(config, data.doc_id, "parse")
        await _simulate(config, rng, 0.5)
        if rng.random() < config.fail_rate:
            raise SimulatedFailure(f"could not parse {data.doc_id}")
        async with state.parallel(
            max_workers=3, name=f"analyze {data.doc_id}", retry=retry, circuit_breaker=breaker
        ) as steps:
            for step, event in (("summary", summarize), ("labels", classify), ("related", search)):
                steps.add(step, event(TextInput(doc_id=data.doc_id, step=step), ctx, state))
        found = await steps.gather_dict()
        return {
            name: r.result if r.ok else f"unavailable ({r.error_type})" for name, r in found.items()
        }

    async def aggregate(data: Nothing, ctx: Any, state: ExecutionState) -> str:
        await _simulate(config, _rng(config, "aggregate"), 0.3)
        return "report ready"

    process = ExecutionEvent(
        actor=Tool(name="process_document", input_model=DocumentInput, handler=process_document)
    )
    report = ExecutionEvent(actor=Tool(name="aggregate", input_model=Nothing, handler=aggregate))
    return {"process": process, "aggregate": report}


async def run_workflow(
    state: ExecutionState, config: DemoConfig, breaker: CircuitBreaker
) -> DemoReport:
    """Run the orchestrator once; returns the documents' results and the aggregation's."""
    events = build_actors(config, breaker)
    report = DemoReport()

    async def orchestrate(data: Nothing, ctx: Any, inner: ExecutionState) -> str:
        docs = [f"doc-{n:02d}" for n in range(1, config.docs + 1)]
        async with inner.parallel(max_workers=config.workers, name="Document Processing") as p:
            for doc in docs:
                p.add(doc, events["process"](DocumentInput(doc_id=doc), ctx, inner))
            p.add("aggregate", events["aggregate"](Nothing(), ctx, inner), depends_on=docs)
        results = await p.gather_dict()
        report.results = [results[doc] for doc in docs]
        report.summary = results["aggregate"]
        return f"{report.completed}/{len(docs)} documents processed"

    orchestrator = ExecutionEvent(
        actor=Agent(name="orchestrator", input_model=Nothing, handler=orchestrate)
    )
    await orchestrator(Nothing(), {"run": config.round}, state)
    return report
