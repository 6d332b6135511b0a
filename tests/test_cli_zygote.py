"""The CLI zygote (tests/cli_zygote.py) runs a command as ``python -m`` would: its own process, arguments,
environment, exit status and output. The suite's reading commands go through it, so a difference here would
hide in every history, compare, report and parity test."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import cli_zygote
from tests.conftest import REPO

PROBE = "tests.zygote_probe"


def fresh(argv: list[str], env: dict[str, str], module: str = PROBE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def seen(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.splitlines()[0])


@pytest.fixture
def probe_env() -> dict[str, str]:
    return dict(os.environ, ZYGOTE_PROBE="from the test", BENCH_DATA_DIR="/nowhere")


def test_a_forked_command_sees_what_a_fresh_interpreter_would(probe_env):
    zygote = cli_zygote.zygote(probe_env)
    forked = cli_zygote.run(["one", "two words"], probe_env, REPO, 60, module=PROBE)
    assert forked.returncode == 0 and forked.stderr == "to stderr\n", forked.stderr
    mine = seen(forked)
    assert mine["parent"] == zygote.proc.pid and mine["pid"] not in (zygote.proc.pid, os.getpid())
    assert mine["argv"][0] == str(REPO / "tests" / "zygote_probe.py") and mine["argv"][1:] == ["one", "two words"]
    assert mine["probe"] == "from the test" and "BENCH_DATA_DIR" in mine["bench_vars"]
    # the zygote imported bench.measure.compile_cache under its own environment: the child takes it again
    assert mine["started_with"] == "from the test"
    assert mine["stdin"] == "" and mine["main"] == "__main__"
    theirs = seen(fresh(["one", "two words"], probe_env))
    assert {k: v for k, v in mine.items() if k not in ("pid", "parent")} == {
        k: v for k, v in theirs.items() if k not in ("pid", "parent")
    }


@pytest.mark.parametrize(
    ("argv", "status", "said"),
    [(["exit", "3"], 3, ""), (["raise"], 1, "ValueError: the probe raised"), (["kill"], -15, "")],
    ids=["exit-3", "uncaught-exception", "killed-by-sigterm"],
)
def test_exit_status_and_a_traceback_are_the_interpreters(probe_env, argv, status, said):
    forked = cli_zygote.run(argv, probe_env, REPO, 60, module=PROBE)
    theirs = fresh(argv, probe_env)
    assert forked.returncode == theirs.returncode == status, (forked.stderr, theirs.stderr)
    assert said in forked.stderr and said in theirs.stderr
    assert forked.stderr.splitlines()[-1] == theirs.stderr.splitlines()[-1]


def test_a_command_past_its_timeout_is_killed_and_the_next_one_still_runs(probe_env):
    with pytest.raises(subprocess.TimeoutExpired) as stopped:
        cli_zygote.run(["sleep"], probe_env, REPO, 1, module=PROBE)
    pid = json.loads(stopped.value.output.splitlines()[0])["pid"]
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped
    os.kill(cli_zygote.zygote(probe_env).proc.pid, signal.SIGINT)  # a Ctrl-C in pytest's terminal
    assert cli_zygote.run(["exit", "0"], probe_env, REPO, 60, module=PROBE).returncode == 0


def test_a_new_interpreter_for_pythons_own_variables_or_another_folder_a_zygote_of_its_own_for_the_loaders(
    probe_env, tmp_path
):
    plain = cli_zygote.zygote(probe_env).proc.pid
    shadowing = tmp_path / "shadow"  # a package on PYTHONPATH that may shadow one the zygote imported
    (shadowing / "pandas").mkdir(parents=True)
    (shadowing / "pandas" / "__init__.py").write_text("raise ImportError('shadowed')\n")
    shadowed = dict(probe_env, PYTHONPATH=os.pathsep.join([str(shadowing), str(REPO)]))
    assert seen(cli_zygote.run([], shadowed, REPO, 60, module=PROBE))["parent"] == os.getpid()
    warnings = dict(probe_env, PYTHONWARNINGS="ignore")  # Python's own, read as the interpreter starts
    assert seen(cli_zygote.run([], warnings, REPO, 60, module=PROBE))["parent"] == os.getpid()
    elsewhere = cli_zygote.run([], dict(probe_env, PYTHONPATH=str(REPO)), tmp_path, 60, module=PROBE)
    assert seen(elsewhere)["parent"] == os.getpid() and seen(elsewhere)["cwd"] == str(tmp_path)
    # what a framework's import leaves in the test process's environment: a zygote started with it
    loader = dict(probe_env, LD_LIBRARY_PATH=str(tmp_path), OMP_NUM_THREADS="1")
    other = seen(cli_zygote.run([], loader, REPO, 60, module=PROBE))["parent"]
    assert other not in (plain, os.getpid()) and other == cli_zygote.zygote(loader).proc.pid
    assert Path(f"/proc/{other}/environ").read_bytes().split(b"\0").count(b"OMP_NUM_THREADS=1") == 1
    assert seen(cli_zygote.run([], probe_env, REPO, 60, module=PROBE))["parent"] == plain
    for n in range(cli_zygote.KEPT + 1):  # no more than KEPT of them alive
        cli_zygote.run([], dict(probe_env, OMP_NUM_THREADS=str(n + 2)), REPO, 60, module=PROBE)
    assert len(cli_zygote._zygotes) == cli_zygote.KEPT
    assert not Path(f"/proc/{plain}").exists()  # the least recently used, closed and reaped


@pytest.mark.parametrize(
    "site",
    [
        # tests/faults.py's: test backends registered, numpy the parity reference (read at bench.run.parity's import)
        "import sys\nsys.path.insert(0, {repo!r})\nimport tests.numpy_backend\n"
        "tests.numpy_backend.register(parity_reference=True)\n",
        "raise RuntimeError('the site broke')\n",  # the interpreter says so and goes on
    ],
    ids=["registers-backends", "raises"],
)
def test_a_sitecustomize_on_pythonpath_runs_in_the_forked_command_as_in_a_fresh_interpreter(probe_env, tmp_path, site):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(site.format(repo=str(REPO)))
    env = dict(probe_env, PYTHONPATH=os.pathsep.join([str(folder), str(REPO)]))
    forked, theirs = cli_zygote.run([], env, REPO, 60, module=PROBE), fresh([], env)
    mine = seen(forked)
    assert mine["parent"] == cli_zygote.zygote(env).proc.pid  # forked, from the session's zygote
    assert (forked.returncode, forked.stderr) == (theirs.returncode, theirs.stderr)
    assert {k: v for k, v in mine.items() if k not in ("pid", "parent")} == {
        k: v for k, v in seen(theirs).items() if k not in ("pid", "parent")
    }
    assert mine["path"][0] == str(REPO) and str(folder) in mine["path"]
    if "register" in site:
        assert mine["parity_reference"] == "numpy" and {"numpy", "fault"} <= set(mine["backends"])
    else:
        assert "Error in sitecustomize" in forked.stderr and mine["parity_reference"] == "torch"
    # the zygote itself never ran it: the next command without it sees the registry as shipped
    plain = seen(cli_zygote.run([], probe_env, REPO, 60, module=PROBE))
    assert plain["parity_reference"] == "torch" and "numpy" not in plain["backends"]


def test_bench_commands_print_and_exit_as_from_a_fresh_interpreter(clean_env, tmp_path):
    store = REPO / "results" / "history-reference"
    for name in ("mine", "theirs"):
        shutil.copytree(store, tmp_path / name)
    commands = {
        "help": (["--help"], ["--help"]),
        "history": (["history", "--store", str(tmp_path / "mine")], ["history", "--store", str(tmp_path / "theirs")]),
        "refused store": (["history", "--store", str(tmp_path / "none")],) * 2,
        "refused compare": (["compare", str(tmp_path / "a"), str(tmp_path / "b")],) * 2,
    }
    for what, (argv_mine, argv_theirs) in commands.items():
        forked = cli_zygote.run(argv_mine, clean_env, REPO, 120)
        theirs = fresh(argv_theirs, clean_env, module="bench")
        mine_out, mine_err = (text.replace("/mine", "/theirs") for text in (forked.stdout, forked.stderr))
        assert (forked.returncode, mine_out, mine_err) == (theirs.returncode, theirs.stdout, theirs.stderr), what
    assert (tmp_path / "mine").exists() and {p.name for p in (tmp_path / "mine").iterdir()} == {
        p.name for p in (tmp_path / "theirs").iterdir()
    }


def reads_environment_at_import(path: Path) -> bool:
    """Whether a module's top level (not a function's body) names ``os.environ`` or ``os.getenv``."""

    class Visitor(ast.NodeVisitor):
        found = False

        def visit_FunctionDef(self, node: ast.AST) -> None:  # a body that runs when called, not at import
            pass

        visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

        def visit_Attribute(self, node: ast.Attribute) -> None:
            self.found |= node.attr in ("environ", "getenv")
            self.generic_visit(node)

    visitor = Visitor()
    visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
    return visitor.found


def test_every_preloaded_module_that_keeps_its_import_time_environment_has_it_taken_again_in_each_child():
    preload = "import json, sys; from tests import cli_zygote as z; [__import__(m) for m in z.PRELOAD]; "
    listed = subprocess.run(
        [sys.executable, "-c", preload + "print(json.dumps(sorted(sys.modules)))"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    preloaded = set(json.loads(listed.stdout))
    readers = {
        name
        for package in ("bench", "backends", "datasets")
        for path in (REPO / package).rglob("*.py")
        if (name := ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")) in preloaded
        and reads_environment_at_import(path)
    }
    assert readers == set(cli_zygote.SNAPSHOTS), "add the module to SNAPSHOTS"
    assert "bench.run.cli" in preloaded and "pandas" in preloaded
    for module, name in cli_zygote.SNAPSHOTS.items():
        __import__(module)
        assert isinstance(getattr(sys.modules[module], name), dict)
