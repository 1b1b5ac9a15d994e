"""Printer cost: time per record in the subscriber, and CPU share at 10,000 records a second.

    python benchmarks/printers.py [--seconds 3] [--replays 5] [--groups 50] [--json]

Records are real ones: a top-level agent running 50 groups of 99 items one after another
(started + completed per item, plus the groups' and the agent's start and end records: 10,002
records) is captured once, then replayed.

1. Time per record: the records replayed 5 times into each mode's printer in a tight loop,
   rendered to memory. ``live`` draws on a fake terminal (a StringIO that says it is a tty,
   120 x 40) with the real clock (each replay is over before its first frame is due: this is
   the cost of a record alone); then the time to draw one frame, mid-run.
2. CPU share at 10k records/s: the records published on a real ``EventBus`` at 10,000 a
   second (100 every 10 ms) for ``--seconds``, the printer subscribed as in an application;
   the process CPU time of that run, less the CPU time of the same run with a subscriber
   that does nothing, over the wall time: the share of one core the printer costs. Dropped
   records (a subscriber that cannot keep up loses the oldest) are reported too.

``--replays`` and ``--groups`` shrink the run for a quick check. With ``--json``, one JSON
object on standard output instead of the tables (for benchmarks/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from rich.console import Console

from rh_parallel import Agent, EventBus, ExecutionEvent, ExecutionState, ParallelEventPrinter
from rh_parallel.console import MODES
from rh_parallel.testing import RecordCapture

RATE = 10_000  # records per second in the CPU-share run
BATCH = 100  # records published at a time (every BATCH / RATE seconds)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Plan(BaseModel):
    groups: int
    items: int


async def run_groups(plan: Plan, ctx: Any, state: ExecutionState) -> None:
    for group in range(plan.groups):
        async with state.parallel(max_workers=8, name=f"group-{group % 5}") as p:
            for index in range(plan.items):
                p.add(f"item-{index}", asyncio.sleep(0, result=index))


async def capture_records(groups: int = 50, items: int = 99) -> list[Any]:
    """The records of ``groups`` groups run one after another by a top-level agent (which
    keeps a live view up for the whole run, as an application's entry point would)."""
    bus = EventBus()
    capture = RecordCapture(bus)
    state = ExecutionState(event_bus=bus, observers=[])
    agent = ExecutionEvent(actor=Agent(name="batch", input_model=Plan, handler=run_groups))
    await agent(Plan(groups=groups, items=items), None, state)
    await bus.aclose()
    return capture.records


def make_printer(mode: str) -> ParallelEventPrinter:
    if mode != "live":
        return ParallelEventPrinter(mode, file=io.StringIO(), colour=False, unicode=True)
    out = FakeTerminal()
    console = Console(
        file=out,
        force_terminal=True,
        force_interactive=True,
        width=120,
        height=40,
        color_system="standard",
        markup=False,
        emoji=False,
        highlight=False,
    )
    return ParallelEventPrinter(mode, file=out, colour=True, unicode=True, console=console)


def time_per_record(mode: str, records: list[Any], rounds: int = 5) -> tuple[float, int]:
    """Seconds per record, the run's records replayed ``rounds`` times in a tight loop, and
    the frames drawn (live)."""
    printer = make_printer(mode)
    began = time.perf_counter()
    for _ in range(rounds):
        for record in records:
            printer(record)
    elapsed = time.perf_counter() - began
    printer.close()
    return elapsed / (rounds * len(records)), int(getattr(printer.renderer, "frames", 0))


def time_per_frame(records: list[Any], frames: int = 50) -> float:
    """Seconds to draw one frame of the live view mid-run (a group of 99 items open)."""
    printer = make_printer("live")
    for record in records[: len(records) // 2 + 50]:
        printer(record)
    renderer = printer.renderer
    began = time.perf_counter()
    for _ in range(frames):
        renderer._draw(time.monotonic())
    elapsed = time.perf_counter() - began
    printer.close()
    return elapsed / frames


async def publish_at_rate(
    records: list[Any], handler: Callable[[Any], None], seconds: float
) -> tuple[float, float, int]:
    """Publish ``records`` (cycled) at RATE a second for ``seconds`` to ``handler``;
    returns (CPU seconds, wall seconds, records dropped)."""
    bus = EventBus()
    bus.subscribe(handler, name="printer")
    loop = asyncio.get_running_loop()
    total = int(RATE * seconds)
    cpu, wall = time.process_time(), loop.time()
    start, sent = wall, 0
    while sent < total:
        for _ in range(BATCH):
            bus.publish(records[sent % len(records)])
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / RATE - loop.time()))
    await bus.aclose()
    return time.process_time() - cpu, loop.time() - wall, bus.dropped("printer")


def cpu_share(mode: str | None, records: list[Any], seconds: float) -> tuple[float, int, int]:
    """(CPU seconds per wall second, records dropped, frames) of ``mode``'s printer, or of
    a subscriber that does nothing when ``mode`` is None."""
    if mode is None:
        cpu, wall, dropped = asyncio.run(publish_at_rate(records, lambda record: None, seconds))
        return cpu / wall, dropped, 0
    printer = make_printer(mode)
    cpu, wall, dropped = asyncio.run(publish_at_rate(records, printer, seconds))
    printer.close()
    return cpu / wall, dropped, int(getattr(printer.renderer, "frames", 0))


def measure(seconds: float, replays: int, groups: int) -> dict[str, Any]:
    """Everything the tables show, as data (times in seconds, shares of one core)."""
    records = asyncio.run(capture_records(groups=groups))
    modes = [mode for mode in MODES if mode != "auto"]
    per_record = {mode: time_per_record(mode, records, replays)[0] for mode in modes}
    frame = time_per_frame(records)
    baseline, _, _ = cpu_share(None, records, seconds)
    shares = {}
    for mode in modes:
        share, dropped, frames = cpu_share(mode, records, seconds)
        shares[mode] = {"share": max(share - baseline, 0.0), "dropped": dropped, "frames": frames}
    return {
        "records": len(records),
        "replays": replays,
        "seconds": seconds,
        "rate": RATE,
        "per_record": per_record,
        "frame": frame,
        "baseline_share": baseline,
        "cpu_share": shares,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each 10k/s run")
    parser.add_argument("--replays", type=int, default=5, help="replays per mode (tight loop)")
    parser.add_argument("--groups", type=int, default=50, help="groups of 99 items captured")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not args.seconds > 0 or args.replays < 1 or args.groups < 1:
        parser.error("--seconds must be > 0, --replays and --groups >= 1")
    data = measure(args.seconds, args.replays, args.groups)
    if args.json:
        print(json.dumps(data))
        return 0
    print(
        f"{data['records']} records replayed {args.replays} times per mode "
        "(tight loop, rendered to memory)"
    )
    print(f"{'mode':<10} {'us/record':>10} {'records/s':>12}")
    for mode, seconds in data["per_record"].items():
        print(f"{mode:<10} {seconds * 1e6:>10.1f} {1 / seconds:>12,.0f}")
    frame = data["frame"]
    share = frame * 10  # at most 10 frames a second
    print(f"live: {frame * 1e3:.2f} ms to draw a frame (at most 10 a second: <= {share:.1%})")
    print()
    print(f"published on a bus at {RATE:,} records/s for {args.seconds:g}s")
    baseline = data["baseline_share"]
    print(f"{'mode':<10} {'CPU share':>10} {'dropped':>8} {'frames':>7}  (of one core, less")
    print(f"{'':<10} {'':>10} {'':>8} {'':>7}   {baseline:.1%} with a no-op subscriber)")
    for mode, row in data["cpu_share"].items():
        shown = str(row["frames"]) if mode == "live" else "-"
        print(f"{mode:<10} {row['share']:>10.1%} {row['dropped']:>8} {shown:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
