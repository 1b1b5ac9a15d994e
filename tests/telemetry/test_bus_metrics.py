from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

import rh_parallel.runtime.bus as bus_module
from rh_parallel import EventBus
from rh_parallel.telemetry.bus_metrics import (
    BUS_DROPPED_METRIC,
    BusDropsCollector,
    register_bus_metrics,
)

pytestmark = pytest.mark.timeout(10)


async def drop(bus: EventBus, name: str, published: int, max_queue: int) -> None:
    release = asyncio.Event()

    async def slow(record: object) -> None:
        await release.wait()

    bus.subscribe(slow, name=name, max_queue=max_queue)
    for n in range(published):
        bus.publish(n)
    release.set()
    async with asyncio.timeout(5):
        await bus.aclose()


async def test_dropped_records_are_exposed_by_subscriber() -> None:
    registry = CollectorRegistry()
    register_bus_metrics(registry)
    name = "test_bus_metrics-slow"  # this name drops nowhere else in the suite
    assert registry.get_sample_value(BUS_DROPPED_METRIC, {"subscriber": name}) is None
    await drop(EventBus(), name, published=1000, max_queue=10)
    assert registry.get_sample_value(BUS_DROPPED_METRIC, {"subscriber": name}) == 990
    created = registry.get_sample_value("rh_parallel_bus_dropped_created", {"subscriber": name})
    assert created is not None and created > 0
    await drop(EventBus(), name, published=20, max_queue=10)  # counts add up across buses
    assert registry.get_sample_value(BUS_DROPPED_METRIC, {"subscriber": name}) == 1000
    assert b"# TYPE rh_parallel_bus_dropped_total counter" in generate_latest(registry)


def test_registering_twice_is_harmless_and_a_second_collector_is_refused() -> None:
    registry = CollectorRegistry()
    first = register_bus_metrics(registry)
    assert register_bus_metrics(registry) is first
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(BusDropsCollector())


def test_the_global_registry_has_the_collector() -> None:
    import rh_parallel.telemetry  # noqa: F401  (imported by rh_parallel: the wiring)

    assert register_bus_metrics() is register_bus_metrics(REGISTRY)
    assert b"rh_parallel_bus_dropped" in generate_latest(REGISTRY)


async def test_subscriber_names_beyond_the_cap_fold_into_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bus_module, "_drops", {})  # as in a fresh process
    registry = CollectorRegistry()
    register_bus_metrics(registry)
    cap = bus_module.MAX_SUBSCRIBER_LABELS
    for i in range(cap + 5):
        await drop(EventBus(), f"sub-{i}", published=3, max_queue=1)
    labels = {
        sample.labels["subscriber"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == BUS_DROPPED_METRIC
    }
    assert len(labels) == cap + 1
    assert labels["sub-0"] == 2
    assert labels[bus_module.OTHER_SUBSCRIBER] == 5 * 2
    assert f"sub-{cap}" not in labels


async def test_one_bus_counts_its_drops_by_name_with_the_same_cap() -> None:
    bus = EventBus()
    cap = bus_module.MAX_SUBSCRIBER_LABELS
    release = asyncio.Event()

    async def slow(record: object) -> None:
        await release.wait()

    for i in range(cap + 5):
        bus.subscribe(slow, name=f"sub-{i}", max_queue=1)
    for n in range(3):
        bus.publish(n)
    release.set()
    async with asyncio.timeout(5):
        await bus.aclose()
    assert bus.dropped() == (cap + 5) * 2
    assert bus.dropped("sub-0") == 2
    assert bus.dropped(bus_module.OTHER_SUBSCRIBER) == 5 * 2


def test_a_failing_source_does_not_break_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict[str, tuple[int, float]]:
        raise RuntimeError("no counts")

    registry = CollectorRegistry()
    registry.register(BusDropsCollector(broken))
    text = generate_latest(registry) + generate_latest(registry)
    assert b"# TYPE rh_parallel_bus_dropped_total counter" in text
    assert b'subscriber="' not in text
    assert len([r for r in caplog.records if "bus drops" in r.getMessage()]) == 1


def test_subscriber_names_that_cannot_be_label_values_are_refused() -> None:
    bus = EventBus()
    for bad in ("", "bad-\udc80", "line\nbreak"):
        with pytest.raises(ValueError, match="printable str"):
            bus.subscribe(print, name=bad)
    with pytest.raises(TypeError, match="printable str"):
        bus.subscribe(print, name=123)  # type: ignore[arg-type]
