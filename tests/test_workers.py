"""Warm worker servers kept across runs (``bench.run.workers.shared_servers``, what `bench tune`'s rungs use), with
the numpy test backend's server (no framework: it starts in half a second)."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import ClassVar

import pytest

from bench.run import workers as workers_module
from bench.run.workers import Workers, shared_servers
from tests.faults import backend_env


@pytest.fixture(autouse=True)
def numpy_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers started here know the numpy backend (a sitecustomize on their PYTHONPATH)."""
    monkeypatch.setenv("PYTHONPATH", backend_env({}, tmp_path / "site")["PYTHONPATH"])


def workers(tmp_path: Path, run: str, **extra: str) -> Workers:
    """A run folder's Workers (``extra``: what a device slot adds to its servers' environment)."""
    folder = tmp_path / run
    (folder / "logs").mkdir(parents=True)
    (folder / ".jobs").mkdir()
    return Workers(folder / ".jobs", extra)


def test_a_server_outlives_its_run_inside_shared_servers_and_closes_with_the_block(tmp_path: Path):
    with shared_servers():
        first = workers(tmp_path, "rung0")
        first.start(["numpy"])
        server = first.servers["numpy"]
        first.close()
        assert server.alive()  # kept for the next run
        second = workers(tmp_path, "rung1")
        assert second.warm("numpy")
        second.start(["numpy"])
        assert second.servers["numpy"] is server  # forked from, not started again
        pinned = workers(tmp_path, "slot", BENCH_CORES="0")
        assert not pinned.warm("numpy")  # another environment (a device slot's pinning): a server of its own
        second.close()
        server.proc.kill()  # a kept server that died: the next run starts another, and the dead one is let go
        server.proc.wait()
        third = workers(tmp_path, "final")
        assert not third.warm("numpy")
        third.start(["numpy"])
        again = third.servers["numpy"]
        assert again is not server and again.alive() and server.sock.fileno() == -1
        third.close()
    assert not server.alive() and not again.alive()  # closed with the block
    alone = workers(tmp_path, "plain")  # outside the block a run's servers end with it, as ever
    alone.start(["numpy"])
    plain = alone.servers["numpy"]
    alone.close()
    assert not plain.alive() and not alone.warm("numpy")


def test_ctrl_c_inside_shared_servers_closes_the_servers_it_kept(tmp_path: Path):
    with pytest.raises(KeyboardInterrupt), shared_servers():
        run = workers(tmp_path, "rung0")
        run.start(["numpy"])
        server = run.servers["numpy"]
        raise KeyboardInterrupt
    assert not server.alive()


def test_a_rows_scores_import_no_scikit_learn_scipy_or_pandas():
    """Every row scores its test set (accuracy, loss, macro-F1, confusion matrix, per-class report) and a transfer
    target in its own process, forked from a server that imported the framework and nothing else: scikit-learn's
    metrics (SciPy and pandas with them) cost each server 1.1 s of CPU and each row their pages in ``peak_host_mb``.
    The figures are numpy's (bench.core.metrics); tests/test_timing_metrics.py holds them equal to scikit-learn's."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = (
        "import sys, numpy as np; from bench.core import metrics; from bench.phases import transfer; "
        "z = np.random.default_rng(0).normal(size=(40, 3)); y = np.arange(40) % 3; "
        "metrics.accuracy_and_loss(z, y); metrics.classification(z, y, ('a', 'b', 'c')); "
        "transfer.transfer_metrics(z, y % 2, ['a', 'b'], [0, 2], ['a', 'b', 'c']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'pandas', 'pyarrow'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_a_worker_server_imports_no_table_or_plotting_library_of_its_own():
    """A server imports its framework and the worker once and forks every row from that: what else it imports is
    paid in each server's start (a run starts one per backend). pandas (with pyarrow: 0.4 s warm, 2 s cold on the
    2-core VM) came in through bench.core.results, whose JSON encoder the worker uses and whose table it never
    builds. The framework's own imports are its own (Keras imports scikit-learn, and so pandas, for its wrappers)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = (
        "import sys; from bench.run import forkserver, worker; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'pyarrow', 'matplotlib', 'sklearn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


class ImportingServer:
    """A server as the runner sees it, without a process: it says "ready" at once; ``events`` says when it was
    started and when the runner read its "ready", in order."""

    events: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, backend: str, tag: str, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.name = f"{backend}@{env.get('BENCH_CORES')}"
        self.sock, self._theirs = socket.socketpair()
        self._theirs.sendall(b"ready\n")
        self.ready = False
        self.events.append(("start", self.name))

    def wait_ready(self) -> None:
        assert self.sock.recv(16) == b"ready\n"
        self.ready = True
        self.events.append(("ready", self.name))

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        self.sock.close()
        self._theirs.close()


def most_importing_at_once(events: list[tuple[str, str]], slot: str) -> int:
    now = most = 0
    for what, name in events:
        if name.endswith(f"@{slot}"):
            now += 1 if what == "start" else -1
            most = max(most, now)
    return most


@pytest.mark.parametrize("cores", ["0", "0,1"])
def test_servers_import_at_most_as_many_at_once_as_their_cores(tmp_path: Path, monkeypatch, cores):
    """QA: every server of a run imported at once, so a server's ``import_s`` held its share of the cores with the
    imports beside it (the 2-core AMD VM at load 4-7: torch 3.5-6.6 s alone, 4.4-8.9 s beside Keras (TF)'s and Keras
    (JAX)'s). As many import at once as the cores they run on (a device slot's, else this process's), the next as
    one is ready; each slot of the devices executor counts its own."""
    monkeypatch.setattr(workers_module, "Server", ImportingServer)
    three, n = ["numpy", "fault", "lossy"], len(cores.split(","))
    ImportingServer.events = []
    alone = workers(tmp_path, "alone", BENCH_CORES=cores)
    alone.start(three)  # the local executor's one set
    assert most_importing_at_once(ImportingServer.events, cores) == n
    alone.close()
    ImportingServer.events = []
    slot = workers(tmp_path, "run", BENCH_CORES=cores)
    other = workers(tmp_path, "other", BENCH_CORES="7")
    workers_module.start_servers([slot, other], three)  # the devices executor's slots, each with its own cores
    assert most_importing_at_once(ImportingServer.events, cores) == n
    assert most_importing_at_once(ImportingServer.events, "7") == 1  # the other slot's one core: one at a time
    assert sorted(name for what, name in ImportingServer.events if what == "ready") == sorted(
        f"{b}@{c}" for b in three for c in (cores, "7")
    )  # every server was waited for
    assert all(srv.ready for w in (slot, other) for srv in w.servers.values()) and len(slot.servers) == 3
    assert workers(tmp_path, "plain").cores == len(os.sched_getaffinity(0))  # no slot: this process's cores
    for w in (slot, other):
        w.close()


LEAVES_A_TEMP_FILE = """
import tempfile, tests.numpy_backend as nb
_build = nb.Backend.build
def build(self, *args, **kwargs):  # as TensorFlow's autograph does: a source file meant to be deleted at exit
    tempfile.NamedTemporaryFile(prefix="__autograph_generated_file", suffix=".py", delete=False).close()
    return _build(self, *args, **kwargs)
nb.Backend.build = build
"""


@pytest.mark.e2e
def test_a_rows_temporary_files_go_with_it_though_its_process_ends_in_os_exit(clean_env, tmp_path: Path):
    """A forked row ends in os._exit, so a framework's delete-at-exit never ran: 1,079 of autograph's source files
    had gathered in /tmp over a day (2026-12-07). Each row's temporary files go to a folder of its own, removed after
    it; a folder a killed row left is removed by the next row."""
    from bench.run.forkserver import SCRATCH, row_tempdir
    from tests.conftest import TINY_TASK, run_cli

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    orphan = tmp / f"{SCRATCH}999999999-x"  # a killed row's: no such process
    orphan.mkdir()
    env = backend_env(clean_env, tmp_path / "run-site")
    site = tmp_path / "run-site" / "sitecustomize.py"
    site.write_text(site.read_text() + LEAVES_A_TEMP_FILE)
    task = tmp_path / "tiny.toml"
    task.write_text(TINY_TASK)
    proc = run_cli(
        ["run", str(task), "--backend", "numpy", "--repeats", "2", "--out", str(tmp_path / "o")],
        {**env, "TMPDIR": str(tmp)},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in tmp.iterdir() if not p.name.startswith("torchinductor")) == []
    before = os.environ.get("TMPDIR"), tempfile.gettempdir()
    with row_tempdir() as folder:  # in this process: the temporary files' folder, and what was there before after
        assert Path(tempfile.mkstemp()[1]).parent == folder and os.environ["TMPDIR"] == str(folder)
    assert not folder.exists() and (os.environ.get("TMPDIR"), tempfile.gettempdir()) == before
