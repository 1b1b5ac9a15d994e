"""How fast the run stores persist completed items, and what a save costs the event loop.

python benchmarks/store.py [--items 50000] [--rounds 3]

For SQLiteStore: N saves of small JSON values (as the executor makes them, one per completed
item) then ``close()``; "persisted/s" is N over the time from the first save until ``close()``
returned (everything committed), "save µs" the cost of one ``save`` on the caller's thread (the
event loop in a run). For MemoryStore only the save cost is meaningful. The best of the rounds
is shown. Target: SQLiteStore persists >= 20,000 items/s.

With ``--json``, one JSON object on standard output instead of the table (for
benchmarks/report.py), and exit status 0 whether the target is met or not.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rh_parallel.store import MemoryStore, SavedItem, SQLiteStore

TARGET = 20_000


def _items(count: int, run_id: str) -> list[SavedItem]:
    now = time.time()
    return [
        SavedItem(
            run_id=run_id,
            address=f"ingest/{i // 100}/{i}",
            parent=f"ingest/{i // 100}",
            name="fetch",
            fingerprint=f"{i:016x}",
            value={"doc": i, "title": f"document {i}", "tokens": 1234, "ok": True},
            attempts=1,
            execution_time=0.012,
            saved_at=now,
        )
        for i in range(count)
    ]


def bench_sqlite(
    count: int, directory: Path, round_: int, group: int | None
) -> tuple[float, float, int]:
    """(items persisted per second, µs per save on the caller's thread, commits).

    ``group``: ``flush()`` after that many saves and let the writer run (sleeps 0.1 ms),
    as the executor does when a group ends, so commits are small and many.
    """
    items = _items(count, f"bench-{round_}")
    path = directory / f"runs-{round_}-{group}.db"
    store = SQLiteStore(path)
    start = time.perf_counter()
    if group is None:
        for item in items:
            store.save(item)
    else:
        for i, item in enumerate(items, 1):
            store.save(item)
            if i % group == 0:
                store.flush()
                time.sleep(0.0001)
    saved = time.perf_counter()
    store.close()
    done = time.perf_counter()
    commits = store._writer.batches
    check = SQLiteStore(path)
    persisted = check.runs()[0].items
    check.close()
    if persisted != count:
        raise SystemExit(f"only {persisted} of {count} items were persisted")
    return count / (done - start), (saved - start) / count * 1e6, commits


def bench_memory(count: int) -> float:
    """µs per save."""
    items = _items(count, "bench")
    store = MemoryStore()
    start = time.perf_counter()
    for item in items:
        store.save(item)
    return (time.perf_counter() - start) / count * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, group in (("SQLiteStore", None), ("  flush/100", 100)):
            runs = [bench_sqlite(args.items, Path(tmp), r, group) for r in range(args.rounds)]
            rows.append((label, *max(runs)))
    memory = min(bench_memory(args.items) for _ in range(args.rounds))
    if args.json:
        sqlite = [
            {"label": label.strip(), "persisted_per_second": rate, "save_us": save_us,
             "commits": commits}
            for label, rate, save_us, commits in rows
        ]  # fmt: skip
        data = {"items": args.items, "rounds": args.rounds, "target": TARGET}
        print(json.dumps(data | {"sqlite": sqlite, "memory_save_us": memory}))
        return 0
    print(f"{args.items:,} items, best of {args.rounds} rounds")
    print(f"{'backend':<12} {'persisted/s':>12} {'save µs':>9} {'commits':>8}")
    for label, rate, save_us, commits in rows:
        print(f"{label:<12} {rate:>12,.0f} {save_us:>9.2f} {commits:>8}")
    print(f"{'MemoryStore':<12} {'-':>12} {memory:>9.2f} {'-':>8}")
    slowest = min(rate for _, rate, _, _ in rows)
    verdict = "meets" if slowest >= TARGET else "MISSES"
    print(f"SQLiteStore {verdict} the target of {TARGET:,} items/s")
    return 0 if slowest >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
