"""Find the documentation's code blocks and the settings on their fences.

Python blocks are found by pytest-examples (the tool pydantic and others use for the same
job); shell blocks by markdown-it-py (rich's Markdown parser, already installed). A fence may
carry settings after the language, as pytest-examples reads them::

    ```python test="skip" reason="needs a Ray cluster"

Every skipped block must say why.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from pytest_examples import CodeExample, find_examples

ROOT = Path(__file__).resolve().parents[2]
# the package docstring's quick start is the first example many readers see
PAGES = sorted(
    [ROOT / "README.md", ROOT / "src/rh_parallel/__init__.py", *(ROOT / "docs").rglob("*.md")]
)
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def python_blocks(page: Path) -> list[CodeExample]:
    """The page's Python blocks, in order."""
    return list(find_examples(page))


@dataclass(frozen=True)
class ShellBlock:
    page: Path
    line: int  # 1-based line of the opening fence
    source: str
    settings: dict[str, str]

    def __str__(self) -> str:
        return f"{page_id(self.page)}:{self.line}"


def fence_settings(info: str) -> dict[str, str]:
    """``bash test="skip" reason="..."`` -> ``{"test": "skip", "reason": "..."}``."""
    words = shlex.split(info)[1:]
    return dict(word.split("=", 1) for word in words if "=" in word)


def shell_blocks(page: Path) -> list[ShellBlock]:
    """The page's shell blocks (bash, sh, shell, console), in order."""
    tokens = MarkdownIt().parse(page.read_text("utf-8"))
    blocks = []
    for token in tokens:
        if token.type != "fence" or not token.info.strip():
            continue
        language = token.info.split()[0].lower()
        if language in SHELL_LANGUAGES:
            assert token.map is not None
            blocks.append(
                ShellBlock(page, token.map[0] + 1, token.content, fence_settings(token.info))
            )
    return blocks


def skip_reason(settings: dict[str, str], where: object) -> str | None:
    """The reason a block is not run, or None; a skip without a reason is an error."""
    if settings.get("test") != "skip":
        return None
    reason = settings.get("reason", "").strip()
    if not reason:
        raise AssertionError(f'{where}: test="skip" needs reason="why this block cannot run"')
    return reason
