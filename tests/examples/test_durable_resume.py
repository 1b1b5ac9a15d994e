"""examples/durable_resume.py: a run with failures, resumed under the same run id, recovers
what completed and runs only what failed."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.examples.helpers import run_example

COMPLETED_FIRST = "doc-0, doc-1, doc-2, doc-4, doc-5, doc-7"


def test_both_runs_in_one_command(tmp_path: Path) -> None:
    done = run_example("durable_resume.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    first, second, outbox = done.stdout.split("\n\n")
    assert first.splitlines()[1:] == [
        first.splitlines()[1],
        "  recovered from runs.db, not run: 0",
        "  ran: 8 (doc-0, doc-1, doc-2, doc-3, doc-4, doc-5, doc-6, doc-7)",
        "  failed: 2 (doc-3: upstream down for doc-3, doc-6: upstream down for doc-6)",
    ]
    assert second.splitlines()[1:] == [
        first.splitlines()[1],  # the same run id
        f"  recovered from runs.db, not run: 6 ({COMPLETED_FIRST})",
        "  ran: 2 (doc-3, doc-6)",
        "  failed: 0",
    ]
    assert re.fullmatch(r"  run id \d{8}T\d{9}-[0-9a-f]{8}", first.splitlines()[1])
    assert outbox == "outbox: 8 notes, one per document\n"
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [
        f"doc-{n}.txt" for n in range(8)
    ]


def test_two_processes_resume_one_run_id(tmp_path: Path) -> None:
    crashed = run_example(
        "durable_resume.py", "--run-id", "r1", "--fail", "doc-3,doc-6", cwd=tmp_path
    )
    assert crashed.returncode == 1, crashed.stderr
    assert crashed.stderr == ""
    assert "  failed: 2 (doc-3: upstream down for doc-3, doc-6: upstream down" in crashed.stdout
    assert "run the same command without --fail to resume run r1" in crashed.stdout

    resumed = run_example("durable_resume.py", "--run-id", "r1", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[1:] == [
        f"  recovered from runs.db, not run: 6 ({COMPLETED_FIRST})",
        "  ran: 2 (doc-3, doc-6)",
        "  failed: 0",
    ]

    again = run_example("durable_resume.py", "--run-id", "r1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "  ran: 0" in again.stdout.splitlines()
    # the store holds the eight results of run r1, one row each
    with sqlite3.connect(tmp_path / "runs.db") as db:
        (rows,) = db.execute(
            "SELECT count(*) FROM rh_parallel_items WHERE run_id = 'r1'"
        ).fetchone()
    assert rows == 8
