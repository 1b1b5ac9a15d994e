"""rh-parallel: run independent agent events in parallel on asyncio, observably.

Quick start::

    from rh_parallel import ExecutionState

    state = ExecutionState()
    async with state.parallel(max_workers=5, name="Document Processing") as p:
        for doc in docs:
            p.add(process_doc(doc))
    results = await p.gather()
"""

from rh_parallel.console import EventPrinter, ParallelEventPrinter
from rh_parallel.exceptions import (
    CircuitOpenError,
    DependencyFailedError,
    FailureThresholdExceeded,
    GroupTimeoutError,
    RhParallelError,
)
from rh_parallel.execution import (
    CircuitBreaker,
    CircuitState,
    ExecutionState,
    ParallelExecutionManager,
    RetryPolicy,
)
from rh_parallel.execution.state import set_default_observers
from rh_parallel.model import (
    LLM,
    Agent,
    BaseActor,
    ErrorStrategy,
    EventType,
    ExecutionEvent,
    ExecutionResult,
    ExecutionStatus,
    GroupStatus,
    ParallelEventGroup,
    ResultStatus,
    Tool,
)
from rh_parallel.runtime import EventBus
from rh_parallel.telemetry import default_observers

set_default_observers(default_observers)
del set_default_observers, default_observers

__version__ = "0.1.0"

__all__ = [
    "LLM",
    "Agent",
    "BaseActor",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "DependencyFailedError",
    "ErrorStrategy",
    "EventBus",
    "EventPrinter",
    "EventType",
    "ExecutionEvent",
    "ExecutionResult",
    "ExecutionState",
    "ExecutionStatus",
    "FailureThresholdExceeded",
    "GroupStatus",
    "GroupTimeoutError",
    "ParallelEventGroup",
    "ParallelEventPrinter",
    "ParallelExecutionManager",
    "ResultStatus",
    "RetryPolicy",
    "RhParallelError",
    "Tool",
]
