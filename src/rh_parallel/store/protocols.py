"""What the executor needs from a run store and a result cache: two small protocols.

A server-backed store (Redis, Postgres) plugs in by implementing them; SQLite is the embedded
default and the memory ones are for tests. Methods are synchronous: a backend with
``blocking = True`` is called from a worker thread for reads, and its ``save`` / ``put`` must
only queue the write (a writer thread commits in batches), so nothing blocks the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["ResultCache", "RunStore", "RunSummary", "SavedItem", "Serializer"]

Serializer = Literal["json", "pickle"]


@dataclass(frozen=True, slots=True)
class SavedItem:
    """One completed item (or sequential event) of a run, as the store keeps it.

    ``address`` is the item's address, unique within the run; ``parent`` the address of the
    group (or scope) it ran in, which is how the executor loads a group's saved items at once.
    ``fingerprint`` identifies the work and its input (``None``: nothing to compare).
    """

    run_id: str
    address: str
    parent: str
    name: str
    fingerprint: str | None
    value: Any
    attempts: int = 1
    execution_time: float = 0.0
    saved_at: float = 0.0


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run as ``rh-parallel runs list`` shows it."""

    run_id: str
    created: float
    updated: float
    items: int


@runtime_checkable
class RunStore(Protocol):
    """Where completed items are saved, so a run resumed under the same id skips them."""

    blocking: bool
    """``True``: reads do I/O, the executor calls them from a worker thread."""

    def has_run(self, run_id: str) -> bool:
        """Whether anything was saved under ``run_id``."""
        ...

    def load(self, run_id: str, parent: str) -> dict[str, SavedItem]:
        """The saved items of ``run_id`` directly under ``parent``, by address (values
        decoded)."""
        ...

    def save(self, item: SavedItem) -> None:
        """Queue ``item`` for the next commit, overwriting what its address had.

        Encodes the value at once, on the caller's thread (so a value mutated afterwards is
        saved as it was): raises ``TypeError`` naming the type when it cannot be encoded.
        Never blocks on I/O and never raises for a failing write (that is logged and counted
        in ``write_failures``).
        """
        ...

    def flush(self) -> None:
        """Commit what is queued soon, without waiting (the executor calls it at group end)."""
        ...

    def sync(self) -> None:
        """Commit everything queued and wait for it; the store stays open (the executor calls
        it from a worker thread at ``ExecutionState.aclose()``)."""
        ...

    def close(self) -> None:
        """Commit everything queued, wait for it, and release the backend (idempotent)."""
        ...

    @property
    def write_failures(self) -> int:
        """How many items could not be written (they run again on resume)."""
        ...


@runtime_checkable
class ResultCache(Protocol):
    """Values of earlier calls by key, shared across runs (and, for SQLite, processes)."""

    blocking: bool
    """``True``: reads do I/O, the executor calls them from a worker thread."""

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """The unexpired values of those ``keys`` that are cached (misses are absent)."""
        ...

    def put(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Cache ``value`` under ``key`` for ``ttl`` seconds (``None``: the cache's default).

        Encodes at once on the caller's thread (``TypeError`` when it cannot); a later
        ``get_many`` in this process sees it at once, even before a batched commit.
        """
        ...

    def sync(self) -> None:
        """Commit everything queued and wait for it; the cache stays open."""
        ...

    def close(self) -> None:
        """Commit everything queued and release the backend (idempotent)."""
        ...
