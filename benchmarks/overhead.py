"""Per-item overhead: rh-parallel beside asyncio.gather, TaskGroup and aiometer, one process.

python benchmarks/overhead.py --items 20000 --rounds 7
"""

import sys

from rh_parallel.cli.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
