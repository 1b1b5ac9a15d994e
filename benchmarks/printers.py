"""Printer throughput: 10,000 bus records through each mode, rendered to memory.

    python benchmarks/printers.py

Records are real ones: a run of 50 groups of 99 items (started + completed per item, plus the
groups' start and end records) is captured once, then replayed into each printer.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from typing import Any

from rh_parallel import EventBus, ExecutionState, ParallelEventPrinter
from rh_parallel.console import MODES
from rh_parallel.testing import RecordCapture


async def capture_records(groups: int = 50, items: int = 99) -> list[Any]:
    bus = EventBus()
    capture = RecordCapture(bus)
    state = ExecutionState(event_bus=bus, observers=[])
    for group in range(groups):
        async with state.parallel(max_workers=8, name=f"group-{group % 5}") as p:
            for index in range(items):
                p.add(f"item-{index}", asyncio.sleep(0, result=index))
    await bus.aclose()
    return capture.records


def main() -> int:
    records = asyncio.run(capture_records())
    print(f"{len(records)} records per mode, rendered to memory")
    print(f"{'mode':<10} {'records/s':>12}")
    for mode in MODES:
        printer = ParallelEventPrinter(mode, file=io.StringIO(), colour=False, unicode=True)
        began = time.perf_counter()
        for record in records:
            printer(record)
        elapsed = time.perf_counter() - began
        print(f"{mode:<10} {len(records) / elapsed:>12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
