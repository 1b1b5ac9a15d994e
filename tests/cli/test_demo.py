"""The real CLI, run as a subprocess: every mode, telemetry on and off, counts that add up."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.cli.helpers import demo_command

REPORT = re.compile(r"documents: (\d+) completed, (\d+) failed, (\d+) total .*; aggregate (\w+)")
FOOTER = re.compile(r"Document Processing.* (\d+) completed, (\d+) failed")
COLLAPSED = re.compile(
    r"Parallel Group: Document Processing \((\d+) events\)\n.*\n\s+\S+ (\d+) "
    r"completed, (\d+) failed"
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        demo_command(
            "--docs", "8", "--latency", "0.01", "--fail-rate", "0.3", "--seed", "3", *args
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("mode", ["realtime", "progress", "collapsed", "smart"])
@pytest.mark.parametrize("telemetry", [True, False])
def test_demo_prints_counts_that_match_its_results(mode: str, telemetry: bool) -> None:
    done = run("--mode", mode, *([] if telemetry else ["--no-telemetry"]))
    completed, failed, total, aggregate = REPORT.search(done.stdout).groups()  # type: ignore[union-attr]
    assert int(total) == 8 and int(completed) + int(failed) == 8
    assert int(failed) > 0  # seed 3 at 30%: some documents fail
    aggregate_ok = aggregate == "completed"
    if mode == "collapsed":  # (smart draws this 9-item group with progress: threshold 10)
        size, group_completed, group_failed = map(int, COLLAPSED.search(done.stdout).groups())  # type: ignore[union-attr]
        assert size == 9
    else:
        group_completed, group_failed = map(int, FOOTER.findall(done.stdout)[-1])
    assert group_completed == int(completed) + aggregate_ok
    assert group_failed == int(failed) + (not aggregate_ok)


def test_json_mode_is_json_lines_with_the_same_counts() -> None:
    done = run("--mode", "json")
    records = [json.loads(line) for line in done.stdout.splitlines()]
    report = records[-1]
    assert report["event"] == "demo_report" and report["total"] == 8
    (group_end,) = [
        r
        for r in records
        if r.get("event") == "group_end" and r["group_name"] == "Document Processing"
    ]
    aggregate_ok = report["aggregate"] == "completed"
    assert group_end["completed"] == report["completed"] + aggregate_ok
    assert group_end["failed"] == report["failed"] + (not aggregate_ok)
    assert all(r.get("trace_id") for r in records if r.get("event") == "item")


def test_same_seed_same_outcome() -> None:
    first = REPORT.search(run("--mode", "collapsed").stdout)
    second = REPORT.search(run("--mode", "collapsed").stdout)
    assert first is not None and second is not None
    assert first.groups()[:3] == second.groups()[:3]


def test_bad_arguments_are_refused() -> None:
    done = subprocess.run(
        demo_command("--fail-rate", "2"), capture_output=True, text=True, check=False
    )
    assert (
        done.returncode == 2
        and "argument --fail-rate: expected a share from 0 to 1, got 2" in done.stderr
    )


def test_cli_help_and_unknown_command() -> None:
    base = [sys.executable, "-m", "rh_parallel.cli.main"]
    assert (
        "demo"
        in subprocess.run([*base, "--help"], capture_output=True, text=True, check=True).stdout
    )
    unknown = subprocess.run([*base, "dance"], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2 and "unknown command 'dance'" in unknown.stderr
