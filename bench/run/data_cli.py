"""``python -m bench data list | fetch NAME | verify NAME | import NAME PATH``.

Gets the real datasets into the cache form the registry reads, from their official
sources (checked against published digests) or from a local copy. Wired into
``bench.run.cli`` by ``add_data_parser`` and ``run_data_command``; imports neither
framework, so it stays quick.

Exit status: 0 done / verified, 1 a download or verification failed, 2 bad input
(unknown dataset, missing path, a local copy in no known layout or failing its
checksum), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.run.argtypes import in_range
from datasets import registry, store
from datasets.archive import LayoutError, NotAnArchive, UnsafeArchive
from datasets.download import DownloadError
from datasets.imagefolder import CLASSES as IMAGE_DATASETS
from datasets.importers import ChecksumMismatch
from datasets.sources import Source

DEFAULT_SIZE = 64
_SHOWN_SKIPS = 10
# Problems with a local copy or its content, as opposed to the network.
_CONTENT_ERRORS = (LayoutError, NotAnArchive, UnsafeArchive, ChecksumMismatch)


class BadInput(ValueError):
    """A command-line value that cannot work; reported on one line with exit status 2."""


def _size(value: str) -> int:
    return in_range(
        value, int, 8, 1024, "must be an integer, got {value}", "must be between 8 and 1024 pixels, got {n}"
    )


def add_data_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` and its sub-commands to the main parser's sub-commands."""
    names = list(registry.DATASETS)
    cache = "the user cache ($BENCH_CACHE, default ~/.cache/bench)"
    p = subparsers.add_parser(
        "data",
        help="list, fetch, verify or import the real datasets",
        description="Get the real datasets into the cache form that runs read: from their official sources, "
        "checked against the published checksums, or from a local copy in the dataset's standard layout.",
    )
    sub = p.add_subparsers(dest="data_command", required=True, metavar="{list,fetch,verify,import}")

    p_list = sub.add_parser(
        "list",
        help="where each dataset resolves, its size and number of images",
        description="Per dataset: whether a cache file is found, where, how big, and how many images it holds.",
    )
    p_list.add_argument("--data-dir", help="look here first (as `run --data-dir`), then BENCH_DATA_DIR, then the cache")

    p_fetch = sub.add_parser(
        "fetch",
        help="download a dataset from its official source and build its cache file",
        description="Download NAME from its official source (mirrors tried in order, with a progress bar), "
        "check each file against its published checksum before reading it, and write the cache file. "
        "Downloads are kept in <dir>/downloads/NAME/ and reused.",
    )
    p_fetch.add_argument("name", metavar="NAME", choices=names, help=f"one of: {', '.join(names)}")
    p_fetch.add_argument("--data-dir", help=f"write here instead of {cache}")
    p_fetch.add_argument("--size", type=_size, help=f"image side for {', '.join(IMAGE_DATASETS)} (default 64)")
    p_fetch.add_argument("--force", action="store_true", help="rebuild the cache file even if it exists")
    p_fetch.add_argument(
        "--timeout", type=_seconds, default=60.0, help="seconds without data before a mirror fails (0.1-3600)"
    )

    p_verify = sub.add_parser(
        "verify",
        help="check a dataset's cache file (and downloads) against known digests",
        description="Check the cache file NAME resolves to: against the SHA-256 listed for the shared data "
        "files, or the one recorded when `data fetch/import` wrote it; and any downloads beside it against "
        "their published checksums (or, where none is published, the SHA-256 recorded at download).",
    )
    p_verify.add_argument("name", metavar="NAME", choices=names, help=f"one of: {', '.join(names)}")
    p_verify.add_argument("--data-dir", help="look here first (as `run --data-dir`)")

    p_import = sub.add_parser(
        "import",
        help="build a dataset's cache file from a local copy",
        description="Build NAME's cache file from a local copy in its standard layout: MNIST idx files; "
        "cifar-10-binary.tar.gz or cifar-10-batches-bin/; kagglecatsanddogs_*.zip, PetImages/ or an "
        "ImageFolder tree (train/<class>/, test/ or val/) for catsdogs and afhq. Archives are read in place; "
        "corrupt images are skipped and counted.",
    )
    p_import.add_argument("name", metavar="NAME", choices=names, help=f"one of: {', '.join(names)}")
    p_import.add_argument("path", metavar="PATH", type=Path, help="the local file or folder")
    p_import.add_argument("--data-dir", help=f"write here instead of {cache}")
    p_import.add_argument("--size", type=_size, help=f"image side for {', '.join(IMAGE_DATASETS)} (default 64)")


def _mb(n: int) -> str:
    return f"{n:,} bytes ({n / 1e6:.1f} MB)"


def _images(n_train: int, n_test: int, shape: tuple[int, ...]) -> str:
    return f"{n_train + n_test:,} images ({n_train:,} train + {n_test:,} test) of {'x'.join(map(str, shape))}"


def cmd_list(data_dir: str | None) -> int:
    registry.search_dirs(data_dir)  # a missing --data-dir is bad input, before any output
    for name, info in registry.DATASETS.items():
        s = store.status(name, data_dir)
        if s.path is None:  # what a run loads instead, in datasets.registry.load's order
            if info.stand_in:
                fallback = f"runs use {info.stand_in} in its place"
            elif info.embedded:
                fallback = "runs use its embedded stand-in"
            else:
                fallback = "no embedded stand-in: runs need it"
            print(f"{name:9s} not cached ({fallback}); get it: python -m bench data fetch {name}")
        elif s.error:
            print(f"{name:9s} cached but {s.error}: {s.path}")
        else:
            images = _images(s.n_train, s.n_test, s.image_shape)
            print(f"{name:9s} cached: {s.path}, {_mb(s.bytes)}, {images}")
    return 0


def _seconds(value: str) -> float:
    """``--timeout`` as argparse's type: 0 read "cannot connect: Operation now in progress", -1 a traceback from the
    socket (QA, 2026-12-07)."""
    return in_range(
        value, float, 0.1, 3600.0, "{value} is not a number of seconds", "{value}: give 0.1 to 3600 seconds"
    )


def _image_size(name: str, size: int | None) -> int:
    if size is not None and name not in IMAGE_DATASETS:
        raise BadInput(f"--size applies to {', '.join(IMAGE_DATASETS)} (image folders), not {name}")
    return size or DEFAULT_SIZE


def _grouped(checks: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Inputs by verification result, so four idx files checked alike take one line."""
    groups: dict[str, list[str]] = {}
    for subject, result in checks:
        groups.setdefault(result, []).append(subject)
    # Several inputs on one line: their file names say enough (the folder is in the command).
    return {r: [Path(s.split(":")[-1]).name for s in v] if len(v) > 1 else v for r, v in groups.items()}


def _report(name: str, w: store.Written) -> None:
    ds = w.imported.ds
    images = _images(len(ds.train), len(ds.test), ds.image_shape)
    print(f"{name}: wrote {w.path}, {_mb(w.path.stat().st_size)}, {images}, classes {', '.join(ds.classes)}")
    for result, inputs in _grouped(w.imported.checks).items():
        print(f"  checked: {', '.join(inputs)}: {result}")
    if w.imported.skipped:
        print(f"  skipped {len(w.imported.skipped)} corrupt or undecodable image(s):")
        for member, why in w.imported.skipped[:_SHOWN_SKIPS]:
            print(f"    {member}: {why}")
        if len(w.imported.skipped) > _SHOWN_SKIPS:
            print(f"    ... and {len(w.imported.skipped) - _SHOWN_SKIPS} more, all listed in the provenance file")
    for note in w.imported.notes:
        print(f"  note: {note}")
    print(f"  SHA-256 {w.sha256}, recorded in {store.provenance_path(w.path).name}")
    if w.resolves_to is None:
        print(f"  runs find it with --data-dir {w.path.parent} (it is not on the default search path)")
    elif w.resolves_to != w.path.resolve():
        print(f"  note: runs without --data-dir load {w.resolves_to} first (it comes earlier in the search)")


def cmd_fetch(args: argparse.Namespace, sources: dict[str, Source] | None) -> int:
    size = _image_size(args.name, args.size)
    out_dir = store.output_dir(args.data_dir)
    _check_not_shadowed(args.name, out_dir)
    existing = out_dir / store.cache_file_name(args.name)
    if existing.is_file() and not args.force:
        s = store.describe(args.name, existing)
        if not s.error and (args.size is None or s.image_shape[:2] == (size, size)):
            print(f"{args.name}: already cached at {existing} (use --force to rebuild; `data verify` to check it)")
            return 0
    print(f"{args.name}: fetching into {out_dir}")
    try:
        written = store.fetch_dataset(args.name, out_dir, size=size, sources=sources, timeout=args.timeout)
    except (DownloadError, *_CONTENT_ERRORS) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    _report(args.name, written)
    return 0


def _check_not_shadowed(name: str, out_dir: Path) -> None:
    """Refuse to write a cache file that runs would never read in ``out_dir`` (``store.shadowing``)."""
    if first := store.shadowing(name, out_dir):
        raise BadInput(
            f"{out_dir} holds {first.name}, which runs read before {store.cache_file_name(name)} (the file this "
            f"writes): written there it would never be read; give another --data-dir, or move {first.name} away"
        )


def cmd_import(args: argparse.Namespace, sources: dict[str, Source] | None) -> int:
    size = _image_size(args.name, args.size)
    if not args.path.exists():
        raise BadInput(f"{args.path}: no such file or folder")
    out_dir = store.output_dir(args.data_dir)
    _check_not_shadowed(args.name, out_dir)
    try:
        written = store.import_dataset(args.name, args.path, out_dir, size=size, sources=sources)
    except _CONTENT_ERRORS as e:
        raise BadInput(str(e)) from None
    _report(args.name, written)
    return 0


def cmd_verify(args: argparse.Namespace, sources: dict[str, Source] | None) -> int:
    verdict = store.verify_dataset(args.name, args.data_dir, sources)
    for line in verdict.lines:
        print(line)
    print(f"{args.name}: {'verified' if verdict.ok else 'NOT verified'}")
    return 0 if verdict.ok else 1


def run_data_command(args: argparse.Namespace, sources: dict[str, Source] | None = None) -> int:
    """Run ``data <command>`` from parsed ``args``; ``sources`` replaces the download table (tests)."""
    try:
        if args.data_command == "list":
            return cmd_list(args.data_dir)
        if args.data_command == "fetch":
            return cmd_fetch(args, sources)
        if args.data_command == "import":
            return cmd_import(args, sources)
        return cmd_verify(args, sources)
    except (BadInput, registry.DatasetNotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only cache, ...
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: downloads in progress were removed; finished files are kept", file=sys.stderr)
        return 130
