"""``--pretrained`` held against the weights before any worker starts (`bench run`, `all`, `tune`, `zoo`).

A worker takes a model's ImageNet weights from ``model.weights``, else (a catalog big model) from
``$BENCH_WEIGHTS_DIR/<file>``, else from its library's download, which returns the library cache's copy first
(``BackendInfo.pretrained``). Found missing there, on an offline machine, every backend's row failed once the
workers had started and the command exited 1. Here the same decision, made without importing a framework,
refuses the run in one line (exit 2) where a row could not get them: no file in any of those places, and the
download's URL answers nothing or answers that the file is not there. A URL that answers anything else is left
to the download, as is a backend that does not say where it looks or is not installed (its rows are skipped).
Rows that run on other machines (``--executor ray`` / ``slurm``) are not held against this one's files.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlsplit

from backends import BACKENDS, missing_packages
from bench.core.backend import PretrainedLookup
from bench.core.catalog import architecture
from bench.core.spec import SpecError, TaskSpec
from bench.core.zoo import WEIGHTS_ENV, WeightsSource, entry, in_weights_dir, is_zoo, weights_path
from bench.run.environment import REPO

HERE = ("local", "devices")  # the executors whose rows run on this machine
# A download that has not connected in 10 s is not coming: an offline machine fails its name lookup at once,
# and a network that drops packets keeps torch.hub's untimed request waiting minutes before the row fails.
PROBE_S = 10.0
GONE = (404, 410)  # the server answered: the file is not there, so the download fails too


def check_pretrained(tasks: Sequence[TaskSpec], backends: Sequence[str], executor: str = "local") -> None:
    """SpecError naming the task file, the model, each file expected and where to put it, where a pretrained
    task's rows could not get their weights on this machine."""
    if executor not in HERE:
        return
    asked: dict[str, str | None] = {}  # URL -> why it cannot be downloaded: the Keras engines share one file
    for task in tasks:
        if task.model.pretrained and (why := _missing(task, backends, asked)):
            raise SpecError(f"{task.source}: {why}")


def _missing(task: TaskSpec, backends: Sequence[str], asked: dict[str, str | None]) -> str | None:
    """Why ``task``'s rows could not get their weights (None: every row can)."""
    m = task.model
    if m.weights:  # the worker's own reading of it (absolute since the task file was parsed; workers run at REPO)
        path = weights_path(m.weights, REPO)
        return None if path.is_file() else f"model.weights: {path} is not a file"
    row = architecture(m).zoo
    if not row or is_zoo(m.arch):  # a zoo id without model.weights: the spec refused it
        return None
    lacking: dict[str, tuple[WeightsSource, list[str]]] = {}
    whys = []
    for name in backends:
        lookup = BACKENDS[name].pretrained if name in BACKENDS else None
        if lookup is None or missing_packages(name):
            continue
        source = lookup.published(entry(row))
        if source is None or in_weights_dir(source.file) or lookup.cached(source):
            continue
        why = _not_downloadable(lookup, source, asked)
        if why:
            lacking.setdefault(source.file, (source, []))[1].append(BACKENDS[name].label)
            whys.append(why)
    if not lacking:
        return None
    files = " and ".join(f"{s.where} ({', '.join(who)}) as ${WEIGHTS_ENV}/{s.file}" for s, who in lacking.values())
    folder = os.environ.get(WEIGHTS_ENV)
    here = f"${WEIGHTS_ENV}={folder} has no {' or '.join(lacking)}" if folder else f"${WEIGHTS_ENV} is not set"
    return (
        f"--pretrained: no ImageNet weights for {m.arch} on this machine ({here}) and no download "
        f"({'; '.join(dict.fromkeys(whys))}): on a machine with internet download {files}, or name the file in "
        'the task: [model] weights = "/path/to/file"'
    )


def _not_downloadable(lookup: PretrainedLookup, source: WeightsSource, asked: dict[str, str | None]) -> str | None:
    """Why the backend's download of ``source`` cannot succeed here, asked once per URL; None when it may."""
    try:
        url = lookup.origin(source)
    except LookupError as e:
        return f"{source.file}: {e}"
    if url not in asked:
        asked[url] = unreachable(url)
    return asked[url]


def unreachable(url: str, timeout: float = PROBE_S) -> str | None:
    """Why a download of ``url`` would fail (nothing answers, or the server says the file is not there), or
    None. One ranged GET of its first byte, through the proxies the libraries' downloads use too."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=0-0"}), timeout=timeout):
            return None
    except urllib.error.HTTPError as e:
        return f"{urlsplit(url).netloc} answers {e.code} {e.reason}" if e.code in GONE else None
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"{urlsplit(url).netloc or url}: {getattr(e, 'reason', None) or e}"
