"""Printers: golden output per mode on a deterministic run, JSON lines, colours, fallbacks."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from rh_parallel import (
    EventBus,
    EventPrinter,
    ExecutionEvent,
    ExecutionState,
    ParallelEventPrinter,
)
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


def test_summary_after_a_resume_counts_recovered_items_and_only_times_what_ran() -> None:
    """A resumed run's summary says how many items were recovered, and its slowest list holds
    only items that ran in this run, named by address when their group is nested."""
    from rh_parallel.store import MemoryStore

    store = MemoryStore()
    down = {"doc-1"}

    async def page(doc: str, n: int) -> str:
        await asyncio.sleep(0.001)
        if doc in down and n == 1:
            raise ConnectionError("503")
        return f"{doc}/{n}"

    async def document(doc: str, state: ExecutionState) -> int:
        async with state.parallel(2, name="pages") as q:
            for n in range(2):
                q.add(f"page-{n}", page, doc, n)
        if not all(r.ok for r in await q.gather()):
            raise RuntimeError(f"{doc} incomplete")
        return 2

    async def run() -> str:
        out = io.StringIO()
        printer = ParallelEventPrinter("collapsed", file=out, colour=False, unicode=True)
        bus = EventBus()
        bus.subscribe(printer, name="printer")
        state = ExecutionState(event_bus=bus, observers=[], store=store, run_id="resume")
        async with state.parallel(3, name="docs") as p:
            for doc in ("doc-0", "doc-1", "doc-2"):
                p.add(doc, document, doc, state)
        await state.aclose()
        await bus.aclose()
        out.truncate(0)
        out.seek(0)
        printer.print_summary()
        return out.getvalue()

    first = asyncio.run(run())
    assert "📦 docs: 3 items, 2 completed, 1 failed" in first
    down.clear()
    second = asyncio.run(run())
    assert "📦 docs: 3 items, 3 completed (2 recovered), 0 failed" in second
    # only doc-1 is entered again, and in it only its failed page runs
    assert "📦 pages: 2 items, 2 completed (1 recovered), 0 failed" in second
    assert "total: 5 items, 5 completed (3 recovered), 0 failed" in second
    slowest = [line.split(": ", 1)[1] for line in second.splitlines() if "slowest:" in line]
    assert [entry.split(" ")[0] for entry in slowest] == ["doc-1", "docs/doc-1/pages/page-1"]
    assert all("," not in entry for entry in slowest)  # nothing recovered is listed


def test_bad_mode_names_the_choices() -> None:
    with pytest.raises(
        ValueError, match="use one of auto, live, realtime, progress, collapsed, smart, json"
    ):
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


@pytest.mark.parametrize("mode", ["progress", "smart"])
def test_items_of_a_group_never_seen_starting_print_without_a_bar(mode: str) -> None:
    """A group's start record dropped (a full queue, a view dropped, a printer subscribed
    late) or never published (records built by hand, as RH-Agents programs did): its items
    print as lines, without the group's bar, instead of the printer raising on each."""
    out = io.StringIO()
    printer = ParallelEventPrinter(mode, file=out, colour=False, unicode=False)
    for status in ("started", "completed", "failed"):
        fields = {"execution_status": status, "group_id": "unseen", "parallel_index": 0}
        printer(ExecutionEvent(actor=LOOKUP.actor, is_parallel=True, **fields))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "[COMPLETED]" in lines[1] and "[FAILED]" in lines[2]


# -- parents first, tags, summaries, modes -------------------------------------------------


async def three_levels(state: ExecutionState) -> None:
    """top > t1 opens mid > m1 opens leaf (3 items, one failing)."""

    async def broken() -> None:
        raise ValueError("no")

    async def m1() -> None:
        async with state.parallel(2, name="leaf") as leaf:
            leaf.add("l1", asyncio.sleep, 0)
            leaf.add("l2", asyncio.sleep, 0)
            leaf.add("l3", broken)

    async def t1() -> None:
        async with state.parallel(2, name="mid") as mid:
            mid.add("m1", m1)

    async with state.parallel(2, name="top") as top:
        top.add("t1", t1)
        top.add("t2", asyncio.sleep, 0)


def render_three_levels(mode: str, **options: object) -> str:
    async def main() -> str:
        out = io.StringIO()
        printer = ParallelEventPrinter(mode, file=out, colour=False, unicode=True, **options)  # type: ignore[arg-type]
        bus = EventBus()
        bus.subscribe(lambda record: printer(fixed(record)))
        await three_levels(ExecutionState(event_bus=bus, observers=[]))
        await bus.aclose()
        return out.getvalue()

    return asyncio.run(main())


def test_collapsed_prints_parents_before_their_nested_groups() -> None:
    """A group's header comes before the first block nested in it; its block when it ends."""
    lines = render_three_levels("collapsed").splitlines()
    firsts = [line for line in lines if "Parallel Group:" in line]
    assert firsts == [
        "▶ 📦 Parallel Group: top (2 events)",
        "    ▶ 📦 Parallel Group: t1 › mid (1 events)",
        "        ✘ 📦 Parallel Group: m1 › leaf (3 events)",
        "    ✔ 📦 Parallel Group: t1 › mid (1 events)",  # m1 itself completed
        "✔ 📦 Parallel Group: top (2 events)",
    ]
    assert lines.count("          ✘ l3: ValueError: no") == 1


def test_collapsed_group_without_nested_groups_is_one_block() -> None:
    assert render("collapsed").count("Parallel Group: docs") == 2  # has a nested group
    lines = render_three_levels("collapsed").splitlines()
    assert sum("leaf" in line for line in lines) == 1


def test_smart_prints_a_collapsed_parent_before_a_small_nested_group() -> None:
    lines = render_three_levels("smart", smart_threshold=1).splitlines()
    groups = [line for line in lines if "Parallel Group:" in line and "%" not in line]
    assert groups == [
        "▶ 📦 Parallel Group: top (2 events)",  # 2 items: collapsed, its header first
        "    ▶ 📦 Parallel Group: t1 › mid [0/1]",  # 1 item: progress
        "        ✘ 📦 Parallel Group: m1 › leaf (3 events)",  # collapsed, no nested group
        "✔ 📦 Parallel Group: top (2 events)",
    ]


def test_progress_tags_a_group_on_every_line_or_on_none() -> None:
    """The rule: tagged when the group started while another group was open, on every line
    of it; a group that started alone never is (and is the only untagged one open)."""
    output = render("progress", concurrent=True)
    items = {"docs": "abcd", "other": ("o1", "o2"), "d › inner": "xy"}
    for group, names in items.items():
        lines = [
            line
            for line in output.splitlines()
            if any(f" {name} [" in line for name in names) and "Parallel Group" not in line
        ]
        tagged = [f"· {group} #" in line for line in lines]
        assert lines and len(set(tagged)) == 1, (group, lines)
        assert tagged[0] == (group != "docs")


def test_collapse_parallel_applies_to_progress_only() -> None:
    assert ParallelEventPrinter("progress", collapse_parallel=True).mode == "collapsed"
    for mode in ("realtime", "smart", "json", "collapsed"):
        assert ParallelEventPrinter(mode, collapse_parallel=True).mode == mode
    assert render("realtime", collapse_parallel=True) == render("realtime")


def test_json_summary_is_one_json_object() -> None:
    async def main() -> str:
        out = io.StringIO()
        printer = ParallelEventPrinter("json", file=out)
        bus = EventBus()
        bus.subscribe(lambda r: printer(fixed(r)))
        await scenario(ExecutionState(event_bus=bus, observers=[]))
        await bus.aclose()
        printer.print_summary()
        return out.getvalue()

    records = [json.loads(line) for line in asyncio.run(main()).splitlines()]
    summary = records[-1]
    assert summary["event"] == "summary"
    assert summary["total"] == {
        "items": 7,
        "completed": 6,
        "recovered": 0,
        "failed": 1,
        "cancelled": 0,
        "retries": 2,
    }
    docs = next(g for g in summary["groups"] if g["name"] == "docs")
    assert (docs["runs"], docs["items"], docs["failed"], docs["retries"]) == (1, 4, 1, 2)
    assert docs["slowest"][0] == {"name": "a", "seconds": 0.25}


def test_auto_is_live_on_a_terminal_and_smart_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm")
    assert ParallelEventPrinter(file=Terminal()).mode == "live"
    assert ParallelEventPrinter(file=io.StringIO()).mode == "smart"
    assert ParallelEventPrinter("auto", file=io.StringIO()).mode == "smart"
    monkeypatch.setenv("TERM", "dumb")  # cannot redraw in place
    assert ParallelEventPrinter(file=Terminal()).mode == "smart"


@pytest.mark.parametrize(
    ("no_color", "force_color", "tty", "expected"),
    [
        (None, None, True, True),
        (None, None, False, False),
        ("", None, True, True),  # empty: as if unset (no-color.org)
        ("1", None, True, False),
        ("0", None, True, False),  # any non-empty value
        (None, "1", False, True),
        (None, "", False, False),  # empty: as if unset
        ("1", "1", True, False),  # NO_COLOR wins
    ],
)
def test_colour_rules(
    monkeypatch: pytest.MonkeyPatch,
    no_color: str | None,
    force_color: str | None,
    tty: bool,
    expected: bool,
) -> None:
    class Output(io.StringIO):
        def isatty(self) -> bool:
            return tty

    for name, value in (("NO_COLOR", no_color), ("FORCE_COLOR", force_color)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert style_for(Output()).colour is expected
