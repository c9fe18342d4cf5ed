"""Employee experience: pride, eNPS and engagement by unit, team and role; turnover.

Employee figures always honour the anonymity floor: tables count distinct people
(``employee_id``), and groups below the floor are hidden with their complements
(:func:`rox_helpers.tables.metric_table`).

Turnover is modelled as time to leaving, not as a yearly rate:

* Kaplan-Meier curves of staying, by team or unit (lifelines);
* a Cox model with **time-varying** pride (lifelines ``CoxTimeVaryingFitter``): each
  month's risk of leaving depends on that month's pulse, not on pride averaged over a
  tenure that already includes the decision to go. (The pulse is taken in the month of
  leaving; a one-month lag is the stricter reading and gives a weaker, noisier effect.)
  Time runs from each person's first month in the data; tenure before the panel began
  (left truncation) is not modelled yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rox_helpers.errors import DataValidationError
from rox_helpers.tables import metric_table

EX_MEASURES = {"pride": "mean", "engagement": "mean", "enps": "enps"}


def ex_table(
    employees: pd.DataFrame,
    measure: str,
    *,
    by: Sequence[str],
    period: pd.Timestamp | str | None = None,
    reliability_base: int = 30,
    anonymity_floor: int = 5,
) -> pd.DataFrame:
    """Pride, engagement (means) or eNPS by unit, team or role, floor applied on people.

    One pulse period at a time (the latest by default): a monthly panel holds each person
    many times, and treating those rows as independent answers would overstate precision.
    """
    if measure not in employees.columns:
        raise DataValidationError(
            f"employees has no {measure!r} column",
            column=measure,
            rule="EX measure mapped",
            fix=f"Map the client's {measure} item under data.employees.columns.",
        )
    name = EX_MEASURES.get(measure, "mean")
    if "period" in employees.columns and employees["period"].notna().any():
        when = employees["period"].max() if period is None else pd.Timestamp(period)
        employees = employees[employees["period"] == when]
    return metric_table(
        employees,
        name,
        column=measure,
        by=by,
        people="employee_id",
        reliability_base=reliability_base,
        anonymity_floor=anonymity_floor,
    ).assign(measure=measure)


def tenure_spells(employees: pd.DataFrame) -> pd.DataFrame:
    """One row per employee-month as a risk interval: ``start``, ``stop``, ``event``.

    Months are counted from each employee's first month in the data; ``event`` is 1 in
    the month the employee left.  Rows after a departure (data errors) are dropped.
    """
    need = {"employee_id", "period", "left"}
    missing = need - set(employees.columns)
    if missing:
        raise DataValidationError(
            f"employees lacks {', '.join(sorted(missing))} for turnover",
            column=", ".join(sorted(missing)),
            rule="turnover needs employee_id, period and left",
            fix="Map the monthly pulse panel's employee id, month and leaver flag.",
        )
    d = employees.sort_values(["employee_id", "period"]).reset_index(drop=True)
    d["event"] = d["left"].fillna(False).astype(bool).astype("int64")
    # calendar months since the person's first month: a gap in the pulse is a gap in the
    # risk set, not a shorter tenure
    month = d["period"].dt.year * 12 + d["period"].dt.month
    d["start"] = month - month.groupby(d["employee_id"]).transform("min")
    d["stop"] = d["start"] + 1
    # nothing after the month someone left
    after = d.groupby("employee_id")["event"].cumsum().shift(fill_value=0) > 0
    first = ~d["employee_id"].duplicated()
    after &= ~first
    return d.loc[~after].reset_index(drop=True)


def km_curves(
    employees: pd.DataFrame, *, by: str = "team", anonymity_floor: int = 5
) -> pd.DataFrame:
    """Kaplan-Meier share still employed by months since first observed, per group.

    Groups with fewer people than the anonymity floor are left out.

    Returns
    -------
    pandas.DataFrame
        ``group``, ``month``, ``staying``, ``ci_low``, ``ci_high``, ``at_risk``, ``n_people``.
    """
    from lifelines import KaplanMeierFitter

    spells = tenure_spells(employees)
    per_person = spells.groupby("employee_id").agg(
        months=("stop", "max"), left=("event", "max"), group=(by, "first")
    )
    rows = []
    for group, g in per_person.groupby("group", observed=True):
        if len(g) < anonymity_floor:
            continue
        km = KaplanMeierFitter().fit(g["months"], g["left"])
        ci = km.confidence_interval_survival_function_
        table = km.event_table
        rows.append(
            pd.DataFrame(
                {
                    "group": group,
                    "month": km.survival_function_.index.to_numpy(),
                    "staying": km.survival_function_.iloc[:, 0].to_numpy(),
                    "ci_low": ci.iloc[:, 0].to_numpy(),
                    "ci_high": ci.iloc[:, 1].to_numpy(),
                    "at_risk": table["at_risk"].reindex(km.survival_function_.index).to_numpy(),
                    "n_people": len(g),
                }
            )
        )
    cols = ["group", "month", "staying", "ci_low", "ci_high", "at_risk", "n_people"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


@dataclass
class TurnoverModel:
    """A fitted Cox model of leaving with time-varying pride."""

    summary: pd.DataFrame  # covariate, coef, hazard_ratio, ci_low, ci_high, p_value
    n_people: int
    n_events: int
    pride_hazard_ratio: float
    pride_ci: tuple[float, float]

    def headline(self) -> str:
        change = 1 - self.pride_hazard_ratio
        word = "lowers" if change > 0 else "raises"
        return (
            f"Each extra point of pride {word} the monthly risk of leaving by "
            f"{abs(change):.0%} (hazard ratio {self.pride_hazard_ratio:.2f}, 95% CI "
            f"{self.pride_ci[0]:.2f}-{self.pride_ci[1]:.2f}; {self.n_events:,} leavers among "
            f"{self.n_people:,} people)"
        )


def fit_turnover(
    employees: pd.DataFrame,
    *,
    covariates: Sequence[str] = ("pride",),
    strata: Sequence[str] = ("team",),
    penalizer: float = 0.0,
) -> TurnoverModel:
    """Cox model of leaving with time-varying covariates (pride first), stratified by team.

    Stratifying by team lets each team have its own baseline risk without estimating a
    coefficient for it. Rows with a missing covariate are left out of the risk set.
    """
    from lifelines import CoxTimeVaryingFitter

    spells = tenure_spells(employees)
    cols = ["employee_id", "start", "stop", "event", *covariates, *strata]
    d = spells[cols].dropna()
    for c in covariates:
        d[c] = d[c].astype("float64")
    ctv = CoxTimeVaryingFitter(penalizer=penalizer)
    ctv.fit(
        d,
        id_col="employee_id",
        event_col="event",
        start_col="start",
        stop_col="stop",
        strata=list(strata) or None,
        show_progress=False,
    )
    s = ctv.summary
    summary = pd.DataFrame(
        {
            "covariate": s.index,
            "coef": s["coef"].to_numpy(),
            "hazard_ratio": s["exp(coef)"].to_numpy(),
            "ci_low": s["exp(coef) lower 95%"].to_numpy(),
            "ci_high": s["exp(coef) upper 95%"].to_numpy(),
            "p_value": s["p"].to_numpy(),
        }
    )
    pride = summary.set_index("covariate").loc[covariates[0]]
    return TurnoverModel(
        summary=summary,
        n_people=int(d["employee_id"].nunique()),
        n_events=int(d["event"].sum()),
        pride_hazard_ratio=float(pride["hazard_ratio"]),
        pride_ci=(float(pride["ci_low"]), float(pride["ci_high"])),
    )


def turnover_by_unit(employees: pd.DataFrame, *, anonymity_floor: int = 5) -> pd.DataFrame:
    """Per unit: people, leavers, monthly leaving rate and mean pride (floor applied)."""
    spells = tenure_spells(employees)
    g = spells.groupby("unit_id", observed=True).agg(
        n_people=("employee_id", "nunique"),
        months=("event", "size"),
        leavers=("event", "sum"),
        pride=("pride", "mean"),
    )
    g["monthly_leaving_rate"] = g["leavers"] / g["months"]
    g = g[g["n_people"] >= anonymity_floor]
    return g.reset_index().assign(pride=lambda x: x["pride"].astype("float64"))


def ex_drivers(
    employees: pd.DataFrame,
    outcome: str = "pride",
    items: Sequence[str] = ("engagement", "training_hours", "tenure_months"),
    *,
    period: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """What goes with pride (or eNPS) among the EX items: a standardised regression.

    One pulse period (the latest by default), one row per person; coefficients are in
    standard deviations of the outcome per standard deviation of the item, with HC3
    robust intervals. A plain regression until the driver-analysis methods (relative
    importance) land; it shows association, not cause.

    Returns
    -------
    pandas.DataFrame
        ``item``, ``beta``, ``ci_low``, ``ci_high``, ``p_value``, ``n``, ``r2``.
    """
    import statsmodels.api as sm

    items = [c for c in items if c in employees.columns and c != outcome]
    d = employees
    if "period" in d.columns and d["period"].notna().any():
        when = d["period"].max() if period is None else pd.Timestamp(period)
        d = d[d["period"] == when]
    d = d[[outcome, *items]].apply(pd.to_numeric, errors="coerce").dropna()
    if len(d) < len(items) + 10 or not items:
        return pd.DataFrame(columns=["item", "beta", "ci_low", "ci_high", "p_value", "n", "r2"])
    z = (d - d.mean()) / d.std(ddof=0).replace(0, np.nan)
    z = z.dropna(axis=1)
    x = sm.add_constant(z.drop(columns=[outcome]))
    fit = sm.OLS(z[outcome], x).fit(cov_type="HC3")
    ci = fit.conf_int()
    rows = [
        {
            "item": item,
            "beta": float(fit.params[item]),
            "ci_low": float(ci.loc[item, 0]),
            "ci_high": float(ci.loc[item, 1]),
            "p_value": float(fit.pvalues[item]),
            "n": int(fit.nobs),
            "r2": float(fit.rsquared),
        }
        for item in x.columns
        if item != "const"
    ]
    return (
        pd.DataFrame(rows).sort_values("beta", key=np.abs, ascending=False).reset_index(drop=True)
    )
