"""How a store turns a value into bytes and back: ``"json"`` (the default) or ``"pickle"``.

``"json"`` writes with :func:`pydantic_core.to_json`, so pydantic models, dataclasses and plain
data (dicts, lists, tuples, str, numbers, ``None``, datetimes, UUIDs, enums, ...) can be
stored; what comes back is plain data (a model comes back as a dict, a tuple as a list).
NaN and infinities are written as the JavaScript constants ``NaN`` / ``Infinity`` that
:func:`json.loads` reads back as floats, also inside a pydantic model (whose own JSON would
write ``null`` for them). A value of any other type is refused with a
``TypeError`` naming the type, never stored half-way.

``"pickle"`` keeps Python types exactly but executes code when loading: only use it for a
store that nobody else can write.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

from pydantic_core import to_json, to_jsonable_python

from rh_parallel.store.protocols import Serializer

__all__ = ["SERIALIZERS", "check_serializer", "decode", "encode"]

SERIALIZERS: tuple[Serializer, ...] = ("json", "pickle")


def check_serializer(serializer: object) -> Serializer:
    """``serializer`` if it is ``"json"`` or ``"pickle"``; ``ValueError`` otherwise."""
    if serializer == "json":
        return "json"
    if serializer == "pickle":
        return "pickle"
    raise ValueError(f"serializer must be 'json' or 'pickle', got {serializer!r}")


def encode(value: Any, serializer: Serializer) -> bytes:
    """``value`` as bytes; ``TypeError`` naming its type when it cannot be encoded."""
    if serializer == "json":
        try:
            data = to_json(value, inf_nan_mode="constants")
            if b"null" in data:
                # maybe a NaN or an infinity in a model: a model writes those with its own
                # ``ser_json_inf_nan`` (``null`` by default) but keeps them as floats in a
                # JSON-able Python dump, which is then written with the constants
                data = to_json(
                    to_jsonable_python(value, inf_nan_mode="constants"), inf_nan_mode="constants"
                )
            return data
        except Exception as exc:
            raise TypeError(
                f"a value of type {type(value).__name__} cannot be stored as JSON ({exc}); "
                "return plain data or a pydantic model, or pass serializer='pickle' to the "
                "store (only for a store nobody else can write)"
            ) from exc
    if serializer == "pickle":
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TypeError(
                f"a value of type {type(value).__name__} cannot be pickled ({exc}); "
                "return plain data or a picklable object"
            ) from exc
    raise ValueError(f"serializer must be 'json' or 'pickle', got {serializer!r}")


def decode(data: bytes, serializer: Serializer) -> Any:
    """The value ``data`` was encoded from (plain data for ``"json"``).

    Raises ``ValueError`` (or, for pickle, whatever unpickling raises) when ``data`` cannot
    be decoded.
    """
    if serializer == "json":
        return json.loads(data)
    if serializer == "pickle":
        return pickle.loads(data)
    raise ValueError(f"serializer must be 'json' or 'pickle', got {serializer!r}")
