from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rh_parallel.exceptions import StoreError
from rh_parallel.store.writer import BatchWriter, check_optional_seconds, check_seconds


class Recorder:
    """A write callback that records its batches (and can be told to fail)."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.times: list[float] = []
        self.fail = 0  # how many next calls raise
        self.closed = 0
        self.lock = threading.Lock()

    def write(self, batch: list[Any]) -> None:
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise OSError("disk full")
            self.batches.append(list(batch))
            self.times.append(time.monotonic())

    def on_close(self) -> None:
        self.closed += 1

    @property
    def written(self) -> list[Any]:
        with self.lock:
            return [op for batch in self.batches for op in batch]


def poll(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def writer_threads(writer: BatchWriter) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"rh-parallel-writer:{writer.path}"]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make(recorder: Recorder) -> Iterator[Callable[..., BatchWriter]]:
    made: list[BatchWriter] = []

    def make(flush_interval: float = 0.1, **kwargs: Any) -> BatchWriter:
        writer = BatchWriter(
            recorder.write,
            path=f"test-{len(made)}-{id(recorder)}",
            flush_interval=flush_interval,
            on_close=recorder.on_close,
            **kwargs,
        )
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close()


def test_the_thread_starts_at_the_first_submit_and_ends_at_close(
    make: Callable[..., BatchWriter],
) -> None:
    writer = make()
    assert writer_threads(writer) == []
    writer.submit(1)
    (thread,) = writer_threads(writer)
    assert thread.daemon
    writer.close()
    assert not thread.is_alive()
    assert writer_threads(writer) == []


def test_many_submits_are_written_in_few_batches_in_order(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    writer = make(flush_interval=0.2)
    for i in range(10_000):
        writer.submit(i)
    writer.close()
    assert recorder.written == list(range(10_000))
    assert len(recorder.batches) < 100
    assert writer.batches == len(recorder.batches)


def test_a_write_is_committed_without_flush_after_flush_interval(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    writer = make(flush_interval=0.2)
    queued = time.monotonic()
    writer.submit("a")
    assert poll(lambda: recorder.written == ["a"])
    assert recorder.times[0] - queued < 0.2 + 5  # generous: the machine is shared


def test_later_submits_do_not_postpone_the_batch(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    # a steady stream of writes, each well within flush_interval of the previous one: the
    # first batch is still committed flush_interval after its first write, not when it stops
    writer = make(flush_interval=0.3)
    deadline = time.monotonic() + 6
    count = 0
    while not recorder.batches and time.monotonic() < deadline:
        writer.submit(count)
        count += 1
        time.sleep(0.02)
    assert recorder.batches, "nothing was written while writes kept coming"


def test_nothing_is_written_before_flush_interval_unless_flushed(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    writer = make(flush_interval=30)
    writer.submit("a")
    writer.submit("b")
    time.sleep(0.3)
    assert recorder.batches == []
    writer.flush()  # does not wait...
    assert poll(lambda: recorder.written == ["a", "b"])  # ...but commits long before 30 s


def test_flush_with_nothing_queued_does_nothing(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    writer = make(flush_interval=30)
    writer.flush()
    writer.sync()
    assert writer_threads(writer) == []
    assert recorder.batches == []


def test_sync_waits_until_what_was_queued_is_written(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    writer = make(flush_interval=60)
    for i in range(5):
        writer.submit(i)
    writer.sync()
    assert recorder.written == [0, 1, 2, 3, 4]
    writer.submit(5)
    writer.sync()
    assert recorder.written == [0, 1, 2, 3, 4, 5]
    assert writer_threads(writer)  # sync keeps the writer running


def test_close_writes_everything_and_is_idempotent(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    writer = make(flush_interval=60)
    for i in range(1000):
        writer.submit(i)
    writer.close()
    assert recorder.written == list(range(1000))
    assert recorder.closed == 1
    writer.close()
    assert recorder.closed == 1
    with pytest.raises(StoreError, match="closed"):
        writer.submit(1001)
    writer.sync()  # after close: nothing to wait for
    assert recorder.written == list(range(1000))


def test_close_without_any_write_starts_no_thread(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    writer = make()
    writer.close()
    assert recorder.closed == 1
    assert recorder.batches == []
    assert writer_threads(writer) == []


def test_concurrent_closes_all_return_after_everything_is_written(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    writer = make(flush_interval=60)
    for i in range(100):
        writer.submit(i)
    seen: list[int] = []

    def close() -> None:
        writer.close()
        seen.append(len(recorder.written))

    closers = [threading.Thread(target=close) for _ in range(4)]
    for t in closers:
        t.start()
    for t in closers:
        t.join(timeout=30)
    assert seen == [100] * 4
    assert recorder.closed == 1


def test_submits_from_many_threads_are_each_written_once(
    make: Callable[..., BatchWriter], recorder: Recorder
) -> None:
    writer = make(flush_interval=0.01)

    def produce(n: int) -> None:
        for i in range(2000):
            writer.submit((n, i))
            if i % 500 == 0:
                writer.flush()

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    writer.close()
    written = recorder.written
    assert len(written) == 16_000
    assert set(written) == {(n, i) for n in range(8) for i in range(2000)}
    for n in range(8):  # each producer's writes stay in its order
        assert [i for m, i in written if m == n] == list(range(2000))


def test_a_failing_write_is_logged_and_counted_never_raised(
    make: Callable[..., BatchWriter], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make(flush_interval=60)
    recorder.fail = 1
    with caplog.at_level(logging.WARNING, logger="rh_parallel.store"):
        for i in range(3):
            writer.submit(i)
        writer.sync()  # does not raise either
        assert writer.write_failures == 3
        (record,) = caplog.records
        assert record.name == "rh_parallel.store"
        assert record.levelno == logging.WARNING
        message = record.getMessage()
        assert writer.path in message
        assert "3 item(s)" in message
        assert "disk full" in message
        # the thread keeps going
        writer.submit(10)
        writer.sync()
    assert recorder.written == [10]
    assert writer.write_failures == 3
    assert len(caplog.records) == 1
    assert writer_threads(writer)


def test_lost_says_what_a_failed_batch_counts(
    make: Callable[..., BatchWriter], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make(flush_interval=60, lost=lambda batch: sum(op == "put" for op in batch))
    recorder.fail = 1
    with caplog.at_level(logging.CRITICAL, logger="rh_parallel.store"):
        for op in ("put", "delete", "put"):
            writer.submit(op)
        writer.close()
    assert writer.write_failures == 2


def test_a_failing_write_at_close_is_counted_too(
    make: Callable[..., BatchWriter], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make(flush_interval=60)
    writer.submit(1)
    recorder.fail = 1
    with caplog.at_level(logging.CRITICAL, logger="rh_parallel.store"):
        writer.close()
    assert writer.write_failures == 1
    assert recorder.closed == 1


@pytest.mark.parametrize("bad", ["1", None, True, [1]])
def test_check_seconds_refuses_non_numbers(bad: object) -> None:
    with pytest.raises(TypeError, match="flush_interval"):
        check_seconds("flush_interval", bad)


@pytest.mark.parametrize("bad", [0, -1, -0.5, math.nan, math.inf, -math.inf])
def test_check_seconds_refuses_non_positive_or_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="flush_interval"):
        check_seconds("flush_interval", bad)


def test_check_seconds_accepts_positive_numbers() -> None:
    assert check_seconds("x", 1) == 1.0
    assert isinstance(check_seconds("x", 1), float)
    assert check_seconds("x", 0.001) == 0.001
    assert check_optional_seconds("ttl", None) is None
    assert check_optional_seconds("ttl", 5) == 5.0
    with pytest.raises(TypeError, match="ttl must be None or a number"):
        check_optional_seconds("ttl", "5")
    with pytest.raises(ValueError, match="ttl"):
        check_optional_seconds("ttl", 0)
