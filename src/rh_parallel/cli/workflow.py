"""The demo's simulated agent workflow: an orchestrator fanning out document processing.

Each document is a tool call that opens two nested groups at once: ``analyze``, two LLM calls
(summarize, classify), and ``search``, an enrichment call to a flaky external API guarded by a
retry policy and one circuit breaker shared by every document's search group (the breaker
guards that API only: an open breaker never rejects an LLM call). Group names are bounded (the
document is in the item that opens them, never in a group name, which becomes a metric label).
An aggregation step depends on all documents.
Latencies and failures are drawn from RNGs seeded per document and step, so a run with the
same ``seed`` fails the same way whatever the scheduling (the breaker aside: it counts failures
in the order they happen).

With a run store, a resumed run (``DemoConfig.resume`` > 0) mixes ``resume`` into those seeds:
its failures are transient, as real ones are, so running the same command again gets through
what failed before. What an item returns never depends on ``resume`` (nor on the attempt that
succeeded): a document's result is the same whichever run completed it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import string
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
    ResultStatus,
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
    resume: int = 0  # 0: a fresh run; else a salt of the failure draws of a resumed run
    cacheable: bool = False  # the LLM calls may be served from the state's cache
    executor: Any = None  # where the CPU-bound parse step runs (--executor); None: no such step


@dataclass
class DemoReport:
    """What one run of the workflow produced: the documents' results, the aggregation's,
    and the orchestrator's own.

    When the orchestrator itself was recovered (everything under it completed in an earlier
    run of this run id), its handler did not run: ``results`` and ``summary`` are then read
    from the summary it saved (see :func:`recovered_report`), every one ``recovered``.
    """

    results: list[ExecutionResult] = field(default_factory=list)
    summary: ExecutionResult | None = None
    orchestrator: ExecutionResult | None = None

    @property
    def completed(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.completed

    @property
    def recovered(self) -> int:
        """Documents saved by an earlier run of this run id (included in ``completed``)."""
        return sum(r.status is ResultStatus.RECOVERED for r in self.results)


_OK = frozenset({ResultStatus.COMPLETED.value, ResultStatus.RECOVERED.value})


def recovered_report(orchestrator: ExecutionResult) -> DemoReport:
    """The report of a run whose orchestrator was recovered, from the summary it returned
    (``{"documents": {name: status}, "aggregate": status}``); an unexpected value (a store
    written by another version of the demo) gives an empty report rather than an error."""
    value = orchestrator.result if isinstance(orchestrator.result, dict) else {}
    documents = value.get("documents")
    if not isinstance(documents, dict):
        documents = {}

    def result(name: str, status: object) -> ExecutionResult:
        if status in _OK:
            return ExecutionResult.success(None, name=name, status=ResultStatus.RECOVERED)
        message = f"ended {status} in the run that saved the orchestrator"
        return ExecutionResult.build(
            {"ok": False, "name": name, "status": ResultStatus.FAILED, "error_message": message}
        )

    report = DemoReport(orchestrator=orchestrator)
    report.results = [result(str(name), status) for name, status in documents.items()]
    if "aggregate" in value:
        report.summary = result("aggregate", value["aggregate"])
    return report


class Plan(BaseModel):
    """The orchestrator's input: what its saved result depends on (another ``--docs`` makes
    a resumed run's orchestrator run again instead of recovering a summary of other work)."""

    docs: int


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
    """The RNG of one latency-and-failure draw; a resumed run draws others."""
    salt = (f"resume {config.resume}",) if config.resume else ()
    return random.Random(":".join(map(str, (config.seed, config.round, *parts, *salt))))


def _value_rng(config: DemoConfig, *parts: object) -> random.Random:
    """The RNG of a value: the same in every run of a seed, resumed or not."""
    return random.Random(":".join(map(str, (config.seed, "value", *parts))))


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
        return {"doc": key, "related": f"{_value_rng(config, key).randint(1, 9)} documents"}

    cacheable = config.cacheable
    summarize = ExecutionEvent(
        actor=LLM(
            name="summarizer-small",
            model="gpt-4o-mini",
            provider="openai",
            input_model=TextInput,
            handler=llm_call,
            cacheable=cacheable,
        )
    )
    classify = ExecutionEvent(
        actor=LLM(
            name="classifier-small",
            model="gpt-4.1-nano",
            provider="openai",
            input_model=TextInput,
            handler=llm_call,
            cacheable=cacheable,
        )
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
        parsed = None
        if config.executor is not None:  # CPU-bound: shipped to threads, processes or Ray
            async with state.parallel(max_workers=1, name="parse", executor=config.executor) as cpu:
                cpu.add("parse_and_hash", parse_and_hash, data.doc_id, config.seed)
            (parsed,) = await cpu.gather()
            if not parsed.ok:
                raise parsed.error or SimulatedFailure(f"could not parse {data.doc_id}")
        # Two nested groups, run at once: the LLM calls, and the search API call behind its
        # retry policy and circuit breaker (which guards that API and nothing else). Their
        # names are bounded ("analyze", "search": they become metric labels); the document
        # is in the item that opens them (its address, its name in printers: doc-03 › analyze).
        async with (
            state.parallel(max_workers=2, name="analyze") as analyze,
            state.parallel(
                max_workers=1, name="search", retry=retry, circuit_breaker=breaker
            ) as lookup,
        ):
            for step, event in (("summary", summarize), ("labels", classify)):
                analyze.add(step, event(TextInput(doc_id=data.doc_id, step=step), ctx, state))
            lookup.add("related", search(TextInput(doc_id=data.doc_id, step="related"), ctx, state))
            texts, found = await asyncio.gather(analyze.gather_dict(), lookup.gather_dict())
        steps = {
            name: r.result if r.ok else f"unavailable ({r.error_type})"
            for name, r in (texts | found).items()
        }
        return steps if parsed is None else steps | {"parsed": parsed.result}

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
    """Run the orchestrator once; returns the documents' results and the aggregation's.

    The orchestrator returns a plain summary (``{"documents": {name: status}, "aggregate":
    status}``), which a run store can save: a resumed run whose orchestrator is recovered
    reports from it, since the handler that fills the report in does not run then.
    """
    events = build_actors(config, breaker)
    report = DemoReport()

    async def orchestrate(data: Plan, ctx: Any, inner: ExecutionState) -> dict[str, Any]:
        docs = [f"doc-{n:02d}" for n in range(1, data.docs + 1)]
        async with inner.parallel(max_workers=config.workers, name="Document Processing") as p:
            for doc in docs:
                p.add(doc, events["process"](DocumentInput(doc_id=doc), ctx, inner))
            p.add("aggregate", events["aggregate"](Nothing(), ctx, inner), depends_on=docs)
        results = await p.gather_dict()
        report.results = [results[doc] for doc in docs]
        report.summary = results["aggregate"]
        return {
            "documents": {doc: results[doc].status.value for doc in docs},
            "aggregate": report.summary.status.value,
        }

    orchestrator = ExecutionEvent(
        actor=Agent(name="orchestrator", input_model=Plan, handler=orchestrate)
    )
    outcome = await orchestrator(Plan(docs=config.docs), {"run": config.round}, state)
    if outcome.status is ResultStatus.RECOVERED:
        return recovered_report(outcome)
    report.orchestrator = outcome
    return report


def parse_and_hash(doc_id: str, seed: int, rounds: int = 20_000) -> dict[str, Any]:
    """The demo's CPU-bound step: make the document's text, split it into words and
    sentences, and hash it ``rounds`` times (pure Python: it holds a core). Module-level, so a
    process pool or Ray can ship it."""
    rng = random.Random(f"{seed}:{doc_id}:text")
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(3000)]
    text = " ".join(w + ("." if i % 12 == 11 else "") for i, w in enumerate(words))
    digest = text.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return {"words": len(words), "sentences": text.count("."), "sha256": digest.hex()[:16]}
