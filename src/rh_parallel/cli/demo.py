"""``rh-parallel demo``: run the simulated workflow and print what happened."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from rh_parallel import CircuitBreaker, EventBus, ExecutionState, ParallelEventPrinter
from rh_parallel.cli.workflow import DemoConfig, DemoReport, run_workflow
from rh_parallel.console import MODES
from rh_parallel.telemetry import configure

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
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="progress",
        help="how to print the run (default progress)",
    )
    parser.add_argument("--summary", action="store_true", help="print totals per group at the end")
    telemetry = parser.add_argument_group("telemetry")
    telemetry.add_argument(
        "--otlp-endpoint",
        default=None,
        help="export spans to this OTLP collector, e.g. http://localhost:4318 "
        "(default: OTEL_EXPORTER_OTLP_ENDPOINT; none: spans stay in-process)",
    )
    telemetry.add_argument(
        "--otlp-protocol",
        choices=("grpc", "http/protobuf"),
        default=None,
        help="OTLP protocol (default: OTEL_EXPORTER_OTLP_PROTOCOL, then http/protobuf)",
    )
    telemetry.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics on this port (e.g. 9464) while the demo runs",
    )
    telemetry.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        help="address of the metrics endpoint (default 127.0.0.1; 0.0.0.0 in a container)",
    )
    telemetry.add_argument(
        "--no-telemetry", action="store_true", help="run with no observers at all"
    )
    return parser.parse_args(list(argv))


def print_report(report: DemoReport, elapsed: float, mode: str, out: TextIO) -> None:
    """The run's outcome, counted from the results themselves."""
    aggregate = report.summary.status.value if report.summary is not None else "missing"
    if mode == "json":
        record = {
            "event": "demo_report",
            "completed": report.completed,
            "failed": report.failed,
            "total": len(report.results),
            "aggregate": aggregate,
            "seconds": round(elapsed, 3),
        }
        out.write(json.dumps(record) + "\n")
        return
    for result in report.results:
        if not result.ok:
            out.write(f"  failed {result.name}: {result.error_type}: {result.error_message}\n")
    out.write(
        f"documents: {report.completed} completed, {report.failed} failed, "
        f"{len(report.results)} total in {elapsed:.2f}s; aggregate {aggregate}\n"
    )


async def run(args: argparse.Namespace) -> int:
    bus = EventBus()
    printer = ParallelEventPrinter(args.mode, file=sys.stdout)
    bus.subscribe(printer, name="printer")
    state = ExecutionState(event_bus=bus, observers=[] if args.no_telemetry else None)
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
            await bus.flush()
            print_report(report, time.perf_counter() - began, args.mode, sys.stdout)
            round_number += 1
            if not args.loop and time.monotonic() >= deadline:
                break
    finally:
        await state.aclose()
    if args.summary:
        printer.print_summary()
    return 0


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handle = None
    if not args.no_telemetry:
        handle = configure(
            service_name="rh-parallel-demo",
            endpoint=args.otlp_endpoint,
            protocol=args.otlp_protocol,
            metrics_port=args.metrics_port,
            metrics_addr=args.metrics_addr,
            export_timeout=2.0,
        )
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
    finally:
        if handle is not None:
            handle.shutdown(timeout=3.0)
