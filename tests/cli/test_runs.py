"""``rh-parallel runs list/show/delete`` on a store the demo saved to, run as a subprocess.

A store is only ever read or changed, never created: a missing path or a file that is not a
store is one line naming it and status 2, and the file is left as it was.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import json_lines, lines, run_cli

FAST = ("--latency", "0.01", "--seed", "7", "--no-telemetry", "--mode", "json")
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with two runs: ``r1`` (with failures) and ``r2`` (complete, saved later)."""
    store = tmp_path_factory.mktemp("saved") / "runs.db"
    run_cli("demo", *FAST, "--store", str(store), "--run-id", "r1", "--fail-rate", "0.3")
    run_cli("demo", *FAST, "--store", str(store), "--run-id", "r2", "--fail-rate", "0")
    return store


@pytest.fixture
def store(saved: Path, tmp_path: Path) -> Iterator[str]:
    """A copy of the saved store for one test (``delete`` changes it)."""
    for file in saved.parent.iterdir():
        shutil.copy(file, tmp_path / file.name)
    yield str(tmp_path / saved.name)


def rows(store: str, run_id: str) -> list[tuple[str, str, str]]:
    """(address, parent, name) of the run's items, read with sqlite3 itself."""
    with sqlite3.connect(store) as conn:
        found = conn.execute(
            "SELECT address, parent, name FROM rh_parallel_items WHERE run_id = ?", (run_id,)
        ).fetchall()
    conn.close()
    return found


def runs(*args: str, status: int = 0) -> tuple[str, str]:
    done = run_cli("runs", *args, status=status)
    return done.stdout, done.stderr


# -- list ------------------------------------------------------------------------------------


def test_list_shows_each_run_newest_first_with_its_item_count(store: str) -> None:
    out, err = runs("list", "--store", store)
    listed = lines(out)
    assert [line.split()[0] for line in listed] == ["r2", "r1"]  # r2 was updated last
    for line, run_id in zip(listed, ["r2", "r1"], strict=True):
        count = len(rows(store, run_id))
        assert re.fullmatch(
            rf"{run_id}\s+{count} items\s+created {ISO}\s+updated {ISO}", line.strip()
        ), line
    assert lines(err) == [f"show one: rh-parallel runs show RUN_ID --store {store}"]


def test_list_json_is_one_object_per_run(store: str) -> None:
    out, _ = runs("list", "--store", store, "--json")
    records = json_lines(out)
    assert [r["run_id"] for r in records] == ["r2", "r1"]
    for record in records:
        assert record["items"] == len(rows(store, record["run_id"]))
        assert re.fullmatch(ISO, record["created"]) and re.fullmatch(ISO, record["updated"])


def test_an_empty_file_has_no_runs_and_stays_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    out, err = runs("list", "--store", str(empty))
    assert not out and lines(err) == [f"rh-parallel runs: no runs in {str(empty)!r}"]
    assert empty.read_bytes() == b""


# -- show ------------------------------------------------------------------------------------


def test_show_lists_the_saved_items_as_a_tree_without_values(store: str) -> None:
    out, _ = runs("show", "r1", "--store", store)
    header, *body = out.splitlines()
    saved = rows(store, "r1")
    assert header.startswith(f"run r1: {len(saved)} items saved, created ")
    items = [line for line in body if not line.rstrip().endswith("/")]
    assert len(items) == len(saved)
    for line in items:
        assert re.search(r"\s\d+ attempts?\s+\d+\.\d{3}s$", line), line
    # grouped: the documents' group (under the orchestrator's address: r1 had failures, so
    # the orchestrator itself was not saved), indented under it each saved document
    (group,) = [line for line in body if line.strip() == "orchestrator/Document Processing/"]
    documents = [line for line in items if re.match(r"\s+doc-\d\d\s", line)]
    assert documents
    depth = len(group) - len(group.lstrip())
    assert all(len(line) - len(line.lstrip()) == depth + 2 for line in documents)
    assert "summary of" not in out  # values are private unless asked for


def test_show_nests_groups_under_the_items_that_opened_them(store: str) -> None:
    out, _ = runs("show", "r2", "--store", store)  # complete: the orchestrator was saved
    body = out.splitlines()[1:]
    assert re.fullmatch(r"  orchestrator\s+1 attempt\s+\d+\.\d{3}s", body[0])
    assert body[1] == "    Document Processing/"
    doc = next(n for n, line in enumerate(body) if re.match(r"      doc-01\s", line))
    assert body[doc + 1] == "        analyze/"
    assert re.match(r"          labels\s", body[doc + 2])  # steps by name: labels, summary
    assert body[doc + 4] == "        search/"
    assert re.match(r"          related\s", body[doc + 5])


def test_show_values_prints_short_previews(store: str) -> None:
    out, _ = runs("show", "r1", "--store", store, "--values")
    summaries = [line for line in out.splitlines() if re.match(r"\s+summary\s", line)]
    assert summaries and all(re.search(r'"summary of doc-\d\d"$', line) for line in summaries)
    documents = [line for line in out.splitlines() if re.match(r"\s+doc-\d\d\s", line)]
    for line in documents:  # a document's value is longer than a preview: cut, marked
        preview = re.split(r"\d\.\d{3}s  ", line, maxsplit=1)[1]
        assert len(preview) == 80 and preview.startswith('{"summary"') and preview[-1] == "…"


def test_show_json_is_one_object_per_saved_item(store: str) -> None:
    out, _ = runs("show", "r1", "--store", store, "--json")
    records = json_lines(out)
    assert sorted((r["address"], r["parent"], r["name"]) for r in records) == sorted(
        rows(store, "r1")
    )
    assert all("value" not in r and r["attempts"] >= 1 for r in records)
    out, _ = runs("show", "r1", "--store", store, "--json", "--values")
    values = {r["name"]: r["value"] for r in json_lines(out) if r["name"] == "summary"}
    assert values == {"summary": values["summary"]} and values["summary"].startswith("summary")


# -- delete ----------------------------------------------------------------------------------


def test_delete_removes_the_run_and_says_how_many_items(store: str) -> None:
    count = len(rows(store, "r1"))
    out, _ = runs("delete", "r1", "--store", store)
    assert lines(out) == [f"deleted run r1: {count} items from {store}"]
    assert not rows(store, "r1") and rows(store, "r2")
    listed, _ = runs("list", "--store", store)
    assert [line.split()[0] for line in lines(listed)] == ["r2"]
    _, err = runs("delete", "r1", "--store", store, status=1)  # gone
    assert "no run 'r1'" in err


@pytest.mark.parametrize("command", ["show", "delete"])
def test_an_unknown_run_is_a_failure_that_says_how_to_list_runs(store: str, command: str) -> None:
    out, err = runs(command, "nope", "--store", store, status=1)
    assert not out
    assert lines(err) == [
        f"rh-parallel runs: error: no run 'nope' in {store!r}; list its runs with: "
        f"rh-parallel runs list --store {store}"
    ]


# -- stores that cannot be used ----------------------------------------------------------------

COMMANDS = [("list",), ("show", "r1"), ("delete", "r1")]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_missing_store_is_a_usage_error_and_no_file_is_created(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.db"
    out, err = runs(*command, "--store", str(missing), status=2)
    assert not out
    (line,) = lines(err)
    assert line.startswith(f"rh-parallel runs: error: no store at {str(missing)!r}")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_foreign_sqlite_file_is_refused_and_left_untouched(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO accounts (name) VALUES ('ada')")
    conn.close()
    before = foreign.read_bytes()
    out, err = runs(*command, "--store", str(foreign), status=2)
    assert not out
    (line,) = lines(err)
    assert line.startswith("rh-parallel runs: error: ") and str(foreign) in line
    assert "not an rh-parallel store" in line
    assert foreign.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["app.db"]


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")
    _, err = runs("list", "--store", str(notes), status=2)
    assert str(notes) in err and notes.read_text() == "not a database\n"


@pytest.mark.parametrize(
    "args",
    [("list",), ("show", "r1"), ("delete", "r1"), (), ("show", "--store", "x.db")],
    ids=["list", "show", "delete", "no-command", "no-run-id"],
)
def test_missing_arguments_are_usage_errors(args: tuple[str, ...], tmp_path: Path) -> None:
    out, err = runs(*args, status=2)
    assert not out and len(lines(err)) == 1 and "required" in err
