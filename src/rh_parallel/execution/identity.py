"""What identifies work across runs: fingerprints (did this item's work or input change?) and
cache keys (is this the same pure call?)."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from pydantic_core import to_jsonable_python

from rh_parallel.execution.items import WorkKind
from rh_parallel.model.events import EventInvocation

__all__ = ["identify", "user_cache_key"]


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _canonical(value: Any) -> str | None:
    """Canonical JSON of ``value`` (sorted keys), or ``None`` when it has no JSON form."""
    try:  # plain data, the common case, needs no conversion first
        return _dumps(value)
    except (TypeError, ValueError):
        pass
    try:  # models, dataclasses, dates, enums...
        return _dumps(to_jsonable_python(value))
    except (TypeError, ValueError):
        return None


_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def user_cache_key(key: str) -> str:
    """The cache key of an item added with ``cache_key=key``."""
    return _digest("key\0" + key)


def identify(
    kind: WorkKind, work: object, args: tuple[Any, ...], cacheable: bool
) -> tuple[str | None, str | None]:
    """The fingerprint of some work (``None``: nothing to compare) and, when ``cacheable``
    and the work is a cacheable actor's event, its cache key.

    An event: its actor's name and the canonical JSON of its validated input. A function:
    its qualified name and its arguments (the name alone when they have no JSON form). A
    coroutine or other awaitable: nothing that can be compared.
    """
    if kind is WorkKind.INVOCATION:
        assert isinstance(work, EventInvocation)
        actor = work.event.actor
        try:
            data = _canonical(actor.validate_input(work.input_data))
        except Exception:  # invalid input: the item fails when it runs
            return None, None
        if data is None:
            return None, None
        model = getattr(actor, "model", None)  # another model answers differently
        basis = f"event\0{actor.name}\0{model or ''}\0{data}"
        return _digest(basis), (
            _digest("actor\0" + basis) if cacheable and actor.cacheable else None
        )
    if kind in (WorkKind.ASYNC_CALL, WorkKind.SYNC_CALL, WorkKind.SHIPPED):
        target: Any = work
        extra: list[Any] = []
        keywords: dict[str, Any] = {}
        while isinstance(target, functools.partial):
            extra[:0] = target.args
            keywords = {**target.keywords, **keywords}
            target = target.func
        name = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
        data = _canonical([[*extra, *args], keywords])
        return _digest(f"call\0{name}\0{data if data is not None else '?'}"), None
    return None, None
