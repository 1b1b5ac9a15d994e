"""``rh-parallel bench``: per-item overhead of rh-parallel beside bare asyncio and aiometer.

Every contender runs the same workload (N trivial coroutines under a concurrency limit) in the
same process, interleaved round by round, and the median per-item time is reported with its
ratio to ``asyncio.gather`` + semaphore. Machines are shared and noisy: read the ratios.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from rh_parallel.cli.options import OneLineParser, positive_int
from rh_parallel.cli.process import EXIT_OUTPUT, Interrupted, Signals, say

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


async def taskgroup_per_group(n: int, limit: int) -> None:
    """``n`` one-item TaskGroups, one after another (the cost of a group itself)."""
    semaphore = asyncio.Semaphore(limit)

    async def bounded() -> int:
        async with semaphore:
            return await _trivial()

    for _ in range(n):
        async with asyncio.TaskGroup() as group:
            group.create_task(bounded())


def _rh_parallel_groups(label: str, make_state: Callable[[], Any]) -> Contender:
    async def run(n: int, limit: int) -> None:
        state = make_state()
        for _ in range(n):
            async with state.parallel(max_workers=limit, name="bench") as group:
                group.add(_trivial())
        await state.aclose()

    return (label, run)


def group_contenders() -> list[Contender]:
    """One-item groups: TaskGroup beside rh-parallel with no observers and with defaults."""
    from rh_parallel import ExecutionState

    return [
        ("TaskGroup+semaphore", taskgroup_per_group),
        _rh_parallel_groups("rh-parallel (no observers)", lambda: ExecutionState(observers=[])),
        _rh_parallel_groups("rh-parallel (default telemetry)", ExecutionState),
    ]


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


async def _watched(
    run: Callable[[int, int], Coroutine[Any, Any, None]],
    n: int,
    limit: int,
    signals: Signals | None,
) -> None:
    """One round of ``run``, in a task that the first signal cancels (see :class:`Signals`)."""
    task = asyncio.current_task()
    if signals is None or task is None:
        await run(n, limit)
        return
    signals.running(asyncio.get_running_loop(), task)
    try:
        await run(n, limit)
    finally:
        signals.idle()


def measure(
    chosen: Sequence[Contender], n: int, limit: int, rounds: int, signals: Signals | None = None
) -> dict[str, float]:
    """Median seconds per item for each contender, interleaved round by round.

    With ``signals``, a first SIGINT/SIGTERM cancels the round that is running (the
    ``CancelledError`` comes out of here) or interrupts between rounds."""
    samples: dict[str, list[float]] = {name: [] for name, _ in chosen}
    for _ in range(rounds):
        for name, run in chosen:
            gc.collect()
            began = time.perf_counter()
            asyncio.run(_watched(run, n, limit, signals))
            samples[name].append((time.perf_counter() - began) / n)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(
    per_item: dict[str, float],
    baseline: str = "TaskGroup+semaphore",
    engine: str = "rh-parallel (no observers)",
    unit: str = "us/item",
) -> str:
    """A table: time per unit, its ratio to ``baseline`` (TaskGroup + semaphore, the target's
    reference) and, for the rh-parallel rows, to the engine without observers (the cost of
    telemetry itself)."""
    base = per_item[baseline]
    bare = per_item.get(engine)
    lines = [f"{'contender':<44} {unit:>9} {'vs TaskGroup':>12} {'vs engine':>10}"]
    for name, seconds in per_item.items():
        versus_engine = (
            f"{seconds / bare:>9.2f}x" if bare and name.startswith("rh-parallel (") else ""
        )
        lines.append(
            f"{name:<44} {seconds * 1e6:>9.2f} {seconds / base:>11.2f}x {versus_engine:>10}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the table; exit statuses as in :mod:`rh_parallel.cli.process`."""
    parser = OneLineParser(prog="rh-parallel bench", description=__doc__)
    parser.add_argument("--items", type=positive_int, default=20_000, help="items per run")
    parser.add_argument("--limit", type=positive_int, default=100, help="concurrency limit")
    parser.add_argument("--rounds", type=positive_int, default=7, help="interleaved rounds")
    parser.add_argument("--no-telemetry", action="store_true", help="skip telemetry contenders")
    parser.add_argument(
        "--groups", type=positive_int, default=2_000, help="one-item groups per run"
    )
    args = parser.parse_args(argv)
    if sys.stdout is None:  # minutes of measuring for a table nobody can read
        say("rh-parallel bench: error: standard output is closed; redirect it (e.g. >file)")
        return EXIT_OUTPUT
    signals = Signals()  # Ctrl-C or SIGTERM: stop measuring, exit 130 / 143
    signals.install()
    try:
        chosen = contenders(not args.no_telemetry)
        per_item = measure(chosen, args.items, args.limit, args.rounds, signals)
        per_group = measure(group_contenders(), args.groups, 1, args.rounds, signals)
    except (Interrupted, asyncio.CancelledError):
        if signals.status is None:
            raise
        return signals.status
    finally:
        signals.uninstall()
    print(f"{args.items} trivial items, limit {args.limit}, median of {args.rounds} rounds")
    print(report(per_item))
    print(f"\n{args.groups} one-item groups, one after another, median of {args.rounds} rounds")
    print(report(per_group, unit="us/group"))
    return 0
