"""Shared test fixtures: paths, the shared real data (skip when absent), subprocess CLI runs."""

from __future__ import annotations

import compileall
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Every process the suite starts writes into files and pipes as a user's would: the CI image sets
# PYTHONUNBUFFERED, a user's shell does not, and with it set a `bench` command's progress reached a log at once
# while a user's waited for Python's 8 KB buffer (found by `tox -e other-kernels`, which does not pass it on).
# Before the zygote module reads the session's Python variables.
os.environ.pop("PYTHONUNBUFFERED", None)

from tests import cli_zygote, import_order

import_order.install()  # torch before TensorFlow in this process, whichever a test imports first

REPO = Path(__file__).resolve().parent.parent
# A task small enough for end-to-end subprocess tests (seconds per backend).
TINY_TASK = """
name = "tiny"
[dataset]
name = "mnist"
max_train = 300
max_test = 100
[model]
arch = "lenet5"
[train]
epochs = 2
batch_size = 64
lr = 0.01
"""

# one pytest-xdist worker per core, pinned to it, and a whole-machine phase (tests/lanes.py)
pytest_plugins = ("tests.lanes",)

# JAX's persistent compilation cache, shared by every process of one test session and by none after it: the
# suite compiles the same small programs again and again in processes of its own (each Keras/JAX model's
# initialisers, one XLA program per weight shape, and its train step; a data-parallel test's three launches),
# and XLA compiles are most of Keras/JAX's test time (the engine probe 30 s cold, 11 s with the cache warm, on
# a 2-core AMD EPYC VM). A session starts cold, as CI does. Rows record the cache (knob ``compilation_cache``,
# and a note): the suite's Keras/JAX compile times are not a user's first run. ``bench`` itself never sets it.
XLA_CACHE_VARIABLES = {
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",  # every program, not only those over 1 s
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}


def pytest_configure(config: pytest.Config) -> None:
    """In the process that starts the session (xdist's workers inherit its environment), unless the caller set
    a cache of their own."""
    if hasattr(config, "workerinput"):
        return
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="bench-tests-xla-cache-")
        config.stash[XLA_CACHE] = folder
        os.environ.update(XLA_CACHE_VARIABLES, JAX_COMPILATION_CACHE_DIR=folder)
    if sys.dont_write_bytecode:
        config.stash[BYTECODE] = session_bytecode()


PACKAGES = ("bench", "backends", "datasets", "tests")


def session_bytecode() -> list[Path]:
    """The repository's modules compiled once, for every process of the session to read: where Python may not
    write bytecode (``PYTHONDONTWRITEBYTECODE``, as on the CI image), each process the suite starts (about a
    thousand: every ``bench`` command, its worker servers, each rank) compiled the ~130 modules a ``bench``
    command imports from source again, 0.25 s of CPU of its 0.9 s start on the 2-core VM. The folders this
    makes are removed when the session ends. (``PYTHONPYCACHEPREFIX`` would keep them out of the tree, but it
    moves every installed package's bytecode there too: pandas and numpy then compile, 2.4 s a start.)"""

    def caches() -> set[Path]:
        return {d for package in PACKAGES for d in (REPO / package).rglob("__pycache__")}

    before = caches()
    for package in PACKAGES:
        compileall.compile_dir(REPO / package, quiet=1)
    return sorted(caches() - before)


def pytest_unconfigure(config: pytest.Config) -> None:
    if folder := config.stash.get(XLA_CACHE, None):
        shutil.rmtree(folder, ignore_errors=True)
        for name in (*XLA_CACHE_VARIABLES, "JAX_COMPILATION_CACHE_DIR"):
            os.environ.pop(name, None)
    for folder in config.stash.get(BYTECODE, []):
        shutil.rmtree(folder, ignore_errors=True)


XLA_CACHE = pytest.StashKey[str]()
BYTECODE = pytest.StashKey[list[Path]]()

SHARED_DATA = Path(os.environ.get("BENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (minutes each on 2 cores)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests are skipped, saying how to run them, unless ``--slow`` is given."""
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: minutes on a 2-core CPU; run with pytest --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# A module marked as a whole (``pytestmark = ... frameworks``) imports torch and TensorFlow when collected:
# a tier that leaves frameworks out does not collect it at all, which saves those imports (~30 s here).
WHOLE_MODULE_NEEDS_FRAMEWORKS = re.compile(r"^pytestmark = .*pytest\.mark\.frameworks", re.M)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if "not frameworks" not in (config.getoption("markexpr") or "") or collection_path.suffix != ".py":
        return None
    return bool(WHOLE_MODULE_NEEDS_FRAMEWORKS.search(collection_path.read_text(encoding="utf-8"))) or None


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "mnist.npz").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (set BENCH_SHARED_DATA)")
    return SHARED_DATA


# Set by a framework's import in this process (torch sets $TORCHINDUCTOR_CACHE_DIR to its default folder the first
# time it looks, here at collection): a subprocess would inherit it as a cache the user named
# (bench.measure.compile_cache). Read when conftest is imported, before any framework.
SET_BY_FRAMEWORKS = tuple(name for name in ("TORCHINDUCTOR_CACHE_DIR",) if name not in os.environ)


@pytest.fixture(autouse=True)
def _no_bench_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test starts from the embedded defaults: no BENCH_* variable of the caller's shell or tox
    (BENCH_DATA_DIR pointing at real data, BENCH_WEIGHTS_DIR, ...) and an empty dataset cache instead of
    ~/.cache/bench. A test that wants real data asks for it (``shared_data``) and sets the variable itself."""
    for name in [n for n in os.environ if n.startswith("BENCH_")]:
        monkeypatch.delenv(name)
    for name in SET_BY_FRAMEWORKS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "bench-cache"))


@pytest.fixture
def clean_env() -> dict[str, str]:
    """The environment for a subprocess: this process's, already cleaned by ``_no_bench_environment``."""
    return dict(os.environ)


def sigint_default() -> None:
    """``preexec_fn`` for a child a test interrupts with SIGINT: the default disposition, so Python's
    KeyboardInterrupt handler is installed. A test run started in the background by a non-interactive
    shell (``bash .ci/run &``) inherits SIGINT ignored (POSIX), and Python keeps an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def printed(proc: subprocess.Popen, timeout: float = 30) -> str:
    """What a started ``proc`` printed (killed first if it still runs), for an assertion's message.

    Read for at most ``timeout`` s: a child the process left behind can hold its output pipe open for
    ever, and a bare ``proc.stdout.read()`` then waits with it -- that hung CI for an hour once."""
    if proc.poll() is None:
        proc.kill()
    if isinstance(getattr(proc, "log", None), Path):  # started by start_cli: its output is in a file
        proc.wait(timeout)
        return proc.log.read_text(errors="replace")  # type: ignore[attr-defined]
    try:
        return proc.communicate(timeout=timeout)[0] or ""
    except subprocess.TimeoutExpired:
        return f"(its output pipe stayed open {timeout} s after it ended: a child it left behind holds it)"


def start_cli(args: list[str], env: dict[str, str], log: Path, group: bool = False) -> subprocess.Popen:
    """``python -m bench ARGS`` started in the background, printing into ``log`` (``printed`` reads it).

    A file, not a pipe: nobody reads a pipe while the test waits, so a chatty run would block on a full
    one, and a child the run leaves behind keeps a pipe open after the run is gone. ``group``: in a process
    group of its own, which ``os.killpg(proc.pid, SIGINT)`` interrupts as a terminal's Ctrl-C does (every
    process of the foreground group, the run's children that stayed in it too)."""
    with log.open("w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", *args],
            cwd=REPO,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=sigint_default,
            process_group=0 if group else None,
        )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 600, cwd: Path = REPO, fresh: bool = False
) -> subprocess.CompletedProcess:
    """``python -m bench ARGS``, its output captured: in a process forked from the CLI zygote (tests/cli_zygote.py:
    a process of its own, without the 0.5 s of imports a new interpreter spends), or with ``fresh`` in a new
    interpreter, as the zygote itself does for an environment that starts one differently (a test backend's
    PYTHONPATH)."""
    if not fresh:
        return cli_zygote.run(args, env, cwd, timeout)
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def only_run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir() and d.name != "history"]  # history: every run so far (#22)
    assert len(dirs) == 1, dirs
    return dirs[0]


def records(run_dir: Path, phase_errors: bool = False) -> list[dict]:
    """The run's records. A phase that raised keeps its row ok (``phase_errors``): unless a test expects that,
    it is a failure here, so a test that checks only ``status == "ok"`` still catches a broken phase."""
    rows = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    broken = [f"{r.get('task')}/{r.get('backend')}: {r['phase_errors']}" for r in rows if r.get("phase_errors")]
    assert phase_errors or not broken, f"a phase failed: {broken}"
    return rows


def import_both_frameworks():
    """torch (with _dynamo loaded) strictly before tensorflow: the other order segfaults here."""
    pytest.importorskip("torch")
    import torch._dynamo  # noqa: F401

    from backends.torch import backend as torch_backend

    pytest.importorskip("tensorflow")
    os.environ["KERAS_BACKEND"] = "tensorflow"  # this process's Keras engine; the others run in subprocesses
    from backends.keras import backend as keras_backend

    return torch_backend, keras_backend


def live_processes(marker: str) -> list[int]:
    """PIDs whose command line mentions ``marker`` (a run directory): what a run may have left behind."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids
