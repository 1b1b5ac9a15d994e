"""CPU-bound items: sequential, threads, a process pool and Ray, on this machine.

A group of ``--items`` items of about ``--work`` seconds of pure-Python CPU work each runs
with each executor in one process; the table gives the wall time, the speedup over running
them one after another, and, for Ray, the overhead per item beyond the work itself (measured
with zero-work items). Needs the ``ray`` extra for the Ray rows.

python benchmarks/executors.py --items 40 --work 0.05

With ``--json``, one JSON object on standard output instead of the table (for
benchmarks/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from rh_parallel import ExecutionState


def burn(iterations: int) -> int:
    """Pure-Python CPU work (holds the GIL)."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def calibrate(seconds: float) -> int:
    """How many ``burn`` iterations take about ``seconds`` here."""
    n = 10_000
    while True:
        began = time.perf_counter()
        burn(n)
        took = time.perf_counter() - began
        if took > 0.02:
            return max(1, int(n * seconds / took))
        n *= 4


async def group(executor: Any, items: int, iterations: int, workers: int) -> None:
    state = ExecutionState(observers=[])
    async with state.parallel(workers, name="cpu", executor=executor) as p:
        for _ in range(items):
            p.add(burn, iterations)
    results = await p.gather()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:1]


def timed(run: Callable[[], None], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--work", type=float, default=0.05, help="seconds of CPU per item")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    iterations = calibrate(args.work)
    rows: dict[str, float] = {}
    rows["sequential (one after another)"] = timed(
        lambda: [burn(iterations) for _ in range(args.items)] and None, args.rounds
    )
    with concurrent.futures.ThreadPoolExecutor(cpus) as threads:
        rows[f"threads ({cpus})"] = timed(
            lambda: asyncio.run(group(threads, args.items, iterations, cpus)), args.rounds
        )
    with concurrent.futures.ProcessPoolExecutor(cpus) as processes:
        processes.submit(burn, 1).result()  # workers started outside the measurement
        rows[f"process pool ({cpus})"] = timed(
            lambda: asyncio.run(group(processes, args.items, iterations, cpus)), args.rounds
        )
    overhead = None
    if not args.no_ray:
        import ray

        from rh_parallel.ray import RayExecutor

        ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR")
        executor = RayExecutor(num_cpus=1)
        asyncio.run(group(executor, cpus * 2, 1, cpus))  # warm the workers
        rows[f"Ray ({cpus} CPUs)"] = timed(
            lambda: asyncio.run(group(executor, args.items, iterations, cpus)), args.rounds
        )
        empty = timed(lambda: asyncio.run(group(executor, 200, 0, cpus)), args.rounds)
        overhead = empty / 200 * cpus  # per item, as each of the cpus lanes sees it
        ray.shutdown()
    if args.json:
        data = {"items": args.items, "work": args.work, "rounds": args.rounds, "cpus": cpus}
        print(json.dumps(data | {"seconds": rows, "ray_overhead": overhead}))
        return
    base = rows["sequential (one after another)"]
    print(
        f"{args.items} items of ~{args.work * 1000:.0f} ms CPU each, {cpus} cores, median of "
        f"{args.rounds}"
    )
    print(f"{'executor':<34} {'seconds':>8} {'speedup':>8}")
    for name, seconds in rows.items():
        print(f"{name:<34} {seconds:>8.2f} {base / seconds:>7.2f}x")
    if overhead is not None:
        print(f"Ray overhead per item (zero-work items): {overhead * 1000:.2f} ms")


if __name__ == "__main__":
    main()
