from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable

import pytest

from rh_parallel import EventBus
from tests.helpers import no_tasks_left

pytestmark = pytest.mark.timeout(10)  # a hung dispatcher or flush() fails instead of hanging


class Record:
    def __init__(self, n: int) -> None:
        self.n = n
        self.trace_id: str | None = None
        self.span_id: str | None = None


class Stop(BaseException):
    """A custom BaseException a subscriber might raise."""


def bus_warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rh_parallel.bus" and word in r.msg]


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
    assert len(bus_warnings(caplog, "raised")) == 3
    await bus.aclose()


def raise_cancelled() -> None:
    raise asyncio.CancelledError()


def raise_generator_exit() -> None:
    raise GeneratorExit()


def raise_value_error() -> None:
    raise ValueError("bad record")


def raise_custom_base_exception() -> None:
    raise Stop()


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "raise_once",
    [raise_cancelled, raise_generator_exit, raise_value_error, raise_custom_base_exception],
    ids=["CancelledError", "GeneratorExit", "ValueError", "custom-BaseException"],
)
async def test_a_subscriber_raising_anything_once_still_gets_every_later_record(
    raise_once: Callable[[], None], is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus()
    got: list[int] = []

    def sync_handler(record: Record) -> None:
        if record.n == 5:
            raise_once()
        got.append(record.n)

    async def async_handler(record: Record) -> None:
        await asyncio.sleep(0)
        sync_handler(record)

    bus.subscribe(async_handler if is_async else sync_handler, name="flaky")
    with caplog.at_level(logging.WARNING, logger="rh_parallel.bus"):
        for n in range(100):
            bus.publish(Record(n))
        async with asyncio.timeout(5):
            await bus.flush()  # waits for the records after the failure too
    assert got == [n for n in range(100) if n != 5]
    failures = bus_warnings(caplog, "raised")
    assert len(failures) == 1
    assert "'flaky'" in failures[0]
    await bus.aclose()


def test_loop_shutdown_still_stops_a_dispatcher_and_the_next_loop_delivers_the_rest() -> None:
    """A real cancellation of the dispatcher (asyncio.run ending) is not taken for a failing
    subscriber: the run ends, and the records left are delivered in the next run."""
    bus = EventBus()
    got: list[int] = []
    entered: dict[str, asyncio.Event] = {}

    async def handler(record: Record) -> None:
        if record.n == 0:
            entered["first"].set()
            await asyncio.Event().wait()  # blocks until the loop shuts down
        got.append(record.n)

    bus.subscribe(handler, name="blocked")

    async def first_run() -> None:
        entered["first"] = asyncio.Event()
        for n in range(5):
            bus.publish(Record(n))
        await entered["first"].wait()

    asyncio.run(first_run())  # cancels the blocked dispatcher; must not hang
    assert got == []

    async def second_run() -> None:
        async with asyncio.timeout(5):
            await bus.flush()
            await bus.aclose()

    asyncio.run(second_run())
    assert got == [1, 2, 3, 4]  # record 0 was being delivered when its loop was shut down


def test_one_bus_serves_successive_asyncio_runs() -> None:
    bus = EventBus()
    got: list[tuple[int, int]] = []
    runs: list[int] = []
    bus.subscribe(lambda r: got.append((len(runs), r.n)))
    stream_seen: list[int] = []

    async def main() -> None:
        stream = bus.stream()
        for n in range(3):
            bus.publish(Record(n))
        async with asyncio.timeout(5):
            await bus.aclose()
            stream_seen.extend([r.n async for r in stream])

    for run in range(3):
        asyncio.run(main())
        runs.append(run)
    assert got == [(run, n) for run in range(3) for n in range(3)]
    assert stream_seen == [0, 1, 2] * 3


def test_publish_with_no_loop_waits_for_the_next_loop() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.subscribe(lambda r: got.append(r.n))
    for n in range(3):
        bus.publish(Record(n))  # no running loop: neither raises nor delivers yet
    assert got == []

    async def main() -> None:
        bus.publish(Record(3))  # after the earlier ones
        async with asyncio.timeout(5):
            await bus.flush()

    asyncio.run(main())
    assert got == [0, 1, 2, 3]


async def test_publish_from_threads_delivers_all_in_per_thread_order() -> None:
    bus = EventBus()
    got: list[tuple[int, int]] = []
    bus.subscribe(lambda r: got.append(r.n))
    start = threading.Barrier(4)

    def publisher(thread: int) -> None:
        start.wait()
        for seq in range(500):
            bus.publish(Record((thread, seq)))  # type: ignore[arg-type]

    threads = [threading.Thread(target=publisher, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # blocks the loop: nothing is delivered before flush()
    async with asyncio.timeout(5):
        await bus.flush()
    assert len(got) == 2000
    for t in range(4):
        assert [seq for thread, seq in got if thread == t] == list(range(500))
    await bus.aclose()


async def test_publish_from_threads_while_the_loop_runs_and_publishes_too() -> None:
    bus = EventBus()
    got: list[tuple[int, int]] = []

    async def handler(record: Record) -> None:
        got.append(record.n)  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the loop keeps turning while the threads publish

    bus.subscribe(handler)
    start = threading.Barrier(5)

    def publisher(thread: int) -> None:
        start.wait()
        for seq in range(300):
            bus.publish(Record((thread, seq)))  # type: ignore[arg-type]

    async with asyncio.timeout(5):
        threads = [asyncio.to_thread(publisher, t) for t in range(4)]
        running = asyncio.gather(*threads)
        await asyncio.to_thread(start.wait)
        for seq in range(300):
            bus.publish(Record((4, seq)))  # type: ignore[arg-type]
            await asyncio.sleep(0)
        await running
        await bus.flush()
    assert len(got) == 1500
    for t in range(5):
        assert [seq for thread, seq in got if thread == t] == list(range(300))
    await bus.aclose()


async def test_publish_from_another_loop_thread_is_delivered_on_the_owner_loop() -> None:
    bus = EventBus()
    got: list[tuple[int, bool]] = []
    owner = asyncio.get_running_loop()
    bus.subscribe(lambda r: got.append((r.n, asyncio.get_running_loop() is owner)))
    bus.publish(Record(0))  # this loop owns the bus now

    def other_loop() -> None:
        async def main() -> None:
            for n in range(1, 4):
                bus.publish(Record(n))
            await bus.flush()  # waits on the owner loop

        asyncio.run(main())

    async with asyncio.timeout(5):
        await asyncio.to_thread(other_loop)
        await bus.flush()
    assert got == [(n, True) for n in range(4)]
    await bus.aclose()


async def test_a_slow_subscriber_loses_the_oldest_records_counted_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    got: list[int] = []
    fast: list[int] = []
    release = asyncio.Event()

    async def slow(record: Record) -> None:
        await release.wait()
        got.append(record.n)

    subscription = bus.subscribe(slow, name="slow", max_queue=10)
    bus.subscribe(lambda r: fast.append(r.n), name="fast")
    with caplog.at_level(logging.WARNING, logger="rh_parallel.bus"):
        for n in range(1000):
            bus.publish(Record(n))
    release.set()
    async with asyncio.timeout(5):
        await bus.flush()
    assert got == list(range(990, 1000))
    assert fast == list(range(1000))
    assert bus.dropped("slow") == subscription.dropped == 990
    assert bus.dropped("fast") == 0
    assert bus.dropped() == 990
    drops = bus_warnings(caplog, "too slow")
    assert len(drops) == 1
    assert "'slow'" in drops[0]
    await bus.aclose()


def test_records_published_without_a_loop_are_bounded_too() -> None:
    bus = EventBus()
    got: list[int] = []
    bus.subscribe(lambda r: got.append(r.n), name="later", max_queue=10)
    records = [Record(n) for n in range(1000)]
    refs = [weakref.ref(r) for r in records]
    for record in records:
        bus.publish(record)  # no loop: they wait in a bounded inbox
    del records, record
    assert sum(ref() is not None for ref in refs) == 10  # the older ones are already gone

    async def main() -> None:
        async with asyncio.timeout(5):
            await bus.flush()

    asyncio.run(main())
    assert got == list(range(990, 1000))
    assert bus.dropped("later") == 990


def test_a_loop_left_stopped_with_a_busy_dispatcher_does_not_hold_up_the_next() -> None:
    bus = EventBus()
    got: list[int] = []
    entered: dict[str, asyncio.Event] = {}

    async def handler(record: Record) -> None:
        if record.n == 0:
            entered["first"].set()
            await asyncio.Event().wait()  # stuck in the first loop
        got.append(record.n)

    bus.subscribe(handler)

    async def first_run() -> None:
        entered["first"] = asyncio.Event()
        for n in range(3):
            bus.publish(Record(n))
        await entered["first"].wait()

    async def second_run() -> None:
        for n in range(3, 5):
            bus.publish(Record(n))
        async with asyncio.timeout(5):
            await bus.flush()

    first = asyncio.new_event_loop()
    try:
        first.run_until_complete(first_run())  # stopped, not closed, its dispatcher pending
        asyncio.run(second_run())
        assert got == [1, 2, 3, 4]
    finally:
        for task in asyncio.all_tasks(first):
            task.cancel()
        first.run_until_complete(asyncio.sleep(0))  # the old dispatcher ends, cancelled
        first.close()
    assert got == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("max_queue", "error"),
    [(0, ValueError), (-1, ValueError), (True, TypeError), (1.5, TypeError), ("10", TypeError)],
)
def test_max_queue_must_be_a_positive_int(max_queue: object, error: type[Exception]) -> None:
    bus = EventBus()
    with pytest.raises(error, match=r"max_queue.*>= 1"):
        bus.subscribe(print, max_queue=max_queue)  # type: ignore[arg-type]
    with pytest.raises(error, match=r"stream\(max_queue"):
        bus.stream(max_queue=max_queue)  # type: ignore[arg-type]
    assert not bus.has_subscribers


@pytest.mark.parametrize("name", ["", 5, "\udc80"])
def test_subscriber_names_are_non_empty_printable_strings(name: object) -> None:
    with pytest.raises((TypeError, ValueError), match="name"):
        EventBus().subscribe(print, name=name)  # type: ignore[arg-type]


async def test_aclose_delivers_what_is_queued_and_leaves_no_task() -> None:
    bus = EventBus()
    got: list[int] = []

    async def handler(record: Record) -> None:
        await asyncio.sleep(0)
        got.append(record.n)

    bus.subscribe(handler)
    for n in range(50):
        bus.publish(Record(n))
    async with asyncio.timeout(5):
        await bus.aclose()
    assert got == list(range(50))
    assert no_tasks_left()


async def test_no_task_while_idle_and_none_after_close() -> None:
    bus = EventBus()
    bus.subscribe(lambda r: None)
    bus.publish(Record(1))
    await bus.flush()
    await asyncio.sleep(0)  # the finished dispatcher's done-callbacks run
    assert no_tasks_left()
    await bus.aclose()
    assert no_tasks_left()
    assert bus.has_subscribers  # handlers stay subscribed: the bus can be used again


async def test_no_record_outlives_its_delivery() -> None:
    bus = EventBus()
    bus.subscribe(lambda r: None)
    bus.subscribe(lambda r: asyncio.sleep(0))
    stream = bus.stream()
    records = [Record(n) for n in range(10)]
    refs = [weakref.ref(r) for r in records]
    for record in records:
        bus.publish(record)
    del records, record
    async with asyncio.timeout(5):
        await bus.flush()
        consumed = [(await anext(stream)).n for _ in range(10)]
    assert consumed == list(range(10))
    assert [ref() for ref in refs] == [None] * 10
    await bus.aclose()


async def test_stream_yields_records_until_closed() -> None:
    bus = EventBus()
    seen: list[int] = []
    stream = bus.stream()  # subscribed from here on

    async def consume() -> None:
        async for record in stream:
            seen.append(record.n)

    consumer = asyncio.create_task(consume())
    for n in range(5):
        bus.publish(Record(n))
    async with asyncio.timeout(5):
        await bus.aclose()
        await consumer
    assert seen == [0, 1, 2, 3, 4]
    assert not bus.has_subscribers


async def test_stream_queue_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    stream = bus.stream(max_queue=10, name="sse")
    with caplog.at_level(logging.WARNING, logger="rh_parallel.bus"):
        for n in range(100):
            bus.publish(Record(n))  # nobody reads yet
    async with asyncio.timeout(5):
        await bus.aclose()
        seen = [r.n async for r in stream]
    assert seen == list(range(90, 100))
    assert bus.dropped("sse") == 90
    assert len(bus_warnings(caplog, "too slow")) == 1


async def test_a_stream_closed_early_unsubscribes() -> None:
    bus = EventBus()
    stream = bus.stream()
    bus.publish(Record(1))
    async with asyncio.timeout(5):
        assert (await anext(stream)).n == 1
        await stream.aclose()
        assert [r async for r in stream] == []
    assert not bus.has_subscribers


async def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    got: list[int] = []
    subscription = bus.subscribe(lambda r: got.append(r.n))
    bus.publish(Record(1))
    subscription.unsubscribe()
    bus.publish(Record(2))
    await bus.flush()  # still delivers the record queued before unsubscribe()
    assert got == [1]
    await bus.aclose()


def test_subscribe_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="takes a callable"):
        EventBus().subscribe("print")  # type: ignore[arg-type]
