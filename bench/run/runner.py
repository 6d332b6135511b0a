"""Run tasks x backends x repeats, each in a process of its own; append each record as it lands.

The parent imports neither framework: it prepares the data once per task (so both
backends read byte-identical arrays), hands each run to its backend's warm worker
server (``bench.run.forkserver``: framework imported once, one forked child per run, in
its own process group so a timeout can kill it and whatever it started), streams the
worker's progress lines, and turns any crash, signal or timeout into a row.

What it runs comes from ``bench.run.plan``, each task's data from ``bench.run.task_data``, and an
interrupted run is finished through ``bench.run.resume``, which calls ``execute`` here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from backends import describe, missing_packages
from bench.core.job import Job
from bench.core.parity import ALL as ALL_ALIGNMENTS
from bench.core.placement import Placement, RowOutcome
from bench.core.recipe import recorded_recipe
from bench.core.record import new_record
from bench.core.results import (
    RUN_COMMANDS,
    append_record,
    kept_on_resume,
    latest_records,
    lost_row,
    read_records,
    record_key,
    repair_records,
    resume_command,
    run_wall_s,
)
from bench.core.runfiles import clear_folder, make_folder, write_atomic
from bench.core.runpaths import ARTIFACT_KINDS, ARTIFACTS, OutsideRunError, artifact, log_file, row_files
from bench.core.spec import TaskSpec, describe_changes
from bench.measure.scaling import share_text
from bench.report import summary as report
from bench.run import distributed, environment, executors, history_cli, parity, stopsignal
from bench.run.plan import (
    DataParallel,
    PlannedRow,
    Processes,
    Resize,
    RunOptions,
    dist_plan,
    kept_in_plan,
    plan_rows,
    repeats_plan,
    replanned_rows,
    write_plan,
)
from bench.run.runfolder import STATE, RunStopped, is_disk_error, new_run_dir, write_json
from bench.run.runlock import run_lock
from bench.run.task_data import check_same_data, load_task_data, prepare_task

REPO = environment.REPO


def run_suite(
    tasks: list[TaskSpec],
    opts: RunOptions,
    echo: Callable[[str], None] = print,
    resize: Resize | None = None,
    command: str = "run",
) -> Path:
    """Start a new run directory and run everything in it; returns the run dir. ``command``: the CLI command
    running it (`all`, `run`, `zoo`), which Ctrl-C's line names with --resume."""
    run_dir = new_run_dir(opts.out)
    write_plan(run_dir, tasks, opts)
    env = run_environment(run_dir, tasks, opts, command=command)
    write_json(run_dir / "environment.json", env)
    return execute(run_dir, tasks, opts, env, echo, resize=resize)


def run_environment(run_dir: Path, tasks: list[TaskSpec], opts: RunOptions, **extra: Any) -> dict[str, Any]:
    """This machine and software (``environment.describe``) and what identifies the run: environment.json."""
    return {
        **environment.describe(),
        "run_id": run_dir.name,
        "argv": sys.argv,
        "profiles": sorted({t.profile for t in tasks}),
        "backends": list(opts.backends),
        "repeats": opts.repeats,
        "task_repeats": opts.task_repeats,
        **extra,
    }


def base_record(run_id: str, task: TaskSpec, backend: str, repeat: int, seed: int) -> dict[str, Any]:
    return new_record(
        run_id=run_id,
        task=task.name,
        profile=task.profile,
        backend=backend,
        repeat=repeat,
        seed=seed,
        framework=describe(backend).framework,
        model=task.model.arch,
        model_options=json.dumps(task.model.recorded_options(), sort_keys=True),
        init=task.model.init,
        dataset=task.dataset.name,
        optimizer=task.train.optimizer,
        lr=task.train.lr,
        adam_eps=task.train.eps,
        epochs=task.train.epochs,
        batch_size=task.train.batch_size,
        recipe=recorded_recipe(task),
        target_acc=task.train.target_acc or None,
        reported_acc=task.eval.reported_acc or None,
        # "" where a smaller profile changes no recipe setting (a task file with no [profiles.quick]): its
        # accuracy is the full recipe's; None for the full profile as written (--epochs / --max-train change it)
        profile_changes=None
        if task.profile == "full" and not task.profile_changes
        else describe_changes(task.profile_changes, task.flags),
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        config=task.config or None,
        base_task=task.base or None,
        knob_config=knob_text(task, backend),
    )


def knob_text(task: TaskSpec, backend: str) -> str | None:
    """The ``[knobs.BACKEND]`` overrides this row runs with, as one text ("precision=mixed_bf16, ..."), or None."""
    own = dict(task.knobs).get(backend, ())
    return ", ".join(f"{k}={v}" for k, v in own) or None


def execute(
    run_dir: Path,
    tasks: list[TaskSpec],
    opts: RunOptions,
    env: dict[str, Any],
    echo: Callable[[str], None],
    stop: Callable[[], str | None] | None = None,
    history: bool = True,
    resize: Resize | None = None,
    after_interrupt: str | None = None,
    locked: Callable[[], None] | None = None,
    limit: Limit | None = None,
) -> Path:
    """Run every planned (task, backend, repeat) not yet recorded; each record lands before the next run.

    state.json always ends as complete, interrupted (Ctrl-C) or stopped (a file could not be
    written: RunStopped, with the reason); a kill -9 leaves "running", which --resume takes over.
    ``after_interrupt``: what Ctrl-C's line tells the user to do, where resuming this folder is not it (a rung
    of a tune's race); by default the ``--resume`` line of the command running it (``env["command"]``, also
    kept in state.json for summary.md's line). ``locked``: what to write once the run folder's lock is held.
    ``limit``: a row's own time limit as it starts, where shorter than ``opts.timeout_s`` (``Limit``).
    """
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over a file-size limit: EFBIG, handled below
    with run_lock(run_dir), stopsignal.sigterm_as_ctrl_c():
        if locked:
            locked()
        repair_records(run_dir)
        recorded = read_records(run_dir)
        done_keys = {record_key(r) for r in recorded if kept_on_resume(r)}
        lost = {record_key(r) for r in latest_records(recorded) if lost_row(r)}  # run again, and said so
        job_dir = run_dir / ".jobs"
        if os.getloadavg()[0] > 0.75 * (os.cpu_count() or 1):
            echo(
                f"warning: the machine is busy (1-min load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); "
                "timings will be slower and noisier than on an idle machine"
            )
        planned = plan_rows(tasks, opts.backends, opts.repeats, opts.task_repeats)
        todo = [row for row in planned if row.key not in done_keys]
        rerun = sum(row.key in lost for row in todo)
        echo(
            f"run {run_dir.name}: {len(tasks)} task(s) x {len(opts.backends)} backend(s) x "
            f"{repeats_plan(tasks, opts)}{dist_plan(tasks)}; {len(todo)} of {len(planned)} to run"
            + (f" ({rerun} lost with their worker, node or job)" if rerun else "")
            + f" -> {run_dir}"
        )
        command = env.get("command") if env.get("command") in RUN_COMMANDS else "run"
        # wall time over every session of the run (a resumed run adds to what its state says); kept in the state
        # from the start: a resume killed with -9 left a state without it, and the next resume counted from 0 (QA,
        # 2026-12-08: "Wall time 0 min 8 s" for a run of 35 s)
        earlier_s = run_wall_s(run_dir / STATE) or 0.0
        state: dict[str, Any] = {"planned": len(planned), "state": "running", "command": command}
        state |= {"wall_s": round(earlier_s, 1)} if earlier_s else {}
        started = time.perf_counter()
        runner = executors.make(opts, run_dir)
        stopped: OSError | None = None
        try:
            write_json(run_dir / STATE, state)
            clear_folder(run_dir, job_dir)  # a killed run's job files: nothing in them is read again
            make_folder(run_dir, job_dir)
            make_folder(run_dir, run_dir / "logs")
            resize = kept_in_plan(resize, run_dir, tasks, opts, planned, state) if resize else None
            _run_all(todo, run_dir, opts, env, runner, echo, stop, resize, limit)
            if opts.parity_steps:
                _add_parity(run_dir, tasks, opts, echo)
            state["state"] = "complete"
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (stopsignal)
            state["state"] = "interrupted"
            echo(
                f"\n{'terminated (SIGTERM)' if isinstance(e, stopsignal.Terminated) else 'interrupted'}: "
                f"the finished runs are kept in {run_dir / 'records.jsonl'}; "
                + (after_interrupt or f"finish with: {resume_command(run_dir, command)}")
            )
            raise
        except OSError as e:  # a run file could not be written (disk full, file-size limit, read-only)
            stopped = e
            state.update(state="stopped", error=f"{type(e).__name__}: {e}")
        except Exception as e:  # a bug: said in state.json too, then raised
            state.update(state="stopped", error=f"{type(e).__name__}: {e}")
            raise
        finally:
            with ctrl_c_held(echo):
                runner.close()
                with contextlib.suppress(OSError, ValueError):
                    clear_folder(run_dir, job_dir)
                kept = {record_key(r) for r in read_records(run_dir) if kept_on_resume(r)}
                state["recorded"] = len(kept & {row.key for row in planned})  # an interrupted or lost row runs again
                state["wall_s"] = round(earlier_s + time.perf_counter() - started, 1)
                _finalise(run_dir, state, echo, opts)
    if state["state"] == "complete" and history:  # a tuning run's rungs stay out of it (bench.run.tune)
        history_cli.after_run(run_dir, echo)
    if stopped is not None:
        # the file it could not write, where the error names none (a file-size limit: "[Errno 27] File too large")
        what = f" ({stopped.filename})" if stopped.filename and str(stopped.filename) not in str(stopped) else ""
        records = run_dir / "records.jsonl"
        so_far = f"the rows recorded so far are kept in {records}" if records.exists() else "no row was recorded yet"
        raise RunStopped(
            f"the run stopped: {stopped}{what}; {so_far}; when there is space again, finish it with: "
            f"{resume_command(run_dir, command)}",
            run_dir,
        ) from stopped
    return run_dir


@contextlib.contextmanager
def ctrl_c_held(echo: Callable[[str], None]) -> Iterator[None]:
    """Ctrl-C held off while a run that is ending writes its files: people press it again, and a second press
    inside the first one's cleanup left state.json saying "running" and no summary (QA, 2026-12-05, three
    presses 0.3 s apart). The run is ending either way, so a held press only says so; kill still stops it."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    said: list[bool] = []

    def hold(signum: int, frame: Any) -> None:
        if not said:
            echo("(the run is ending: writing state.json and the reports first)")
            said.append(True)

    previous = signal.signal(signal.SIGINT, hold), signal.signal(signal.SIGTERM, hold)  # SIGTERM: stopsignal
    try:
        yield
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM), previous, strict=True):
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)  # None: set outside Python


def _finalise(run_dir: Path, state: dict[str, Any], echo: Callable[[str], None], opts: RunOptions) -> None:
    """Write the final state.json and the reports (whole or not as ``opts.full_report`` says); a failure here is
    said, not raised over the run's own outcome."""
    try:
        write_json(run_dir / STATE, state)
    except OSError as e:
        echo(f"error: could not write {run_dir / STATE} ({e}); it may still say 'running'")
    try:
        report.write_reports(run_dir, opts.reference, full=opts.full_report)
    except OSError as e:
        echo(f"error: could not write the reports of {run_dir} ({e}); `python -m bench report {run_dir}` redoes them")


Stop = Callable[[], str | None]  # why the rows not yet started should not start, or None
# the seconds the row of this task that starts now may take, where its run's deadline leaves it less than the run's
# per-row limit (a tune's race: each (task, backend) ends with its share of the budget), or None
Limit = Callable[[TaskSpec], float | None]


def _run_all(
    todo: list[PlannedRow],
    run_dir: Path,
    opts: RunOptions,
    env: dict[str, Any],
    runner: executors.Executor,
    echo: Callable[[str], None],
    stop: Stop | None = None,
    resize: Resize | None = None,
    limit: Limit | None = None,
) -> None:
    """Every pending run through the executor; this process alone appends each record as it comes back.
    ``stop()`` (the tuner's budget) saying why turns the rows not yet started into skipped ones, ``limit`` gives
    each row that starts its own time limit;
    ``resize`` (``bench all``'s budget) sets each task's size, or leaves its rows out, before its first row.

    Rows that need no executor (failed data, a missing framework, a data-parallel row, which starts
    its own ranks here) are recorded as they come up; with the local executor that is in plan order."""
    needed = [b for b in dict.fromkeys(row.backend for row in todo if row.dist is None) if not missing_packages(b)]
    if needed:
        runner.start(needed, echo)
        stopsignal.take_sigterm()  # ray.init sets a handler of its own (a C++ stack dump, then the process gone)
    todo = list(todo)  # a budget's re-plan may plan a task's rows again (``_jobs``): the count follows it

    def runnable() -> Generator[executors.Row, None, None]:
        jobs = _jobs(todo, run_dir, opts, env, echo, keep_data=not runner.sequential, resize=resize)
        for n, (row, job) in enumerate(jobs, 1):
            task, backend, repeat, dist = row.task, row.backend, row.repeat, row.dist
            tag = f"[{n}/{len(todo)}] {task.name} / {backend}"
            tag += f" / {dist.workers} worker(s), {dist.mode}" if dist else ""
            rec, missing = job.record, missing_packages(backend)
            why_stop = stop() if stop is not None else None
            if why_stop or row.left_out:
                rec.update(status="skipped", error=why_stop or row.left_out)
            elif job.error:
                rec.update(status="failed", error=job.error)
            elif missing:
                rec.update(status="skipped", error=f"not installed: {', '.join(missing)}")
            elif dist is None:
                echo(f"{tag} (repeat {repeat + 1}/{row.of})")
                yield executors.Row(job, tag, limit(task) if limit is not None else None)
                continue
            else:
                echo(f"{tag} (repeat {repeat + 1}/{row.of})")
                with _marking(functools.partial(list, [rec]), run_dir):  # this row, bound now
                    rec = _run_distributed(job, task, dist, run_dir, opts.timeout_s, echo)
                # where it ran, as every row says (its ranks on this machine, nothing beside them)
                rec.update(Placement("local", socket.gethostname(), f"{dist.workers} rank processes").fields(0))
            _land(run_dir, tag, RowOutcome(rec), echo)

    rows = runnable()
    try:
        with _marking(lambda: [row.job.record for row in runner.running], run_dir):
            for row, outcome in runner.run(rows, opts.timeout_s, echo):
                _land(run_dir, row.tag, outcome, echo)
    finally:
        rows.close()


@contextlib.contextmanager
def _marking(in_flight: Callable[[], list[dict[str, Any]]], run_dir: Path) -> Iterator[None]:
    """On Ctrl-C or a full disk inside the block, record the rows then in flight (``in_flight()``: their
    records) as interrupted, for --resume, and let the exception go on."""
    try:
        yield
    except KeyboardInterrupt as e:
        for rec in in_flight():
            rec.update(status="interrupted", error=stopsignal.how(e))
            append_record(run_dir, rec)
        raise
    except OSError as e:
        if is_disk_error(e):  # best effort: the disk may take no more
            with contextlib.suppress(OSError):
                for rec in in_flight():
                    rec.update(status="interrupted", error=f"run files could not be written: {e}")
                    append_record(run_dir, rec)
        raise


def _land(run_dir: Path, tag: str, outcome: RowOutcome, echo: Callable[[str], None]) -> None:
    """Write a finished row: the files it brought back from another node (artifacts, log), then its record."""
    rec = outcome.record
    for name, data in outcome.files.items():
        for kind in ARTIFACT_KINDS:  # only the files a row may write, at the names it writes them
            path = artifact(run_dir, rec["task"], rec["backend"], rec["repeat"], kind)
            if name == path.name:
                make_folder(run_dir, path.parent)
                write_atomic(run_dir, path, data)
    if outcome.log:
        path = log_file(run_dir, ".".join(map(str, (rec["task"], rec["backend"], rec["repeat"]))))
        write_atomic(run_dir, path, outcome.log.encode())
    append_record(run_dir, rec)
    echo(f"{tag}: {_one_line(rec)}")


def _add_parity(run_dir: Path, tasks: list[TaskSpec], opts: RunOptions, echo: Callable[[str], None]) -> None:
    """``--parity-steps``: after the rows, each task's training-parity check in the backends of its ok rows;
    its columns go into those rows as records that supersede them, so a resumed run checks only the tasks
    whose rows lack them."""
    latest = latest_records(read_records(run_dir))
    for task in tasks:
        rows = [r for r in latest if r["task"] == task.name and r.get("status") == "ok" and r.get("workers") is None]
        if not rows or all(r.get("parity_steps") == opts.parity_steps for r in rows):
            continue
        backends = list(dict.fromkeys(r["backend"] for r in rows))
        if parity.nothing_to_compare(backends):  # the other backends' rows failed: the reference alone, for nothing
            echo(f"{task.name}: training parity: no ok row but {parity.REFERENCE}'s, nothing to compare it with")
            continue
        echo(f"{task.name}: training parity, {opts.parity_steps} step(s) from one init in {', '.join(backends)}")
        fields = _parity_fields(task, backends, opts, run_dir / ".jobs" / "parity", echo)
        for r in rows:
            append_record(run_dir, {**r, **fields[r["backend"]]})


def _parity_fields(
    task: TaskSpec, backends: list[str], opts: RunOptions, folder: Path, echo: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Each backend's parity columns for ``task``; a check that cannot run says why in every row's note."""
    try:
        case = parity.data_case(
            task, load_task_data(task, opts.data_dir, task.seed if opts.seed is None else opts.seed)
        )
        steps = (opts.parity_steps,)
        result = parity.run_check([case], backends, folder, steps, ALL_ALIGNMENTS, echo)[task.name]
        return parity.row_fields(result, backends, opts.parity_steps, ALL_ALIGNMENTS)
    except Exception as e:  # the rows stand; the check's failure is said in them, a full disk stops the run
        if is_disk_error(e):
            raise
        why = f"the check failed: {type(e).__name__}: {e}"
        return {b: {"parity_steps": opts.parity_steps, "parity_note": why} for b in backends}


def _run_distributed(
    job: Job,
    task: TaskSpec,
    dist: DataParallel,
    run_dir: Path,
    timeout_s: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """One data-parallel row: its ranks started by bench.run.distributed, their files under .jobs/ and logs/."""
    rec = job.record
    name = f"{rec['task']}.{rec['backend']}.{rec['repeat']}.w{dist.workers}-{dist.mode}"
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    where = distributed.Launch(
        run_dir / ".jobs" / name,
        run_dir / "logs" / name,
        REPO,
        env,
        timeout_s,
        echo,
        f"  [{rec['task']}/{rec['backend']}/w{dist.workers}]",
    )
    return distributed.record(job, task, dist.workers, dist.mode, where, read_records(run_dir))


def _jobs(
    todo: list[PlannedRow],
    run_dir: Path,
    opts: RunOptions,
    env: dict[str, Any],
    echo: Callable[[str], None],
    keep_data: bool = False,
    resize: Resize | None = None,
) -> Iterator[tuple[PlannedRow, Job]]:
    """Yield each pending run with its job, preparing each task's data once, just before its first run.
    A task's data file goes once its last run is done, unless ``keep_data`` (rows still running side by
    side may read it: the run's end clears it). ``resize``: asked before a task's first row (the rows
    before it have landed: the executors pull a row when they can start it); ``todo`` is changed in place
    where it plans the task's rows again (``Processes``), so the caller's count follows."""
    prepared: dict[str, dict[str, Any]] = {}
    asked: set[str] = set()
    for i, row in enumerate(todo):  # todo may grow or shrink past i: enumerate reads it as it goes
        if resize is not None and row.task.name not in asked:
            asked.add(row.task.name)
            now = resize(row.task, latest_records(read_records(run_dir)))
            if isinstance(now, Processes):
                replanned_rows(todo, now.task, opts.backends, now.processes)
            else:
                todo[i:] = [_as_resized(r, now) if r.task.name == row.task.name else r for r in todo[i:]]
            row = todo[i]
        task, backend, repeat = row.task, row.backend, row.repeat
        seed = task.seed if opts.seed is None else opts.seed
        rec = base_record(run_dir.name, task, backend, repeat, seed + repeat)
        if row.dist is not None:
            rec.update(workers=row.dist.workers, scaling_mode=row.dist.mode)
        try:
            list(row_files(run_dir, task.name, backend, repeat))
        except OutsideRunError as e:  # defence in depth: the spec loader refuses such names first
            yield row, Job(rec, error=f"refused: {e}")
            continue
        if row.left_out:  # no data to prepare: it never runs
            yield row, Job(rec)
            continue
        data_key = task.base or task.name  # a tuning run's configurations of one task share its data
        if data_key not in prepared:
            # transfer targets only for a task with a single-process row to come: data-parallel rows never run the
            # transfer phase, and a row should not carry a note (a stand-in dataset) about data it never used
            transfer = any((r.task.base or r.task.name) == data_key and r.dist is None for r in todo[i:])
            prepared[data_key] = prepare_task(task, opts.data_dir, seed, run_dir / ".jobs", echo, data_key, transfer)
            check_same_data(run_dir, data_key, prepared[data_key].get("fields", {}))
        shared = prepared[data_key]
        rec.update(shared.get("fields", {}), git_commit=env.get("git_commit"))
        targets = shared.get("transfer", []) if row.dist is None else []
        job = Job(
            rec,
            spec=task.to_dict(),
            data=shared.get("data", ""),
            classes=shared.get("classes", []),
            notes=shared.get("notes", []) + [n for t in targets for n in t["notes"]],
            transfer=targets,
            artifacts=str(run_dir / ARTIFACTS),  # per-row files a phase writes for the report
            error=shared.get("error", ""),
        )
        yield row, job
        later = todo[i + 1 :]
        if not keep_data and all((r.task.base or r.task.name) != data_key for r in later) and "data" in shared:
            for path in [shared["data"], *(t["data"] for t in shared.get("transfer", []))]:
                Path(path).unlink(missing_ok=True)  # the last run of this task is done


def _as_resized(row: PlannedRow, now: TaskSpec | str) -> PlannedRow:
    """``row`` with its task as ``resize`` sized it, or left out saying why."""
    return replace(row, task=now) if isinstance(now, TaskSpec) else replace(row, left_out=now)


def _one_line(rec: dict[str, Any]) -> str:
    if lost_row(rec):
        return f"{rec['status']} (lost, not its own failure: --resume runs it again): {rec.get('error')}"
    if rec["status"] != "ok":
        return f"{rec['status']}: {rec.get('error')}"
    if rec.get("workers") is not None:
        eff, share = rec.get("scaling_eff"), rec.get("allreduce_share")
        eff_s, share_s = "-" if eff is None else f"{eff:.2f}", share_text(share, ".0%")
        # no timed window (every step was the first or warm-up): no rate, which is not 0 img/s
        img_s = "no timed steps" if rec.get("steady_img_s") is None else f"{rec['steady_img_s']:.0f} img/s (global)"
        return f"ok  test acc {rec['test_acc']:.4f}  {img_s}  efficiency {eff_s}  all-reduce share {share_s}"
    # the table's and the verdict's figure; a row with no timed window has only its per-epoch one
    thr, which = rec.get("steady_img_s"), "headline"
    if thr is None:
        thr, which = rec["throughput_img_s"], "per epoch"
    line = f"ok  test acc {rec['test_acc']:.4f}  train {rec['train_s']:.1f}s  {thr:.0f} img/s ({which})"
    return line + (f"; FAILED phase {rec['phase_errors']}" if rec.get("phase_errors") else "")
