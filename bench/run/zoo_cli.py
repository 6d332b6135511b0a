"""``python -m bench zoo``: inference and training-step throughput of every zoo architecture, per backend.

No runner of its own: one ``TaskSpec`` per architecture is made from the template
``bench/tasks/zoo/sweep.toml`` (its profile applied, then the sweep's image size and batch), and the
suite's runner runs them like any task -- warm worker servers, the step clock (first step and warm-up
excluded), resume, Ctrl-C, a failure as a failed row -- so the rows land in the usual results table and
``bench report`` / ``bench compare`` read them. ``bench.report.zoo`` adds the sweep's summary section and
plot.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools

from bench.core.spec import MAX_BATCH, MAX_IMAGE_SIZE, TASKS_DIR, TaskSpec, load_task
from bench.core.zoo import PREFIX, ZOO, entry
from bench.run.argtypes import integer

TEMPLATE = TASKS_DIR / "zoo" / "sweep.toml"
STEPS_PER_EPOCH = {"quick": 4, "full": 8}  # two epochs: the first step, warm-up, then the timed window


def _models(value: str) -> tuple[str, ...]:
    """--models: comma-separated zoo ids (with or without ``zoo:``), or ``all`` (the table's order)."""
    if value.strip() == "all":
        return tuple(ZOO)
    ids = tuple(v.strip().removeprefix(PREFIX) for v in value.split(",") if v.strip())
    unknown = [i for i in ids if i not in ZOO]
    if unknown or not ids:
        raise argparse.ArgumentTypeError(
            f"unknown zoo model(s) {unknown or value!r} (choose from {', '.join(ZOO)}, or all)"
        )
    return ids


def add_zoo_options(p: argparse.ArgumentParser) -> None:
    """The sweep's own options, bounded as a
    task's dataset.image_size and train.batch_size are: --image-size 100000 failed every row with MemoryError."""
    p.add_argument(
        "--models",
        type=_models,
        default=tuple(ZOO),
        metavar="IDS",
        help="comma-separated zoo ids (see docs/zoo.md), or all (default: all)",
    )
    p.add_argument(
        "--image-size",
        type=functools.partial(integer, low=1, high=MAX_IMAGE_SIZE),
        metavar="N",
        help="input side in pixels (default: the profile's: 32 quick, each model's own full); a model whose "
        "Keras build needs more runs at its minimum (32 px; 71-75 px for Xception/Inception), as a note at the "
        "start and its row say",
    )
    batch = functools.partial(integer, low=1, high=MAX_BATCH)
    p.add_argument("--batch", type=batch, metavar="N", help="training batch size (default: 8 quick, 32 full)")


def raised_sizes(tasks: list[TaskSpec], profile: str, image_size: int | None) -> str:
    """One line naming each model ``zoo_tasks`` runs above the size asked (--image-size, else the profile's), by
    the size it runs at; "" where none is. Until 2026-12-07 only the row's px column said it: ``--image-size 8``
    ran MobileNet V3 small at 32 px without a word."""
    asked = image_size or load_task(TEMPLATE, profile).dataset.image_size
    if not asked:  # each model's own input size (full): at least its minimum
        return ""
    raised: dict[int, list[str]] = {}
    for t in tasks:
        if t.dataset.image_size > asked:
            raised.setdefault(t.dataset.image_size, []).append(t.model.arch.removeprefix(PREFIX))
    if not raised:
        return ""
    given = f"--image-size {asked}" if image_size else f"the {profile} profile's {asked} px"
    runs = "; ".join(f"{size} px {', '.join(ids)}" for size, ids in sorted(raised.items()))
    return f"{given} is below the smallest side these models' Keras builds take, so each runs at its minimum: {runs}"


def zoo_tasks(models: tuple[str, ...], profile: str, image_size: int | None, batch: int | None) -> list[TaskSpec]:
    """One task per architecture, from the template with ``profile`` applied; names ``zoo-<id>``."""
    template = load_task(TEMPLATE, profile)
    batch = batch or template.train.batch_size
    steps = STEPS_PER_EPOCH.get(profile, STEPS_PER_EPOCH["quick"])
    tasks = []
    for zoo_id in models:
        row = entry(zoo_id)
        size = max(image_size or template.dataset.image_size or row.input_size, row.min_size)
        dataset = dataclasses.replace(template.dataset, image_size=size, max_train=batch * steps)
        tasks.append(
            dataclasses.replace(
                template,
                name=f"zoo-{row.id}",
                description=f"zoo sweep: {row.id} at {size} px, batch {batch}",
                dataset=dataset,
                model=dataclasses.replace(template.model, arch=PREFIX + row.id),
                train=dataclasses.replace(template.train, batch_size=batch),
            )
        )
    return tasks
