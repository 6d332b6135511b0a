"""Student's t and the normal distribution's quantiles and tails, from scipy.special.

Every interval and verdict needs only these, and ``scipy.stats`` cost a command about 0.4 s of CPU more to import
than ``scipy.special`` (its distributions' docstrings are built at import; 1-3 s on the 2-core VM shared with other
work): a `bench report` of a run with repeats took 1.8 s of CPU with it, 1.5 s without, and a tune pays it in
several reports. The functions are the ones scipy.stats.t and .norm call (``stdtrit``, ``stdtr``, ``ndtri``),
imported when first used.
"""

from __future__ import annotations

from types import ModuleType


def _special() -> ModuleType:
    from scipy import special

    return special


def t_ppf(q: float, df: float) -> float:
    """Student's t quantile: the x with P(T <= x) = q at ``df`` degrees of freedom (inf: the normal's)."""
    return float(_special().stdtrit(df, q))


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) at ``df`` degrees of freedom."""
    return float(_special().stdtr(df, x))


def t_sf(x: float, df: float) -> float:
    """P(T > x) at ``df`` degrees of freedom."""
    return float(_special().stdtr(df, -x))


def norm_ppf(q: float) -> float:
    """The standard normal's quantile."""
    return float(_special().ndtri(q))
