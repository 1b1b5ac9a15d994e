from __future__ import annotations

from collections.abc import AsyncIterator

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
