"""``ray``: each row a Ray task on an existing cluster (``--ray-address`` or ``RAY_ADDRESS``), alone on its device.

A node with GPUs gives one slot per GPU: its rows ask for one whole GPU (Ray sets the task's
``CUDA_VISIBLE_DEVICES``) and an equal share of the node's CPUs; a node without gives one slot whose
row asks for all of its CPUs. Each slot's task is pinned to its node (a hard node-affinity strategy), so
no two rows of the run ever share a device and the record's node is the one it was planned on. The row's worker
runs on as many of its node's cores as its slot has CPUs (``remote.row_cores``; the slots of one host on
disjoint cores where it has enough), whichever framework it runs.
A slot whose node died is retired (``pool``): its row is recorded lost, the rows to come go to the slots left, and
with none left the run stops (``RunStopped``) with its ``--resume`` line. Ray's own messages about the cluster (a
node marked dead, a raylet's last log lines) go to ``logs/ray.log``, not the terminal.
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
from ray.exceptions import NodeDiedError, TaskUnschedulableError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from bench.core.job import Job
from bench.core.placement import RowOutcome
from bench.core.results import read_json_or_warn, resume_command
from bench.core.runfiles import open_file, read_bytes
from bench.core.runpaths import log_file
from bench.run.executors import Echo, Row
from bench.run.executors.pool import NoSlotLeft, SlotGone, SlotPool
from bench.run.executors.remote import REPO, run_row, streamed
from bench.run.runfolder import STATE, RunStopped


def _task(job: Job, timeout_s: float, extra: str, cores: tuple[int, int], *blobs: bytes) -> Iterator[str | RowOutcome]:
    """The Ray task: one row on this node (the blobs arrive resolved from the object store) on its slot's
    ``cores`` (CPUs, first: ``remote.row_cores``), a generator: each progress line of the row goes to the driver as
    the worker prints it, then the row's outcome."""
    data = list(blobs) if blobs else None
    yield from streamed(lambda say: run_row(job, data, timeout_s, "ray", extra, say, *cores))


def _whole_task(job: Job, timeout_s: float, extra: str, cores: tuple[int, int], *blobs: bytes) -> RowOutcome:
    """The Ray task through Ray Client (``ray://``), which cannot run a streaming generator ("'ClientObjectRef'
    object is not iterable" failed every row): the row's outcome alone, its progress lines in its log."""
    return run_row(job, list(blobs) if blobs else None, timeout_s, "ray", extra, None, *cores)


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
    def __init__(self, pool: RayPool, node: dict[str, Any], gpu: int | None, cpus: float, first: int) -> None:
        self.pool, self.node, self.gpu, self.cpus = pool, node["NodeManagerHostname"], gpu, cpus
        self.node_id = node["NodeID"]
        self.first = first  # where the slot's cores start among its host's (``remote.row_cores``)
        self.ref: Any = None

    def run_row(self, row: Row, timeout_s: float, echo: Echo) -> RowOutcome:
        try:
            return self._run(row, timeout_s, echo)
        except TaskUnschedulableError as e:  # the node is gone: the task was never placed, the row never started
            raise SlotGone(f"its node {self.node_id[:8]} is gone: {type(e).__name__}") from e

    def _run(self, row: Row, timeout_s: float, echo: Echo) -> RowOutcome:
        options = {
            "num_cpus": self.cpus,
            "num_gpus": 1 if self.gpu is not None else 0,
            "max_retries": 0,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(self.node_id, soft=False),
        }
        extra = f"node {self.node_id[:8]}"
        args = (row.job, timeout_s, extra, (max(1, int(self.cpus)), self.first), *self.pool.blobs(row.job))
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

    def gone(self, error: Exception) -> str | None:
        """Its node died: Ray said so (NodeDiedError comes ~2 s after a raylet's death, the GCS marks the node dead
        10-15 s later, measured on loopback), or the GCS no longer counts the node alive."""
        if isinstance(error, NodeDiedError | TaskUnschedulableError):
            return f"its node {self.node_id[:8]} died: {type(error).__name__}"
        if not any(n.get("NodeID") == self.node_id and n.get("Alive") for n in ray.nodes()):
            return f"its node {self.node_id[:8]} is not alive"
        return None


class RayPool(SlotPool[RaySlot]):
    def __init__(self, run_dir: Path, address: str | None) -> None:
        self.run_dir = run_dir
        given = address or os.environ.get("RAY_ADDRESS")
        if not given:
            raise ValueError("--executor ray needs a cluster: --ray-address HOST:PORT or RAY_ADDRESS")
        self.address: str = given
        self._blobs: dict[str, Any] = {}
        self.client = self.address.startswith("ray://")  # Ray Client: no streaming generators (_whole_task)
        self.echo: Echo = print  # run's
        self.told = False  # the line that Ray's cluster messages are in logs/ray.log was said
        self.shown: Callable[..., None] | None = None  # Ray's own print_to_stdstream, while ``_quiet`` replaces it
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
        self._quiet()
        self.remote, self.whole = ray.remote(_task), ray.remote(_whole_task)
        taken: dict[str, int] = {}  # host -> the cores its slots so far have (nodes of one host share its cores)
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            res, host = node.get("Resources", {}), node["NodeManagerHostname"]
            cpus, gpus = res.get("CPU", 0), int(res.get("GPU", 0))
            shares: list[tuple[int | None, float]] = [(g, max(1.0, cpus // gpus)) for g in range(gpus)]
            if not gpus and cpus:
                shares = [(None, cpus)]
            for gpu, share in shares:
                self.slots.append(RaySlot(self, node, gpu, share, taken.get(host, 0)))
                taken[host] = taken.get(host, 0) + max(1, int(share))
        if not self.slots:
            raise RuntimeError(f"the Ray cluster at {self.address} has no node with CPUs or GPUs")
        echo(f"ray cluster {self.address}: {len(self.slots)} slot(s) on {len({s.node_id for s in self.slots})} node(s)")
        if self.client:
            echo("ray: through Ray Client (ray://), a row's progress lines are in its log, not shown as it runs")

    def _quiet(self) -> None:
        """Ray's messages about the cluster to ``logs/ray.log``, one line on the terminal saying so. ``ray.init``'s
        ``log_to_driver=False`` keeps the workers' output off the driver, not these: a node's death printed ~43
        lines of "(raylet)" and "[state-dump]" text there (QA, 2026-12-08), from the thread that prints what the GCS
        publishes (``listen_error_messages``, which calls ``print_to_stdstream``; ray 2.60, pinned)."""
        worker = ray._private.worker
        shown = worker.print_to_stdstream
        log = log_file(self.run_dir, "ray")

        def kept(data: dict[str, Any], ignore_prefix: bool) -> None:
            if data.get("pid") != "raylet":  # not a message about the cluster: as Ray shows it
                shown(data, ignore_prefix)
                return
            try:
                with open_file(self.run_dir, log, "a") as out:
                    out.write("".join(f"{line}\n" for line in data.get("lines", [])))
            except OSError:  # not kept: shown, as Ray would
                shown(data, ignore_prefix)
                return
            if not self.told:
                self.told = True
                self.echo(f"ray: the cluster reported a problem (a node lost?): Ray's messages are in {log}")

        self.shown, worker.print_to_stdstream = shown, kept

    def run(self, rows: Iterator[Row], timeout_s: float, echo: Echo) -> Iterator[tuple[Row, RowOutcome]]:
        self.echo = echo
        try:
            yield from super().run(rows, timeout_s, echo)
        except NoSlotLeft as e:  # every node the run had is gone: what is left waits for a resume
            command = read_json_or_warn(self.run_dir / STATE).get("command")
            raise RunStopped(
                f"the run stopped: no slot of the Ray cluster at {self.address} is left ({e}); the rows recorded "
                f"so far are kept in {self.run_dir / 'records.jsonl'}; once the cluster has nodes again, finish it "
                f"with: {resume_command(self.run_dir, command)}",
                self.run_dir,
            ) from None

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
        if self.shown is not None:
            ray._private.worker.print_to_stdstream = self.shown


def make(opts: Any, run_dir: Path) -> RayPool:
    return RayPool(run_dir, opts.ray_address)
