"""``python -m bench``: Ctrl-C during the imports (seconds, before the CLI handles it) exits 130, no traceback;
output into a pipe its reader closed (``| head``) ends the command quietly, exit 141 as a shell says SIGPIPE.
Output into a file or a pipe (CI's log, ``| tee``) goes out a line at a time, as on a terminal: Python buffers
it by 8 KB there, so a run's progress showed minutes late (or at its end), and a reader gone before the last
buffer's flush at exit printed a traceback and exit 120.

A crash in native code (a framework's, Ray's) prints every thread's Python stack before the process dies
(``faulthandler``): the one clue a SIGSEGV leaves.
"""

import faulthandler
import io
import os
import signal
import sys

faulthandler.enable()
if isinstance(sys.stdout, io.TextIOWrapper):  # None without a stdout (pythonw), a replacement under a debugger
    sys.stdout.reconfigure(line_buffering=True)

try:
    from bench.run.cli import main

    code = main()
    sys.stdout.flush()  # a partial last line: a reader gone by now ends as quietly
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    code = 130
except BrokenPipeError:  # `bench history --verbose | head`: the reader left; no traceback (Python's own advice)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor another at exit, flushing stdout
    code = 128 + signal.SIGPIPE  # as a shell reports it: not 1, which says "a regression" or "a failed run"
raise SystemExit(code)
