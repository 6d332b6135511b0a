"""Compare two runs: per-metric deltas and ratios, regressions beyond thresholds, env differences.

Rows are matched on (task, backend, model, profile); repeats are reduced to the
median of the ok rows first, so a comparison of two ``--repeats 3`` runs compares
medians, not single noisy epochs. A key without an ok row on one side is one
``status`` row: a regression when B has no ok row (failed, missing), not when only
the baseline A lacked one (fixed, or new in B).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.results import latest_records, read_json_or_warn, read_records, table

KEY = ["task", "backend", "model", "profile"]
COLUMNS = [*KEY, "metric", "a", "b", "delta", "ratio", "regression"]
MISSING = "missing"


@dataclass(frozen=True)
class Thresholds:
    max_slowdown: float = 0.10  # time up / throughput down by more than this fraction
    max_acc_drop: float = 0.01  # absolute accuracy drop
    max_memory_growth: float = 0.25  # peak memory up by more than this fraction


# (column, label, which way is better, which threshold applies)
METRICS = (
    ("train_s", "training time (s)", "lower", "time"),
    ("epoch_s_median", "steady epoch (s)", "lower", "time"),
    ("throughput_img_s", "steady throughput (img/s)", "higher", "time"),
    ("eval_img_s", "inference (img/s)", "higher", "time"),
    ("test_acc", "test accuracy", "higher", "accuracy"),
    ("peak_host_mb", "peak host RSS (MB)", "lower", "memory"),
    ("peak_device_mb", "peak device memory (MB)", "lower", "memory"),
)
ENV_FIELDS = ("cpu", "cores", "gpus", "python")


def load_run(run: str | Path, results_dir: Path) -> tuple[pd.DataFrame, dict]:
    """A run by directory path or by run id under ``results_dir``."""
    path = Path(run)
    if not (path / "records.jsonl").is_file():
        path = results_dir / str(run)
    if not (path / "records.jsonl").is_file():
        raise FileNotFoundError(f"{run}: not a run directory (no records.jsonl there or under {results_dir})")
    return keyed(table(latest_records(read_records(path)))), read_json_or_warn(path / "environment.json")


def keyed(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its key columns as text, a missing part as "-" (so keys with gaps still match)."""
    df = df.copy()
    df[KEY] = df[KEY].astype(object).where(df[KEY].notna(), "-").astype(str)
    return df


def key_status(df: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Per key: "ok" when it has an ok row, else its rows' statuses joined (e.g. "failed")."""
    return {
        tuple(key): "ok" if "ok" in set(sub.status) else "/".join(sorted(set(sub.status.astype(str))))
        for key, sub in df.groupby(KEY, dropna=False)
    }


def status_row(key: tuple[str, ...], sa: str, sb: str) -> dict:
    """The one row of a key that lacks an ok row on a side: a regression unless B is ok."""
    a = f"{MISSING} (new in B)" if sa == MISSING else sa
    return {**dict(zip(KEY, key, strict=True)), "metric": "status", "a": a, "b": sb, "regression": sb != "ok"}


def medians(df: pd.DataFrame) -> pd.DataFrame:
    ok = df[df.status == "ok"]
    cols = [m[0] for m in METRICS]
    values = ok[KEY + cols].copy()
    values[cols] = values[cols].apply(pd.to_numeric, errors="coerce").astype("float64")  # also when empty
    return values.groupby(KEY, dropna=False)[cols].median()


def _regressed(a: float, b: float, better: str, kind: str, t: Thresholds) -> bool:
    if pd.isna(a) or pd.isna(b):
        return False
    if kind == "accuracy":
        return a - b > t.max_acc_drop
    limit = 1 + (t.max_slowdown if kind == "time" else t.max_memory_growth)
    if better == "lower":
        return a > 0 and b / a > limit
    return b > 0 and a / b > limit


def compare(a: pd.DataFrame, b: pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """One row per (key, metric): A, B, B-A, B/A and whether B regressed against A."""
    ma, mb = medians(a), medians(b)
    status_a, status_b = key_status(a), key_status(b)
    rows = []
    for key in sorted(set(status_a) | set(status_b)):
        sa, sb = status_a.get(key, MISSING), status_b.get(key, MISSING)
        if not sa == sb == "ok":
            rows.append(status_row(key, sa, sb))
            continue
        for col, label, better, kind in METRICS:
            va, vb = ma.loc[key, col], mb.loc[key, col]
            if pd.isna(va) and pd.isna(vb):
                continue
            rows.append({
                **dict(zip(KEY, key, strict=True)), "metric": label, "a": va, "b": vb,
                "delta": vb - va, "ratio": vb / va if va else None,
                "regression": _regressed(va, vb, better, kind, t),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def environment_differences(env_a: dict, env_b: dict, a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """Human-readable warnings: the two runs did not run on the same footing."""
    out = []
    for field in ENV_FIELDS:
        if env_a.get(field) != env_b.get(field):
            out.append(f"{field} differs: {env_a.get(field)!r} vs {env_b.get(field)!r}")
    pa, pb = env_a.get("packages", {}), env_b.get("packages", {})
    for pkg in sorted(set(pa) | set(pb)):
        if pa.get(pkg) != pb.get(pkg):
            out.append(f"{pkg} differs: {pa.get(pkg)} vs {pb.get(pkg)}")
    for col in ("device", "threads"):
        va = set(a[a.status == "ok"][col].dropna().astype(str))
        vb = set(b[b.status == "ok"][col].dropna().astype(str))
        if va != vb:
            out.append(f"{col} differs: {sorted(va)} vs {sorted(vb)}")
    return out


def _num(v: object) -> object:
    if not isinstance(v, float) or pd.isna(v):
        return v
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.2f}" if abs(v) >= 10 else f"{v:.4g}"


def render(result: pd.DataFrame) -> str:
    if result.empty:
        return "(nothing to compare: no rows in either run)"
    shown = result.copy()
    for col in ("a", "b", "delta"):
        shown[col] = shown[col].map(_num)
    if "ratio" in shown:
        shown["ratio"] = shown["ratio"].map(lambda v: f"{v:.3f}" if isinstance(v, float) and pd.notna(v) else "-")
    shown["regression"] = shown["regression"].map(lambda r: "REGRESSION" if r else "")
    shown = shown.astype(object).where(shown.notna(), "-")  # fillna("-") on a float column warns in pandas
    return shown.to_markdown(index=False, disable_numparse=True)
