"""Run tasks x backends x repeats, each in a fresh worker process; append each record as it lands.

The parent imports neither framework: it prepares the data once per task (so both
backends read byte-identical arrays), starts ``python -m bench.worker`` for each
run in its own session (so a timeout can kill the whole process group), streams
the worker's progress lines, and turns any crash, signal or timeout into a row.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends import BACKENDS, missing_packages
from bench import environment, report
from bench.record import new_record
from bench.results import append_record, json_default
from bench.spec import TaskSpec
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


def run_worker(job: dict[str, Any], job_dir: Path, timeout_s: float, echo: Callable[[str], None]) -> dict[str, Any]:
    """Start one worker process and return its record, or a failed/timeout/interrupted one."""
    rec = job["record"]
    stem = f"{rec['task']}.{rec['backend']}.{rec['repeat']}"
    job_path, result_path = job_dir / f"{stem}.job.json", job_dir / f"{stem}.result.json"
    job["result"] = str(result_path)
    job_path.write_text(json.dumps(job, default=json_default))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONUNBUFFERED", "1")
    tail: list[str] = []
    started = time.perf_counter()
    with open(job_dir.parent / "logs" / f"{stem}.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(job_path)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # own process group: Ctrl-C reaches the parent, which stops it
        )
        pump = threading.Thread(
            target=_pump, args=(proc.stdout, log, echo, f"  [{rec['task']}/{rec['backend']}]", tail)
        )
        pump.start()
        status = None
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            status = "timeout"
            _kill_group(proc)
        except KeyboardInterrupt:
            _kill_group(proc)
            pump.join()
            raise
        pump.join()
    wall = time.perf_counter() - started
    if status is None and result_path.exists():
        return json.loads(result_path.read_text())
    failed = new_record(**rec)
    if status == "timeout":
        failed.update(status="timeout", error=f"stopped after the per-run limit of {timeout_s:g} s")
    else:
        rc = proc.returncode
        how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}"
        failed.update(status="failed", error=f"worker {how} without a result; last output: " + " | ".join(tail[-5:]))
    failed["wall_s"] = wall
    return failed


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_suite(tasks: list[TaskSpec], opts: RunOptions, echo: Callable[[str], None] = print) -> Path:
    """Run everything, writing each record before the next run starts; returns the run dir."""
    run_dir = new_run_dir(opts.out)
    run_id = run_dir.name
    job_dir = run_dir / ".jobs"
    job_dir.mkdir()
    (run_dir / "logs").mkdir()
    env = environment.describe()
    env.update(
        run_id=run_id,
        argv=sys.argv,
        profiles=sorted({t.profile for t in tasks}),
        backends=list(opts.backends),
        repeats=opts.repeats,
    )
    (run_dir / "environment.json").write_text(json.dumps(env, indent=2))
    if env["load_avg_1m_at_start"] > 0.75 * (env["cores"] or 1):
        echo(
            f"warning: the machine is busy (1-min load {env['load_avg_1m_at_start']:.1f} on {env['cores']} cores); "
            "timings will be slower and noisier than on an idle machine"
        )
    total = len(tasks) * len(opts.backends) * opts.repeats
    done = 0
    echo(
        f"run {run_id}: {len(tasks)} task(s) x {len(opts.backends)} backend(s) x {opts.repeats} repeat(s) -> {run_dir}"
    )
    try:
        for task in tasks:
            seed = task.seed if opts.seed is None else opts.seed
            data_path, fields, notes = None, {}, []
            try:
                t0 = time.perf_counter()
                ds = load_task_data(task, opts.data_dir, seed)
                fields = dataset_fields(ds, time.perf_counter() - t0)
                notes = list(ds.notes)
                data_path = job_dir / f"{task.name}.data.npz"
                np.savez(data_path, x_train=ds.train.x, y_train=ds.train.y, x_test=ds.test.x, y_test=ds.test.y)
                echo(
                    f"{task.name}: {ds.source}, {fields['n_train']} train / {fields['n_test']} test, "
                    f"{fields['image_shape']}, profile {task.profile or '-'}"
                )
            except Exception as e:  # bad data fails this task's rows, not the suite
                data_error = f"dataset: {type(e).__name__}: {e}"
                echo(f"{task.name}: {data_error}")
            for backend in opts.backends:
                for repeat in range(opts.repeats):
                    done += 1
                    rec = base_record(run_id, task, backend, repeat, seed + repeat)
                    rec.update(fields, git_commit=env["git_commit"])
                    missing = missing_packages(backend)
                    if data_path is None:
                        rec.update(status="failed", error=data_error)
                    elif missing:
                        rec.update(status="skipped", error=f"not installed: {', '.join(missing)}")
                    else:
                        echo(f"[{done}/{total}] {task.name} / {backend} (repeat {repeat + 1}/{opts.repeats})")
                        job = {
                            "record": rec,
                            "spec": task.to_dict(),
                            "data": str(data_path),
                            "classes": list(ds.classes),
                            "notes": notes,
                        }
                        try:
                            rec = run_worker(job, job_dir, opts.timeout_s, echo)
                        except KeyboardInterrupt:
                            rec.update(status="interrupted", error="interrupted by the user (Ctrl-C)")
                            append_record(run_dir, rec)
                            raise
                    append_record(run_dir, rec)
                    echo(f"[{done}/{total}] {task.name} / {backend}: {_one_line(rec)}")
            if data_path is not None:
                data_path.unlink(missing_ok=True)
    finally:
        report.write_reports(run_dir)
        shutil.rmtree(job_dir, ignore_errors=True)
    return run_dir


def _one_line(rec: dict[str, Any]) -> str:
    if rec["status"] != "ok":
        return f"{rec['status']}: {rec.get('error')}"
    return f"ok  test acc {rec['test_acc']:.4f}  train {rec['train_s']:.1f}s  {rec['throughput_img_s']:.0f} img/s"
