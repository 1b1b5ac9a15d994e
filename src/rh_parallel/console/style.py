"""How printers draw: symbols, icons, bars and colours, with an ASCII fallback.

Colours only when the output is a terminal; ``NO_COLOR`` set to a non-empty value turns them
off (https://no-color.org) and ``FORCE_COLOR`` set to a non-empty value turns them on even when
the output is not a terminal (``NO_COLOR`` wins when both are set). Symbols and bars fall back
to ASCII when the output's encoding cannot show them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Style", "colour_wanted", "is_terminal", "style_for"]

_UNICODE = {
    "started": "▶",
    "retrying": "↻",
    "waiting": "⧗",
    "completed": "✔",
    "failed": "✘",
    "cancelled": "⊘",
    "timed_out": "⏱",
    "rejected": "⛔",
    "skipped": "↷",
    "recovered": "✔",
    "running": "▶",
    "pending": "·",
}
_ASCII = {
    "started": ">",
    "retrying": "~",
    "waiting": "z",
    "completed": "+",
    "failed": "x",
    "cancelled": "-",
    "timed_out": "T",
    "rejected": "!",
    "skipped": "/",
    "recovered": "+",
    "running": ">",
    "pending": ".",
}
_ICONS = {"tool": "🔧", "llm": "🧠", "agent": "🤖", "task": "⚙", "group": "📦"}
_ASCII_ICONS = {
    "tool": "[tool]",
    "llm": "[llm]",
    "agent": "[agent]",
    "task": "[task]",
    "group": "[group]",
}
# the tones in rich's style names, for the live view
RICH_TONES = {
    "completed": "green",
    "recovered": "green",
    "failed": "red",
    "timed_out": "red",
    "rejected": "magenta",
    "cancelled": "yellow",
    "skipped": "yellow",
    "retrying": "yellow",
    "waiting": "yellow",
    "started": "cyan",
    "running": "cyan",
    "dim": "dim",
    "bold": "bold",
}
_COLOURS = {
    "completed": "32",
    "recovered": "32",
    "failed": "31",
    "timed_out": "31",
    "rejected": "35",
    "cancelled": "33",
    "skipped": "33",
    "retrying": "33",
    "waiting": "33",
    "started": "36",
    "running": "36",
    "dim": "2",
    "bold": "1",
}


@dataclass(frozen=True)
class Style:
    """What one output can show: ``unicode`` symbols and bars, ``colour`` escapes."""

    unicode: bool = True
    colour: bool = False

    def symbol(self, status: str) -> str:
        return self.paint(self.glyph(status), status)

    def glyph(self, status: str) -> str:
        """The symbol of ``status``, unpainted."""
        return (_UNICODE if self.unicode else _ASCII).get(status, "?")

    def icon(self, kind: str) -> str:
        return (_ICONS if self.unicode else _ASCII_ICONS).get(kind, "")

    def paint(self, text: str, tone: str) -> str:
        code = _COLOURS.get(tone)
        if not self.colour or code is None:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def bar(self, done: int, total: int, width: int = 10) -> str:
        filled = width if total == 0 else round(width * done / total)
        full, empty = ("█", "▒") if self.unicode else ("#", "-")
        return full * filled + empty * (width - filled)

    @property
    def arrow(self) -> str:
        """What joins the parts of a nested group's label: ``doc-03 › analyze``."""
        return "›" if self.unicode else ">"

    @property
    def branch(self) -> str:
        return "└─" if self.unicode else "`-"

    @property
    def dot(self) -> str:
        return "·" if self.unicode else "|"


def _can_encode(file: TextIO) -> bool:
    encoding = getattr(file, "encoding", None) or "utf-8"
    try:
        "▶✔✘█▒📦🔧└·".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def is_terminal(file: TextIO) -> bool:
    """Whether ``file`` is a terminal (a file without ``isatty``, or a closed one, is not)."""
    isatty = getattr(file, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except (OSError, ValueError):
        return False


def colour_wanted(file: TextIO) -> bool:
    """Colours for ``file``: off when ``NO_COLOR`` is non-empty, on when ``FORCE_COLOR`` is
    non-empty, else on terminals only (an empty variable counts as unset)."""
    if os.environ.get("NO_COLOR", ""):
        return False
    if os.environ.get("FORCE_COLOR", ""):
        return True
    return is_terminal(file)


def style_for(file: TextIO, colour: bool | None = None, unicode: bool | None = None) -> Style:
    """The style for ``file``: colours as :func:`colour_wanted` says, Unicode where the
    encoding allows; pass ``colour=`` / ``unicode=`` to decide yourself."""
    if colour is None:
        colour = colour_wanted(file)
    if unicode is None:
        unicode = _can_encode(file)
    return Style(unicode=unicode, colour=colour)


def duration(seconds: float | None) -> str:
    """``850ms``, ``1.2s``, ``2m05s``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"
