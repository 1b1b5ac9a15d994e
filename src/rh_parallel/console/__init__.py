"""The console layer: printers (bus subscribers) and their structlog renderers.

The ``live`` mode's renderer (:mod:`rh_parallel.console.live`, on rich) is imported when a
printer in that mode is made, not here.
"""

from rh_parallel.console.printer import MODES, EventPrinter, ParallelEventPrinter, resolve_mode
from rh_parallel.console.renderers import (
    EVENT_KEYS,
    PRESENTATION_KEYS,
    CollapsedRenderer,
    JSONRenderer,
    ProgressRenderer,
    RealtimeRenderer,
    SmartRenderer,
)
from rh_parallel.console.style import Style, colour_wanted, style_for

__all__ = [
    "EVENT_KEYS",
    "MODES",
    "PRESENTATION_KEYS",
    "CollapsedRenderer",
    "EventPrinter",
    "JSONRenderer",
    "ParallelEventPrinter",
    "ProgressRenderer",
    "RealtimeRenderer",
    "SmartRenderer",
    "Style",
    "colour_wanted",
    "resolve_mode",
    "style_for",
]
