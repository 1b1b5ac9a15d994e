"""Run ids: what ties the records, spans and saved results of one run together.

A run id is fresh and time-sortable unless the user gives one (to resume a run); group ids
derive from the run id and the group's address, so they are stable when a run resumes and
distinct between two runs of one program.
"""

from __future__ import annotations

import hashlib
import secrets
import time

__all__ = ["MAX_RUN_ID_LENGTH", "check_run_id", "group_id", "item_leaf", "new_run_id"]

MAX_RUN_ID_LENGTH = 200


def new_run_id() -> str:
    """A fresh run id that sorts by creation time: ``20261128T195455123-3f9a1c2b``
    (UTC to the millisecond, then 32 random bits)."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}{int(now * 1000) % 1000:03d}-{secrets.token_hex(4)}"


def check_run_id(run_id: object) -> str:
    """``run_id`` if it is a usable run id; a TypeError or ValueError naming the fix if not."""
    if not isinstance(run_id, str):
        raise TypeError(
            f"run_id={run_id!r} takes a string (e.g. 'ingest-2026-11-28'), or None for a fresh one"
        )
    if not run_id or len(run_id) > MAX_RUN_ID_LENGTH or not run_id.isprintable():
        raise ValueError(
            f"run_id={run_id!r} must be 1 to {MAX_RUN_ID_LENGTH} printable characters "
            "(it goes into logs, spans and file names), e.g. 'ingest-2026-11-28'"
        )
    return run_id


def group_id(run_id: str, address: str) -> str:
    """The id of the group at ``address`` in run ``run_id``."""
    digest = hashlib.blake2b(f"{run_id}\0{address}".encode(), digest_size=8)
    return "grp-" + digest.hexdigest()


_ESCAPES = str.maketrans({"%": "%25", "/": "%2F", ":": "%3A"})


def item_leaf(index: int, explicit_name: str | None, name: str) -> str:
    """The last segment of an item's address: its name when it has one (so a resumed run
    matches it by name, wherever it was added), else ``index:function``.

    ``%``, ``/`` and ``:`` in names are escaped: a name never reads as another segment, and
    only an unnamed item's segment has a bare ``:``, so the two forms never collide.
    """
    if explicit_name is not None:
        return _escaped(explicit_name)
    return f"{index}:{name if name.isidentifier() else name.translate(_ESCAPES)}"


def _escaped(name: str) -> str:
    if "%" in name or "/" in name or ":" in name:
        return name.translate(_ESCAPES)
    return name
