"""``rh-parallel bench``: per-item overhead of rh-parallel beside bare asyncio and aiometer.

Every contender runs the same workload (N trivial coroutines under a concurrency limit) in the
same process, interleaved round by round, and the median per-item time is reported with its
ratio to ``asyncio.gather`` + semaphore. Machines are shared and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

__all__ = ["Contender", "contenders", "main", "measure"]

Contender = tuple[str, Callable[[int, int], Coroutine[Any, Any, None]]]


async def _trivial() -> int:
    return 1


async def gather_semaphore(n: int, limit: int) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def bounded() -> int:
        async with semaphore:
            return await _trivial()

    await asyncio.gather(*(bounded() for _ in range(n)))


async def taskgroup_semaphore(n: int, limit: int) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def bounded() -> int:
        async with semaphore:
            return await _trivial()

    async with asyncio.TaskGroup() as group:
        for _ in range(n):
            group.create_task(bounded())


def _aiometer() -> Contender | None:
    try:
        import aiometer
    except ImportError:
        return None

    async def run(n: int, limit: int) -> None:
        await aiometer.run_all([_trivial for _ in range(n)], max_at_once=limit)

    return ("aiometer.run_all", run)


def _rh_parallel(label: str, make_state: Callable[[], Any]) -> Contender:
    async def run(n: int, limit: int) -> None:
        state = make_state()
        async with state.parallel(max_workers=limit, name="bench") as group:
            for _ in range(n):
                group.add(_trivial())
        await state.aclose()

    return (label, run)


def contenders(telemetry: bool = True) -> list[Contender]:
    """The baselines, then rh-parallel with no observers and, optionally, with telemetry."""
    from rh_parallel import ExecutionState

    chosen: list[Contender | None] = [
        ("asyncio.gather+semaphore", gather_semaphore),
        ("TaskGroup+semaphore", taskgroup_semaphore),
        _aiometer(),
        _rh_parallel("rh-parallel (no observers)", lambda: ExecutionState(observers=[])),
    ]
    if telemetry:
        chosen.extend(_telemetry_contenders())
    return [c for c in chosen if c is not None]


def _telemetry_contenders() -> list[Contender]:
    try:
        from rh_parallel.telemetry.bench import telemetry_contenders
    except ImportError:
        return []
    return [_rh_parallel(label, factory) for label, factory in telemetry_contenders()]


def measure(chosen: Sequence[Contender], n: int, limit: int, rounds: int) -> dict[str, float]:
    """Median seconds per item for each contender, interleaved round by round."""
    samples: dict[str, list[float]] = {name: [] for name, _ in chosen}
    for _ in range(rounds):
        for name, run in chosen:
            gc.collect()
            began = time.perf_counter()
            asyncio.run(run(n, limit))
            samples[name].append((time.perf_counter() - began) / n)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(
    per_item: dict[str, float],
    baseline: str = "asyncio.gather+semaphore",
    engine: str = "rh-parallel (no observers)",
) -> str:
    """A table: per-item time, its ratio to ``baseline`` and, for the telemetry rows, to the
    engine without observers (the cost of telemetry itself)."""
    base = per_item[baseline]
    bare = per_item.get(engine)
    lines = [f"{'contender':<44} {'us/item':>9} {'vs gather':>10} {'vs engine':>10}"]
    for name, seconds in per_item.items():
        versus_engine = (
            f"{seconds / bare:>9.2f}x" if bare and name.startswith("rh-parallel (") else ""
        )
        lines.append(
            f"{name:<44} {seconds * 1e6:>9.2f} {seconds / base:>9.2f}x {versus_engine:>10}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rh-parallel bench", description=__doc__)
    parser.add_argument("--items", type=int, default=20_000, help="items per run")
    parser.add_argument("--limit", type=int, default=100, help="concurrency limit")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--no-telemetry", action="store_true", help="skip telemetry contenders")
    args = parser.parse_args(argv)
    per_item = measure(contenders(not args.no_telemetry), args.items, args.limit, args.rounds)
    print(f"{args.items} trivial items, limit {args.limit}, median of {args.rounds} rounds")
    print(report(per_item))
    return 0
