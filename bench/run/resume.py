"""Resuming a run: an interrupted or killed run's plan read back and checked on this machine, its data
found where it was at the start, and only its rows not yet recorded run (``bench.run.runner.execute``).

Apart from the runner, which it calls (never the other way), so a fresh run's path reads without the
checks and bookkeeping only a resume needs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.core.results import (
    RUN_COMMANDS,
    RunFileError,
    kept_on_resume,
    latest_records,
    read_json_object,
    read_records,
    warn,
)
from bench.core.runfiles import check_run_folder
from bench.core.runpaths import TUNE_FILE
from bench.core.spec import TaskSpec
from bench.run import distributed, environment
from bench.run.datacheck import check_task_data
from bench.run.plan import RunOptions, check_data_parallel_here, read_plan
from bench.run.runfolder import PLAN, STATE, write_json
from bench.run.runner import execute
from bench.run.task_data import plan_data_env
from bench.run.weightscheck import check_pretrained

RACE_NOT_RESUMED = (
    "a tune stopped in its race has nothing to resume (the race only chooses the configurations its default "
    "and best rows then measure, and its plan is written after it): start the tune again"
)


def resume_suite(
    run_dir: Path, echo: Callable[[str], None] = print, where: dict[str, Any] | None = None, command: str = "run"
) -> Path:
    """Run what an interrupted or killed run is missing, with the plan it was started with (``where``:
    executor fields of RunOptions that replace the plan's, so the rest may run elsewhere; ``command``: the CLI
    command resuming it, which a second Ctrl-C's line names)."""
    if run_dir.is_dir():  # a folder from elsewhere: no link or FIFO is written through or read
        check_run_folder(run_dir)
    if not (run_dir / PLAN).is_file():
        if (run_dir / TUNE_FILE).is_file():  # a tune stopped in its race: plan.json is written after it
            raise FileNotFoundError(f"{run_dir}: {RACE_NOT_RESUMED}")
        what = f"no {PLAN} in it" if run_dir.is_dir() else "no such folder"
        raise FileNotFoundError(f"{run_dir} is not a bench run directory ({what})")
    tasks, opts = read_plan(run_dir)
    if where:
        opts = replace(opts, **where)
        check_data_parallel_here(tasks, opts.executor)  # QA: a resume through Ray ran none and said complete
    distributed.check_workers(tasks)  # the machine resuming may have fewer cores than the one that started
    # as `bench run` checks: a weights file gone since (or this machine offline) is refused before any worker
    check_pretrained(tasks, opts.backends, opts.executor)
    planned = (read_json_object(run_dir / PLAN) or {}).get("options") or {}
    # a plan from before 2026-12-05 kept no data_env: its data is searched as this shell says
    data_env = opts.data_env if "data_env" in planned else os.environ.get("BENCH_DATA_DIR")
    with plan_data_env(data_env, echo):
        # as `bench run` checks before it starts: data that cannot be had, a batch or a layer list it cannot
        # take now (a dataset file replaced since, a plan edited) is a SpecError here, not a failed row per backend
        check_task_data(tasks, opts.data_dir)
        return _resume(run_dir, tasks, opts, echo, command)


def _resume(run_dir: Path, tasks: list[TaskSpec], opts: RunOptions, echo: Callable[[str], None], command: str) -> Path:
    """resume_suite's run, once its checks passed: environment.json says this session, then the missing rows run."""
    env_path = run_dir / "environment.json"
    try:
        env = read_json_object(env_path, {})
    except RunFileError as e:  # the machine is described again; the broken file is kept beside it
        warn(f"{e}; described this machine again (the unreadable file is kept as environment.json.unreadable)")
        env_path.replace(env_path.with_name("environment.json.unreadable"))
        env = {**environment.describe(), "run_id": run_dir.name}
    if not isinstance(env.get("resumed"), list):  # absent, or edited into something else
        env["resumed"] = []
    env["resumed"].append(
        {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "git_commit": environment.git_commit(),
            "load_avg_1m": os.getloadavg()[0],
            "argv": sys.argv,
        }
    )
    # the rows this session runs carry its own commit, not the one the run was started at; the run keeps the command
    # that started it (every command's --resume finishes any run: `tune --resume` of a plain run runs no tune)
    with contextlib.suppress(RunFileError):
        started_by = read_json_object(run_dir / STATE, {}).get("command")
        command = started_by if started_by in RUN_COMMANDS else command
    this_session = {"git_commit": env["resumed"][-1]["git_commit"], "command": command}
    started_at = env.get("git_commit")
    if started_at and this_session["git_commit"] and started_at != this_session["git_commit"]:
        # rows of two commits in one run, said nowhere but environment.json's `resumed` (QA, 2026-12-08)
        echo(
            f"warning: this run was started at commit {started_at} and resumes at {this_session['git_commit']}: "
            "the rows run now carry the new commit, and summary.md names each row's"
        )
    # written once the run is ours: a resume refused as "in use" leaves environment.json as the running run has it
    return execute(run_dir, tasks, opts, env | this_session, echo, locked=lambda: write_json(env_path, env))


def recorded_so_far(run_dir: Path) -> str:
    """How far a run has come, as state.json and records.jsonl say it ("3 of 8 runs recorded"), read only (a
    live run appends to them); "" where they cannot say."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a line the run is appending as it is read: the run's to finish
        try:
            planned = read_json_object(run_dir / STATE, {}).get("planned")
            done = sum(kept_on_resume(r) for r in latest_records(read_records(run_dir)))
        except RunFileError:
            return ""
    if not isinstance(planned, int) or isinstance(planned, bool):
        return ""
    return f"{done} of {planned} runs recorded"
