"""CPU-bound items shipped to Ray with ``RayExecutor``, their traces joined to the driver's.

Hashing a chunk of text is CPU work: on the event loop it would block every other item.
``state.parallel(..., executor=RayExecutor(num_cpus=1))`` ships each item (a function and its
arguments) to a Ray worker process; the group itself behaves as for local items (``max_workers``,
retries, results by name, records, spans). The item's span context travels with the call, so
the function runs in the worker under its item's span: a span it opened there (with an SDK in
the worker) would be a child of the item, in the same trace. The example records the driver's
spans in memory and checks, for every item, that the worker ran under that item's span.

    pip install 'rh-parallel[ray]'
    python examples/ray_scale_out.py                                 # a local Ray, 2 CPUs
    python examples/ray_scale_out.py --address ray://head-node:10001 # an existing cluster

On a cluster, workers must be able to import rh_parallel (install it in their image, or
through ``runtime_env``). To export the workers' own spans to a collector, see
docs/scaling-out.md (``RayExecutor(configure_telemetry=True)``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import time
from typing import Any

import ray
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rh_parallel import ExecutionState
from rh_parallel.ray import RayExecutor
from rh_parallel.telemetry import configure

CHUNKS = {f"chunk-{n}": " ".join(f"word{n * 50 + i}" for i in range(50)) for n in range(8)}
EXPORTER = InMemorySpanExporter()  # the driver's spans, kept in memory to check them below


def digest_chunk(text: str, rounds: int) -> dict[str, Any]:
    """CPU-bound: count the words and hash the text ``rounds`` times. Runs in a Ray worker."""
    digest = text.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    here = trace.get_current_span().get_span_context()  # attached from the item's span
    return {
        "pid": os.getpid(),
        "words": len(text.split()),
        "digest": digest.hex()[:12],
        "trace_id": format(here.trace_id, "032x"),
        "span_id": format(here.span_id, "016x"),
    }


async def main(rounds: int) -> bool:
    state = ExecutionState()  # default observers: spans go to the provider configure() set
    began = time.perf_counter()
    async with state.parallel(max_workers=4, name="digest", executor=RayExecutor(num_cpus=1)) as p:
        for name, text in CHUNKS.items():
            p.add(name, digest_chunk, text, rounds)  # a function and its arguments: shipped
    results = await p.gather_dict()
    elapsed = time.perf_counter() - began
    await state.aclose()

    spans = {span.name: span for span in EXPORTER.get_finished_spans()}
    joined = 0
    for name, result in results.items():
        if not result.ok:
            print(f"{name}: failed: {result.error_type}: {result.error_message}")
            continue
        value = result.result
        item_span = spans[f"execute_task {name}"].context
        ok = (value["trace_id"], value["span_id"]) == (
            format(item_span.trace_id, "032x"),
            format(item_span.span_id, "016x"),
        )
        joined += ok
        print(
            f"{name}: {value['words']} words, sha256^{rounds} {value['digest']}, "
            f"worker pid {value['pid']}, under its item span: {'yes' if ok else 'NO'}"
        )
    pids = {r.result["pid"] for r in results.values() if r.ok}
    trace_id = spans["invoke_workflow digest"].context.trace_id
    print(
        f"{p.group.completed} of {p.group.total} items completed in {elapsed:.1f} s, in "
        f"{len(pids)} Ray worker processes (this driver is pid {os.getpid()})"
    )
    print(f"{joined} of {p.group.total} ran under their item's span, in trace {trace_id:032x}")
    return joined == p.group.total and os.getpid() not in pids


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--address",
        help="an existing Ray cluster, e.g. ray://head-node:10001 (default: a new "
        "local instance with 2 CPUs)",
    )
    parser.add_argument("--rounds", type=int, default=100_000, help="hash rounds per item")
    args = parser.parse_args()
    # tracing for the driver, its spans kept in memory
    telemetry = configure(service_name="ray-scale-out", span_exporter=EXPORTER, batch=False)
    if args.address:
        ray.init(address=args.address, logging_level=logging.ERROR)
    else:
        # "local": a new instance on this machine, even if RAY_ADDRESS names a cluster
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    try:
        ok = asyncio.run(main(args.rounds))
    finally:
        ray.shutdown()
        telemetry.shutdown()
    raise SystemExit(0 if ok else 1)
