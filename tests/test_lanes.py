"""The lanes plugin (tests/lanes.py) in a real pytest-xdist run: a core per worker, a whole-machine test alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity on this platform")

# Each test writes when it ran and on which cores; the lane tests sleep so that they overlap in time.
# Checked by breaking tests/lanes.py: a whole-machine test taking the shared lock fails this test.
INNER = """
import json, os, tempfile, time
from pathlib import Path
import pytest

LOG = Path(os.environ["LANES_LOG"])
AT_COLLECTION = sorted(os.sched_getaffinity(0))  # where a framework imported here would size its thread pools

def _ran(name, seconds=0.4):
    start = time.monotonic()
    cores = sorted(os.sched_getaffinity(0))
    time.sleep(seconds)
    locks = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith("bench-lanes-")]
    with LOG.open("a") as f:
        f.write(json.dumps({"name": name, "start": start, "end": time.monotonic(), "cores": cores,
                            "worker": os.environ.get("PYTEST_XDIST_WORKER"), "collected": AT_COLLECTION,
                            "lock_folders": locks}) + "\\n")

@pytest.mark.parametrize("i", range(6))
def test_lane_before(i):
    _ran(f"lane{i}", 0.15 * (1 + i % 4))  # uneven, so one lane is mid-test when the other reaches a whole test

@pytest.mark.whole_machine
@pytest.mark.parametrize("i", range(2))
def test_whole(i):
    _ran(f"whole{i}")

@pytest.mark.parametrize("i", range(6, 12))
def test_lane_after(i):
    _ran(f"lane{i}", 0.15 * (1 + i % 4))
"""


@pytest.mark.whole_machine  # it starts two lanes of its own: on a pinned lane both would share one core
def test_each_lane_runs_on_a_core_of_its_own_and_a_whole_machine_test_runs_alone_on_every_core(tmp_path: Path):
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ("tests.lanes",)\n')
    log, temp = tmp_path / "log.jsonl", tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "LANES_LOG": str(log), "PYTHONPATH": str(REPO), "TMPDIR": str(temp)}
    cores = sorted(os.sched_getaffinity(0))  # read here: in a lane only a whole-machine test has every core
    if len(cores) < 2:
        pytest.skip("lanes need 2 cores")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "load",
         "-o", "markers=whole_machine: alone", "-o", "addopts=", "--strict-markers", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(len(r["lock_folders"]) == 1 for r in runs), runs  # the lanes' lock files, in the session's folder
    assert not list(temp.glob("bench-lanes-*"))  # removed when the session ended (every session's was left)
    lanes = [r for r in runs if r["name"].startswith("lane")]
    wholes = [r for r in runs if r["name"].startswith("whole")]
    assert len(lanes) == 12 and len(wholes) == 2
    by_worker = {r["worker"]: r["cores"] for r in lanes}
    assert len(by_worker) == 2 and all(len(c) == 1 for c in by_worker.values()), by_worker
    assert by_worker["gw0"] != by_worker["gw1"] and {c[0] for c in by_worker.values()} <= set(cores)
    # pinned before collection: a thread pool sized for two cores and then pinned to one spins against itself
    assert all(r["collected"] == by_worker[r["worker"]] for r in runs), [(r["worker"], r["collected"]) for r in runs]
    assert any(a["start"] < b["end"] and b["start"] < a["end"] for a in lanes for b in lanes if a is not b), (
        "the two lanes never ran at the same time"
    )
    # collected last: in each lane they come after its lane tests (xdist hands a lane its tests in collection
    # order), so they gather at the end of the run instead of each waiting for the other lane mid-run
    for worker in {r["worker"] for r in runs}:
        mine = sorted((r for r in runs if r["worker"] == worker), key=lambda r: r["start"])
        kinds = [r["name"].startswith("whole") for r in mine]
        assert kinds == sorted(kinds), (
            f"{worker} ran a lane test after a whole-machine test: {[r['name'] for r in mine]}"
        )
    for w in wholes:
        assert w["cores"] == cores, w
        overlapping = [r["name"] for r in runs if r is not w and r["start"] < w["end"] and w["start"] < r["end"]]
        assert not overlapping, f"{w['name']} shared the machine with {overlapping}"


def test_a_lanes_queue_holds_the_long_tests_first_the_short_ones_next_and_the_whole_machine_tests_last():
    """So the lane work that ends the run, which the whole-machine tests wait for, is short tests."""
    from tests.lanes import _order

    class Item:
        def __init__(self, name: str, *marks: str) -> None:
            self.name, self.marks = name, marks

        def get_closest_marker(self, mark: str) -> str | None:
            return mark if mark in self.marks else None

    items = [Item("pure"), Item("dp", "whole_machine", "e2e"), Item("fw", "frameworks"), Item("run", "e2e"), Item("p2")]
    items.append(Item("mypy", "long"))  # framework-free, but tens of seconds: with the runs
    assert [i.name for i in sorted(items, key=_order)] == ["run", "mypy", "fw", "pure", "p2", "dp"]


def test_a_whole_machine_test_in_an_xdist_group_is_refused_at_collection(tmp_path: Path):
    """xdist deals its groups out first: a whole-machine test in one would wait mid-run for the other lane."""
    (tmp_path / "test_inner.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.xdist_group('shared')\ndef test_grouped():\n    pass\n\n"
        "@pytest.mark.whole_machine\n@pytest.mark.xdist_group('shared')\ndef test_whole_grouped():\n    pass\n\n"
        "@pytest.mark.whole_machine\ndef test_whole_alone():\n    pass\n"
    )
    (tmp_path / "conftest.py").write_text('pytest_plugins = ("tests.lanes",)\n')
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
         "-o", "markers=whole_machine: alone", "-o", "addopts=", "--strict-markers", str(tmp_path)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert "a whole_machine test may not be in an xdist_group" in out and "test_whole_grouped" in out, out
    assert "test_whole_alone" not in out.split("xdist_group")[-1], out


def test_where_the_tests_may_use_one_core_a_whole_machine_test_is_skipped_saying_so(tmp_path: Path):
    """Measured 2026-12-07, the suite under `taskset -c 0`: its six whole-machine tests failed (two ranks, two rows
    side by side, refused or starved on one core), everything else passed. In a lane and without xdist alike."""
    (tmp_path / "test_inner.py").write_text(
        "import pytest\n\ndef test_lane():\n    pass\n\n@pytest.mark.whole_machine\ndef test_whole():\n    pass\n"
    )
    (tmp_path / "conftest.py").write_text('pytest_plugins = ("tests.lanes",)\n')
    one = sorted(os.sched_getaffinity(0))[:1]
    for lanes in ("1", "0"):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-n", lanes,
             "-o", "markers=whole_machine: alone", "-o", "addopts=", "--strict-markers", str(tmp_path)],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
            preexec_fn=lambda: os.sched_setaffinity(0, one),
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "1 passed, 1 skipped" in out, (lanes, out)
        assert "whole_machine: needs 2 cores, and the tests may use 1 here" in out, (lanes, out)
