"""The documentation site builds with ``mkdocs build --strict``, and README.md's links resolve.

Strict mode (with the ``validation`` settings in mkdocs.yml) turns every warning into a
failure: a page missing from the nav, a broken link or anchor, an API reference entry
mkdocstrings cannot find. README.md is not part of the site, so its relative links are
checked here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
import pytest
from markdown_it import MarkdownIt

from tests.docs.helpers import ROOT

BUILD_TIMEOUT = 240


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    # Material prints a notice about its end of life on every build; it is not a warning
    # (strict mode ignores it), only noise in a failure's output
    env["NO_MKDOCS_2_WARNING"] = "1"
    for name in [name for name in env if name.startswith("OTEL_")]:
        del env[name]
    return env


@pytest.mark.timeout(BUILD_TIMEOUT + 30)
def test_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=_build_env(), capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    output = run.stdout + run.stderr
    problems = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR"))]
    built = run.returncode == 0
    assert built, "mkdocs build --strict failed:\n" + (
        "\n".join(problems) if problems else output[-6000:]
    )
    # a fence whose header superfences did not accept is not code: it shows as ``` in the page
    unrendered = sorted(
        str(page.relative_to(site))
        for page in site.rglob("*.html")
        if "```" in page.read_text("utf-8")
    )
    assert not unrendered, f"code fences shown as text (check their headers) in: {unrendered}"
    # the API reference shows the docstrings' Sphinx roles as code (docs/plugins/griffe_rst.py)
    roles = sorted(
        str(page.relative_to(site))
        for page in (site / "reference").rglob("*.html")
        if re.search(r":[a-z]+:<code>", page.read_text("utf-8"))
    )
    assert not roles, f"reST roles shown as text in: {roles}"


def test_docstring_idioms_become_markdown() -> None:
    spec = importlib.util.spec_from_file_location(
        "griffe_rst", ROOT / "docs" / "plugins" / "griffe_rst.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    docstring = (
        "Uses :class:`~rh_parallel.store.RunStore` and :mod:`rh_parallel.ray`.\n"
        "\n"
        "Example::\n"
        "\n"
        "    state = ExecutionState()\n"
        "\n"
        ">>> probe = ConcurrencyProbe()\n"
        "\n"
        "On a terminal::\n"
        "\n"
        "    ▶ group ███▒▒ 5/13\n"
    )
    assert module.to_markdown(docstring).splitlines() == [
        "Uses `RunStore` and `rh_parallel.ray`.",
        "",
        "Example:",
        "",
        "```python",
        "state = ExecutionState()",
        "```",
        "",
        "",
        "```pycon",
        ">>> probe = ConcurrencyProbe()",
        "```",
        "",
        "",
        "On a terminal:",
        "",
        "```text",
        "▶ group ███▒▒ 5/13",
        "```",
    ]


def _relative_links(page: Path) -> list[tuple[str, str]]:
    """``(path, anchor)`` of the page's links and images that point into the repository
    (``path`` is empty for a link to an anchor of the page itself)."""
    targets = []
    for token in MarkdownIt().parse(page.read_text("utf-8")):
        for child in token.children or []:
            target = child.attrGet("href") if child.type == "link_open" else None
            if child.type == "image":
                target = child.attrGet("src")
            if isinstance(target, str):
                parts = urlsplit(target)
                if not parts.scheme and not parts.netloc:
                    targets.append((unquote(parts.path), parts.fragment))
    return targets


def _anchors(page: Path) -> set[str]:
    """The heading ids of a Markdown page, as MkDocs (and, for plain headings, GitHub) make
    them."""
    md = markdown.Markdown(extensions=["toc", "attr_list", "tables", "fenced_code"])
    md.convert(page.read_text("utf-8"))
    ids: set[str] = set()
    pending = list(md.toc_tokens)
    while pending:
        entry = pending.pop()
        ids.add(entry["id"])
        pending.extend(entry["children"])
    return ids


def test_readme_links_point_at_files() -> None:
    readme = ROOT / "README.md"
    links = _relative_links(readme)
    assert links, "README.md links to nothing in the repository: is the parser right?"
    broken = []
    for path, anchor in links:
        target = readme.parent / path if path else readme
        if not target.exists():
            broken.append(f"{path}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{path}#{anchor}: no such heading")
    assert not broken, f"README.md has broken links: {broken}"
