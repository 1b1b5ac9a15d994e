"""Run every benchmark and rewrite the tables in docs/performance.md.

    python benchmarks/report.py                  # full sizes, a few minutes; rewrites the page
    python benchmarks/report.py --quick          # small sizes, seconds; prints the tables only
    python benchmarks/report.py --quick --page /tmp/performance.md   # ... and rewrites that page

Each benchmark (overhead.py, recovery.py, store.py, printers.py, executors.py, and the time
of ``import rh_parallel``) runs one after another, each in a fresh interpreter, with
``--json``; the results become Markdown tables, with a line naming the machine. The page is
rewritten between ``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` only; the rest
of it is left as it is. Nothing is written when a benchmark fails.

A quick run checks that every benchmark still runs; its sizes are too small for its numbers to
mean much, so it rewrites a page only when one is named with ``--page``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent
PAGE = ROOT / "docs" / "performance.md"
START = "<!-- benchmarks:start -->"
END = "<!-- benchmarks:end -->"

TASKGROUP = "TaskGroup+semaphore"
GATHER = "asyncio.gather+semaphore"
AIOMETER = "aiometer.run_all"
ENGINE = "rh-parallel (no observers)"
DEFAULT_TELEMETRY = "rh-parallel (default telemetry, no SDK)"
GROUP_DEFAULT_TELEMETRY = "rh-parallel (default telemetry)"
NO_STORE = "completed, no store"
SEQUENTIAL = "sequential (one after another)"
IMPORT_TARGET = 0.150  # seconds (docs/design.md, performance targets)


@dataclass(frozen=True)
class Sizes:
    overhead: list[str]
    recovery: list[str]
    store: list[str]
    printers: list[str]
    executors: list[str]
    imports: int  # fresh interpreters timed


FULL = Sizes(
    overhead=["--items", "20000", "--rounds", "7", "--groups", "2000"],
    recovery=["--items", "20000", "--rounds", "7"],
    store=["--items", "50000", "--rounds", "3"],
    printers=["--seconds", "3", "--replays", "5", "--groups", "50"],
    executors=["--items", "40", "--work", "0.05", "--rounds", "3"],
    imports=7,
)
QUICK = Sizes(
    overhead=["--items", "500", "--rounds", "1", "--groups", "50"],
    recovery=["--items", "500", "--rounds", "1"],
    store=["--items", "2000", "--rounds", "1"],
    printers=["--seconds", "0.1", "--replays", "1", "--groups", "3"],
    executors=["--items", "4", "--work", "0.01", "--rounds", "1"],
    imports=2,
)


class BenchmarkFailed(Exception):
    pass


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_json(script: str, args: list[str]) -> dict[str, Any]:
    """Run ``benchmarks/<script> <args> --json`` in a fresh interpreter; its JSON object."""
    command = [sys.executable, str(HERE / script), *args, "--json"]
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or not lines:
        raise BenchmarkFailed(
            f"{' '.join(command[1:])} exited {run.returncode}:\n{run.stderr[-3000:]}"
        )
    data: dict[str, Any] = json.loads(lines[-1])
    return data


IMPORT_TIMER = (
    "import time; began = time.perf_counter(); import rh_parallel; "
    "print(time.perf_counter() - began)"
)


def import_seconds(rounds: int) -> dict[str, Any]:
    """Median seconds of ``import rh_parallel`` in a fresh interpreter (after one unmeasured
    run, so the disk is warm), interpreter start-up not included."""
    samples = []
    for _ in range(rounds + 1):
        run = subprocess.run(
            [sys.executable, "-c", IMPORT_TIMER], capture_output=True, text=True, cwd=ROOT
        )
        if run.returncode != 0:
            raise BenchmarkFailed(f"import rh_parallel failed:\n{run.stderr[-3000:]}")
        samples.append(float(run.stdout.split()[-1]))
    return {"rounds": rounds, "seconds": statistics.median(samples[1:])}


def measure(sizes: Sizes, ray: bool) -> tuple[dict[str, dict[str, Any]], float]:
    """Every benchmark's results, by benchmark, and the seconds the whole run took."""
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("overhead", lambda: run_json("overhead.py", sizes.overhead)),
        ("recovery", lambda: run_json("recovery.py", sizes.recovery)),
        ("store", lambda: run_json("store.py", sizes.store)),
        ("printers", lambda: run_json("printers.py", sizes.printers)),
        (
            "executors",
            lambda: run_json("executors.py", sizes.executors + ([] if ray else ["--no-ray"])),
        ),
        ("import", lambda: import_seconds(sizes.imports)),
    ]
    results: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()
    for name, step in steps:
        say(f"benchmarks: {name} ...")
        started = time.perf_counter()
        results[name] = step()
        say(f"benchmarks: {name} took {time.perf_counter() - started:.1f}s")
    return results, time.perf_counter() - began


# -- the machine ----------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def virtual_machine() -> bool:
    try:
        return " hypervisor" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def os_name() -> str:
    try:
        pretty = platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, KeyError):
        pretty = ""
    kernel = f"{platform.system()} {platform.release()} {platform.machine()}"
    return f"{pretty} ({kernel})" if pretty else kernel


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def code_version() -> str:
    """The rh-parallel version, and the git commit measured when there is one."""
    from rh_parallel import __version__

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, cwd=ROOT, check=True,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "benchmarks"],
            capture_output=True, text=True, cwd=ROOT, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return f"rh-parallel {__version__}"
    local = " with uncommitted changes" if changed else ""
    return f"rh-parallel {__version__} (commit {commit}{local})"


def machine() -> str:
    vm = ", a virtual machine" if virtual_machine() else ""
    try:
        load = f"load average {os.getloadavg()[0]:.2f} at the start"
    except OSError:
        load = "load average unknown"
    return (
        f"{cpu_model()}{vm}, {cpus()} CPUs; "
        f"{platform.python_implementation()} {platform.python_version()}; {os_name()}; "
        f"{load}"
    )


# -- the tables -----------------------------------------------------------------------------


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.2f}"


def ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else ""


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[met]


def at_most(value: float, target: float) -> bool:
    """``value <= target`` as shown (two decimals): a 1.204x is not a miss of "<= 1.2x"."""
    return round(value, 2) <= target


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def table(header: list[str], rows: list[list[str]], text: int = 1) -> list[str]:
    """A Markdown table: the first ``text`` columns aligned left, the numbers right."""
    align = ["---"] * text + ["--:"] * (len(header) - text)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def summary(results: dict[str, dict[str, Any]]) -> list[str]:
    overhead, recovery = results["overhead"], results["recovery"]
    per_item, per_group = overhead["per_item"], overhead["per_group"]
    engine_item = per_item[ENGINE] / per_item[TASKGROUP]
    engine_group = per_group[ENGINE] / per_group[TASKGROUP]
    telemetry = per_item[DEFAULT_TELEMETRY] / per_item[ENGINE]
    recovered = recovery["per_item"]["recovered from SQLiteStore"]
    completed = recovery["per_item"]["completed, saved to SQLiteStore"]
    store = results["store"]
    persisted = min(row["persisted_per_second"] for row in store["sqlite"])
    printers = results["printers"]["cpu_share"]
    costliest = max(printers, key=lambda mode: printers[mode]["share"])
    executors = results["executors"]["seconds"]
    pools = {name: seconds for name, seconds in executors.items() if name != SEQUENTIAL}
    fastest = min(pools, key=lambda name: pools[name])
    imported = results["import"]["seconds"]
    rows = [
        ["overhead", "engine (no observers) per item, vs TaskGroup + semaphore",
         f"{engine_item:.2f}x", "<= 1.0x", verdict(at_most(engine_item, 1.0))],
        ["overhead", "engine per one-item group, vs TaskGroup + semaphore",
         f"{engine_group:.2f}x", "<= 1.5x", verdict(at_most(engine_group, 1.5))],
        ["overhead", "default telemetry per item, vs the engine alone",
         f"{telemetry:.2f}x", "<= 1.2x", verdict(at_most(telemetry, 1.2))],
        ["recovery", "recovered item, vs a completed one (both with SQLiteStore)",
         f"{recovered / completed:.2f}x", "<= 1.0x", verdict(at_most(recovered / completed, 1.0))],
        ["store", "items SQLiteStore persists per second (slower of its two runs)",
         f"{persisted:,.0f}/s", f">= {store['target']:,}/s",
         verdict(persisted >= store["target"])],
        ["printers", f"CPU share of one core at 10,000 records/s, costliest mode ({costliest})",
         f"{printers[costliest]['share']:.1%}", "", ""],
        ["executors", f"CPU-bound items, speedup of the fastest executor ({fastest})",
         f"{executors[SEQUENTIAL] / pools[fastest]:.2f}x", "", ""],
        ["import", "`import rh_parallel` in a fresh interpreter, warm disk",
         f"{imported * 1e3:.0f} ms", f"<= {IMPORT_TARGET * 1e3:.0f} ms",
         verdict(imported <= IMPORT_TARGET)],
    ]  # fmt: skip
    return table(["benchmark", "what", "result", "target", "target met"], rows, text=2)


def overhead_tables(data: dict[str, Any]) -> list[str]:
    per_item, per_group = data["per_item"], data["per_group"]
    gather, taskgroup = per_item[GATHER], per_item[TASKGROUP]
    aiometer, engine = per_item.get(AIOMETER), per_item[ENGINE]
    rows = [
        [name, us(s), ratio(s, gather), ratio(s, taskgroup), ratio(s, aiometer),
         ratio(s, engine) if name.startswith("rh-parallel") else ""]
        for name, s in per_item.items()
    ]  # fmt: skip
    lines = [
        f"{data['items']:,} trivial items in one group, at most {data['limit']} at once; "
        f"median of {plural(data['rounds'], 'interleaved round')}.",
        "",
        *table(
            ["contender", "µs/item", "vs gather", "vs TaskGroup", "vs aiometer", "vs engine"],
            rows,
        ),
        "",
        f"{data['groups']:,} one-item groups, one after another; "
        f"median of {plural(data['rounds'], 'interleaved round')}.",
        "",
    ]
    group_base, group_engine = per_group[TASKGROUP], per_group[ENGINE]
    rows = [
        [name, us(s), ratio(s, group_base),
         ratio(s, group_engine) if name.startswith("rh-parallel") else ""]
        for name, s in per_group.items()
    ]  # fmt: skip
    return lines + table(["contender", "µs/group", "vs TaskGroup", "vs engine"], rows)


def recovery_table(data: dict[str, Any]) -> list[str]:
    per_item = data["per_item"]
    base = per_item[NO_STORE]
    rows = [[name, us(s), ratio(s, base)] for name, s in per_item.items()]
    return [
        f"{data['items']:,} items added as `p.add(fn, i)` in one group; "
        f"median of {plural(data['rounds'], 'interleaved round')}.",
        "",
        *table(["contender", "µs/item", "vs no store"], rows),
    ]


def store_table(data: dict[str, Any]) -> list[str]:
    labels = {"SQLiteStore": "SQLiteStore", "flush/100": "SQLiteStore, flushed every 100"}
    rows = [
        [labels.get(row["label"], row["label"]), f"{row['persisted_per_second']:,.0f}",
         f"{row['save_us']:.2f}", str(row["commits"])]
        for row in data["sqlite"]
    ]  # fmt: skip
    rows.append(["MemoryStore", "", f"{data['memory_save_us']:.2f}", ""])
    return [
        f"{data['items']:,} saves of small JSON values, then `close()`; "
        f"best of {plural(data['rounds'], 'round')}.",
        "",
        *table(["backend", "persisted/s", "µs per save", "commits"], rows),
    ]


def printers_table(data: dict[str, Any]) -> list[str]:
    rows = [
        [mode, f"{seconds * 1e6:.1f}", f"{1 / seconds:,.0f}",
         f"{data['cpu_share'][mode]['share']:.1%}", str(data["cpu_share"][mode]["dropped"])]
        for mode, seconds in data["per_record"].items()
    ]  # fmt: skip
    return [
        f"{data['records']:,} records replayed {plural(data['replays'], 'time')} per mode; "
        f"then published at {data['rate']:,} records/s for {data['seconds']:g} s per mode "
        f"(CPU share: of one core, less the {data['baseline_share']:.1%} of a subscriber that "
        "does nothing).",
        "",
        *table(["mode", "µs/record", "records/s", "CPU share at 10k/s", "dropped"], rows),
        "",
        f"The live view draws a frame in {data['frame'] * 1e3:.2f} ms (at most 10 a second).",
    ]


def executors_table(data: dict[str, Any]) -> list[str]:
    seconds = data["seconds"]
    base = seconds[SEQUENTIAL]
    rows = [[name, f"{s:.2f}", f"{base / s:.2f}x"] for name, s in seconds.items()]
    lines = [
        f"{data['items']} items of about {data['work'] * 1e3:.0f} ms of pure-Python CPU work "
        f"each, on {data['cpus']} CPUs; median of {plural(data['rounds'], 'round')}.",
        "",
        *table(["executor", "seconds", "speedup"], rows),
        "",
    ]
    if data["ray_overhead"] is None:
        lines.append("Ray was not measured (not installed, or `--no-ray`).")
    else:
        lines.append(
            f"Ray's overhead per item beyond the work (zero-work items): "
            f"{data['ray_overhead'] * 1e3:.2f} ms."
        )
    return lines


def section(
    results: dict[str, dict[str, Any]],
    took: float,
    quick: bool,
    when: datetime.date,
    host: str,
    version: str,
) -> str:
    sizes = "quick sizes (`--quick`): too small to mean much" if quick else "full sizes"
    lines = [
        "<!-- written by `python benchmarks/report.py`: edit that, not this -->",
        "",
        f"**Machine:** {host}.  ",
        f"**Measured** {when.isoformat()}, {version}, {sizes}; the run took {took:.0f} s.",
        "",
        "### Summary",
        "",
        *summary(results),
        "",
        "### Overhead per item and per group",
        "",
        *overhead_tables(results["overhead"]),
        "",
        "### Durable runs: saving and recovering",
        "",
        *recovery_table(results["recovery"]),
        "",
        "### Run stores",
        "",
        *store_table(results["store"]),
        "",
        "### Printers",
        "",
        *printers_table(results["printers"]),
        "",
        "### Executors for CPU-bound items",
        "",
        *executors_table(results["executors"]),
    ]
    return "\n".join(lines)


def split_page(text: str) -> tuple[str, str, str] | str:
    """``text`` as (up to and with the start marker's line, between, from the end marker's
    line on); or what is wrong with its markers. A marker counts only as a line of its own,
    so the page can name them in its prose."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or starts[0] > ends[0]:
        return f"needs one {START} line, then one {END} line"
    first, last = starts[0], ends[0]
    return "".join(lines[: first + 1]), "".join(lines[first + 1 : last]), "".join(lines[last:])


def rewrite(page: Path, generated: str) -> None:
    """Replace what is between the markers of ``page`` with ``generated``."""
    parts = split_page(page.read_text("utf-8"))
    if isinstance(parts, str):
        raise ValueError(f"{page}: {parts}")
    head, _, tail = parts
    temporary = page.with_name(f".{page.name}.tmp")
    temporary.write_text(f"{head}{generated}\n{tail}", "utf-8")
    temporary.replace(page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument(
        "--page", type=Path, help=f"the page to rewrite (default: {PAGE.relative_to(ROOT)}; "
        "a --quick run rewrites none unless one is named)"
    )  # fmt: skip
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray executor")
    args = parser.parse_args(argv)
    page: Path | None = args.page or (None if args.quick else PAGE)
    if page is not None:  # before minutes of measuring, not after
        if not page.is_file():
            parser.error(f"--page {page}: no such file")
        parts = split_page(page.read_text("utf-8"))
        if isinstance(parts, str):
            parser.error(f"--page {page}: {parts}")
    ray = not args.no_ray and importlib.util.find_spec("ray") is not None
    when = datetime.datetime.now(datetime.UTC).date()
    # before measuring: the load average the run started in, the code it measured
    host, version = machine(), code_version()
    try:
        results, took = measure(QUICK if args.quick else FULL, ray)
    except BenchmarkFailed as exc:
        say(f"benchmarks: failed, nothing written: {exc}")
        return 1
    generated = section(results, took, args.quick, when, host, version)
    print(generated)
    if page is not None:
        rewrite(page, generated)
        say(f"benchmarks: rewrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
