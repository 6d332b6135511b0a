"""Run tasks x backends x repeats, each in a process of its own; append each record as it lands.

The parent imports neither framework: it prepares the data once per task (so both
backends read byte-identical arrays), hands each run to its backend's warm worker
server (``bench.forkserver``: framework imported once, one forked child per run, in
its own process group so a timeout can kill it and whatever it started), streams the
worker's progress lines, and turns any crash, signal or timeout into a row.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends import BACKENDS, missing_packages
from bench import environment, report
from bench.forkserver import Server, ServerGone, exit_description, kill_group
from bench.record import new_record
from bench.results import append_record, json_default, read_records, record_key, repair_records
from bench.spec import TaskSpec, spec_from_dict
from bench.transfer import prepare_targets
from datasets import registry
from datasets.arrays import ArrayDataset
from datasets.prepare import prepare

REPO = environment.REPO


@dataclass(frozen=True)
class RunOptions:
    backends: tuple[str, ...] = ("torch", "keras")
    data_dir: str | None = None
    out: Path = REPO / "results"
    repeats: int = 1
    seed: int | None = None  # overrides each spec's seed
    timeout_s: float = 3600.0  # per (task, backend, repeat) run


def new_run_dir(out: Path) -> Path:
    """A fresh results/<run-id>/; ``mkdir(exist_ok=False)`` makes two runs never share one."""
    out.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        try:
            (out / run_id).mkdir()
            return out / run_id
        except FileExistsError:
            continue


def base_record(run_id: str, task: TaskSpec, backend: str, repeat: int, seed: int) -> dict[str, Any]:
    return new_record(
        run_id=run_id,
        task=task.name,
        profile=task.profile,
        backend=backend,
        repeat=repeat,
        seed=seed,
        framework=BACKENDS[backend].framework,
        model=task.model.arch,
        model_options=json.dumps(dict(task.model.options), sort_keys=True),
        init=task.model.init,
        dataset=task.dataset.name,
        optimizer=task.train.optimizer,
        lr=task.train.lr,
        adam_eps=task.train.eps,
        epochs=task.train.epochs,
        batch_size=task.train.batch_size,
        target_acc=task.train.target_acc or None,
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def load_task_data(task: TaskSpec, data_dir: str | None, seed: int) -> ArrayDataset:
    d = task.dataset
    ds = registry.load(d.name, data_dir=data_dir, fallback=d.fallback, seed=seed)
    return prepare(
        ds,
        classes=d.classes,
        max_train=d.max_train,
        max_test=d.max_test,
        channels=d.channels,
        image_size=d.image_size,
        seed=seed,
    )


def dataset_fields(ds: ArrayDataset, load_s: float) -> dict[str, Any]:
    h, w, c = ds.image_shape
    return {
        "dataset_source": ds.source,
        "image_shape": f"{h}x{w}x{c}",
        "n_classes": ds.n_classes,
        "n_train": len(ds.train),
        "n_test": len(ds.test),
        "data_load_s": load_s,
    }


def _pump(stream: Any, log: Any, echo: Callable[[str], None], prefix: str, tail: list[str]) -> None:
    """Copy worker output to its log; show ``@@`` progress lines; keep the last lines for errors."""
    for line in stream:
        log.write(line)
        log.flush()
        if line.startswith("@@ "):
            echo(f"{prefix} {line[3:].rstrip()}")
        elif line.strip():
            tail.append(line.rstrip())
            del tail[:-20]


class Workers:
    """The warm worker servers of one run, one per backend (``start`` them together; a dead one restarts)."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.servers: dict[str, Server] = {}

    def server(self, backend: str) -> Server:
        srv = self.servers.get(backend)
        if srv is None or not srv.alive():
            path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            env = dict(os.environ, PYTHONPATH=path)
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            env.setdefault("PYTHONUNBUFFERED", "1")
            log = self.job_dir.parent / "logs" / f"server-{backend}.log"
            srv = self.servers[backend] = Server(backend, str(self.job_dir), env, REPO, log)
        return srv

    def start(self, backends: list[str]) -> None:
        """Start the servers at once and wait until each has imported its framework (or died trying)."""
        for b in backends:
            self.server(b)
        for b in backends:
            with contextlib.suppress(ServerGone):  # its runs will report why
                self.servers[b].wait_ready()

    def close(self) -> None:
        for srv in self.servers.values():
            srv.close()
        self.servers.clear()

    def run(self, job: dict[str, Any], timeout_s: float, echo: Callable[[str], None]) -> dict[str, Any]:
        """One run in a child of its backend's server: its record, or a failed/timeout/interrupted one."""
        rec = job["record"]
        stem = f"{rec['task']}.{rec['backend']}.{rec['repeat']}"
        job_path, result_path = self.job_dir / f"{stem}.job.json", self.job_dir / f"{stem}.result.json"
        job["result"] = str(result_path)
        job_path.write_text(json.dumps(job, default=json_default))
        tail: list[str] = []
        started = time.perf_counter()
        srv = self.server(rec["backend"])
        read_fd, write_fd = os.pipe()
        status, code, lost = None, None, None
        with open(self.job_dir.parent / "logs" / f"{stem}.log", "w", encoding="utf-8") as log:
            stream = os.fdopen(read_fd, encoding="utf-8", errors="replace")
            pump = threading.Thread(target=_pump, args=(stream, log, echo, f"  [{rec['task']}/{rec['backend']}]", tail))
            pump.start()
            try:
                try:
                    pid = srv.submit(job_path, write_fd)
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
                pump.join()
                stream.close()
        wall = time.perf_counter() - started
        if status is None and code is not None and result_path.exists():
            return json.loads(result_path.read_text())
        failed = new_record(**rec)
        if status == "timeout":
            failed.update(status="timeout", error=f"stopped after the per-run limit of {timeout_s:g} s")
        elif lost:
            failed.update(status="failed", error=f"no result: {lost}")
        else:
            how, last = exit_description(code), " | ".join(tail[-5:])
            failed.update(status="failed", error=f"worker {how} without a result; last output: {last}")
        failed["wall_s"] = wall
        return failed


PLAN, STATE, LOCK = "plan.json", "state.json", ".lock"
KEPT_ON_RESUME = ("ok", "skipped", "failed", "timeout")  # "interrupted" and missing rows run again


def run_suite(tasks: list[TaskSpec], opts: RunOptions, echo: Callable[[str], None] = print) -> Path:
    """Start a new run directory and run everything in it; returns the run dir."""
    run_dir = new_run_dir(opts.out)
    plan = {"tasks": [t.to_dict() for t in tasks], "options": {**asdict(opts), "out": str(opts.out)}}
    write_json(run_dir / PLAN, plan)
    env = environment.describe()
    env.update(run_id=run_dir.name, argv=sys.argv, profiles=sorted({t.profile for t in tasks}),
               backends=list(opts.backends), repeats=opts.repeats)  # fmt: skip
    write_json(run_dir / "environment.json", env)
    return execute(run_dir, tasks, opts, env, echo)


def resume_suite(run_dir: Path, echo: Callable[[str], None] = print) -> Path:
    """Run what an interrupted or killed run is missing, with the plan it was started with."""
    if not (run_dir / PLAN).is_file():
        raise FileNotFoundError(f"{run_dir} is not a bench run directory (no {PLAN})")
    plan = json.loads((run_dir / PLAN).read_text())
    tasks = [spec_from_dict(t) for t in plan["tasks"]]
    o = plan["options"]
    opts = RunOptions(**{**o, "backends": tuple(o["backends"]), "out": run_dir.parent})
    env_path = run_dir / "environment.json"
    env = json.loads(env_path.read_text())
    env.setdefault("resumed", []).append(
        {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": environment.git_commit(),
         "load_avg_1m": os.getloadavg()[0], "argv": sys.argv}
    )  # fmt: skip
    write_json(env_path, env)
    return execute(run_dir, tasks, opts, env, echo)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2, default=json_default))
    tmp.replace(path)


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Only one bench process works in a run directory at a time."""
    with open(run_dir / LOCK, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{run_dir} is in use by another bench process") from None
        yield


def execute(
    run_dir: Path, tasks: list[TaskSpec], opts: RunOptions, env: dict[str, Any], echo: Callable[[str], None]
) -> Path:
    """Run every planned (task, backend, repeat) not yet recorded; each record lands before the next run."""
    with run_lock(run_dir):
        repair_records(run_dir)
        done_keys = {record_key(r) for r in read_records(run_dir) if r.get("status") in KEPT_ON_RESUME}
        job_dir = run_dir / ".jobs"
        job_dir.mkdir(exist_ok=True)
        (run_dir / "logs").mkdir(exist_ok=True)
        if os.getloadavg()[0] > 0.75 * (os.cpu_count() or 1):
            echo(f"warning: the machine is busy (1-min load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); "
                 "timings will be slower and noisier than on an idle machine")  # fmt: skip
        planned = [(t, b, r) for t in tasks for b in opts.backends for r in range(opts.repeats)]
        todo = [(t, b, r) for t, b, r in planned if (t.name, b, r) not in done_keys]
        echo(f"run {run_dir.name}: {len(tasks)} task(s) x {len(opts.backends)} backend(s) x {opts.repeats} "
             f"repeat(s); {len(todo)} of {len(planned)} to run -> {run_dir}")  # fmt: skip
        state = {"planned": len(planned), "state": "running"}
        write_json(run_dir / STATE, state)
        workers = Workers(job_dir)
        try:
            needed = [b for b in dict.fromkeys(b for _, b, _ in todo) if not missing_packages(b)]
            if needed:
                echo(f"starting worker servers: importing {', '.join(needed)} once for every run")
                workers.start(needed)
            for n, (task, backend, repeat, job_base) in enumerate(_jobs(todo, run_dir, opts, env, echo), 1):
                tag = f"[{n}/{len(todo)}] {task.name} / {backend}"
                rec = job_base["record"]
                missing = missing_packages(backend)
                if "error" in job_base:
                    rec.update(status="failed", error=job_base["error"])
                elif missing:
                    rec.update(status="skipped", error=f"not installed: {', '.join(missing)}")
                else:
                    echo(f"{tag} (repeat {repeat + 1}/{opts.repeats})")
                    try:
                        rec = workers.run(job_base, opts.timeout_s, echo)
                    except KeyboardInterrupt:
                        rec.update(status="interrupted", error="interrupted by the user (Ctrl-C)")
                        append_record(run_dir, rec)
                        raise
                append_record(run_dir, rec)
                echo(f"{tag}: {_one_line(rec)}")
            state["state"] = "complete"
        except KeyboardInterrupt:
            state["state"] = "interrupted"
            echo(f"\ninterrupted: the finished runs are kept in {run_dir / 'records.jsonl'}; "
                 f"finish with: python -m bench all --resume {run_dir}")  # fmt: skip
            raise
        finally:
            workers.close()
            write_json(run_dir / STATE, state)
            report.write_reports(run_dir)
            shutil.rmtree(job_dir, ignore_errors=True)
    return run_dir


def _jobs(todo: list[tuple[TaskSpec, str, int]], run_dir: Path, opts: RunOptions, env: dict[str, Any],
          echo: Callable[[str], None]):  # fmt: skip
    """Yield each pending run with its job, preparing each task's data once, just before its first run."""
    prepared: dict[str, dict[str, Any]] = {}
    for i, (task, backend, repeat) in enumerate(todo):
        seed = task.seed if opts.seed is None else opts.seed
        if task.name not in prepared:
            prepared[task.name] = _prepare_task(task, opts.data_dir, seed, run_dir / ".jobs", echo)
        shared = prepared[task.name]
        rec = base_record(run_dir.name, task, backend, repeat, seed + repeat)
        rec.update(shared.get("fields", {}), git_commit=env.get("git_commit"))
        job = {"record": rec, "spec": task.to_dict(), **{k: v for k, v in shared.items() if k != "fields"}}
        job["artifacts"] = str(run_dir / "artifacts")  # per-row files a phase writes for the report
        yield task, backend, repeat, job
        if all(t.name != task.name for t, _, _ in todo[i + 1 :]) and "data" in shared:
            for path in [shared["data"], *(t["data"] for t in shared.get("transfer", []))]:
                Path(path).unlink(missing_ok=True)  # the last run of this task is done


def _prepare_task(task: TaskSpec, data_dir: str | None, seed: int, job_dir: Path,
                  echo: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    """Load and shape a task's data once and save it for the workers; a failure fails its rows."""
    try:
        t0 = time.perf_counter()
        ds = load_task_data(task, data_dir, seed)
        fields = dataset_fields(ds, time.perf_counter() - t0)
        path = job_dir / f"{task.name}.data.npz"
        np.savez(path, x_train=ds.train.x, y_train=ds.train.y, x_test=ds.test.x, y_test=ds.test.y)
        targets = prepare_targets(task, ds, data_dir, seed, job_dir)
    except Exception as e:  # bad data fails this task's rows, not the suite
        echo(f"{task.name}: dataset: {type(e).__name__}: {e}")
        return {"error": f"dataset: {type(e).__name__}: {e}"}
    echo(f"{task.name}: {ds.source}, {fields['n_train']} train / {fields['n_test']} test, "
         f"{fields['image_shape']}, profile {task.profile or '-'}")  # fmt: skip
    for t in targets:
        echo(f"{task.name}: transfer target {t['dataset']}: {t['source']}, {t['n']} {t['split']} images "
             f"of {'/'.join(t['classes'])}")  # fmt: skip
    notes = list(ds.notes) + [n for t in targets for n in t["notes"]]
    return {"fields": fields, "data": str(path), "classes": list(ds.classes), "notes": notes, "transfer": targets}


def _one_line(rec: dict[str, Any]) -> str:
    if rec["status"] != "ok":
        return f"{rec['status']}: {rec.get('error')}"
    return f"ok  test acc {rec['test_acc']:.4f}  train {rec['train_s']:.1f}s  {rec['throughput_img_s']:.0f} img/s"
