"""Survey weights: raking to the customer base, trimming, and the non-response check.

Raking (iterative proportional fitting) adjusts starting weights so that the
weighted respondents match known population totals on each margin in turn
(say region, loyalty tier, channel), until every margin matches.  It is what R's
``survey::rake`` does (tests compare the two to 1e-6).  Trimming caps extreme
weights at multiples of the mean and re-rakes, trading a little bias for a
larger effective base.

Before weighting, :func:`nonresponse_check` compares respondents with
non-respondents on their behaviour, so the report can say whom the survey
under-represents (weights only correct what the margins capture).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from rox_helpers.errors import DataValidationError
from rox_helpers.metrics import kish_effective_n


@dataclass
class RakeResult:
    """Raked weights and how the raking went."""

    weights: pd.Series
    iterations: int
    converged: bool
    max_margin_error: float
    n_eff: float
    deff: float
    trimmed: int  # respondents whose weight ends at a trimming cap


def population_margins(population: pd.DataFrame, columns: Sequence[str]) -> dict[str, pd.Series]:
    """Population counts per level of each margin column (e.g. from the customers table)."""
    return {c: population[c].value_counts(dropna=True).sort_index() for c in columns}


def _check_levels(sample: pd.DataFrame, margins: Mapping[str, pd.Series]) -> None:
    for col, pop in margins.items():
        if col not in sample.columns:
            raise DataValidationError(
                f"margin {col!r} is not a column of the respondents",
                column=col,
                rule="raking margin present in the survey",
                fix=f"Map {col!r} for the survey (or join it from customers) before raking.",
            )
        seen = set(sample[col].dropna().unique())
        missing_in_sample = [lvl for lvl in pop.index if lvl not in seen and pop[lvl] > 0]
        unknown = sorted(map(str, seen - set(pop.index)))
        if missing_in_sample or unknown or sample[col].isna().any():
            problems = []
            if missing_in_sample:
                problems.append(f"no respondents in {', '.join(map(str, missing_in_sample))}")
            if unknown:
                problems.append(f"levels not in the population: {', '.join(unknown)}")
            if sample[col].isna().any():
                problems.append(f"{int(sample[col].isna().sum())} respondents without a value")
            raise DataValidationError(
                f"cannot rake on {col!r}: " + "; ".join(problems),
                column=col,
                rule="every margin level has respondents and population",
                fix="Collapse small levels into a neighbouring one, or drop this margin.",
            )


def rake(
    sample: pd.DataFrame,
    margins: Mapping[str, pd.Series],
    *,
    weight: str | None = None,
    max_iter: int = 200,
    tol: float = 1e-10,
    trim: tuple[float, float] | None = None,
) -> RakeResult:
    """Rake starting weights to population margins.

    Parameters
    ----------
    sample : pandas.DataFrame
        Respondents, holding every margin column.
    margins : mapping of column -> pandas.Series
        Population count (or share) per level, e.g. from :func:`population_margins`;
        shares are scaled to the sum of the starting weights.
    weight : str, optional
        Starting (design) weights; 1 for everyone when omitted.
    max_iter, tol : int, float
        Stop when every margin matches within ``tol`` (relative) or after ``max_iter``
        sweeps.
    trim : (low, high), optional
        Cap weights at ``low`` and ``high`` times the mean weight, re-raking after each
        cap, e.g. ``(0.3, 3.0)``.

    Returns
    -------
    RakeResult
    """
    _check_levels(sample, margins)
    w = (
        pd.Series(1.0, index=sample.index)
        if weight is None
        else pd.to_numeric(sample[weight], errors="coerce").astype("float64")
    )
    if w.isna().any() or (w <= 0).any():
        raise DataValidationError(
            f"starting weights in {weight!r} must be positive and present",
            column=weight,
            rule="positive weights",
            fix="Fix or drop respondents without a weight before raking.",
        )
    total = float(w.sum())
    targets = {}
    for col, pop in margins.items():
        pop = pop.astype("float64")
        # population counts define the totals; shares are scaled to the sample's weight sum
        targets[col] = pop if pop.sum() > 1.5 else pop * total
    codes = {col: sample[col] for col in margins}
    w = w.to_numpy(dtype="float64").copy()
    lo = hi = None
    if trim:
        # caps fixed once, from the mean weight the targets imply (raking keeps that mean)
        mean = float(next(iter(targets.values())).sum()) / len(w)
        lo, hi = trim[0] * mean, trim[1] * mean
    iterations, err, prev = 0, np.inf, np.inf
    for iterations in range(1, (max_iter * 10 if trim else max_iter) + 1):  # noqa: B007
        for col, target in targets.items():
            current = pd.Series(w, index=sample.index).groupby(codes[col]).sum()
            w *= (target / current).reindex(codes[col]).to_numpy()
            if trim:  # capped raking: the caps hold after every step
                w = np.clip(w, lo, hi)
        err = max(
            float(
                np.max(np.abs(pd.Series(w, index=sample.index).groupby(codes[col]).sum() / t - 1))
            )
            for col, t in targets.items()
        )
        if err < tol or abs(prev - err) < tol * 1e-3:  # met, or stuck (caps vs margins)
            break
        prev = err
    trimmed_total = (
        int((np.isclose(w, lo, rtol=1e-9) | np.isclose(w, hi, rtol=1e-9)).sum()) if trim else 0
    )
    n_eff = kish_effective_n(w)
    return RakeResult(
        weights=pd.Series(w, index=sample.index, name="weight"),
        iterations=iterations,
        converged=bool(err < max(tol, 1e-6)),  # margins met (and, if trimmed, caps too)
        max_margin_error=float(err),
        n_eff=n_eff,
        deff=len(w) / n_eff,
        trimmed=trimmed_total,
    )


def nonresponse_check(
    features: pd.DataFrame,
    respondent_ids: Sequence[str] | pd.Series,
    *,
    id_column: str = "customer_id",
    columns: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare survey respondents with non-respondents on behaviour.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per customer (e.g. the behavioural features of the data layer).
    respondent_ids : sequence of str
        Customers who answered the survey.
    columns : sequence of str, optional
        Numeric behaviours to compare; all numeric columns by default.
    alpha : float
        False discovery rate for the Benjamini-Hochberg control across behaviours.

    Returns
    -------
    pandas.DataFrame
        One row per behaviour: ``n_respondents``, ``n_nonrespondents``,
        ``mean_respondents``, ``mean_nonrespondents``, ``std_difference``
        (Cohen's d with the pooled SD), ``p_value`` (Welch t-test), ``q_value`` (BH),
        ``significant``, ``reading`` (plain words: who is over- or under-represented).
    """
    answered = features[id_column].isin(pd.Index(list(respondent_ids), dtype=object).astype(object))
    if columns is None:
        columns = [
            c
            for c in features.columns
            if c != id_column and pd.api.types.is_numeric_dtype(features[c])
        ]
    rows = []
    for col in columns:
        x = pd.to_numeric(features.loc[answered, col], errors="coerce").dropna()
        y = pd.to_numeric(features.loc[~answered, col], errors="coerce").dropna()
        if len(x) < 2 or len(y) < 2:
            continue
        pooled = np.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
        d = float((x.mean() - y.mean()) / pooled) if pooled > 0 else 0.0
        p = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
        rows.append(
            {
                "behaviour": col,
                "n_respondents": len(x),
                "n_nonrespondents": len(y),
                "mean_respondents": float(x.mean()),
                "mean_nonrespondents": float(y.mean()),
                "std_difference": d,
                "p_value": p,
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["q_value"] = multipletests(out["p_value"], alpha=alpha, method="fdr_bh")[1]
    out["significant"] = out["q_value"] < alpha
    out["reading"] = [
        (
            f"respondents have {'higher' if d > 0 else 'lower'} {b} than non-respondents "
            f"(standardised difference {d:+.2f})"
        )
        if sig and abs(d) >= 0.1
        else "no material difference"
        for b, d, sig in zip(
            out["behaviour"], out["std_difference"], out["significant"], strict=True
        )
    ]
    return out.sort_values("std_difference", key=np.abs, ascending=False).reset_index(drop=True)


UNKNOWN = "(unknown)"


@dataclass
class SurveyWeights:
    """Weights for the survey, how they were made, and what the raking used."""

    weights: pd.Series
    method: str  # "none", "client", "raked"
    calibration: list[str]
    rake: RakeResult | None
    notes: list[str]


def survey_weights(
    survey: pd.DataFrame,
    customers: pd.DataFrame | None,
    *,
    use_client_weight: bool = True,
    rake_to_customers: Sequence[str] = (),
    trim: tuple[float, float] | None = (0.3, 3.0),
) -> tuple[pd.DataFrame, SurveyWeights]:
    """Weights per engagement.yml ``measurement.weighting``.

    Starts from the client's weight column when present (and wanted), then rakes to the
    customer base on the given customers columns. Respondents who cannot be linked to a
    customer (anonymous, or without analytics consent) form an ``(unknown)`` level whose
    target is their own weighted share: they are kept, not adjusted.

    Returns
    -------
    (survey, SurveyWeights)
        The survey with the margin columns joined and a ``weight_final`` column.
    """
    notes: list[str] = []
    s = survey.copy()
    start = None
    if use_client_weight and "weight" in s.columns and s["weight"].notna().any():
        start = "weight"
        s["weight"] = s["weight"].fillna(s["weight"].mean())
        method = "client"
    else:
        method = "none"
    margins = list(rake_to_customers)
    if margins and customers is not None and "customer_id" in s.columns:
        have = [m for m in margins if m in customers.columns]
        for m in sorted(set(margins) - set(have)):
            notes.append(f"cannot rake on {m}: not a customers column")
        if have:
            s = s.merge(
                customers[["customer_id", *have]].drop_duplicates("customer_id"),
                on="customer_id",
                how="left",
                suffixes=("", "_customer"),
            )
            base = pd.Series(1.0, index=s.index) if start is None else s[start].astype("float64")
            targets = {}
            for m in have:
                s[m] = s[m].astype("object").where(s[m].notna(), UNKNOWN)
                pop = customers[m].value_counts().astype("float64")
                known = s[m] != UNKNOWN
                unknown_share = float(base[~known].sum() / base.sum())
                pop = pop / pop.sum() * (1 - unknown_share)
                if unknown_share > 0:
                    pop[UNKNOWN] = unknown_share
                    notes.append(
                        f"{unknown_share:.1%} of weighted responses have no known {m} "
                        "(anonymous or no consent): kept at their own share"
                    )
                targets[m] = pop
            res = rake(s, targets, weight=start, trim=trim)
            if trim and not res.converged:
                notes.append(
                    f"the trimming caps ({trim[0]:g}-{trim[1]:g} x the mean weight) cannot be met "
                    "together with the margins; weights raked without trimming"
                )
                res = rake(s, targets, weight=start)
            if not res.converged:
                notes.append(
                    f"raking did not converge (largest margin error {res.max_margin_error:.2%})"
                )
            s["weight_final"] = res.weights
            return s, SurveyWeights(s["weight_final"], "raked", have, res, notes)
    s["weight_final"] = 1.0 if start is None else s[start].astype("float64")
    return s, SurveyWeights(s["weight_final"], method, [], None, notes)
