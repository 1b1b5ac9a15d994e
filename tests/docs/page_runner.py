"""Runs one page's Python blocks, in order, in one namespace (run by test_code_blocks.py in
a fresh interpreter per page, so a block that configures telemetry or logging cannot leak
into other tests). Not collected on its own: its name does not start with ``test_``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytest_examples import EvalExample

from tests.docs.helpers import python_blocks, skip_reason


def test_page_blocks(eval_example: EvalExample) -> None:
    page = Path(os.environ["RH_DOCS_PAGE"])
    namespace: dict[str, Any] = {}
    for example in python_blocks(page):
        if skip_reason(example.prefix_settings(), example) is not None:
            continue
        print(f"--- running {example}", flush=True)
        namespace = eval_example.run(example, module_globals=namespace)
