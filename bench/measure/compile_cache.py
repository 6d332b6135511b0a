"""A row's compile time is a first run's: a compiler's persistent cache starts empty unless the user named one.

torch.compile's inductor writes what it compiles to a folder in /tmp (``torchinductor_$USER``) and reads it back
in any later process: the second run of a row would report a fraction of the first's compile time, and `bench
tune` would find torch.compile paid back sooner than a user's first run does. So a row whose backend keeps such a
cache by default (its description's ``compile_cache``) gets a new, empty folder of its own, removed after the
row. A cache the user named ($TORCHINDUCTOR_CACHE_DIR, $JAX_COMPILATION_CACHE_DIR) is theirs to keep: the row
records it (knob ``compilation_cache``) and a note says its compile times may be reads.

A row killed on its timeout (SIGKILL) never reaches the ``finally`` that removes its folder, and a torch.compile
of a ConvNeXt leaves hundreds of MB there. So each folder's name carries the pid of the process that made it,
and every row first removes the folders of processes that are gone.

"Named by the user" means set in the environment the process started with: torch sets
$TORCHINDUCTOR_CACHE_DIR to its default folder itself the first time it looks (in a warm server's import, say),
so the variable's value later says nothing about who chose it. Every process that trains rows imports this
module before any framework (bench.run.forkserver, bench.run.worker, bench.run.dist_worker).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bench.core.backend import CompileCache

STARTED_WITH: Mapping[str, str] = dict(os.environ)  # this process's environment before any framework's import
PREFIX = "bench-compile-cache-"  # then the pid of the process that made it, "-", mkdtemp's random part


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return True


def remove_orphans(where: Path, prefix: str = PREFIX) -> list[Path]:
    """Remove the folders ``<prefix><pid>-...`` under ``where`` whose process is gone (killed before its cleanup
    ran): a row's compile cache, or a row's scratch folder on a node (``bench.run.executors.remote``)."""
    removed = []
    for folder in where.glob(f"{prefix}*-*"):
        pid = folder.name[len(prefix) :].partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def first_run_compiles(cache: CompileCache, started_with: Mapping[str, str] = STARTED_WITH) -> Iterator[str | None]:
    """Inside: the compiler reads no cache but the one the user named; yields that folder, or None (none read)."""
    named = started_with.get(cache.variable) if cache.variable else None
    if not cache.variable or (not named and not cache.on_when_unset):
        yield None
        return
    before = os.environ.get(cache.variable)
    if not named:
        remove_orphans(Path(tempfile.gettempdir()))
    folder = None if named else tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    os.environ[cache.variable] = named or str(folder)
    try:
        yield named
    finally:
        if before is None:
            os.environ.pop(cache.variable, None)
        else:
            os.environ[cache.variable] = before
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def cache_knob(knobs: Any, folder: str | None) -> None:
    """Name the user's compile cache the row read (``folder``, from ``first_run_compiles``) in its nested ``knobs``,
    the history's series key: a row that read a cache is another configuration. Nothing where none was read."""
    if folder and isinstance(knobs, dict):
        knobs["compilation_cache"] = folder


def compile_cache_note(folder: str | None) -> str | None:
    """What a row that may have read compiled programs from the user's persistent cache says about its times."""
    if not folder:
        return None
    return (
        f"persistent compilation cache on ({folder}): compile_s and first_step_s may have read compiled programs "
        "instead of compiling them, so they are not what a first run pays"
    )
