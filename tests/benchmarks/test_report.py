"""benchmarks/report.py runs every benchmark and rewrites the page's tables (no timing is
asserted: the numbers are whatever this machine gives)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "benchmarks" / "report.py"
PAGE = ROOT / "docs" / "performance.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
BENCHMARKS = ("overhead", "recovery", "store", "printers", "executors", "import")


def run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def split_page(text: str) -> tuple[str, str, str]:
    """(up to the start marker's line, between the markers, from the end marker's line on):
    the markers are lines of their own (the page's prose names them too)."""
    head, rest = text.split(f"\n{START}\n", 1)
    between, tail = rest.split(f"\n{END}\n", 1)
    return f"{head}\n{START}\n", between, f"\n{END}\n{tail}"


@pytest.mark.timeout(240)
def test_quick_run_rewrites_the_tables_of_a_copy_of_the_page(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    head, _, tail = split_page(PAGE.read_text("utf-8"))
    page.write_text(f"{head}old numbers{tail}", "utf-8")

    done = run(str(REPORT), "--quick", "--page", str(page), timeout=220)

    assert done.returncode == 0, done.stderr[-4000:]
    new_head, tables, new_tail = split_page(page.read_text("utf-8"))
    assert (new_head, new_tail) == (head, tail)  # the rest of the page is kept
    assert "old numbers" not in tables
    assert tables.strip() == done.stdout.strip()  # what it printed is what it wrote
    machine = re.search(r"^\*\*Machine:\*\* (.+)$", tables, re.MULTILINE)
    assert machine is not None, tables
    assert f"{len(os.sched_getaffinity(0))} CPUs" in machine.group(1)
    assert f"Python {sys.version.split()[0]}" in machine.group(1)
    assert re.search(r"^\*\*Measured\*\* \d{4}-\d\d-\d\d, rh-parallel ", tables, re.MULTILINE)
    summary = tables.split("### Summary", 1)[1].split("###", 1)[0]
    rows = [line.split("|")[1].strip() for line in summary.splitlines() if line.startswith("| ")]
    assert set(BENCHMARKS) <= set(rows), rows
    for heading in ("Overhead", "Durable runs", "Run stores", "Printers", "Executors"):
        assert f"### {heading}" in tables
    for contender in ("asyncio.gather+semaphore", "TaskGroup+semaphore", "aiometer.run_all",
                      "rh-parallel (no observers)", "recovered from SQLiteStore", "json",
                      "process pool"):  # fmt: skip
        assert f"| {contender}" in tables


def test_a_page_without_markers_is_refused_before_measuring(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# no markers here\n", "utf-8")
    done = run(str(REPORT), "--quick", "--page", str(page), timeout=30)
    assert done.returncode == 2
    assert "benchmarks:start" in done.stderr and "benchmarks: overhead" not in done.stderr
    assert page.read_text("utf-8") == "# no markers here\n"


def test_the_committed_page_has_generated_tables() -> None:
    tables = split_page(PAGE.read_text("utf-8"))[1]
    assert "**Machine:**" in tables and "### Summary" in tables
    assert "quick sizes" not in tables  # the published numbers are a full run's


@pytest.mark.parametrize(
    ("args", "row"),
    [
        (
            ["overhead.py", "--items", "200", "--rounds", "1", "--groups", "20"],
            "rh-parallel (no observers)",
        ),
        (["recovery.py", "--items", "200", "--rounds", "1"], "recovered from SQLiteStore"),
        (["store.py", "--items", "5000", "--rounds", "1"], "MemoryStore"),
        (["printers.py", "--seconds", "0.05", "--replays", "1", "--groups", "2"], "collapsed"),
        (
            ["executors.py", "--items", "2", "--work", "0.005", "--rounds", "1", "--no-ray"],
            "process pool",
        ),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_each_benchmark_still_prints_its_table(args: list[str], row: str) -> None:
    """Without --json, every script prints its table as before."""
    done = run(str(ROOT / "benchmarks" / args[0]), *args[1:], timeout=50)
    # store.py exits 1 when SQLiteStore misses its target: a verdict, not a failure to run
    assert done.returncode in ((0, 1) if args[0] == "store.py" else (0,)), done.stderr[-4000:]
    assert re.search(rf"^{re.escape(row)}.* \d+\.\d", done.stdout, re.MULTILINE), done.stdout
