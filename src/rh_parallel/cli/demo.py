"""``rh-parallel demo``: run the simulated workflow and print what happened.

It behaves like a Unix tool (statuses in :mod:`rh_parallel.cli.process`): ``| head -1`` stops
the run quietly (status 141), a closed stdout or a busy metrics port is one line on stderr,
and Ctrl-C or SIGTERM cancels the run, flushes telemetry and exits 130 or 143.

``--store PATH`` saves what completes under a run id (printed on stderr, or ``--run-id``);
the same command with ``--run-id`` again recovers it and runs only the rest. The demo's
failures are transient across runs (see :mod:`rh_parallel.cli.workflow`), so running a failed
command again gets further. ``--cache PATH`` serves the LLM calls from a result cache.

Spans go where ``--otlp-endpoint`` or the standard ``OTEL_*`` variables say (read by
:func:`rh_parallel.telemetry.configure`); with neither, they stay in-process. The service is
named by ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES``, else ``rh-parallel-demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import errno
import json
import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rh_parallel import CircuitBreaker, EventBus, ExecutionState, ParallelEventPrinter
from rh_parallel.cli.options import (
    EXIT_USAGE,
    OneLineParser,
    fraction,
    nonnegative_seconds,
    port,
    positive_int,
)
from rh_parallel.cli.options import run_id as run_id_option
from rh_parallel.cli.process import (
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_PIPE,
    Interrupted,
    Output,
    Signals,
    say,
)
from rh_parallel.cli.workflow import DemoConfig, DemoReport, run_workflow
from rh_parallel.console import MODES
from rh_parallel.store import SQLiteCache, SQLiteStore, StoreError
from rh_parallel.telemetry import TelemetryHandle, configure, start_metrics_server

__all__ = ["main", "parse_args"]

PROG = "rh-parallel demo"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = OneLineParser(
        prog=PROG,
        description="A simulated agent workflow: an orchestrator fans out document processing, "
        "each document runs LLM calls and a flaky API in a nested group.",
        epilog="Exit status: 0 done, 1 stdout closed or unwritable, 2 bad arguments, metrics "
        "port unavailable or a store that cannot be used, 130 Ctrl-C, 143 SIGTERM, 141 the "
        "reader of the output went away (e.g. | head). A second Ctrl-C exits at once.",
    )
    parser.add_argument("--docs", type=positive_int, default=12, help="documents (default 12)")
    parser.add_argument("--workers", type=positive_int, default=4, help="max_workers (default 4)")
    parser.add_argument("--fail-rate", type=fraction, default=0.1, help="share that fails")
    parser.add_argument("--seed", type=int, default=7, help="seed of latencies and failures")
    parser.add_argument(
        "--latency", type=nonnegative_seconds, default=0.25, help="mean seconds per call"
    )
    parser.add_argument(
        "--duration",
        type=nonnegative_seconds,
        default=0.0,
        help="keep running the workflow for this many seconds (traffic for dashboards)",
    )
    parser.add_argument("--loop", action="store_true", help="run until interrupted")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="how to print the run (default auto: live on a terminal, smart otherwise)",
    )
    parser.add_argument(
        "--executor",
        choices=("thread", "process", "ray"),
        default=None,
        help="add a CPU-bound parse-and-hash step per document, run in threads, a process "
        "pool or on Ray (ray needs the rh-parallel[ray] extra)",
    )
    parser.add_argument("--summary", action="store_true", help="print totals per group at the end")
    durable = parser.add_argument_group("durable runs")
    durable.add_argument(
        "--store",
        metavar="PATH",
        default=None,
        help="save completed items in this SQLite file under the run id (printed on stderr); "
        "run again with --run-id to resume: what completed is recovered, the rest runs",
    )
    durable.add_argument(
        "--run-id",
        type=run_id_option,
        default=None,
        help="the run to save or resume in --store (default: a fresh id)",
    )
    durable.add_argument(
        "--cache",
        metavar="PATH",
        default=None,
        help="serve the LLM calls from a result cache in this SQLite file (across runs)",
    )
    telemetry = parser.add_argument_group("telemetry")
    telemetry.add_argument(
        "--otlp-endpoint",
        default=None,
        help="export spans to this OTLP collector, e.g. http://localhost:4318 "
        "(default: the OTEL_* variables; with neither, spans stay in-process)",
    )
    telemetry.add_argument(
        "--otlp-protocol",
        choices=("grpc", "http/protobuf"),
        default=None,
        help="OTLP protocol (default: OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, then http/protobuf)",
    )
    telemetry.add_argument(
        "--metrics-port",
        type=port,
        default=None,
        help="serve Prometheus metrics on this port (e.g. 9464) while the demo runs; "
        "0 picks a free port and prints its address on stderr",
    )
    telemetry.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        help="address of the metrics endpoint (default 127.0.0.1; 0.0.0.0 in a container)",
    )
    telemetry.add_argument(
        "--no-telemetry", action="store_true", help="run with no observers at all"
    )
    args = parser.parse_args(list(argv))
    if args.no_telemetry and args.metrics_port is not None:
        parser.error("--metrics-port serves telemetry: it does not go with --no-telemetry")
    if args.run_id is not None and args.store is None:
        parser.error("--run-id names a run saved in a store: pass --store PATH with it")
    return args


@dataclass
class Durable:
    """The demo's run store and result cache (either may be absent), opened before the run
    and closed after it; ``resume`` is 0 for a new run, else the salt of its failures."""

    store: SQLiteStore | None = None
    cache: SQLiteCache | None = None
    run_id: str | None = None
    resume: int = 0

    def close(self) -> None:
        """Commit and close both (idempotent); a failure to commit is one line."""
        for backend in (self.store, self.cache):
            if backend is not None:
                try:
                    backend.close()
                except Exception as exc:
                    say(f"{PROG}: warning: {exc}")


def open_durable(args: argparse.Namespace) -> Durable:
    """Open ``--store`` and ``--cache``; ``StartupError`` (one line) when either cannot be
    used. Resuming a run of the store says so on stderr."""
    durable = Durable(run_id=args.run_id)
    try:
        if args.store is not None:
            durable.store = SQLiteStore(args.store)
            if args.run_id is not None:
                saved = {run.run_id: run.items for run in durable.store.runs()}
                if args.run_id in saved:
                    # a salt that changes as the run progresses: a third run does not draw
                    # the second one's failures again
                    durable.resume = max(1, saved[args.run_id])
                    say(f"{PROG}: resuming run {args.run_id}: completed items are recovered")
        if args.cache is not None:
            durable.cache = SQLiteCache(args.cache)
    except (StoreError, ValueError) as exc:
        durable.close()
        raise StartupError(str(exc)) from None
    except BaseException:
        durable.close()
        raise
    return durable


def print_report(
    report: DemoReport, elapsed: float, mode: str, out: TextIO, run_id: str | None = None
) -> None:
    """The run's outcome, counted from the results themselves (``completed`` includes the
    ``recovered`` documents, saved by an earlier run of the same run id)."""
    aggregate = report.summary.status.value if report.summary is not None else "missing"
    if mode == "json":
        record = {
            "event": "demo_report",
            "run_id": run_id,
            "completed": report.completed,
            "recovered": report.recovered,
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
    recovered = f" ({report.recovered} recovered)" if report.recovered else ""
    out.write(
        f"documents: {report.completed} completed{recovered}, {report.failed} failed, "
        f"{len(report.results)} total in {elapsed:.2f}s; aggregate {aggregate}\n"
    )


def make_executor(kind: str | None, workers: int) -> tuple[Any, Callable[[], None]]:
    """The executor of the demo's CPU-bound step (``--executor``), and how to release it."""
    if kind is None:
        return None, lambda: None
    if kind == "thread":
        threads = concurrent.futures.ThreadPoolExecutor(workers)
        return threads, lambda: threads.shutdown(wait=False, cancel_futures=True)
    if kind == "process":
        processes = concurrent.futures.ProcessPoolExecutor(min(workers, os.cpu_count() or 1))
        return processes, lambda: processes.shutdown(wait=False, cancel_futures=True)
    import ray

    from rh_parallel.ray import RayExecutor

    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    return RayExecutor(num_cpus=1), (ray.shutdown if started else lambda: None)


async def run(args: argparse.Namespace, out: TextIO, durable: Durable | None = None) -> int:
    """The workflow, once or repeatedly (``--duration``, ``--loop``), printed to ``out``.

    With ``durable``, the state saves to its store and reads its cache; the caller closes
    them after this returns (``state.aclose()`` here has committed what they queued).
    """
    durable = Durable() if durable is None else durable
    bus = EventBus()
    printer = ParallelEventPrinter(args.mode, file=out)
    bus.subscribe(printer, name="printer")
    state = ExecutionState(
        event_bus=bus,
        observers=[] if args.no_telemetry else None,
        run_id=durable.run_id,
        store=durable.store,
        cache=durable.cache,
    )
    if durable.store is not None and durable.run_id is None:
        resume = f"--store {shlex.quote(args.store)} --run-id {shlex.quote(state.run_id)}"
        say(f"{PROG}: run id {state.run_id} (resume with {resume})")
    breaker = CircuitBreaker("search-api", failure_threshold=5, recovery_timeout=2.0)
    deadline = time.monotonic() + args.duration
    round_number = 0
    executor, release = make_executor(args.executor, args.workers)
    try:
        while True:
            config = DemoConfig(
                args.docs,
                args.workers,
                args.fail_rate,
                args.seed,
                args.latency,
                round_number,
                resume=durable.resume,
                cacheable=durable.cache is not None,
                executor=executor,
            )
            began = time.perf_counter()
            report = await run_workflow(state, config, breaker)
            await bus.flush()
            print_report(report, time.perf_counter() - began, args.mode, out, state.run_id)
            round_number += 1
            if not args.loop and time.monotonic() >= deadline:
                break
    finally:
        try:
            await state.aclose()
        finally:
            await bus.aclose()
            printer.close()  # the live view's last frame, the cursor restored
            release()
    if args.summary:
        printer.print_summary()
    return EXIT_OK


async def supervise(
    args: argparse.Namespace, out: Output, signals: Signals, durable: Durable | None = None
) -> int:
    """Run the demo as a task that a signal or a lost stdout cancels; such a stop returns
    ``EXIT_OK`` here and :func:`main` turns it into the status its cause calls for."""
    loop = asyncio.get_running_loop()
    work = loop.create_task(run(args, out.as_text(), durable), name=PROG)
    signals.running(loop, work)
    out.on_lost = work.cancel  # written from this loop's tasks: no hand-off needed
    try:
        return await work
    except asyncio.CancelledError:
        if work.cancelled() and (signals.received is not None or out.failure is not None):
            return EXIT_OK
        raise
    finally:
        out.on_lost = None
        signals.finishing()


class StartupError(Exception):
    """Telemetry, the store or the cache could not start as asked: one line for the user,
    status 2."""


def _bind_error(port_number: int, addr: str, exc: OSError) -> str:
    code = exc.errno
    if code == errno.EADDRINUSE:
        return f"port {port_number} on {addr} is in use; pass --metrics-port with a free port"
    if code == errno.EACCES:
        return (
            f"no permission to serve port {port_number} on {addr}; "
            "pass --metrics-port with a port above 1023"
        )
    reason = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror) or code == errno.EADDRNOTAVAIL:
        return (
            f"cannot serve metrics on {addr}: {reason}; "
            "pass --metrics-addr with an address of this machine"
        )
    return f"cannot serve metrics on {addr} port {port_number}: {reason}"


# The variables that say where spans go. With none of them and no --otlp-endpoint, the demo
# keeps its spans in-process instead of trying the OTLP default of localhost:4318.
EXPORT_VARIABLES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def exports_spans(args: argparse.Namespace) -> bool:
    """Whether the demo exports its spans: ``--otlp-endpoint`` or one of
    :data:`EXPORT_VARIABLES` set (what they say is for :func:`configure` to read)."""
    return args.otlp_endpoint is not None or any(
        os.environ.get(name, "").strip() for name in EXPORT_VARIABLES
    )


def start_telemetry(args: argparse.Namespace) -> TelemetryHandle | None:
    """Configure the SDK and, when asked, the metrics endpoint; ``StartupError`` if either
    cannot be set up as asked (a busy port, an unknown address). An invalid ``OTEL_*``
    variable is a warning from :func:`configure` and its default, never a failed start."""
    if args.no_telemetry:
        return None
    server = None
    if args.metrics_port is not None:
        # started here rather than by configure(), so a bind error is told apart from the rest
        try:
            server = start_metrics_server(args.metrics_port, args.metrics_addr)
        except OSError as exc:
            raise StartupError(_bind_error(args.metrics_port, args.metrics_addr, exc)) from None
        if args.metrics_port == 0:
            say(f"{PROG}: serving metrics on {server.url}")
    try:
        handle = configure(
            service_name="rh-parallel-demo",  # the fallback: OTEL_SERVICE_NAME wins
            endpoint=args.otlp_endpoint,
            protocol=args.otlp_protocol,
            traces_exporter=None if exports_spans(args) else "none",
        )
    except ValueError as exc:
        if server is not None:
            server.close()
        raise StartupError(f"telemetry: {exc}") from None
    handle.metrics_server = server
    return handle


def main(argv: Sequence[str]) -> int:
    """Parse, start telemetry, run, flush; returns the exit status (see the module's)."""
    args = parse_args(argv)
    if sys.stdout is None:
        say(f"{PROG}: error: standard output is closed; redirect it (e.g. >/dev/null)")
        return EXIT_OUTPUT
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = Output(sys.stdout)
    signals = Signals()
    signals.install()
    handle = None
    durable = None
    status = EXIT_OK
    try:
        durable = open_durable(args)
        handle = start_telemetry(args)
        status = asyncio.run(supervise(args, out, signals, durable))
    except StartupError as exc:
        say(f"{PROG}: error: {exc}")
        return EXIT_USAGE
    except Interrupted:
        pass  # a signal during start-up: nothing ran; the status says which signal
    finally:
        signals.finishing()
        try:
            if durable is not None:
                durable.close()  # after the run's state.aclose(), which committed
        finally:
            try:
                if handle is not None:
                    handle.shutdown(timeout=3.0)
            finally:
                signals.uninstall()
    if signals.status is not None:
        return signals.status
    if out.pipe_closed:
        return EXIT_PIPE
    if out.failure is not None:
        reason = out.failure.strerror or str(out.failure)
        say(f"{PROG}: error: cannot write to standard output: {reason}")
        return EXIT_OUTPUT
    return status
