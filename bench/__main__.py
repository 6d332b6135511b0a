"""``python -m bench``: Ctrl-C during the imports (seconds, before the CLI handles it) exits 130, no traceback;
output into a pipe its reader closed (``| head``) ends the command quietly, exit 141 as a shell says SIGPIPE.

A crash in native code (a framework's, Ray's) prints every thread's Python stack before the process dies
(``faulthandler``): the one clue a SIGSEGV leaves.
"""

import faulthandler
import os
import signal
import sys

faulthandler.enable()

try:
    from bench.run.cli import main

    code = main()
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    code = 130
except BrokenPipeError:  # `bench history --verbose | head`: the reader left; no traceback (Python's own advice)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor another at exit, flushing stdout
    code = 128 + signal.SIGPIPE  # as a shell reports it: not 1, which says "a regression" or "a failed run"
raise SystemExit(code)
