"""The model layer: pure data (pydantic) shared by every other layer."""

from rh_parallel.model.actors import LLM, Agent, BaseActor, Handler, Tool
from rh_parallel.model.enums import (
    ErrorStrategy,
    EventType,
    ExecutionStatus,
    GroupStatus,
    ResultStatus,
)
from rh_parallel.model.events import EventInvocation, EventRunner, ExecutionEvent
from rh_parallel.model.groups import GroupError, ParallelEventGroup
from rh_parallel.model.results import ExecutionResult

__all__ = [
    "LLM",
    "Agent",
    "BaseActor",
    "ErrorStrategy",
    "EventInvocation",
    "EventRunner",
    "EventType",
    "ExecutionEvent",
    "ExecutionResult",
    "ExecutionStatus",
    "GroupError",
    "GroupStatus",
    "Handler",
    "ParallelEventGroup",
    "ResultStatus",
    "Tool",
]
