"""Pretrained weights are untrusted files: planted pickles never run, hashes are checked, genuine files load."""

from __future__ import annotations

import builtins
import hashlib
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")  # torch strictly before tensorflow (the other order segfaults)
import torchvision  # noqa: E402

from backends.torch import models as torch_models  # noqa: E402
from backends.torch import zoo as torch_zoo  # noqa: E402
from backends.torch.models import WeightsRefused  # noqa: E402
from backends.torch.zoo import load_pretrained  # noqa: E402
from bench.core import zoo  # noqa: E402
from bench.core.spec import ModelSpec  # noqa: E402

pytestmark = pytest.mark.frameworks  # imports the frameworks when collected


class Planted:
    """What an attacker pickles: loading it with pickle enabled calls open(marker, "w"), creating the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def plant(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"conv1.weight": Planted(marker)}, path)
    return path


def sha_prefix(path: Path, n: int = 8) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:n]


@pytest.fixture
def caches(monkeypatch, tmp_path: Path) -> Path:
    """An empty torch hub cache and weights folder, and no download: only the files a test plants exist."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))

    def offline(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path


def publish_as(monkeypatch, name: str) -> None:
    """The zoo table's published torchvision file for resnet101 renamed (a file this test made and hashed)."""
    row = zoo.ZOO["resnet101"]
    assert row.torch_weights is not None
    monkeypatch.setitem(zoo.ZOO, "resnet101", replace(row, torch_weights=replace(row.torch_weights, file=name)))


def resnet() -> torch.nn.Module:
    return torch_zoo.build("resnet101", 2, (32, 32, 3), "glorot_uniform")


def test_the_planted_file_is_hostile(tmp_path: Path):
    """The control: loaded with pickle enabled, the planted file runs its code. The tests below must not."""
    marker = tmp_path / "ran"
    torch.load(plant(tmp_path / "evil.pth", marker), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("where", ["hub cache", "weights dir"])
def test_a_planted_pickle_under_the_torchvision_name_is_refused_by_its_hash(caches: Path, where: str):
    marker = caches / "ran"
    folder = caches / "torch-home" / "hub" / "checkpoints" if where == "hub cache" else caches / "weights"
    evil = plant(folder / "resnet101-63fe2227.pth", marker)
    with pytest.raises(WeightsRefused) as e:
        load_pretrained(resnet(), ModelSpec(arch="resnet101", pretrained=True))
    assert str(e.value).startswith(f"{evil}: refused: its SHA-256 is") and "name says 63fe2227" in str(e.value)
    assert not marker.exists()


def test_a_planted_pickle_with_a_matching_hash_is_still_never_unpickled(caches: Path):
    marker = caches / "ran"
    evil = plant(caches / "evil.pth", marker)
    named = evil.rename(caches / f"evil-{sha_prefix(evil)}.pth")  # the hash passes; weights_only=True must refuse
    for path in (evil.with_name("plain.pth"), named):
        if not path.exists():
            shutil.copy(named, path)
        with pytest.raises(
            WeightsRefused,
            match=r"refused: not a plain tensor file \(loaded with weights_only=True.*"
            r"nothing in it ran\): Unsupported global: GLOBAL (io|builtins)\.open$",
        ):
            load_pretrained(resnet(), ModelSpec(arch="resnet101", pretrained=True, weights=str(path)))
    assert not marker.exists()


def test_a_file_whose_hash_differs_from_its_name_is_refused_naming_it(caches: Path):
    good = caches / "resnet101.pth"
    torch.save(torchvision.models.resnet101(weights=None).state_dict(), good)
    wrong = good.rename(caches / "resnet101-00000000.pth")
    with pytest.raises(
        WeightsRefused, match=rf"^{wrong}: refused: its SHA-256 is [0-9a-f]{{64}}, its name says 00000000"
    ):
        load_pretrained(resnet(), ModelSpec(arch="resnet101", pretrained=True, weights=str(wrong)))


def test_a_genuine_torchvision_file_with_its_hash_in_the_name_loads_equal_weights(caches: Path, monkeypatch):
    ref = torchvision.models.resnet101(weights=None)
    tmp = caches / "resnet101.pth"
    torch.save(ref.state_dict(), tmp)
    name = f"resnet101-{sha_prefix(tmp)}.pth"
    (caches / "weights").mkdir()
    for spec, path in [
        (ModelSpec(arch="resnet101", pretrained=True, weights=str(caches / name)), caches / name),
        (ModelSpec(arch="resnet101", pretrained=True), caches / "weights" / name),  # found by its library name
    ]:
        shutil.copy(tmp, path)
        publish_as(monkeypatch, name)
        net = resnet()
        assert load_pretrained(net, spec) == f"imagenet ({path}, sha256 verified)"
        assert torch.equal(net.net.conv1.weight, ref.conv1.weight)
        assert torch.equal(net.net.layer4[2].conv3.weight, ref.layer4[2].conv3.weight)
        assert torch.equal(net.net.bn1.running_var, ref.bn1.running_var)


def test_a_download_lands_in_the_hub_cache_with_its_hash_checked_and_is_read_by_bench(caches: Path, monkeypatch):
    ref = torchvision.models.resnet101(weights=None)
    published = caches / "published.pth"
    torch.save(ref.state_dict(), published)
    name = f"resnet101-{sha_prefix(published)}.pth"
    calls = []

    def download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        calls.append(hash_prefix)
        shutil.copy(published, dst)

    publish_as(monkeypatch, name)
    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    net = resnet()
    dest = caches / "torch-home" / "hub" / "checkpoints" / name
    assert load_pretrained(net, ModelSpec(arch="resnet101", pretrained=True)) == f"imagenet ({dest}, sha256 verified)"
    assert calls == [sha_prefix(published)] and torch.equal(net.net.conv1.weight, ref.conv1.weight)


def test_a_genuine_timm_safetensors_file_loads_equal_weights(caches: Path):
    timm = pytest.importorskip("timm")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    ref = timm.create_model("convnext_tiny", pretrained=False, num_classes=0)
    path = caches / "weights" / "convnext_tiny.safetensors"
    path.parent.mkdir()
    safetensors_torch.save_file(ref.state_dict(), path)
    net = torch_zoo.build("convnext_tiny", 2, (32, 32, 3), "glorot_uniform")
    source = load_pretrained(net, ModelSpec(arch="convnext_tiny", pretrained=True))
    assert source == f"imagenet ({path}, no published hash to verify)"
    assert torch.equal(net.net.stem[0].weight, ref.stem[0].weight)
    assert torch.equal(net.net.head.norm.weight, ref.head.norm.weight)
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad}   ")
    with pytest.raises(WeightsRefused, match=rf"^{path}: refused: not a valid safetensors file"):
        load_pretrained(net, ModelSpec(arch="convnext_tiny", pretrained=True))


def test_a_plain_file_of_another_architecture_is_refused_naming_its_first_foreign_layer(caches: Path):
    timm = pytest.importorskip("timm")
    path = caches / "not-resnet.pth"
    torch.save(timm.create_model("convnext_tiny", pretrained=False, num_classes=0).state_dict(), path)
    foreign = r"stem\.0\.weight is not a layer of torchvision:resnet101$"
    with pytest.raises(WeightsRefused, match=rf"^{path}: not resnet101 ImageNet weights: {foreign}"):
        load_pretrained(resnet(), ModelSpec(arch="resnet101", pretrained=True, weights=str(path)))


def test_a_hugging_face_cache_blob_is_checked_against_the_sha256_it_is_stored_under(tmp_path: Path):
    """The hub cache keeps each large file as blobs/<sha256>, linked from snapshots/<rev>/<name>."""
    content = b"weights"
    blobs, snap = tmp_path / "blobs", tmp_path / "snapshots" / "abc"
    blobs.mkdir()
    snap.mkdir(parents=True)
    (blobs / hashlib.sha256(content).hexdigest()).write_bytes(content)
    (snap / "model.safetensors").symlink_to(blobs / hashlib.sha256(content).hexdigest())
    assert torch_models.verify_hash(snap / "model.safetensors")
    planted = blobs / hashlib.sha256(b"the published file").hexdigest()
    planted.write_bytes(content)
    (snap / "model.safetensors").unlink()
    (snap / "model.safetensors").symlink_to(planted)
    with pytest.raises(WeightsRefused, match=r"model\.safetensors: refused: its SHA-256 is"):
        torch_models.verify_hash(snap / "model.safetensors")


def test_offline_without_a_file_says_how_to_provide_it(caches: Path):
    with pytest.raises(RuntimeError, match=r"resnet101-63fe2227\.pth.*BENCH_WEIGHTS_DIR.*\[model\] weights"):
        load_pretrained(resnet(), ModelSpec(arch="resnet101", pretrained=True))


def test_a_keras_file_with_a_lambda_layer_runs_no_code(tmp_path: Path):
    """Keras weights go through model.load_weights (variables only): the Lambda's code is never deserialised."""
    pytest.importorskip("tensorflow")
    import keras

    from backends.keras.models import big

    marker = tmp_path / "ran"
    inputs = keras.Input((4,))
    code = eval(f"lambda x: __import__('os').makedirs({str(marker)!r}, exist_ok=True) or x")  # no closure: in the file
    outputs = keras.layers.Lambda(code)(inputs)
    path = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(path)
    marker.rmdir()  # building the model ran the lambda once
    with pytest.raises(ValueError, match="safe_mode"):
        keras.models.load_model(path)  # the library's whole-model loader refuses it by default
    assert not marker.exists()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match=rf"^{path}: refused as resnet101 ImageNet weights .*nothing in it ran"):
            big(ModelSpec(arch="resnet101", pretrained=True, weights=str(path)), (32, 32, 3), 2)
    assert not marker.exists()
    # Keras warns once per container it could not match (~200 for ResNet101): the refusal says it, in one line
    assert not [w for w in said if "container" in str(w.message)], said[0].message if said else None
    keras.models.load_model(path, safe_mode=False)  # the control: with safe_mode off, the file runs its code
    assert marker.exists()


@pytest.mark.parametrize("env", [{}, {"TORCH_HOME": "th"}, {"XDG_CACHE_HOME": "xdg"}])
def test_the_runners_check_looks_in_torch_hubs_own_folder(monkeypatch, tmp_path: Path, env: dict[str, str]):
    """bench.run.weightscheck finds torch.hub's cached file without importing torch: the folder it computes is
    torch's own, whichever variables choose it."""
    from backends.torch import hub_dir

    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for var, name in env.items():
        monkeypatch.setenv(var, str(tmp_path / name))
    assert hub_dir() == Path(torch.hub.get_dir())


def test_the_runners_check_looks_in_keras_own_cache(tmp_path: Path):
    """keras.utils.get_file's folder for keras.applications' weights, as the check computes it without Keras."""
    pytest.importorskip("tensorflow")
    from keras.src.backend.config import keras_home

    from backends.keras import cached
    from backends.keras import keras_home as described

    assert described() == Path(keras_home())
    row = zoo.ZOO["resnet101"]
    assert row.keras_weights is not None
    path = Path(keras_home()).expanduser() / "models" / row.keras_weights.file
    assert (cached(row.keras_weights) == path) is path.is_file()


def test_the_keras_offline_message_names_the_cache_keras_uses_and_the_file(monkeypatch, tmp_path: Path):
    """QA: the row's error said "keras's cache (~/.keras/models/)" with $KERAS_HOME set elsewhere, and
    "$BENCH_WEIGHTS_DIR/" without the file's name: now the folder Keras's get_file uses (``models_dir``, from
    ``keras_home``: Keras's own, test_the_runners_check_looks_in_keras_own_cache) and the file, in each place."""
    pytest.importorskip("tensorflow")
    from backends.keras import models as keras_models

    (tmp_path / "kh").mkdir()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "w"))
    file = keras_models.source("resnet101").file
    said = keras_models.how_to_provide("resnet101")
    assert f"Keras's cache as {tmp_path}/kh/models/{file}," in said and "~/.keras" not in said, said
    assert f"$BENCH_WEIGHTS_DIR/{file} ({tmp_path}/w/{file})" in said, said
