from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from rh_parallel import EventBus, ExecutionEvent, ExecutionState, Tool
from rh_parallel.testing import RecordCapture


class Numbers(BaseModel):
    x: int


async def double(input_data: Numbers, extra_context: object, state: object) -> int:
    await asyncio.sleep(0)
    if input_data.x < 0:
        raise ValueError(f"negative: {input_data.x}")
    return input_data.x * 2


DOUBLE = Tool(name="double", description="doubles x", input_model=Numbers, handler=double)


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


def no_tasks_left() -> bool:
    """Only the test's own task is alive."""
    return asyncio.all_tasks() == {asyncio.current_task()}
