import importlib

import rh_parallel

DESIGN_NAMES = {
    "ExecutionState",
    "ExecutionEvent",
    "ExecutionResult",
    "EventBus",
    "BaseActor",
    "Tool",
    "LLM",
    "Agent",
    "EventType",
    "ExecutionStatus",
    "ParallelExecutionManager",
    "ParallelEventGroup",
    "GroupStatus",
    "ResultStatus",
    "ErrorStrategy",
    "RetryPolicy",
    "CircuitBreaker",
    "CircuitState",
    "ParallelEventPrinter",
    "EventPrinter",
    "RhParallelError",
    "GroupTimeoutError",
    "FailureThresholdExceeded",
    "CircuitOpenError",
    "DependencyFailedError",
}


def test_all_matches_the_facade() -> None:
    exported = set(rh_parallel.__all__)
    public = {n for n in dir(rh_parallel) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(rh_parallel, n)).__name__ == "module"}
    assert exported == public - modules
    for name in exported:
        assert getattr(rh_parallel, name) is not None


def test_design_contract_names_import() -> None:
    missing = DESIGN_NAMES - set(rh_parallel.__all__)
    assert not missing, f"DESIGN.md names missing from the facade: {sorted(missing)}"


def test_subpackages_declare_all() -> None:
    for module in ("model", "runtime", "execution", "exceptions", "testing", "provider_double"):
        mod = importlib.import_module(f"rh_parallel.{module}")
        for name in mod.__all__:
            assert hasattr(mod, name), f"rh_parallel.{module}.__all__ names missing {name}"
