import importlib
import json
import subprocess
import sys

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


# What `import rh_parallel` leaves for first use, to keep the import fast (docs/performance.md):
# the store backends, the rate-limit bucket, process pools, trace propagation, the telemetry
# layer and Prometheus (with its HTTP exposition), the printers, the OTel SDK.
DEFERRED_MODULES = (
    "sqlite3",
    "rh_parallel.store.sqlite",
    "rh_parallel.store.memory",
    "aiolimiter",
    "email.utils",
    "pickle",
    "concurrent.futures.process",
    "multiprocessing",
    "opentelemetry.propagate",
    "rh_parallel.telemetry",
    "prometheus_client",
    "prometheus_client.exposition",
    "http.server",
    "urllib.request",
    "opentelemetry.sdk",
    "rh_parallel.console",
    "structlog",
    "importlib.metadata",
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}; import json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_defers_heavy_modules() -> None:
    loaded = _modules_after("import rh_parallel")
    assert not loaded & set(DEFERRED_MODULES), sorted(loaded & set(DEFERRED_MODULES))


def test_deferred_modules_load_on_first_use() -> None:
    loaded = _modules_after(
        "import rh_parallel; from rh_parallel.store import SQLiteStore; "
        "rh_parallel.ExecutionState()"
    )
    assert {"sqlite3", "rh_parallel.telemetry", "prometheus_client"} <= loaded
