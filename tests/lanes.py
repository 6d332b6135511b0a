"""Lanes: one pytest-xdist worker per core, each pinned to a core of its own, and a whole-machine phase.

Why: most of the suite's time is single-threaded (a ``python -m bench`` process starting, framework imports,
Keras tracing, XLA compiles), so one pytest process leaves a core idle. Two processes that share both
cores would instead disturb each other's timed windows. Pinning each worker (and every process it starts:
affinity is inherited) to its own core gives each test a steady core; every figure the suite asserts is a
ratio measured inside one run, so a run on one core holds it as well as one on two.

The pin comes before collection, so before any framework is imported: torch's OpenMP pool, TensorFlow's
and XLA's thread pools size themselves by the cores the process may use when they start, and a pool of two
threads pinned onto one core afterwards spins against itself (measured: the zoo's module took 218 s in a lane
pinned after the imports, 83 s pinned before). A check that needs a core count must therefore read it inside
its test, not when it is collected (a ``skipif`` argument, a parametrisation).

A test marked ``whole_machine`` needs more than one core (two data-parallel ranks that each take one, two
rows side by side, a check that a run restricts itself to fewer cores than it may use): it waits until
the other lanes are between tests, runs on every core alone, and the lanes go on after it. A
readers-writer lock on two files does this (``fcntl.flock``): every test holds the shared lock, a
whole-machine test the exclusive one, and a turnstile taken first lets a waiting whole-machine test in
before new lane tests (writer preference, so it cannot starve). While a whole-machine test waits for the
other lanes' current tests its own lane is idle, so the whole-machine tests are collected last: together at
the end of the run they wait once, where spread over it each waited for whatever the other lane had started
(up to a minute or two; the suite has several). That one wait is for the other lane's last tests, so
the long tests (end-to-end runs) are collected first and the short ones (framework-free) after them.

Without xdist (``pytest -n 0``, or a platform with no ``sched_setaffinity``) none of this happens: one
process runs everything on every core, as before.

Where the tests may use one core only (a one-CPU container, ``taskset -c 0 pytest``), a whole-machine test is
skipped, saying so: two ranks or two rows side by side cannot each have a core there, and bench refuses them
(measured 2026-12-07, the suite under ``taskset -c 0``: the six whole-machine tests failed, all else passed).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Each worker process imports every test module (torch, TensorFlow, Keras, JAX): about 3 GiB resident
# at the suite's peak. More lanes than that allows would swap, which no core count makes up for.
GIB_PER_LANE = 3


def _usable_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("inf")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: a lane per core this process may use, as many as memory holds, at least one."""
    cores = len(_usable_cores()) or (os.cpu_count() or 1)
    return max(1, min(cores, int(_memory_gib() // GIB_PER_LANE)))


def _worker_index(config: pytest.Config) -> int | None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return None
    return int(str(workerinput["workerid"]).removeprefix("gw"))


class Lanes:
    """This worker's lane: the core it runs on, all the cores there are, and the lock files."""

    def __init__(self, index: int, run_id: str) -> None:
        self.cores = _usable_cores()
        self.core = self.cores[index % len(self.cores)]
        os.sched_setaffinity(0, [self.core])
        folder = _folder(run_id)
        folder.mkdir(exist_ok=True)
        self.turnstile = os.open(folder / "turnstile", os.O_RDWR | os.O_CREAT, 0o600)
        self.machine = os.open(folder / "machine", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def test(self, whole_machine: bool) -> Iterator[None]:
        fcntl.flock(self.turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.machine, fcntl.LOCK_EX if whole_machine else fcntl.LOCK_SH)
        finally:
            if not whole_machine:
                fcntl.flock(self.turnstile, fcntl.LOCK_UN)
        os.sched_setaffinity(0, self.cores if whole_machine else [self.core])
        try:
            yield
        finally:
            os.sched_setaffinity(0, [self.core])
            fcntl.flock(self.machine, fcntl.LOCK_UN)
            if whole_machine:
                fcntl.flock(self.turnstile, fcntl.LOCK_UN)


def _folder(run_id: str) -> Path:
    """The lock files' folder: one per session, which every lane opens."""
    return Path(tempfile.gettempdir()) / f"bench-lanes-{run_id}"


def pytest_configure(config: pytest.Config) -> None:
    index = _worker_index(config)
    if index is None:  # the session's own process: it names the run its lanes share, to remove their folder after
        if config.pluginmanager.hasplugin("xdist") and config.getoption("testrunuid", None) is None:
            config.option.testrunuid = uuid.uuid4().hex  # what xdist would draw, drawn here to be known here
        return
    if not hasattr(os, "sched_setaffinity") or not _usable_cores():
        return
    config.stash[LANES] = Lanes(index, str(config.workerinput["testrunuid"]))  # type: ignore[attr-defined]  # set by xdist on its workers


def pytest_unconfigure(config: pytest.Config) -> None:
    """The session's process, after its lanes have ended: their lock files left /tmp a folder a session."""
    run_id = None if _worker_index(config) is not None else getattr(config.option, "testrunuid", None)
    if run_id:
        shutil.rmtree(_folder(run_id), ignore_errors=True)


LANES = pytest.StashKey[Lanes]()


def _order(item: pytest.Item) -> int:
    """Where a test goes in a lane's queue: end-to-end runs and other long tests (tens of seconds), then other
    framework tests, then the framework-free ones (most well under a second), then the whole-machine tests."""
    if item.get_closest_marker("whole_machine") is not None:
        return 3
    if item.get_closest_marker("e2e") is not None or item.get_closest_marker("long") is not None:
        return 0
    return 1 if item.get_closest_marker("frameworks") is not None else 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a lane, the long tests first and the whole-machine tests last, each in collection order (xdist hands
    out work in collection order, its groups first, largest first; a test in an ``xdist_group`` goes with its
    group). The whole-machine tests wait for what the other lane has started, so the lane work that ends the
    run should be short tests: measured on the 2-core AMD VM (2026-12-04), with the end-to-end runs spread
    over the collection one lane finished its lane work 75 s before the other and waited."""
    if LANES in config.stash:
        items.sort(key=_order)  # stable: collection order within each kind
    grouped = [item.nodeid for item in items if _whole_machine_in_a_group(item)]
    if grouped:
        raise pytest.UsageError(
            "a whole_machine test may not be in an xdist_group (xdist deals its groups out first, so it would wait "
            "for the other lane's current test mid-run, not at the end; give the group to the tests that share its "
            "fixtures only): " + ", ".join(grouped)
        )


def _whole_machine_in_a_group(item: pytest.Item) -> bool:
    """Measured on the 2-core AMD VM (2026-12-06): the executors module's group held its devices test, which
    waited 80 s mid-run for the other lane's Keras/JAX parity run, the lane idle."""
    return item.get_closest_marker("whole_machine") is not None and any(True for _ in item.iter_markers("xdist_group"))


WHOLE_MACHINE_CORES = 2


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A whole-machine test where this process may use fewer than two cores, counted as it starts (a lane's test
    runs on every core the session may use by then): skipped, naming the count."""
    if item.get_closest_marker("whole_machine") is None or not hasattr(os, "sched_getaffinity"):
        return
    if (cores := len(os.sched_getaffinity(0))) < WHOLE_MACHINE_CORES:
        pytest.skip(f"whole_machine: needs {WHOLE_MACHINE_CORES} cores, and the tests may use {cores} here")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    lanes = item.config.stash.get(LANES, None)
    if lanes is None:
        return (yield)
    with lanes.test(whole_machine=item.get_closest_marker("whole_machine") is not None):
        return (yield)
