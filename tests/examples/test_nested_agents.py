"""examples/nested_agents.py: an orchestrator agent, a nested group per document, a global
limit that holds, results read by name, and a printer drawing it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.examples.helpers import run_example

DOCS = [f"doc-{n}" for n in range(1, 7)]


def test_every_document_is_analyzed_under_the_global_limit(tmp_path: Path) -> None:
    done = run_example("nested_agents.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    printed, report = done.stdout.split("\n\n", 1)
    # the progress printer: the orchestrator, its group, a nested group per document
    assert printed.startswith("▶ 🤖 orchestrator [STARTED]")
    assert "✔ 🤖 orchestrator [COMPLETED]" in printed
    assert "Parallel Group: documents [6/6]" in printed and "6 completed, 0 failed" in printed
    for doc in DOCS:
        assert f"✔ 🤖 {doc} [COMPLETED]" in printed
        assert re.search(
            rf"Parallel Group: {doc} › analyze \[3/3\].*3 completed, 0 failed", printed
        )
    assert "↻ 🧠 topic [RETRYING] attempt 1 failed: the model provider dropped" in printed
    # the report, read by name from the nested groups
    lines = report.splitlines()
    assert [line.split(":")[0] for line in lines[:6]] == DOCS
    assert (
        lines[0]
        == "doc-1: [finance] Acme reported revenue up 12% ... entities: Acme, Europe, Japan"
    )
    assert lines[6].startswith("digest: 6 documents: doc-1: finance; doc-2: operations;")
    # 6 fetches + 18 analysis calls (one retried: 19) + the digest; never above the limit
    calls = re.fullmatch(
        r"26 calls \(1 failed once and was retried\), at most (\d) at once "
        r"\(global_max_workers=3\)",
        lines[7],
    )
    assert calls is not None, lines[7]
    assert 1 <= int(calls[1]) <= 3


def test_the_collapsed_printer_shows_one_block_per_group(tmp_path: Path) -> None:
    done = run_example("nested_agents.py", "--mode", "collapsed", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    printed = done.stdout.split("\n\n", 1)[0]
    assert printed.count("✔ 3 completed, 0 failed") == 6
    assert printed.count("✔ 6 completed, 0 failed") == 1
    assert "✔ 3 completed, 0 failed, 1 retries" in printed
