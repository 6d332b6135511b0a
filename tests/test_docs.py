"""The docs' relative links resolve: each target file exists and each ``#anchor`` is a heading in it; CI runs
the README's install and test commands.

docs/tasks.md once linked ``docs/zoo.md`` from inside docs/, which GitHub resolves to docs/docs/zoo.md.
"""

from __future__ import annotations

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
