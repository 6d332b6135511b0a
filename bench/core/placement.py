"""Where a row ran: the executor's choice of node and device, and what a row run away from the driver returns.

A row that runs on another node (a Ray task, a SLURM array job) comes back to the driver as a
``RowOutcome``: the worker's record, the artifact files its phases wrote and its log, as data, so the
driver alone writes the run folder (one writer; records.jsonl is appended by nobody else).
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXECUTORS = ("local", "devices", "ray", "slurm")
MAX_DEVICES = 1024  # device slots named on one machine (--devices)

# The record columns that say where a row ran (bench.core.record.COLUMNS holds them too).
PLACEMENT_COLUMNS = ("executor", "node", "placement", "rows_beside")
# The record columns of how busy the row's node was as its training window ended (``node_load``).
LOAD_COLUMNS = ("load_avg_1m_end", "node_cores")


def node_load() -> dict[str, float | int | None]:
    """This node's 1-min load average now and its cores: taken as a row's training window ends, by the
    single-process worker and by rank 0 of a data-parallel row, so bench compare and bench history can say when
    a row was timed on a machine loaded beyond its cores (environment.json keeps the driver's load at the start)."""
    return dict(zip(LOAD_COLUMNS, (os.getloadavg()[0], os.cpu_count()), strict=True))


# Over a row's training, the share of its cores' time that other processes used (``OthersOnCores``): the record's
# column, in percent. A load average lags a minute and counts the run's own work; this does neither.
OTHERS_COLUMN = "others_cpu_pct"
# Above this share of its cores a row's timing was others' as much as its own: one busy single-threaded process
# beside a 2-core row takes up to half of them (48% measured); an idle VM's own housekeeping (the driver, its worker
# servers, the kernel) read 0.0-1.1% over the 24 rows of a `bench all` on the idle 2-core VM (2026-12-07)
OTHERS_BUSY_PCT = 20.0
OTHERS_MIN_S = 0.5
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # /proc/stat: user nice system irq softirq steal (a stolen tick is another's)


def _cores_busy_s(cores: frozenset[int], stat: str = "/proc/stat") -> float | None:
    """Seconds of CPU time spent on ``cores`` since boot (every process's, and the hypervisor's steal), or None
    where /proc/stat cannot be read (not Linux)."""
    try:
        lines = Path(stat).read_text().splitlines()
    except OSError:
        return None
    ticks = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            ticks += sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields))
    return ticks / os.sysconf("SC_CLK_TCK")


def _my_cores() -> frozenset[int]:
    """The cores this process may run on (every core where the OS cannot say: not Linux)."""
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(os.cpu_count() or 1))


@dataclass
class OthersOnCores:
    """How much of this process's cores other processes used between its start and ``pct()``: the cores' busy
    time (/proc/stat) less this process's own (every thread's, ``os.times``), over the wall time times the cores.
    Only the cores this process may run on count: a neighbour row pinned to other cores is not "others" here.
    A row slowed by one busy process beside it on a 2-core VM ran at a 1-min load of 1.3, under ``busy_above``'s
    3, and nothing said so (2026-12-07)."""

    stat: str = "/proc/stat"
    cores: frozenset[int] = field(default_factory=_my_cores)
    started: tuple[float, float, float | None] = (0.0, 0.0, None)

    def __post_init__(self) -> None:
        self.started = self._now()

    def _now(self) -> tuple[float, float, float | None]:
        t = os.times()
        return time.monotonic(), t.user + t.system, _cores_busy_s(self.cores, self.stat)

    def pct(self) -> float | None:
        """Others' share of the cores' time since the start, in percent (0-100); None where /proc/stat is not
        readable or under ``OTHERS_MIN_S`` has passed (a clock tick is 10 ms: 0.5 s on 2 cores is 100 ticks, a few
        ticks of rounding either side)."""
        wall0, own0, busy0 = self.started
        wall1, own1, busy1 = self._now()
        if busy0 is None or busy1 is None or wall1 - wall0 < OTHERS_MIN_S:
            return None
        others = (busy1 - busy0) - (own1 - own0)
        return round(min(max(100.0 * others / ((wall1 - wall0) * len(self.cores)), 0.0), 100.0), 1)


def most_others(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """The most of ``rows``' ``others_cpu_pct``; None where none recorded it (before 2026-12-07)."""
    return max((x for r in rows if (x := _real(r.get(OTHERS_COLUMN))) is not None), default=None)


def others_words(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """'others using 38% of the cores' where the most of ``rows``' ``others_cpu_pct`` passed ``OTHERS_BUSY_PCT``, else
    None (rows that recorded none say nothing)."""
    v = most_others(rows)
    return f"others using {v:.0f}% of the cores" if v is not None and v > OTHERS_BUSY_PCT else None


def busy_words(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """How ``rows`` were timed where the machine was busy beyond the run's own work, as a clause: "at load 4.1 on 2
    cores" (``loaded_words`` of the most loaded), else "with others using 38% of the cores" (``others_words``), else
    None: what the speed verdict and the tune's lines say beside a backend."""
    rows = list(rows)
    if words := loaded_words(most_loaded(rows)):
        return f"at {words}"
    return f"with {words}" if (words := others_words(rows)) else None


def _real(v: Any) -> float | None:
    """``v`` as a float where it is a finite number (a record's, numpy's, a table cell's), else None."""
    return float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v)) else None


def most_loaded(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The load and cores (``LOAD_COLUMNS``) of the most loaded of ``rows`` by load per core, None each where no row
    recorded both: a run's, or a history row's repeats', worst moment is what a verdict beside it names."""
    pairs = [
        (load, int(cores))
        for r in rows
        if (load := _real(r.get("load_avg_1m_end"))) is not None and (cores := _real(r.get("node_cores")))
    ]
    load, cores = max(pairs, key=lambda p: p[0] / p[1], default=(None, None))
    return dict(zip(LOAD_COLUMNS, (load, cores), strict=True))


def peak_load(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The most loaded of ``rows``' matmul peaks (``peak_flops_load`` on ``node_cores``), as ``most_loaded`` reads
    their windows': the MFU sentence of summary.md and the history's uncalibrated backends name it."""
    return most_loaded({"load_avg_1m_end": r.get("peak_flops_load"), "node_cores": r.get("node_cores")} for r in rows)


def peak_reads_low(record: Mapping[str, Any]) -> str | None:
    """Why a row's measured matmul peak (its MFU's denominator) reads low, as a clause, else None: measured on a node
    loaded beyond its cores ("at load 3.1 on 2 cores"); or, a peak the row measured itself, while others used more
    than ``OTHERS_BUSY_PCT`` of its cores ("with others using 35% of the cores": the row's share over its training,
    minutes from its matmuls; one busy process beside a 2-core row keeps the load under the line, and a Keras row
    read MFU 118.27% at load 2.56 without a word, QA 2026-12-08); or an MFU above 100%, which a peak measured right
    does not allow ("below the row's own speed: MFU 118%"). A vendor table's peak (no ``peak_flops_key``) is none
    of these: nothing was measured under load."""
    if not isinstance(record.get("peak_flops_key"), str):
        return None
    load, cores = _real(record.get("peak_flops_load")), _real(record.get("node_cores"))
    if load is not None and cores is not None and beyond_cores(load, cores):
        return f"at {load_words(load, cores)}"
    others = _real(record.get(OTHERS_COLUMN))
    if not record.get("peak_flops_reused") and others is not None and others > OTHERS_BUSY_PCT:
        return f"with others using {others:.0f}% of the cores"
    mfu = _real(record.get("mfu"))
    return f"below the row's own speed: MFU {mfu:.0%}" if mfu is not None and mfu > 1 else None


def run_load(rows: Iterable[Mapping[str, Any]], env: Mapping[str, Any]) -> dict[str, Any]:
    """The load a run's ``rows`` were timed at, for bench compare and bench history alike: the most loaded row's own
    (``most_loaded``; ``load_at`` "end", its node as its window ended); where no row recorded one (before
    2026-12-06), the run's environment.json (``env``) load at its start and its cores (``load_at`` "start"); None
    each where neither says."""
    worst = most_loaded(rows)
    if worst["node_cores"]:
        return {**worst, "load_at": "end"}
    load, cores = _real(env.get("load_avg_1m_at_start")), env.get("cores")
    if load is not None and isinstance(cores, int) and not isinstance(cores, bool) and cores > 0:
        return dict(zip(LOAD_COLUMNS, (load, cores), strict=True)) | {"load_at": "start"}
    return dict.fromkeys((*LOAD_COLUMNS, "load_at"))


# A run's own work keeps its node's load at about its cores: a row trains on every core, and its driver and worker
# servers wake between rows (`bench all` on an idle 2-core VM, 2026-12-06: 0.9-2.3 as its rows ended, 2.3 as a
# matmul peak was measured). Others' work queued on top of that is what shares the cores (7.7 on 2 cores: two
# identical runs read 3.3x apart). So "beyond its cores" leaves the run its own: half the cores again, or one more.
OWN_LOAD_FACTOR = 1.5


def busy_above(cores: float) -> float:
    """The load above which a node of ``cores`` was busy with more than the run's own work."""
    return max(OWN_LOAD_FACTOR * cores, cores + 1)


def beyond_cores(load: float | None, cores: float | None) -> bool:
    """Whether a node's load average passed what the run itself puts on it (``busy_above``): others' work queued for
    the cores, so a row timed then shared them (two identical runs at load 7.7 on 2 cores read 3.3x apart, QA
    2026-12-06). A plain ``load > cores`` flagged every `bench all` on an idle 2-core VM (its own rows: 2.1-2.3)."""
    return load is not None and cores is not None and cores > 0 and load > busy_above(cores)


def load_words(load: float, cores: float) -> str:
    """'load 7.7 on 2 cores': bench compare's and bench history's words for it."""
    return f"load {load:.1f} on {int(cores)} cores"


def loaded_words(worst: Mapping[str, Any]) -> str | None:
    """``load_words`` of a most loaded row (``most_loaded``, ``peak_load``) where it was beyond its cores, else None:
    what a sentence names per backend (the speed verdict's load, summary.md's MFU peak)."""
    load, cores = worst["load_avg_1m_end"], worst["node_cores"]
    return load_words(load, cores) if beyond_cores(load, cores) else None


@dataclass(frozen=True)
class Placement:
    """A row's place: the executor, the node's host name, the device or cores (None: the whole machine)."""

    executor: str
    node: str
    where: str | None = None  # "cuda:1 cores 8-15", "cores 0", "ray node 3f2a.. gpu 0", ...

    def fields(self, rows_beside: int) -> dict[str, object]:
        """The record's placement columns; ``rows_beside``: rows of the same run on its node at the same time."""
        return {"executor": self.executor, "node": self.node, "placement": self.where, "rows_beside": rows_beside}


@dataclass(frozen=True)
class RowOutcome:
    """What a row run on a node returns: its record, its artifact files (name -> bytes), its log, its interval."""

    record: dict
    files: dict[str, bytes] = field(default_factory=dict)
    log: str = ""
    placement: Placement | None = None
    started: float = 0.0  # time.time() on the node: when the worker started and when it ended
    ended: float = 0.0
