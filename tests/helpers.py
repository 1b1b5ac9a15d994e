"""Helpers shared by the tests (fixtures stay in conftest.py; tests import helpers from here)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from rh_parallel import Tool


class Numbers(BaseModel):
    x: int


async def double(input_data: Numbers, extra_context: object, state: object) -> int:
    await asyncio.sleep(0)
    if input_data.x < 0:
        raise ValueError(f"negative: {input_data.x}")
    return input_data.x * 2


DOUBLE = Tool(name="double", description="doubles x", input_model=Numbers, handler=double)


def no_tasks_left() -> bool:
    """Only the test's own task is alive."""
    return asyncio.all_tasks() == {asyncio.current_task()}


class Boom(BaseException):
    """A BaseException that is not an Exception, as some libraries raise."""
