"""Hostile or broken task files and arguments: refused with one clear line, exit 2, no traceback, no files."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from bench.core.spec import SpecError, load_task, parse_task, spec_from_dict
from tests.conftest import TINY_TASK, run_cli

MINIMAL = tomllib.loads(TINY_TASK)


@pytest.mark.parametrize(
    "name",
    [
        "../../../x",
        "/tmp/x",
        "/etc/passwd",
        ".hidden",
        "",
        "a/b",
        "a\\b",
        "..",
        "-rf",
        "x" * 65,
        "tab\tname",
        "new\nline",
        "é",
    ],
)
def test_a_task_name_that_is_not_a_short_slug_is_refused_naming_file_and_key(name: str):
    with pytest.raises(SpecError) as e:
        parse_task({**MINIMAL, "name": name}, source="evil.toml")
    assert str(e.value).startswith("evil.toml: name: expected a short name of letters, digits")


@pytest.mark.parametrize("name", ["tiny", "mnist-lenet5", "a.b_c-1", "X" * 64, "_private"])
def test_a_slug_task_name_is_accepted(name: str):
    assert parse_task({**MINIMAL, "name": name}).name == name


def test_a_plan_entry_goes_through_the_same_validation():
    """plan.json is a file too: a name edited into a path, or a broken structure, is a SpecError."""
    good = parse_task(MINIMAL, source="tiny.toml").to_dict()
    assert spec_from_dict(good) == parse_task(MINIMAL, source="tiny.toml")
    for bad in (
        {**good, "name": "../x"},
        {**good, "model": {**good["model"], "options": [["activation"]]}},
        {**good, "train": {**good["train"], "epochs": "2"}},
        {k: v for k, v in good.items() if k != "train"},
        [good],
    ):
        with pytest.raises(SpecError):
            spec_from_dict(bad)


def test_a_task_file_that_is_not_utf8_is_a_spec_error(tmp_path: Path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(TINY_TASK.replace('"tiny"', '"caf\xe9"').encode("latin-1"))
    with pytest.raises(SpecError, match=r"latin1\.toml: not UTF-8 text"):
        load_task(bad)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def bad_runs(tmp_path: Path) -> list[tuple[list[str], str]]:
    """(arguments, what stderr must say) for every bad input the command line refuses before any work."""
    tiny = write(tmp_path, "tiny.toml", TINY_TASK)
    traversal = write(tmp_path, "evil.toml", TINY_TASK.replace('"tiny"', '"../../../escaped"'))
    absolute = write(tmp_path, "abs.toml", TINY_TASK.replace('"tiny"', f'"{tmp_path}/escaped"'))
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(TINY_TASK.replace('"tiny"', '"caf\xe9"').encode("latin-1"))
    twin = write(tmp_path, "twin.toml", TINY_TASK)
    digits = write(tmp_path, "digits.toml", TINY_TASK.replace("epochs = 2", "epochs = 1" + "0" * 5000))
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    other = write(tmp_path, "other.toml", TINY_TASK + "[profiles.full.train]\nlr = nan\n")  # run under quick
    one_class = write(tmp_path, "one.toml", TINY_TASK.replace("max_train = 300", 'classes = ["3"]\nmax_train = 300'))
    fallback = write(tmp_path, "fb.toml", TINY_TASK.replace("max_train = 300", 'fallback = "bogus"\nmax_train = 300'))
    misspelt = write(tmp_path, "trian.toml", TINY_TASK.replace("[train]", "[trian]"))
    out = ["--out", str(tmp_path / "results")]
    return [
        (["run", str(digits)], "digits.toml: not valid TOML: Exceeds the limit (4300 digits)"),
        (["run", str(fifo)], "fifo.toml: not a regular file"),
        (["run", str(other), "--profile", "quick"], "other.toml: profiles.full.train.lr: expected a number > 0"),
        (["zoo", "--image-size", "100000", *out], "--image-size: must be an integer in 1..2048, got 100000"),
        (["zoo", "--batch", "65537", *out], "--batch: must be an integer in 1..65536, got 65537"),
        (["run", str(one_class)], "one.toml: dataset.classes: expected at least 2 distinct class names"),
        (["run", str(fallback)], "fb.toml: dataset.fallback: expected one of ['auto', 'none'], got 'bogus'"),
        (["run", str(misspelt)], f"{misspelt}: trian: unknown key (expected one of: name, description, seed"),
        (["run", str(traversal)], "evil.toml: name: expected a short name"),
        (["run", str(absolute)], "abs.toml: name: expected a short name"),
        (["run", str(latin1)], "latin1.toml: not UTF-8 text"),
        (["run", str(tiny), str(twin)], f"two tasks are named 'tiny': {tiny} and {twin}"),
        (["run", str(tiny), "--timeout", "0"], "--timeout: must be a number of seconds > 0, got 0"),
        (["run", str(tiny), "--timeout", "-5"], "--timeout: must be a number of seconds > 0, got -5"),
        (["run", str(tiny), "--timeout", "nan"], "--timeout: expected a number, got 'nan'"),
        (["run", str(tiny), "--seed", "-1"], "--seed: must be an integer in 0..2147483647, got -1"),
        (["tune", str(tiny), "--knobs", "", *out], "argument --knobs: no knob named in ''"),
        (["tune", str(tiny), "--knobs", " , ,", *out], "argument --knobs: no knob named in ' , ,'"),
        (["all", "--best", "--knobs", "", *out], "argument --knobs: no knob named in ''"),
        (["tune", str(tiny), "--parity-steps", "2", *out], "error: --parity-steps: not with a tuning run"),
        (["all", "--best", "--parity-steps", "2", *out], "error: --parity-steps: not with a tuning run"),
        (["all", "--out", ""], "argument --out: an empty folder name (give a path; . for this folder)"),
        (["run", str(tiny), "--ray-address", "127.0.0.1:1"], "--ray-address goes with --executor ray"),
        (["run", str(tiny), "--executor", "ray", "--ray-address", "127.0.0.1:1"], "nothing answers at 127.0.0.1:1"),
        (["run", str(tiny), "--executor", "ray", "--ray-address", "headnode"], ray_form("'headnode'")),
        (["run", str(tiny), "--executor", "ray", "--ray-address", "127.0.0.1:abc"], ray_form("'127.0.0.1:abc'")),
        (["run", str(tiny), "--executor", "ray", "--ray-address", "ray://h:99999"], ray_form("'ray://h:99999'")),
        (["report", "x", "--results", " "], "argument --results: an empty folder name"),
        (["compare", "a", "b", "--max-slowdown", "-0.1"], "--max-slowdown: must be >= 0, got -0.1"),
        (["compare", "a", "b", "--max-acc-drop", "-1"], "--max-acc-drop: must be >= 0, got -1"),
        (["compare", "a", "b", "--max-memory-growth", "x"], "--max-memory-growth: expected a number, got 'x'"),
        # a threshold that cannot be meant: accuracy is in [0, 1], a fraction given as a percentage, inf (no gate)
        (["compare", "a", "b", "--max-acc-drop", "2"], "--max-acc-drop: must be in [0, 1]: accuracy is a fraction"),
        (["compare", "a", "b", "--max-acc-drop", "inf"], "--max-acc-drop: must be finite, got inf"),
        (
            ["compare", "a", "b", "--max-slowdown", "50"],
            "--max-slowdown: must be a fraction in [0, 1] (0.1 = 10%), got 50: write 0.5 for 50%",
        ),
        (["compare", "a", "b", "--max-memory-growth", "1.5"], "--max-memory-growth: must be a fraction in [0, 1]"),
        (["compare", "a", "b", "--min-time-delta", "inf"], "--min-time-delta: must be finite, got inf"),
        (["history", "--min-change", "5"], "--min-change: must be a fraction in [0, 1] (0.1 = 10%), got 5"),
        (["history", "--z", "inf"], "--z: must be finite, got inf"),
    ]


def ray_form(given: str) -> str:
    """QA, 2026-12-06: an address Ray cannot parse passed the check, made a run folder, then stopped it."""
    return f"--ray-address: expected HOST:PORT, ray://HOST:PORT or auto, got {given}"


# One test per bad input (a process each, ~1.5 s): a parallel tier (pytest -n) spreads them.
BAD_RUN_IDS = [
    "digits",
    "fifo",
    "other-profile-nan",
    "zoo-image-size",
    "zoo-batch",
    "one-class",
    "bogus-fallback",
    "misspelt-section",
    "traversal",
    "absolute",
    "latin1",
    "twin",
    "timeout-0",
    "timeout-negative",
    "timeout-nan",
    "seed",
    "tune-knobs-empty",
    "tune-knobs-only-commas",
    "all-best-knobs-empty",
    "tune-parity-steps",
    "all-best-parity-steps",
    "out-empty",
    "ray-address-alone",
    "ray-unreachable",
    "ray-address-no-port",
    "ray-address-port-not-a-number",
    "ray-address-port-out-of-range",
    "results-blank",
    "max-slowdown",
    "max-acc-drop",
    "max-memory-growth",
    "max-acc-drop-over-1",
    "max-acc-drop-inf",
    "max-slowdown-percent",
    "max-memory-growth-over-1",
    "min-time-delta-inf",
    "history-min-change-over-1",
    "history-z-inf",
]


def test_every_bad_input_has_a_case_below(tmp_path: Path):
    assert len(bad_runs(tmp_path)) == len(BAD_RUN_IDS)


@pytest.mark.parametrize("case", range(len(BAD_RUN_IDS)), ids=BAD_RUN_IDS)
def test_every_bad_input_exits_2_with_one_line_and_writes_nothing(clean_env, tmp_path: Path, case: int):
    out = tmp_path / "results"
    args, says = bad_runs(tmp_path)[case]
    proc = run_cli([*args, "--out", str(out)] if args[0] == "run" else args, clean_env)
    assert proc.returncode == 2, (args, proc.stderr)
    assert says in proc.stderr, (args, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists() and not (tmp_path.parent / "escaped").exists()
