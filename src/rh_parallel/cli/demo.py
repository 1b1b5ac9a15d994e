"""``rh-parallel demo``: run the simulated workflow and print what happened."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from rh_parallel import CircuitBreaker, ExecutionState
from rh_parallel.cli.workflow import DemoConfig, DemoReport, run_workflow

__all__ = ["main", "parse_args"]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"--fail-rate takes a share from 0 to 1, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rh-parallel demo",
        description="A simulated agent workflow: an orchestrator fans out document processing, "
        "each document runs LLM calls and a flaky API in a nested group.",
    )
    parser.add_argument("--docs", type=_positive, default=12, help="documents (default 12)")
    parser.add_argument("--workers", type=_positive, default=4, help="max_workers (default 4)")
    parser.add_argument("--fail-rate", type=_fraction, default=0.1, help="share that fails")
    parser.add_argument("--seed", type=int, default=7, help="seed of latencies and failures")
    parser.add_argument("--latency", type=float, default=0.25, help="mean seconds per call")
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="keep running the workflow for this many seconds (traffic for dashboards)",
    )
    parser.add_argument("--loop", action="store_true", help="run until interrupted")
    return parser.parse_args(list(argv))


def print_report(report: DemoReport, elapsed: float, out: object = sys.stdout) -> None:
    write = out.write  # type: ignore[attr-defined]
    for result in report.results:
        mark = "ok  " if result.ok else "FAIL"
        detail = result.result if result.ok else f"{result.error_type}: {result.error_message}"
        write(f"  {mark} {result.name}: {detail}\n")
    if report.summary is not None:
        summary = report.summary
        write(
            f"  aggregate: {summary.status.value}"
            f"{'' if summary.ok else f' ({summary.error_message})'}\n"
        )
    write(
        f"documents: {report.completed} completed, {report.failed} failed, "
        f"{len(report.results)} total in {elapsed:.2f}s\n"
    )


async def run(args: argparse.Namespace) -> int:
    state = ExecutionState()
    breaker = CircuitBreaker("search-api", failure_threshold=5, recovery_timeout=2.0)
    deadline = time.monotonic() + args.duration
    round_number = 0
    try:
        while True:
            config = DemoConfig(
                args.docs, args.workers, args.fail_rate, args.seed, args.latency, round_number
            )
            began = time.perf_counter()
            report = await run_workflow(state, config, breaker)
            print_report(report, time.perf_counter() - began)
            round_number += 1
            if not args.loop and time.monotonic() >= deadline:
                break
    finally:
        await state.aclose()
    return 0


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
