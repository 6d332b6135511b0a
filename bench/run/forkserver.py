"""Warm workers: one server process per backend imports its framework once, then forks each run.

Importing TensorFlow or torch (and the rest of the worker) costs 5-6.5 s
per process on a 2-core machine; with a fresh interpreter per (task, backend, repeat)
that came to ~90 s of ``bench all``'s five-minute budget. A server imports once and forks a
child per run, so every run still starts from the same state — framework imported, no
op executed, no thread pool or TF context created (``configure`` does that in the child)
— and still has a process of its own: its own peak RSS (``ru_maxrss`` counts the pages
it inherited, as a fresh process would have them after importing), its own crash, its
own kill on timeout. The import time is measured once and recorded as ``import_s``.

Protocol over a Unix socket pair (runner <-> server): the server says ``ready`` once
imported (the runner starts every backend's server at once and waits for all, so the
imports overlap each other and nothing that is measured); then, one run at a time, the
runner sends the job path with the write end of a pipe attached (SCM_RIGHTS); the server
forks, the child makes the pipe its stdout/stderr and runs ``bench.run.worker.main``; the
server answers ``pid N`` at once and ``exit CODE`` when the child is reaped. Both the
server and its children are killed by the kernel if their parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from bench.core.cpus import restrict_to_handed_cores
from bench.core.runfiles import open_file
from bench.measure import compile_cache  # noqa: F401  # the user's environment, before the framework's import
from bench.measure.compile_cache import remove_orphans


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel for ``sig`` (SIGKILL) when the parent process dies (Linux), so nothing is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG


# -- server side (``python -m bench.run.forkserver BACKEND FD TAG``) ------------------------------


SCRATCH = "bench-row-tmp-"  # then the pid of the row's process, "-", mkdtemp's random part


@contextlib.contextmanager
def row_tempdir() -> Iterator[Path]:
    """Inside: the process's temporary files go to a folder of its own, removed after. A forked row ends in
    ``os._exit``, so what a framework meant to delete at exit stays: TensorFlow's autograph writes a source file per
    converted function (tf.data's map, Grad-CAM's score, a grouped convolution), and 1,079 of them had gathered in
    /tmp over a day of runs (2026-12-07). A row killed on its timeout leaves its folder: the next row removes it."""
    remove_orphans(Path(tempfile.gettempdir()), SCRATCH)
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH}{os.getpid()}-"))
    before, variable = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(folder), str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = before
        if variable is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = variable
        shutil.rmtree(folder, ignore_errors=True)


def _child(job_path: str, out_fd: int, sock: socket.socket, server_pid: int, import_s: float) -> None:
    """In the forked child: become a worker with the pipe as stdout/stderr; never returns."""
    code = 1
    try:
        sock.close()
        os.setpgid(0, 0)  # own process group: a timeout kills the run and whatever it started
        die_with_parent()
        if os.getppid() != server_pid:  # the server died before prctl took effect
            os._exit(1)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        from bench.run import worker

        with row_tempdir():
            code = worker.main([job_path], import_s=import_s)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(backend: str, fd: int) -> int:
    """Import ``backend`` once, then fork one child per job received on socket ``fd`` until EOF."""
    sock = socket.socket(fileno=fd)
    restrict_to_handed_cores()  # a device slot's cores (bench.run.executors.devices), before any framework
    started = time.perf_counter()
    from backends import load_backend
    from bench.run import worker  # noqa: F401 - imported here so every child inherits it

    # A framework that fails to import fails again in each child, which reports it as its row's
    # "skipped" (ImportError) or "failed" record; the server itself stays up.
    with contextlib.suppress(Exception):
        load_backend(backend)
    import_s = time.perf_counter() - started
    me = os.getpid()
    print(f"worker server {me} for {backend}: imported in {import_s:.1f} s", flush=True)
    try:
        sock.sendall(b"ready\n")
        while _serve_one(sock, me, import_s):
            pass
    except OSError:  # the runner went away (closed, interrupted, killed): nothing left to serve
        pass
    return 0


def _serve_one(sock: socket.socket, me: int, import_s: float) -> bool:
    """Receive one job, fork its child, report its pid and exit code; False when the runner is done."""
    msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
    if not msg:
        return False  # the runner closed its end
    if len(fds) != 1:
        for f in fds:
            os.close(f)
        sock.sendall(b"error expected one pipe descriptor with the job\n")
        return True
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(msg.decode(), fds[0], sock, me, import_s)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also here, so the group exists before the runner can signal it
    os.close(fds[0])
    try:
        sock.sendall(f"pid {pid}\n".encode())
    finally:
        _, status = os.waitpid(pid, 0)  # reap the child even when the runner is gone
    sock.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
    return True


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m bench.run.forkserver BACKEND SOCKET_FD [TAG]", file=sys.stderr)
        return 2
    return serve(argv[0], int(argv[1]))  # TAG (the run's job dir) only labels the process


# -- runner side -----------------------------------------------------------------------------


class ServerGone(RuntimeError):
    """The server process ended while a run was in flight (its children die with it)."""


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Take a Ctrl-C that comes while a child (a rank, a worker server) is forked, and raise it again once the
    fork is done. With a
    ``preexec_fn`` CPython runs its at-fork handlers (logging's lock release) in Python, and a KeyboardInterrupt
    raised inside one is printed ("Exception ignored in ... _releaseLock") and dropped: the run went on (5 of 6
    tries here). Blocking the signal is not enough: the kernel hands it to any thread that does not block it."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
        yield
        return
    caught: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if caught:
            signal.raise_signal(signal.SIGINT)  # as the restored handler says: KeyboardInterrupt, here


class Server:
    """A running server for one backend and the runner's end of its socket."""

    def __init__(self, backend: str, tag: str, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        ours, theirs = socket.socketpair()
        started: list[subprocess.Popen] = []
        try:
            with open_file(log.parent, log, "a") as out, sigint_deferred():  # logs/: made by runner.execute
                started.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.run.forkserver", backend, str(theirs.fileno()), tag],
                        cwd=cwd,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        pass_fds=(theirs.fileno(),),
                        start_new_session=True,  # Ctrl-C reaches the runner only; it stops the run itself
                        preexec_fn=die_with_parent,
                    )
                )
        except KeyboardInterrupt:  # a Ctrl-C during the fork: the server is not left to start on its own
            for proc in started:
                kill_group(proc.pid)
                proc.wait()
            raise
        finally:
            theirs.close()
        self.proc = started[0]
        self.sock = ours
        self._buf = b""
        self.ready = False

    def wait_ready(self) -> None:
        """Block until the server has imported its framework (ServerGone if it died doing so)."""
        if not self.ready:
            if self.read_line(None) != "ready":
                raise ServerGone("worker server did not say ready")
            self.ready = True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def submit(self, job_path: Path, out_fd: int) -> int:
        """Start a run; returns the child's pid (its process group id too)."""
        self.wait_ready()
        try:
            socket.send_fds(self.sock, [str(job_path).encode()], [out_fd])
        except OSError as e:  # the server is gone (broken pipe)
            raise ServerGone(f"worker server unreachable: {e}") from e
        return self._expect("pid", None)

    def wait_exit(self, timeout: float | None) -> int:
        """The run's exit code (negative: killed by that signal); TimeoutError after ``timeout`` s."""
        return self._expect("exit", timeout)

    def _expect(self, word: str, timeout: float | None) -> int:
        reply = self.read_line(timeout)
        if not reply.startswith(f"{word} "):
            raise ServerGone(f"worker server answered {reply!r} instead of {word!r}")
        return int(reply.split()[1])

    def read_line(self, timeout: float | None) -> str:
        """The next reply line; TimeoutError after ``timeout`` s; ServerGone on EOF."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.sock], [], [], wait)[0]:
                raise TimeoutError
            try:
                chunk = self.sock.recv(4096)
            except OSError as e:  # reset: the server died with our job unread
                raise ServerGone(f"worker server lost: {e}") from e
            if not chunk:
                raise ServerGone("worker server exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def death(self) -> str:
        """Why the server ended, with the last lines of its log (after ServerGone)."""
        self.close()
        lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()][-5:]
        last = f"; last output: {' | '.join(lines)}" if lines else ""
        return f"worker server {exit_description(self.proc.returncode)}{last}"

    def close(self) -> None:
        """Close our end (the server exits on EOF); kill it if it does not."""
        self.sock.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def kill_group(pid: int) -> None:
    """SIGKILL a run's process group (or the process, if its group is not set up yet)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def exit_description(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
