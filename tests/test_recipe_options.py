"""`--epochs N` and `--max-train N` (run, all, tune, zoo): they override the task spec after its profile, are kept in
plan.json (--resume runs them) and the records (compare reads a recipe row), refuse bad values in one line (exit 2),
and are not combined with an explicit --budget, which sizes the same settings (a tune's default budget holds its race
and leaves its rows as given)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from bench.core.spec import SpecError, check_fits_data, load_task, parse_task, spec_from_dict
from bench.measure.budget import parse_duration
from bench.run import budget_cli, cli, runner, tune
from bench.run.recipe_cli import with_recipe_options
from bench.run.tune import config_spec
from bench.run.tune_budget import DEFAULT_TUNE_BUDGET
from tests.conftest import TINY_TASK, only_run_dir, records, run_cli
from tests.faults import backend_env


def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TASK)
    return path


def test_the_options_override_the_profile_and_name_themselves_in_flags_and_profile_changes(tmp_path: Path):
    task = load_task(str(tiny(tmp_path)), "quick")
    (t,) = with_recipe_options([task], 1, 128)
    assert (t.train.epochs, t.dataset.max_train, t.flags) == (1, 128, ("dataset.max_train", "train.epochs"))
    assert t.profile_changes == (("dataset.max_train", 128, 300), ("train.epochs", 1, 2))
    assert spec_from_dict(json.loads(json.dumps(t.to_dict()))) == t  # as plan.json keeps it for --resume
    (back,) = with_recipe_options([task], 2, None)  # the file's own value: no change to name, the flag kept
    assert back.profile_changes == () and back.flags == ("train.epochs",)
    assert with_recipe_options([task], None, None) == [task]
    (capped,) = with_recipe_options([task], None, 10)  # the check before any worker names the option
    with pytest.raises(SpecError, match=r"64 is more than the 10 training images --max-train 10 leaves \(a batch"):
        check_fits_data(capped, 10)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--epochs", "0"], "argument --epochs: must be an integer in 1..10,000, got 0"),
        (["--epochs", "2.5"], "argument --epochs: expected an integer, got '2.5'"),
        (["--max-train", "-1"], "argument --max-train: must be an integer in 0..2,147,483,647, got -1"),
    ],
)
@pytest.mark.parametrize("command", ["run", "all", "tune", "zoo"])
def test_a_bad_value_is_one_line_exit_2(tmp_path: Path, capsys, command: str, argv: list[str], says: str):
    task = [str(tiny(tmp_path))] if command in ("run", "tune") else []
    with pytest.raises(SystemExit) as e:
        cli.main([command, *task, *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and says in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "--epochs", "1", "--budget", "5m"], "error: --epochs: not with --budget, which sizes the epochs"),
        (["all", "--max-train", "500", "--budget", "5m"], "error: --max-train: not with --budget"),
        (["all", "--best", "--epochs", "1", "--budget", "20m"], "error: --epochs: not with --budget"),
        (["tune", "--epochs", "1", "--budget", "20m"], "error: --epochs: not with --budget, which sizes the epochs"),
        (["zoo", "--best", "--max-train", "64", "--budget", "20m"], "error: --max-train: not with --budget"),
    ],
)
def test_beside_what_sizes_the_same_settings_it_is_refused_before_anything_runs(
    tmp_path: Path, capsys, argv: list[str], says: str
):
    task = [str(tiny(tmp_path))] if argv[0] in ("run", "tune") else []
    argv = [*argv[:1], *task, *argv[1:], "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(says), err
    assert not (tmp_path / "o").exists()


def test_bench_all_with_epochs_runs_unbudgeted_and_says_so(tmp_path: Path, capsys, monkeypatch):
    """`bench all` sizes every task to its default 5-minute budget, epochs included: --epochs would have been
    overwritten. Given, the budget is not applied (said in a line) and every task runs at the epochs given."""

    class Started(Exception):
        pass

    def started(tasks, opts, **kw):
        raise Started(tasks)

    monkeypatch.setattr(budget_cli, "fit", lambda *a, **kw: pytest.fail("the budget sized the run"))
    monkeypatch.setattr(runner, "run_suite", started)  # looked up when the run starts (cli)
    with pytest.raises(Started) as e:
        cli.main(["all", "--epochs", "2", "--profile", "quick", "--out", str(tmp_path / "o")])
    tasks = e.value.args[0]
    assert len(tasks) >= 6 and {t.train.epochs for t in tasks} == {2}
    assert all("train.epochs" in t.flags for t in tasks)
    assert "--epochs set the recipe: the run is not sized to a budget (--budget)" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["tune", "TINY"], ["all", "--best"], ["zoo", "--best"]])
def test_a_tuning_run_takes_them_as_its_recipe_races_within_its_default_budget_and_does_not_size_its_rows(
    tmp_path: Path, capsys, monkeypatch, command: list[str]
):
    """`bench tune` lacked them (and `all --best` refused them): a tune of a shorter recipe needed a task file. Given,
    they are the recipe the race is capped by and the default and best rows train (flags kept, as plan.json holds
    them): the default budget gives way to them as `bench all`'s does, the race keeping its share of it, and no plan
    sizes the rows (``fit``)."""

    class Started(Exception):
        pass

    def started(tasks, opts, budget_s, **kw):
        raise Started(tasks, budget_s, kw)

    monkeypatch.setattr(cli, "tune_plan", lambda *a, **kw: pytest.fail("the budget planned the rows"))
    monkeypatch.setattr(tune, "tune_suite", started)
    argv = [str(tiny(tmp_path)) if a == "TINY" else a for a in command]
    with pytest.raises(Started) as e:
        cli.main([*argv, "--epochs", "2", "--max-train", "1000", "--profile", "quick", "--out", str(tmp_path / "o")])
    tasks, budget_s, kw = e.value.args
    assert tasks and {(t.train.epochs, t.dataset.max_train) for t in tasks} == {(2, 1000)}
    assert all({"train.epochs", "dataset.max_train"} <= set(t.flags) for t in tasks)
    assert budget_s == parse_duration(DEFAULT_TUNE_BUDGET) and kw["plan"] is None and kw["fit"] is False
    assert "--epochs and --max-train set the recipe: the race is held to its share" in capsys.readouterr().out
    (row,) = [config_spec(tasks[0], {}, "best")]  # the rows plan.json lists keep the flags and the sizes
    assert (row.flags, row.train.epochs, row.dataset.max_train) == (tasks[0].flags, 2, 1000)


def test_the_zoo_sweep_takes_them_over_its_own_sizes(tmp_path: Path, monkeypatch):
    """`bench zoo` sizes each architecture's task itself (a few batches, two epochs): --epochs and --max-train set
    them over it, as over a task file's, flags and all."""

    class Started(Exception):
        pass

    def started(tasks, opts, **kw):
        raise Started(tasks)

    monkeypatch.setattr(runner, "run_suite", started)  # looked up when the run starts (cli)
    with pytest.raises(Started) as e:
        cli.main(["zoo", "--models", "mobilenet_v3_small,resnet50", "--epochs", "3", "--max-train", "16", "--out",
                  str(tmp_path / "o")])  # fmt: skip
    tasks = e.value.args[0]
    assert [(t.name, t.train.epochs, t.dataset.max_train) for t in tasks] == [
        ("zoo-mobilenet_v3_small", 3, 16),
        ("zoo-resnet50", 3, 16),
    ]
    assert all(t.flags == ("dataset.max_train", "train.epochs") for t in tasks)


@pytest.mark.e2e
def test_a_run_records_them_its_resume_keeps_them_and_compare_reads_a_recipe_row(tmp_path: Path, clean_env):
    env, task = backend_env(clean_env, tmp_path / "site"), str(tiny(tmp_path))
    plain = run_cli(["run", task, "--backend", "numpy", "--out", str(tmp_path / "a")], env)
    assert plain.returncode == 0, plain.stderr
    sized = ["run", task, "--backend", "numpy", "--repeats", "2", "--epochs", "1", "--max-train", "128"]
    proc = run_cli([*sized, "--out", str(tmp_path / "b")], env)
    assert proc.returncode == 0, proc.stderr
    run = only_run_dir(tmp_path / "b")
    rows = records(run)
    assert [(r["epochs"], r["n_train"], len(r["history"])) for r in rows] == [(1, 128, 1)] * 2
    changes = (
        "dataset.max_train 128 (the command line's; full recipe: 300), "
        "train.epochs 1 (the command line's; full recipe: 2)"
    )
    assert {r["profile_changes"] for r in rows} == {changes}
    (planned,) = json.loads((run / "plan.json").read_text())["tasks"]
    assert planned["flags"] == ["dataset.max_train", "train.epochs"] and planned["train"]["epochs"] == 1
    # interrupted after its first row: the resume runs the second at the plan's sizes, whatever it is given
    (run / "records.jsonl").write_text(json.dumps(rows[0]) + "\n")
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "state": "interrupted", "recorded": 1}))
    resumed = run_cli(["run", "--resume", str(run), "--epochs", "3"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert "--resume runs the plan the run started with: --epochs ignored" in resumed.stdout
    assert [(r["repeat"], r["epochs"], r["n_train"]) for r in records(run)] == [(0, 1, 128), (1, 1, 128)]
    cmp = run_cli(["compare", str(only_run_dir(tmp_path / "a")), str(run)], env)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    assert "| recipe " in cmp.stdout and "n_train=300 epochs=2" in cmp.stdout and "n_train=128 epochs=1" in cmp.stdout


def test_the_full_profile_resized_on_the_command_line_says_so_beside_the_lab_figure(tmp_path: Path):
    """A full-profile row records no profile changes (its recipe is the report's): one run with --epochs is not, and
    the lab-report line under its table says what it ran instead of comparing it silently."""
    from bench.core.results import table
    from bench.report.reported import reported_lines
    from bench.run.runner import base_record

    full = load_task(str(tiny(tmp_path)), "full")
    assert base_record("r", full, "torch", 0, 0)["profile_changes"] is None
    (short,) = with_recipe_options([full], 1, None)
    rec = {**base_record("r", short, "torch", 0, 0), "status": "ok", "test_acc": 0.9, "reported_acc": 0.95}
    assert rec["profile_changes"] == "train.epochs 1 (the command line's; full recipe: 2)"
    (line, _) = reported_lines(table([rec]))
    assert line.endswith(
        "Not comparable as it stands: the full recipe was run with train.epochs 1 (the command line's; full "
        "recipe: 2), while the report's figure is the recipe's as written."
    ), line


def test_their_flags_leave_a_task_files_scaling_words_as_the_files(tmp_path: Path):
    """An error about the task file's worker counts suggests the file's `mode = "weak"`; it suggested `--scaling
    weak` whenever the command line had set any key, --epochs included, though it had set no scaling."""
    data = tomllib.loads(TINY_TASK.replace("batch_size = 64", "batch_size = 32") + "[distributed]\nworkers = [1, 2]\n")
    spec = with_recipe_options([parse_task(data, source="tiny.toml")], 1, None)[0].to_dict()
    spec["distributed"] = {**spec["distributed"], "workers": [1, 3]}
    with pytest.raises(SpecError) as e:
        spec_from_dict(spec)
    assert str(e.value).endswith('(a multiple of every worker count, or mode = "weak")'), e.value
