"""rh-parallel: run independent agent events in parallel on asyncio, observably.

Quick start (run by the tests, like every example in the documentation):

```python
import asyncio

from rh_parallel import ExecutionState


async def process_doc(doc: str) -> str:
    await asyncio.sleep(0.01)  # an LLM, tool or API call
    return doc.upper()


async def main() -> None:
    state = ExecutionState()
    async with state.parallel(max_workers=5, name="Document Processing") as p:
        for doc in ["intro", "methods", "results"]:
            p.add(process_doc, doc)  # an async def and its arguments
    results = await p.gather()  # ExecutionResults, in add order
    print([r.result for r in results])  # ['INTRO', 'METHODS', 'RESULTS']


asyncio.run(main())
```
"""

import typing as _typing

from rh_parallel.exceptions import (
    CircuitOpenError,
    DependencyFailedError,
    EventTimeoutError,
    FailureThresholdExceeded,
    GroupTimeoutError,
    RhParallelError,
    StoreError,
    WorkerLostError,
)
from rh_parallel.execution import (
    AdaptiveLimit,
    CircuitBreaker,
    CircuitState,
    ExecutionState,
    ParallelExecutionManager,
    RateLimit,
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

if _typing.TYPE_CHECKING:
    from rh_parallel.runtime.observer import ExecutionObserver


def _default_observers() -> list["ExecutionObserver"]:
    """Tracing and Prometheus metrics: the telemetry layer (prometheus_client) loads with the
    first state, not at import."""
    from rh_parallel.telemetry import default_observers

    return list(default_observers())


set_default_observers(_default_observers)
del set_default_observers

if _typing.TYPE_CHECKING:
    from rh_parallel.console import EventPrinter, ParallelEventPrinter

_LAZY = {"EventPrinter": "rh_parallel.console", "ParallelEventPrinter": "rh_parallel.console"}


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> object:
    """The printers load on first use: structlog (and rich, when installed) cost more to
    import than the whole engine, and many programs never print."""
    import importlib

    module = _LAZY.get(name)
    if module is None:
        if not name.startswith("_"):  # a submodule being imported is looked up here first
            migration = importlib.import_module("rh_parallel._migration")
            renamed = migration.package_name(name)  # RH-Agents' ParallelErrorStrategy, ...
            if renamed is not None:
                return renamed
        raise AttributeError(f"module 'rh_parallel' has no attribute {name!r}")

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "LLM",
    "AdaptiveLimit",
    "Agent",
    "BaseActor",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "DependencyFailedError",
    "ErrorStrategy",
    "EventBus",
    "EventPrinter",
    "EventTimeoutError",
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
    "RateLimit",
    "ResultStatus",
    "RetryPolicy",
    "RhParallelError",
    "StoreError",
    "Tool",
    "WorkerLostError",
]
