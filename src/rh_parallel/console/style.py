"""How printers draw: symbols, icons, bars and colours, with an ASCII fallback.

Colours only when the output is a terminal; ``NO_COLOR`` (any value) turns them off and
``FORCE_COLOR`` (any value) turns them on. Symbols and bars fall back to ASCII when the output's
encoding cannot show them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Style", "style_for"]

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
        table = _UNICODE if self.unicode else _ASCII
        return self.paint(table.get(status, "?"), status)

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


def style_for(file: TextIO, colour: bool | None = None, unicode: bool | None = None) -> Style:
    """The style for ``file``: colours on terminals (NO_COLOR / FORCE_COLOR honoured),
    Unicode where the encoding allows; pass ``colour=`` / ``unicode=`` to decide yourself."""
    if colour is None:
        if "NO_COLOR" in os.environ:
            colour = False
        elif "FORCE_COLOR" in os.environ:
            colour = True
        else:
            isatty = getattr(file, "isatty", None)
            colour = bool(isatty and isatty())
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
