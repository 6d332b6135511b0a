"""One rank that joins, marks that it came, meets the others (``backend.barrier``) and lists who had come by then:
``python -m tests.dist_meet_probe BACKEND DIR``, started by tests/test_distributed_keras.py with
``DistContext(...).to_env()`` in its environment. Rank 1 comes last, on purpose: a barrier that returned before every
rank called it would let rank 0 list no mark of rank 1's. Prints one ``@@met`` JSON line: the marks it saw.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

COME_LATE_S = 2.0  # rank 1's delay: far past a loopback barrier's own time, so a rank that does not wait sees it


def main(argv: list[str]) -> int:
    from backends import load_backend
    from bench.core.distributed import DistContext
    from bench.core.spec import RuntimeSpec

    name, folder = argv[0], Path(argv[1])
    ctx = DistContext.from_env()
    if ctx is None:
        print("no BENCH_DIST_* in the environment", file=sys.stderr)
        return 2
    backend = load_backend(name)
    backend.configure(RuntimeSpec(device="cpu", threads=1), seed=0)
    backend.join(ctx)
    try:
        if ctx.rank:
            time.sleep(COME_LATE_S)
        (folder / f"came-{ctx.rank}").touch()
        backend.barrier()
        print("@@met " + json.dumps(sorted(p.name for p in folder.iterdir())), flush=True)
    finally:
        backend.leave()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
