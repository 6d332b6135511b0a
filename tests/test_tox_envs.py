"""tox.ini's environments, read as tox reads them: each runs with the env's own python."""

from __future__ import annotations

import configparser
import shlex

import pytest

from tests.conftest import REPO

TOX = configparser.ConfigParser(interpolation=None)
TOX.read(REPO / "tox.ini", encoding="utf-8")
ENVS = ["py", *(s.split(":", 1)[1] for s in TOX.sections() if s.startswith("testenv:"))]


def section(env: str) -> configparser.SectionProxy:
    return TOX["testenv" if env == "py" else f"testenv:{env}"]


def commands(env: str) -> list[list[str]]:
    """An env's commands as argument lists (an env without its own inherits [testenv]'s, as in tox)."""
    raw = section(env).get("commands") or TOX["testenv"]["commands"]
    return [shlex.split(line) for line in raw.strip().splitlines() if line.strip()]


@pytest.mark.parametrize("env", ENVS)
def test_every_command_runs_through_the_envs_python(env: str):
    """tox 4 refuses a program from outside the env unless allowlisted: `tox -e lint` failed at `ruff` ('ruff is
    not allowed'), since the env reuses the system's packages and pip installs no ruff script into it."""
    allowed = set(section(env).get("allowlist_externals", "").split())
    for cmd in commands(env):
        assert cmd[0] == "python" or cmd[0] in allowed, f"[{section(env).name}] runs {cmd[0]!r}: use python -m"


def test_the_header_names_every_env():
    """The comment at the top of tox.ini is the list of envs a reader sees: `fast` was missing from it."""
    header = "\n".join(line for line in (REPO / "tox.ini").read_text().splitlines() if line.startswith("#"))
    assert [env for env in ENVS if f"tox -e {env} " not in header.replace("\n", " \n")] == []
