from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from rh_parallel import EventBus, ExecutionEvent, ExecutionState
from rh_parallel.testing import RecordCapture
from tests.helpers import DOUBLE


@pytest.fixture
def double_event() -> ExecutionEvent:
    return ExecutionEvent(actor=DOUBLE)


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    event_bus = EventBus()
    yield event_bus
    await event_bus.aclose()


@pytest.fixture
def state(bus: EventBus) -> ExecutionState:
    """A state with no observers: tests of the engine itself."""
    return ExecutionState(event_bus=bus, observers=[])


@pytest.fixture
def capture(bus: EventBus) -> RecordCapture:
    return RecordCapture(bus)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One local Ray instance (2 CPUs) for the whole session: starting Ray takes seconds."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
