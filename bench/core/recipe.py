"""What a row ran, derived from its task spec: the history's series key and what `bench compare` checks first.

Until 2026-12-06 the recipe was a hand list of record columns (``record.RECIPE_FIELDS``), and every spec setting
left off it (normalisation, loss, momentum, weight decay, augmentation ...) compared as the same recipe: a change of
one read as a REGRESSION in compare and stayed in one history series. Now every field of every spec section is
recipe unless this module says otherwise, field by field: held by a record column of its own (``COLUMN``), moving
only some figures (``MOVES``), or not recipe at all (``EXCLUDED``, each with its reason). A field added to the spec
later is recipe by default (recorded, compared, hashed) until it is placed otherwise; tests/test_recipe.py walks the
spec's dataclasses and checks that each field is in exactly one place, each exclusion with its reason.

The recipe fields without a column of their own travel in one record column, ``recipe`` (JSON, every value the
row ran, defaults included). A field at its spec default is left out of the hash and of compare's check: a record
written before these fields were recorded (no ``recipe``) is taken to have run the defaults, so it hashes and
compares as it did, and a field added later starts no new series where it keeps its default.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Iterator
from typing import Any

from bench.core.record import DECOUPLE_COLUMNS, EXPLAIN_COLUMNS, MOVES_WITH, RECIPE_FIELDS, TRANSFER_COLUMNS
from bench.core.spec import DecoupleSpec, ExplainSpec, TaskSpec, TransferSpec

# The spec fields a record column of RECIPE_FIELDS holds (that column is compared and hashed, as before)
COLUMN = {
    "seed": "seed",
    "profile": "profile",
    "dataset.name": "dataset",
    "dataset.image_size": "image_shape",  # the images' shape as loaded and resized, whichever setting gave it
    "dataset.channels": "image_shape",
    "dataset.max_train": "n_train",  # the images trained on (bench all's budget sizes them: MOVES_WITH)
    "dataset.max_test": "n_test",
    "dataset.fallback": "dataset_source",  # the source the row's data came from, which the fallback only allows
    "model.arch": "model",
    "model.init": "init",
    "model.options": "model_options",
    "model.layers": "model_options",
    "model.pretrained": "pretrained",  # "imagenet (<weights file>)" or "no (random init: ...)"
    "model.weights": "pretrained",
    "train.epochs": "epochs",
    "train.batch_size": "batch_size",
    "train.lr": "lr",
    "train.optimizer": "optimizer",
    "train.eps": "adam_eps",
    "distributed.workers": "workers",
    "distributed.mode": "scaling_mode",
}

# The peak host RSS is read as the row's worker ends, after its phases: a phase's settings move it too
_PEAK = ("peak_host_mb",)
# Recipe fields that move only these figures: another value starts new series of those alone, and compare leaves
# those unjudged and judges the rest (as MOVES_WITH does for the size fields)
MOVES = {
    "train.target_acc": ("time_to_target_s",),  # when a row is timed to, not what it trains
    # test images per inference call: the inference rate and the memory it peaks at, not the model or its accuracy
    "eval.batch_size": ("eval_img_s", "eval_s", "peak_host_mb", "peak_device_mb"),
    # the explain phase's settings (which layer, how many images a call, which class): its timings alone
    **{f"explain.{f.name}": EXPLAIN_COLUMNS + _PEAK for f in dataclasses.fields(ExplainSpec)},
    # the forest and the logistic regression on the trained model's features: their accuracies alone
    **{f"decouple.{f.name}": DECOUPLE_COLUMNS + _PEAK for f in dataclasses.fields(DecoupleSpec)},
    # the other dataset the trained model is evaluated on, its class map and split: the transfer accuracies alone
    **{f"transfer.{name}": TRANSFER_COLUMNS + _PEAK for name in ("dataset", "class_map", "split")},
}

# Not recipe: a row's key, words about it, where or how it runs, how it is measured or judged. A runtime knob is
# the row's config (its knob columns and ``knobs``): a tuned row keeps its series through its config (the
# history's key), and the footing compare warns of (device, threads) is said beside the table.
_KNOB = "a performance knob: the row's config and knob columns, not its recipe"
_CLOCK = "how the step clock measures a row (the figures' windows), not what it trains"
_WHERE = "where a row's job queues (SLURM), not what it runs"
EXCLUDED = {
    "name": "the row's task: compare's key and the history's series, not a setting",
    "description": "words about the task",
    "source": "the file the task was read from (a path on this machine)",
    "profile_changes": "what the profile sets apart from the full recipe: derived from the fields above",
    "flags": "which of the keys the command line set, not their values (the fields hold those)",
    "knobs": "the per-backend runtime overrides of a tuning run: the row's config (knob_config, knobs)",
    "config": "the tuning run's label of the row's knob configuration: the history's series key",
    "base": "the task a tuning row was derived from: the history's series key (base_task)",
    "eval.per_epoch": "untimed test-set evaluations between epochs (never on the step clock): the same training "
    "and figures, more points on the curves",
    "eval.select": "adds best_epoch / best_test_acc beside test_acc, which stays the last epoch's",
    "eval.equivalence_margin_pt": "how summary.md judges two backends' repeats, not what either ran",
    "eval.reported_acc": "the original experiment's figure, shown beside the row's",
    "transfer.reported_acc": "the original experiment's figure, shown beside the row's",
    "runtime.device": "where the row runs: its device column, a footing compare warns of",
    "runtime.threads": _KNOB + " (its threads column, a footing compare warns of)",
    "runtime.threads_share": _KNOB + " (resolved to runtime.threads in the row's worker)",
    "runtime.jit_compile": _KNOB,
    "runtime.precision": _KNOB,
    "runtime.channels_last": _KNOB,
    "runtime.torch_compile": _KNOB,
    "runtime.compile_mode": _KNOB,
    "runtime.steps_per_execution": _KNOB,
    "runtime.tf32": _KNOB,
    "runtime.cudnn_benchmark": _KNOB,
    "runtime.fused_optimizer": _KNOB,
    "runtime.device_data_mb": _KNOB + " (where the training split lives)",
    "runtime.warmup_steps": _CLOCK,
    "runtime.timed_steps": _CLOCK,
    "runtime.profile_ops": "the framework profiler's top operations, beside the figures",
    "runtime.slurm_partition": _WHERE,
    "runtime.slurm_account": _WHERE,
    "runtime.slurm_time_min": _WHERE,
    "distributed.threads_per_worker": _KNOB,
    "distributed.timeout_s": "how long a collective waits for a dead peer before the row fails",
    "distributed.allreduce_share": "an extra timing in workers that never join, beside the figures",
}

_SECTIONS = {f.name: f for f in dataclasses.fields(TaskSpec)}


def spec_fields() -> Iterator[tuple[str, Any]]:
    """Every field of the task spec as (dotted key, its default or MISSING), sections walked (``transfer``: the
    fields of its entries, a list of values over them)."""
    hints = typing.get_type_hints(TaskSpec)
    for name, f in _SECTIONS.items():
        kind = hints[name]
        if typing.get_origin(kind) is tuple and typing.get_args(kind)[0] is TransferSpec:
            yield from ((f"{name}.{g.name}", []) for g in dataclasses.fields(TransferSpec))
        elif dataclasses.is_dataclass(kind):
            yield from ((f"{name}.{g.name}", g.default) for g in dataclasses.fields(kind))
        else:
            yield name, f.default


def _plain(v: Any) -> Any:
    """A spec value as JSON holds it (tuples as lists)."""
    return [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v


# The recipe fields the ``recipe`` column holds, each with its default as JSON holds it
RECORDED = {k: _plain(d) for k, d in spec_fields() if k not in COLUMN and k not in EXCLUDED}


def value_of(spec: TaskSpec, key: str) -> Any:
    """The spec's value of a dotted key (for ``transfer``, the list of its entries' values), as JSON holds it."""
    section, _, name = key.partition(".")
    part = getattr(spec, section)
    if not name:
        return _plain(part)
    if isinstance(part, tuple):
        return [_plain(getattr(t, name)) for t in part]
    return _plain(getattr(part, name))


def recorded_recipe(spec: TaskSpec) -> str:
    """The record's ``recipe`` column: every RECORDED field's value, as JSON."""
    return json.dumps({k: value_of(spec, k) for k in RECORDED}, sort_keys=True)


def recorded(record: dict[str, Any]) -> dict[str, Any]:
    """A record's ``recipe`` column as a dict; {} for a record from before it (or a cell that holds none); text that
    is no JSON object is kept whole under ``recipe`` (a hand edit: it differs from every recorded recipe)."""
    cell = record.get("recipe")
    if not isinstance(cell, str):
        return {}
    try:
        out = json.loads(cell)
    except ValueError:
        return {"recipe": cell}
    return out if isinstance(out, dict) else {"recipe": cell}


def moved(field: str) -> tuple[str, ...] | None:
    """The figures a change of ``field`` moves; None for all of them."""
    return MOVES_WITH[field] if field in MOVES_WITH else MOVES.get(field)


def _moves(field: str, metric: str | None) -> bool:
    figures = moved(field)
    return metric is None or figures is None or metric in figures


def set_apart(record: dict[str, Any]) -> dict[str, Any]:
    """The record's recorded recipe fields that are not at their default (an unknown field always is)."""
    return {k: v for k, v in recorded(record).items() if k not in RECORDED or v != RECORDED[k]}


def recipe_of(record: dict[str, Any], metric: str | None = None) -> dict[str, Any]:
    """What ``record`` ran: its RECIPE_FIELDS columns and its recorded fields set apart from their defaults; for
    ``metric``, only the fields that move it (a record without ``recipe`` gives what it gave before 2026-12-06)."""
    own = {f: record.get(f) for f in RECIPE_FIELDS if _moves(f, metric)}
    return own | {k: v for k, v in set_apart(record).items() if _moves(k, metric)}


def records_recipe(record: dict[str, Any]) -> bool:
    """Whether ``record`` says what it ran beyond its recipe columns (written since the ``recipe`` column was)."""
    return isinstance(record.get("recipe"), str)


def recipe_differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The recorded recipe fields two records ran differently: (A's value, B's). A field absent from one side's
    ``recipe`` counts as its default there (added to the spec since). A record written before the column was says
    nothing of these fields: unknown, not different (a built-in task that sets one apart from its default, such as
    a rescale of 1/255, ran it then too), so two such records are compared on their recipe columns alone, as before
    (``unrecorded_line`` says so)."""
    if not (records_recipe(a) and records_recipe(b)):
        return {}
    ra, rb = recorded(a), recorded(b)
    out = {}
    for k in dict.fromkeys([*set_apart(a), *set_apart(b)]):
        default = RECORDED.get(k)
        if ra.get(k, default) != rb.get(k, default):
            out[k] = (ra.get(k), rb.get(k))
    return out
