"""Grouped metric tables a client can be shown: thresholds, suppression, comparisons, league.

Two thresholds, never confused (shared/DESIGN.md):

* the **reliability base** (default 30 responses) is statistical: a cell below it is
  shown but flagged ``reliable = False`` ("indicative, low base");
* the **anonymity floor** (default 5 people) is about privacy: a group of fewer people
  is never shown, and enough other cells are suppressed with it (complementary, or
  secondary, suppression) that it cannot be recomputed from the total and the
  published cells.  Employee figures always honour it.

Comparisons test each group against the rest of the sample, with the test fitting
the metric (a z-test on the difference of the linearised means for NPS and shares,
Welch's t for means), and control the false discovery rate within each family of
comparisons (Benjamini-Hochberg).  League tables shrink unit scores towards the
chain (empirical Bayes, DerSimonian-Laird between-unit variance), so a unit with
8 responses is not ranked on noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests

from rox_helpers.metrics import COLUMNS, METRICS, metric

ALL = "All"
NOTE_FLOOR = "hidden: fewer people than the anonymity floor"
NOTE_SECONDARY = "hidden: so that a hidden group cannot be recomputed from the total"
NOTE_LOW_BASE = "indicative: base below the reliability threshold"


def metric_table(
    df: pd.DataFrame,
    name: str,
    *,
    by: Sequence[str],
    column: str | None = None,
    weight: str | None = None,
    calibration: Sequence[str] = (),
    people: str | None = None,
    reliability_base: int = 30,
    anonymity_floor: int = 5,
    total: bool = True,
    level: float = 0.95,
) -> pd.DataFrame:
    """A metric per group with a total row, thresholds applied.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical survey or employee table.
    name : str
        Metric name (see :data:`rox_helpers.metrics.METRICS`).
    by : sequence of str
        Grouping columns (unit, team, segment, channel, touchpoint, trip purpose, period).
    people : str, optional
        Column identifying people (``employee_id``); the anonymity floor counts distinct
        people. Responses are counted when omitted.
    reliability_base, anonymity_floor : int
        The two thresholds (engagement.yml ``privacy``).
    total : bool
        Add an ``All`` row.

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``metric``, ``n``, ``n_people``, ``n_eff``, ``deff``, ``estimate``,
        ``se``, ``ci_low``, ``ci_high``, ``reliable``, ``suppressed``, ``note``.
        Suppressed rows carry no numbers at all (not even ``n``).
    """
    by = list(by)
    groups = metric(
        df, name, column=column, by=by, weight=weight, calibration=calibration, level=level
    )
    col = column or {"ces_low": "ces"}.get(name, name)
    answered = df[df[col].notna()]
    if people:
        counts = answered.groupby(by, observed=True)[people].nunique()
    else:
        counts = answered.groupby(by, observed=True).size()
    counts = counts.rename("n_people").reset_index()
    groups = groups.merge(counts, on=by, how="left")
    groups["n_people"] = groups["n_people"].fillna(0).astype("int64")
    if total:
        overall = metric(df, name, column=column, weight=weight, calibration=calibration)
        overall = overall.assign(
            **dict.fromkeys(by, ALL),
            n_people=answered[people].nunique() if people else len(answered),
        )
        groups = pd.concat([groups, overall[groups.columns]], ignore_index=True)
    return apply_thresholds(
        groups,
        by=by,
        reliability_base=reliability_base,
        anonymity_floor=anonymity_floor,
    )


def apply_thresholds(
    table: pd.DataFrame, *, by: Sequence[str], reliability_base: int, anonymity_floor: int
) -> pd.DataFrame:
    """Flag low bases and suppress small groups, with complementary suppression.

    A published total and published cells give away the hidden cells *together* (their
    combined n and score follow by subtraction). So the hidden cells of each line must
    together hold at least ``anonymity_floor`` people: smallest other cells are hidden
    until they do. With several grouping columns, every slice (all columns fixed but
    one) is treated as a line, because its one-way margin could be published too. If
    nothing is left to hide among, the total is hidden.
    """
    out = table.copy()
    by = list(by)
    is_total = (out[by] == ALL).all(axis=1)
    out["reliable"] = out["n"] >= reliability_base
    out["suppressed"] = out["n_people"] < anonymity_floor
    out["note"] = np.where(out["suppressed"], NOTE_FLOOR, "")
    cells = out[~is_total]
    lines = [cells.index]
    for i in range(len(by) if len(by) > 1 else 0):
        others = [c for j, c in enumerate(by) if j != i]
        key = others[0] if len(others) == 1 else others  # one column: scalar group keys
        lines += list(cells.groupby(key, observed=True).groups.values())
    changed = True
    while changed:
        changed = False
        for idx in lines:
            hidden = out.loc[idx, "suppressed"]
            if not hidden.any():
                continue
            if out.loc[idx][hidden]["n_people"].sum() >= anonymity_floor and hidden.sum() >= 2:
                continue
            candidates = out.loc[idx][~hidden]
            if len(candidates):
                extra = candidates.sort_values(["n_people", "n"]).index[0]
                out.loc[extra, ["suppressed", "note"]] = [True, NOTE_SECONDARY]
                changed = True
            elif (
                len(idx) == len(cells)
                and is_total.any()
                and not out.loc[is_total, "suppressed"].all()
            ):
                out.loc[is_total, ["suppressed", "note"]] = [True, NOTE_SECONDARY]
                changed = True
    low = ~out["suppressed"] & ~out["reliable"]
    out.loc[low, "note"] = NOTE_LOW_BASE
    numbers = [*COLUMNS, "n_people"]
    out[numbers] = out[numbers].astype("float64")
    out.loc[out["suppressed"], numbers] = np.nan
    out.loc[out["suppressed"], "reliable"] = False
    return out


def compare_to_rest(
    df: pd.DataFrame,
    name: str,
    *,
    by: str,
    column: str | None = None,
    weight: str | None = None,
    people: str | None = None,
    anonymity_floor: int = 5,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Each group against the rest of the sample, with BH control across the groups.

    Returns
    -------
    pandas.DataFrame
        ``by``, ``estimate``, ``difference``, ``se_difference``, ``test``, ``p_value``,
        ``q_value``, ``significant``. Only groups that :func:`metric_table` publishes are
        compared (groups under the floor *and* their complements are left out), and the
        rest's own score is not returned, so nothing hidden can be recomputed.
    """
    spec = METRICS[name]
    published = metric_table(
        df,
        name,
        by=[by],
        column=column,
        weight=weight,
        people=people,
        anonymity_floor=anonymity_floor,
    )
    shown = set(published.loc[~published["suppressed"] & (published[by] != ALL), by])
    if published.loc[published[by] == ALL, "suppressed"].any():
        shown = set()
    rows = []
    for level in sorted(shown):
        inside = df[by] == level
        a = metric(df[inside], name, column=column, weight=weight).iloc[0]
        b = metric(df[~inside], name, column=column, weight=weight).iloc[0]
        diff = a["estimate"] - b["estimate"]
        se, p, test = _difference_test(spec.kind, a, b)
        rows.append(
            {
                by: level,
                "estimate": a["estimate"],
                "difference": diff,
                "se_difference": se,
                "test": test,
                "p_value": p,
            }
        )
    cols = [by, "estimate", "difference", "se_difference", "test", "p_value"]
    return _with_bh(pd.DataFrame(rows, columns=cols), alpha)


def _difference_test(kind: str, a, b) -> tuple[float, float, str]:
    """SE, two-sided p and test name for the difference of two independent estimates.

    Means: Welch's t with Welch-Satterthwaite degrees of freedom. NPS and shares: a z-test
    on the linearised standard errors (the trinomial variance for NPS).
    """
    se = float(np.hypot(a["se"], b["se"]))
    diff = a["estimate"] - b["estimate"]
    if not se > 0:
        return se, float("nan"), ""
    if kind == "mean":
        va, vb = a["se"] ** 2, b["se"] ** 2
        dof = (va + vb) ** 2 / (va**2 / max(a["n"] - 1, 1) + vb**2 / max(b["n"] - 1, 1))
        return se, float(2 * stats.t.sf(abs(diff) / se, dof)), "Welch t"
    return se, float(2 * stats.norm.sf(abs(diff) / se)), "z (linearised)"


def _with_bh(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Add ``q_value`` (Benjamini-Hochberg over the rows) and ``significant``."""
    out = out.assign(q_value=np.nan)
    ok = out["p_value"].notna()
    if ok.any():
        out.loc[ok, "q_value"] = multipletests(out.loc[ok, "p_value"], method="fdr_bh")[1]
    out["significant"] = out["q_value"] < alpha
    return out


def league_table(
    df: pd.DataFrame,
    name: str,
    *,
    unit: str = "unit_id",
    column: str | None = None,
    weight: str | None = None,
    target: float | None = None,
    amber_margin: float | None = None,
    higher_is_better: bool = True,
    reliability_base: int = 30,
    anonymity_floor: int = 5,
) -> pd.DataFrame:
    """Units ranked on scores shrunk towards the chain (empirical Bayes).

    Each unit's score ``y_j`` is pulled towards the chain mean ``mu`` by
    ``B_j = tau^2 / (tau^2 + s_j^2)``: ``shrunk = mu + B_j (y_j - mu)``. ``s_j^2`` is the
    pooled within-unit variance over the unit's effective base; ``tau^2`` the between-unit
    variance (DerSimonian-Laird, statsmodels). A unit with a small base moves further
    than one with a large base.

    With a ``target``, ``status`` is green when the shrunk score meets it, amber when
    within ``amber_margin`` of it, red otherwise (direction-aware).

    Returns
    -------
    pandas.DataFrame
        ``unit``, ``n``, ``estimate``, ``se``, ``shrunk``, ``shrunk_se``, ``weight_own``
        (``B_j``), ``rank``, ``reliable`` and, with a target, ``target`` and ``status``.
    """
    t = metric(df, name, column=column, by=[unit], weight=weight)
    # Sampling variance from the pooled within-unit variance over each unit's effective base:
    # a unit's own variance is noise for small units and 0 when everyone answered alike
    # (8 promoters out of 8), which would make its score look certain.
    own = (t["se"] ** 2) * t["n_eff"]  # per-respondent variance within the unit
    dof = (t["n"] - 1).clip(lower=0)
    pooled = float((own * dof).sum() / dof.sum()) if dof.sum() > 0 else float("nan")
    s2 = (pooled / t["n_eff"]).where(t["n_eff"] > 0, np.inf)
    usable = np.isfinite(s2) & (s2 > 0)
    if usable.sum() >= 2:
        res = combine_effects(
            t.loc[usable, "estimate"].to_numpy(), s2[usable].to_numpy(), method_re="dl"
        )
        tau2, mu = float(res.tau2), float(res.mean_effect_re)
    else:
        tau2, mu = 0.0, float(t["estimate"].mean())
    b = tau2 / (tau2 + s2) if tau2 > 0 else pd.Series(0.0, index=t.index)
    t["weight_own"] = b.astype("float64")
    t["shrunk"] = mu + t["weight_own"] * (t["estimate"] - mu)
    t["shrunk_se"] = np.sqrt(t["weight_own"] * s2.where(usable, 0.0))
    t["chain"] = mu
    t["reliable"] = t["n"] >= reliability_base
    # units with fewer respondents than the anonymity floor are not shown (nor ranked)
    hide = t["n"] < anonymity_floor
    t["suppressed"] = hide
    t.loc[hide, ["estimate", "se", "ci_low", "ci_high", "shrunk", "shrunk_se", "n", "n_eff"]] = (
        np.nan
    )
    t["rank"] = t["shrunk"].rank(ascending=not higher_is_better, method="min").astype("Int64")
    if target is not None:
        margin = amber_margin if amber_margin is not None else 0.0
        gap = (t["shrunk"] - target) * (1 if higher_is_better else -1)
        t["target"] = target
        t["status"] = np.select([gap >= 0, gap >= -margin], ["green", "amber"], "red")
    return t.sort_values("rank").reset_index(drop=True)


def bh_family(p_values: Mapping[str, float], alpha: float = 0.05) -> pd.DataFrame:
    """Benjamini-Hochberg over one stated family of comparisons: ``name, p, q, significant``."""
    names = list(p_values)
    p = np.array([p_values[k] for k in names], dtype="float64")
    reject, q, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
    return pd.DataFrame({"comparison": names, "p_value": p, "q_value": q, "significant": reject})


def compare_periods(
    df: pd.DataFrame,
    name: str,
    *,
    period: str,
    column: str | None = None,
    weight: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Each period against the one before, with BH control across the periods compared.

    Periods are treated as independent samples (different respondents each period), with the
    same test choice as :func:`compare_to_rest`.

    Returns
    -------
    pandas.DataFrame
        ``period``, ``previous``, ``estimate``, ``previous_estimate``, ``change``,
        ``se_change``, ``p_value``, ``q_value``, ``significant``.
    """
    spec = METRICS[name]
    per = metric(df, name, column=column, by=[period], weight=weight).sort_values(period)
    rows = []
    for prev, cur in zip(per.iloc[:-1].itertuples(), per.iloc[1:].itertuples(), strict=True):
        change = cur.estimate - prev.estimate
        se, p, _ = _difference_test(spec.kind, cur._asdict(), prev._asdict())
        rows.append(
            {
                "period": getattr(cur, period),
                "previous": getattr(prev, period),
                "estimate": cur.estimate,
                "previous_estimate": prev.estimate,
                "change": change,
                "se_change": se,
                "p_value": p,
            }
        )
    cols = ["period", "previous", "estimate", "previous_estimate", "change", "se_change"]
    out = pd.DataFrame(rows, columns=[*cols, "p_value"])
    return _with_bh(out, alpha)
