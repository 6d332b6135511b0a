"""The docs' relative links resolve: each target file exists and each ``#anchor`` is a heading in it; CI runs
the README's install and test commands.

docs/tasks.md once linked ``docs/zoo.md`` from inside docs/, which GitHub resolves to docs/docs/zoo.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from bench.core.spec import DecoupleSpec, ExplainSpec
from bench.run.cli import build_parser
from tests.conftest import REPO

PAGES = sorted([REPO / "README.md", REPO / "results" / "README.md", *(REPO / "docs").glob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but hyphens and underscores dropped, spaces to '-'."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans hold example syntax, not links
    return [a or b for a, b in LINK.findall(text)]


def test_the_slug_is_githubs():
    assert slug("Regression benchmarks (pytest-benchmark)") == "regression-benchmarks-pytest-benchmark"
    assert slug("The `[knobs]` table, step by step") == "the-knobs-table-step-by-step"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves_from_its_page(page: Path):
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no {dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(REPO)})")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


REPO_PATH = re.compile(r"`((?:bench|backends|datasets|tests)/[\w/.\-]+\.(?:py|toml|txt|md))`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_file_a_page_names_in_code_is_in_the_repository(page: Path):
    """The Extending recipes send a new developer to files by name (`bench/core/catalog.py`): a moved or renamed
    file must take its docs along."""
    missing = sorted({m for m in REPO_PATH.findall(page.read_text(encoding="utf-8")) if not (REPO / m).exists()})
    assert not missing, f"{page.relative_to(REPO)} names files that are not in the repository: {', '.join(missing)}"


def readme_commands() -> tuple[str, str]:
    """The README's install and test commands: the lines of its "Install, run, test" block whose comments say
    "install" and "the test suite"."""
    block = FENCE.findall((REPO / "README.md").read_text(encoding="utf-8").split("## Install, run, test", 1)[1])[0]
    lines = [line.partition("#") for line in block.strip("`\n").splitlines()]
    install = [cmd.strip() for cmd, _, comment in lines if comment.strip().startswith("install")]
    test = [cmd.strip() for cmd, _, comment in lines if comment.strip().startswith("the test suite")]
    assert len(install) == len(test) == 1, f"README: expected one install and one test command, got {install} {test}"
    return install[0], test[0]


STUB = '#!/bin/sh\nprintf \'%s\\n\' "${0##*/} $*" >> "$CI_RAN"\n'


@pytest.mark.parametrize("browser", [True, False], ids=["browser-installed", "no-browser"])
def test_ci_runs_exactly_the_readmes_install_and_test_commands(tmp_path: Path, browser: bool):
    """The rule (README: "CI runs exactly these two commands"): .ci/run runs the README's install and test commands
    and nothing else but installing the system packages tests need (apt-get). It runs here with every command it
    may call a stub that records its arguments, and nothing else on PATH: any other program fails it."""
    install, test = readme_commands()
    stubs, ran = tmp_path / "bin", tmp_path / "ran"
    stubs.mkdir()
    names = {install.split()[0], test.split()[0], "apt-get", *(("chromium", "chromedriver") if browser else ())}
    for name in names:
        (stubs / name).write_text(STUB)
        (stubs / name).chmod(0o755)
    dirname = shutil.which("dirname")
    assert dirname, "no dirname on PATH"
    (stubs / "dirname").symlink_to(dirname)  # .ci/run's `cd "$(dirname "$0")/.."`
    env = {"PATH": str(stubs), "CI_RAN": str(ran)}
    proc = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(REPO / ".ci" / "run")], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    commands = [line.strip() for line in ran.read_text().splitlines()]
    system = [c for c in commands if c.startswith("apt-get ")]
    assert [c for c in commands if c not in system] == [install, test]
    assert all(c.split()[1] in ("update", "install") for c in system), system
    assert bool(system) != browser  # the browser the page tests open, installed only where it is missing


def test_the_phase_keys_block_shows_each_keys_default():
    """docs/experiments.md's block "The task keys of the phases, with their defaults" showed `gradcam = true` and
    `saliency = true`, whose defaults are false: a key shown at another value than its default must say so in its
    comment ("off unless set")."""
    text = (REPO / "docs" / "experiments.md").read_text(encoding="utf-8")
    block = re.search(r"## The task keys of the phases, with their defaults\s+```toml\n(.*?)```", text, re.S)
    assert block, "docs/experiments.md: no toml block under 'The task keys of the phases, with their defaults'"
    shown = tomllib.loads(block.group(1))
    said_otherwise = set(re.findall(r"^(\w+) = .*#.*off unless set", block.group(1), re.M))
    wrong = []
    for section, spec in (("explain", ExplainSpec), ("decouple", DecoupleSpec)):
        defaults = {f.name: f.default for f in dataclasses.fields(spec)}
        for key, value in shown[section].items():
            assert key in defaults, f"docs/experiments.md: {section}.{key} is no key of {spec.__name__}"
            default = list(defaults[key]) if isinstance(defaults[key], tuple) else defaults[key]
            if value != default and key not in said_otherwise:
                wrong.append(f"{section}.{key} = {value!r} (default {default!r})")
    assert not wrong, "docs/experiments.md shows as defaults: " + ", ".join(wrong)


def test_the_layout_in_tasks_md_names_every_package_of_bench():
    """docs/tasks.md's "Layout of the repository" left out bench/history/ once it was added."""
    text = (REPO / "docs" / "tasks.md").read_text(encoding="utf-8").split("## Layout of the repository", 1)[1]
    layout = FENCE.findall(text)[0]
    packages = sorted(p.parent.name for p in (REPO / "bench").glob("*/__init__.py"))
    missing = [p for p in packages if not re.search(rf"^  {p}/", layout, re.M)]
    assert not missing, f"docs/tasks.md's layout leaves out bench/{', bench/'.join(missing)}"


BENCH_COMMAND = re.compile(r"python -m bench ([a-z][^`#|\n]*)")
STAND_IN = re.compile(r"\[|\.\.\.|…|\b(N|DURATION|RUN|TASK|TASK_OR_TOML)\b")  # syntax, not a command line


def doc_commands() -> list[tuple[str, list[str]]]:
    """Every whole `python -m bench ...` command line the pages show, as ("page:line", argv); lines written
    with stand-ins (`[options]`, `RUN`, `N`) and a command named alone in prose left out."""
    found = []
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for m in BENCH_COMMAND.finditer(line):
                args = m.group(1).strip().rstrip(".,;:)")
                try:
                    argv = shlex.split(args)
                except ValueError:
                    continue
                if STAND_IN.search(args) or "/" in argv[0] or (len(argv) == 1 and argv[0] != "list"):
                    continue
                found.append((f"{page.relative_to(REPO)}:{number}", argv))
    return found


def test_every_bench_command_a_page_shows_parses():
    """A renamed or dropped option must take the docs along: each command line a page shows is parsed by the
    real parser (nothing runs)."""
    parser = build_parser()
    commands = doc_commands()
    assert len(commands) > 20, commands  # the pages show dozens: the pattern still finds them
    refused = []
    for where, argv in commands:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(argv)
        except SystemExit as e:
            if e.code:
                refused.append(f"{where}: {' '.join(argv)}: {err.getvalue().strip().splitlines()[-1]}")
    assert not refused, "\n".join(refused)


def _duration_s(text: str) -> float:
    """'5m', '30 min', '2 minutes', '0.020 s' -> seconds."""
    m = re.fullmatch(r"([\d.]+)\s*(\w*)", text.strip())
    assert m, f"not a figure: {text!r}"
    return float(m.group(1)) * (60 if m.group(2).startswith("m") and m.group(2) != "ms" else 1)


def _constants() -> list[tuple[str, str, float]]:
    """(page, the sentence with the figure as its one group, the code's value): the defaults, thresholds and
    formula constants the pages state, read from where the code keeps them."""
    from bench.core.parity import CHECKPOINTS
    from bench.core.spec import EvalSpec, RuntimeSpec
    from bench.history.check import MIN_POOL, Thresholds
    from bench.measure import budget, parity, steady
    from bench.measure.timing import MIN_TIME_DELTA_S
    from bench.run import budget_cli, tune, tune_budget
    from bench.run.parity import HELD_OUT, IMAGES

    runtime, evaluation = RuntimeSpec(), EvalSpec()
    return [
        ("timing.md", r"`runtime\.timed_steps` steps \(default (\d+)\)", runtime.timed_steps),
        ("timing.md", r"`MIN_WINDOW_S` = ([\d.]+) s", steady.MIN_WINDOW_S),
        ("timing.md", r"all --budget DURATION` \(default `(\w+)`", _duration_s(budget_cli.DEFAULT_BUDGET)),
        ("timing.md", r"a ratio within ([\d.]+)x \(`CALIBRATION_NOISE`\)", budget.CALIBRATION_NOISE),
        ("timing.md", r"is read (\d+) more times", budget.CONFIRM_READINGS),
        ("timing.md", r"until every row's timed window lasts (\d+) s\s+\(`WINDOW_GOAL_S`", budget.WINDOW_GOAL_S),
        ("timing.md", r"`PROCESSES_A_SIDE` \((\d+)\)", budget.PROCESSES_A_SIDE),
        ("timing.md", r"\(`--min-time-delta`, default ([\d.]+ s)\)", MIN_TIME_DELTA_S),
        ("timing.md", r"at most one line per (\d+) s", steady.PROGRESS_EVERY_S),
        ("tuning.md", r"`--budget` \(default (\d+ min)", _duration_s(tune_budget.DEFAULT_TUNE_BUDGET)),
        ("tuning.md", r"The race gets (\d+)% of the budget", 100 * tune_budget.RACE_SHARE),
        ("tuning.md", r"\(at least (\d+ minutes): torch\.compile", tune.MIN_TRIAL_TIMEOUT_S),
        ("tuning.md", r"until it has (three) in all \(`MIN_PROCESSES`", tune.MIN_PROCESSES),
        ("history.md", r"\[--z ([\d.]+)\]", Thresholds.z),
        ("history.md", r"\[--min-change ([\d.]+)\]", Thresholds.min_change),
        ("history.md", r"\[--lookback (\d+)\]", Thresholds.lookback),
        ("history.md", r"a step under (\d+)% is not reported", 100 * Thresholds.min_step),
        ("history.md", r"A pool is used from (\d+) changes or more \(`MIN_POOL`", MIN_POOL),
        ("methodology.md", r"at most \*\*(\d+) x the largest floor so far\*\*", parity.FACTOR),
        ("methodology.md", r"\(default 1, 10 and (100) steps\)", CHECKPOINTS[-1]),
        ("methodology.md", r"training images \((\d+) by\s+default\)", IMAGES),
        ("methodology.md", r"the logits of (\d+) held-out images", HELD_OUT),
        ("methodology.md", r"equivalence_margin_pt`, default (\d+) point", evaluation.equivalence_margin_pt),
    ]


WORDS = {"three": 3.0, "half": 0.5}


def test_the_defaults_and_thresholds_the_pages_state_are_the_codes():
    """The pages state the code's constants in prose ("the window must reach ... `MIN_WINDOW_S` = 1 s", "the
    race gets 70% of the budget"): a changed constant must take its sentence along."""
    wrong = []
    for page, pattern, value in _constants():
        text = (REPO / "docs" / page).read_text(encoding="utf-8")
        m = re.search(pattern, text)
        assert m, f"docs/{page}: no sentence matching {pattern!r}"
        said = m.group(1)
        shown = WORDS[said] if said in WORDS else _duration_s(said)
        if shown != pytest.approx(float(value)):
            wrong.append(f"docs/{page}: {m.group(0)!r} says {said}, the code {value}")
    assert not wrong, "\n".join(wrong)


def test_history_md_lists_the_followed_metrics_in_their_order():
    """docs/history.md names the history's series (the metric table's `followed` entries): a metric added to or
    dropped from the series must take the page along."""
    from bench.core.metric_table import METRICS

    text = (REPO / "docs" / "history.md").read_text(encoding="utf-8")
    listed = re.search(r"The followed metrics \(.*?\): (.*?), each with the direction", text, re.S)
    assert listed, "docs/history.md: no 'The followed metrics' sentence"
    followed = [m.column for m in sorted((m for m in METRICS if m.followed is not None), key=lambda m: m.followed)]
    assert re.findall(r"`(\w+)`", listed.group(1)) == followed


def test_zoo_md_table_is_the_zoo_table():
    """docs/zoo.md's architecture table (id, torch and Keras builds, input size, equal, named differences) is
    bench/core/zoo.py's, row for row."""
    from bench.core.zoo import DIFFERENCES, ZOO

    text = (REPO / "docs" / "zoo.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if re.match(r"\| \w+ \| (torchvision|timm):", line)]
    shown = {}
    for line in rows:
        zoo_id, torch, keras, size, equal, differences = [c.strip() for c in line.strip("|").split("|")][:6]
        shown[zoo_id] = (torch, keras, int(size), equal == "yes", tuple(re.findall(r"`(\w+)`", differences)))
    table = {e.id: (e.torch, e.keras, e.input_size, e.equal_network, tuple(e.differences)) for e in ZOO.values()}
    assert shown == table
    keys = re.findall(r"^\| `(\w+)` \|", text, re.M)
    assert keys == list(DIFFERENCES), "docs/zoo.md's table of differences is not bench/core/zoo.py's DIFFERENCES"


def test_the_readmes_backend_defaults_are_each_commands_own():
    """The README's Commands block listed `--backend ... (default: torch,keras)` right under `bench parity`,
    whose default is every backend: each default it shows must be the default of the commands it is shown for."""
    from backends import BACKENDS

    block = FENCE.findall((REPO / "README.md").read_text(encoding="utf-8").split("## Commands", 1)[1])[0]
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))

    def default(command: str) -> str:
        action = next(a for a in sub.choices[command]._actions if "--backend" in a.option_strings)
        return ",".join(action.default)

    parity = re.search(r"^python -m bench parity \S+ \[--backend (\S+)\]", block, re.M)
    assert parity, "README: the parity line shows no [--backend ...] default"
    assert (parity.group(1) == "all" and default("parity") == ",".join(BACKENDS)) or parity.group(1) == default(
        "parity"
    )
    heading = re.search(r"^Options of ([\w, ]+):\n((?:  .*\n)+)", block, re.M)
    assert heading, "README: no 'Options of ...:' heading over the shared options"
    shown = re.search(r"--backend .*\(default: ([\w,-]+)\)", heading.group(2))
    assert shown, "README: the shared options show no --backend default"
    commands = re.split(r",\s*|\s+and\s+", heading.group(1))
    assert [c for c in commands if default(c) != shown.group(1)] == []


def test_the_readmes_task_table_lists_every_builtin_task():
    """A built-in task is a TOML file in bench/tasks/ (``bench all`` runs it): the README's table of them is where a
    user learns the names, and nothing held it to the folder (a QA trial's new task ran in ``bench all`` unlisted)."""
    from bench.core.spec import builtin_tasks

    text = (REPO / "README.md").read_text(encoding="utf-8").split("## Install", 1)[0]
    listed = re.findall(r"^\| `([\w-]+)` \| [^|]*\| [^|]*\| [^|]*\|$", text, re.M)
    assert sorted(listed) == sorted(builtin_tasks()), "README.md's task table is not bench/tasks/*.toml"


def test_the_pages_count_of_zoo_architectures_is_the_zoo_tables():
    """README.md and docs/tasks.md say how many architectures the zoo has: a row added to bench/core/zoo.py must
    reach them (docs/zoo.md, Adding a row)."""
    from bench.core.zoo import ZOO

    said = {
        page: re.findall(r"(\d+) ImageNet architectures|any of (\d+) rows", (REPO / page).read_text(encoding="utf-8"))
        for page in ("README.md", "docs/tasks.md")
    }
    for page, counts in said.items():
        numbers = {int(a or b) for a, b in counts}
        assert numbers == {len(ZOO)}, (
            f"{page} says {sorted(numbers)} zoo architectures; bench/core/zoo.py has {len(ZOO)}"
        )
