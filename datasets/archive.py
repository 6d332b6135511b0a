"""The files of a local copy — a folder, a zip or a tar archive — by relative name, safely.

Importers read members in place instead of extracting them, and an archive is
checked as a whole before any member is read: one member that would land outside
the extraction directory (absolute path, drive letter, ``..``), or that is a link
or a device, refuses the archive with an error naming that member; in a folder, a
symbolic link that resolves outside it does the same. An archive
that tries this is not one of the datasets' published archives.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeArchive(ValueError):
    """An archive member would escape the target directory; the message names it."""


class NotAnArchive(ValueError):
    """The path is neither a folder nor a zip/tar archive."""


class LayoutError(ValueError):
    """A local copy is not in a layout the dataset can be imported from; says what is expected."""


def unsafe_reason(name: str) -> str | None:
    """Why a member name would land outside the target directory (None: it would not)."""
    if not name or "\0" in name:
        return "has an empty name or a NUL byte"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "is an absolute path"
    if ".." in re.split(r"[\\/]", name):
        return "contains '..'"
    return None


class Tree(ABC):
    """Regular files of a local copy by POSIX-style relative name; subclasses read them."""

    # The folders a member's name sits in beyond its own path: a folder's name, so that the folder itself can be a
    # layout's named folder (``PetImages/`` given as ``~/PetImages``); an archive's members carry theirs.
    outer: tuple[str, ...] = ()

    def __init__(self, path: Path, names: list[str]) -> None:
        self.path = path
        self.names = sorted(names)

    @abstractmethod
    def read(self, name: str) -> bytes:
        """The bytes of member ``name`` (one of ``names``)."""

    @abstractmethod
    def close(self) -> None:
        """Release the open archive."""

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)


class DirTree(Tree):
    """A folder: a symbolic link that resolves outside it refuses the whole folder (as a link in an archive
    does); links that stay inside are read."""

    def __init__(self, path: Path) -> None:
        self._root = path.resolve()
        names = []
        for p in path.rglob("*"):
            self._check_link(path, p)
            if p.is_file():
                names.append(p.relative_to(path).as_posix())
        super().__init__(path, names)
        self.outer = (self._root.name,)

    def _check_link(self, path: Path, p: Path) -> None:
        target = p.resolve()
        if not target.is_relative_to(self._root):
            rel = p.relative_to(path).as_posix()
            raise UnsafeArchive(f"{path}: {rel} is a symbolic link to {target}, outside the folder: import refused")

    def read(self, name: str) -> bytes:
        self._check_link(self.path, self.path / name)  # the link may have changed since the listing
        return (self.path / name).read_bytes()

    def close(self) -> None:
        """Nothing to release: each read opens and closes its file."""


class ZipTree(Tree):
    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path)
        self._members: dict[str, zipfile.ZipInfo] = {}
        try:
            for info in self._zip.infolist():
                _refuse_if_unsafe(path, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchive(f"{path}: member {info.filename!r} is a symbolic link: archive refused")
                if not info.is_dir():
                    self._members[PurePosixPath(info.filename.replace("\\", "/")).as_posix()] = info
        except BaseException:
            self._zip.close()
            raise
        super().__init__(path, list(self._members))

    def read(self, name: str) -> bytes:
        return self._zip.read(self._members[name])

    def close(self) -> None:
        self._zip.close()


class TarTree(Tree):
    def __init__(self, path: Path) -> None:
        self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - open for the tree's life, see close()
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            for m in self._tar.getmembers():
                _refuse_if_unsafe(path, m.name)
                if m.issym() or m.islnk():
                    kind = "symbolic" if m.issym() else "hard"
                    raise UnsafeArchive(
                        f"{path}: member {m.name!r} is a {kind} link to {m.linkname!r}: archive refused"
                    )
                if not (m.isfile() or m.isdir()):
                    raise UnsafeArchive(f"{path}: member {m.name!r} is a device or FIFO: archive refused")
                if m.isfile():
                    self._members[PurePosixPath(m.name).as_posix()] = m
        except BaseException:
            self._tar.close()
            raise
        super().__init__(path, list(self._members))

    def read(self, name: str) -> bytes:
        f = self._tar.extractfile(self._members[name])
        assert f is not None  # regular files always have a body
        return f.read()

    def close(self) -> None:
        self._tar.close()


def _refuse_if_unsafe(path: Path, name: str) -> None:
    reason = unsafe_reason(name)
    if reason:
        raise UnsafeArchive(f"{path}: member {name!r} {reason}: archive refused, nothing was read")


def archive_problem(path: Path) -> str | None:
    """Why ``path`` is not a zip or tar archive (None: it is one), naming what it looks like."""
    if zipfile.is_zipfile(path) or tarfile.is_tarfile(path):
        return None
    with open(path, "rb") as f:
        head = f.read(64)
    looks = " (it looks like a web page)" if head.lstrip().lower().startswith((b"<!doctype", b"<html")) else ""
    return f"not a zip or tar archive{looks}; starts with {head[:16]!r}"


def open_tree(path: Path) -> Tree:
    """A folder, zip or tar (any compression) as a ``Tree``; archives are checked first."""
    if path.is_dir():
        return DirTree(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if zipfile.is_zipfile(path):
        try:
            return ZipTree(path)
        except zipfile.BadZipFile as e:
            raise NotAnArchive(f"{path}: damaged zip archive: {e}") from None
    if tarfile.is_tarfile(path):
        try:
            return TarTree(path)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise NotAnArchive(f"{path}: damaged tar archive: {e}") from None
    raise NotAnArchive(f"{path}: not a folder, zip or tar archive")
