"""A durable run resumed after a failure: what completed is recovered, only the rest runs.

The first run summarizes eight documents with a ``SQLiteStore`` under a run id. The upstream
service is down for doc-3 and doc-6, so those two fail. The second run uses the same store and
run id: the six completed summaries come back from the store with status ``recovered`` (their
handler does not run: no call, no slot, no retry), and only doc-3 and doc-6 run.

    python examples/durable_resume.py        # both runs, one after the other (runs.db here)

Or in two processes, as after a real crash, with a run id of your own:

    python examples/durable_resume.py --run-id r1 --fail doc-3,doc-6   # two items fail
    python examples/durable_resume.py --run-id r1                      # only those two run

At least once, not exactly once: results are committed in batches (at most ``flush_interval``,
0.1 s by default, apart, and when a group ends), so an item that completed just before the
process was killed may not be saved yet, and runs again on resume. A handler with a side
effect must therefore be idempotent. Here each summary is also "sent" by writing
``outbox/<document>.txt``, keyed by the document: a second send replaces the note, it does not
add one.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rh_parallel import ExecutionEvent, ExecutionState, ResultStatus, Tool
from rh_parallel.store import SQLiteStore

DOCUMENTS = {f"doc-{n}": f"Text of document {n}, about topic {n % 3}." for n in range(8)}
OUTBOX = Path("outbox")


@dataclass
class Upstream:
    """The world this run meets: which documents the upstream fails, and what ran."""

    down_for: set[str]
    ran: list[str] = field(default_factory=list)  # handlers that really ran in this process


class Document(BaseModel):
    doc_id: str
    text: str


async def summarize_document(data: Document, upstream: Upstream, state: Any) -> str:
    upstream.ran.append(data.doc_id)
    await asyncio.sleep(0.02)  # the paid call
    if data.doc_id in upstream.down_for:
        raise ConnectionError(f"upstream down for {data.doc_id}")
    summary = f"summary of {data.doc_id}: {data.text[:24]}..."
    await asyncio.to_thread(send_note, data.doc_id, summary)  # file I/O off the event loop
    return summary


def send_note(doc_id: str, summary: str) -> None:
    """The side effect, idempotent: keyed by the document, so sending it twice is harmless."""
    OUTBOX.mkdir(exist_ok=True)
    (OUTBOX / f"{doc_id}.txt").write_text(summary + "\n")


summarize = ExecutionEvent(
    actor=Tool(name="summarize", input_model=Document, handler=summarize_document)
)


async def run_once(store_path: str, run_id: str | None, down_for: set[str]) -> tuple[str, bool]:
    """One run of the workflow: returns its run id and whether every item completed."""
    upstream = Upstream(down_for=down_for)
    with SQLiteStore(store_path) as store:
        async with ExecutionState(store=store, run_id=run_id) as state:
            async with state.parallel(max_workers=4, name="summaries") as p:
                for doc_id, text in DOCUMENTS.items():
                    # a named item: the name is part of the address the store matches on
                    p.add(doc_id, summarize(Document(doc_id=doc_id, text=text), upstream, state))
            results = await p.gather_dict()
        # leaving the state committed everything to the store
    recovered = [n for n, r in results.items() if r.status is ResultStatus.RECOVERED]
    failed = [f"{n}: {r.error_message}" for n, r in results.items() if not r.ok]
    print(f"  run id {state.run_id}")
    print(listing(f"recovered from {store_path}, not run", recovered))
    print(listing("ran", upstream.ran))
    print(listing("failed", failed))
    return state.run_id, not failed


def listing(label: str, names: list[str]) -> str:
    return f"  {label}: {len(names)}" + (f" ({', '.join(names)})" if names else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="runs.db", help="the SQLite run store (runs.db)")
    parser.add_argument(
        "--run-id", help="run once under this run id (the same id again resumes the run)"
    )
    parser.add_argument(
        "--fail",
        default=None,
        help="comma-separated documents the upstream fails in this run "
        "(default: doc-3,doc-6 in the first of the two runs, none with --run-id)",
    )
    args = parser.parse_args()
    if args.run_id is not None:  # one run, in this process
        down_for = set(args.fail.split(",")) if args.fail else set()
        _, ok = asyncio.run(run_once(args.store, args.run_id, down_for))
        if not ok:
            print(f"run the same command without --fail to resume run {args.run_id}")
        return 0 if ok else 1

    down_for = set((args.fail or "doc-3,doc-6").split(","))
    print(f"first run: the upstream is down for {', '.join(sorted(down_for))}")
    run_id, _ = asyncio.run(run_once(args.store, None, down_for))  # a fresh run id
    print("\nsecond run, same run id: the upstream is back")
    _, ok = asyncio.run(run_once(args.store, run_id, set()))
    print(f"\noutbox: {len(list(OUTBOX.iterdir()))} notes, one per document")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
