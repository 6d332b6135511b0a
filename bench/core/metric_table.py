"""Every results figure the reports show or judge, described once: its words, format, kind and what moves it.

The side-by-side table (``bench.report.tables``), ``bench compare`` (``bench.report.compare``), the history
(``bench.history.metrics``) and the recipe hash (``bench.core.record.MOVES_WITH``) all read ``METRICS``: a new
results column is one ``Metric`` here, and which way it is better follows from its kind, said once in ``BETTER``.
Until 2026-12-06 a column was described in four registries and two sentences (adding ``test_macro_f1`` meant
reading all six).
"""

from __future__ import annotations

from dataclasses import dataclass

# What a figure is: which way is better (``BETTER``), which threshold ``bench compare`` applies (time: rates,
# times and MFU; accuracy; memory) and how the history normalises it (a rate divides by the machine's measured
# speed, a time multiplies; the others stay as they are).
ACCURACY, LOSS, RATE, TIME, SHARE, MEMORY, OTHER = "accuracy", "loss", "rate", "time", "share", "memory", "other"
BETTER = {ACCURACY: True, RATE: True, SHARE: True, LOSS: False, TIME: False, MEMORY: False}  # higher is better?


@dataclass(frozen=True)
class Metric:
    """One results figure. ``compared`` and ``followed`` place it among ``bench compare``'s rows and the history's
    series (None: not judged there); their orders are not the table's, and each place keeps its own."""

    column: str  # the Record column
    words: str  # what summary.md, the run's page, compare and the history call it
    fmt: str | None = None  # the table's number format; None: not a row of the task's table
    kind: str = OTHER  # OTHER: no better direction (a count, a spread, a share of the step)
    lo: str | None = None  # the Record columns of its interval's bounds (the history draws them)
    hi: str | None = None
    moves_with: tuple[str, ...] = ()  # the recipe fields that size a run and move this figure (``record.SIZE_FIELDS``)
    seconds: str | None = None  # the seconds a time figure was measured as (compare's time floor)
    compared: int | None = None  # its place among bench compare's rows
    followed: int | None = None  # its place among the history's series
    # a figure proportional to another, with no interval of its own (MFU: the headline throughput over a peak): the
    # history gives it that figure's interval, scaled (QA, 2026-12-07: MFU -62.9%, robust z -44.8, a REGRESSION, at
    # a run whose headline fell 83% and was not flagged: its interval was wide, MFU had none)
    interval_of: str | None = None

    @property
    def higher_is_better(self) -> bool | None:
        """Which way is better, from its kind; None for a figure with no better direction."""
        return BETTER.get(self.kind)


_SIZED = ("epochs", "n_train")  # a figure that moves with the epochs and the images per epoch
METRICS: tuple[Metric, ...] = (
    Metric("test_acc", "test accuracy", ".4f", ACCURACY, moves_with=_SIZED, compared=8, followed=8),
    Metric("test_loss", "test loss", ".4f", LOSS),
    # judged as test accuracy is (the same threshold, --max-acc-drop), and moved by what moves it: both are read off
    # one model's test-set predictions, which more epochs or images per epoch change
    Metric("test_macro_f1", "test macro-F1", ".4f", ACCURACY, moves_with=_SIZED, compared=9),
    Metric("train_s", "training time (s)", ".2f", TIME, moves_with=_SIZED, seconds="train_s", compared=1, followed=4),
    Metric(
        "epoch_s_median",
        "steady epoch (s, median)",
        ".3f",
        TIME,
        "epoch_s_min",
        "epoch_s_max",
        moves_with=("n_train",),
        seconds="epoch_s_median",
        compared=2,
        followed=5,
    ),
    # an epoch's images over its median time: it moves with the images per epoch as the median epoch does (each epoch
    # call's overhead spread over more or fewer images; QA, 2026-12-07: a --max-train 500 run read -84.8%, a REGRESSION
    # in history, and compare judged it where it called the epoch times "recipe differs")
    Metric(
        "throughput_img_s",
        "steady throughput (img/s)",
        ",.0f",
        RATE,
        moves_with=("n_train",),
        seconds="epoch_s_median",
        compared=3,
        followed=2,
    ),
    Metric(
        "steady_img_s",
        "headline throughput: timed images / window time (img/s, 95% CI)",
        ",.1f",
        RATE,
        "steady_img_s_ci_lo",
        "steady_img_s_ci_hi",
        compared=4,
        followed=1,
    ),
    Metric("median_step_img_s", "median step throughput (img/s)", ",.1f", RATE),
    Metric("steady_img_s_spread_pct", "step throughput spread between repeats (%)", ".1f"),
    Metric("steady_epoch_ratio", "step / epoch throughput", ".3f"),
    Metric("timed_steps", "timed steps", ",.0f"),
    Metric("timed_s", "timed window (s)", ".2f"),
    Metric("epoch_overhead_s", "per-epoch call overhead (s)", ".3f", TIME),
    Metric("input_share", "input path / step", ".1%"),
    Metric("first_epoch_s", "first epoch (s)", ".3f", TIME),
    Metric("first_step_s", "first step (s)", ".3f", TIME, seconds="first_step_s", compared=6),
    Metric("compile_s", "first-step overhead (s)", ".3f", TIME, followed=6),
    # before the first step: the model's construction and the optimizer's build, where Keras on JAX compiles an XLA
    # program per initialiser shape (2.0 s for LeNet-5 at load 1.3 on 2 cores, 6.8 s at load 6, where torch took
    # 5-8 ms): in no row of the table until 2026-12-06
    Metric("build_s", "model build (s)", ".3f", TIME),
    Metric("mfu", "MFU", ".2%", SHARE, compared=5, followed=10, interval_of="steady_img_s"),
    Metric("eval_img_s", "inference (img/s)", ",.0f", RATE, seconds="eval_s", compared=7, followed=3),
    Metric("time_to_target_s", "time to target acc (s)", ".2f", TIME),
    Metric("transfer_acc", "transfer acc (all classes)", ".4f", ACCURACY, moves_with=_SIZED, followed=9),
    Metric("transfer_acc_restricted", "transfer acc (mapped classes)", ".4f", ACCURACY),
    Metric("forward_ms_per_img", "forward, explain batch (ms/img)", ".3f", TIME),
    Metric("gradcam_ms_per_img", "Grad-CAM (ms/img)", ".3f", TIME, followed=7),
    Metric("gradcam_forward_ratio", "Grad-CAM / forward", ".2f"),
    Metric("saliency_ms_per_img", "saliency (ms/img)", ".3f", TIME),
    Metric("peak_host_mb", "peak host RSS (MB)", ",.0f", MEMORY, moves_with=("n_train",), compared=10, followed=11),
    Metric("peak_device_mb", "peak device memory (MB)", ",.0f", MEMORY, moves_with=("n_train",), compared=11),
    Metric("params", "parameters", ",.0f"),
    # not a row of the task's table: the scaling section's figure title (bench.report.scaling)
    Metric("scaling_eff", "scaling efficiency", None, SHARE, "scaling_eff_ci_lo", "scaling_eff_ci_hi", followed=12),
)
BY_COLUMN = {m.column: m for m in METRICS}
TABLE = tuple(m for m in METRICS if m.fmt is not None)  # the side-by-side table's rows, in order
COMPARED = tuple(sorted((m for m in METRICS if m.compared is not None), key=lambda m: m.compared or 0))
FOLLOWED = tuple(sorted((m for m in METRICS if m.followed is not None), key=lambda m: m.followed or 0))
