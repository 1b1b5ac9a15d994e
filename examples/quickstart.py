"""The smallest useful rh-parallel program: fan out, bound concurrency, read results.

python examples/quickstart.py
"""

import asyncio
import random

from rh_parallel import ExecutionState, RetryPolicy


async def fetch(doc: str) -> str:
    await asyncio.sleep(random.uniform(0.05, 0.2))
    if random.random() < 0.2:
        raise ConnectionError(f"{doc}: upstream hiccup")
    return f"contents of {doc}"


async def main() -> None:
    state = ExecutionState(observers=[])
    retry = RetryPolicy(max_attempts=3, initial_delay=0.05)
    async with state.parallel(max_workers=3, name="fetch", retry=retry) as p:
        for n in range(8):
            doc = f"doc-{n}"
            p.add(doc, fetch, doc)  # the function and its argument: retried anew
    for name, result in (await p.gather_dict()).items():
        status = result.result if result.ok else f"failed: {result.error_message}"
        print(f"{name}: {status} (attempts: {result.attempts})")
    print(f"{p.group.completed} completed, {p.group.failed} failed in {p.group.duration:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
