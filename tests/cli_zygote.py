"""``python -m bench`` for the tests, forked from a process that has already imported the command line.

A ``bench`` command the suite runs (``tests.conftest.run_cli``: every history, compare, report and parity check,
every refusal) spent most of its CPU importing pandas, pyarrow, duckdb and bench's command line: 0.45 s of a
history command's 0.65 s on the 2-core AMD VM. Here one process per test process imports those once
(``PRELOAD``) and forks a child for each command: a process of its own, as ``subprocess.run([python, "-m",
"bench", ...])`` would start, with the caller's arguments, environment, cores, exit status and its own
stdout/stderr, running ``bench/__main__.py`` itself (its Ctrl-C and broken-pipe handling included).

What a fork cannot give is a new interpreter's start, so the child does what that start would have done
differently. A test backend's ``sitecustomize`` on PYTHONPATH (tests/faults.py: it registers the backends
``numpy`` and ``fault``, and may make numpy the parity reference, which bench.run.parity reads at its import):
the child puts the command's PYTHONPATH on ``sys.path``, imports the project's packages again (the libraries
stay imported) and runs the ``sitecustomize`` as ``site`` does, before the command. A PYTHONPATH folder that
holds anything but a ``sitecustomize`` (a package shadowing an installed one), another Python variable or another
folder: a new interpreter. Loader or BLAS variables that differ: a zygote started with them
(``STARTUP_VARIABLES``). The one bench module that keeps what the environment held at its import
(``SNAPSHOTS``) has it taken again in the child, from the command's environment (``tests/test_cli_zygote.py``
finds every such module). A test that looks at what a command imports runs ``python -m bench`` itself
(``run_cli(..., fresh=True)``).

Protocol (one JSON line each way on the zygote's stdin/stdout): the request names the module, its argv, env and
cores, and two files for the child's output; the zygote answers the child's pid, then its exit status. Every
command runs in the repository, the zygote's own folder.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import runpy
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# what a bench command imports before it does anything (history, compare and report read tables with pandas,
# pyarrow and duckdb); the modules of these that keep their import's environment are SNAPSHOTS' keys
LIBRARIES = ("pandas", "pyarrow.parquet", "duckdb")
HISTORY = ("store", "annotations", "check", "failures", "rows")
PRELOAD = (*LIBRARIES, "bench.run.cli", "bench.report.compare", *(f"bench.history.{m}" for m in HISTORY))
# read when an interpreter or a preloaded library starts: the dynamic loader's, the allocator's and the BLAS
# threads' variables (a framework's import sets LD_LIBRARY_PATH in the test process, which every later command
# inherits) get a zygote started with them; Python's own (a test backend's sitecustomize on PYTHONPATH, one
# folder per test) a new interpreter, as does another working folder (the first folder on its path)
STARTUP_VARIABLES = ("PYTHON", "LD_", "MALLOC_", "OMP_", "OPENBLAS_", "MKL_", "ARROW_")
PYTHON_VARIABLES = "PYTHON"
PYTHONPATH = "PYTHONPATH"  # the one Python variable a child takes on itself (``_as_if_started_with``)
PROJECT = ("backends", "bench", "datasets", "tests")  # imported again in a child whose PYTHONPATH differs
SITE_FILES = {"sitecustomize.py", "__pycache__"}  # what a PYTHONPATH folder may hold for a child to take it on
KEPT = 2  # zygotes alive per test process, the least recently used closed first (each holds ~150 MB)

# module -> the name holding the environment as the module's import found it: taken again in each child
SNAPSHOTS = {"bench.measure.compile_cache": "STARTED_WITH"}


def _exit_code(exc: SystemExit) -> int:
    """As the interpreter turns ``raise SystemExit(code)`` into an exit status."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _entries(path: str | None) -> list[str]:
    """PYTHONPATH's folders as ``sys.path`` holds them (absolute; empty entries dropped)."""
    return [os.path.abspath(p) for p in (path or "").split(os.pathsep) if p]


def _as_if_started_with(path: list[str], started: list[str]) -> None:
    """``sys.path`` and the modules as an interpreter started with PYTHONPATH ``path`` (folders) would have them
    when it runs the command; ``started``: the zygote's own PYTHONPATH folders. The project's modules are dropped,
    to be imported again after the ``sitecustomize`` (which may change what they read at import); the libraries
    (pandas, pyarrow, duckdb, numpy) stay."""
    folder, rest = sys.path[0], sys.path[1:]
    for entry in started:
        if entry in rest:
            rest.remove(entry)
    sys.path[:] = [*path, *rest]  # before the standard library; ``-m`` puts the command's folder first after site
    for name in [m for m in sys.modules if m.split(".")[0] in PROJECT or m == "sitecustomize"]:
        del sys.modules[name]
    importlib.invalidate_caches()
    try:  # as site.execsitecustomize does
        try:
            import sitecustomize  # noqa: F401
        except ImportError as exc:
            if exc.name != "sitecustomize":
                raise
    except Exception as err:
        sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(err).__name__}: {err}\n")
    sys.path.insert(0, folder)


def _child(request: dict, sigint: Any) -> None:
    """In the forked child: become the command's process and run ``python -m bench``'s ``__main__``. Never
    returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, sigint)  # as a new interpreter would have it (an ignored one stays ignored)
        os.sched_setaffinity(0, request["cpus"])  # the caller's cores now: a lane's, or every core
        os.environ.clear()
        os.environ.update(request["env"])
        for module, name in SNAPSHOTS.items():
            if module in sys.modules:
                setattr(sys.modules[module], name, dict(os.environ))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        if request["python_path"] is not None:  # with its output where the command's goes (site's error lines)
            _as_if_started_with(request["python_path"], _entries(STARTED_PYTHONPATH))
        sys.argv = [request["module"], *request["argv"]]  # run_module sets argv[0] to the file it runs
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:  # as the interpreter would: the traceback on stderr, exit 1
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # a closed pipe: the status still goes back
                stream.flush()
        os._exit(code)


def serve() -> None:
    """The zygote's loop: one request per line on stdin, answers on stdout, until stdin closes."""
    global STARTED_PYTHONPATH
    STARTED_PYTHONPATH = os.environ.get(PYTHONPATH)
    for name in PRELOAD:
        __import__(name)
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # a stray print in the zygote cannot corrupt the answers
    answers.write(json.dumps({"ready": os.getpid()}) + "\n")
    # a Ctrl-C in pytest's terminal reaches the command running (its own handler) and not the zygote, which ends
    # when its test process closes its stdin
    sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            answers.close()
            _child(request, sigint)
        answers.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}) + "\n")


class Zygote:
    """One zygote process, for the process that started it (a forked test process starts its own)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.scratch = Path(tempfile.mkdtemp(prefix="bench-cli-zygote-"))
        # Python's own variables are the session's (a command's PYTHONPATH is taken on in its child)
        self.env = {k: v for k, v in env.items() if not k.startswith(("BENCH_", PYTHON_VARIABLES))}
        self.env.update(_SESSION_PYTHON)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_zygote"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # answers read from the fd itself (select), never from a buffer select cannot see
            env=self.env,
        )
        self.unread = b""
        self._answer(timeout=120)

    def _answer(self, timeout: float | None) -> dict:
        """The zygote's next answer line; TimeoutError after ``timeout`` seconds without one."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.unread:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise TimeoutError
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the CLI zygote exited ({self.proc.wait()}); its stderr is in the test's output")
            self.unread += chunk
        line, self.unread = self.unread.split(b"\n", 1)
        return json.loads(line)

    def run(
        self,
        argv: list[str],
        env: dict[str, str],
        timeout: float,
        module: str = "bench",
        python_path: list[str] | None = None,
    ) -> subprocess.CompletedProcess:
        """``python -m MODULE ARGV`` in the repository, forked from this zygote (``run`` picks the zygote);
        ``python_path``: the command's PYTHONPATH folders where they are not the session's."""
        cmd = [sys.executable, "-m", module, *argv]
        with self.lock:
            out, err = self.scratch / "stdout", self.scratch / "stderr"
            request = {
                "module": module,
                "cpus": sorted(os.sched_getaffinity(0)),
                "argv": argv,
                "env": env,
                "python_path": python_path,
                "stdout": str(out),
                "stderr": str(err),
            }
            assert self.proc.stdin is not None
            data = json.dumps(request).encode() + b"\n"
            while data:  # an unbuffered pipe may take part of it
                data = data[self.proc.stdin.write(data) or 0 :]
            pid = self._answer(timeout=60)["pid"]
            try:
                status = self._answer(timeout)["status"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._answer(timeout=60)
                raise subprocess.TimeoutExpired(cmd, timeout, out.read_text(), err.read_text()) from None
            return subprocess.CompletedProcess(cmd, status, out.read_text(), err.read_text())

    def close(self) -> None:
        """End the zygote (its stdin closed ends its loop; killed if a child still runs after 30 s) and remove
        its scratch folder."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)


def signature(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """What a zygote is started with: the startup variables but Python's own (every zygote has the session's)."""
    return tuple(
        sorted((k, v) for k, v in env.items() if k.startswith(STARTUP_VARIABLES) and not k.startswith(PYTHON_VARIABLES))
    )


STARTED_PYTHONPATH: str | None = None  # in a zygote: the PYTHONPATH it was started with (the session's)
_zygotes: dict[tuple[tuple[str, str], ...], Zygote] = {}  # by signature, the most recently used last
_SESSION_PYTHON = {k: v for k, v in os.environ.items() if k.startswith(PYTHON_VARIABLES)}


def _takes_on(path: str | None) -> list[str] | None:
    """The folders of a command's PYTHONPATH a child can take on (``_as_if_started_with``): the session's, the
    repository, and folders holding a ``sitecustomize`` and nothing else; None where one holds anything else (a
    package put there to shadow an installed one, which the zygote may have imported already)."""
    session = set(_entries(_SESSION_PYTHON.get(PYTHONPATH)))
    entries = _entries(path)
    for entry in entries:
        if entry in session or entry == str(REPO):
            continue
        if not os.path.isdir(entry) or not set(os.listdir(entry)) <= SITE_FILES:
            return None
    return entries


def zygote(env: dict[str, str]) -> Zygote:
    """The zygote a process started with ``env`` would be a fork of: started with ``env``'s startup variables."""
    if any(z.owner != os.getpid() for z in _zygotes.values()):  # a forked test process: its parent's are not its own
        _zygotes.clear()
    key = signature(env)
    if key in _zygotes and _zygotes[key].proc.poll() is not None:  # it died (killed by a test): start another
        _zygotes.pop(key).close()
    if key not in _zygotes:
        while len(_zygotes) >= KEPT:
            _zygotes.pop(next(iter(_zygotes))).close()
        _zygotes[key] = Zygote(env)
    _zygotes[key] = _zygotes.pop(key)
    return _zygotes[key]


def run(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float, module: str = "bench"
) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGV`` with ``env`` in ``cwd``: forked from a zygote, or in a new interpreter where
    Python's own variables (but a PYTHONPATH the child can take on) or the folder would start one otherwise than
    the session's."""

    def others(variables: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in variables.items() if k.startswith(PYTHON_VARIABLES) and k != PYTHONPATH}

    same_path = env.get(PYTHONPATH) == _SESSION_PYTHON.get(PYTHONPATH)
    python_path = None if same_path else _takes_on(env.get(PYTHONPATH))
    if Path(cwd).resolve() != REPO or others(env) != others(_SESSION_PYTHON) or (not same_path and python_path is None):
        cmd = [sys.executable, "-m", module, *argv]
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return zygote(env).run(argv, env, timeout, module, python_path)


def _close_all() -> None:
    for z in _zygotes.values():
        if z.owner == os.getpid():
            z.close()


atexit.register(_close_all)


if __name__ == "__main__":
    serve()
