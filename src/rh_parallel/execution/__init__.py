"""The execution layer: the state, parallel groups and their policies."""

from rh_parallel.execution.breaker import CircuitBreaker, CircuitState
from rh_parallel.execution.manager import ParallelExecutionManager
from rh_parallel.execution.rate import AdaptiveLimit, RateLimit
from rh_parallel.execution.retry import RetryPolicy
from rh_parallel.execution.state import ExecutionState, set_default_observers

__all__ = [
    "AdaptiveLimit",
    "CircuitBreaker",
    "CircuitState",
    "ExecutionState",
    "ParallelExecutionManager",
    "RateLimit",
    "RetryPolicy",
    "set_default_observers",
]
