"""The live mode: frames (golden, in colour and ASCII), kept lines, pacing, shutdown, failures.

Records of the deterministic scenario are replayed into a printer whose clock moves 0.25 s per
record, drawing on a rich console of fixed size (a StringIO that claims to be a terminal);
what a terminal would show is read back with pyte. ``UPDATE_GOLDEN=1`` rewrites the goldens.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from rh_parallel import (
    EventBus,
    ExecutionState,
    ExecutionStatus,
    GroupStatus,
    ParallelEventGroup,
)
from rh_parallel import ParallelEventPrinter as Printer
from rh_parallel.console.live import LiveRenderer
from tests.console.scenario import Clock, Terminal, capture, screen_of, terminal_console

GOLDEN = Path(__file__).parent / "golden"
STEP = 0.25  # seconds of the fixed clock per record


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def live_printer(
    out: io.StringIO, clock: Clock, colour: bool = False, unicode: bool = True, **options: Any
) -> Printer:
    width = options.pop("width", 100)
    height = options.pop("height", 40)
    console = terminal_console(out, colour, width, height)
    return Printer(
        "live", file=out, colour=colour, unicode=unicode, console=console, clock=clock, **options
    )


def replay(printer: Printer, clock: Clock, records: list[Any]) -> None:
    for record in records:
        clock.now += STEP
        printer(record)


def live_renderer(printer: Printer) -> LiveRenderer:
    assert isinstance(printer.renderer, LiveRenderer)
    return printer.renderer


def frame_text(printer: Printer, colour: bool, width: int = 100) -> str:
    """The printer's current frame as a terminal of ``width`` shows it (ANSI when
    ``colour``)."""
    console = Console(
        record=True,
        file=io.StringIO(),
        width=width,
        force_terminal=True,
        color_system="standard" if colour else None,
        no_color=not colour,
    )
    console.print(live_renderer(printer).frame())
    return console.export_text(styles=colour)


def until(records: list[Any], predicate: Any) -> list[Any]:
    """The records up to and including the first one ``predicate`` accepts."""
    for n, record in enumerate(records):
        if predicate(record):
            return records[: n + 1]
    raise AssertionError("no such record")


def inner_half_done(record: Any) -> bool:
    return getattr(record, "item_name", None) == "y" and record.execution_status == "completed"


# -- frames ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "colour", "unicode", "width"),
    [
        ("live-frame.txt", False, True, 100),
        ("live-frame-colour.txt", True, True, 100),
        ("live-frame-ascii.txt", False, False, 100),
        ("live-frame-wide.txt", False, True, 120),
        ("live-frame-narrow.txt", False, True, 80),
    ],
)
def test_golden_frame_mid_run(name: str, colour: bool, unicode: bool, width: int) -> None:
    """Two groups at once, one with a group nested under its item d: counts that add up."""
    clock = Clock()
    printer = live_printer(io.StringIO(), clock, colour, unicode, width=width)
    replay(printer, clock, until(capture(concurrent=True), inner_half_done))
    text = frame_text(printer, colour, width)
    check_golden(name, text)
    if not unicode:
        assert text.isascii()
    if colour:
        assert "\x1b[" in text


def test_frame_counts_add_up_and_nested_groups_sit_under_their_item() -> None:
    clock = Clock()
    printer = live_printer(io.StringIO(), clock)
    replay(printer, clock, until(capture(concurrent=True), inner_half_done))
    groups = live_renderer(printer).state.groups
    docs, inner = (next(g for g in groups.values() if g.label == n) for n in ("docs", "d › inner"))
    assert inner.parent is docs and inner.level == 1
    for group in (docs, inner):
        parts = (group.ok, group.failed, group.cancelled)
        parts += (group.running, group.waiting, group.retrying, group.queued)
        assert sum(parts) == group.total
    assert (inner.ok, inner.running, inner.queued) == (1, 1, 0)
    assert (docs.ok, docs.retrying, docs.running) == (1, 2, 1)  # b and c retrying, d running
    lines = frame_text(printer, colour=False).splitlines()
    assert [line.split()[0] for line in lines] == ["group", "docs", "d"]  # other has ended
    assert lines[2].startswith("  d › inner")


def test_final_screen_keeps_every_group_and_failure_and_no_frame() -> None:
    """After the run: each ended group's line and each failure, parents first, the view
    gone and the cursor shown."""
    clock = Clock()
    out = Terminal()
    printer = live_printer(out, clock)
    replay(printer, clock, capture(concurrent=True))
    raw = out.getvalue()
    check_golden("live-final-screen.txt", "\n".join(screen_of(raw)) + "\n")
    assert raw.rfind("\x1b[?25h") > raw.rfind("\x1b[?25l")  # the cursor is shown again
    assert live_renderer(printer).frames > 5  # frames were drawn meanwhile, then erased


def test_final_screen_in_ascii() -> None:
    clock = Clock()
    out = Terminal()
    printer = live_printer(out, clock, unicode=False)
    replay(printer, clock, capture(concurrent=True))
    raw = out.getvalue()
    assert raw.isascii()
    check_golden("live-final-screen-ascii.txt", "\n".join(screen_of(raw)) + "\n")


def test_close_mid_run_keeps_the_last_frame() -> None:
    clock = Clock()
    out = Terminal()
    printer = live_printer(out, clock)
    replay(printer, clock, until(capture(concurrent=True), inner_half_done))
    printer.close()
    raw = out.getvalue()
    screen = screen_of(raw)
    check_golden("live-closed-screen.txt", "\n".join(screen) + "\n")
    assert any(line.startswith("  d › inner") for line in screen)  # the frame, kept
    assert raw.rfind("\x1b[?25h") > raw.rfind("\x1b[?25l")
    printer.close()  # twice is fine
    assert out.getvalue() == raw


def test_parents_come_first_in_the_kept_lines() -> None:
    clock = Clock()
    out = Terminal()
    printer = live_printer(out, clock)
    replay(printer, clock, capture())
    screen = screen_of(out.getvalue())
    assert screen.index("▶ 📦 docs (4 items, max 2 at once)") < next(
        n for n, line in enumerate(screen) if "d › inner [2/2]" in line
    )
    assert screen.index("▶ 📦 docs (4 items, max 2 at once)") < next(
        n for n, line in enumerate(screen) if "b [FAILED]" in line
    )


# -- pacing and scale -----------------------------------------------------------------------------


def test_a_burst_of_records_draws_at_most_ten_frames_a_second() -> None:
    """20,000 records in two seconds of the printer's clock: at most ~20 frames, and every
    record counted."""
    clock = Clock()
    out = Terminal()
    printer = live_printer(out, clock)
    total = 10_000
    start = ParallelEventGroup(
        group_id="g", name="big", total=total, max_workers=8, status=GroupStatus.RUNNING
    )
    printer(start)
    records = capture()
    item = next(r for r in records if getattr(r, "item_name", None) == "a")
    for index in range(total):
        for status in (ExecutionStatus.STARTED, ExecutionStatus.COMPLETED):
            clock.now += 1e-4
            printer(
                item.model_copy(
                    update={
                        "group_id": "g",
                        "parallel_index": index,
                        "execution_status": status,
                        "address": f"big/{index}",
                    }
                )
            )
    renderer = live_renderer(printer)
    assert renderer.frames <= 2 / renderer.interval + 1
    (group,) = renderer.state.groups.values()
    assert group.ok == total and group.running == 0


def test_many_groups_show_the_busiest_and_a_count_of_the_rest() -> None:
    clock = Clock()
    printer = live_printer(io.StringIO(), clock, max_live_groups=5)
    for n in range(40):
        printer(
            ParallelEventGroup(
                group_id=f"g{n}", name=f"batch-{n}", total=10, status=GroupStatus.RUNNING
            )
        )
    item = next(r for r in capture() if getattr(r, "item_name", None) == "a")
    for n in (7, 30, 31):  # three busy groups
        for index in range(n % 5 + 1):
            printer(item.model_copy(update={"group_id": f"g{n}", "parallel_index": index}))
    lines = frame_text(printer, colour=False).splitlines()
    names = [line.split()[0] for line in lines[1:-1]]
    assert names == ["batch-0", "batch-1", "batch-7", "batch-30", "batch-31"]
    assert lines[-1] == "+35 more groups · 0 items running, 350 queued"


def test_a_short_terminal_shows_fewer_groups() -> None:
    clock = Clock()
    printer = live_printer(io.StringIO(), clock, height=10)
    for n in range(20):
        group = ParallelEventGroup(group_id=f"g{n}", name=f"b{n}", total=1)
        printer(group.model_copy(update={"status": GroupStatus.RUNNING}))
    assert frame_text(printer, colour=False).splitlines()[-1].startswith("+16 more groups")


# -- in a real loop -------------------------------------------------------------------------------


async def test_frames_follow_a_timer_while_records_pause() -> None:
    """Nothing arrives for 0.35 s: the timer still draws (elapsed times move), ~10 a second."""
    out = Terminal()
    printer = Printer("live", file=out, colour=False, console=terminal_console(out, False))
    bus = EventBus()
    bus.subscribe(printer)
    state = ExecutionState(event_bus=bus, observers=[])
    async with state.parallel(2, name="slow") as p:
        p.add("wait", asyncio.sleep, 0.35)
    await bus.aclose()
    frames = live_renderer(printer).frames
    assert 2 <= frames <= 5
    screen = screen_of(out.getvalue())
    assert screen[-1].startswith("✔ 📦 Parallel Group: slow [1/1]")


def test_rich_failing_never_breaks_the_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The view is put away (cursor shown), one warning, and the rest prints as lines."""
    from rich.live import Live

    def broken(self: Live) -> None:
        raise RuntimeError("terminal gone")

    monkeypatch.setattr(Live, "refresh", broken)
    clock = Clock()
    out = Terminal()
    printer = live_printer(out, clock)
    with caplog.at_level(logging.WARNING, logger="rh_parallel.console"):
        replay(printer, clock, capture())
    raw = out.getvalue()
    assert raw.rfind("\x1b[?25h") > raw.rfind("\x1b[?25l")
    assert [r.getMessage() for r in caplog.records] == [
        "the live view failed (RuntimeError: terminal gone); printing lines instead"
    ]
    assert "✘ 📦 Parallel Group: docs [4/4]" in raw  # the end, as a smart (progress) line


def test_live_on_a_pipe_prints_only_the_kept_lines() -> None:
    """``live`` asked for on a file that is not a terminal: no cursor movement at all."""
    out = io.StringIO()
    printer = Printer("live", file=out, colour=False, unicode=True)
    for record in capture():
        printer(record)
    raw = out.getvalue()
    assert "\x1b" not in raw
    assert raw.splitlines()[-1].startswith("✘ 📦 Parallel Group: docs [4/4]")


def test_item_states_move_between_the_counts() -> None:
    """waiting (for a rate limit) -> running -> retrying (until it ends, whatever it waits
    for meanwhile) -> done; counts always add up to the group's size."""
    clock = Clock()
    printer = live_printer(io.StringIO(), clock)
    printer(
        ParallelEventGroup(group_id="g", name="rated", total=3, max_workers=3).model_copy(
            update={"status": GroupStatus.RUNNING}
        )
    )
    item = next(r for r in capture() if getattr(r, "item_name", None) == "a")
    (group,) = live_renderer(printer).state.groups.values()

    def send(index: int, status: ExecutionStatus) -> tuple[int, ...]:
        printer(
            item.model_copy(
                update={"group_id": "g", "parallel_index": index, "execution_status": status}
            )
        )
        counts = (group.ok, group.failed, group.retrying, group.waiting, group.running)
        assert sum(counts) + group.queued + group.cancelled == 3
        return (*counts, group.queued)

    assert send(0, ExecutionStatus.WAITING) == (0, 0, 0, 1, 0, 2)
    assert send(1, ExecutionStatus.STARTED) == (0, 0, 0, 1, 1, 1)
    assert send(0, ExecutionStatus.STARTED) == (0, 0, 0, 0, 2, 1)
    assert send(1, ExecutionStatus.RETRYING) == (0, 0, 1, 0, 1, 1)
    assert send(1, ExecutionStatus.WAITING) == (0, 0, 1, 0, 1, 1)
    assert send(1, ExecutionStatus.COMPLETED) == (1, 0, 0, 0, 1, 1)
    assert send(2, ExecutionStatus.SKIPPED) == (1, 1, 0, 0, 1, 0)  # ended without starting
    assert send(0, ExecutionStatus.FAILED) == (1, 2, 0, 0, 0, 0)
    assert group.retries == 1
