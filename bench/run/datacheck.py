"""A run's tasks held against their data before any worker starts (`bench run`, `all`, `tune`, `--resume`).

What the data's files and tables say without loading an image: that each dataset can be had (a file, a stand-in,
or an embedded default the task allows), that the classes a task names are there, that a batch fits the training
images, that a layer list takes their shape. Each is a SpecError naming the task file and the key, so the command
exits 2 with one line and nothing started: found only when the task's turn came, they failed its rows after other
tasks had trained. Where the data cannot say (an unreadable file), loading it says why and the task's rows fail
(``task_data.prepare_task``, which checks the batch and the shape again on the loaded data).
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.core.catalog import architecture
from bench.core.spec import SpecError, TaskSpec, check_fits_data, check_fits_image
from datasets import registry
from datasets.arrays import ClassCounts, ClassNames


def check_task_data(tasks: Sequence[TaskSpec], data_dir: str | None) -> None:
    """Every check of this module on every task, in the order a task's data is prepared."""
    for task in tasks:
        if task.dataset.name in registry.DATASETS:  # an unknown name is refused at load, naming the known ones
            check_found(task, data_dir)
            d = task.dataset
            counts = registry.class_counts(d.name, data_dir, d.fallback)  # its labels, read once for both checks
            check_classes(task, counts, data_dir)
            check_batch_fits(task, counts)
            check_images_fit(task, data_dir)


def check_found(task: TaskSpec, data_dir: str | None) -> None:
    """SpecError where the task's dataset or a transfer target has nothing ``registry.load`` may use: no file,
    and ``dataset.fallback = "none"`` (which targets follow too) or no embedded default."""
    for key, name in [("dataset.name", task.dataset.name)] + [
        (f"transfer[{i}].dataset", t.dataset) for i, t in enumerate(task.transfer) if t.dataset in registry.DATASETS
    ]:
        try:
            registry.check_found(name, data_dir, task.dataset.fallback)
        except registry.DatasetNotFound as e:
            raise SpecError(f"{task.source}: {key}: {e}") from None


def check_classes(task: TaskSpec, source: ClassCounts | None, data_dir: str | None) -> None:
    """SpecError where ``dataset.classes`` names a class the data does not have or one class twice (by its own
    name and by what it stands for), or a binary loss gets other than two, or a transfer's ``class_map`` fails
    ``check_class_map``: the data's class names (``source``: the dataset's ``registry.class_counts``). Found when
    the data was loaded, each failed the task's rows."""
    d = task.dataset
    if source is not None:
        for name in d.classes:
            if source.names.find(name) is None:
                raise SpecError(
                    f"{task.source}: dataset.classes: {d.name!r} has no class {name!r} (has: {source.names.named()})"
                )
        if twice := source.names.twice(d.classes):  # "cat" and the stand-in's "ring" are one class: one output
            raise SpecError(
                f"{task.source}: dataset.classes: {twice[0]!r} and {twice[1]!r} name one class of {d.name!r} twice "
                f"(has: {source.names.named()})"
            )
        task.n_outputs(len(d.classes) or len(source.classes))  # a binary head needs two classes
    trained = None if source is None else source.names.keep(d.classes)  # the model's outputs, as transfer finds them
    for i, t in enumerate(task.transfer):
        target = registry.class_counts(t.dataset, data_dir, d.fallback) if t.dataset in registry.DATASETS else None
        check_class_map(task, i, None if target is None else target.names, trained)


def check_class_map(task: TaskSpec, i: int, target: ClassNames | None, trained: ClassNames | None) -> None:
    """SpecError where ``transfer[i].class_map`` names a class its target does not have, or one twice (by its own
    name and by what it stands for: refused once the target was loaded, after the workers started), or a source
    class the trained model does not predict, or maps two target classes to one source class by two of its names
    (the spec refuses one name written twice; this ran, scoring both against one output). ``target``: the target's
    class names, ``trained``: the model's outputs; either None where the data cannot say."""
    t = task.transfer[i]
    for target_class, source_class in t.class_map:
        if target is not None and target.find(target_class) is None:
            raise SpecError(
                f"{task.source}: transfer[{i}].class_map: {t.dataset!r} has no class {target_class!r} "
                f"(has: {target.named()})"
            )
        if trained is not None:
            try:
                trained.output(source_class)
            except ValueError as e:
                raise SpecError(f"{task.source}: transfer[{i}].class_map.{target_class}: {e}") from None
    if target is not None and (twice := target.twice([c for c, _ in t.class_map])):
        raise SpecError(
            f"{task.source}: transfer[{i}].class_map: {twice[0]!r} and {twice[1]!r} name one class of "
            f"{t.dataset!r} twice (has: {target.named()})"
        )
    if trained is not None and (twice := trained.twice([c for _, c in t.class_map])):
        raise SpecError(
            f"{task.source}: transfer[{i}].class_map: two target classes map to the same source class "
            f"({twice[0]!r} and {twice[1]!r} are one class of {task.dataset.name!r})"
        )


def check_batch_fits(task: TaskSpec, counts: ClassCounts | None) -> None:
    """SpecError where ``train.batch_size`` is more than the training images the task gets: the data's count of
    its classes (``counts``: the dataset's ``registry.class_counts``), at most ``dataset.max_train``
    (``datasets.prepare.subsample``)."""
    d = task.dataset
    n = None if counts is None else counts.selected(d.classes)
    if n is not None:
        check_fits_data(task, min(n, d.max_train) if d.max_train else n)


def check_images_fit(task: TaskSpec, data_dir: str | None) -> None:
    """SpecError where the task cannot take its images (dataset.mean/std their channels, a layer list their shape,
    a big model their channels or size): their shape is the dataset's own (its file's header or its embedded
    default: ``registry.image_shape``) after the spec's image_size and channels."""
    d = task.dataset
    arch = architecture(task.model)
    native = registry.image_shape(d.name, data_dir, d.fallback) if arch.layers or arch.zoo or d.mean else None
    if native is not None:
        h, w, c = native
        check_fits_image(task, (d.image_size or h, d.image_size or w, d.channels or c))
