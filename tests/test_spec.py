"""Task spec parsing: every built-in task loads, and bad input names its file and key."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path

import pytest

from bench.core.spec import TASKS_DIR, SpecError, builtin_tasks, load_task, parse_task, spec_from_dict
from datasets import registry
from tests.conftest import TINY_TASK

MINIMAL = {
    "name": "t",
    "dataset": {"name": "mnist"},
    "model": {"arch": "lenet5"},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.01},
}


def with_(path: str, value, base=None) -> dict:
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in (base or MINIMAL).items()}
    *heads, last = path.split(".")
    node = d
    for h in heads:
        node = node.setdefault(h, {})
    node[last] = value
    return d


def test_builtin_tasks_load_in_every_profile():
    names = set(builtin_tasks())
    assert {"mnist-lenet5", "mnist-lenet5-sigmoid", "cifar10-cnn"} <= names
    for name in names:
        for profile in (None, "quick", "full"):
            spec = load_task(name, profile)
            assert spec.name == name
            assert spec.profile == (profile or "")


def test_every_task_file_under_bench_tasks_loads_in_every_profile():
    """Examples and the zoo template too: each load now validates the file's every profile."""
    paths = sorted(TASKS_DIR.rglob("*.toml"))
    assert {"examples", "zoo"} <= {p.parent.name for p in paths}
    for path in paths:
        for profile in (None, "quick", "full"):
            assert load_task(path, profile, registry.DATASETS).profile == (profile or "")


def test_quick_profile_overrides_only_what_it_names():
    full, quick = load_task("mnist-lenet5", "full"), load_task("mnist-lenet5", "quick")
    assert full.train.epochs == 20 and quick.train.epochs < full.train.epochs
    assert quick.dataset.max_train > 0 and full.dataset.max_train == 0
    assert quick.train.lr == full.train.lr == 0.01
    assert quick.model == full.model


def test_the_documented_recipes():
    relu, sig, cifar = (load_task(n, "full") for n in ("mnist-lenet5", "mnist-lenet5-sigmoid", "cifar10-cnn"))
    assert relu.model.option("activation") == "relu" and relu.model.option("pooling") == "avg"
    assert (sig.model.option("activation"), sig.model.option("conv1_padding")) == ("sigmoid", 2)
    assert (sig.train.batch_size, sig.train.epochs, sig.train.lr) == (512, 30, 0.01)
    assert (cifar.train.batch_size, cifar.train.epochs, cifar.dataset.rescale) == (64, 10, "unit")
    # the framework-dependent defaults are explicit
    for t in (relu, sig, cifar):
        assert t.train.eps == 1e-7 and t.model.init == "glorot_uniform"


def test_roundtrip_through_dict_is_exact():
    spec = load_task("cifar10-cnn", "quick")
    assert spec_from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (with_("train.epocs", 3), "train.epocs: unknown key"),
        (with_("train.epochs", "ten"), "train.epochs: expected an integer, got 'ten'"),
        (with_("train.lr", True), "train.lr: expected a number"),
        (with_("model.arch", "vgg99"), "model.arch: unknown model id 'vgg99'"),
        (with_("model.depth", 3), "model.depth: unknown key for model 'lenet5'"),
        (with_("model.activation", "gelu"), "model.activation: expected one of ['relu', 'sigmoid', 'tanh']"),
        (with_("dataset.name", "imagenet"), "dataset.name: unknown dataset 'imagenet'"),
        (with_("dataset.classes", "cat"), "dataset.classes: expected a list of a string"),
        (with_("train.optimizer", "lamb"), "train.optimizer: expected one of ['adam', 'sgd']"),
        (with_("dataset.classes", ["3"]), "dataset.classes: expected at least 2 distinct class names"),
        (with_("dataset.classes", ["3", "5", "3"]), "dataset.classes: expected at least 2 distinct class names"),
        (with_("dataset.fallback", "bogus"), "dataset.fallback: expected one of ['auto', 'none'], got 'bogus'"),
        (with_("trian", {"epochs": 3}), "my.toml: trian: unknown key (expected one of: name, description, seed,"),
        (with_("name", 3), "my.toml: name: expected a string, got 3"),
        (with_("train.epochs", 0), "train.epochs: expected an integer >= 1, got 0"),
        (with_("seeed", 1), "seeed: unknown key"),
        (with_("profiles.slow", {}), "profiles.slow: unknown profile"),
        ({k: v for k, v in MINIMAL.items() if k != "train"}, "missing required table [train]"),
        (with_("train", {"epochs": 1}), "train: missing required key(s): batch_size, lr"),
    ],
)
def test_errors_name_the_file_and_key(doc, fragment):
    with pytest.raises(SpecError) as e:
        parse_task(doc, source="my.toml", datasets=registry.DATASETS)
    assert str(e.value).startswith("my.toml")
    assert fragment in str(e.value)


def test_a_misspelt_section_lists_every_section_it_could_be():
    with pytest.raises(SpecError) as e:
        parse_task(with_("trian", {"epochs": 3}), source="my.toml")
    known = str(e.value).split("expected one of: ")[1].rstrip(")").split(", ")
    assert {"dataset", "model", "train", "eval", "explain", "decouple", "transfer", "knobs", "profiles"} <= set(known)
    assert {"runtime", "distributed", "name", "seed"} <= set(known)


def test_two_distinct_classes_and_a_known_fallback_load():
    spec = parse_task(with_("dataset.fallback", "none", with_("dataset.classes", ["3", "5"])), source="ok.toml")
    assert (spec.dataset.classes, spec.dataset.fallback) == (("3", "5"), "none")


def test_profile_override_is_validated_too():
    """Validated whichever profile runs (or none): a bad value is refused before the run that would use it."""
    doc = with_("profiles.quick", {"train": {"batch_size": "big"}})
    for profile in (None, "quick", "full"):
        with pytest.raises(SpecError, match=r"p\.toml: profiles\.quick\.train\.batch_size: expected an integer"):
            parse_task(doc, source="p.toml", profile=profile)


def test_a_bad_value_that_only_another_profile_uses_is_refused_naming_the_key():
    """Found by a hostile-input probe: both ran under the quick profile before."""
    base_only = with_("profiles.quick", {"train": {"epochs": 1}}, with_("train.epochs", 10**20))
    with pytest.raises(SpecError, match=r"^b\.toml: train\.epochs: expected an integer in 1\.\.10000, got 10+$"):
        parse_task(base_only, source="b.toml", profile="quick")
    full_only = with_("profiles.full", {"train": {"lr": math.nan}})
    with pytest.raises(
        SpecError, match=r"^f\.toml: profiles\.full\.train\.lr: expected a (finite )?number > 0, got nan"
    ):
        parse_task(full_only, source="f.toml", profile="quick")
    # a base value a profile's own value makes wrong: the base key, and the profile it broke
    layers = with_(
        "profiles.full", {"dataset": {"image_size": 2}}, with_("model", {"layers": [{"conv": 2, "kernel": 5}]})
    )
    with pytest.raises(SpecError, match=r"\(with \[profiles\.full\] applied\)$"):
        parse_task(layers, source="l.toml")


def test_user_toml_file(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n[dataset]\nname = "cifar10"\n[model]\narch = "cifar_cnn"\n'
        "[train]\nepochs = 1\nbatch_size = 8\nlr = 1e-3\n"
    )
    spec = load_task(path)
    assert spec.source == str(path) and spec.model.option("activation") == "relu"
    path.write_text("name = [")
    with pytest.raises(SpecError, match=r"mine\.toml: not valid TOML"):
        load_task(path)
    with pytest.raises(SpecError, match="no such task or file"):
        load_task(tmp_path / "absent.toml")


def test_builtin_files_are_plain_toml():
    for path in builtin_tasks().values():
        assert "name" in tomllib.loads(path.read_text())


def test_dataset_names_are_checked_against_the_names_given():
    """The core knows no loader: the caller names the datasets that exist (the CLI: datasets.registry)."""
    doc = with_("dataset.name", "imagenet")
    assert parse_task(doc).dataset.name == "imagenet"  # not checked here; loading it fails later, naming it
    with pytest.raises(SpecError, match=r"unknown dataset 'imagenet' \(expected one of: mnist, cifar10\)"):
        parse_task(doc, source="my.toml", datasets=("mnist", "cifar10"))


def test_an_explain_layer_the_model_lacks_is_refused_at_load_listing_the_layers_grad_cam_can_read():
    """A layer list's names are known without a framework (bench.core.layers.names): an unknown one, or one
    whose output is a vector (no map for Grad-CAM), is a SpecError naming the key and the valid names."""
    assert parse_task(with_("explain.layer", "pool2")).explain.layer == "pool2"
    for bad in ("conv9", "fc1", "act1", "flatten"):  # act1: conv1's fused relu, inside conv1 in Keras
        with pytest.raises(SpecError) as e:
            parse_task(with_("explain.layer", bad), source="t.toml")
        assert str(e.value) == (
            "t.toml: explain.layer: expected a layer of 'lenet5' with a map for Grad-CAM to read "
            f"(one of: conv1, pool1, conv2, pool2), got {bad!r}"
        )
    own = with_(
        "model",
        {"layers": [{"conv": 4, "kernel": 3}, {"batchnorm": True}, {"activation": "relu"}, {"global_pool": "avg"}]},
    )
    with pytest.raises(SpecError, match=r"'layers' with a map .*\(one of: conv1, bn1, act1\), got 'conv2'"):
        parse_task(with_("explain.layer", "conv2", own))
    # a profile that names another model is checked against that model's layers
    cifar = with_("explain.layer", "conv3", with_("model.arch", "cifar_cnn"))
    profiled = with_("profiles", {"quick": {"model": {"arch": "lenet5"}}}, cifar)
    with pytest.raises(SpecError, match=r"explain\.layer: .*'lenet5'.*got 'conv3' \(with \[profiles\.quick\]"):
        parse_task(profiled)


def test_a_big_models_explain_layer_is_the_one_map_every_backend_names_alike():
    """A big model's layers are named by each library (torchvision's ``layer4`` sits in the torch build's
    ``net``, Keras's is ``conv5_block3_out``): the one map name both builds share is the catalog's
    ``backbone``, so any other is refused at load, naming it, rather than failing a row after others trained."""
    for arch in ("resnet101", "convnext_tiny", "zoo:mobilenet_v2"):
        assert parse_task(with_("explain.layer", "backbone", with_("model.arch", arch))).explain.layer == "backbone"
        for bad in ("layer4", "net.layer4", "conv5_block3_out", "head", "conv2"):
            with pytest.raises(SpecError) as e:
                parse_task(with_("explain.layer", bad, with_("model.arch", arch)), source="t.toml")
            assert str(e.value) == (
                f"t.toml: explain.layer: expected 'backbone', the map of {arch!r} that every backend names alike "
                f"(each library names its other layers its own way), got {bad!r}"
            )


# --------------------------------------------------------------------------- settings that would do nothing


@pytest.mark.parametrize(
    ("optimizer", "key", "value", "owner"),
    [
        ("sgd", "beta1", 0.8, "adam"),
        ("sgd", "beta2", 0.99, "adam"),
        ("sgd", "eps", 1e-8, "adam"),
        ("adam", "momentum", 0.9, "sgd"),
    ],
)
def test_a_setting_of_the_other_optimizer_is_refused_naming_the_field_and_its_optimizer(optimizer, key, value, owner):
    """QA 2026-12-08: sgd with beta1 (or adam with momentum) ran, the setting ignored, silently."""
    doc = with_(f"train.{key}", value, with_("train.optimizer", optimizer))
    with pytest.raises(SpecError) as e:
        parse_task(doc, source="o.toml")
    said = str(e.value)
    assert said.startswith(f"o.toml: train.{key}: expected no value (or its default ") and "\n" not in said
    assert f'with optimizer = "{optimizer}": {key} is a setting of optimizer = "{owner}"' in said
    assert said.endswith(f", got {value!r}"), said
    assert parse_task(with_("train.optimizer", owner, doc)).train.optimizer == owner  # its own optimizer's: taken


def test_a_setting_left_at_its_default_is_not_refused_under_the_other_optimizer():
    """A key left out holds its default, as does a plan.json (``to_dict`` gives every field): neither is refused,
    nor the default written out."""
    sgd = parse_task(with_("train.momentum", 0.9, with_("train.optimizer", "sgd")))
    assert spec_from_dict(sgd.to_dict()) == sgd  # beta1, beta2 and eps at their defaults
    assert parse_task(with_("train.beta1", 0.9, with_("train.optimizer", "sgd"))).train.beta1 == 0.9
    assert parse_task(with_("train.momentum", 0, MINIMAL)).train.momentum == 0.0  # adam, momentum 0: the default
    # a profile that switches the optimizer is checked with the base's settings
    doc = with_("profiles.quick", {"train": {"optimizer": "sgd"}}, with_("train.beta1", 0.8))
    with pytest.raises(SpecError, match=r"^p\.toml: train\.beta1: .* \(with \[profiles\.quick\] applied\)$"):
        parse_task(doc, source="p.toml")


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("eval.select", "best_test", "eval.select: expected 'last' with eval.per_epoch = false (the best epoch"),
        ("train.target_acc", 0.3, "train.target_acc: expected 0 (none) with eval.per_epoch = false (the time to"),
    ],
)
def test_what_reads_every_epochs_evaluation_is_refused_without_it(key, value, says):
    """QA 2026-12-08: best_test without per-epoch evaluation noted "the best epoch chosen on the TEST split" of the
    last epoch, and target_acc left time_to_target_s None where the last epoch had passed the target."""
    doc = with_(key, value)
    assert parse_task(doc).eval.per_epoch  # with every epoch evaluated: taken
    with pytest.raises(SpecError) as e:
        parse_task(with_("eval.per_epoch", False, doc), source="e.toml")
    assert str(e.value).startswith(f"e.toml: {says}"), str(e.value)
    profiled = with_("profiles.quick", {"eval": {"per_epoch": False}}, doc)
    with pytest.raises(SpecError, match=r"\(with \[profiles\.quick\] applied\)$"):
        parse_task(profiled, source="e.toml")


# --------------------------------------------------------------------------- how a file and its values are read


def test_a_task_file_with_a_utf8_byte_order_mark_loads_as_without(tmp_path: Path):
    """Notepad writes one; tomllib read it as a statement: "not valid TOML: Invalid statement (line 1, column 1)"."""
    text = TINY_TASK
    plain, marked = tmp_path / "plain.toml", tmp_path / "marked.toml"
    plain.write_text(text)
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert dataclasses.replace(load_task(marked), source="") == dataclasses.replace(load_task(plain), source="")
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode() + b"# \xff\n")  # a bad byte's offset counts the mark's 3
    with pytest.raises(SpecError, match=rf"marked\.toml: not UTF-8 text \(byte {3 + len(text) + 2}: invalid start"):
        load_task(marked)


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        (with_("train.lr", True), "train.lr: expected a number, got true"),
        (with_("train.epochs", False), "train.epochs: expected an integer, got false"),
        (with_("dataset.classes", [True, "3"]), "dataset.classes[0]: expected a string, got true"),
        (with_("dataset.mean", True), "dataset.mean: expected a list of a number, got true"),
        (with_("eval", [True]), "eval: expected a table, got [true]"),
    ],
)
def test_a_boolean_in_a_message_reads_as_toml_writes_it(doc, says):
    """Python's ``True`` in "got True" was no value a TOML file can hold."""
    with pytest.raises(SpecError) as e:
        parse_task(doc, source="b.toml")
    assert str(e.value).startswith(f"b.toml: {says}"), str(e.value)
    assert "True" not in str(e.value) and "False" not in str(e.value)
