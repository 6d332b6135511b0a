"""The type checker over bench/, backends/ and datasets/ (mypy.ini), run here so CI's plain `pytest` runs it.

mypy runs in a subprocess and imports no framework: it reads torch's and numpy's inline types. Its cache
(.mypy_cache, .gitignore'd) makes a rerun take 2-10 s on the 2-core VM; a clean clone's first run
analyses torch once (about 45 s of CPU there; mypy.ini says what it skips).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "backends", "datasets")


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200)


@pytest.mark.long  # 44 s of CPU cold in a clean clone (CI), 3-14 s with .mypy_cache: first in its lane, not last
def test_mypy_finds_no_error_in_any_module_of_the_three_packages():
    proc = _mypy()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    checked = re.search(r"no issues found in (\d+) source files", out)
    assert checked, out
    modules = sum(1 for p in PACKAGES for _ in (REPO / p).rglob("*.py"))
    assert int(checked[1]) == modules, f"mypy checked {checked[1]} files, the packages hold {modules}: {out}"


def test_the_configuration_reports_a_type_error(tmp_path):
    # the same settings on a module with one wrong assignment: a config that checks nothing would pass above
    bad = tmp_path / "wrong.py"
    bad.write_text('count: int = "three"\n')
    proc = _mypy(str(bad))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'wrong.py:1: error: Incompatible types in assignment (expression has type "str"' in proc.stdout


def test_every_type_ignore_names_its_code_and_says_why():
    bare = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for p in PACKAGES
        for path in sorted((REPO / p).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "type: ignore" in line and not re.search(r"# type: ignore\[[a-z-]+(, [a-z-]+)*\]  # \S", line)
    ]
    assert not bare, "a type: ignore needs its [code] and a reason after it:\n" + "\n".join(bare)
