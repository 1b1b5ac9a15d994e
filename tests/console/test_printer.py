"""Printers: golden output per mode on a deterministic run, JSON lines, colours, fallbacks."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from rh_parallel import EventBus, EventPrinter, ExecutionState, ParallelEventPrinter
from rh_parallel.console import EVENT_KEYS, style_for
from tests.console.scenario import LOOKUP, fixed, render, scenario

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("mode", ["realtime", "progress", "collapsed", "smart"])
def test_golden_output(mode: str) -> None:
    assert render(mode) == (GOLDEN / f"{mode}.txt").read_text()


def test_two_groups_at_once_every_line_names_its_group() -> None:
    output = render("progress", concurrent=True)
    assert output == (GOLDEN / "progress-two-groups.txt").read_text()
    other_lines = [line for line in output.splitlines() if "o1" in line or "o2" in line]
    assert other_lines and all("other #" in line for line in other_lines)


def test_smart_collapses_groups_above_the_threshold() -> None:
    output = render("smart", smart_threshold=3)
    assert output == (GOLDEN / "smart-threshold-3.txt").read_text()
    assert "[0/2]" in output  # the 2-item group is drawn with progress
    assert "docs (4 events)" in output  # the 4-item group collapsed


def test_collapse_parallel_flag_collapses_progress_mode() -> None:
    assert render("progress", collapse_parallel=True) == render("collapsed")


def test_show_progress_false_drops_the_bars() -> None:
    output = render("progress", show_progress=False)
    assert "[1/4]" not in output and "✘ ⚙ b [FAILED]" in output


def test_json_mode_one_object_per_record() -> None:
    lines = render("json").splitlines()
    assert lines == (GOLDEN / "json.txt").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert all(set(r) <= set(EVENT_KEYS) for r in records)
    failed = next(r for r in records if r.get("status") == "failed" and r["event"] == "item")
    assert failed["error_type"] == "ValueError" and failed["group_name"] == "docs"
    assert failed["parallel_index"] == 1 and failed["execution_time"] == 0.25
    ends = [r for r in records if r["event"] == "group_end"]
    assert [(r["group_name"], r["completed"], r["failed"]) for r in ends] == [
        ("inner", 2, 0),
        ("docs", 3, 1),
    ]


async def test_json_mode_carries_span_ids() -> None:
    from rh_parallel.testing import InMemoryTelemetry

    telemetry = InMemoryTelemetry()
    out = io.StringIO()
    bus = EventBus()
    bus.subscribe(ParallelEventPrinter("json", file=out))
    state = ExecutionState(event_bus=bus, observers=telemetry.observers)
    async with state.parallel(name="traced") as p:
        p.add("a", asyncio.sleep(0))
    await bus.aclose()
    span = telemetry.span("execute_task a")
    done = [json.loads(line) for line in out.getvalue().splitlines()][-2]
    assert done["span_id"] == format(span.context.span_id, "016x")
    assert done["trace_id"] == format(span.context.trace_id, "032x")


def test_colours_only_where_they_belong(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert style_for(Terminal()).colour is True
    assert style_for(io.StringIO()).colour is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert style_for(Terminal()).colour is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert style_for(io.StringIO()).colour is True
    assert "\x1b[31m" in render("progress", colour=True)


def test_ascii_fallback_when_the_encoding_cannot_show_symbols() -> None:
    raw = io.BytesIO()
    latin = io.TextIOWrapper(raw, encoding="latin-1")
    assert style_for(latin).unicode is False
    output = render("progress", unicode=False)
    assert output.isascii()
    assert "[group] Parallel Group: docs [4/4] ########## 100%" in output
    assert "x [task] b [FAILED]" in output


def test_event_printer_for_sequential_flows() -> None:
    async def main() -> str:
        out = io.StringIO()
        bus = EventBus()
        bus.subscribe(EventPrinter(file=out, colour=False, unicode=True))
        state = ExecutionState(event_bus=bus, observers=[])
        await LOOKUP({"q": "a"}, None, state)
        await LOOKUP({"q": "b"}, None, state)
        await bus.aclose()
        return out.getvalue()

    lines = asyncio.run(main()).splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "▶ 🔧 lookup [STARTED]",
        "✔ 🔧 lookup [COMPLETED]",
    ] * 2


def test_print_summary_totals_per_group() -> None:
    async def main() -> str:
        out = io.StringIO()
        printer = ParallelEventPrinter("collapsed", file=out, colour=False, unicode=True)
        bus = EventBus()
        bus.subscribe(lambda r: printer(fixed(r)))
        state = ExecutionState(event_bus=bus, observers=[])
        await scenario(state)
        await bus.aclose()
        out.truncate(0)
        out.seek(0)
        printer.print_summary()
        return out.getvalue()

    summary = asyncio.run(main())
    assert "📦 docs: 4 items, 3 completed, 1 failed, 2 retried" in summary
    assert "📦 inner: 2 items, 2 completed, 0 failed, 0 retried" in summary
    assert "total: 7 items, 6 completed, 1 failed, 2 retried" in summary
    assert "slowest:" in summary


def test_bad_mode_names_the_choices() -> None:
    with pytest.raises(ValueError, match="use one of realtime, progress, collapsed"):
        ParallelEventPrinter("fancy")


async def test_printer_state_stays_bounded_over_many_unique_group_names() -> None:
    out = io.StringIO()
    printer = ParallelEventPrinter("collapsed", file=out, colour=False, unicode=False)
    bus = EventBus()
    bus.subscribe(printer)
    state = ExecutionState(event_bus=bus, observers=[])
    async with asyncio.timeout(60):
        for n in range(2_000):
            async with state.parallel(name=f"batch-{n}") as p:
                p.add(asyncio.sleep(0))
            if n % 100 == 99:
                await bus.flush()  # no backlog: every record reaches the printer
        await bus.aclose()
    assert out.getvalue().count("Parallel Group: batch-") == 2_000
    # no view outlives its group; the summary keeps a bounded number of names
    assert len(printer._groups) == 0
    assert len(printer._totals) == printer.max_summary_groups + 1
    out.truncate(0)
    out.seek(0)
    printer.print_summary()
    summary = out.getvalue()
    assert "batch-99: 1 items" in summary and "batch-100:" not in summary
    assert "(other groups): 1900 runs, 1900 items, 1900 completed" in summary
    assert "total: 2000 items, 2000 completed, 0 failed" in summary


def test_views_of_groups_whose_end_never_arrives_are_bounded() -> None:
    from rh_parallel import GroupStatus, ParallelEventGroup

    out = io.StringIO()
    printer = ParallelEventPrinter("realtime", file=out, colour=False, unicode=False)
    printer.max_running_groups = 50
    for n in range(2_000):  # start records only, as when a bus drops the end records
        printer(
            ParallelEventGroup(
                group_id=f"g{n}", name=f"batch-{n}", total=1, status=GroupStatus.RUNNING
            )
        )
    assert len(printer._groups) == 50
    assert list(printer._groups) == [f"g{n}" for n in range(1_950, 2_000)]  # the newest kept
