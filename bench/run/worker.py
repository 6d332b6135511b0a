"""One (task, backend, repeat) run, in a process of its own: forked by ``bench.run.forkserver``
(the runner's way) or started as ``python -m bench.run.worker JOB.json`` (by hand, to debug one).

The runner writes the job (resolved spec, prepared data file, the record's known
fields) and reads back ``result`` as one JSON record. Lines starting with ``@@`` on
stdout are progress for the user; everything else goes to the run's log file.
A missing framework is a ``skipped`` record (``backends.not_installed``), an ImportError of the backend's own
code or any exception in training a ``failed`` one, and one in a phase after it an ``ok`` record that names it in
``phase_errors``. As each stage starts (training, the measures after the test evaluation, then each phase), the
record so far is written beside ``result`` (``bench.core.phase.SoFar``): a row stopped at its time limit after its
test evaluation keeps its training and test figures.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from backends import describe, load_backend, not_installed
from bench.core import metrics
from bench.core.backend import train_epochs
from bench.core.job import Job
from bench.core.phase import INPUT_PATH, MFU_PEAK, TRAINING, SoFar, Trained
from bench.core.placement import OTHERS_COLUMN, OthersOnCores, node_load
from bench.core.preprocess import PixelNorm, epoch_length, epoch_orders
from bench.core.progress import progress
from bench.core.record import join_notes, new_record
from bench.core.results import json_default
from bench.core.runfiles import write_atomic
from bench.core.runpaths import so_far_file
from bench.core.spec import TaskSpec, check_fits_data, spec_from_dict
from bench.measure import inputpath, perf
from bench.measure.compile_cache import cache_knob, compile_cache_note, first_run_compiles
from bench.measure.mfu import loaded_peak_note
from bench.measure.steady import Epochs, StepClock
from bench.measure.timing import (
    SyncTimer,
    agreement_note,
    spread_note,
    steady_agreement,
    summarize_epochs,
    target_fields,
)
from bench.phases import PHASES
from bench.run.evaluate import evaluate, warm_up


def peak_host_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def train_and_evaluate(
    backend: Any,
    spec: TaskSpec,
    data: dict[str, np.ndarray],
    classes: tuple[str, ...],
    seed: int,
    job: Job | None = None,
    starting: Callable[[str, dict[str, Any]], None] = lambda stage, fields: None,
) -> tuple[dict[str, Any], Trained]:
    """The measured part: identical for every backend, which only does framework work. ``starting(stage, fields)``
    is told each stage after the test evaluation as it starts (``INPUT_PATH``, ``MFU_PEAK``), with the fields so far."""
    out: dict[str, Any] = {}
    env = backend.configure(spec.runtime, seed)
    columns = perf.configuration(backend.name, env, spec)  # the knobs and their columns, as a data-parallel row's
    env.pop("knobs")
    out["configure_notes"] = env.pop("notes", [])  # what the framework says of itself here (run_job joins them)
    out.update(env, **columns)
    timer = SyncTimer(backend.synchronize)

    t0 = time.perf_counter()
    x_train, x_test = data["x_train"], data["x_test"]  # uint8 until the device: it normalises per batch
    y_train, y_test = data["y_train"].astype(np.int64), data["y_test"].astype(np.int64)
    check_fits_data(spec, len(y_train))  # the runner checked it too; a job run by hand has not
    whole_batches_of = spec.train.batch_size if spec.train.drop_last else 0
    per_epoch = epoch_length(len(y_train), whole_batches_of)  # the images each epoch trains on
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
    profiler = (backend.profile_ops_start, backend.profile_ops_stop) if spec.runtime.profile_ops else None
    steps = StepClock(
        backend.synchronize,
        spec.train.batch_size,
        spec.runtime.warmup_steps,
        spec.runtime.timed_steps,
        epochs=epochs,
        profiler=profiler,
        async_steps=bool(getattr(backend, "async_steps", False)),
        batches_per_step=perf.batches_per_step(columns),  # what the backend does, not what the task asked
    )
    orders = list(epoch_orders(len(y_train), epochs, seed, whole_batches_of))

    def after_epoch(index: int, loss: float, seconds: float) -> None:
        """Between two epochs (inside Keras's one fit, from its callback): in no epoch, never on the step clock."""
        epoch = index + 1
        epoch_s.append(seconds)
        if not np.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss} in epoch {epoch}: training diverged")
        row: dict[str, Any] = {"epoch": epoch, "seconds": seconds, "train_loss": loss}
        msg = f"epoch {epoch}/{epochs}  {seconds:.2f}s  loss {loss:.4f}"
        if spec.eval.per_epoch and epoch < epochs:
            acc, tloss = metrics.accuracy_and_loss(backend.predict(state, test, spec.eval.batch_size), y_test)
            row.update(test_acc=acc, test_loss=tloss)
            msg += f"  test acc {acc:.4f}"
        history.append(row)
        progress(msg)

    hooks = Epochs(steps, timer, [len(o) for o in orders], after_epoch)
    others = OthersOnCores()
    train_epochs(backend, state, train, orders, spec.train.batch_size, hooks)
    out.update(node_load())  # how busy the node was over the window just timed (bench compare, bench history)
    out[OTHERS_COLUMN] = others.pct()  # and how much of this row's cores others used meanwhile
    if len(epoch_s) != epochs:
        raise RuntimeError(f"the backend trained {len(epoch_s)} of the {epochs} epochs it was given")
    first_order = orders[0]  # the input-path measurement replays the first epoch's batches

    if not (spec.eval.per_epoch and epochs > 1):  # no evaluation between epochs has predicted yet
        warm_up(backend, state, x_test, y_test, norm, spec.eval.batch_size)
    out.update(evaluate(backend, state, test, y_test, classes, n_outputs, spec.eval.batch_size, timer))
    history[-1].update(test_acc=out["test_acc"], test_loss=out["test_loss"])
    out.update(summarize_epochs(epoch_s, per_epoch))
    out.update({k: v for k, v in steps.summary().items() if v is not None})  # step-based compile_s wins
    out.update(steady_agreement(out))
    out["history"] = history
    notes = (
        steps.short_window_note(),
        steps.warmup_note(),
        steps.async_note(),
        steps.new_shape_note(),
        agreement_note(out, epochs),
        spread_note(out, epochs),
    )
    out["timing_notes"] = [n for n in notes if n]
    if per_epoch < len(y_train):
        out["timing_notes"].append(
            f"train.drop_last: each epoch trains {per_epoch:,} of the {len(y_train):,} images "
            f"({per_epoch // spec.train.batch_size} whole batches of {spec.train.batch_size})"
        )
    starting(INPUT_PATH, out)
    out.update(inputpath.input_fields(backend, state, train, first_order, spec.train.batch_size, timer, out))
    out.update(perf.best_epoch_fields(history, spec))
    starting(MFU_PEAK, out)
    out.update(perf.mfu_fields(backend, state, spec, tuple(x_train.shape[1:]), out, job.peaks if job else None))
    if steps.top_ops is not None:
        out["top_ops"], out["profiled_batches"] = steps.top_ops, steps.profiled_batches
    out.update(target_fields(history, spec.train.target_acc))
    out["peak_device_mb"] = backend.peak_device_mb()
    trained = Trained(
        backend, state, spec, classes, x_train, y_train, x_test, y_test, train, test, seed, job or Job({}), norm
    )
    return out, trained


def run_phases(
    trained: Trained, starting: Callable[[str, dict[str, Any]], None] = lambda stage, fields: None
) -> dict[str, Any]:
    """Every phase's fields on the trained model, in order, and ``phase_errors`` naming each phase that raised;
    ``starting(name, fields)`` is told each phase as it starts, with the fields of the phases before it.

    A phase works on a model already trained and measured: its failure (Grad-CAM under a precision it did
    not expect, say) loses that phase's columns, not the row's training figures, and the phases after it
    still run, as each reads only ``trained``. The run still ends in failure (exit 1, the summary's list)."""
    fields: dict[str, Any] = {}
    errors: list[str] = []
    for phase in PHASES:
        starting(phase.name, {**fields, "phase_errors": " | ".join(errors) or None})
        try:
            fields.update(phase.run(trained))
        except Exception as e:
            traceback.print_exc()
            errors.append(f"{phase.name}: {type(e).__name__}: {e}")
    if errors:
        fields["phase_errors"] = " | ".join(errors)
    return fields


def run_job(job: Job, import_s: float | None = None) -> dict[str, Any]:
    """The row's record (``import_s``: as ``main``'s); the row so far written beside ``job.result`` as each stage
    starts."""
    started = time.perf_counter()
    rec = new_record(**job.record)
    rec["import_s"] = import_s  # in the row so far too
    spec = spec_from_dict(job.spec).for_backend(rec["backend"])  # its [knobs.BACKEND], if any
    try:
        backend = load_backend(rec["backend"])
    except ImportError as e:
        if not_installed(rec["backend"], e):  # a framework it requires: not run here, not the code's outcome
            rec.update(status="skipped", error=f"{rec['backend']} backend not importable: {e}")
            return rec
        traceback.print_exc()  # its own code imports what is not there: a failed row, as any other error
        own = f"importing the {rec['backend']} backend's own code"
        rec.update(status="failed", error=f"{type(e).__name__}: {e} ({own})")
        return rec
    info = describe(rec["backend"])

    def finished(row: dict[str, Any]) -> dict[str, Any]:
        """``row`` as a record: the worker's working fields made its notes, its memory and time so far."""
        row = dict(row)
        cache_knob(row.get("knobs"), cache)
        notes = list(job.notes) + list(info.known_differences) + perf.row_notes(spec)
        notes += row.pop("configure_notes", None) or []
        notes += row.pop("timing_notes", None) or []
        notes += [n for n in [compile_cache_note(cache)] if n]
        notes += [n for n in [loaded_peak_note(row)] if n]
        row["notes"] = join_notes(notes)
        row["peak_host_mb"] = peak_host_mb()
        row["wall_s"] = time.perf_counter() - started
        return row

    def starting(stage: str, fields: dict[str, Any]) -> None:
        """Write the row so far as ``stage`` starts (``SoFar``): what the runner keeps if the limit stops it there.
        Not written, it is said in the log and the row goes on: the row's own record does not depend on it."""
        if not job.result:  # a job run in-process (a test) has no result file and no runner reading one
            return
        path = so_far_file(Path(job.result))
        try:
            data = json.dumps(SoFar(stage, finished({**rec, **fields})).to_json(), default=json_default)
            write_atomic(path.parent, path, data.encode())
        except (OSError, TypeError, ValueError) as e:
            print(f"the row so far was not written as {stage} started: {type(e).__name__}: {e}", file=sys.stderr)

    with first_run_compiles(info.compile_cache) as cache:  # the user's persistent compile cache, or none
        try:
            starting(TRAINING, {})
            with np.load(job.data, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
            fields, trained = train_and_evaluate(backend, spec, data, tuple(job.classes), rec["seed"], job, starting)
            rec.update(fields)
            rec["status"] = "ok"  # trained and evaluated: the row's figures stand whatever a phase does next
            rec.update(run_phases(trained, starting))
        except Exception as e:  # a failed run is a row, not a crash of the suite
            traceback.print_exc()
            rec.update(status="failed", error=f"{type(e).__name__}: {e}")
    return finished(rec)


def main(argv: list[str], import_s: float | None = None) -> int:
    """Run one job file; ``import_s`` is the framework import time when a warm server did the import."""
    if len(argv) != 1:
        print("usage: python -m bench.run.worker JOB.json", file=sys.stderr)
        return 2
    job = Job.from_json(json.loads(Path(argv[0]).read_text()))
    rec = run_job(job, import_s)
    result = Path(job.result)  # the runner sees a whole record or none
    write_atomic(result.parent, result, json.dumps(rec, default=json_default).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
