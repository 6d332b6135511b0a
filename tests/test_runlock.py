"""The run folder's lock: a resume starting in the instant a report probes it waits the probe out; a run holding
it refuses the resume at once. Each race is made, not hoped for: ``flock`` wrapped to hold the probe open."""

from __future__ import annotations

import fcntl
import sys
import threading
from pathlib import Path

import pytest

from bench.run import runlock

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="flock between two descriptors of one process")
EX_NB, SH_NB = fcntl.LOCK_EX | fcntl.LOCK_NB, fcntl.LOCK_SH | fcntl.LOCK_NB


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "20261207-120000-abcd"
    folder.mkdir()
    (folder / runlock.LOCK).touch()  # a run has held it: a probe finds the file
    return folder


def test_a_resume_starting_while_a_report_probes_the_lock_waits_for_the_probe(run_dir: Path, monkeypatch):
    """QA: `bench report RUN` probing the lock as `--resume RUN` started made the resume say "in use". The probe
    (in a thread) keeps its shared lock until the resume (this thread) has found the lock taken."""
    real, probing, met = fcntl.flock, threading.Event(), threading.Event()

    def flock(fd: int, op: int) -> None:
        resume = threading.current_thread() is threading.main_thread()
        try:
            real(fd, op)
        except BlockingIOError:
            if resume and op == EX_NB:
                met.set()  # the resume found the probe's shared lock: the probe may let go now
            raise
        if not resume and op == SH_NB:
            probing.set()
            assert met.wait(30), "the resume never tried the lock"

    monkeypatch.setattr(fcntl, "flock", flock)
    said: list[bool] = []
    probe = threading.Thread(target=lambda: said.append(runlock.run_in_progress(run_dir)))
    probe.start()
    assert probing.wait(30)
    with runlock.run_lock(run_dir):  # the resume, in the probe's instant
        assert met.is_set()  # it did meet the probe's lock
        probe.join(30)
        assert said == [False]  # the probe saw no run, and the resume went on
        assert runlock.run_in_progress(run_dir)  # a probe now sees the resume running it


def test_a_resume_of_a_run_another_process_holds_is_refused_at_once(run_dir: Path, monkeypatch):
    """A run holds the lock exclusively: no shared lock can be had, so the resume says "in use" after one try
    (it waits only for probes); a shared lock held past PROBE_WAIT_S reads as in use too."""
    tries: list[int] = []
    real = fcntl.flock

    def flock(fd: int, op: int) -> None:
        tries.append(op)
        real(fd, op)

    with open(run_dir / runlock.LOCK) as held:
        real(held, fcntl.LOCK_EX)
        monkeypatch.setattr(fcntl, "flock", flock)
        with pytest.raises(RuntimeError, match="is in use by another bench process"), runlock.run_lock(run_dir):
            pass
        assert tries == [EX_NB, SH_NB]
        assert runlock.run_in_progress(run_dir)
        real(held, fcntl.LOCK_SH)  # a prober that never lets go
        monkeypatch.setattr(runlock, "PROBE_WAIT_S", 0.0)
        tries.clear()
        with pytest.raises(RuntimeError, match="is in use by another bench process"), runlock.run_lock(run_dir):
            pass
        assert tries == [EX_NB, SH_NB, fcntl.LOCK_UN]  # not a run: it would have waited, up to PROBE_WAIT_S
        assert not runlock.run_in_progress(run_dir)
