"""Training parity: what one backend trains for the check, and the conventions that can be aligned for it.

The check (``bench.run.parity``) starts every backend from one set of weights (torch's ``state_dict`` layout,
the reference every backend exports and imports through its ``Parity`` role), feeds the same float32 batches
in the same order with no augmentation, and reads weights and held-out logits back after given step counts.
What still differs is each framework's own convention; ``ALIGNMENTS`` names each one that can be switched
for the check. A backend's ``align`` applies the names it is given and leaves the others as its framework
ships them (the suite's normal rows align none of the training conventions; the builders already align
BatchNorm momentum and epsilon, which ``bn_defaults`` undoes when it is left out).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bench.core.spec import TrainSpec

ALIGNMENTS: dict[str, str] = {
    "adam_eps": "Adam's epsilon added before the bias correction, as Keras does (torch adds it after: torch's "
    "step t uses eps / sqrt(1 - beta2^t) instead)",
    "adam_fp32_bias": "Adam's bias corrections 1 - beta^t in float32 with beta rounded to float32, as Keras computes "
    "them (torch: float64; 1 - float32(0.999) is 1.3e-5 off, a step-size difference of 6e-6 every step)",
    "bn_running_var": "BatchNorm's running variance updated with the biased batch variance, as Keras does "
    "(torch uses the unbiased one, n / (n - 1) larger)",
    "bn_defaults": "BatchNorm momentum and epsilon the same in both builds, as the suite's builders set them "
    "(off: Keras's layers take Keras's defaults, momentum 0.99 and epsilon 1e-3)",
    "bn_two_pass_var": "BatchNorm's batch variance as the mean of squared deviations from the batch mean, as torch, "
    "TensorFlow and JAX compute it (Keras's torch engine computes E[x^2] - E[x]^2 in one pass, which loses digits "
    "where a channel's mean is large against its spread)",
    "dropout_off": "dropout layers pass their input through (their random draws differ between frameworks)",
}
ALL = tuple(ALIGNMENTS)
# What the suite's normal rows do: builders align BatchNorm, nothing else (dropout draws are each framework's).
AS_SHIPPED = ("bn_defaults",)
CHECKPOINTS = (1, 10, 100)  # optimiser steps after which weights and held-out logits are read


class ParityError(ValueError):
    """A parity check that cannot run as asked (unknown alignment, a model one backend cannot hand over)."""


def check_alignments(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in ALIGNMENTS]
    if unknown:
        raise ParityError(f"unknown alignment(s) {unknown} (known: {', '.join(ALIGNMENTS)})")
    return tuple(names)


def parity_train(train: TrainSpec) -> TrainSpec:
    """The task's recipe as the check trains it: no augmentation (its draws differ between frameworks), every
    batch kept (the orders are handed over whole)."""
    return replace(train, augment=(), drop_last=False)


@dataclass(frozen=True)
class ParityJob:
    """One backend's part of a check, as the parent hands it to ``bench.run.parity_worker`` (JSON)."""

    backend: str
    spec: dict[str, Any]  # TaskSpec.to_dict(): the model, the recipe and the runtime
    input_shape: tuple[int, int, int]
    n_outputs: int
    data: str  # .npz: x (float32 NHWC), y, held (float32 NHWC), order (int64: every step's images, in order)
    out: str  # .npz the worker writes: w/<step>/<name> and logits/<step> for step 0 and every checkpoint
    initial: str = ""  # .npz of reference-layout weights to start from; "" = the backend's own init (seeded)
    checkpoints: tuple[int, ...] = CHECKPOINTS
    alignments: tuple[str, ...] = ALL
    seed: int = 0
    label: str = ""  # what the parent calls this trajectory ("torch", "torch+1ulp", ...); the backend when ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParityJob:
        return cls(
            **{
                **d,
                "input_shape": tuple(d["input_shape"]),
                "checkpoints": tuple(d["checkpoints"]),
                "alignments": tuple(d["alignments"]),
            }
        )
