"""Training parity's numbers: how far two backends' trajectories are apart, and the fp32 bound they are held to.

Two backends that take the same steps from the same weights still round differently (other kernels, other
summation orders), and training amplifies a rounding difference as it goes (most near a dying ReLU channel,
where one ulp can decide whether it dies). How much is measured, not guessed: the reference backend runs the
same steps a second time with two changes fp32 cannot tell from the same computation, every weight moved by
one unit in the last place (``ulp_perturbed``) and the images of each batch in another order
(``shuffled_within_batches``: the same mean loss, summed in another order, as another framework's kernels
sum it). That pair's distance at each step is the rounding floor; a backend pair is within the bound when
its largest difference is at most ``FACTOR`` times the largest floor seen so far (never less than one ulp
of the largest weight or logit, which step 0 needs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

Weights = dict[str, np.ndarray]
# step -> (weights in the reference layout, held-out logits)
Trajectory = dict[int, tuple[Weights, np.ndarray]]

EPS32 = float(np.finfo(np.float32).eps)  # 2^-23: one ulp at 1.0
# Another framework's kernels differ from the floor run by more than one reordering: other blockings, fused
# ops, other conv algorithms. Measured on the 2-core VM (docs/methodology.md, "Training parity"), aligned pairs
# stayed within 2.7 floors over 100 steps; 10 leaves room without hiding an unaligned convention (Adam's
# epsilon placement left as shipped: 3,680 floors after the first step).
FACTOR = 10.0


def ulp_perturbed(weights: Weights, seed: int = 0) -> Weights:
    """Every float weight moved one ulp up or down (a seeded random sign per element); integers kept."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, w in weights.items():
        if np.issubdtype(w.dtype, np.floating):
            direction = np.where(rng.random(w.shape) < 0.5, -np.inf, np.inf).astype(w.dtype)
            out[name] = np.nextafter(w, direction)
        else:
            out[name] = w
    return out


def shuffled_within_batches(order: np.ndarray, batch_size: int, seed: int = 0) -> np.ndarray:
    """The same batches in the same order, each batch's images permuted: equal mean losses, summed otherwise."""
    rng = np.random.default_rng(seed)
    out = np.array(order, copy=True)
    for start in range(0, len(out), batch_size):
        out[start : start + batch_size] = rng.permutation(out[start : start + batch_size])
    return out


def trajectory(arrays: dict[str, np.ndarray]) -> Trajectory:
    """A worker's file (``w/<step>/<name>``, ``logits/<step>``) as step -> (weights, logits)."""
    steps = sorted(int(k.split("/")[1]) for k in arrays if k.startswith("logits/"))
    out: Trajectory = {}
    for step in steps:
        prefix = f"w/{step}/"
        weights = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
        out[step] = (weights, arrays[f"logits/{step}"])
    return out


def weight_diff(a: Weights, b: Weights) -> float:
    """Largest absolute difference over every float weight; the two must hold the same names and shapes."""
    return largest_diff(a, b)[0]


def largest_diff(a: Weights, b: Weights) -> tuple[float, str]:
    """``weight_diff`` and the name of the weight where it is (the first such; "" when every weight is equal)."""
    if a.keys() != b.keys():
        raise ValueError(f"weights differ in names: only in one {sorted(a.keys() ^ b.keys())[:5]}")
    worst, where = 0.0, ""
    for name, x in a.items():
        if not np.issubdtype(x.dtype, np.floating):
            continue  # torch's BatchNorm step counter: no Keras twin
        if x.shape != b[name].shape:
            raise ValueError(f"{name}: shapes {x.shape} and {b[name].shape}")
        d = float(np.max(np.abs(x.astype(np.float64) - b[name]), initial=0.0))
        if d > worst:
            worst, where = d, name
    return worst, where


def largest(weights: Weights) -> float:
    return max(
        (float(np.max(np.abs(w), initial=0.0)) for w in weights.values() if np.issubdtype(w.dtype, np.floating)),
        default=0.0,
    )


def logit_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        raise ValueError(f"logits have shapes {a.shape} and {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0))


@dataclass(frozen=True)
class Bound:
    """The tolerance at one step: ``factor`` x the largest rounding floor so far (the floor run's distance)."""

    step: int
    floor_weight: float
    floor_logit: float
    weight: float
    logit: float
    factor: float
    # How far training has moved the reference's weights since step 0 (the largest change of any weight; inf
    # with no step 0 to measure from), and the weight where the largest floor so far was first seen.
    moved: float = math.inf
    floor_at: str = ""
    # The check's earlier steps, for the hint of an undecided one (``why_undecided``): its first step after step 0,
    # and the last step before this one that the bound decided (None: none)
    first_step: int | None = None
    last_decided: int | None = None

    @property
    def decides(self) -> bool:
        """False where the bound admits a difference as large as training's whole movement: rounding alone has
        taken the two runs apart, and no convention could show beside it. Adam does that at a gradient as
        small as its rounding error: its first steps move a weight by ``lr`` times the gradient's sign, and
        the sign is the rounding's (LeNet-5 on the MNIST stand-in, 2026-12-05: the floor run's conv1 bias took
        a step of the other sign, 0.02 = 2 lr at step 1, and the bound was 0.2 against a Keras difference of
        9e-10)."""
        return self.step == 0 or self.weight < self.moved

    def why_undecided(self) -> str:
        """Why this step decides nothing, and what would. Fewer steps only where there are fewer to take: at step 1
        the hint read "(fewer steps, ...)" (QA, 2026-12-07: mnist-lenet5, undecided from its first step)."""
        where = self.floor_at or "a weight"
        if self.step <= 1:
            instead = (
                f"undecided at the first step, so fewer steps cannot help: only a case whose gradient at {where} is "
                "not at rounding level would decide"
            )
        elif self.last_decided is not None:
            instead = f"fewer steps: step {self.last_decided} of this check decides; or a case whose gradients are not "
            instead += "at rounding level"
        elif self.first_step == 1:  # every step of the check undecided, from the first there is
            instead = (
                "undecided at every step of this check from step 1, so fewer steps are unlikely to help: a case whose "
                "gradients are not at rounding level would decide"
            )
        else:
            instead = "fewer steps, or a case whose gradients are not at rounding level"
        return (
            f"undecided: rounding alone moved {where} by {self.weight / self.factor:.2g} by step "
            f"{self.step} (the reference run against itself with the last bit and the sum order changed), so the "
            f"bound {self.weight:.2g} is as large as training's own movement ({self.moved:.2g}): this case cannot "
            f"tell a convention from rounding ({instead})"
        )


def bounds(reference: Trajectory, floor: Trajectory, factor: float = FACTOR) -> dict[int, Bound]:
    """Per step: ``factor`` x the largest floor so far (at least one ulp of the largest weight or logit)."""
    out: dict[int, Bound] = {}
    worst_w, worst_l, worst_at = 0.0, 0.0, ""
    start = reference.get(0, (None, None))[0]
    first = min((s for s in reference if s > 0), default=None)  # the check's first step after step 0
    for step in sorted(reference):
        (w, logits), (fw_, fl_) = reference[step], floor[step]
        (fw, at), fl = largest_diff(w, fw_), logit_diff(logits, fl_)
        if fw > worst_w:
            worst_at = at
        worst_w = max(worst_w, fw, EPS32 * largest(w))
        worst_l = max(worst_l, fl, EPS32 * float(np.max(np.abs(logits), initial=0.0)))
        moved = weight_diff(w, start) if start is not None else math.inf
        decided = max((s for s, b in out.items() if s > 0 and b.decides), default=None)
        out[step] = Bound(step, fw, fl, factor * worst_w, factor * worst_l, factor, moved, worst_at, first, decided)
    return out


@dataclass(frozen=True)
class PairDiff:
    """Two trajectories at one step: their largest weight and logit differences, and whether the bound holds."""

    a: str
    b: str
    step: int
    weight_diff: float
    logit_diff: float
    bound: Bound

    @property
    def within(self) -> bool:
        return self.weight_diff <= self.bound.weight and self.logit_diff <= self.bound.logit

    @property
    def ratio(self) -> float:
        """The difference as a share of the bound, the larger of weights and logits (within: at most 1)."""
        b = self.bound
        return max(self.weight_diff / b.weight, self.logit_diff / b.logit) if b.weight and b.logit else 0.0


def pair_diffs(runs: dict[str, Trajectory], limits: dict[int, Bound]) -> list[PairDiff]:
    """Every pair of ``runs`` (in the given order) at every step both reached."""
    out = []
    for a, b in combinations(runs, 2):
        for step in sorted(set(runs[a]) & set(runs[b]) & set(limits)):
            (wa, la), (wb, lb) = runs[a][step], runs[b][step]
            out.append(PairDiff(a, b, step, weight_diff(wa, wb), logit_diff(la, lb), limits[step]))
    return out


def growth(diffs: Iterable[PairDiff]) -> dict[tuple[str, str], dict[int, tuple[float, float]]]:
    """(a, b) -> step -> (weight diff, logit diff): how a pair's distance grows with the steps."""
    out: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
    for d in diffs:
        out.setdefault((d.a, d.b), {})[d.step] = (d.weight_diff, d.logit_diff)
    return out
