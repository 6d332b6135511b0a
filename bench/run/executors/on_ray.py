"""``ray``: each row a Ray task on an existing cluster (``--ray-address`` or ``RAY_ADDRESS``), alone on its device.

A node with GPUs gives one slot per GPU: its rows ask for one whole GPU (Ray sets the task's
``CUDA_VISIBLE_DEVICES``) and an equal share of the node's CPUs; a node without gives one slot whose
row asks for all of its CPUs. Each slot's task is pinned to its node (a hard node-affinity strategy), so
no two rows of the run ever share a device and the record's node is the one it was planned on.
The task runs ``bench.run.executors.remote.run_row``: the worker as a fresh process, the task's arrays
shipped once per task through the object store, the record and artifact files returned as data. The task is
a generator (a Ray streaming generator): the row's progress lines come back to the driver one by one as the
worker prints them, and the driver shows them as a local row's are. Ray's own worker output stays off the
driver (``log_to_driver=False``).
A task is never retried (``max_retries=0``): a lost worker or node makes the row ``failed`` with
Ray's reason. Every node needs this checkout at the driver's path (a shared file system or the same
clone); the tasks find it through ``PYTHONPATH``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from bench.core.job import Job
from bench.core.placement import RowOutcome
from bench.core.runfiles import read_bytes
from bench.run.executors import Echo, Row
from bench.run.executors.pool import SlotPool
from bench.run.executors.remote import REPO, run_row, streamed


def _task(job: Job, timeout_s: float, extra: str, *blobs: bytes) -> Iterator[str | RowOutcome]:
    """The Ray task: one row on this node (the blobs arrive resolved from the object store), a generator: each
    progress line of the row goes to the driver as the worker prints it, then the row's outcome."""
    yield from streamed(lambda say: run_row(job, list(blobs) if blobs else None, timeout_s, "ray", extra, say))


def _whole_task(job: Job, timeout_s: float, extra: str, *blobs: bytes) -> RowOutcome:
    """The Ray task through Ray Client (``ray://``), which cannot run a streaming generator ("'ClientObjectRef'
    object is not iterable" failed every row): the row's outcome alone, its progress lines in its log."""
    return run_row(job, list(blobs) if blobs else None, timeout_s, "ray", extra)


# Ray Client's proxier forks a server per client while its gRPC threads run, and that server dies at start now
# and then ("Starting Ray client server failed"; ray-project/ray#63202, ~7% of connections there; once in a
# clean clone's test run here, 2026-12-06): a connection that fails so is tried again, a few times, a moment apart.
CLIENT_FLAKE = "Starting Ray client server failed"
CONNECT_TRIES = 3


def connect(address: str, init: Callable[[], object], echo: Echo, pause_s: float = 1.0) -> None:
    """``init()`` (``ray.init`` at ``address``), again after Ray Client's known start-up failure (CLIENT_FLAKE) up
    to CONNECT_TRIES times; ValueError naming the address when there is no cluster to join."""
    for attempt in range(1, CONNECT_TRIES + 1):
        try:
            init()
            return
        except ConnectionError as e:  # an OSError: the run said "when there is space again, finish it with ..."
            if CLIENT_FLAKE not in str(e) or attempt == CONNECT_TRIES:
                raise ValueError(f"--executor ray: no Ray cluster to join at {address} ({e})") from None
            echo(f"ray: Ray Client's server at {address} failed to start (a known Ray flake): trying again")
            ray.shutdown()
            time.sleep(pause_s)


class RaySlot:
    def __init__(self, pool: RayPool, node: dict[str, Any], gpu: int | None, cpus: float) -> None:
        self.pool, self.node, self.gpu, self.cpus = pool, node["NodeManagerHostname"], gpu, cpus
        self.node_id = node["NodeID"]
        self.ref: Any = None

    def run_row(self, row: Row, timeout_s: float, echo: Echo) -> RowOutcome:
        options = {
            "num_cpus": self.cpus,
            "num_gpus": 1 if self.gpu is not None else 0,
            "max_retries": 0,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(self.node_id, soft=False),
        }
        extra = f"node {self.node_id[:8]}"
        args = (row.job, timeout_s, extra, *self.pool.blobs(row.job))
        if self.pool.client:
            self.ref = self.pool.whole.options(**options).remote(*args)
            try:
                outcome: RowOutcome = ray.get(self.ref)
                return outcome
            finally:
                self.ref = None
        self.ref = self.pool.remote.options(**options).remote(*args)
        try:
            for ref in self.ref:  # the row's progress lines as they come, its outcome last
                item = ray.get(ref)
                if isinstance(item, RowOutcome):
                    return item
                echo(item)
            raise RuntimeError("the Ray task ended without the row's outcome")
        finally:
            self.ref = None

    def cancel(self) -> None:
        if self.ref is not None:
            ray.cancel(self.ref, force=True)


class RayPool(SlotPool[RaySlot]):
    def __init__(self, run_dir: Path, address: str | None) -> None:
        self.run_dir = run_dir
        given = address or os.environ.get("RAY_ADDRESS")
        if not given:
            raise ValueError("--executor ray needs a cluster: --ray-address HOST:PORT or RAY_ADDRESS")
        self.address: str = given
        self._blobs: dict[str, Any] = {}
        self.client = self.address.startswith("ray://")  # Ray Client: no streaming generators (_whole_task)
        super().__init__("ray", [])

    def start(self, backends: list[str], echo: Echo) -> None:
        path = os.pathsep.join([str(REPO), "${PYTHONPATH}"])  # Ray expands ${...} from the node's environment
        connect(
            self.address,
            lambda: ray.init(
                address=self.address,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
                logging_level=logging.ERROR,
                log_to_driver=False,
            ),
            echo,
        )
        self.remote, self.whole = ray.remote(_task), ray.remote(_whole_task)
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            res = node.get("Resources", {})
            cpus, gpus = res.get("CPU", 0), int(res.get("GPU", 0))
            if gpus:
                self.slots += [RaySlot(self, node, g, max(1.0, cpus // gpus)) for g in range(gpus)]
            elif cpus:
                self.slots.append(RaySlot(self, node, None, cpus))
        if not self.slots:
            raise RuntimeError(f"the Ray cluster at {self.address} has no node with CPUs or GPUs")
        echo(f"ray cluster {self.address}: {len(self.slots)} slot(s) on {len({s.node_id for s in self.slots})} node(s)")
        if self.client:
            echo("ray: through Ray Client (ray://), a row's progress lines are in its log, not shown as it runs")

    def blobs(self, job: Job) -> list[Any]:
        """Object refs of the job's arrays (data, then transfer targets), each put into the store once."""
        paths = ([job.data] if job.data else []) + [t["data"] for t in job.transfer]
        for p in paths:
            if p not in self._blobs:
                self._blobs[p] = ray.put(read_bytes(self.run_dir, Path(p)))
        return [self._blobs[p] for p in paths]

    def close(self) -> None:
        super().close()
        self._blobs.clear()
        if ray.is_initialized() and not self.waiting:  # never under a thread inside ray.get (a SIGSEGV)
            ray.shutdown()


def make(opts: Any, run_dir: Path) -> RayPool:
    return RayPool(run_dir, opts.ray_address)
