"""The real CLI, run as a subprocess: every mode, telemetry on and off, counts that add up."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import demo_command, json_lines, lines, run_cli

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


# -- durable runs: --store, --run-id, --cache --------------------------------------------------

DURABLE = ("--latency", "0.01", "--seed", "7", "--no-telemetry")
RESUMING = "rh-parallel demo: resuming run {}: completed items are recovered"
FRESH = re.compile(r"^rh-parallel demo: run id (\S+) \(resume with --store (\S+) --run-id (\S+)\)$")


def demo(*args: str) -> tuple[list[dict[str, Any]], str]:
    """The JSON records of one demo run and its stderr."""
    done = run_cli("demo", *DURABLE, "--mode", "json", *args)
    return json_lines(done.stdout), done.stderr


def report_of(records: list[dict[str, Any]]) -> dict[str, Any]:
    report = records[-1]
    assert report["event"] == "demo_report"
    return report


def documents(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record of each document (its end), by document name."""
    ends = {}
    for record in records:
        if record.get("event") == "item" and record.get("group_name") == "Document Processing":
            ends[record["name"]] = record
    return {name: record for name, record in ends.items() if name != "aggregate"}


def by_status(records: list[dict[str, Any]], status: str) -> set[str]:
    return {r["address"] for r in records if r.get("address") and r.get("status") == status}


def saved_items(store: Path, run_id: str) -> dict[str, Any]:
    """What the store holds for ``run_id``, by address (read as ``runs show`` reads it)."""
    done = run_cli("runs", "show", run_id, "--store", str(store), "--json", "--values")
    return {record["address"]: record for record in json_lines(done.stdout)}


def test_a_failed_run_resumed_by_the_same_command_runs_only_what_did_not_complete(
    tmp_path: Path,
) -> None:
    store = tmp_path / "runs.db"
    same = ("--store", str(store), "--run-id", "r1", "--fail-rate", "0.3")
    first, errors = demo(*same)
    assert RESUMING.format("r1") not in errors  # a new run under a chosen id
    report = report_of(first)
    assert report["run_id"] == "r1" and report["recovered"] == 0
    assert report["failed"] > 0  # seed 7 at 30%: some documents fail to parse
    ended = documents(first)
    assert len(ended) == 12
    nested: dict[str, int] = {}  # failures in a document's nested groups (analyze, search)
    for r in first:
        if r.get("event") == "group_end" and r["group_name"] in ("analyze", "search"):
            document = r["address"].rsplit("/", 1)[0]
            nested[document] = nested.get(document, 0) + r["failed"]
    # a document is saved when it completed and so did everything inside it
    whole = {
        record["address"]
        for record in ended.values()
        if record["status"] == "completed" and nested[record["address"]] == 0
    }
    saved = saved_items(store, "r1")
    saved_documents = {a for a, r in saved.items() if r["parent"].endswith("Document Processing")}
    assert saved_documents == whole and whole  # some, not all
    assert "orchestrator" not in saved  # work under it failed: it runs again

    second, errors = demo(*same)  # the same command again
    assert RESUMING.format("r1") in lines(errors)
    report = report_of(second)
    assert report["run_id"] == "r1" and report["recovered"] == len(whole)
    assert report["completed"] + report["failed"] == report["total"] == 12
    started, recovered = by_status(second, "started"), by_status(second, "recovered")
    entered = {r["address"] for r in second if r.get("event") == "group_start"}
    # every item saved by the first run comes back recovered, or sits inside one that did
    # (a recovered document is not entered), or inside a group this run never reached (its
    # document failed again before opening it: the resumed run draws new failures); none
    # runs again
    for address in saved:
        parts = address.split("/")
        ancestors = {"/".join(parts[:n]) for n in range(1, len(parts) + 1)}
        assert ancestors & recovered or address.rsplit("/", 1)[0] not in entered, address
    assert not set(saved) & started
    # inside a document that runs again, what completed in it is recovered (an LLM call
    # beside a failed search), the rest runs
    inside = {a for a in saved if a.rsplit("/", 1)[0] in entered}
    assert inside <= recovered
    # what did not complete runs again: failed documents, and those with failures inside
    incomplete = {record["address"] for record in ended.values()} - whole
    assert incomplete and incomplete <= started
    for address in incomplete:
        assert documents(second)[address.rsplit("/", 1)[1]]["status"] != "recovered"
    # what the first run saved is kept as it was
    after = saved_items(store, "r1")
    for address, item in saved.items():
        kept = ("value", "attempts", "execution_time", "saved_at")
        assert [after[address][key] for key in kept] == [item[key] for key in kept]


def test_a_run_that_completed_is_recovered_whole(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    first, errors = demo("--store", str(store), "--fail-rate", "0")
    (announced,) = [m for m in map(FRESH.match, lines(errors)) if m]
    run_id, path, again = announced.groups()
    assert path == str(store) and again == run_id == report_of(first)["run_id"]
    assert report_of(first)["failed"] == 0 and report_of(first)["recovered"] == 0

    second, errors = demo("--store", str(store), "--run-id", run_id, "--fail-rate", "0")
    assert RESUMING.format(run_id) in lines(errors)
    assert not by_status(second, "started")  # nothing ran: not even the orchestrator
    assert by_status(second, "recovered") == {"orchestrator"}
    report = report_of(second)
    assert report["run_id"] == run_id
    assert report["completed"] == report["recovered"] == report["total"] == 12
    assert report["failed"] == 0 and report["aggregate"] == "recovered"

    text = run_cli(
        "demo", *DURABLE, "--store", str(store), "--run-id", run_id, "--mode", "collapsed"
    )
    line = (
        r"^documents: 12 completed \(12 recovered\), 0 failed, 12 total in .*; aggregate recovered$"
    )
    assert re.search(line, text.stdout, re.MULTILINE), text.stdout


def test_a_cache_serves_the_llm_calls_of_a_later_run(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache.db")
    first, _ = demo("--cache", cache, "--fail-rate", "0", "--docs", "4")
    second, _ = demo("--cache", cache, "--fail-rate", "0", "--docs", "4")
    assert report_of(first)["run_id"] != report_of(second)["run_id"]  # two fresh runs

    def llm_ends(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if r.get("kind") == "llm" and r["status"] != "started"]

    assert len(llm_ends(first)) == len(llm_ends(second)) == 8  # summary and labels per doc
    assert not any(r.get("cached") for r in llm_ends(first))
    assert all(r["status"] == "completed" and r.get("cached") is True for r in llm_ends(second))
    # the search tool is not cacheable: it runs again
    searches = [r for r in second if r.get("name") == "related" and r["status"] == "completed"]
    assert len(searches) == 4 and not any(r.get("cached") for r in searches)


def test_run_id_without_a_store_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("demo", *DURABLE, "--run-id", "r1", status=2)
    assert lines(done.stderr) == [
        "rh-parallel demo: error: --run-id names a run saved in a store: pass --store PATH with it"
    ]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flag", ["--store", "--cache"])
def test_a_file_that_is_not_a_store_is_one_line_and_left_untouched(
    flag: str, tmp_path: Path
) -> None:
    foreign = tmp_path / "notes.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    before = foreign.read_bytes()
    done = run_cli("demo", *DURABLE, flag, str(foreign), status=2)
    (line,) = lines(done.stderr)
    assert line.startswith("rh-parallel demo: error: ") and str(foreign) in line
    assert foreign.read_bytes() == before
    assert not done.stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize("executor", ["thread", "process", "ray"])
def test_the_cpu_bound_step_runs_where_executor_says(executor: str) -> None:
    done = run_cli(
        "demo", "--executor", executor, "--mode", "json", "--latency", "0.01", "--no-telemetry"
    )
    records = json_lines(done.stdout)
    parsed = [r for r in records if r.get("event") == "item" and r.get("name") == "parse_and_hash"]
    report = next(r for r in records if r.get("event") == "demo_report")
    completed = [r for r in parsed if r["status"] == "completed"]
    # one parse per document that got past its simulated parse failure
    assert len(completed) == report["completed"] and completed
    assert {r["kind"] for r in parsed} == {"task"}
