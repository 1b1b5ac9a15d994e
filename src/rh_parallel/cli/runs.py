"""``rh-parallel runs``: list, show and delete the runs saved in a run store.

::

    rh-parallel runs list --store runs.db            # one line per run, newest first
    rh-parallel runs show RUN_ID --store runs.db     # its saved items, as a tree
    rh-parallel runs show RUN_ID --store runs.db --values --json
    rh-parallel runs delete RUN_ID --store runs.db

A store is only ever opened, never created: a path with no file is one line on stderr and
status 2, as is a file that is not an rh-parallel store (left untouched). An unknown run id is
status 1. Saved values may be private: ``show`` prints them only with ``--values``. ``--json``
prints one JSON object per line. Statuses are those of :mod:`rh_parallel.cli.process`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from rh_parallel.cli.options import EXIT_USAGE, OneLineParser
from rh_parallel.cli.options import run_id as run_id_option
from rh_parallel.cli.process import EXIT_OK, EXIT_OUTPUT, say
from rh_parallel.store import RunSummary, SavedItem, SQLiteStore, StoreError

__all__ = ["EXIT_FAILURE", "main", "parse_args"]

PROG = "rh-parallel runs"
EXIT_FAILURE = 1
"""No such run in the store, or the store failed after it was opened (like an unwritable
stdout, a failure rather than a usage error)."""
PREVIEW_CHARS = 80
"""How much of a value's JSON ``show --values`` prints (the rest is cut: ``…``)."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = OneLineParser(
        prog=PROG,
        description="The runs saved in a run store (rh-parallel demo --store PATH, or "
        "ExecutionState(store=SQLiteStore(PATH))).",
        epilog="Exit status: 0 done, 1 no such run (or stdout not writable), 2 bad arguments "
        "or a store that cannot be opened.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,show,delete}")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--store", metavar="PATH", required=True, help="the run store (an SQLite file)"
        )
        return sub

    listing = command("list", "one line per run, the most recently updated first")
    listing.add_argument("--json", action="store_true", help="one JSON object per run")
    show = command("show", "the saved items of a run, grouped by where they ran")
    show.add_argument("run_id", metavar="RUN_ID", type=run_id_option)
    show.add_argument(
        "--values",
        action="store_true",
        help=f"print each saved value (JSON, cut at {PREVIEW_CHARS} characters; "
        "off by default: values may be private)",
    )
    show.add_argument("--json", action="store_true", help="one JSON object per item")
    delete = command("delete", "remove a run and its saved items")
    delete.add_argument("run_id", metavar="RUN_ID", type=run_id_option)
    return parser.parse_args(list(argv))


class NoStore(Exception):
    """The store cannot be opened as asked: one line for the user, status 2."""


def open_store(path: str) -> SQLiteStore | None:
    """The store at ``path``, or ``None`` for an empty file (a store with no runs, left as
    it is); ``NoStore`` when there is no file there or it cannot be used as a store. Never
    creates a file: opening a path with nothing there would make a new store."""
    if not os.path.lexists(path):
        raise NoStore(
            f"no store at {path!r} (no such file); pass the file a run was saved in, "
            "e.g. with rh-parallel demo --store PATH"
        )
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return None
    try:
        return SQLiteStore(path)
    except (StoreError, ValueError) as exc:
        raise NoStore(str(exc)) from None


def timestamp(seconds: float) -> str:
    """UTC ISO 8601 to the second: ``2026-11-28T19:54:55Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _not_found(run_id: str, path: str) -> int:
    say(
        f"{PROG}: error: no run {run_id!r} in {path!r}; list its runs with: "
        f"rh-parallel runs list --store {shlex.quote(path)}"
    )
    return EXIT_FAILURE


def _summary(store: SQLiteStore | None, run_id: str) -> RunSummary | None:
    if store is None:
        return None
    return next((run for run in store.runs() if run.run_id == run_id), None)


# -- list ------------------------------------------------------------------------------------


def list_runs(store: SQLiteStore | None, args: argparse.Namespace, out: TextIO) -> int:
    runs = store.runs() if store is not None else []
    if args.json:
        for run in runs:
            record = {
                "run_id": run.run_id,
                "items": run.items,
                "created": timestamp(run.created),
                "updated": timestamp(run.updated),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return EXIT_OK
    if not runs:
        say(f"{PROG}: no runs in {args.store!r}")
        return EXIT_OK
    width = max(len(run.run_id) for run in runs)
    counts = max(len(_plural(run.items, "item")) for run in runs)
    for run in runs:
        out.write(
            f"{run.run_id:<{width}}  {_plural(run.items, 'item'):>{counts}}  "
            f"created {timestamp(run.created)}  updated {timestamp(run.updated)}\n"
        )
    out.flush()
    # on stderr: stdout stays one line per run, for scripts
    say(f"show one: rh-parallel runs show RUN_ID --store {shlex.quote(args.store)}")
    return EXIT_OK


# -- show ------------------------------------------------------------------------------------


@dataclass
class Row:
    """A line of ``show``: a saved item, or a group (or scope) some saved items ran in."""

    address: str
    item: SavedItem | None  # None: a group heading
    depth: int = 0
    label: str = ""


def _sort_key(address: str) -> list[tuple[int, str]]:
    """Addresses in tree order: unnamed items by index as a number (``10:doc`` after
    ``9:doc``) before named ones, by name."""
    key: list[tuple[int, str]] = []
    for part in address.split("/"):
        index, colon, rest = part.partition(":")
        key.append((int(index), rest) if colon and index.isdigit() else (-1, part))
    return key


def tree(items: list[SavedItem]) -> list[Row]:
    """The items of a run in tree order, under headings for the groups they ran in.

    A group's items are indented one step under it; a group sits under the nearest saved
    item (or group) its address is inside, so a nested group appears under its document
    even when that document was not saved itself (its heading then reads from the nearest
    saved ancestor down). Sequential events at the top level have no heading.
    """
    rows = {item.address: Row(item.address, item) for item in items}
    for item in items:
        if item.parent and item.parent not in rows:
            rows[item.parent] = Row(item.parent, None)
    ordered = sorted(rows.values(), key=lambda row: _sort_key(row.address))
    ancestors: list[Row] = []  # the chain of rows the current row is inside
    for row in ordered:
        while ancestors and not row.address.startswith(ancestors[-1].address + "/"):
            ancestors.pop()
        above = ancestors[-1] if ancestors else None
        row.depth = above.depth + 1 if above is not None else 0
        inside = row.address[len(above.address) + 1 :] if above is not None else row.address
        if row.item is None:
            row.label = inside + "/"
        else:  # a sequential event run twice in one scope is "name#1": keep the ordinal
            name = row.item.name
            row.label = inside if inside.startswith(name + "#") else name
        ancestors.append(row)
    return ordered


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """The JSON of ``value`` cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # e.g. a circular structure
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show_run(store: SQLiteStore | None, args: argparse.Namespace, out: TextIO) -> int:
    run = _summary(store, args.run_id)
    if store is None or run is None:
        return _not_found(args.run_id, args.store)
    rows = tree(store.items(args.run_id))
    if args.json:
        for row in rows:
            if row.item is None:
                continue
            item = row.item
            record: dict[str, Any] = {
                "run_id": item.run_id,
                "address": item.address,
                "parent": item.parent,
                "name": item.name,
                "depth": row.depth,
                "attempts": item.attempts,
                "execution_time": item.execution_time,
                "saved_at": timestamp(item.saved_at),
            }
            if args.values:
                record["value"] = item.value
            out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        return EXIT_OK
    out.write(
        f"run {run.run_id}: {_plural(run.items, 'item')} saved, created "
        f"{timestamp(run.created)}, updated {timestamp(run.updated)}\n"
    )
    labels = [row for row in rows if row.item is not None]
    width = max((2 * row.depth + len(row.label) for row in labels), default=0)
    width = min(width, 48)
    for row in rows:
        indent = "  " * (row.depth + 1)
        saved = row.item
        if saved is None:
            out.write(f"{indent}{row.label}\n")
            continue
        name = row.label.ljust(max(width - 2 * row.depth, 0))
        line = (
            f"{indent}{name}  {_plural(saved.attempts, 'attempt'):>10}  "
            f"{saved.execution_time:8.3f}s"
        )
        if args.values:
            line += f"  {preview(saved.value)}"
        out.write(line + "\n")
    return EXIT_OK


# -- delete ----------------------------------------------------------------------------------


def delete_run(store: SQLiteStore | None, args: argparse.Namespace, out: TextIO) -> int:
    if store is None or not store.has_run(args.run_id):
        return _not_found(args.run_id, args.store)
    removed = store.delete(args.run_id)
    out.write(f"deleted run {args.run_id}: {_plural(removed, 'item')} from {args.store}\n")
    return EXIT_OK


_COMMANDS = {"list": list_runs, "show": show_run, "delete": delete_run}


def main(argv: Sequence[str]) -> int:
    """Parse, open the store (never creating one), run the command; returns the status."""
    args = parse_args(argv)
    out = sys.stdout
    if out is None:
        say(f"{PROG}: error: standard output is closed; redirect it (e.g. >/dev/null)")
        return EXIT_OUTPUT
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        store = open_store(args.store)
    except NoStore as exc:
        say(f"{PROG}: error: {exc}")
        return EXIT_USAGE
    try:
        status = _COMMANDS[args.command](store, args, out)
        out.flush()
        return status
    except StoreError as exc:  # a read or a delete that failed after opening (e.g. locked)
        say(f"{PROG}: error: {exc}")
        return EXIT_FAILURE
    finally:
        if store is not None:
            store.close()
