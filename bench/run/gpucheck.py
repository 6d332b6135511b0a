"""GPU check: the suite's full recipes against bare hand-written torch loops, ResNet101 and ConvNeXt-tiny.

``python -m bench.run.gpucheck`` (``tox -e gpu-check``) on a CUDA machine trains, for each model in
fp32, in bf16 + channels_last and in each framework's best configuration ("best": torch bf16 +
channels_last + torch.compile against Keras XLA + mixed bf16), (1) the suite's full recipe (the
built-in task, full profile: 224 px, batch 32, Adam, flip + rotate, ImageNet normalisation) through
the worker's measured path, sampling GPU utilisation meanwhile, and (2) a bare loop written here with plain torch that
does the same work (uint8 on the device, normalise, flip, rotate, forward, backward, Adam step).
It writes one Markdown table (and its JSON) with suite / bare throughput (goal >= 0.97), GPU
utilisation, the suite's input share and the ConvNeXt / ResNet ratio beside timm's published one.
Keras rows run the suite's Keras recipe when TensorFlow imports, else say why they are skipped.
``--device cpu --tiny`` runs the same logic at toy sizes, so CI tests it without a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.spec import TaskSpec, load_task
from bench.run.task_data import load_task_data
from datasets import registry


class Refused(Exception):
    """Nothing can be measured as asked (no CUDA device, an unknown name): one line, exit 2, nothing written."""


TASKS = {"resnet101": "catsdogs-resnet101", "convnext_tiny": "catsdogs-convnext-tiny"}
# Each mode: the runtime fields every backend gets, then what each backend gets on top ([knobs.BACKEND]).
# "best": each framework's tuned configuration for these models on a GPU (issue #27): torch bf16 autocast,
# channels_last and torch.compile (its default mode: max-autotune compiles for minutes per model); Keras
# mixed bf16 under XLA. The bare torch loop compiles in that mode too, so suite / bare stays like for like.
MODES: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]] = {
    "fp32": ({"precision": "fp32", "channels_last": False}, {}),
    "bf16+channels_last": ({"precision": "mixed_bf16", "channels_last": True}, {}),
    "best": (
        {"precision": "mixed_bf16"},
        {"torch": {"channels_last": True, "torch_compile": True}, "keras": {"jit_compile": True}},
    ),
}
# timm's published training throughput (img/s): AMP (fp16), NHWC, batch 256, 224 px, RTX 3090, torch 1.12,
# huggingface/pytorch-image-models results/benchmark-train-amp-nhwc-pt112-cu113-rtx3090.csv. timm publishes
# no fp32 training benchmark, so the fp32 rows show none.
TIMM_TRAIN_IMG_S = {"resnet101": 747.89, "convnext_tiny": 819.24}
TIMM_SOURCE = "timm results/benchmark-train-amp-nhwc-pt112-cu113-rtx3090.csv (AMP, NHWC, batch 256, RTX 3090)"
COLUMNS = (
    "model",
    "mode",
    "backend",
    "suite img/s",
    "bare img/s",
    "suite/bare",
    "GPU util (median)",
    "input share",
    "ConvNeXt/ResNet (suite)",
    "ConvNeXt/ResNet (timm)",
    "note",
)


@dataclass(frozen=True)
class Size:
    """Step counts: sized so the whole check stays under 8 minutes on one H200 (see docs/gpu-check.md)."""

    image_size: int
    batch_size: int
    warmup: int
    timed: int

    @property
    def n_train(self) -> int:  # one epoch = first step + warm-up + timed steps; two epochs are trained
        return self.batch_size * (1 + self.warmup + self.timed)


FULL = Size(image_size=224, batch_size=32, warmup=10, timed=30)
TINY = Size(image_size=32, batch_size=2, warmup=0, timed=1)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "timm", "tensorflow", "keras"):
        try:
            out[name] = __import__(name).__version__
        except ImportError as e:
            out[name] = f"not installed ({e.__class__.__name__})"
    import torch

    out["cuda"] = str(torch.version.cuda)
    out["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.machine()})"
    return out


def recipe(model: str, mode: str, size: Size, device: str, tiny: bool) -> TaskSpec:
    """The built-in task's full profile, with the check's step counts, precision and layout."""
    spec = load_task(TASKS[model], profile="full", datasets=registry.DATASETS)
    common, per_backend = MODES[mode]
    r = dataclasses.replace
    dataset = r(spec.dataset, max_train=size.n_train, max_test=2 * size.batch_size)
    dataset = r(dataset, image_size=size.image_size) if tiny else dataset
    return r(
        spec,
        dataset=dataset,
        # no evaluation between the epochs, so nothing that reads one: a best epoch, a time to target (refused at load)
        train=r(spec.train, epochs=2, batch_size=size.batch_size, target_acc=0.0),
        eval=r(spec.eval, per_epoch=False, select="last", batch_size=2 * size.batch_size),
        runtime=r(spec.runtime, device=device, warmup_steps=size.warmup, timed_steps=size.timed, **common),
        knobs=tuple(sorted((b, tuple(sorted(k.items()))) for b, k in per_backend.items())),
    )


class UtilSampler:
    """GPU utilisation (%) sampled every 100 ms while in use: nvidia-smi's loop, else torch.cuda.utilization."""

    def __init__(self, cuda: bool) -> None:
        self.cuda, self.why = cuda, ""
        self.samples: list[float] = []

    @contextmanager
    def sampling(self) -> Iterator[None]:
        self.samples = []
        if not self.cuda:
            self.why = "no GPU"
            yield
            return
        smi = shutil.which("nvidia-smi")
        if smi:
            cmd = [smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0", "-lms", "100"]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
            reader.start()
            try:
                yield
            finally:
                proc.terminate()
                proc.wait(timeout=10)
                reader.join(timeout=10)
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._poll, args=(stop,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    def _read(self, lines: Iterable[str]) -> None:
        for line in lines:
            if line.strip().isdigit():
                self.samples.append(float(line))

    def _poll(self, stop: threading.Event) -> None:
        import torch

        while not stop.wait(0.1):
            try:
                self.samples.append(float(torch.cuda.utilization(0)))
            except Exception as e:  # no pynvml
                self.why = f"no nvidia-smi, torch.cuda.utilization: {e}"
                return

    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def bare_torch(model_name: str, mode: str, data: dict[str, np.ndarray], spec: TaskSpec, size: Size) -> float:
    """Images/s of a hand-written loop doing the recipe's work, timed over ``size.timed`` steps after warm-up."""
    import timm
    import torch
    import torch.nn.functional as F
    import torchvision

    dev = torch.device(spec.runtime.device)
    torch.manual_seed(0)
    if model_name == "resnet101":
        net = torchvision.models.resnet101(num_classes=2)
    else:
        net = timm.create_model("convnext_tiny", num_classes=2)
    fmt = torch.channels_last if spec.runtime.channels_last else torch.contiguous_format
    net = net.to(dev, memory_format=fmt).train()
    forward = torch.compile(net) if spec.runtime.torch_compile else net
    opt = torch.optim.Adam(net.parameters(), lr=spec.train.lr, eps=spec.train.eps)
    images = torch.from_numpy(data["x_train"]).to(dev)  # uint8 NHWC
    labels = torch.from_numpy(data["y_train"].astype(np.int64)).to(dev)
    mean = torch.tensor(spec.dataset.mean, device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor(spec.dataset.std, device=dev).view(1, 3, 1, 1) * 255
    amp = torch.bfloat16 if spec.runtime.precision == "mixed_bf16" else None
    bs = spec.train.batch_size

    def step() -> None:
        pick = torch.randint(0, len(images), (bs,), device=dev)
        xb = (images[pick].permute(0, 3, 1, 2).float() - mean) / std
        xb = torch.where(torch.rand(bs, 1, 1, 1, device=dev) < 0.5, xb.flip(3), xb)
        turn = torch.deg2rad(torch.empty(bs, device=dev).uniform_(-10, 10))
        row0 = torch.stack([turn.cos(), -turn.sin(), torch.zeros_like(turn)], 1)
        row1 = torch.stack([turn.sin(), turn.cos(), torch.zeros_like(turn)], 1)
        grid = F.affine_grid(torch.stack([row0, row1], 1), list(xb.shape), align_corners=False)
        xb = F.grid_sample(xb, grid, mode="nearest", align_corners=False).contiguous(memory_format=fmt)
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            loss = F.cross_entropy(forward(xb), labels[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(1 + size.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(size.timed):
        step()
    sync()
    return size.timed * bs / (time.perf_counter() - t0)


def suite_run(
    backend_name: str, spec: TaskSpec, data: dict[str, np.ndarray], classes: tuple[str, ...], sampler: UtilSampler
) -> dict[str, Any]:
    """The worker's measured path (training, step timing, input share) for one backend."""
    from backends import load_backend
    from bench.run.worker import train_and_evaluate

    backend = load_backend(backend_name)
    with sampler.sampling():
        fields, _ = train_and_evaluate(backend, spec, data, classes, spec.seed)
    return fields


NOT_ASKED = "not asked for (--backends)"


def keras_skip_reason(backends: list[str]) -> str | None:
    if "keras" not in backends:
        return NOT_ASKED
    try:
        import tensorflow  # noqa: F401
    except Exception as e:  # ImportError, or a broken install
        return f"skipped: tensorflow not importable ({type(e).__name__}: {e})"
    return None


def nothing_to_measure(skipped: dict[str, str | None]) -> str | None:
    """Why no row would be measured (every backend left out or unable to run: ``--backends keras`` without
    TensorFlow wrote a table of skipped rows and passed), or None while one backend runs."""
    if any(why is None for why in skipped.values()):
        return None
    return "nothing to measure: " + "; ".join(
        f"{b}: {why.removeprefix('skipped: ')}" for b, why in skipped.items() if why
    )


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def check(
    device: str,
    tiny: bool,
    backends: list[str],
    data_dir: str | None,
    modes: list[str] | None = None,
    models: list[str] | None = None,
) -> tuple[list[dict[str, Any]], dict]:
    import torch  # before TensorFlow, always

    cuda = device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise Refused("--device cuda but torch sees no CUDA device (use --device cpu --tiny)")
    skipped = {"torch": None if "torch" in backends else NOT_ASKED, "keras": keras_skip_reason(backends)}
    if why := nothing_to_measure(skipped):
        raise Refused(why)
    size = TINY if tiny else FULL
    sampler = UtilSampler(cuda)
    rows: list[dict[str, Any]] = []
    for model in models or list(TASKS):
        for mode in modes or list(MODES):
            spec = recipe(model, mode, size, device, tiny)
            ds = load_task_data(spec, data_dir, spec.seed)
            data = {"x_train": ds.train.x, "y_train": ds.train.y, "x_test": ds.test.x, "y_test": ds.test.y}
            source = f"{ds.source}, {len(ds.train)} train images at {ds.image_shape[0]} px"
            for backend in ("torch", "keras"):
                row: dict[str, Any] = {"model": model, "mode": mode, "backend": backend, "data": source}
                if why := skipped[backend]:
                    rows.append(row | {"note": why})
                    continue
                t0 = time.perf_counter()
                try:
                    fields = suite_run(backend, spec.for_backend(backend), data, ds.classes, sampler)
                    row.update(
                        suite_img_s=fields.get("steady_img_s"),
                        input_share=fields.get("input_share"),
                        util=sampler.median(),
                        util_note=sampler.why,
                    )
                    if backend == "torch":
                        row["bare_img_s"] = bare_torch(model, mode, data, spec.for_backend("torch"), size)
                    else:
                        row["note"] = "no bare Keras loop in this check"
                except Exception as e:  # a failed row, not a failed check
                    row["note"] = f"failed: {type(e).__name__}: {e}"
                row["seconds"] = time.perf_counter() - t0
                if cuda:
                    torch.cuda.empty_cache()
                rows.append(row)
                print(f"@@ gpu-check {model} {mode} {backend}: {json.dumps(row, default=str)}", flush=True)
    add_ratios(rows)
    return rows, {"size": dataclasses.asdict(size), "device": device, "tiny": tiny}


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """suite/bare per row; ConvNeXt/ResNet per (mode, backend) on the suite's figures, and timm's."""
    by = {(r["model"], r["mode"], r["backend"]): r for r in rows}
    timm_ratio = TIMM_TRAIN_IMG_S["convnext_tiny"] / TIMM_TRAIN_IMG_S["resnet101"]
    for r in rows:
        if r.get("suite_img_s") and r.get("bare_img_s"):
            r["suite_over_bare"] = r["suite_img_s"] / r["bare_img_s"]
        res, conv = by.get(("resnet101", r["mode"], r["backend"])), by.get(("convnext_tiny", r["mode"], r["backend"]))
        if res and conv and res.get("suite_img_s") and conv.get("suite_img_s"):
            r["convnext_over_resnet"] = conv["suite_img_s"] / res["suite_img_s"]
        if r["mode"] != "fp32":
            r["timm_convnext_over_resnet"] = timm_ratio


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any], info: dict[str, str], seconds: float) -> str:
    lines = [
        "# GPU check: the suite's recipes against bare torch loops",
        "",
        f"Device: {info['device']}; " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "device") + ".",
        f"Sizes: {meta['size']} (two epochs of first + warm-up + timed steps; suite = timed-steps throughput); "
        f"{'tiny CPU mode: logic only, the figures mean nothing' if meta['tiny'] else 'full'}; "
        f"whole check {seconds:.0f} s.",
        f"Data: {rows[0].get('data', '-') if rows else '-'}. timm's ratio: {TIMM_SOURCE}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for r in rows:
        util = _fmt(r.get("util"), ".0f") + ("%" if r.get("util") is not None else "")
        note = r.get("note") or r.get("util_note") or ""
        cells = (
            r["model"],
            r["mode"],
            r["backend"],
            _fmt(r.get("suite_img_s"), ",.1f"),
            _fmt(r.get("bare_img_s"), ",.1f"),
            _fmt(r.get("suite_over_bare"), ".3f"),
            util,
            _fmt(r.get("input_share"), ".1%"),
            _fmt(r.get("convnext_over_resnet"), ".3f"),
            _fmt(r.get("timm_convnext_over_resnet"), ".3f"),
            note,
        )
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    ok = [r["suite_over_bare"] for r in rows if "suite_over_bare" in r]
    if ok:
        lines += ["", f"suite/bare: min {min(ok):.3f} (goal >= 0.97): {'met' if min(ok) >= 0.97 else 'NOT met'}."]
    return "\n".join(lines) + "\n"


def _names(arg: str, known: Any) -> list[str]:
    names = [n.strip() for n in arg.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise Refused(f"unknown {unknown} (known: {', '.join(known)})")
    return names


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run.gpucheck", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--tiny", action="store_true", help="toy sizes (CPU CI): tests the logic, not the GPU")
    p.add_argument("--backends", default="torch,keras", help="comma-separated: torch, keras")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated: {', '.join(MODES)}")
    p.add_argument("--models", default=",".join(TASKS), help=f"comma-separated: {', '.join(TASKS)}")
    p.add_argument("--data-dir", default=None, help="where kaggle_dogs_vs_cats_64.npz is (else BENCH_DATA_DIR)")
    p.add_argument("--out", type=Path, default=Path("results/gpu-check"))
    a = p.parse_args(argv)
    started = time.perf_counter()
    try:
        modes, models = _names(a.modes, MODES), _names(a.models, TASKS)
        rows, meta = check(a.device, a.tiny, _names(a.backends, ("torch", "keras")), a.data_dir, modes, models)
    except Refused as e:  # exit 1 and a `SystemExit` message before: as bad input as argparse's own errors
        print(f"error: gpu-check: {e}", file=sys.stderr)
        return 2
    info = versions()
    text = markdown(rows, meta, info, time.perf_counter() - started)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "gpu-check.md").write_text(text)
    (a.out / "gpu-check.json").write_text(json.dumps({"rows": rows, "meta": meta, "versions": info}, indent=1))
    print(text)
    failed = [f"{r['model']} {r['mode']} {r['backend']}" for r in rows if r.get("note", "").startswith("failed:")]
    if failed:  # the table holds the rest; a check with a failed row is no pass (it exited 0)
        print(f"gpu-check: {len(failed)} row(s) failed: {', '.join(failed)} (their notes are in the table)")
    if not any(r.get("suite_img_s") for r in rows):  # nor is one that measured nothing (it exited 0 too)
        why = dict.fromkeys(f"{r['backend']}: {r.get('note') or 'no throughput'}" for r in rows)
        print(f"gpu-check: nothing was measured: {'; '.join(why) or 'no rows'}")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
