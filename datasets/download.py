"""Download one file from its mirrors, checked before anything reads it.

The bytes go to ``<file>.partial`` and are hashed as they arrive; only a complete body
whose size and published digest match is renamed to ``<file>`` (an atomic rename on
one filesystem). A mirror that fails (HTTP error, closed early, wrong digest) is
recorded and the next one tried; the ``.partial`` is deleted on every failure, Ctrl-C
included, so a half download can never be mistaken for a cache entry.

Where no digest is published, the SHA-256 of what was received is written beside the
file (``<file>.sha256``): that proves later that the file is unchanged since download,
not that the download was authentic, and ``verify`` says exactly that.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from datasets.sources import Resource

CHUNK = 1 << 20
USER_AGENT = "bench-data/1 (+python urllib)"


class DownloadError(RuntimeError):
    """No mirror gave a complete, verified copy; the message lists what each one did."""


@dataclass(frozen=True)
class Digests:
    size: int
    md5: str
    sha256: str


@dataclass(frozen=True)
class Fetched:
    path: Path
    digests: Digests
    url: str  # where it came from; "" when an already-downloaded copy was reused
    verified: bool  # checked against a published digest (False: none is published)


def file_digests(path: Path) -> Digests:
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return Digests(size, md5.hexdigest(), sha.hexdigest())


def mismatches(resource: Resource, got: Digests) -> list[str]:
    """What differs from the published size and digests (empty: all that is published matches)."""
    where = f" (published in {resource.checksum_from})" if resource.checksum_from else ""
    problems = []
    if resource.size is not None and got.size != resource.size:
        problems.append(f"size is {got.size} bytes, expected {resource.size}{where}")
    if resource.md5 and got.md5 != resource.md5.lower():
        problems.append(f"MD5 is {got.md5}, expected {resource.md5}{where}")
    if resource.sha256 and got.sha256 != resource.sha256.lower():
        problems.append(f"SHA-256 is {got.sha256}, expected {resource.sha256}{where}")
    return problems


def recorded_sha256(path: Path) -> str | None:
    """The SHA-256 written beside a download that has no published digest, if any."""
    record = path.with_name(path.name + ".sha256")
    words = record.read_text().split() if record.is_file() else []
    return words[0] if words else None


def download(url: str, partial: Path, *, timeout: float = 60.0, progress: bool = True) -> Digests:
    """Stream ``url`` into ``partial``, hashing as it goes; raise unless the body is complete."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with (
                open(partial, "wb") as f,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=partial.name.removesuffix(".partial"),
                    disable=not progress,
                    file=sys.stderr,
                    leave=False,
                ) as bar,
            ):
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    md5.update(chunk)
                    sha.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())
    except urllib.error.HTTPError as e:
        raise DownloadError(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DownloadError(f"cannot connect: {e.reason}") from None
    except (http.client.HTTPException, OSError) as e:
        raise DownloadError(f"transfer failed after {size} bytes: {type(e).__name__}: {e}") from None
    if total is not None and size != total:
        raise DownloadError(f"incomplete: the connection closed after {size} of {total} bytes")
    return Digests(size, md5.hexdigest(), sha.hexdigest())


def fetch(
    resource: Resource,
    dest_dir: Path,
    *,
    content_check: Callable[[Path], str | None] | None = None,
    timeout: float = 60.0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Fetched:
    """``dest_dir/<filename>``, verified: reused when already there and intact, else downloaded.

    ``content_check`` (a problem or None) also runs before the rename; it is how a file
    without a published digest is told apart from, say, a web page served in its place.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / resource.filename
    if final.is_file():
        got = file_digests(final)
        if resource.has_digest and not mismatches(resource, got):
            log(f"  {resource.filename}: already downloaded, digest matches")
            return Fetched(final, got, "", True)
        if not resource.has_digest and recorded_sha256(final) == got.sha256:
            log(f"  {resource.filename}: already downloaded, unchanged since (SHA-256 recorded then)")
            return Fetched(final, got, "", False)
        log(f"  {resource.filename}: the copy already here cannot be confirmed intact; downloading again")
        final.unlink()
    partial = final.with_name(final.name + ".partial")
    failures = []
    for url in resource.urls:
        log(f"  {resource.filename}: downloading {url}")
        try:
            got = download(url, partial, timeout=timeout, progress=progress)
            problems = mismatches(resource, got)
            if not problems and content_check and (problem := content_check(partial)):
                problems = [problem]
            if problems:
                raise DownloadError("; ".join(problems))
        except BaseException as e:  # Ctrl-C too: never leave the half file behind
            partial.unlink(missing_ok=True)
            if not isinstance(e, DownloadError):
                raise
            failures.append(f"{url}: {e}")
            log(f"  {resource.filename}: {e}")
            continue
        partial.replace(final)
        if not resource.has_digest:
            final.with_name(final.name + ".sha256").write_text(f"{got.sha256}  {final.name}\n")
        return Fetched(final, got, url, resource.has_digest)
    raise DownloadError(
        f"{resource.filename}: no mirror gave a complete, verified copy (nothing was cached):\n  "
        + "\n  ".join(failures or ["no URL is listed for it"])
    )
