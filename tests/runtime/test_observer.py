"""Observers never break a run: a raising hook costs a log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from rh_parallel import ExecutionState
from rh_parallel.model.results import ExecutionResult
from rh_parallel.runtime import ExecutionObserver, GroupInfo, ItemInfo


class Broken(ExecutionObserver):
    def on_group_start(self, group: GroupInfo) -> None:
        raise RuntimeError("start")

    def on_group_end(self, group: GroupInfo) -> None:
        raise RuntimeError("end")

    def item_scope(self, item: ItemInfo) -> AbstractContextManager[None] | None:
        return self._scope()

    @contextmanager
    def _scope(self) -> Iterator[None]:
        yield
        raise RuntimeError("scope exit")

    def on_item_start(self, item: ItemInfo) -> None:
        raise RuntimeError("item start")

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        raise RuntimeError("item end")


class Recorder(ExecutionObserver):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_group_start(self, group: GroupInfo) -> None:
        self.calls.append(f"group_start {group.group.name}")

    def on_item_start(self, item: ItemInfo) -> None:
        self.calls.append(f"item_start {item.name} {item.kind}")

    def on_item_end(self, item: ItemInfo, result: ExecutionResult) -> None:
        self.calls.append(f"item_end {item.name} {result.status.value}")

    def on_group_end(self, group: GroupInfo) -> None:
        self.calls.append(f"group_end {group.group.status.value}")


async def test_a_raising_observer_is_logged_and_isolated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    state = ExecutionState(observers=[Broken(), recorder])
    with caplog.at_level(logging.WARNING, logger="rh_parallel.observer"):
        async with state.parallel(name="g") as p:
            p.add("a", asyncio.sleep(0, result=1))
    assert (await p.gather())[0].result == 1
    assert recorder.calls == [
        "group_start g",
        "item_start a task",
        "item_end a completed",
        "group_end completed",
    ]
    hooks = {m.split(" in ")[1].split(";")[0] for m in caplog.messages}
    assert hooks == {
        "on_group_start",
        "on_group_end",
        "item_scope exit",
        "on_item_start",
        "on_item_end",
    }


def test_observers_must_be_observers() -> None:
    with pytest.raises(TypeError, match="ExecutionObserver instances"):
        ExecutionState(observers=[object()])  # type: ignore[list-item]
