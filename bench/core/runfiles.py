"""Opening files inside a run folder, which is untrusted input: no link followed, no read that can block.

People hand run folders to each other to report on, compare and resume. A folder can hold a
planted symbolic link (``records.jsonl -> ~/.bashrc``), a FIFO where ``state.json`` belongs
(a plain ``open`` for reading waits on it forever) or a folder where a file belongs. Every
file the suite opens in a run folder goes through here:

- the final name is opened with ``O_NOFOLLOW`` (a link is refused, never written through) and
  ``O_NONBLOCK`` (a FIFO opens at once), then ``fstat`` must say regular file;
- every folder between the run folder and the file is ``lstat``-ed: a real folder, not a link;
- a whole-file write goes to a temporary name opened the same way (``O_EXCL``: a stale one,
  link or file, is removed first, never followed) and is renamed over the final name, which
  must itself be absent or a regular file.

``check_run_folder`` walks a folder before a command writes into it, so a hostile folder is
refused with one line before anything is written, instead of partway through.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


class RunFileError(ValueError):
    """A run file a command needs is unreadable."""


class UnsafeRunFile(RunFileError):
    """Something other than a regular file or folder stands where the suite reads or writes one."""


# What a run folder holds at its top level (names the suite writes; anything else is left alone).
FILES = (
    "plan.json",
    "state.json",
    "environment.json",
    "environment.json.unreadable",
    "records.jsonl",
    ".lock",
    "results.csv",
    "summary.md",
    "index.html",
)
FOLDERS = ("logs", "plots", "artifacts", ".jobs")
TEMP = ".partial"  # the suffix of a file being written, renamed over its final name when whole
WHY = "a run folder holds only regular files and folders"
# The most of a run file read into memory: records.jsonl of the 39-model zoo sweep on two backends is
# ~10 MB; a sparse 64 GB file must be refused, not read until memory runs out.
MAX_READ = 1 << 30


KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def kind_of(mode: int) -> str:
    """What an ``lstat`` mode is, in words for an error."""
    return next((name for test, name in KINDS if test(mode)), "of an unknown kind")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UnsafeRunFile(f"{path}: cannot be inspected ({e.strerror or e})") from e


def refuse(path: Path, what: str, wanted: str = "a regular file") -> UnsafeRunFile:
    return UnsafeRunFile(f"refused: {path} is {what}, not {wanted} ({WHY})")


def _relative_parts(root: Path, path: Path) -> tuple[Path, tuple[str, ...]]:
    """``path`` as (the run folder, the names below it), whether it was built from ``root`` or its resolved form."""
    path = Path(os.path.abspath(path))
    for base in (Path(os.path.abspath(root)), Path(root).resolve()):
        if path.is_relative_to(base) and path != base:
            return base, path.relative_to(base).parts
    raise UnsafeRunFile(f"refused: {path} is not inside the run folder {root}")


def check_parents(root: Path, path: Path, make: bool = False) -> None:
    """Every folder between ``root`` and ``path`` is a real folder (made when ``make`` and absent), never a link."""
    base, parts = _relative_parts(root, path)
    here = base
    for name in parts[:-1]:
        here = here / name
        st = _lstat(here)
        if st is None and make:
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile: checked next
                os.mkdir(here)
            st = _lstat(here)
        if st is None:
            raise FileNotFoundError(errno.ENOENT, f"{here}: no such folder")
        if not stat.S_ISDIR(st.st_mode):
            raise refuse(here, kind_of(st.st_mode), "a folder")


def _unfit(path: Path, st: os.stat_result, writing: bool) -> UnsafeRunFile | None:
    """Why the file ``st`` describes is not one the suite may open as a run file, or None."""
    if not stat.S_ISREG(st.st_mode):
        return refuse(path, kind_of(st.st_mode))
    if writing and st.st_nlink > 1:  # a hard link: writing it writes the other name's file, wherever that is
        return UnsafeRunFile(f"refused: {path} has {st.st_nlink} hard links; a run file has one ({WHY})")
    return None


def open_fd(root: Path, path: Path, flags: int, mode: int = 0o644) -> int:
    """A descriptor of the regular file ``path`` inside ``root`` (``os.open`` flags), no link followed.

    UnsafeRunFile when a link (symbolic or hard), FIFO, device or folder stands there; FileNotFoundError
    when absent (and not created by the flags). O_TRUNC is applied only once the file is known fit."""
    check_parents(root, path, make=bool(flags & os.O_CREAT))
    writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
    st = _lstat(path)
    if st is not None and (why := _unfit(path, st, writing)):  # never open a device or FIFO at all
        raise why
    try:
        fd = os.open(path, (flags & ~os.O_TRUNC) | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENOTDIR):  # a link, folder, FIFO, socket
            st = _lstat(path)
            raise refuse(path, kind_of(st.st_mode) if st else "gone") from None
        raise
    why = _unfit(path, os.fstat(fd), writing)
    if why:
        os.close(fd)
        raise why
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    if flags & os.O_TRUNC:
        os.ftruncate(fd, 0)
    return fd


MODES = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "r+": os.O_RDWR,
}


@contextlib.contextmanager
def open_file(root: Path, path: Path, mode: str = "rb") -> Iterator[IO]:
    """``open(path, mode)`` for "rb", "wb", "ab", "r+b" (and text modes), through ``open_fd``."""
    base = mode.replace("t", "").replace("b", "")
    flags = MODES[base]
    fd = open_fd(root, path, flags)
    text = "b" not in mode
    with os.fdopen(fd, mode, encoding="utf-8" if text else None, errors="replace" if text else None) as f:
        yield f


def read_bytes(root: Path, path: Path, limit: int = MAX_READ) -> bytes:
    """The bytes of the regular file ``path`` inside ``root``; FileNotFoundError when absent, UnsafeRunFile
    when it is larger than ``limit`` (checked before reading: a sparse file can claim any size)."""
    with open_file(root, path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise UnsafeRunFile(f"refused: {path} is {size:,} bytes, more than the {limit:,} a run file may be")
        return f.read(limit + 1)


def write_atomic(root: Path, path: Path, data: bytes | Callable[[IO[bytes]], object], sync: bool = False) -> None:
    """Write ``path`` whole or not at all: to ``NAME.partial``, then renamed over ``NAME``.

    ``data`` is the bytes, or a function that writes into the open file (``np.savez``,
    ``fig.savefig``, ``df.to_csv``). A link or anything but a regular file at either name is refused
    before a byte is written; the stale temporary is removed (a link is unlinked, never followed)."""
    path = Path(path)
    tmp = path.with_name(path.name + TEMP)
    check_parents(root, path, make=True)
    st = _lstat(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise refuse(path, kind_of(st.st_mode))
    st = _lstat(tmp)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise refuse(tmp, kind_of(st.st_mode))
        os.unlink(tmp)
    fd = open_fd(root, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes | bytearray):
                f.write(data)
            else:
                data(f)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_folder(root: Path, path: Path) -> Path:
    """``path`` (inside ``root``) as a real folder, made with its parents where absent; never a link."""
    check_parents(root, Path(path) / "_", make=True)
    return Path(path)


def clear_folder(root: Path, path: Path) -> None:
    """Remove ``path`` and what is in it (links inside are unlinked, not followed); refused when it is a link."""
    import shutil

    st = _lstat(path)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise refuse(path, kind_of(st.st_mode), "a folder")
    check_parents(root, path)
    shutil.rmtree(path)


def check_run_folder(run_dir: Path, writing: bool = True) -> None:
    """Refuse a run folder holding anything but regular files and folders (UnsafeRunFile naming the first).

    Called before a command writes into a folder it did not make (``report``, ``--resume``), so a
    hostile folder is one line and exit 2 with nothing written, not a traceback halfway through. A
    ``writing`` command also refuses hard-linked files (a copy made with ``cp -al`` can be compared)."""
    run_dir = Path(run_dir)
    for name in FILES:
        for candidate in (run_dir / name, run_dir / (name + TEMP)):
            st = _lstat(candidate)
            if st is not None and not stat.S_ISREG(st.st_mode):
                raise refuse(candidate, kind_of(st.st_mode))
    for name in FOLDERS:
        st = _lstat(run_dir / name)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise refuse(run_dir / name, kind_of(st.st_mode), "a folder")
    for path, st in _entries(run_dir):
        if stat.S_ISREG(st.st_mode):
            if (why := _unfit(path, st, writing)) is not None:
                raise why
        elif not stat.S_ISDIR(st.st_mode):
            raise refuse(path, kind_of(st.st_mode), "a regular file or folder")


def _entries(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry under ``root`` with its ``lstat``, links not followed; iterative (a folder nested
    thousands deep is no RecursionError) and a path the system cannot handle is one UnsafeRunFile."""
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                found = [(Path(e.path), e.stat(follow_symlinks=False)) for e in it]
        except OSError as e:
            raise UnsafeRunFile(f"refused: {e.filename or folder} cannot be read ({e.strerror or e})") from None
        for path, st in found:
            yield path, st
            if stat.S_ISDIR(st.st_mode):
                pending.append(path)
