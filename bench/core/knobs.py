"""Performance knobs as data: what each backend can be switched to, and which combinations this machine runs.

A backend declares its knobs beside its description (``BackendInfo.knob_space``), the way timm
keeps pretrained configs as data: each knob lists its values, the first being what the framework
does out of the box, and each value says which ``[runtime]`` fields it sets and which machine
capabilities it needs (``bench.core.capabilities``). ``configurations`` takes the product of the
knobs (compile and layout are searched together: inductor changes layouts itself, so the two are
not independent), drops the combinations this machine cannot run with the reason, and labels
each one so a row says what it ran. A knob marked ``alone`` is raced with every other knob at its default: one
configuration per value rather than a product that multiplies the race (``cpu_threads``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KnobValue:
    label: str  # what the row and the report show: "off", "max-autotune", "bf16"
    runtime: tuple[tuple[str, Any], ...] = ()  # the RuntimeSpec fields this value sets
    needs: tuple[str, ...] = ()  # capabilities (bench.core.capabilities.CAPABILITIES) it cannot run without


@dataclass(frozen=True)
class Knob:
    name: str
    values: tuple[KnobValue, ...]  # values[0]: the framework's out-of-the-box behaviour
    alone: bool = False  # raced with the other knobs at their defaults, not in their product

    @property
    def default(self) -> KnobValue:
        return self.values[0]


@dataclass(frozen=True)
class Config:
    """One point of a backend's knob space: a value per knob."""

    choice: tuple[tuple[str, str], ...]  # (knob, value label), in the space's order
    runtime: tuple[tuple[str, Any], ...]  # the RuntimeSpec overrides, merged over the knobs
    changed: tuple[str, ...]  # the knobs set away from their default

    @property
    def is_default(self) -> bool:
        return not self.changed

    @property
    def label(self) -> str:
        """The knobs that differ from the defaults ("compile=max-autotune-no-cudagraphs, precision=bf16"),
        or "default"."""
        return ", ".join(f"{k}={v}" for k, v in self.choice if k in self.changed) or "default"

    def values(self) -> dict[str, str]:
        return dict(self.choice)


def knob(name: str, *values: KnobValue, alone: bool = False) -> Knob:
    if not values:
        raise ValueError(f"knob {name!r} has no values")
    return Knob(name, tuple(values), alone)


def value(label: str, needs: tuple[str, ...] = (), **runtime: Any) -> KnobValue:
    return KnobValue(label, tuple(sorted(runtime.items())), needs)


def configurations(
    space: tuple[Knob, ...], capabilities: Mapping[str, bool]
) -> tuple[list[Config], list[tuple[Config, str]]]:
    """Every combination of ``space``: (runnable here, [(skipped, why)]); the default comes first.

    A knob none of whose non-default values can run here collapses to its default, so its dead
    combinations are not listed one by one: its values are reported once, as skipped singles. An
    ``alone`` knob's other values follow the product, each with every other knob at its default.
    """
    runnable: list[Config] = []
    skipped: list[tuple[Config, str]] = []
    live: list[tuple[Knob, tuple[KnobValue, ...]]] = []
    for k in space:
        ok = tuple(v for i, v in enumerate(k.values) if i == 0 or not _missing(v, capabilities))
        for v in k.values:
            if v not in ok:
                single = _config([(k, v)], space)
                skipped.append((single, f"{k.name}={v.label} needs {', '.join(_missing(v, capabilities))}"))
        live.append((k, ok))
    crossed = [(k, vals) for k, vals in live if not k.alone]
    for combo in itertools.product(*(vals for _, vals in crossed)):
        runnable.append(_config(list(zip((k for k, _ in crossed), combo, strict=True)), space))
    runnable += [_config([(k, v)], space) for k, vals in live if k.alone for v in vals[1:]]
    return runnable, skipped


def cpu_threads(cores: int) -> Knob:
    """The CPU threads a row trains on (``runtime.threads``): the framework's own count, 1, and half of ``cores``
    (the cores this process may use) where that is another count. CPU only: on a GPU the host's threads only feed it.

    The framework's own is every usable core in TensorFlow and XLA, torch's physical cores; on a loaded 2-core VM
    PyTorch ran 900-1,500 img/s on 2 intra-op threads and 16,700 on 1 (a QA pass), and no knob raced it. Raced
    ``alone``: in the product it would double every backend's rung 0 (docs/tuning.md says why that is the trade).
    """
    counts = sorted({n for n in (1, cores // 2) if 1 <= n < cores})
    return knob("threads", value("default"), *(value(str(n), ("cpu",), threads=n) for n in counts), alone=True)


def row_threads(cores: int | None = None) -> Knob:
    """The threads knob for rows on machines this process cannot see (``--executor ray`` / ``slurm``): 1, and half
    the cores of the worker the row runs in, resolved there (``runtime.threads_share``, ``TaskSpec.for_backend``);
    sized here, "half" would be half the tuning process's cores whatever the row's machine has. ``cores``: the
    worker's cores where the tune knows them (``--slurm-cpus``): a value that would run another's count is left
    out, as ``cpu_threads`` leaves it (on 2 or 3 cores "half" is 1; on 1, "1" is every core), so a race never
    times one configuration twice; where they are not known, the race finds it from the rows
    (``bench.run.tune.duplicated``)."""
    values = [value("default")]
    if cores is None or cores > 1:
        values.append(value("1", ("cpu",), threads=1))
    if cores is None or cores // 2 > 1:
        values.append(value("half", ("cpu",), threads_share="half"))
    return knob("threads", *values, alone=True)


def threads_for(space: tuple[Knob, ...], cores: int | None, remote: bool = False) -> tuple[Knob, ...]:
    """``space`` with its threads knob sized to ``cores``, the cores a row gets where they are not the tuning
    process's (an ``--executor devices`` slot's share: a backend declares its knob by this process's usable cores,
    and on 16 cores in two slots of 8 its "half" was 8, the slot's every core), or with ``remote`` (the rows run on
    other machines) resolved in each row's worker (``row_threads``, ``cores`` there the worker's where known);
    None and not remote: the space as declared."""
    if remote:
        return tuple(row_threads(cores) if k.name == "threads" else k for k in space)
    if cores is None:
        return space
    return tuple(cpu_threads(cores) if k.name == "threads" else k for k in space)


def _missing(v: KnobValue, capabilities: Mapping[str, bool]) -> list[str]:
    return [c for c in v.needs if not capabilities.get(c, False)]


def _config(chosen: list[tuple[Knob, KnobValue]], space: tuple[Knob, ...]) -> Config:
    picked = {k.name: v for k, v in chosen}
    values = [picked.get(k.name, k.default) for k in space]
    runtime: dict[str, Any] = {}
    for v in values:
        runtime.update(v.runtime)
    return Config(
        choice=tuple((k.name, v.label) for k, v in zip(space, values, strict=True)),
        runtime=tuple(sorted(runtime.items())),
        changed=tuple(k.name for k, v in zip(space, values, strict=True) if v is not k.default),
    )
