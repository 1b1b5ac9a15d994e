"""examples/ray_scale_out.py: CPU-bound items run in Ray workers, under their item spans."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.examples.helpers import run_example


@pytest.mark.timeout(150)  # starting a local Ray instance takes seconds
def test_items_run_in_ray_workers_under_their_item_spans(tmp_path: Path) -> None:
    done = run_example("ray_scale_out.py", "--rounds", "20000", cwd=tmp_path, timeout=140)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    *items, completed, joined = done.stdout.splitlines()
    assert len(items) == 8
    driver = re.search(r"this driver is pid (\d+)", completed)
    assert driver is not None and completed.startswith("8 of 8 items completed in"), completed
    for n, line in enumerate(items):
        found = re.fullmatch(
            rf"chunk-{n}: 50 words, sha256\^20000 [0-9a-f]{{12}}, worker pid (\d+), "
            r"under its item span: yes",
            line,
        )
        assert found is not None, line
        assert found[1] != driver[1]
    assert re.fullmatch(r"8 of 8 ran under their item's span, in trace [0-9a-f]{32}", joined)
