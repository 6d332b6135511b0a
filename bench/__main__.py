"""``python -m bench``: Ctrl-C during the imports (seconds, before the CLI handles it) exits 130, no traceback."""

import sys

try:
    from bench.run.cli import main

    code = main()
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    code = 130
raise SystemExit(code)
