"""Work for executor tests: module-level functions, so process pools and Ray can ship them.

Concurrency is counted from inside the workers through a locked file, which every process
(and Ray worker) on this machine sees.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from typing import Any

from opentelemetry import trace


def square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


async def async_square(x: int) -> int:
    await asyncio.sleep(0)
    return x * x


def spin(seconds: float) -> int:
    """Pure-Python CPU work that holds the worker for about ``seconds``."""
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        n += 1
    return n


def counted(path: str, hold: float) -> int:
    """Count this call in the file at ``path`` while it runs; return how many ran at once."""
    with open(path, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        running, peak = map(int, f.read().split())
        running += 1
        peak = max(peak, running)
        f.seek(0), f.truncate(), f.write(f"{running} {peak}")
        fcntl.flock(f, fcntl.LOCK_UN)
    time.sleep(hold)
    with open(path, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        running, peak = map(int, f.read().split())
        f.seek(0), f.truncate(), f.write(f"{running - 1} {peak}")
        fcntl.flock(f, fcntl.LOCK_UN)
    return peak


def fails_until(path: str, attempts: int) -> int:
    """Fail the first ``attempts - 1`` calls (counted in a file across processes)."""
    with open(path, "a+") as f:
        f.write("x")
        f.seek(0)
        calls = len(f.read())
    if calls < attempts:
        raise ConnectionError(f"call {calls} fails")
    return calls


def dies(code: int) -> None:
    os._exit(code)


def trace_ids() -> tuple[str, str]:
    """The trace context the worker runs under (attached from the item's span)."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def node_and_square(x: int, hold: float) -> tuple[str, int]:
    """The Ray node this runs on, and ``x * x`` (held ``hold`` seconds, so both nodes work)."""
    import ray

    time.sleep(hold)
    return ray.get_runtime_context().get_node_id(), x * x


async def ticks_during(work: Any, period: float = 0.005) -> tuple[int, float]:
    """Run ``work`` (an awaitable) while a ticker on the loop counts its ticks every
    ``period``: how many ticks, and the seconds it took. A blocked loop gives about one."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(period)

    ticking = asyncio.ensure_future(ticker())
    began = time.perf_counter()
    try:
        await work
    finally:
        elapsed = time.perf_counter() - began
        stop.set()
        await ticking
    return ticks, elapsed
