"""A demo-like program for the metrics integration tests, run as a subprocess:

    python -m tests.integration.metrics_program PORT

It serves ``/metrics`` on PORT (the default registry, as the demo does), prints ``serving``,
and waits for a line on stdin (the test sends one once Prometheus scrapes it). Then it runs:

1. ``long runs``: one agent item that runs four minutes by the engine's clock. The engine
   times an attempt with ``time.perf_counter`` (read at the start and the end of the attempt);
   this program moves that clock 240 s forward while the item runs (for about 2.5 real
   seconds, so that Prometheus scrapes the item's histogram at 0 before it lands), the way a
   frozen-time test would. The clock is patched before rh_parallel is imported, so every
   module that reads it sees the same, monotonic clock; only the one item runs across the
   jump, so no other duration or queue wait includes it. Nothing else is faked: the item
   goes through the real scheduler, observer hooks, collector and HTTP endpoint.
2. ``rate limited``: 20 items behind ``RateLimit(10, per=1.0, name="provider-api")``: their
   starts are spaced 100 ms apart, so they wait about 0 + 0.1 + ... + 1.9 = 19 s in all. The
   waits end over 1.9 s, longer than a scrape interval (1 s), so some scrape falls inside
   them: the counter's series is born at the first wait, and ``rate()`` needs a later, higher
   sample to see it grow.
3. the cap workload of :mod:`tests.telemetry.cap_workload`: 120 group names (100 kept, the
   rest folded into ``_other``) with every kind, completed and failed after a retry, events
   outside groups and a breaker that trips.

It prints ``ready`` and serves until stdin closes.
"""

from __future__ import annotations

import time

LONG_RUN = 240.0  # seconds the long item takes by the engine's clock


class SteppedClock:
    """``time.perf_counter`` plus an offset that only grows."""

    def __init__(self) -> None:
        self.real = time.perf_counter
        self.offset = 0.0

    def __call__(self) -> float:
        return self.real() + self.offset


clock = SteppedClock()
time.perf_counter = clock  # before rh_parallel binds it (modules keep a reference)

import asyncio  # noqa: E402  (after the clock patch, on purpose)
import sys  # noqa: E402
from typing import Any  # noqa: E402

from pydantic import BaseModel  # noqa: E402

from rh_parallel import Agent, ExecutionEvent, ExecutionState, RateLimit  # noqa: E402
from rh_parallel.telemetry import start_metrics_server  # noqa: E402
from tests.telemetry.cap_workload import run_cap_workload  # noqa: E402


class Topic(BaseModel):
    topic: str


async def research(data: Topic, ctx: Any, state: Any) -> str:
    clock.offset += LONG_RUN  # four minutes pass on the engine's clock...
    await asyncio.sleep(2.5)  # ...while the item runs across a few real scrapes
    return f"notes on {data.topic}"


async def run() -> None:
    state = ExecutionState()  # the default observers, on the default registry
    researcher = ExecutionEvent(actor=Agent(name="researcher", input_model=Topic, handler=research))
    async with state.parallel(max_workers=1, name="long runs") as p:
        p.add("research", researcher(Topic(topic="metrics"), None, state))
    (result,) = await p.gather()
    assert result.ok and result.execution_time >= LONG_RUN, result
    provider = RateLimit(10, per=1.0, name="provider-api")
    async with state.parallel(20, name="rate limited", rate_limit=provider) as q:
        for _ in range(20):
            q.add(asyncio.sleep, 0)
    await run_cap_workload(state, groups=120)
    await state.aclose()


def main(port: int) -> None:
    server = start_metrics_server(port, "127.0.0.1")
    print("serving", flush=True)
    sys.stdin.readline()
    asyncio.run(run())
    print("ready", flush=True)
    sys.stdin.read()  # serve until the test closes stdin
    server.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
