"""Argument checks shared by the options and policies: messages that name the argument and
the fix, and values shortened for display (``10**400`` is not worth 400 digits)."""

from __future__ import annotations

import math
import numbers
import operator
import reprlib
from typing import Any

__all__ = ["check_count", "check_real", "check_seconds", "show"]

_short = reprlib.Repr()
_short.maxlong = _short.maxstring = _short.maxother = 40


def show(value: Any) -> str:
    """``repr(value)``, shortened for error messages (``10**400`` is not worth 400 digits)."""
    return _short.repr(value)


def check_count(owner: str, name: str, value: Any, meaning: str) -> int:
    """``value`` as an int >= 1, or the error that names ``owner(name=...)`` and the fix.

    ``TypeError`` for what is not an integer (``True`` included: a bool is not a count),
    ``ValueError`` for an integer below 1. Any size is fine.
    """
    if isinstance(value, bool):
        raise TypeError(f"{owner}({name}={show(value)}): {meaning}; pass an int, not a bool")
    try:
        count = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{owner}({name}={show(value)}): {meaning}; pass an int, not a {type(value).__name__}"
        ) from None
    if count < 1:
        raise ValueError(f"{owner}({name}={show(value)}): {meaning}; pass an int >= 1")
    return count


def check_real(owner: str, name: str, value: Any, expected: str, example: str) -> float:
    """``value`` as a float, or a ``TypeError`` naming ``owner(name=...)`` and the fix.

    Any real number but a bool (``True`` is not a number of seconds); NaN and infinities are
    returned for the caller to judge (an int beyond the float range reads as infinite).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{owner}({name}={show(value)}) is {expected}; pass a float, e.g. {name}={example}"
        )
    try:
        return float(value)
    except OverflowError:  # an int beyond the float range, e.g. 10**400
        return math.inf


def check_seconds(
    owner: str, name: str, value: Any, *, positive: bool = False, example: str = "1.0"
) -> float:
    """``value`` as a finite float of seconds (``> 0`` when ``positive``, else ``>= 0``).

    ``TypeError`` for what is not a real number, ``ValueError`` for NaN, infinities and values
    out of range.
    """
    bound = "> 0" if positive else ">= 0"
    seconds = check_real(owner, name, value, f"a number of seconds {bound}", example)
    if not math.isfinite(seconds) or (seconds <= 0 if positive else seconds < 0):
        raise ValueError(
            f"{owner}({name}={show(value)}) must be a finite number of seconds {bound}; "
            f"pass e.g. {name}={example}"
        )
    return seconds
