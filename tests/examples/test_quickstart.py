"""examples/quickstart.py: eight fetches, retried, reported by name."""

from __future__ import annotations

import re
from pathlib import Path

from tests.examples.helpers import run_example


def test_quickstart_reports_every_document_and_the_group(tmp_path: Path) -> None:
    done = run_example("quickstart.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    *items, total = done.stdout.splitlines()
    assert [line.split(":")[0] for line in items] == [f"doc-{n}" for n in range(8)]
    for line in items:  # a value or a failure, and how many attempts it took (at most 3)
        assert re.search(r": (contents of doc-\d|failed: .+) \(attempts: [123]\)$", line), line
    counts = re.fullmatch(r"(\d) completed, (\d) failed in \d+\.\d\ds", total)
    assert counts is not None, total
    assert int(counts[1]) + int(counts[2]) == 8
