"""``python -m bench``: Ctrl-C during the imports (seconds, before the CLI handles it) exits 130, no traceback.

A crash in native code (a framework's, Ray's) prints every thread's Python stack before the process dies
(``faulthandler``): the one clue a SIGSEGV leaves.
"""

import faulthandler
import sys

faulthandler.enable()

try:
    from bench.run.cli import main

    code = main()
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    code = 130
raise SystemExit(code)
