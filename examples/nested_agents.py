"""A nested agent workflow: an orchestrator agent, a group per document, one global limit.

The orchestrator is an ``Agent``. Its handler opens the group ``documents``, one item per
document. Each item is a document agent: it fetches the document (a tool call), then opens its
own group ``analyze`` of three calls that run in parallel (summarize and classify are LLM calls,
extract is a tool call) and reads their results by name. The orchestrator reads the documents'
reports by name too, and writes a digest (one more LLM call).

``ExecutionState(global_max_workers=3)`` bounds the items running at once across every group,
nested ones included. A document agent waiting for its ``analyze`` group gives its slot back
meanwhile, so the limit cannot deadlock (four document agents at once, three slots). The
calls are simulated (short sleeps), and the classification of ``doc-4`` fails once and is
retried, so the printer has something to say.

    python examples/nested_agents.py                      # the progress printer
    python examples/nested_agents.py --mode collapsed     # or realtime, smart, live
"""

from __future__ import annotations

import argparse
import asyncio
import zlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from rh_parallel import (
    LLM,
    Agent,
    EventBus,
    ExecutionEvent,
    ExecutionState,
    ParallelEventPrinter,
    RetryPolicy,
    Tool,
)

DOCUMENTS = {
    "doc-1": "Acme reported revenue up 12% in Europe and Japan.",
    "doc-2": "Acme opens a battery plant in Ohio in March.",
    "doc-3": "EU regulators asked Acme for more data on the Volta merger.",
    "doc-4": "Dayton warehouse fire stopped shipments for two days.",
    "doc-5": "Acme's board approved a dividend of 40 cents a share.",
    "doc-6": "Canadian customers praised the support team in the annual survey.",
}
GLOBAL_LIMIT = 3


@dataclass
class Calls:
    """Counts the simulated calls running at once, to show the global limit holding."""

    running: int = 0
    peak: int = 0
    total: int = 0
    failed_once: set[str] = field(default_factory=set)


CALLS = Calls()


async def call(what: str, doc_id: str) -> None:
    """A simulated tool or LLM call: 20-60 ms, the same for the same document every run."""
    CALLS.running += 1
    CALLS.total += 1
    CALLS.peak = max(CALLS.peak, CALLS.running)
    try:
        await asyncio.sleep(0.02 + zlib.crc32(f"{what}:{doc_id}".encode()) % 40 / 1000)
    finally:
        CALLS.running -= 1


# -- the leaf calls: tools and LLMs ----------------------------------------------------------


class Document(BaseModel):
    doc_id: str


class Text(BaseModel):
    doc_id: str
    text: str


async def fetch_text(data: Document, ctx: Any, state: ExecutionState) -> str:
    await call("fetch", data.doc_id)
    return DOCUMENTS[data.doc_id]


async def summarize_text(data: Text, ctx: Any, state: ExecutionState) -> str:
    await call("summarize", data.doc_id)
    return " ".join(data.text.split()[:5]) + " ..."


async def classify_text(data: Text, ctx: Any, state: ExecutionState) -> str:
    await call("classify", data.doc_id)
    if data.doc_id == "doc-4" and data.doc_id not in CALLS.failed_once:
        CALLS.failed_once.add(data.doc_id)
        raise ConnectionError("the model provider dropped the connection")  # retried
    return "finance" if any(w in data.text for w in ("revenue", "dividend")) else "operations"


async def extract_entities(data: Text, ctx: Any, state: ExecutionState) -> list[str]:
    await call("extract", data.doc_id)
    words = [word.strip(".,").removesuffix("'s") for word in data.text.split()]
    return [word for word in words if word[:1].isupper()]  # capitalized: a name


fetch = ExecutionEvent(actor=Tool(name="fetch", input_model=Document, handler=fetch_text))
summarize = ExecutionEvent(
    actor=LLM(
        name="summarize",
        model="gpt-4o-mini",
        provider="openai",
        input_model=Text,
        handler=summarize_text,
    )
)
classify = ExecutionEvent(
    actor=LLM(
        name="classify",
        model="gpt-4.1-nano",
        provider="openai",
        input_model=Text,
        handler=classify_text,
    )
)
extract = ExecutionEvent(actor=Tool(name="extract", input_model=Text, handler=extract_entities))


# -- the agents --------------------------------------------------------------------------------


class Report(BaseModel):
    doc_id: str
    summary: str
    topic: str
    entities: list[str]


async def analyze_document(data: Document, ctx: Any, state: ExecutionState) -> Report:
    """Fetch one document, then summarize, classify and extract it in parallel."""
    fetched = await fetch(data, ctx, state)  # a sequential tool call inside the agent
    if not fetched.ok:
        raise RuntimeError(f"could not fetch {data.doc_id}: {fetched.error_message}")
    text = Text(doc_id=data.doc_id, text=fetched.result)
    retry = RetryPolicy(max_attempts=3, initial_delay=0.01)
    # a bounded group name ("analyze", not the document's id): names become metric labels
    async with state.parallel(max_workers=3, name="analyze", retry=retry) as p:
        p.add("summary", summarize(text, ctx, state))
        p.add("topic", classify(text, ctx, state))
        p.add("entities", extract(text, ctx, state))
    results = await p.gather_dict()  # by name: {"summary": ..., "topic": ..., "entities": ...}
    failed = [name for name, result in results.items() if not result.ok]
    if failed:
        raise RuntimeError(f"{data.doc_id}: {', '.join(failed)} failed")
    return Report(
        doc_id=data.doc_id,
        summary=results["summary"].result,
        topic=results["topic"].result,
        entities=results["entities"].result,
    )


document_agent = ExecutionEvent(
    actor=Agent(
        name="document_agent",
        description="Reads one document",
        input_model=Document,
        output_model=Report,
        handler=analyze_document,
    )
)


class Batch(BaseModel):
    doc_ids: list[str]


class Digest(BaseModel):
    reports: dict[str, Report]
    digest: str


async def write_digest(data: Text, ctx: Any, state: ExecutionState) -> str:
    await call("digest", data.doc_id)
    return f"{data.text.count(';') + 1} documents: {data.text}"


digest = ExecutionEvent(
    actor=LLM(
        name="digest", model="gpt-4o", provider="openai", input_model=Text, handler=write_digest
    )
)


async def orchestrate(data: Batch, ctx: Any, state: ExecutionState) -> Digest:
    """One document agent per document, in parallel; then a digest of their reports."""
    async with state.parallel(max_workers=4, name="documents") as p:
        for doc_id in data.doc_ids:
            p.add(doc_id, document_agent(Document(doc_id=doc_id), ctx, state))
    by_name = await p.gather_dict()
    # a document whose agent failed is left out (by_name[doc_id].error_message says why)
    reports = {name: result.result for name, result in by_name.items() if result.ok}
    topics = "; ".join(f"{name}: {report.topic}" for name, report in reports.items())
    written = await digest(Text(doc_id="all", text=topics), ctx, state)
    return Digest(reports=reports, digest=str(written.result))


orchestrator = ExecutionEvent(
    actor=Agent(
        name="orchestrator",
        description="Fans the documents out to document agents",
        input_model=Batch,
        output_model=Digest,
        handler=orchestrate,
    )
)


async def main(mode: str) -> None:
    bus = EventBus()
    bus.subscribe(ParallelEventPrinter(mode))
    async with ExecutionState(event_bus=bus, global_max_workers=GLOBAL_LIMIT) as state:
        result = await orchestrator(Batch(doc_ids=list(DOCUMENTS)), None, state)
    # leaving the block delivered every record: the printer is done
    if not result.ok:
        raise SystemExit(f"the orchestrator failed: {result.error_message}")
    answer: Digest = result.result
    print()
    for doc_id, report in answer.reports.items():
        print(f"{doc_id}: [{report.topic}] {report.summary} entities: {', '.join(report.entities)}")
    print(f"digest: {answer.digest}")
    print(
        f"{CALLS.total} calls ({len(CALLS.failed_once)} failed once and was retried), "
        f"at most {CALLS.peak} at once (global_max_workers={GLOBAL_LIMIT})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode",
        default="progress",
        choices=("progress", "collapsed", "smart", "realtime", "live"),
        help="how the printer draws the run (default: progress)",
    )
    asyncio.run(main(parser.parse_args().mode))
