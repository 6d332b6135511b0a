"""One (task, backend, repeat) run, in a process of its own: forked by ``bench.forkserver``
(the runner's way) or started as ``python -m bench.worker JOB.json`` (by hand, to debug one).

The runner writes the job (resolved spec, prepared data file, the record's known
fields) and reads back ``result`` as one JSON record. Lines starting with ``@@`` on
stdout are progress for the user; everything else goes to the run's log file.
A missing framework is a ``skipped`` record, any exception a ``failed`` one.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import decouple, inputpath, metrics, perf
from bench.explain import explain_phase
from bench.preprocess import PixelNorm, epoch_orders
from bench.progress import progress
from bench.record import new_record
from bench.results import json_default
from bench.spec import TaskSpec, spec_from_dict
from bench.steady import StepClock
from bench.timing import SyncTimer, agreement_note, steady_agreement, summarize_epochs, time_to_target
from bench.transfer import transfer_phase


def peak_host_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@dataclass
class Trained:
    """What the phases after training work on: the backend, its trained state and the task's data.

    ``x_*`` are the uint8 images as loaded; ``floats`` turns the few a phase uses into the
    model's float input (the spec's scaling), so no float copy of a whole split is kept.
    ``train``/``test`` are the backend's own handles from ``backend.put``.
    """

    backend: Any
    state: Any
    spec: TaskSpec
    classes: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train: Any
    test: Any
    seed: int
    job: dict[str, Any]  # the runner's job (e.g. paths of extra prepared data)
    norm: PixelNorm  # the spec's uint8 -> float map

    def floats(self, x: np.ndarray) -> np.ndarray:
        """uint8 images (a subset of x_train/x_test) as the model saw them, before augmentation."""
        return self.norm.apply(x)


# A phase reads a Trained and returns record fields; each runs after training, in order,
# and its failure fails the row (the fields measured before it are kept in the record).
Phase = Callable[[Trained], dict[str, Any]]
PHASES: list[tuple[str, Phase]] = [
    ("transfer", transfer_phase),
    ("explain", explain_phase),
    ("decouple", decouple.run),
]


def train_and_evaluate(
    backend: Any, spec: TaskSpec, data: dict[str, np.ndarray], classes: tuple[str, ...], seed: int,
    job: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Trained]:  # fmt: skip
    """The measured part: identical for every backend, which only does framework work."""
    out: dict[str, Any] = {}
    env = backend.configure(spec.runtime, seed)
    knobs = env.pop("knobs")
    out.update(env, knobs=knobs)
    out.update(perf.knob_columns(backend.name, knobs, spec))
    timer = SyncTimer(backend.synchronize)

    t0 = time.perf_counter()
    x_train, x_test = data["x_train"], data["x_test"]  # uint8 until the device: it normalises per batch
    y_train, y_test = data["y_train"].astype(np.int64), data["y_test"].astype(np.int64)
    norm = PixelNorm.from_spec(spec.dataset, x_train.shape[-1])
    timer.start()
    train, test = backend.put(x_train, y_train, norm), backend.put(x_test, y_test, norm)
    timer.stop()
    out["data_prep_s"] = time.perf_counter() - t0

    timer.start()
    n_outputs = spec.n_outputs(len(classes))
    model = backend.build(spec.model, tuple(x_train.shape[1:]), n_outputs)
    state = backend.compile(model, spec.train, spec.runtime)
    out["build_s"] = timer.stop()
    out["params"] = backend.count_params(model)

    epochs = spec.train.epochs
    epoch_s: list[float] = []
    history: list[dict[str, Any]] = []
    profiler = (backend.profile_start, backend.profile_stop) if spec.runtime.profile_ops else None
    steps = StepClock(backend.synchronize, spec.train.batch_size, spec.runtime.warmup_steps,
                      spec.runtime.timed_steps, epochs=epochs, profiler=profiler)  # fmt: skip
    orders = epoch_orders(len(y_train), epochs, seed)
    for epoch, order in enumerate(orders, start=1):
        hooks = steps.start_epoch(len(order))
        timer.start()
        loss = backend.train_epoch(state, train, order, spec.train.batch_size, hooks)
        epoch_s.append(timer.stop())
        steps.end_epoch(epoch_s[-1])
        if not np.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss} in epoch {epoch}: training diverged")
        row: dict[str, Any] = {"epoch": epoch, "seconds": epoch_s[-1], "train_loss": loss}
        msg = f"epoch {epoch}/{epochs}  {epoch_s[-1]:.2f}s  loss {loss:.4f}"
        if spec.eval.per_epoch and epoch < epochs:  # between two calls: never on the step clock
            acc, tloss = metrics.accuracy_and_loss(backend.predict(state, test, spec.eval.batch_size), y_test)
            row.update(test_acc=acc, test_loss=tloss)
            msg += f"  test acc {acc:.4f}"
        history.append(row)
        progress(msg)

    timer.start()
    logits = backend.predict(state, test, spec.eval.batch_size)
    out["eval_s"] = timer.stop()
    out["eval_img_s"] = len(y_test) / out["eval_s"] if out["eval_s"] > 0 else None
    metrics.check_logits(logits, len(y_test), n_outputs)
    out["test_acc"], out["test_loss"] = metrics.accuracy_and_loss(logits, y_test)
    history[-1].update(test_acc=out["test_acc"], test_loss=out["test_loss"])
    progress(f"test acc {out['test_acc']:.4f}  loss {out['test_loss']:.4f}")
    out.update(metrics.classification(logits, y_test, classes))
    out.update(summarize_epochs(epoch_s, len(y_train)))
    out.update({k: v for k, v in steps.summary().items() if v is not None})  # step-based compile_s wins
    out.update(steady_agreement(out))
    out["history"] = history
    out["timing_notes"] = [n for n in (steps.short_window_note(), agreement_note(out, epochs)) if n]
    out.update(inputpath.input_fields(backend, state, train, orders[0], spec.train.batch_size, timer, out))
    out.update(perf.best_epoch_fields(history, spec))
    out.update(perf.mfu_fields(backend, state, spec, tuple(x_train.shape[1:]), out))
    if steps.top_ops is not None:
        out["top_ops"] = steps.top_ops
    if spec.train.target_acc and all("test_acc" in h for h in history):
        out["time_to_target_s"] = time_to_target(epoch_s, [h["test_acc"] for h in history], spec.train.target_acc)
    out["peak_device_mb"] = backend.peak_device_mb()
    trained = Trained(
        backend, state, spec, classes, x_train, y_train, x_test, y_test, train, test, seed, job or {}, norm
    )
    return out, trained


def _known_differences(backend: str) -> tuple[str, ...]:
    """The backend's own notes for every row (from its registry description)."""
    from backends import BACKENDS

    return BACKENDS[backend].known_differences if backend in BACKENDS else ()


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    rec = new_record(**job["record"])
    spec = spec_from_dict(job["spec"])
    try:
        from backends import load_backend

        backend = load_backend(job["record"]["backend"])
    except ImportError as e:
        rec.update(status="skipped", error=f"{job['record']['backend']} backend not importable: {e}")
        return rec
    try:
        with np.load(job["data"], allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        fields, trained = train_and_evaluate(backend, spec, data, tuple(job["classes"]), rec["seed"], job)
        rec.update(fields)
        for name, phase in PHASES:
            try:
                rec.update(phase(trained))
            except Exception as e:
                raise RuntimeError(f"{name}: {type(e).__name__}: {e}") from e
        rec["status"] = "ok"
    except Exception as e:  # a failed run is a row, not a crash of the suite
        traceback.print_exc()
        rec.update(status="failed", error=f"{type(e).__name__}: {e}")
    notes = list(job.get("notes", [])) + list(_known_differences(rec["backend"])) + perf.row_notes(spec)
    notes += rec.pop("timing_notes", None) or []
    rec["notes"] = "; ".join(notes) or None
    rec["peak_host_mb"] = peak_host_mb()
    rec["wall_s"] = time.perf_counter() - started
    return rec


def main(argv: list[str], import_s: float | None = None) -> int:
    """Run one job file; ``import_s`` is the framework import time when a warm server did the import."""
    if len(argv) != 1:
        print("usage: python -m bench.worker JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    rec = run_job(job)
    rec["import_s"] = import_s
    result = Path(job["result"])
    tmp = result.with_suffix(".partial")
    tmp.write_text(json.dumps(rec, default=json_default))
    tmp.replace(result)  # the runner sees a whole record or none
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
