"""A run folder is untrusted input: planted links, FIFOs, devices and folders where files belong are refused
with one line and exit 2, nothing is written (through them or beside them), no read blocks; a glued record
is recovered; an edited plan.json is validated like a task file before anything runs.

The run folders here are finished runs built from real specs and records, so `report`, `compare` and
`--resume` (which then has no row left to train) run for real, in subprocesses, without a framework."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import stat
import sys
from pathlib import Path

import pytest

from bench.core import runfiles
from bench.core.record import new_record
from bench.core.results import append_record, read_records
from bench.core.spec import parse_task
from bench.run import cli
from bench.run.plan import RunOptions
from tests.conftest import TINY_TASK, run_cli

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="O_NOFOLLOW, FIFOs and device nodes")
TIMEOUT = 120  # a read that blocks on a FIFO would hang: the subprocess is killed and the test fails


def finished_run(path: Path, records: int = 1) -> Path:
    """A run folder as `bench run` leaves it for one tiny task on torch: plan, state, environment, records."""
    path.mkdir(parents=True)
    task = parse_task(__import__("tomllib").loads(TINY_TASK), source="tiny.toml", profile="quick")
    opts = {**dataclasses.asdict(RunOptions(backends=("torch",))), "out": str(path.parent)}
    opts["backends"] = list(opts["backends"])
    (path / "plan.json").write_text(json.dumps({"tasks": [task.to_dict()], "options": opts}))
    (path / "state.json").write_text(json.dumps({"planned": 1, "state": "complete", "recorded": 1}))
    (path / "environment.json").write_text(json.dumps({"run_id": path.name, "cpu": "test"}))
    for repeat in range(records):
        append_record(path, row(repeat))
    return path


def row(repeat: int = 0, **fields) -> dict:
    return new_record(
        run_id="r",
        task="tiny",
        backend="torch",
        repeat=repeat,
        status="ok",
        model="lenet5",
        profile="quick",
        n_train=300,
        epoch_s_median=1.0,
        train_s=2.0,
        throughput_img_s=100.0,
        test_acc=0.9,
        history=[{"epoch": 1, "seconds": 1.0, "train_loss": 0.5, "test_acc": 0.9}],
        **fields,
    )


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every entry under ``root`` (not following links): its kind and its bytes or link target."""
    out = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(top) / name
            st = os.lstat(p)
            kind = runfiles.kind_of(st.st_mode)
            content: bytes | str = b""
            if stat.S_ISREG(st.st_mode):
                content = p.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            out[str(p.relative_to(root))] = (kind, content)
    return out


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """Somewhere outside every run folder that must never change: a file and a folder."""
    (tmp_path / "victim" / "dir").mkdir(parents=True)
    (tmp_path / "victim" / "file").write_text("precious\n")
    return tmp_path / "victim"


def other_run(run: Path) -> Path:
    """A clean finished run beside ``run`` to compare it with (one run named twice is refused by itself)."""
    other = run.parent / "other"
    return other if other.is_dir() else finished_run(other, records=2)


COMMANDS = {
    "report": lambda run: ["report", str(run)],
    "resume": lambda run: ["all", "--resume", str(run)],
    "compare": lambda run: ["compare", str(run), str(other_run(run))],
}


def bench_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``python -m bench ARGS`` in this process (a second each instead of an interpreter start each)."""
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(
    run: Path,
    command: str,
    env: dict[str, str],
    what: Path,
    kind: str,
    victim: Path,
    capsys: pytest.CaptureFixture[str] | None = None,
    says: str = "",
) -> None:
    """``command`` on ``run`` exits 2 with one line naming ``what``, writing nothing anywhere. In a subprocess
    under a time limit unless ``capsys`` is given (in-process: for cases that cannot block)."""
    before_run, before_victim = snapshot(run), snapshot(victim)
    if capsys is None:
        proc = run_cli(COMMANDS[command](run), env, timeout=TIMEOUT)
        code, err = proc.returncode, proc.stderr
    else:
        code, _, err = bench_main(COMMANDS[command](run), capsys)
    assert code == 2, (command, err)
    lines = err.strip().splitlines()
    expected = f"error: refused: {what} {says}" if says else f"error: refused: {what} is {kind}, not "
    assert len(lines) == 1 and lines[0].startswith(expected), err
    assert "Traceback" not in err
    assert snapshot(run) == before_run, f"{command} wrote into the run folder"
    assert snapshot(victim) == before_victim, f"{command} wrote through a link"


FILE_NAMES = [*runfiles.FILES, "state.json.partial", "results.csv.partial", "summary.md.partial", "plan.json.partial"]


@pytest.mark.parametrize("name", FILE_NAMES)
@pytest.mark.parametrize("command", ["report", "resume"])
def test_a_link_where_a_run_file_belongs_is_refused_and_nothing_is_written(
    tmp_path: Path, clean_env, victim: Path, name: str, command: str, capsys
):
    run = finished_run(tmp_path / "run")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim / "file")
    assert_refused(run, command, clean_env, run / name, "a symbolic link", victim, capsys)


@pytest.mark.parametrize("name", runfiles.FOLDERS)
@pytest.mark.parametrize("command", ["report", "resume"])
def test_a_linked_folder_is_refused_and_nothing_lands_in_its_target(
    tmp_path: Path, clean_env, victim: Path, name: str, command: str, capsys
):
    run = finished_run(tmp_path / "run")
    (run / name).symlink_to(victim / "dir", target_is_directory=True)
    assert_refused(run, command, clean_env, run / name, "a symbolic link", victim, capsys)
    assert not any((victim / "dir").iterdir())


@pytest.mark.parametrize("inner", ["plots/overview.png", "logs/tiny.torch.0.log", "artifacts/x.npz", ".jobs/a.json"])
def test_a_link_inside_a_run_folder_is_refused(tmp_path: Path, clean_env, victim: Path, inner: str, capsys):
    run = finished_run(tmp_path / "run")
    (run / inner).parent.mkdir()
    (run / inner).symlink_to(victim / "file")
    for command in ("report", "resume", "compare"):
        assert_refused(run, command, clean_env, run / inner, "a symbolic link", victim, capsys)


@pytest.mark.parametrize("name", ["state.json", "environment.json", "records.jsonl", "plan.json"])
@pytest.mark.parametrize("command", ["report", "compare", "resume"])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, clean_env, victim: Path, name: str, command: str):
    run = finished_run(tmp_path / "run")
    (run / name).unlink()
    os.mkfifo(run / name)
    assert_refused(run, command, clean_env, run / name, "a FIFO", victim)


def test_a_device_node_is_refused_and_never_opened(tmp_path: Path, clean_env, victim: Path, capsys):
    run = finished_run(tmp_path / "run")
    (run / "summary.md").unlink(missing_ok=True)
    try:
        os.mknod(run / "summary.md", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's numbers
    except PermissionError:
        pytest.skip("making a device node needs root")
    assert_refused(run, "report", clean_env, run / "summary.md", "a device", victim, capsys)


@pytest.mark.parametrize("name", ["summary.md", "records.jsonl", "state.json"])
def test_a_folder_where_a_file_belongs_is_refused(tmp_path: Path, clean_env, victim: Path, name: str, capsys):
    run = finished_run(tmp_path / "run")
    (run / name).unlink(missing_ok=True)
    (run / name).mkdir()
    (run / name / "inside").write_text("x")
    assert_refused(run, "report", clean_env, run / name, "a folder", victim, capsys)


def test_a_file_where_a_folder_belongs_is_refused(tmp_path: Path, clean_env, victim: Path, capsys):
    run = finished_run(tmp_path / "run")
    (run / "plots").write_text("not a folder")
    for command in ("report", "resume"):
        assert_refused(run, command, clean_env, run / "plots", "a regular file", victim, capsys)


def test_a_clean_finished_run_still_reports_and_resumes(tmp_path: Path, clean_env):
    """The control: the same folders without a planted entry go through every command."""
    run = finished_run(tmp_path / "run")
    for command in ("report", "resume"):
        proc = run_cli(COMMANDS[command](run), clean_env, timeout=TIMEOUT)
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    assert (run / "summary.md").is_file() and (run / "results.csv").is_file()
    assert json.loads((run / "state.json").read_text())["state"] == "complete"
    assert not (run / ".jobs").exists()
    proc = run_cli(COMMANDS["compare"](run), clean_env, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the primitives ------------------------------------------------------------------------------


def test_write_atomic_refuses_links_at_the_name_and_the_temporary_name(tmp_path: Path, victim: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "a.json").symlink_to(victim / "file")
    with pytest.raises(runfiles.UnsafeRunFile, match=r"a\.json is a symbolic link"):
        runfiles.write_atomic(run, run / "a.json", b"x")
    (run / "b.json.partial").symlink_to(victim / "file")  # a stale temporary is unlinked, never followed
    runfiles.write_atomic(run, run / "b.json", b"data")
    assert (run / "b.json").read_bytes() == b"data" and not os.path.lexists(run / "b.json.partial")
    assert (victim / "file").read_text() == "precious\n"


def test_a_linked_parent_is_refused_before_anything_is_made(tmp_path: Path, victim: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "plots").symlink_to(victim / "dir", target_is_directory=True)
    with pytest.raises(runfiles.UnsafeRunFile, match="plots is a symbolic link, not a folder"):
        runfiles.write_atomic(run, run / "plots" / "x.png", b"png")
    with pytest.raises(runfiles.UnsafeRunFile):
        runfiles.make_folder(run, run / "plots" / "deeper")
    assert not any((victim / "dir").iterdir())


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "s.json").write_bytes(b"old")

    def breaks(f) -> None:
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        runfiles.write_atomic(run, run / "s.json", breaks)
    assert (run / "s.json").read_bytes() == b"old" and not os.path.lexists(run / "s.json.partial")


def test_reading_a_fifo_returns_at_once_with_an_error(tmp_path: Path):
    os.mkfifo(tmp_path / "state.json")
    with pytest.raises(runfiles.UnsafeRunFile, match=r"state\.json is a FIFO"):
        runfiles.read_bytes(tmp_path, tmp_path / "state.json")


def test_a_record_appended_through_a_link_is_refused(tmp_path: Path, victim: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").symlink_to(victim / "file")
    with pytest.raises(runfiles.UnsafeRunFile):
        append_record(run, row())
    assert (victim / "file").read_text() == "precious\n"


# -- a record glued to a cut one -----------------------------------------------------------------


def test_a_record_glued_to_a_cut_one_is_recovered_and_the_cut_is_named(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    first, second, third = (json.dumps(row(i)) for i in range(3))
    cut = first[: len(first) // 2]  # ends inside the history list: nested objects before the cut
    (run / "records.jsonl").write_text(f"{cut}{second}\n{third}\n")
    with pytest.warns(UserWarning) as caught:
        rows = read_records(run)
    assert [r["repeat"] for r in rows] == [1, 2]
    (message,) = [str(w.message) for w in caught]
    assert (
        message == f"{run / 'records.jsonl'}:1: 1 whole record(s) recovered, {len(cut)} byte(s) of a cut record dropped"
    )


def test_two_whole_records_on_one_line_are_both_kept(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text(json.dumps(row(0)) + json.dumps(row(1)) + "\n")
    with pytest.warns(UserWarning, match="2 whole record.s. recovered, 0 byte"):
        assert [r["repeat"] for r in read_records(run)] == [0, 1]


def test_a_cut_record_at_the_end_of_the_file_is_still_a_torn_line(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    whole = json.dumps(row(0))
    (run / "records.jsonl").write_text(whole + "\n" + whole[:40])
    with pytest.warns(UserWarning, match=":2: torn last line"):
        assert len(read_records(run)) == 1


# -- an edited plan.json -------------------------------------------------------------------------


def edit_plan(run: Path, change) -> None:
    plan = json.loads((run / "plan.json").read_text())
    change(plan)
    (run / "plan.json").write_text(json.dumps(plan))


PLAN_EDITS = {
    "unknown dataset": (lambda p: p["tasks"][0]["dataset"].update(name="imagenet"), "unknown dataset 'imagenet'"),
    "epochs as text": (lambda p: p["tasks"][0]["train"].update(epochs="5"), "train.epochs"),
    "negative timeout": (lambda p: p["options"].update(timeout_s=-5), "options.timeout_s: must be a number"),
    "infinite timeout": (lambda p: p["options"].update(timeout_s=float("inf")), "options.timeout_s"),
    "timeout as text": (lambda p: p["options"].update(timeout_s="60"), "options.timeout_s"),
    "unknown option": (lambda p: p["options"].update(gpus=8), "options.gpus: unknown option"),
    "unknown backend": (lambda p: p["options"].update(backends=["mxnet"]), "options.backends"),
    "repeats zero": (lambda p: p["options"].update(repeats=0), "options.repeats"),
    "repeats a flag": (lambda p: p["options"].update(repeats=True), "options.repeats"),
    "task repeats zero": (lambda p: p["options"].update(task_repeats={"a": 0}), "options.task_repeats"),
    "task repeats a list": (lambda p: p["options"].update(task_repeats=[3]), "options.task_repeats"),
    "seed negative": (lambda p: p["options"].update(seed=-1), "options.seed"),
    "reference unknown": (lambda p: p["options"].update(reference="mxnet"), "options.reference"),
    "no tasks": (lambda p: p.update(tasks=[]), "tasks: expected a non-empty list"),
    "options a list": (lambda p: p.update(options=[]), "options: expected a table"),
}


@pytest.mark.parametrize("case", PLAN_EDITS)
def test_an_edited_plan_is_refused_naming_the_key_before_anything_runs(tmp_path: Path, case: str, capsys):
    run = finished_run(tmp_path / "run", records=0)  # a row left to run: a bad plan must not start it
    change, text = PLAN_EDITS[case]
    edit_plan(run, change)
    before = snapshot(run)
    code, out, err = bench_main(COMMANDS["resume"](run), capsys)
    assert code == 2, out + err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {run / 'plan.json'}: not a plan this version can run") and text in line, line
    assert snapshot(run) == before


# -- the second round of hostile folders ---------------------------------------------------------


def test_a_hard_linked_run_file_is_refused_before_a_write_but_compared(tmp_path: Path, clean_env, victim, capsys):
    run = finished_run(tmp_path / "run")
    (run / "records.jsonl").unlink()
    os.link(victim / "file", run / "records.jsonl")  # a resume would append the row to the victim
    assert_refused(run, "resume", clean_env, run / "records.jsonl", "", victim, capsys, "has 2 hard links")
    assert (victim / "file").read_text() == "precious\n"
    empty = tmp_path / "empty"  # no rows, as the linked file holds none: nothing in common to refuse it for
    empty.mkdir()
    (empty / "records.jsonl").write_text("")
    # reading a hard link writes nothing: not refused for the link; the complete run's records.jsonl holds none of
    # its rows (the victim's text), which compare says (exit 2) as `report` does
    code, _, err = bench_main(["compare", str(run), str(empty)], capsys)
    assert code == 2 and "hard link" not in err and "Traceback" not in err, err
    assert "records.jsonl holds no readable record of the" in err and "this complete run recorded" in err, err


def test_a_folder_named_like_the_kept_unreadable_environment_is_refused(tmp_path: Path, clean_env, victim, capsys):
    run = finished_run(tmp_path / "run")
    (run / "environment.json").write_text("{")
    (run / "environment.json.unreadable").mkdir()
    assert_refused(run, "resume", clean_env, run / "environment.json.unreadable", "a folder", victim, capsys)


def make_nested(top: Path, name: str, depth: int) -> None:
    """``top/name/name/...`` ``depth`` deep, made one level at a time through descriptors (no path limit)."""
    top.mkdir(exist_ok=True)
    fd = os.open(top, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        fd, old = os.open(name, os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)


def remove_nested(top: Path, name: str) -> None:
    """Undo ``make_nested`` from the top, two descriptors at a time: the level under ``top/name`` moves up to
    take its place, one level a round. (A descriptor per level, deepest removed first, passed a user's limit of
    1,024 open files, and the lane, its descriptors gone, failed every test after: the suite run as a user who
    is not root, 2026-12-07.)"""
    below = ".up"
    top_fd = os.open(top, os.O_RDONLY)
    try:
        while True:
            try:
                fd = os.open(name, os.O_RDONLY, dir_fd=top_fd)
            except FileNotFoundError:
                return
            try:
                os.rename(name, below, src_dir_fd=fd, dst_dir_fd=top_fd)
                deeper = True
            except FileNotFoundError:
                deeper = False
            finally:
                os.close(fd)
            os.rmdir(name, dir_fd=top_fd)
            if not deeper:
                return
            os.rename(below, name, src_dir_fd=top_fd, dst_dir_fd=top_fd)
    finally:
        os.close(top_fd)


def test_folders_nested_thousands_deep_are_walked_without_recursion(tmp_path: Path, capsys):
    """Nor a descriptor per level: the walk runs with 256 descriptors to spare (a user's limit is often 1,024)."""
    run = finished_run(tmp_path / "run")
    make_nested(run / "logs", "d", 1500)
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 256, limits[1]))
        code, _, err = bench_main(COMMANDS["report"](run), capsys)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        remove_nested(run / "logs", "d")  # pytest's own clean-up recurses once per level
    assert code == 0 and "Traceback" not in err and (run / "summary.md").is_file()


def test_a_path_too_long_for_the_system_is_one_line(tmp_path: Path, clean_env, victim, capsys):
    run = finished_run(tmp_path / "run")
    make_nested(run, "x" * 200, 30)  # 30 x 200 characters: past PATH_MAX
    code, _, err = bench_main(COMMANDS["report"](run), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot be read" in err, err


def test_a_run_file_too_large_to_read_is_refused_by_its_size(tmp_path: Path, capsys):
    run = finished_run(tmp_path / "run")
    with open(run / "records.jsonl", "r+b") as f:
        f.truncate(64 << 30)  # sparse: 64 GB claimed, nothing on disk
    code, _, err = bench_main(COMMANDS["report"](run), capsys)
    assert code == 2 and f"refused: {run / 'records.jsonl'} is 68,719,476,736 bytes" in err, err


def test_a_line_of_nested_openings_is_given_up_on_within_the_budget(tmp_path: Path, monkeypatch):
    """Recovering records from a damaged line tries each "{": a bounded number of tries (results.MAX_STARTS),
    not one per opening, so a 1.2 MB line of them cannot cost its length squared."""
    from bench.core import results

    tries = []
    decode = json.JSONDecoder.raw_decode
    monkeypatch.setattr(
        json.JSONDecoder, "raw_decode", lambda self, s, idx=0: tries.append(idx) or decode(self, s, idx)
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text('{"k":{' * 200_000 + "\n" + json.dumps(row(0)) + "\n")
    with pytest.warns(UserWarning, match=":1: not JSON"):
        assert [r["repeat"] for r in read_records(run)] == [0]
    assert 0 < len(tries) <= results.MAX_STARTS + 2 < 200_000  # + json.loads's own call on each of the 2 lines


def test_integers_past_pythons_digit_limit_are_named_not_a_traceback(tmp_path: Path, capsys):
    run = finished_run(tmp_path / "run")
    (run / "state.json").write_text('{"wall_s": 1' + "0" * 5000 + "}")
    code, _, err = bench_main(COMMANDS["report"](run), capsys)
    assert code == 0 and f"warning: {run / 'state.json'}: not valid JSON" in err and "Traceback" not in err
    edit_plan(run, lambda p: None)
    (run / "plan.json").write_text((run / "plan.json").read_text().replace('"repeats": 1', '"repeats": 1' + "0" * 5000))
    code, _, err = bench_main(COMMANDS["resume"](run), capsys)
    assert code == 2 and f"error: {run / 'plan.json'}: not valid JSON" in err, err


def test_an_edited_resume_history_is_started_again(tmp_path: Path, capsys):
    run = finished_run(tmp_path / "run")
    (run / "environment.json").write_text(json.dumps({"run_id": "r", "resumed": "x"}))
    code, _, err = bench_main(COMMANDS["resume"](run), capsys)
    assert code == 0, err
    assert len(json.loads((run / "environment.json").read_text())["resumed"]) == 1


def test_the_out_probe_never_writes_through_a_planted_name(tmp_path: Path, victim: Path):
    from bench.run.runfolder import check_writable

    out = tmp_path / "out"
    out.mkdir()
    for pid in range(os.getpid() - 5, os.getpid() + 5):  # where the probe's name used to be predictable
        (out / f".bench-probe-{pid}").symlink_to(victim / "file")
    check_writable(out)
    assert (victim / "file").read_text() == "precious\n"
