"""What git tracks under results/: the reference runs' records, reports and logs, not what a run keeps for itself."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture
def tracked() -> list[str]:
    proc = git("ls-files", "results")
    if proc.returncode or not proc.stdout:
        pytest.skip(f"not a git checkout: {proc.stderr.strip()}")
    return proc.stdout.splitlines()


def test_no_run_lock_is_committed_and_a_new_one_is_ignored(tracked: list[str]):
    """115 empty `.lock` files (bench/run/runlock.py: left in a run folder when its run ends) were committed with the
    reference runs and their tune trials; the lock is recreated on demand."""
    assert [p for p in tracked if p.rsplit("/", 1)[-1] == ".lock"] == []
    run = next(p.split("/")[2] for p in tracked if p.startswith("results/reference/"))
    probes = [f"results/reference/{run}/.lock", f"results/reference/{run}/trials/t.torch.r0/.lock"]
    assert git("check-ignore", *probes).stdout.split() == probes
