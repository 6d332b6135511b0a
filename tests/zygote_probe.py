"""What a process run by tests/cli_zygote.py sees of itself, as JSON on stdout (tests/test_cli_zygote.py).

``python -m tests.zygote_probe [exit CODE | raise | sleep | kill]``."""

import json
import os
import signal
import sys
import time

import backends
from bench.measure import compile_cache
from bench.run import parity

what = sys.argv[1:2]
print(
    json.dumps(
        {
            "pid": os.getpid(),
            "parent": os.getppid(),
            "argv": sys.argv,
            "cwd": os.getcwd(),
            "probe": os.environ.get("ZYGOTE_PROBE"),
            "bench_vars": sorted(k for k in os.environ if k.startswith("BENCH_")),
            "started_with": compile_cache.STARTED_WITH.get("ZYGOTE_PROBE"),
            "stdin": sys.stdin.read(),
            "main": __name__,
            "cpus": sorted(os.sched_getaffinity(0)),
            "sigint": getattr(signal.getsignal(signal.SIGINT), "__name__", str(signal.getsignal(signal.SIGINT))),
            "path": sys.path[: sys.path.index(os.path.dirname(os.__file__))],  # up to the standard library
            "backends": list(backends.BACKENDS),  # a sitecustomize may add some
            "parity_reference": parity.REFERENCE,  # read from the registry at bench.run.parity's import
        }
    ),
    flush=True,
)
print("to stderr", file=sys.stderr)
if what == ["exit"]:
    raise SystemExit(int(sys.argv[2]))
if what == ["raise"]:
    raise ValueError("the probe raised")
if what == ["sleep"]:
    time.sleep(60)
if what == ["kill"]:
    os.kill(os.getpid(), signal.SIGTERM)
