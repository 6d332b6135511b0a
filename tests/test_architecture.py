"""The layout's rules, read from the source with ``ast`` (nothing is imported, no framework loaded).

bench/__init__.py and each sub-package's docstring say what may import what; this checks it:
no import cycles among the project's modules, ``bench.core`` depends on nothing else of the
project (nor on a framework), backends depend only on ``bench.core``, ``bench`` reaches a
backend only through the registry, and no backend name is written into ``bench`` outside an
explicit allow-list.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "backends", "datasets")
BACKEND_NAMES = {"torch", "keras", "keras-jax", "keras-torch"}

# Third-party packages bench.core may use: none of them is a deep-learning framework.
CORE_THIRD_PARTY = {
    "numpy": "arrays are the currency between backends and bench",
    "pandas": "results.table: the run files as one table",
}
# Import cycles that another branch of issue #13 removes; delete the entry when it merges.
KNOWN_CYCLES = {}
# Flat backend modules not yet in a folder of their own: they may import each other.
FLAT_BACKENDS: dict[str, str] = {}
# Backend modules that reach into another backend's folder by design: the ones they may import, and why.
BRIDGES: dict[str, tuple[str, ...]] = {
    # Keras's zoo weights come from torch's: its command line (a child process of the Keras backend) converts
    # a torch weights file, building torch's zoo model beside Keras's, as the converter always needs both
    # (docs/zoo.md). One direction: Keras reads torch's builds, torch never Keras's.
    "backends.keras.zoo_convert": ("backends.torch.zoo",),
    # the training-parity check hands weights over in torch's layout: Keras converts a layer list with the numpy
    # converter and a zoo model against its torch twin (in bench.run.parity_worker, which imports torch first)
    "backends.keras.parity": ("backends.convert", "backends.torch.zoo"),
}
# Modules of bench/ allowed to write a backend name, and why.
NAME_ALLOWED = {
    "bench.run.environment": "PACKAGES lists installed package names (torch, keras), not backends",
    "bench.run.gpucheck": "the suite's torch and keras rows against bare torch loops, by design (docs/gpu-check.md)",
}


# What bench.history may import (its docstring): the contract, the report's page shell and backend labels, itself.
HISTORY_PROJECT = ("bench.core", "bench.report", "bench.history")
HISTORY_THIRD_PARTY = {
    "numpy": "the series",
    "pandas": "the store's rows",
    "pyarrow": "checking each Parquet file of the store before DuckDB reads it",
    "duckdb": "the store's query layer (points, normalised)",
    "plotly": "the dashboard's charts (its script, inlined)",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, ast.Module]:
    return {
        module_name(p): ast.parse(p.read_text(), str(p)) for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))
    }


MODULES = project_modules()


def imported(name: str, tree: ast.Module) -> tuple[set[str], set[str]]:
    """(project modules, other top-level packages) a module imports anywhere: top level, functions, TYPE_CHECKING."""
    project, other = set(), set()
    package = name if (REPO / name.replace(".", "/") / "__init__.py").exists() else name.rpartition(".")[0]

    def add(dotted: str) -> None:
        while dotted and dotted not in MODULES:
            dotted = dotted.rpartition(".")[0]
        project.add(dotted) if dotted else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                (add if a.name.split(".")[0] in PACKAGES else lambda d: other.add(d.split(".")[0]))(a.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] not in PACKAGES:
                other.add(base.split(".")[0])
                continue
            for a in node.names:
                add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    project.discard(name)
    return project, other


GRAPH = {name: imported(name, tree) for name, tree in MODULES.items()}


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v][0]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_the_project_modules_are_found():
    assert {"bench.core.spec", "bench.run.worker", "backends", "datasets.registry"} <= MODULES.keys()
    assert "bench.core.spec" in GRAPH["bench.run.worker"][0]  # imports are resolved to project modules


def test_no_import_cycles():
    left = cycles()
    assert left == [], f"import cycles: {left}"


def package_of(module: str) -> str:
    """The unit of the package rules: a sub-package of bench (bench.report), a backend's folder, a module at
    their top level (backends.convert: shared by the backends' folders), or a top-level package (datasets)."""
    parts = module.split(".")
    if len(parts) > 1 and parts[0] in ("bench", "backends"):  # a folder, or a module of the top level
        return ".".join(parts[:2])
    return parts[0]


def package_cycles() -> list[list[str]]:
    """Loops between packages: an import from A to B and another, maybe through others, from B back to A."""
    edges: dict[str, set[str]] = {}
    for name, (project, _) in GRAPH.items():
        edges.setdefault(package_of(name), set()).update(p for p in map(package_of, project) if p != package_of(name))
    reach = {a: set(b) for a, b in edges.items()}
    for k in reach:  # transitive closure (a dozen packages)
        for a in reach:
            if k in reach[a]:
                reach[a] |= reach.get(k, set())
    return sorted(sorted({a, b}) for a in reach for b in reach[a] if a < b and a in reach.get(b, set()))


# Loops between packages still there, and why; delete an entry when its loop is gone (the test says so).
KNOWN_PACKAGE_LOOPS: dict[tuple[str, str], str] = {}


def test_no_loops_between_packages():
    """One direction of flow (spec -> data -> backend -> metrics -> table -> pages): e.g. the report reads
    what the phases wrote, it never imports a phase, and nothing below bench.run imports it."""
    assert package_cycles() == sorted(sorted(pair) for pair in KNOWN_PACKAGE_LOOPS)
    assert package_of("bench.report.summary") == "bench.report" and package_of("backends.torch.zoo") == "backends.torch"


def test_core_imports_nothing_of_the_project_outside_core_and_no_framework():
    stdlib = sys.stdlib_module_names | {"__future__"}
    for name, (project, other) in GRAPH.items():
        if name == "bench.core" or name.startswith("bench.core."):
            outside = sorted(m for m in project if not m.startswith("bench.core"))
            assert outside == [], f"{name} imports {outside}"
            foreign = sorted(other - stdlib - CORE_THIRD_PARTY.keys())
            assert foreign == [], f"{name} imports {foreign}"


def test_backends_import_only_the_core_and_their_own_folder():
    for name, (project, _) in GRAPH.items():
        if not name.startswith("backends"):
            continue
        folder = ".".join(name.split(".")[:2])  # backends.torch for backends.torch.models
        for m in project:
            ok = (
                m.startswith("bench.core")
                or m.startswith("datasets")
                or (name != "backends" and name.count(".") >= 2 and m.startswith(folder + "."))
                or (name == "backends" and m.count(".") == 1 and (REPO / m.replace(".", "/") / "__init__.py").exists())
                or m == folder  # a backend module reads its own description
                or m in BRIDGES.get(name, ())
            )
            assert ok, f"{name} imports {m}"


def test_history_imports_only_core_report_and_itself_and_no_framework():
    stdlib = sys.stdlib_module_names | {"__future__"}
    for name, (project, other) in GRAPH.items():
        if not name.startswith("bench.history"):
            continue
        outside = sorted(m for m in project if not m.startswith(HISTORY_PROJECT))
        assert outside == [], f"{name} imports {outside}"
        foreign = sorted(other - stdlib - HISTORY_THIRD_PARTY.keys())
        assert foreign == [], f"{name} imports {foreign}"


def test_only_the_command_line_reaches_the_history():
    """The history sits after the report in the flow: core, measure, phases and report never import it."""
    for name, (project, _) in GRAPH.items():
        if name.startswith(("bench.core", "bench.measure", "bench.phases", "bench.report")):
            bad = sorted(m for m in project if m.startswith("bench.history"))
            assert bad == [], f"{name} imports {bad}"


# A run's modules (bench/run/__init__.py), each importing only those after it: the plan, the task's data and the run
# folder are read and made without the execution (the command line's checks, the budget, the tuner), and a resume
# calls the runner, never the other way.
RUN_FLOW = ("bench.run.resume", "bench.run.runner", "bench.run.task_data", "bench.run.plan", "bench.run.runfolder")


def test_a_runs_modules_import_one_way():
    for i, name in enumerate(RUN_FLOW):
        before = sorted(m for m in GRAPH[name][0] if m in RUN_FLOW[: i + 1])
        assert before == [], f"{name} imports {before}: the flow is {' -> '.join(RUN_FLOW)}"


def test_bench_reaches_backends_only_through_the_registry():
    for name, (project, _) in GRAPH.items():
        if name.startswith("bench"):
            bad = sorted(m for m in project if m.startswith("backends") and m != "backends")
            assert bad == [], f"{name} imports backend modules {bad}: use backends.load_backend / backends.describe"


def backend_names_written(tree: ast.Module) -> list[tuple[int, str]]:
    return [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in BACKEND_NAMES]


def test_no_backend_name_in_bench_outside_the_allow_list():
    found = {
        name: hits
        for name, tree in MODULES.items()
        if name.startswith("bench") and name not in NAME_ALLOWED and (hits := backend_names_written(tree))
    }
    assert found == {}, f"backend names in central code (ask backends.describe instead): {found}"


@pytest.mark.parametrize("module", sorted(NAME_ALLOWED))
def test_the_allow_list_has_no_stale_entry(module: str):
    assert module in MODULES, f"{module} no longer exists: drop it from NAME_ALLOWED"
    assert backend_names_written(MODULES[module]), f"{module} writes no backend name now: drop it from NAME_ALLOWED"


def test_the_checks_see_a_cycle_and_a_name(tmp_path: Path):
    """The rules are not vacuous: a two-module cycle and a written backend name are both found."""
    a = ast.parse("from bench.core import phase\nx = 'keras-jax'")
    assert backend_names_written(a) == [(2, "keras-jax")]
    saved = dict(GRAPH)
    try:
        GRAPH["bench.core.spec"] = ({"bench.core.catalog"}, set())
        GRAPH["bench.core.catalog"] = ({"bench.core.spec"}, set())
        assert ["bench.core.catalog", "bench.core.spec"] in cycles()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
