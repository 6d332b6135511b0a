"""Progress lines from a worker: ``@@ message`` on stdout, which the runner shows to the user."""

from __future__ import annotations


def progress(msg: str) -> None:
    print(f"@@ {msg}", flush=True)
