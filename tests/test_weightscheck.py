"""--pretrained held against the weights before any worker starts: refused where no row could get them (no file,
no download), never where a file or a download would give them. Downloads are a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from backends import missing_packages
from bench.core import zoo
from bench.core.spec import SpecError, load_task
from bench.run import weightscheck
from bench.run.weightscheck import check_pretrained
from tests.conftest import run_cli
from tests.test_data_sources import FixtureServer

REPO = Path(__file__).resolve().parents[1]
TORCH_FILE, KERAS_FILE = "resnet101-63fe2227.pth", "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"
BOTH = ("torch", "keras")


def closed_port() -> int:
    """A port nothing listens on (bound, then let go): a connection to it is refused, as on an offline machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Empty library caches and weights folder: only what a test puts there exists; every backend installed."""
    monkeypatch.setattr(weightscheck, "missing_packages", lambda name: [])
    for var, name in (("TORCH_HOME", "torch-home"), ("KERAS_HOME", "keras-home"), ("BENCH_WEIGHTS_DIR", "weights")):
        monkeypatch.setenv(var, str(tmp_path / name))
    return tmp_path


@pytest.fixture
def server():
    s = FixtureServer()
    yield s
    s.close()


def publish_at(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    """resnet101's published torch and Keras files served from ``base`` instead of their libraries' hosts."""
    row = zoo.ZOO["resnet101"]
    assert row.torch_weights is not None and row.keras_weights is not None
    moved = {f: dataclasses.replace(getattr(row, f), url=base + "/") for f in ("torch_weights", "keras_weights")}
    monkeypatch.setitem(zoo.ZOO, "resnet101", dataclasses.replace(row, **moved))


def pretrained(name: str = "catsdogs-resnet101", **model) -> list:
    task = load_task(name, "quick")
    return [dataclasses.replace(task, model=dataclasses.replace(task.model, pretrained=True, **model))]


def test_offline_without_the_files_is_refused_naming_each_file_and_where_it_goes(caches, monkeypatch):
    publish_at(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(SpecError) as e:
        check_pretrained(pretrained(), BOTH)
    line = str(e.value)
    assert "\n" not in line and line.startswith(f"{REPO}/bench/tasks/catsdogs-resnet101.toml: --pretrained: ")
    assert "no ImageNet weights for resnet101" in line and "refused" in line, line  # connection refused
    for file in (TORCH_FILE, KERAS_FILE):
        assert f"as $BENCH_WEIGHTS_DIR/{file}" in line, line
    assert f"$BENCH_WEIGHTS_DIR={caches / 'weights'} has no {TORCH_FILE} or {KERAS_FILE}" in line
    assert '[model] weights = "/path/to/file"' in line
    with pytest.raises(SpecError, match=f"PyTorch\\) as \\$BENCH_WEIGHTS_DIR/{TORCH_FILE}, or name"):
        check_pretrained(pretrained(), ("torch",))  # only the backends that run are held to their file
    check_pretrained(pretrained(), BOTH, executor="slurm")  # rows on other machines: not this one's files


def test_what_a_download_would_provide_is_not_refused(caches, monkeypatch, server):
    publish_at(monkeypatch, server.base)
    server.routes.update({f"/{TORCH_FILE}": (b"t", "ok"), f"/{KERAS_FILE}": (b"k", "ok")})
    check_pretrained(pretrained(), ("torch", "keras", "keras-jax"))
    assert sorted(server.log) == sorted([(f"/{KERAS_FILE}", 200), (f"/{TORCH_FILE}", 200)])  # once per URL
    del server.routes[f"/{KERAS_FILE}"]  # the server answers: not there, so the download fails too
    with pytest.raises(SpecError, match=rf"answers 404 .*\(Keras \(TF\)\) as \$BENCH_WEIGHTS_DIR/{KERAS_FILE}, or"):
        check_pretrained(pretrained(), BOTH)


@pytest.mark.parametrize("where", ["weights dir", "library caches"])
def test_a_file_where_the_worker_looks_needs_no_download(caches, monkeypatch, where):
    publish_at(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    if where == "weights dir":
        places = [caches / "weights" / TORCH_FILE, caches / "weights" / KERAS_FILE]
    else:  # torch.hub's checkpoints and keras.utils.get_file's models folder
        hub, keras_models = caches / "torch-home" / "hub" / "checkpoints", caches / "keras-home" / "models"
        places = [hub / TORCH_FILE, keras_models / KERAS_FILE]
    for path in places:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"w")
    check_pretrained(pretrained(), BOTH)


def test_a_hugging_face_file_offline_is_refused_unless_its_cache_has_it(caches, monkeypatch):
    constants = pytest.importorskip("huggingface_hub.constants")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as hf_hub_download reads it
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(caches / "hf"))
    tasks = pretrained("catsdogs-convnext-tiny")
    with pytest.raises(SpecError, match=r"HF_HUB_OFFLINE is set.*as \$BENCH_WEIGHTS_DIR/convnext_tiny\.safetensors"):
        check_pretrained(tasks, ("torch",))
    snapshot = caches / "hf" / "models--timm--convnext_tiny.in12k_ft_in1k"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("abc")
    (snapshot / "snapshots" / "abc").mkdir(parents=True)
    (snapshot / "snapshots" / "abc" / "model.safetensors").write_bytes(b"w")
    check_pretrained(tasks, ("torch",))  # hf_hub_download returns the cache's copy when it cannot ask


def test_a_model_weights_file_that_is_not_there_is_refused(caches, tmp_path):
    with pytest.raises(SpecError, match=rf"model\.weights: {tmp_path}/nothing\.pth is not a file"):
        check_pretrained(pretrained(weights=str(tmp_path / "nothing.pth")), BOTH)
    (tmp_path / "there.pth").write_bytes(b"w")
    check_pretrained(pretrained(weights=str(tmp_path / "there.pth")), BOTH)


def test_run_refuses_before_any_worker_starts(clean_env, tmp_path: Path):
    """`bench run catsdogs-resnet101 --pretrained` offline: exit 2 and one line, no run folder, no worker; the
    machine is made offline by a proxy nothing answers at (urllib's downloads, torch.hub's and Keras's, use it)."""
    if missing_packages("torch") or missing_packages("keras"):
        pytest.skip("both backends' packages are needed for their rows to run")
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = {**clean_env, "https_proxy": proxy, "http_proxy": proxy, "no_proxy": "", "NO_PROXY": ""}
    env.update(TORCH_HOME=str(tmp_path / "th"), KERAS_HOME=str(tmp_path / "kh"))
    out = tmp_path / "results"
    args = ["run", "catsdogs-resnet101", "--pretrained", "--profile", "quick", "--backend", "torch,keras"]
    proc = run_cli([*args, "--out", str(out)], env, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no ImageNet weights for resnet101" in lines[0]
    assert f"$BENCH_WEIGHTS_DIR/{TORCH_FILE}" in lines[0] and f"$BENCH_WEIGHTS_DIR/{KERAS_FILE}" in lines[0]
    assert "worker" not in proc.stdout and not out.exists(), proc.stdout


@pytest.mark.parametrize("arch", ["resnet101", "zoo:convnext_tiny"])
def test_model_weights_is_read_from_the_task_files_folder_with_home_expanded_for_every_model(
    caches, tmp_path, monkeypatch, arch
):
    """QA: a zoo model did not expand `~`, a catalog big model did, and both read a relative path from the repository
    (where workers run), not from the task file. One rule now (``zoo.weights_path``), applied when the task file is
    parsed: `~` expanded, a relative path from the task file's folder, made absolute, so the up-front check, the
    workers and plan.json (a --resume rebuilds the spec from it) read the same file wherever the command ran."""
    from bench.core.spec import spec_from_dict

    home, tasks = tmp_path / "home", tmp_path / "tasks"
    (tasks / "w").mkdir(parents=True)
    home.mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path / "elsewhere")  # the user's working directory: neither the task's nor the repository

    def task(weights: str) -> Path:
        path = tasks / "t.toml"
        path.write_text(
            'name = "t"\n[dataset]\nname = "cifar10"\nchannels = 3\nimage_size = 32\n'
            f'[model]\narch = "{arch}"\npretrained = true\nweights = "{weights}"\n'
            "[train]\nepochs = 1\nbatch_size = 4\nlr = 1e-3\n"
            f'[profiles.quick.model]\nweights = "{weights}"\n'  # the same file in both profiles: no recipe change
        )
        return path

    for weights, file in (("w/x.pth", tasks / "w" / "x.pth"), ("~/x.pth", home / "x.pth")):
        spec = load_task(task(weights), "quick")
        assert spec.model.weights == str(file) and not spec.profile_changes, (weights, spec.model.weights)
        assert spec_from_dict(spec.to_dict()).model.weights == str(file)  # plan.json, as --resume reads it
        assert zoo.weights_path(spec.model.weights) == file
        if arch.startswith("zoo:"):
            assert zoo.weights_file(spec.model) == str(file)  # what the zoo workers load
        with pytest.raises(SpecError, match=rf"model\.weights: {file} is not a file"):
            check_pretrained([spec], BOTH)
        file.write_bytes(b"w")
        check_pretrained([spec], BOTH)
    assert zoo.weights_path("~/y.pth", "/elsewhere") == home / "y.pth"


def test_a_resume_whose_weights_file_is_gone_is_refused_up_front(clean_env, tmp_path):
    """`--resume` had not held the plan's --pretrained tasks against their weights: a model.weights file removed
    since the run started failed each backend's row once the workers had started. Refused now as `bench run`
    refuses it: exit 2, one line naming the file, the run's files as they were."""
    from bench.run.plan import RunOptions, write_plan

    weights, run_dir = tmp_path / "w.pth", tmp_path / "results" / "20261206-000000-abcd"
    weights.write_bytes(b"w")
    run_dir.mkdir(parents=True)
    write_plan(run_dir, pretrained(weights=str(weights)), RunOptions(backends=("torch",)))
    records = run_dir / "records.jsonl"
    records.write_text('{"task": "catsdogs-resnet101", "backend": "torch", "status": "ok"}\n')
    kept = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    weights.unlink()
    proc = run_cli(["run", "--resume", str(run_dir)], clean_env, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"model.weights: {weights} is not a file" in lines[0]
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == kept


def test_an_old_plans_relative_model_weights_is_read_from_the_repository_as_its_first_rows_read_it(tmp_path):
    """A plan.json from before 2026-12-06 may keep a relative model.weights (plans since keep it absolute). Its
    first rows' workers read it from the repository, where they run: a resume makes it absolute from there, so
    the rows it adds load the same file whatever folder a worker runs in, and the up-front check names that file."""
    import json

    from bench.run.plan import RunOptions, read_plan, write_plan
    from bench.run.runfolder import PLAN

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_plan(run_dir, pretrained(weights=str(tmp_path / "w.pth")), RunOptions(backends=("torch",)))
    plan = json.loads((run_dir / PLAN).read_text())
    plan["tasks"][0]["model"]["weights"] = "weights/w.pth"  # as the old parser kept it
    (run_dir / PLAN).write_text(json.dumps(plan))
    (task,), _ = read_plan(run_dir)
    assert task.model.weights == str(REPO / "weights" / "w.pth")
    with pytest.raises(SpecError, match=rf"model\.weights: {REPO}/weights/w\.pth is not a file"):
        check_pretrained([task], BOTH)
