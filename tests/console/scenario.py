"""A deterministic run for golden-output tests: fixed timings, fixed ids, fixed order."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from pydantic import BaseModel

from rh_parallel import (
    EventBus,
    ExecutionEvent,
    ExecutionState,
    ParallelEventGroup,
    ParallelEventPrinter,
    RetryPolicy,
    Tool,
)


class Query(BaseModel):
    q: str


async def lookup(data: Query, ctx: object, state: object) -> str:
    return data.q.upper()


LOOKUP = ExecutionEvent(actor=Tool(name="lookup", input_model=Query, handler=lookup))


def fixed(record: Any) -> Any:
    """The record with machine-independent timings and ids (injected before printing)."""
    if isinstance(record, ParallelEventGroup):
        update: dict[str, Any] = {"start_time": 0.0, "trace_id": None, "span_id": None}
        if record.end_time is not None:
            update |= {"end_time": 1.5, "duration": 1.5}
        return record.model_copy(update=update)
    return record.model_copy(
        update={
            "execution_time": 0.25 if record.execution_time is not None else None,
            "queue_time": 0.0 if record.queue_time is not None else None,
            "timestamp": 0.0,
            "trace_id": None,
            "span_id": None,
        }
    )


async def scenario(state: ExecutionState, concurrent: bool = False) -> None:
    await LOOKUP({"q": "setup"}, None, state)
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise ConnectionError("upstream reset")
        return "ok"

    async def broken() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad input")

    async def nested() -> int:
        async with state.parallel(max_workers=2, name="inner") as inner:
            inner.add("x", lambda: asyncio.sleep(0, result=1))
            inner.add("y", LOOKUP({"q": "y"}, None, state))
        return len(await inner.gather())

    async def docs() -> None:
        retry = RetryPolicy(max_attempts=2, initial_delay=0, jitter=0)
        async with state.parallel(max_workers=2, name="docs", retry=retry) as p:
            p.add("a", lambda: asyncio.sleep(0, result="A"))
            p.add("b", broken)
            p.add("c", flaky)
            p.add("d", nested)

    async def other() -> None:
        async with state.parallel(max_workers=2, name="other") as q:
            q.add("o1", lambda: asyncio.sleep(0))
            q.add("o2", lambda: asyncio.sleep(0))

    if concurrent:
        await asyncio.gather(docs(), other())
    else:
        await docs()


def render(mode: str, concurrent: bool = False, **printer_options: Any) -> str:
    """The printer's whole output for the scenario in ``mode``."""

    async def main() -> str:
        out = io.StringIO()
        options = {"colour": False, "unicode": True} | printer_options
        printer = ParallelEventPrinter(mode, file=out, **options)
        bus = EventBus()
        bus.subscribe(lambda record: printer(fixed(record)))
        state = ExecutionState(event_bus=bus, observers=[], run_id="golden")
        await scenario(state, concurrent)
        await bus.aclose()
        return out.getvalue()

    return asyncio.run(main())


def capture(concurrent: bool = False) -> list[Any]:
    """The scenario's records, made machine-independent (to replay into printers)."""

    async def main() -> list[Any]:
        records: list[Any] = []
        bus = EventBus()
        bus.subscribe(lambda record: records.append(fixed(record)))
        state = ExecutionState(event_bus=bus, observers=[], run_id="golden")
        await scenario(state, concurrent)
        await bus.aclose()
        return records

    return asyncio.run(main())


class Clock:
    """A clock that moves only when told: ``clock.now += 0.25``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """A StringIO that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def terminal_console(out: io.StringIO, colour: bool, width: int = 100, height: int = 40) -> Any:
    """A rich console drawing on ``out`` as on a terminal of ``width`` x ``height``."""
    from rich.console import Console

    return Console(
        file=out,
        force_terminal=True,
        force_interactive=True,
        width=width,
        height=height,
        color_system="standard" if colour else None,
        no_color=not colour,
        markup=False,
        emoji=False,
        highlight=False,
        legacy_windows=False,
    )


def screen_of(raw: str, width: int = 100, height: int = 40) -> list[str]:
    """What a terminal shows after ``raw`` (a pyte screen; ``\\n`` as a tty turns it into
    ``\\r\\n``), blank lines at the end left out."""
    import pyte

    screen = pyte.Screen(width, height)
    pyte.Stream(screen).feed(raw.replace("\n", "\r\n"))
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines
