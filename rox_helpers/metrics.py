"""CX and EX metrics with intervals, bases and survey weights.

Every metric is a (weighted) mean of a per-respondent score ``y``:

=========  ==========================================================  ===========
metric     y                                                           scale
=========  ==========================================================  ===========
``nps``    +1 promoter (9-10), -1 detractor (0-6), 0 passive (7-8)      x 100
``enps``   the same on the employee recommend question                 x 100
``csat``   1 if the answer is in the top two boxes (4-5 of 1-5)        share
``ces``    the effort score itself (mean); ``ces_low`` 1 if low effort mean / share
=========  ==========================================================  ===========

Standard errors are the linearisation (Taylor) errors of a weighted mean under
a design with one stage and the given weights -- what R's ``survey`` package
reports for ``svymean(~y, svydesign(ids = ~1, weights = ~w, data))``::

    se^2 = n / (n - 1) * sum(w_i^2 (y_i - ybar)^2) / (sum w_i)^2

For NPS this is the variance of the promoter/detractor difference, i.e. the
multinomial variance ``(p + d - (p - d)^2) / n`` when unweighted -- not the
sum of two binomial variances.  Shares get Wilson intervals on the Kish
effective base ``n_eff = (sum w)^2 / sum w^2``; means and NPS normal
intervals.  ``method="bootstrap"`` gives percentile intervals from a seeded
bootstrap of respondents (weights resampled with them).

Results are tidy frames, unrounded: ``n``, ``n_eff``, ``deff`` (Kish's
design effect from weighting, ``n / n_eff``), ``estimate``, ``se``,
``ci_low``, ``ci_high``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from rox_helpers.errors import DataValidationError

COLUMNS = ("n", "n_eff", "deff", "estimate", "se", "ci_low", "ci_high")


@dataclass(frozen=True)
class MetricSpec:
    """How a metric turns answers into per-respondent scores.

    ``kind`` is ``"difference"`` (NPS-style, reported x 100), ``"share"``
    (Wilson intervals) or ``"mean"``.
    """

    name: str
    kind: str
    scale: tuple[float, float]
    score: Callable[[pd.Series], pd.Series]
    label: str


def _nps_score(s: pd.Series) -> pd.Series:
    return pd.Series(np.where(s >= 9, 1.0, np.where(s <= 6, -1.0, 0.0)), index=s.index).where(
        s.notna()
    )


def _top2(s: pd.Series) -> pd.Series:
    return (s >= 4).astype("float64").where(s.notna())


def _identity(s: pd.Series) -> pd.Series:
    return s.astype("float64")


def _low_effort(s: pd.Series) -> pd.Series:
    return (s <= 3).astype("float64").where(s.notna())


METRICS: dict[str, MetricSpec] = {
    "nps": MetricSpec("nps", "difference", (0, 10), _nps_score, "NPS"),
    "enps": MetricSpec("enps", "difference", (0, 10), _nps_score, "eNPS"),
    "csat": MetricSpec("csat", "share", (1, 5), _top2, "CSAT (top-2 box)"),
    "ces": MetricSpec("ces", "mean", (1, 7), _identity, "CES (mean effort)"),
    "ces_low": MetricSpec("ces_low", "share", (1, 7), _low_effort, "Low-effort share"),
    # any rated score (pride 1-7, engagement 1-5, an attribute 1-10): pass ``column=``
    "mean": MetricSpec("mean", "mean", (-np.inf, np.inf), _identity, "Mean"),
    # any yes/no measure (left, app_user): share of yes
    "share": MetricSpec("share", "share", (0, 1), _identity, "Share"),
}


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------


def kish_effective_n(w: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``."""
    w = np.asarray(w, dtype="float64")
    s2 = float(np.sum(w**2))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def linearised_se(
    y: np.ndarray,
    w: np.ndarray,
    domain: np.ndarray | None = None,
    calibration: Sequence[np.ndarray] = (),
    passes: int = 10,
) -> tuple[float, float]:
    """Weighted mean of ``y`` over a domain and its linearisation SE, as R's survey computes it.

    Parameters
    ----------
    y, w : arrays over the whole design (one stage, ``ids = ~1``)
        Scores (NaN where not answered) and weights.
    domain : boolean array, optional
        The group whose mean is wanted (R's ``svyby``/subset): estimated inside the
        full design, so ``n / (n - 1)`` uses the design's n.
    calibration : sequence of arrays, optional
        Margin codes the weights were raked to. The influence values are then
        residualised on each margin in turn (``passes`` sweeps), as ``survey::svyrecvar``
        does for a raked design, which narrows the interval.

    Returns
    -------
    (mean, se)
    """
    y = np.asarray(y, dtype="float64")
    w = np.asarray(w, dtype="float64")
    n = len(y)
    inside = ~np.isnan(y) if domain is None else (np.asarray(domain, bool) & ~np.isnan(y))
    total = float(w[inside].sum())
    if not inside.any() or total <= 0:
        return float("nan"), float("nan")
    mean = float(np.sum(w[inside] * y[inside]) / total)
    if inside.sum() < 2 or n < 2:
        return mean, float("nan")
    u = np.zeros(n)
    u[inside] = (y[inside] - mean) / total
    for _ in range(passes if len(calibration) else 0):
        for codes in calibration:
            u = u - pd.Series(u).groupby(np.asarray(codes)).transform("mean").to_numpy()
    x = w * u
    x = x - x.mean()
    return mean, float(np.sqrt(n / (n - 1) * np.sum(x**2)))


def _interval(
    spec: MetricSpec, mean: float, se: float, n_eff: float, level: float
) -> tuple[float, float]:
    if not np.isfinite(mean) or n_eff <= 0:
        return float("nan"), float("nan")
    if spec.kind == "share":
        lo, hi = proportion_confint(mean * n_eff, n_eff, alpha=1 - level, method="wilson")
        # exact at p = 0 or 1 in theory; rounding can leave 1e-17 on the wrong side
        return float(np.clip(min(lo, mean), 0, 1)), float(np.clip(max(hi, mean), 0, 1))
    if not np.isfinite(se):
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    lo, hi = mean - z * se, mean + z * se
    if spec.kind == "difference":
        lo, hi = max(lo, -1.0), min(hi, 1.0)
    return lo, hi


def _bootstrap(
    y: np.ndarray, w: np.ndarray, level: float, n_boot: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    n = len(y)
    idx = rng.integers(0, n, size=(n_boot, n))
    wy = (w[idx] * y[idx]).sum(axis=1)
    ws = w[idx].sum(axis=1)
    means = wy / ws
    lo, hi = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi), float(np.std(means, ddof=1))


def estimate(
    scores: pd.Series,
    spec: MetricSpec,
    weights: pd.Series | None = None,
    *,
    domain: pd.Series | None = None,
    calibration: Sequence[pd.Series] = (),
    level: float = 0.95,
    method: str = "analytic",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """One metric for one domain of a design.

    ``scores`` and ``weights`` cover the whole design (respondents with a usable
    weight); ``domain`` selects the group (all by default); missing answers are left
    out of the domain, as ``na.rm = TRUE`` does in R.
    """
    w_all = (
        pd.Series(1.0, index=scores.index)
        if weights is None
        else pd.to_numeric(weights, errors="coerce").astype("float64")
    )
    if (w_all < 0).any():
        raise DataValidationError(
            f"{int((w_all < 0).sum())} negative survey weight(s)",
            column=getattr(weights, "name", "weight"),
            rule="weights are zero or positive",
            fix="Correct the weight column with the client; negative weights have no meaning.",
        )
    usable = w_all.notna() & (w_all > 0)
    y_all = scores[usable].to_numpy(dtype="float64")
    w_all = w_all[usable].to_numpy(dtype="float64")
    dom = np.ones(len(y_all), bool) if domain is None else domain[usable].to_numpy(bool)
    inside = dom & ~np.isnan(y_all)
    y, w = y_all[inside], w_all[inside]
    n = int(inside.sum())
    n_eff = kish_effective_n(w) if n else 0.0
    codes = [c[usable].to_numpy() for c in calibration]
    mean, se = linearised_se(y_all, w_all, dom, codes)
    if method == "bootstrap" and n >= 2:
        lo, hi, _ = _bootstrap(y, w, level, n_boot, np.random.default_rng(seed))
    elif method in ("analytic", "bootstrap"):
        lo, hi = _interval(spec, mean, se, n_eff, level)
    else:
        raise ValueError(f"method must be 'analytic' or 'bootstrap', got {method!r}")
    factor = 100.0 if spec.kind == "difference" else 1.0
    return {
        "n": n,
        "n_eff": n_eff,
        "deff": n / n_eff if n_eff else float("nan"),
        "estimate": mean * factor,
        "se": se * factor,
        "ci_low": lo * factor,
        "ci_high": hi * factor,
    }


def _check_range(df: pd.DataFrame, column: str, spec: MetricSpec) -> pd.Series:
    if column not in df.columns:
        raise DataValidationError(
            f"column {column!r} not found for {spec.label}",
            column=column,
            rule="metric column exists",
            fix=f"Map the {spec.label} question to {column!r} in engagement.yml, or pass "
            "the column that holds it.",
        )
    s = pd.to_numeric(df[column], errors="coerce").astype("float64")
    lo, hi = spec.scale
    bad = s.notna() & ((s < lo) | (s > hi))
    if bad.any():
        raise DataValidationError(
            f"{int(bad.sum())} value(s) of {column!r} outside {lo:g}-{hi:g} for {spec.label} "
            f"(e.g. {s[bad].iloc[0]:g})",
            column=column,
            rule=f"{spec.label} on a {lo:g}-{hi:g} scale",
            fix="Load the data through rox_helpers.data (out-of-range rows are quarantined) "
            "or declare the right scale.",
        )
    return s


def metric(
    df: pd.DataFrame,
    name: str,
    *,
    column: str | None = None,
    by: Sequence[str] = (),
    weight: str | None = None,
    level: float = 0.95,
    method: str = "analytic",
    n_boot: int = 2000,
    seed: int = 0,
    calibration: Sequence[str] = (),
) -> pd.DataFrame:
    """A metric overall or per group, with base, effective base and interval.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical ``cx_survey`` (or ``employees`` for ``enps``).
    name : {"nps", "enps", "csat", "ces", "ces_low"}
        The metric.
    column : str, optional
        The answer column; defaults to the metric's canonical column
        (``ces_low`` reads ``ces``).
    by : sequence of str, default=()
        Grouping columns; one row per group (missing group values form no group).
    weight : str, optional
        Column of survey weights; unweighted when omitted.
    level : float, default=0.95
        Confidence level.
    method : {"analytic", "bootstrap"}
        Interval method.
    n_boot, seed : int
        Bootstrap resamples and seed (bootstrap only; same seed, same interval).
    calibration : sequence of str, default=()
        The margins ``weight`` was raked to (see :func:`rox_helpers.weights.rake`); the
        standard errors then account for the raking, as R's survey does.

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``metric``, ``n``, ``n_eff``, ``deff``, ``estimate``,
        ``se``, ``ci_low``, ``ci_high``; NPS-style metrics on -100..100.

    Raises
    ------
    DataValidationError
        When the column is missing or holds values outside the metric's scale.
    """
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    spec = METRICS[name]
    column = column or {"ces_low": "ces"}.get(name, name)
    raw = _check_range(df, column, spec)
    scores = spec.score(raw)
    w = None
    if weight is not None:
        if weight not in df.columns:
            raise DataValidationError(
                f"weight column {weight!r} not found",
                column=weight,
                rule="weight column exists",
                fix="Map the client's weight to `weight`, or rake weights first.",
            )
        w = pd.to_numeric(df[weight], errors="coerce").astype("float64")
    cal = [df[c] for c in calibration]
    common = {"level": level, "method": method, "n_boot": n_boot, "calibration": cal}
    by = list(by)
    if not by:
        res = estimate(scores, spec, w, seed=seed, **common)
        return pd.DataFrame([{"metric": name, **res}], columns=["metric", *COLUMNS])
    rows = []
    for i, (group, part) in enumerate(df[by].groupby(by, sort=True, observed=True)):
        group = group if isinstance(group, tuple) else (group,)
        domain = pd.Series(False, index=df.index)
        domain.loc[part.index] = True
        res = estimate(scores, spec, w, domain=domain, seed=seed + i, **common)
        rows.append({**dict(zip(by, group, strict=True)), "metric": name, **res})
    return pd.DataFrame(rows, columns=[*by, "metric", *COLUMNS])


def nps(df: pd.DataFrame, **kw) -> pd.DataFrame:
    """Net Promoter Score (-100..100); see :func:`metric`."""
    return metric(df, "nps", **kw)


def enps(df: pd.DataFrame, **kw) -> pd.DataFrame:
    """Employee NPS (-100..100) from ``employees.enps``; see :func:`metric`."""
    return metric(df, "enps", **kw)


def csat(df: pd.DataFrame, **kw) -> pd.DataFrame:
    """CSAT as the top-two-box share (4-5 on 1-5), Wilson interval; see :func:`metric`."""
    return metric(df, "csat", **kw)


def ces(df: pd.DataFrame, *, low_effort: bool = False, **kw) -> pd.DataFrame:
    """Customer effort: the mean (1 = very low effort) or, with ``low_effort=True``, the share
    answering 1-3; see :func:`metric`."""
    return metric(df, "ces_low" if low_effort else "ces", **kw)
