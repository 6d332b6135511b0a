"""``devices``: the rows side by side on this machine, one per device slot, each slot pinned.

``--devices 0,1,...`` names the slots. With NVIDIA GPUs each slot is a GPU (``CUDA_VISIBLE_DEVICES``
set to it); on every machine each slot also gets its own equal share of the cores this process may
use (``bench.core.cpus.cores_for``: neighbours, disjoint), so two rows never share a core; without a
GPU the cores are the device. Each slot has its own warm worker servers, started pinned
(``BENCH_CORES``: ``bench.run.forkserver`` restricts itself before importing a framework, and the
threads of every row it forks follow; ``OMP_NUM_THREADS`` is the slot's core count).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from bench.core.cpus import CORES_ENV, cores_for, cores_text
from bench.core.placement import Placement, RowOutcome
from bench.run import environment
from bench.run.executors import Echo, Row
from bench.run.executors.pool import SlotPool
from bench.run.workers import Workers, start_servers


def slot_cores(n_slots: int, allowed: list[int]) -> list[list[int]]:
    """Disjoint equal shares of ``allowed``, one per slot; ValueError when there are fewer cores than slots."""
    if n_slots > len(allowed):
        raise ValueError(f"--devices: {n_slots} slots need a core each, this process may use {len(allowed)}")
    share = len(allowed) // n_slots
    return [cores_for(share, i, allowed) or list(allowed) for i in range(n_slots)]


def slot_share(n_slots: int) -> int:
    """The cores each of ``n_slots`` slots gets of those this process may use (``slot_cores``)."""
    return len(slot_cores(n_slots, sorted(os.sched_getaffinity(0)))[0])


class DeviceSlot:
    def __init__(self, job_dir: Path, index: int, device: int, cores: list[int], gpu: bool) -> None:
        self.node = socket.gethostname()
        env = {CORES_ENV: ",".join(map(str, cores)), "OMP_NUM_THREADS": str(len(cores))}
        where = f"cores {cores_text(cores)}"
        if gpu:
            env["CUDA_VISIBLE_DEVICES"] = str(device)
            where = f"cuda:{device} {where}"
        self.placement = Placement("devices", self.node, where)
        self.workers = Workers(job_dir, env, name=f"-slot{index}")

    def run_row(self, row: Row, timeout_s: float, echo: Echo) -> RowOutcome:
        return RowOutcome(self.workers.run(row.job, timeout_s, echo), placement=self.placement)

    def cancel(self) -> None:
        self.workers.cancel()

    def gone(self, error: Exception) -> str | None:
        return None  # a slot of this machine: a lost worker server is started again for its next row


class Devices(SlotPool[DeviceSlot]):
    def __init__(self, job_dir: Path, devices: tuple[int, ...]) -> None:
        gpu = bool(environment.gpus())
        cores = slot_cores(len(devices), sorted(os.sched_getaffinity(0)))
        super().__init__(
            "devices", [DeviceSlot(job_dir, i, d, c, gpu) for i, (d, c) in enumerate(zip(devices, cores, strict=True))]
        )

    def start(self, backends: list[str], echo: Echo) -> None:
        echo(
            f"starting worker servers on {len(self.slots)} slot(s): "
            + "; ".join(s.placement.where or "" for s in self.slots)
        )
        start_servers([s.workers for s in self.slots], backends)  # each slot's imports on its own cores

    def close(self) -> None:
        super().close()
        for s in self.slots:
            s.workers.close()


def make(opts: Any, run_dir: Path) -> Devices:
    return Devices(run_dir / ".jobs", tuple(opts.devices) or (0,))
