"""The console layer: printers (bus subscribers) and their structlog renderers."""

from rh_parallel.console.printer import MODES, EventPrinter, ParallelEventPrinter
from rh_parallel.console.renderers import (
    EVENT_KEYS,
    CollapsedRenderer,
    JSONRenderer,
    ProgressRenderer,
    RealtimeRenderer,
    SmartRenderer,
)
from rh_parallel.console.style import Style, style_for

__all__ = [
    "EVENT_KEYS",
    "MODES",
    "CollapsedRenderer",
    "EventPrinter",
    "JSONRenderer",
    "ParallelEventPrinter",
    "ProgressRenderer",
    "RealtimeRenderer",
    "SmartRenderer",
    "Style",
    "style_for",
]
