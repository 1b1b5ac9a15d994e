"""What durable runs cost per item: completed items with and without a store, recovered ones.

The same group (N trivial async functions added as ``p.add(fn, i)``, so each has a
fingerprint) runs under each contender in one process, interleaved round by round; the table
gives the median per-item time and its ratio to the engine without a store. The target: a
recovered item costs no more than a completed one.

python benchmarks/recovery.py --items 20000 --rounds 7

With ``--json``, one JSON object on standard output instead of the table (for
benchmarks/report.py): the median seconds per item of each contender.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rh_parallel import ExecutionState
from rh_parallel.store import MemoryStore, SQLiteStore


async def trivial(i: int) -> int:
    return i


async def one_group(state: ExecutionState, n: int) -> None:
    async with state.parallel(100, name="bench") as p:
        for i in range(n):
            p.add(trivial, i)
    await state.aclose()


def run_seconds(make_state: Callable[[], ExecutionState], n: int) -> float:
    gc.collect()
    state = make_state()
    began = time.perf_counter()
    asyncio.run(one_group(state, n))
    return time.perf_counter() - began


def measure(n: int, rounds: int) -> dict[str, float]:
    """Median seconds per item of each contender, interleaved round by round."""
    with tempfile.TemporaryDirectory() as tmp:
        memory = MemoryStore()
        sqlite = SQLiteStore(Path(tmp) / "bench.db")
        for store in (memory, sqlite):  # the run that the resumed contenders recover
            run_seconds(lambda s=store: ExecutionState(observers=[], store=s, run_id="saved"), n)
        sqlite.sync()
        contenders: dict[str, Callable[[], ExecutionState]] = {
            "completed, no store": lambda: ExecutionState(observers=[]),
            "completed, saved to MemoryStore": lambda: ExecutionState(observers=[], store=memory),
            "completed, saved to SQLiteStore": lambda: ExecutionState(observers=[], store=sqlite),
            "recovered from MemoryStore": lambda: ExecutionState(
                observers=[], store=memory, run_id="saved"
            ),
            "recovered from SQLiteStore": lambda: ExecutionState(
                observers=[], store=sqlite, run_id="saved"
            ),
        }
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, make_state in contenders.items():
                samples[name].append(run_seconds(make_state, n) / n)
        sqlite.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.items < 1 or args.rounds < 1:
        parser.error("--items and --rounds must be >= 1")
    n = args.items
    per_item = measure(n, args.rounds)
    if args.json:
        print(json.dumps({"items": n, "rounds": args.rounds, "per_item": per_item}))
        return
    base = per_item["completed, no store"]
    print(f"{n} items, one group, median of {args.rounds} rounds")
    print(f"{'contender':<36} {'us/item':>9} {'vs no store':>12}")
    for name, seconds in per_item.items():
        print(f"{name:<36} {seconds * 1e6:>9.2f} {seconds / base:>11.2f}x")


if __name__ == "__main__":
    main()
