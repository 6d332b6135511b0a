"""The warm worker servers of one run (``bench.run.forkserver``), one per backend, and one row run on them.

``Workers`` is how a row runs on this machine: the local executor has one set for the whole run; the
devices executor one set per device slot, each server started pinned (its cores, its GPU), so every
row it forks inherits the pinning. Inside ``shared_servers()`` (``bench tune``: its rungs and final rows are
runs of their own) the servers outlive each run and the next run's ``Workers`` with the same environment
forks from them: one import per backend for the whole tune, not one per rung.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.core.cpus import CORES_ENV, usable_cores
from bench.core.job import Job
from bench.core.results import checked_answer, json_default
from bench.core.runfiles import open_file, read_bytes, write_atomic
from bench.core.runpaths import job_file, log_file, so_far_file
from bench.run import environment, pipes
from bench.run.executors.remote import no_result, read_so_far
from bench.run.forkserver import Server, ServerGone, kill_group

REPO = environment.REPO

# (backend, slot name, extra environment) -> a server kept warm across runs; None outside shared_servers()
_SHARED: dict[tuple[str, str, tuple[tuple[str, str], ...]], Server] | None = None


@contextlib.contextmanager
def shared_servers() -> Iterator[None]:
    """Keep every worker server started in this block warm for the runs after it; close them all at its end
    (a Ctrl-C or an error included). Each row is still a fresh fork of its backend's server after the
    framework's import, as within one run; nothing a row does reaches the server."""
    global _SHARED
    if _SHARED is not None:  # already inside one: the outer block closes them
        yield
        return
    _SHARED = {}
    try:
        yield
    finally:
        pool, _SHARED = _SHARED, None
        for srv in pool.values():
            srv.close()


def start_servers(sets: list[Workers], backends: list[str]) -> None:
    """Start every set's servers of ``backends`` and wait until each has imported its framework (or died trying), at
    most as many importing at once in a set as the cores they run on (``Workers.cores``), the next started as one is
    ready. A server's ``import_s`` is then its framework's import, not its share of the cores with the servers beside
    it: on the 2-core AMD VM (load 4-7 from other sessions, 2026-12-07, four rounds) torch's import took 3.5-6.6 s
    alone, 3.3-7.9 s beside Keras (TF)'s and 4.4-8.9 s beside Keras (TF)'s and Keras (JAX)'s (median 4.3, 5.6, 7.3 s).
    An import runs on one thread (torch's: 2.7 s of CPU in 4.6 s): on idle cores the imports need the same CPU
    either way, packed onto the cores one after another. On that VM at load 5-8, three servers were all ready in
    23.1 s instead of 17.7 (medians of four rounds), Keras (JAX)'s ``import_s`` 8.0 s instead of 12.1 (7.8 alone):
    a busy machine gives more processes more of its time, and its load still reaches the first two imports."""
    todo = [(w, b) for w in sets for b in dict.fromkeys(backends)]
    importing: list[tuple[Workers, Server]] = []
    while todo or importing:
        for w, b in list(todo):
            if sum(v is w for v, _ in importing) < w.cores:
                todo.remove((w, b))
                srv = w.server(b)
                if not srv.ready:  # a server kept warm by shared_servers is ready already
                    importing.append((w, srv))
        if not importing:
            continue
        said = select.select([srv.sock for _, srv in importing], [], [])[0]  # "ready", or the end of a dead one
        for w, srv in [(w, srv) for w, srv in importing if srv.sock in said]:
            importing.remove((w, srv))
            with contextlib.suppress(ServerGone):  # its runs will report why
                srv.wait_ready()


class Workers:
    """The warm worker servers of one run, one per backend (``start`` them together; a dead one restarts).

    ``env`` is added to each server's environment (a slot's CUDA_VISIBLE_DEVICES, BENCH_CORES);
    ``name`` tells one slot's server logs from another's."""

    def __init__(self, job_dir: Path, env: dict[str, str] | None = None, name: str = "") -> None:
        self.job_dir = job_dir
        self.env = env or {}
        self.name = name
        self.servers: dict[str, Server] = {}
        self.pid: int | None = None  # the row running now (its process group), for ``cancel``

    def _key(self, backend: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        return backend, self.name, tuple(sorted(self.env.items()))

    def _live(self, backend: str) -> Server | None:
        """This run's live server of ``backend``, else a live one ``shared_servers`` kept, else None."""
        for srv in (self.servers.get(backend), (_SHARED or {}).get(self._key(backend))):
            if srv is not None and srv.alive():
                return srv
        return None

    def warm(self, backend: str) -> bool:
        """Whether a live server of ``backend`` is at hand (this run's, or one kept by ``shared_servers``)."""
        return self._live(backend) is not None

    def server(self, backend: str) -> Server:
        srv = self._live(backend)
        if srv is not None:
            self.servers[backend] = srv
        else:
            path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            env = dict(os.environ, PYTHONPATH=path, **self.env)
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            env.setdefault("PYTHONUNBUFFERED", "1")
            log = log_file(self.job_dir.parent, f"server-{backend}{self.name}")
            srv = self.servers[backend] = Server(backend, str(self.job_dir), env, REPO, log)
            if _SHARED is not None:
                dead = _SHARED.get(self._key(backend))
                if dead is not None:  # a kept server that died (its runs said why): its socket goes too
                    dead.close()
                _SHARED[self._key(backend)] = srv
        return srv

    @property
    def cores(self) -> int:
        """The cores these servers run on: a device slot's (``BENCH_CORES``), else those this process may use."""
        handed = self.env.get(CORES_ENV)
        return len(handed.split(",")) if handed else usable_cores()

    def start(self, backends: list[str]) -> None:
        """Start the servers and wait until each has imported its framework (or died trying): ``start_servers``."""
        start_servers([self], backends)

    def cancel(self) -> None:
        """Kill the row running now (from another thread; ``run`` then returns its failed record)."""
        if self.pid is not None:
            kill_group(self.pid)

    def close(self) -> None:
        """Close this run's servers, except those ``shared_servers`` keeps for the next run."""
        kept = list((_SHARED or {}).values())
        for srv in self.servers.values():
            if not any(srv is k for k in kept):
                srv.close()
        self.servers.clear()

    def run(self, job: Job, timeout_s: float, echo: Callable[[str], None]) -> dict[str, Any]:
        """One run in a child of its backend's server: its record, or a failed/timeout/interrupted one."""
        rec = job.record
        row = (rec["task"], rec["backend"], rec["repeat"])
        job_path, result_path = job_file(self.job_dir, *row, "job"), job_file(self.job_dir, *row, "result")
        job = dataclasses.replace(job, result=str(result_path))
        so_far_file(result_path).unlink(missing_ok=True)  # only this run's worker says where it is (timed_out)
        write_atomic(self.job_dir, job_path, json.dumps(job.to_json(), default=json_default).encode())
        tail: list[str] = []
        started = time.perf_counter()
        srv = self.server(rec["backend"])
        read_fd, write_fd = os.pipe()
        status, code, lost = None, None, None
        log_path = log_file(self.job_dir.parent, ".".join(map(str, row)))
        with open_file(self.job_dir.parent, log_path, "w") as log:
            stream = os.fdopen(read_fd, encoding="utf-8", errors="replace")
            pump = threading.Thread(target=pipes.pump, args=(stream, log, tail, echo, pipes.row_prefix(rec)))
            pump.start()
            try:
                try:
                    pid = self.pid = srv.submit(job_path, write_fd)
                finally:
                    os.close(write_fd)  # the child holds the only write end now: EOF when it exits
                try:
                    code = srv.wait_exit(timeout_s)
                except TimeoutError:
                    status = "timeout"
                    kill_group(pid)
                    code = srv.wait_exit(None)
                except KeyboardInterrupt:
                    kill_group(pid)
                    raise
            except ServerGone:
                lost = srv.death()
            finally:
                self.pid = None
                pump.join()
                stream.close()
        wall = time.perf_counter() - started
        if status is None and code is not None and result_path.exists():
            with contextlib.suppress(ValueError, OSError):
                result = json.loads(read_bytes(self.job_dir, result_path))
                if isinstance(result, dict):
                    return checked_answer(result, rec)
            tail.append(f"unreadable result file {result_path.name}")
        if status == "timeout":
            failed = no_result(rec, timeout_s=timeout_s, so_far=read_so_far(self.job_dir, result_path))
        else:
            failed = no_result(rec, code=code, lost=lost, tail=tail)
        failed["wall_s"] = wall
        return failed
