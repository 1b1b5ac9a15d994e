"""examples/llm_workflow.py runs as a user would run it: a subprocess, its own server, the
openai SDK calling it over real HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.examples.helpers import run_example

pytest.importorskip("openai")
pytest.importorskip("uvicorn")


def test_the_llm_workflow_example_runs_against_its_own_provider(tmp_path: Path) -> None:
    done = run_example("llm_workflow.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warning, no log line
    out = done.stdout
    # the progress printer drew both groups, and said why items waited
    assert "Parallel Group: research" in out and "Parallel Group: glossary" in out
    assert "waiting for rate limit 'openai'" in out  # the shared RateLimit spaced the starts
    assert "summary: Recommendation, from 12 findings" in out
    # plan + 12 answers + 4 definitions + summary, whatever the 429s on the way
    seen = re.search(r"provider saw (\d+) requests: (\d+) answered, (\d+) refused with 429", out)
    assert seen is not None, out
    total, answered, refused = map(int, seen.groups())
    assert answered == 18 and total == answered + refused
    assert re.search(r"at most [1-4] at once", out)  # never above the capacity
    settled = re.search(r"research concurrency: started at 8, settled at (\d+)", out)
    assert settled is not None and 1 <= int(settled.group(1)) <= 16
    assert "breaker 'openai': closed" in out
