"""Fetch, import, verify and describe cache files: what ``python -m bench data`` does.

Layout of an output directory (the user cache by default, or ``--data-dir``):

- ``<cache file>`` — the cache form the registry looks for (``mnist.npz``, ``catsdogs.npz``, ...);
- ``<cache file>.source.json`` — provenance: where it came from, how each input was
  verified, the images skipped, and the SHA-256 of the cache file as written;
- ``downloads/<dataset>/`` — the original files as downloaded, kept so a later
  ``fetch`` reuses them and ``verify`` can re-check them against the published digests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets import download, registry
from datasets.archive import archive_problem
from datasets.importers import UNPUBLISHED, Imported, import_path
from datasets.npz import (
    DatasetFileError,
    check_regular_file,
    check_without_images,
    npy_header,
    read_npz,
    write_npz,
)
from datasets.sources import SHARED_CACHE_FROM, SHARED_CACHE_SHA256, SOURCES, Source

# The file fetch/import write when the registry's first name is a specific shared copy.
_WRITTEN_AS = {"catsdogs": "catsdogs.npz"}

Log = Callable[[str], None]


@dataclass
class Written:
    path: Path
    imported: Imported
    sha256: str
    resolves_to: Path | None  # what `bench run` without --data-dir loads for this dataset now


@dataclass
class Verdict:
    ok: bool
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Status:
    name: str
    path: Path | None
    bytes: int = 0
    n_train: int = 0
    n_test: int = 0
    image_shape: tuple[int, ...] = ()
    error: str = ""  # the file exists but cannot be described


def output_dir(data_dir: str | Path | None) -> Path:
    return Path(data_dir) if data_dir else registry.default_cache_dir()


def cache_file_name(dataset: str) -> str:
    name = _WRITTEN_AS.get(dataset, registry.DATASETS[dataset].file)
    assert name in registry.DATASETS[dataset].files, f"registry does not look for {name}"
    return name


def shadowing(dataset: str, out_dir: Path) -> Path | None:
    """A file in ``out_dir`` that runs read before the one fetch and import write there (the registry's earlier
    name: ``kaggle_dogs_vs_cats_64.npz`` before ``catsdogs.npz``), or None. Writing beside it, the new file would
    never be read: an import into the folder holding the shared Kaggle copy said "runs find it with --data-dir"
    and every run went on reading the other (QA, 2026-12-07)."""
    files = registry.DATASETS[dataset].files
    written = files.index(cache_file_name(dataset))
    return next((out_dir / f for f in files[:written] if os.path.lexists(out_dir / f)), None)


def provenance_path(cache_file: Path) -> Path:
    return cache_file.with_name(cache_file.name + ".source.json")


def write_cache(dataset: str, imported: Imported, out_dir: Path, origin: dict) -> Written:
    """Write the cache file (atomically) and its provenance record."""
    path = write_npz(imported.ds, out_dir / cache_file_name(dataset))
    sha = download.file_digests(path).sha256
    ds = imported.ds
    record = {
        "dataset": dataset,
        "written_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **origin,
        "checks": [{"input": subject, "result": result} for subject, result in imported.checks],
        "skipped_images": [{"member": m, "why": why} for m, why in imported.skipped],
        "notes": imported.notes,
        "output": {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": sha,
            "n_train": len(ds.train),
            "n_test": len(ds.test),
            "image_shape": list(ds.image_shape),
            "classes": list(ds.classes),
        },
    }
    tmp = provenance_path(path).with_name(provenance_path(path).name + ".partial")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(provenance_path(path))
    try:
        resolves_to = registry.find_file(dataset)
    except registry.DatasetNotFound:  # a mistyped BENCH_DATA_DIR: nothing resolves
        resolves_to = None
    return Written(path, imported, sha, resolves_to)


def import_dataset(
    dataset: str,
    path: Path,
    out_dir: Path,
    *,
    size: int = 64,
    sources: dict[str, Source] | None = None,
    progress: bool = True,
) -> Written:
    imported = import_path(dataset, path, size=size, sources=sources, progress=progress)
    return write_cache(dataset, imported, out_dir, {"origin": "import", "from": str(Path(path).resolve())})


def fetch_dataset(
    dataset: str,
    out_dir: Path,
    *,
    size: int = 64,
    sources: dict[str, Source] | None = None,
    timeout: float = 60.0,
    progress: bool = True,
    log: Log = print,
) -> Written:
    """Download every file of ``dataset`` (verified), then import them like a local copy."""
    table = SOURCES if sources is None else sources
    if dataset not in table:
        raise KeyError(f"no download source for dataset {dataset!r} (have: {', '.join(table)})")
    source = table[dataset]
    dl_dir = out_dir / "downloads" / dataset
    fetched = [
        download.fetch(
            r,
            dl_dir,
            content_check=None if r.has_digest else archive_problem,
            timeout=timeout,
            progress=progress,
            log=log,
        )
        for r in source.resources
    ]
    local = fetched[0].path if len(fetched) == 1 else dl_dir
    imported = import_path(dataset, local, size=size, sources=table, progress=progress)
    origin = {
        "origin": "fetch",
        "downloads": [
            {
                "file": f.path.name,
                "url": f.url or "(already downloaded)",
                "bytes": f.digests.size,
                "md5": f.digests.md5,
                "sha256": f.digests.sha256,
                "verified_against": r.checksum_from if f.verified else "nothing: no checksum is published",
            }
            for f, r in zip(fetched, source.resources, strict=True)
        ],
    }
    return write_cache(dataset, imported, out_dir, origin)


def _check_cache_file(path: Path, verdict: Verdict) -> None:
    sha = download.file_digests(path).sha256
    shared = SHARED_CACHE_SHA256.get(path.name)
    prov_path = provenance_path(path)
    try:
        prov = json.loads(prov_path.read_text()) if prov_path.is_file() else None
    except (OSError, ValueError) as e:
        verdict.ok = False
        verdict.lines.append(f"FAIL  {prov_path}: unreadable provenance record: {e}")
        prov = None
    if shared == sha:
        verdict.lines.append(f"ok    {path}: SHA-256 matches the one listed in {SHARED_CACHE_FROM}")
    elif prov is not None:
        recorded = prov["output"]["sha256"]
        by = f"`bench data {prov['origin']}` when it wrote the file ({prov['written_utc']})"
        if recorded == sha:
            verdict.lines.append(f"ok    {path}: SHA-256 matches the one recorded by {by}")
        else:
            verdict.ok = False
            verdict.lines.append(f"FAIL  {path}: SHA-256 {sha} differs from {recorded}, recorded by {by}")
        for check in prov.get("checks", []):
            if check["result"] != UNPUBLISHED:  # the unverified inputs are summed up below
                verdict.lines.append(f"      built from {check['input']}: {check['result']}")
        unverified = sum(check["result"] == UNPUBLISHED for check in prov.get("checks", []))
        if unverified:
            verdict.lines.append(
                f"      built from {unverified} input(s) with no published checksum (checked by structure)"
            )
        if prov.get("skipped_images"):
            verdict.lines.append(f"      {len(prov['skipped_images'])} corrupt image(s) were skipped when it was built")
    elif shared is not None:
        verdict.ok = False
        verdict.lines.append(f"FAIL  {path}: SHA-256 {sha} differs from {shared}, listed in {SHARED_CACHE_FROM}")
    else:
        verdict.ok = False
        verdict.lines.append(
            f"??    {path}: no known digest (not a shared file, no {prov_path.name} from `bench data`): unverified"
        )


def _check_downloads(dataset: str, folder: Path, sources: dict[str, Source], verdict: Verdict) -> None:
    source = sources.get(dataset)
    for r in source.resources if source else ():
        f = folder / "downloads" / dataset / r.filename
        if not f.is_file():
            continue
        got = download.file_digests(f)
        if r.has_digest:
            problems = download.mismatches(r, got)
            verdict.ok &= not problems
            verdict.lines.append(
                f"FAIL  {f}: {'; '.join(problems)}" if problems else f"ok    {f}: matches {r.checksum_from}"
            )
            continue
        recorded = download.recorded_sha256(f)
        if recorded == got.sha256:
            verdict.lines.append(
                f"ok    {f}: no published checksum exists for it; its SHA-256 {got.sha256} is the one recorded "
                "at download (so it is unchanged since, which does not prove the download was authentic)"
            )
        else:
            verdict.ok = False
            verdict.lines.append(
                f"FAIL  {f}: no published checksum exists, and its SHA-256 {got.sha256} differs from the one "
                f"recorded at download ({recorded or 'none recorded'})"
            )


def verify_dataset(
    dataset: str, data_dir: str | Path | None = None, sources: dict[str, Source] | None = None
) -> Verdict:
    """Check the cache file the registry resolves for ``dataset``, and the downloads beside it."""
    path = registry.find_file(dataset, data_dir)
    if path is None:
        looked = ", ".join(str(d) for d in registry.search_dirs(data_dir))
        return Verdict(False, [f"FAIL  {dataset}: no cache file to verify (looked in: {looked})"])
    try:
        check_regular_file(path)  # before hashing it: a FIFO would block, a folder has no digest
    except DatasetFileError as e:
        return Verdict(False, [f"FAIL  {e}"])
    verdict = Verdict(True)
    _check_cache_file(path, verdict)
    try:
        ds = read_npz(path, dataset)
        verdict.lines.append(
            f"ok    readable: {len(ds.train):,} train + {len(ds.test):,} test images of "
            f"{'x'.join(map(str, ds.image_shape))}, classes {', '.join(ds.classes)}"
        )
    except (DatasetFileError, zipfile.BadZipFile) as e:  # read_npz lets a bad member CRC through
        verdict.ok = False
        verdict.lines.append(f"FAIL  {path}: not readable: {e}")
    _check_downloads(dataset, path.parent, SOURCES if sources is None else sources, verdict)
    return verdict


def _npz_shape(path: Path, npz: np.lib.npyio.NpzFile, key: str) -> tuple[int, ...]:
    """An array's shape from its header, without reading its data (a cache file can be GBs)."""
    assert npz.zip is not None  # None only once the NpzFile is closed; the caller holds it open
    with npz.zip.open(f"{key}.npy") as f:
        return npy_header(path, key, f)[0]


def status(dataset: str, data_dir: str | Path | None = None) -> Status:
    """Where ``dataset`` resolves, how big the file is and how many images it holds."""
    path = registry.find_file(dataset, data_dir)
    return Status(dataset, None) if path is None else describe(dataset, path)


def describe(dataset: str, path: Path) -> Status:
    """Size, image count and shape of the cache file at ``path``, from the array headers; checked as a run reads
    it but for the pixels (``check_without_images``), so "cached" means a run can use it."""
    try:
        check_regular_file(path)  # before any open: a FIFO would block `data list`
        size = path.stat().st_size
        if not zipfile.is_zipfile(path):  # np.load would return a bare .npy array, or refuse a pickle
            return Status(dataset, path, size, error="not readable: not an .npz file (a zip of .npy arrays)")
        try:
            check_without_images(path)
        except DatasetFileError as e:
            return Status(dataset, path, size, error=f"not usable: {str(e).removeprefix(f'{path}: ')}")
        with np.load(path, allow_pickle=False) as npz:
            n_train, n_test = _npz_shape(path, npz, "y_train")[0], _npz_shape(path, npz, "y_test")[0]
            shape = _npz_shape(path, npz, "x_train")[1:]
    except (OSError, ValueError, KeyError) as e:  # DatasetFileError names the path, which `data list` shows anyway
        return Status(dataset, path, error=f"not readable: {str(e).removeprefix(f'{path}: ')}")
    return Status(dataset, path, size, n_train, n_test, shape)
