from __future__ import annotations

import asyncio
import logging

import pytest

from rh_parallel import EventBus
from tests.conftest import no_tasks_left


class Record:
    def __init__(self, n: int) -> None:
        self.n = n
        self.trace_id: str | None = None
        self.span_id: str | None = None


async def test_publish_never_waits_and_order_is_kept() -> None:
    bus = EventBus()
    got: list[int] = []
    release = asyncio.Event()

    async def slow(record: Record) -> None:
        await release.wait()
        got.append(record.n)

    bus.subscribe(slow)
    for n in range(100):
        bus.publish(Record(n))  # returns although the subscriber is blocked
    assert got == []
    release.set()
    await bus.flush()
    assert got == list(range(100))
    await bus.aclose()


async def test_a_raising_subscriber_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    good: list[int] = []

    def bad(record: Record) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(bad)
    bus.subscribe(lambda r: good.append(r.n))
    with caplog.at_level(logging.WARNING, logger="rh_parallel.bus"):
        for n in range(3):
            bus.publish(Record(n))
        await bus.flush()
    assert good == [0, 1, 2]
    assert sum("raised" in m for m in caplog.messages) == 3
    await bus.aclose()


async def test_no_task_while_idle_and_none_after_close() -> None:
    bus = EventBus()
    bus.subscribe(lambda r: None)
    bus.publish(Record(1))
    await bus.flush()
    await asyncio.sleep(0)
    assert no_tasks_left()
    await bus.aclose()
    assert not bus.has_subscribers


async def test_stream_yields_records_until_closed() -> None:
    bus = EventBus()
    seen: list[int] = []

    async def consume() -> None:
        async for record in bus.stream():
            seen.append(record.n)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    for n in range(5):
        bus.publish(Record(n))
    await bus.aclose()
    await consumer
    assert seen == [0, 1, 2, 3, 4]


async def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    got: list[int] = []
    subscription = bus.subscribe(lambda r: got.append(r.n))
    bus.publish(Record(1))
    subscription.unsubscribe()
    bus.publish(Record(2))
    await bus.flush()
    await asyncio.sleep(0)
    assert got == [1]
    await bus.aclose()


def test_subscribe_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="takes a callable"):
        EventBus().subscribe("print")  # type: ignore[arg-type]
