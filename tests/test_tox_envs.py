"""tox.ini's environments, read as tox reads them: each runs with the env's own python."""

from __future__ import annotations

import configparser
import json
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO

TOX = configparser.ConfigParser(interpolation=None)
TOX.read(REPO / "tox.ini", encoding="utf-8")
ENVS = ["py", *(s.split(":", 1)[1] for s in TOX.sections() if s.startswith("testenv:"))]


def section(env: str) -> configparser.SectionProxy:
    return TOX["testenv" if env == "py" else f"testenv:{env}"]


def commands(env: str) -> list[list[str]]:
    """An env's commands as argument lists (an env without its own inherits [testenv]'s, as in tox)."""
    raw = section(env).get("commands") or TOX["testenv"]["commands"]
    return [shlex.split(line) for line in raw.strip().splitlines() if line.strip()]


@pytest.mark.parametrize("env", ENVS)
def test_every_command_runs_through_the_envs_python(env: str):
    """tox 4 refuses a program from outside the env unless allowlisted: `tox -e lint` failed at `ruff` ('ruff is
    not allowed'), since the env reuses the system's packages and pip installs no ruff script into it."""
    allowed = set(section(env).get("allowlist_externals", "").split())
    for cmd in commands(env):
        assert cmd[0] == "python" or cmd[0] in allowed, f"[{section(env).name}] runs {cmd[0]!r}: use python -m"


def test_the_header_names_every_env():
    """The comment at the top of tox.ini is the list of envs a reader sees: `fast` was missing from it."""
    header = "\n".join(line for line in (REPO / "tox.ini").read_text().splitlines() if line.startswith("#"))
    assert [env for env in ENVS if f"tox -e {env} " not in header.replace("\n", " \n")] == []


@pytest.mark.long  # three pytest processes timing a benchmark: 15 s on the 2-core VM
def test_a_regression_tox_e_bench_finds_is_found_again_on_the_next_run(tmp_path, clean_env):
    """`tox -e bench` compares with the newest saved run: it saved each run of its own, so a regression it failed on
    was the baseline of the next run, which passed. Here on one framework-free benchmark, against a baseline made 100x
    faster than measured (a regression no noise hides), as `tox -e bench-baseline` and `tox -e bench` run it."""
    storage, one = tmp_path / "benchmarks", "tests/benchmarks/test_data_prep.py::test_make_shapes10"

    def run(env: str) -> subprocess.CompletedProcess[str]:
        ((program, *args),) = commands(env)
        assert program == "python" and "tests/benchmarks" in args
        args = [one if a == "tests/benchmarks" else a for a in args if a != "{posargs}"]
        extra = ["-p", "no:cacheprovider", f"--benchmark-storage={storage}"]
        # as from a shell: in a test lane the xdist worker's PYTEST_XDIST_* variables made pytest-benchmark in the
        # child read xdist as on, disable benchmarks and refuse --benchmark-only (exit 4)
        env = {k: v for k, v in clean_env.items() if not k.startswith("PYTEST_")}
        return subprocess.run(
            [sys.executable, *args, *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )

    baseline = run("bench-baseline")
    assert baseline.returncode == 0, baseline.stdout[-3000:]
    (saved,) = storage.rglob("*.json")
    record = json.loads(saved.read_text())
    for b in record["benchmarks"]:
        b["stats"] = {k: v / 100 if k in ("min", "max", "mean", "median") else v for k, v in b["stats"].items()}
    saved.write_text(json.dumps(record))
    for attempt in (1, 2):
        proc = run("bench")
        printed = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "Performance has regressed" in printed, (attempt, printed[-3000:])
        assert f"Comparing against benchmarks from: {saved.parent.name}/{saved.name}" in printed, attempt
