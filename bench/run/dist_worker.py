"""One rank of a data-parallel row: ``python -m bench.run.dist_worker JOB.json``, started by bench.run.distributed.

The rank reads who it is from its environment (``DistContext.from_env``: the launcher set it,
torchrun's variables and TF_CONFIG included), then does what the single-process worker does
with three differences: ``backend.join(ctx)`` after ``configure``; every epoch trains on this
rank's shard of the shared order (``shard_order``) in per-worker batches; after each epoch but the
last (``eval.per_epoch``) every rank scores its own contiguous part of the test set (``eval_part``,
in sums the launcher adds up: rank 0 alone would hold the others at the next all-reduce; rank 0's progress
line shows its part's accuracy), and after
the last only rank 0 evaluates (on the whole test set, by the single-process worker's
``bench.run.evaluate``) and builds the record. After each per-epoch evaluation the ranks meet
(``backend.barrier``), so none waits for another inside the next epoch's clock. Every rank writes its
step times, its scored parts and checksums of its trainable weights and of the rest of its state to
``RESULT_DIR/rank-R.json``; ``backend.leave()`` runs at the end and on errors. With
``job.dist.local`` the rank never joins: the same window timed without gradient exchange (the
all-reduce share's reference, bench.measure.scaling).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from backends import describe, load_backend
from bench.core import metrics
from bench.core.backend import CompileCache
from bench.core.distributed import DistContext, ScoredPart, eval_part, shard_batch, shard_order
from bench.core.job import DistLayout, Job
from bench.core.placement import node_load
from bench.core.preprocess import PixelNorm, epoch_orders
from bench.core.progress import progress
from bench.core.results import json_default
from bench.core.runfiles import write_atomic
from bench.core.spec import TaskSpec, check_fits_data, spec_from_dict
from bench.measure import perf
from bench.measure.compile_cache import cache_knob, compile_cache_note, first_run_compiles
from bench.measure.scaling import SMALL_SHARD
from bench.measure.steady import OFF_WINDOW_FIELDS, StepClock
from bench.measure.timing import SyncTimer
from bench.run.evaluate import evaluate, warm_up
from bench.run.worker import peak_host_mb


def rank_file(result_dir: Path, rank: int) -> Path:
    return result_dir / f"rank-{rank}.json"


def meet(backend: Any) -> bool:
    """Wait for every rank (the backend's ``barrier``), so the slowest rank's evaluation is waited for here, between
    epochs, not in the next epoch's first all-reduce (52-161 ms against 7-15 ms steps, 2-worker torch lenet5:
    docs/distributed.md); False where the backend has no barrier."""
    barrier = getattr(backend, "barrier", None)
    if not callable(barrier):
        return False
    barrier()
    return True


def weights_checksums(backend: Any, model: Any) -> dict[str, float | None]:
    """Sums (float64) of the trainable weights (``checksum``: equal on every rank when the replicas stayed in step)
    and of the model's other state (``state_checksum``, None where it has none): BatchNorm's running statistics,
    which under torch DDP each rank updates from its own batch (DDP broadcasts rank 0's at the start of each forward,
    so after the last step they differ), are no sign of replicas drifting apart. None where the backend cannot say."""
    try:
        weights = backend.get_weights(model)
        names = getattr(backend, "trainable_names", None)
        trainable = set(names(model) if callable(names) else weights)
    except Exception:  # a backend without get_weights for this model: no check, said by None
        return {"checksum": None, "state_checksum": None}

    def total(keys: list[str]) -> float:
        return float(sum(np.asarray(weights[k], dtype=np.float64).sum() for k in keys))

    rest = [k for k in weights if k not in trainable]
    return {"checksum": total([k for k in weights if k in trainable]), "state_checksum": total(rest) if rest else None}


def score_part(backend: Any, state: Any, test: Any, y: np.ndarray, epoch: int, batch_size: int) -> ScoredPart:
    """This rank's part of the test set scored after ``epoch``, in sums (none to predict in an empty part)."""
    if not len(y):
        return ScoredPart(epoch, 0, 0, 0.0)
    n, correct, loss_sum = metrics.score_sums(backend.predict(state, test, batch_size), y)
    return ScoredPart(epoch, n, correct, loss_sum)


def part_accuracy(part: ScoredPart, n_test: int) -> str:
    """Rank 0's progress line's accuracy on its part of the test set (its sums are there already): a long scaling
    run shows progress as a single-process row's "test acc" does, said to be the part's (the row's epoch figure
    sums every rank's parts); "" for an empty part."""
    if not part.n:
        return ""
    return f"  test acc (rank 0's part, {part.n:,} of {n_test:,}) {part.correct / part.n:.4f}"


def train_rank(
    backend: Any,
    spec: TaskSpec,
    ctx: DistContext,
    dist: DistLayout,
    data: dict[str, np.ndarray],
    classes: tuple[str, ...],
    seed: int,
) -> dict[str, Any]:
    """The measured part of one rank; returns its step times, and on rank 0 the record's fields."""
    chief, local = ctx.is_chief and not dist.local, dist.local
    say = progress if chief else (lambda _msg: None)
    out: dict[str, Any] = {}
    env = backend.configure(spec.runtime, seed)
    out.update({k: v for k, v in env.items() if k in ("framework", "framework_version", "device", "threads")})
    out["notes"] = list(env.get("notes", []))
    # the knobs and their columns (compiled, channels_last, precision, ...), by the single-process row's function
    out["configuration"] = configuration = perf.configuration(backend.name, env, spec)
    if not local:
        joined = backend.join(ctx)
        out["dist_backend"] = joined.get("dist_backend")
        out["notes"] += list(joined.get("notes", []))
    say(f"rank {ctx.rank}/{ctx.world_size} ready ({out.get('dist_backend') or 'no all-reduce'})")
    x_train, y_train = data["x_train"], data["y_train"].astype(np.int64)
    check_fits_data(spec, len(y_train))
    norm = PixelNorm.from_spec(spec.dataset, x_train.shape[-1])
    train = backend.put(x_train, y_train, norm)
    n_outputs = spec.n_outputs(len(classes))
    model = backend.build(spec.model, tuple(x_train.shape[1:]), n_outputs)
    state = backend.compile(model, spec.train, spec.runtime)
    out["params"] = backend.count_params(model)
    batch, epochs = shard_batch(len(y_train), ctx.world_size, dist.per_worker_batch), spec.train.epochs
    out["per_worker_batch"] = batch  # the row records the batch trained, not the nominal one
    if batch < dist.per_worker_batch:
        out["notes"].append(
            f"{SMALL_SHARD}{len(y_train)} training images ({batch}) is under one per-worker batch of "
            f"{dist.per_worker_batch}: every epoch was one step of {batch} images a rank, the batch this row records"
        )
    async_steps = bool(getattr(backend, "async_steps", False))  # JAX: sampled per synchronised stretch
    steps = StepClock(
        backend.synchronize,
        batch,
        spec.runtime.warmup_steps,
        spec.runtime.timed_steps,
        epochs=epochs,
        report=say,
        async_steps=async_steps,
        batches_per_step=perf.batches_per_step(configuration),
    )
    history: list[dict[str, Any]] = []
    # every rank of a joined row scores its part after each epoch but the last; the no-exchange reference does not
    per_epoch = spec.eval.per_epoch and epochs > 1 and not local
    y_part, test_part = np.zeros(0, dtype=np.int64), None
    if per_epoch:  # its part on the device once, before training, as the single-process worker puts its test set
        part = eval_part(len(data["y_test"]), ctx.rank, ctx.world_size)
        y_part = data["y_test"][part].astype(np.int64)
        test_part = backend.put(data["x_test"][part], y_part, norm) if len(y_part) else None
    scored: list[ScoredPart] = []
    eval_s = 0.0  # the per-epoch evaluations' time: between epochs, in no epoch and not in train_s
    started = time.perf_counter()
    for epoch, order in enumerate(epoch_orders(len(y_train), epochs, seed), start=1):
        shard = shard_order(order, ctx.rank, ctx.world_size, batch)
        hooks = steps.start_epoch(len(shard))
        t0 = time.perf_counter()
        loss = backend.train_epoch(state, train, shard, batch, hooks)
        backend.synchronize()
        steps.end_epoch(time.perf_counter() - t0)
        if not np.isfinite(loss):
            raise FloatingPointError(f"rank {ctx.rank}: training loss is {loss} in epoch {epoch}: training diverged")
        history.append({"epoch": epoch, "seconds": time.perf_counter() - t0, "train_loss": loss})
        msg = f"epoch {epoch}/{epochs}  {history[-1]['seconds']:.2f}s  rank-0 shard loss {loss:.4f}"
        if per_epoch and epoch < epochs:  # the last epoch: rank 0's whole-set evaluation, below
            t1 = time.perf_counter()
            scored.append(score_part(backend, state, test_part, y_part, epoch, spec.eval.batch_size))
            msg += part_accuracy(scored[-1], len(data["y_test"]))
            if not meet(backend):  # no barrier: the next epoch's first step holds the wait, off the window
                steps.hold_next_first()
            eval_s += time.perf_counter() - t1
        say(msg)
    out["train_s"] = time.perf_counter() - started - eval_s
    out["scored_parts"] = [dataclasses.asdict(p) for p in scored]
    if chief:  # the node's load as the window ended, as the single-process worker records it (the row is rank 0's)
        out.update(node_load())
    notes = [steps.warmup_note(), steps.async_note(), steps.new_shape_note(), steps.held_note()]
    out["notes"] += [n for n in notes if n]
    clock = steps.summary()  # the single-process row's own figures, from the same code
    out.update(
        durations=steps.durations,
        images=steps.images,
        segments=steps.segments if async_steps else None,
        **{k: clock.get(k) for k in OFF_WINDOW_FIELDS},
        **weights_checksums(backend, model),
    )
    if chief:  # the single-process worker's evaluation, so the row carries the same test-set fields
        y_test = data["y_test"].astype(np.int64)
        test = backend.put(data["x_test"], y_test, norm)
        # timed warm, as a single-process row's: always, as rank 0's per-epoch part is not the whole set, and its
        # shorter last batch is not the whole set's (a shape XLA or tf.function would compile inside eval_s)
        warm_up(backend, state, data["x_test"], y_test, norm, spec.eval.batch_size)
        timer = SyncTimer(backend.synchronize)
        out.update(evaluate(backend, state, test, y_test, classes, n_outputs, spec.eval.batch_size, timer))
        history[-1].update(test_acc=out["test_acc"], test_loss=out["test_loss"])
        out["history"] = history
        out["peak_device_mb"] = backend.peak_device_mb()
    return out


def run_rank(job: Job, ctx: DistContext) -> tuple[int, dict[str, Any]]:
    """This rank's result (exit code 0), or its error (exit code 1); ``leave`` in every case."""
    started = time.perf_counter()
    out: dict[str, Any] = {"rank": ctx.rank, "pid": os.getpid()}
    backend = None
    code = 0
    try:
        if job.dist is None:
            raise ValueError(f"{job.key}: a rank's job names no data-parallel layout (job.dist)")
        dist = job.dist
        spec = spec_from_dict(job.spec).for_backend(job.record["backend"])
        spec = dataclasses.replace(spec, runtime=dataclasses.replace(spec.runtime, threads=ctx.threads))
        backend = load_backend(job.record["backend"])
        if not dist.local and not callable(getattr(backend, "join", None)):
            raise NotImplementedError(f"backend {backend.name!r} has no data-parallel role (join/leave)")
        with np.load(job.data, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        out.update(train_rank(backend, spec, ctx, dist, data, tuple(job.classes), job.record["seed"]))
        out["status"] = "ok"
    except NotImplementedError as e:  # no data-parallel engine for this backend: the row is skipped, with why
        out.update(status="skipped", error=str(e))
        code = 1
    except BaseException as e:  # a rank's failure is reported by the launcher, naming the rank
        traceback.print_exc()
        out.update(status="failed", error=f"{type(e).__name__}: {e}")
        code = 1
    finally:
        leave = getattr(backend, "leave", None)  # DataParallel's, when the backend has that role
        if callable(leave):
            try:
                leave()
            except Exception:
                traceback.print_exc()
    out["peak_host_mb"] = peak_host_mb()
    out["wall_s"] = time.perf_counter() - started
    if backend is not None:
        out["known_differences"] = list(describe(backend.name).known_differences)
    return code, out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.run.dist_worker JOB.json (with BENCH_DIST_* in the environment)", file=sys.stderr)
        return 2
    job = Job.from_json(json.loads(Path(argv[0]).read_text()))
    ctx = DistContext.from_env()
    if ctx is None:
        print("error: not started as a data-parallel worker (no BENCH_DIST_RANK in the environment)", file=sys.stderr)
        return 2
    try:
        compile_cache = describe(job.record["backend"]).compile_cache
    except KeyError:  # run_rank fails the rank naming the unknown backend
        compile_cache = CompileCache()
    with first_run_compiles(compile_cache) as cache:  # the user's persistent compile cache, or none
        code, out = run_rank(job, ctx)
    cache_knob((out.get("configuration") or {}).get("knobs"), cache)
    if note := compile_cache_note(cache):
        out.setdefault("notes", []).append(note)
    path = rank_file(Path(job.result_dir), ctx.rank)
    write_atomic(path.parent, path, json.dumps(out, default=json_default).encode())  # whole or none
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
