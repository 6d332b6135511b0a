"""Cross-dataset transfer: a trained model evaluated, unchanged, on another dataset's images.

The spec declares each target (``[[transfer]]``: dataset + class map); nothing here
knows about cats or CIFAR. Three steps, one direction:

1. ``prepare_targets`` (runner, parent process): load the target dataset, keep the
   mapped classes, bring its images to the source model's input shape, save them.
2. ``transfer_phase`` (worker, after training): the backend predicts; that's all it does.
3. ``transfer_metrics`` (here, once for both backends): two accuracies, because a
   10-way model on a 2-class target can be wrong in two ways. ``acc`` counts any
   prediction other than the mapped class as wrong (the model's real behaviour);
   ``acc_restricted`` compares only the mapped classes' outputs (did the model at least
   order cat vs dog right?). Both come with confusion matrices and per-class reports (bench.core.metrics).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np

from bench.core import metrics
from bench.core.phase import PhaseFunctions, Trained
from bench.core.progress import progress
from bench.core.record import TRANSFER_COLUMNS
from bench.core.runfiles import write_atomic
from bench.core.runpaths import task_data
from bench.core.spec import TaskSpec, TransferSpec
from datasets import registry
from datasets.arrays import ArrayDataset
from datasets.prepare import prepare


def load_target(
    target: TransferSpec, source: ArrayDataset, task: TaskSpec, data_dir: str | None, seed: int
) -> tuple[ArrayDataset, list[int]]:
    """The target's images of the mapped classes, shaped like the source's; and each one's source class index.

    Class names resolve by their own name or by what a stand-in stands for, on both sides; a source name as
    ``bench.run.datacheck`` resolved it up front (``ClassNames``, over every class of the source's data).
    """
    ds = registry.load(target.dataset, data_dir=data_dir, fallback=task.dataset.fallback, seed=seed)
    names = tuple(t for t, _ in target.class_map)
    source_index = [source.names.output(s) for _, s in target.class_map]
    h, w, c = source.image_shape
    if h != w:
        raise ValueError(f"transfer needs square source images, the source is {h}x{w}")
    if target.split == "train":  # evaluate on the target's training images: swap them into the test slot
        ds = dataclasses.replace(ds, train=ds.test, test=ds.train)
    shaped = prepare(ds, classes=names, max_test=task.dataset.max_test, channels=c, image_size=h, seed=seed)
    if len(shaped.test) == 0:
        raise ValueError(f"target {target.dataset!r} has no {target.split} images of classes {list(names)}")
    return shaped, source_index


def prepare_targets(
    task: TaskSpec, source: ArrayDataset, data_dir: str | None, seed: int, job_dir: Path
) -> list[dict[str, Any]]:
    """Load and save every transfer target of ``task``; the job entries the worker reads."""
    jobs = []
    for i, target in enumerate(task.transfer):
        where = f"transfer[{i}] ({target.dataset})"
        try:
            ds, source_index = load_target(target, source, task, data_dir, seed)
        except (ValueError, KeyError, FileNotFoundError) as e:
            raise ValueError(f"{where}: {e}") from e
        path = task_data(job_dir, task.name, f"transfer{i}")
        write_atomic(job_dir, path, functools.partial(np.savez, x=ds.test.x, y=ds.test.y))
        jobs.append(
            {
                "dataset": target.dataset,
                "split": target.split,
                "reported_acc": target.reported_acc or None,
                "source": ds.source,
                "classes": list(ds.classes),
                "source_index": source_index,
                "n": len(ds.test),
                "data": str(path),
                "notes": list(ds.notes),
            }
        )
    return jobs


def transfer_metrics(
    logits: np.ndarray, y: np.ndarray, classes: list[str], source_index: list[int], source_classes: list[str]
) -> dict[str, Any]:
    """Accuracy, restricted accuracy, confusion matrices and reports for one target.

    ``y`` indexes ``classes`` (the target's mapped classes); ``source_index[k]`` is the
    source model's class for target class ``k``. A one-logit binary head is read as
    two classes (``metrics.probabilities``).
    """
    probs = metrics.probabilities(logits)
    n_source = probs.shape[1]
    if len(source_classes) != n_source:
        raise ValueError(f"model has {n_source} classes, the source dataset {len(source_classes)}")
    index = np.asarray(source_index)
    pred = probs.argmax(1)
    truth = index[y]  # the source class each target image should get
    restricted = probs[:, index].argmax(1)  # which mapped class scores highest; indexes `classes`
    return {
        "n": len(y),
        "acc": metrics.accuracy(truth, pred),
        "acc_restricted": metrics.accuracy(y, restricted),
        # rows: target classes; columns: every source class (what the model actually said)
        "confusion_full": metrics.confusion(truth, pred, n_source)[index].tolist(),
        "confusion_restricted": metrics.confusion(y, restricted, len(classes)).tolist(),
        "predicted_as": {source_classes[k]: int(v) for k, v in enumerate(np.bincount(pred, minlength=n_source))},
        "report": metrics.class_report(y, restricted, classes),
    }


def transfer_phase(t: Trained) -> dict[str, Any]:
    """Worker phase: predict every prepared target with the trained model; record fields."""
    targets = t.job.transfer
    results = []
    for target in targets:
        with np.load(target["data"], allow_pickle=False) as f:
            x, y = f["x"], f["y"].astype(np.int64)
        data = t.backend.put(x, y, t.norm)  # uint8 until the device, as the training data
        logits = t.backend.predict(t.state, data, t.spec.eval.batch_size)
        metrics.check_logits(logits, len(y), t.spec.n_outputs(len(t.classes)))
        m = transfer_metrics(logits, y, target["classes"], target["source_index"], list(t.classes))
        progress(
            f"transfer -> {target['dataset']} ({m['n']} images): acc {m['acc']:.4f}  "
            f"restricted to {'/'.join(target['classes'])} {m['acc_restricted']:.4f}"
        )
        keep = ("dataset", "split", "source", "classes", "source_index", "reported_acc")
        results.append({k: target.get(k) for k in keep} | m)
    if not results:
        return {}
    first = results[0]
    return {
        "transfer_dataset": first["dataset"],
        "transfer_targets": len(results),
        "transfer_source": first["source"],
        "transfer_n": first["n"],
        "transfer_acc": first["acc"],
        "transfer_acc_restricted": first["acc_restricted"],
        "transfer": results,
    }


PHASE = PhaseFunctions(
    name="transfer",
    columns=(*TRANSFER_COLUMNS, "transfer"),
    run=transfer_phase,
)
