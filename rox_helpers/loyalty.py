"""Customer-level loyalty economics: what survey respondents did after they answered.

The most defensible link from CX to results is behavioural: guests who answered the survey
are followed in the interaction log, and their stays, revenue and retention over the next
months are compared by what they said, holding their earlier behaviour constant.

Follow-up windows (:func:`followup`)
------------------------------------
For every response by an identified customer (anonymous responses cannot be followed), with
response day ``d`` (the survey records a day, not a time)::

    prior      [d - 12 months, d + 1 day)             everything up to the end of the answer day
    follow-up  [d + 1 day,     d + h months + 1 day)  for each horizon h (6 and 12 months)

A **stay** is a completed ``check_in`` row; **revenue** is the revenue recorded in the window
(room revenue when a booking is completed, on-property spend when it is spent); a guest is
**retained** over ``h`` when they stayed at least once. The windows are computed inside the
engine (Ibis over DuckDB): the respondents' ``(customer_id, date)`` pairs are joined to the log
and aggregated, and only one row per response comes back.

Censoring. Observation ends at the last recorded stay (the last ``check_in``; trailing post-stay
e-mails do not extend it) unless ``data_end`` is given. A response counts for horizon ``h`` only
if its whole follow-up window lies inside the data (``complete_<h>m``); otherwise its outcomes
for that horizon are missing, never zero. :func:`censoring_summary` says how many were dropped.
The prior window is cut at the start of the data and at the guest's sign-up:
``prior_months`` (at most 12) is the length actually observed, and is a covariate, so an early
response with a short history is not mistaken for an infrequent guest.

Models (:func:`loyalty_by_nps_group`, :func:`loyalty_by_rating`, :func:`value_per_point`)
----------------------------------------------------------------------------------------
* stays and revenue: Poisson pseudo-likelihood (log link, "PPML"), which estimates a
  multiplicative conditional mean consistently whatever the dispersion, and takes revenue
  with its zeros as it is; retention: logit.
* the time to the next stay (``first_return``): a Poisson model of the first return with
  the time followed as exposure (a constant-hazard survival model), censored at the horizon
  or the end of the data, so responses without a complete window still count.
* adjusted for prior behaviour (:data:`DEFAULT_COVARIATES`): log prior stays, log prior
  revenue, log observed prior months, log tenure, trip purpose, and whether the guest had
  the app / was a community member when answering (from ``customers`` install and join
  dates; states before the answer, never after). Prior frequency is the best available
  proxy for a guest's underlying propensity to travel, which otherwise makes frequent
  (often happier, app-using) guests look as if their scores caused their loyalty.
* adjusted group means by recycled predictions (marginal standardisation): every response is
  predicted as if in each NPS group, and the predictions averaged over all respondents.
  Intervals by the delta method, conditional on the respondents' covariates.
* standard errors cluster-robust by customer (customers answer more than once, and their
  windows overlap); the sandwich is the survey pseudo-likelihood one (scores weighted by the
  survey weight), with the usual ``G/(G-1) (N-1)/(N-K)`` correction.
* survey weights: the client weight (``weight``) is used when present. It corrects the
  response propensity (business trips answer less, extreme scores and app users more), so the
  adjusted means and the value per point describe the guests' stays rather than the
  answerers'; it costs some precision. ``weight=None`` gives unweighted estimates.

Thresholds: groups of fewer customers than the anonymity floor are suppressed (with a
complementary cell, :func:`rox_helpers.tables.apply_thresholds`), and bases under the
reliability base are flagged ``reliable = False``.

What a point is worth, and what it is not. The estimates are observational: adjusted for
prior behaviour but not randomised; they are what a guest's answer predicts about their next
months among guests who behaved alike before. And they value *one stay's* experience: when a
guest's returns depend on their latest experience, the answered stay drives the return rate
only until the next stay replaces it, and later stays' scores follow it only as far as a
guest's way of rating persists. So the per-point rate ratio over a horizon is smaller than
the per-point effect on the return rate itself, roughly ``beta * (s + rho * (1 - s))`` on
the log scale, with ``s`` the share of follow-up stays that are first returns
(retained / stays) and ``rho`` the slope of a guest's next score on this one. The hazard of
the first return (``first_return``) is closest to the per-point effect on the return rate,
and an improvement that lasts (every stay one point better) is worth more than the horizon
figures; the business case should quote them as the conservative figures they are.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from threadpoolctl import threadpool_limits

from rox_helpers.errors import DataValidationError
from rox_helpers.features import EXACT
from rox_helpers.tables import NOTE_FLOOR, NOTE_LOW_BASE, apply_thresholds

__all__ = [
    "DEFAULT_COVARIATES",
    "HORIZONS",
    "NPS_GROUPS",
    "WITHIN_COVARIATES",
    "active_guests",
    "censoring_summary",
    "followup",
    "followup_table",
    "loyalty_by_nps_group",
    "loyalty_by_rating",
    "nps_group",
    "return_rate_within",
    "value_per_point",
]

HORIZONS: tuple[int, ...] = (6, 12)
PRIOR_MONTHS = 12
DAYS_PER_MONTH = 365.25 / 12
NPS_GROUPS: tuple[str, ...] = ("detractor", "passive", "promoter")
OUTCOMES: tuple[str, ...] = ("stays", "revenue", "retained")
#: covariates describing prior behaviour (see :data:`TRANSFORMS`)
DEFAULT_COVARIATES: tuple[str, ...] = (
    "log_prior_stays",
    "log_prior_revenue",
    "log_prior_months",
    "log_tenure_years",
    "trip_purpose",
    "app_user_at_response",
    "community_member_at_response",
)
TRANSFORMS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "log_prior_stays": lambda d: np.log1p(d["prior_stays"]),
    "log_prior_revenue": lambda d: np.log1p(d["prior_revenue"].clip(lower=0)),
    "log_prior_months": lambda d: np.log(d["prior_months"]),
    "log_tenure_years": lambda d: np.log1p(d["tenure_days"].clip(lower=0) / 365.25),
}
#: customers date columns -> flag "had it when answering" (a state before the response)
STATUS_DATES = {
    "app_install_date": "app_user_at_response",
    "community_join_date": "community_member_at_response",
}
_FAMILY = {"stays": "poisson", "revenue": "poisson", "retained": "logit"}
_MEASURE = {
    "stays": "rate ratio",
    "revenue": "ratio of means",
    "retained": "odds ratio",
    "first_return": "hazard ratio",
}


# --------------------------------------------------------------------------------------
# Follow-up windows
# --------------------------------------------------------------------------------------


def nps_group(score: pd.Series) -> pd.Series:
    """NPS group of a 0-10 recommend score: detractor 0-6, passive 7-8, promoter 9-10.

    Returns an ordered categorical (missing where the score is missing).
    """
    s = pd.to_numeric(score, errors="coerce")
    out = pd.Series(
        np.select([s >= 9, s >= 7, s >= 0], ["promoter", "passive", "detractor"], ""),
        index=score.index,
    )
    return pd.Categorical(out.where(s.notna()), categories=NPS_GROUPS, ordered=True)


def followup(
    data,
    horizons: Sequence[int] = HORIZONS,
    *,
    stay_stage: str = "check_in",
    data_end: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """What each identified respondent did before and after answering.

    Parameters
    ----------
    data : EngagementData
        A loaded engagement with a ``cx_survey`` table (with ``customer_id`` and ``date``) and
        an interaction log; ``customers`` (``signup_date``) is used for tenure when present.
    horizons : sequence of int, default=(6, 12)
        Follow-up horizons in calendar months.
    stay_stage : str, default="check_in"
        Journey stage whose completed rows are stays.
    data_end : Timestamp, optional
        End of observation; the day after the last recorded stay by default.

    Returns
    -------
    pandas.DataFrame
        See :func:`followup_table`.

    Raises
    ------
    DataValidationError
        If the survey or the interaction log is missing or lacks a needed column.
    """
    survey = data.tables.get("cx_survey")
    if survey is None or data.interactions is None:
        missing = "cx_survey" if survey is None else "interactions"
        raise DataValidationError(
            f"loyalty follow-up needs the {missing} table",
            file=missing,
            rule="cx_survey and interactions are declared",
            fix=f"Declare the {missing} source in engagement.yml.",
        )
    return followup_table(
        survey,
        data.interactions,
        customers=data.tables.get("customers"),
        horizons=horizons,
        stay_stage=stay_stage,
        data_end=data_end,
    )


def _require(columns: Sequence[str], have: Sequence[str], table: str) -> None:
    missing = [c for c in columns if c not in have]
    if missing:
        raise DataValidationError(
            f"{table} lacks column(s) {', '.join(missing)} needed for the loyalty follow-up",
            file=table,
            column=missing[0],
            rule="required column",
            fix=f"Map {', '.join(missing)} in engagement.yml (data.{table}.columns).",
        )


def followup_table(
    survey: pd.DataFrame,
    interactions: ibis.Table,
    *,
    customers: pd.DataFrame | None = None,
    horizons: Sequence[int] = HORIZONS,
    stay_stage: str = "check_in",
    data_end: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Follow-up windows from canonical tables (the work behind :func:`followup`).

    Parameters
    ----------
    survey : pandas.DataFrame
        Canonical ``cx_survey``: ``response_id``, ``customer_id``, ``date`` and the answers.
    interactions : ibis.Table
        Canonical interaction log: ``customer_id``, ``timestamp``, ``journey_stage``,
        ``completed`` and ``revenue``.
    customers : pandas.DataFrame, optional
        Canonical customers: ``signup_date`` gives tenure (first appearance in the log
        otherwise) and bounds the prior window.
    horizons, stay_stage, data_end
        See :func:`followup`.

    Returns
    -------
    pandas.DataFrame
        One row per response by a customer found in the log, in ``response_id`` order: the
        survey columns, ``nps_group``, ``prior_stays``, ``prior_revenue``, ``prior_months``
        (observed length of the 12-month prior window), ``tenure_days`` and, per horizon
        ``h``: ``complete_<h>m`` (bool), ``stays_<h>m``, ``revenue_<h>m``, ``retained_<h>m``
        (float; missing when the window is incomplete); ``days_to_return`` (days from the
        day after the answer to the next stay, missing if none was seen within the longest
        horizon), ``days_observed`` (days followed, at most the longest horizon); with
        ``customers`` install/join dates, ``app_user_at_response`` and
        ``community_member_at_response`` (0/1). ``attrs`` (JSON-able) hold ``data_start``,
        ``data_end``, ``horizons``, ``n_anonymous`` (responses without a customer, not
        followed) and ``n_not_in_log`` (responses by customers never seen in the log).
    """
    horizons = tuple(sorted({int(h) for h in horizons}))
    if not horizons or horizons[0] < 1:
        raise ValueError(f"horizons must be positive whole months, got {horizons!r}")
    _require(("response_id", "customer_id", "date"), survey.columns, "cx_survey")
    _require(
        ("customer_id", "timestamp", "journey_stage", "revenue"),
        interactions.columns,
        "interactions",
    )
    t = interactions.filter(interactions.customer_id.notnull())
    is_stay = t.journey_stage == stay_stage
    if "completed" in t.columns:
        is_stay = is_stay & t.completed.fill_null(False)
    t = t.select(
        customer_id=t.customer_id,
        ts=t.timestamp,
        stay=is_stay.cast("int64"),
        revenue=t.revenue.fill_null(0).cast(EXACT),
    )
    span = t.aggregate(
        start=t.ts.min(), end=t.ts.max(), last_stay=t.ts.max(where=t.stay == 1)
    ).to_pandas()
    if span.empty or pd.isna(span["start"].iloc[0]):
        raise DataValidationError(
            "the interaction log has no rows with a customer",
            file="interactions",
            column="customer_id",
            rule="customers can be followed in the log",
            fix="Check the customer_id mapping of the interaction log.",
        )
    data_start = pd.Timestamp(span["start"].iloc[0]).normalize()
    if data_end is None:
        last = span["last_stay"].iloc[0]
        last = span["end"].iloc[0] if pd.isna(last) else last
        data_end = pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
    data_end = pd.Timestamp(data_end)

    dup = survey["response_id"].duplicated() & survey["response_id"].notna()
    if dup.any():
        raise DataValidationError(
            f"{int(dup.sum())} duplicate response id(s) in the survey",
            file="cx_survey",
            column="response_id",
            rule="unique response ids",
            fix="Load the survey with load_engagement, which quarantines duplicate ids.",
        )
    s = survey.copy()
    anonymous = s["customer_id"].isna() | s["date"].isna()
    s = s[~anonymous]
    day = pd.to_datetime(s["date"]).dt.normalize().astype("datetime64[us]")
    win = pd.DataFrame(
        {
            "response_id": s["response_id"].astype("str"),
            "customer_id": s["customer_id"].astype("str"),
            "_d0": day + pd.Timedelta(days=1),
            "_p0": day - pd.DateOffset(months=PRIOR_MONTHS),
        }
    )
    for h in horizons:
        win[f"_e{h}"] = day + pd.DateOffset(months=h) + pd.Timedelta(days=1)
    for c in win.columns[2:]:
        win[c] = win[c].astype("datetime64[us]")
    r = ibis.memtable(win)
    j = r.inner_join(t, r.customer_id == t.customer_id)
    j = j.filter(j.ts >= j._p0, j.ts < j[f"_e{horizons[-1]}"])
    before = j.ts < j._d0
    aggs: dict[str, ibis.Value] = {
        "prior_stays": j.stay.sum(where=before),
        "prior_revenue": j.revenue.sum(where=before),
    }
    for h in horizons:
        inside = (j.ts >= j._d0) & (j.ts < j[f"_e{h}"])
        aggs[f"stays_{h}m"] = j.stay.sum(where=inside)
        aggs[f"revenue_{h}m"] = j.revenue.sum(where=inside)
    aggs["_next_stay"] = j.ts.min(where=(j.ts >= j._d0) & (j.stay == 1))
    got = j.group_by("response_id").aggregate(**aggs)
    got = got.mutate(
        **{c: got[c].cast("float64").fill_null(0) for c in aggs if "revenue" in c},
        **{c: got[c].fill_null(0) for c in aggs if "stays" in c},
    )
    ids = r.select("customer_id").distinct()
    seen = t.group_by("customer_id").aggregate(first_seen=t.ts.min())
    seen = seen.inner_join(ids, seen.customer_id == ids.customer_id).select(
        "customer_id", "first_seen"
    )
    got = got.to_pandas()
    seen = seen.to_pandas()

    out = s.assign(response_id=win["response_id"], customer_id=win["customer_id"])
    out = out.merge(seen, on="customer_id", how="left")
    n_not_in_log = int(out["first_seen"].isna().sum())
    out = out[out["first_seen"].notna()].merge(got, on="response_id", how="left")
    wins = win.set_index("response_id").loc[out["response_id"]]
    count_cols = ["prior_stays", *(f"stays_{h}m" for h in horizons)]
    money_cols = ["prior_revenue", *(f"revenue_{h}m" for h in horizons)]
    out[count_cols] = out[count_cols].fillna(0).astype("float64")
    out[money_cols] = out[money_cols].fillna(0.0).astype("float64")

    signup = pd.Series(pd.NaT, index=out.index, dtype="datetime64[us]")
    if customers is not None and {"customer_id", "signup_date"} <= set(customers.columns):
        su = customers.dropna(subset=["customer_id"]).drop_duplicates("customer_id")
        su = su.set_index(su["customer_id"].astype("str"))["signup_date"]
        signup = out["customer_id"].map(su).astype("datetime64[us]")
    first_seen = pd.to_datetime(out["first_seen"]).astype("datetime64[us]")
    start = signup.fillna(first_seen)
    d0 = wins["_d0"].to_numpy()
    prior_from = np.maximum.reduce(
        [
            wins["_p0"].to_numpy(),
            np.full(len(out), data_start.to_datetime64()).astype("datetime64[us]"),
            start.fillna(pd.Timestamp.min).to_numpy(),
        ]
    )
    out["prior_months"] = np.clip(
        (d0 - prior_from) / np.timedelta64(1, "D") / DAYS_PER_MONTH, 1.0 / DAYS_PER_MONTH, None
    )
    out["tenure_days"] = ((d0 - start.to_numpy()) / np.timedelta64(1, "D") - 1).clip(min=0)
    # time to the next stay (within the longest horizon), and how long the guest was followed
    followed_to = np.minimum(
        wins[f"_e{horizons[-1]}"].to_numpy(), np.datetime64(data_end.to_datetime64(), "us")
    )
    out["days_observed"] = np.clip((followed_to - d0) / np.timedelta64(1, "D"), 0, None)
    next_stay = pd.to_datetime(out["_next_stay"]).astype("datetime64[us]").to_numpy()
    out["days_to_return"] = (next_stay - d0) / np.timedelta64(1, "D")
    out["days_to_return"] = out["days_to_return"].where(
        out["days_to_return"] < out["days_observed"]
    )
    if customers is not None and "customer_id" in customers.columns:
        cu = customers.dropna(subset=["customer_id"]).drop_duplicates("customer_id")
        cu = cu.set_index(cu["customer_id"].astype("str"))
        answered = pd.to_datetime(out["date"]).dt.normalize()
        for col, flag in STATUS_DATES.items():
            if col in cu.columns:
                since = out["customer_id"].map(cu[col]).astype("datetime64[us]")
                out[flag] = (since <= answered).astype("float64")
    out["nps_group"] = nps_group(out["nps"]) if "nps" in out.columns else pd.NA
    for h in horizons:
        complete = (wins[f"_e{h}"] <= data_end).to_numpy()
        out[f"complete_{h}m"] = complete
        out[f"retained_{h}m"] = (out[f"stays_{h}m"] > 0).astype("float64")
        for c in (f"stays_{h}m", f"revenue_{h}m", f"retained_{h}m"):
            out[c] = out[c].where(complete)
    out = out.drop(columns=["first_seen", "_next_stay"]).sort_values(
        "response_id", ignore_index=True
    )
    # JSON-able, so the frame can be saved as a parquet artifact
    out.attrs = {
        "data_start": data_start.isoformat(),
        "data_end": data_end.isoformat(),
        "horizons": list(horizons),
        "n_anonymous": int(anonymous.sum()),
        "n_not_in_log": n_not_in_log,
    }
    return out


def censoring_summary(followup: pd.DataFrame) -> pd.DataFrame:
    """How many responses have a complete follow-up window, per horizon.

    Returns
    -------
    pandas.DataFrame
        ``horizon_months``, ``n_responses``, ``n_complete``, ``n_censored`` (dropped: the
        window runs past the end of the data), ``share_censored``, ``data_end``.
    """
    rows = []
    for h in _horizons(followup):
        complete = followup[f"complete_{h}m"].astype(bool)
        rows.append(
            {
                "horizon_months": h,
                "n_responses": len(followup),
                "n_complete": int(complete.sum()),
                "n_censored": int((~complete).sum()),
                "share_censored": float((~complete).mean()) if len(followup) else np.nan,
                "data_end": pd.Timestamp(followup.attrs.get("data_end", pd.NaT)),
            }
        )
    return pd.DataFrame(rows)


def _horizons(followup: pd.DataFrame) -> list[int]:
    return sorted(
        int(c[len("complete_") : -1]) for c in followup.columns if c.startswith("complete_")
    )


def active_guests(
    interactions: ibis.Table,
    *,
    months: int = 12,
    stay_stage: str = "check_in",
    end: pd.Timestamp | str | None = None,
) -> int:
    """Number of distinct customers with a completed stay in the last ``months`` of the log.

    The base to scale per-guest values to: respondents are recent guests, so the dormant part
    of a CRM file is not the population the per-guest estimates describe.
    """
    t = interactions.filter(
        interactions.customer_id.notnull() & (interactions.journey_stage == stay_stage)
    )
    if "completed" in t.columns:
        t = t.filter(t.completed.fill_null(False))
    if end is None:
        last = t.timestamp.max().to_pyarrow().as_py()
        if last is None:
            return 0
        end = pd.Timestamp(last)
    since = pd.Timestamp(end) - pd.DateOffset(months=months)
    lit = ibis.literal(since.to_pydatetime(), type=dt.Timestamp())
    return int(t.filter(t.timestamp > lit).customer_id.nunique().to_pyarrow().as_py())


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


@dataclass
class _Fit:
    """One fitted GLM with what recycled predictions need."""

    result: object  # statsmodels GLMResults
    X: pd.DataFrame
    w: np.ndarray
    family: str
    offset: np.ndarray | None
    n_people: int

    @property
    def params(self) -> np.ndarray:
        return np.asarray(self.result.params, dtype="float64")

    @property
    def cov(self) -> np.ndarray:
        return np.asarray(self.result.cov_params(), dtype="float64")

    def mean_and_gradient(self, X: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted mean prediction over the respondents for design ``X``, and its gradient."""
        eta = X @ self.params
        if self.offset is not None:
            eta = eta + self.offset
        if self.family == "poisson":
            mu = np.exp(eta)
            d = mu
        else:
            mu = 1.0 / (1.0 + np.exp(-eta))
            d = mu * (1.0 - mu)
        total = self.w.sum()
        return float(self.w @ mu / total), (self.w * d) @ X / total

    def se(self, gradient: np.ndarray) -> float:
        return float(np.sqrt(max(gradient @ self.cov @ gradient, 0.0)))


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def _weights(df: pd.DataFrame, weight: str | None) -> tuple[np.ndarray, bool]:
    """Survey weights (mean-filled where missing), or ones; and whether weights were used."""
    if weight is None or weight not in df.columns or df[weight].isna().all():
        return np.ones(len(df)), False
    w = pd.to_numeric(df[weight], errors="coerce").astype("float64")
    if (w < 0).any():
        raise DataValidationError(
            f"{int((w < 0).sum())} negative survey weight(s)",
            column=weight,
            rule="weights are zero or positive",
            fix="Correct the weight column with the client; negative weights have no meaning.",
        )
    return w.fillna(w.mean()).to_numpy(), True


def _covariate_frame(
    df: pd.DataFrame, covariates: Sequence[str], *, strict: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Numeric design columns for the covariates (categorical ones as dummies).

    Covariates that are absent are an error when asked for explicitly (``strict``) and left
    out otherwise; covariates that do not vary are left out. Returns the columns and the
    names of the covariates used.
    """
    cols: dict[str, pd.Series] = {}
    used: list[str] = []
    for name in covariates:
        if name in TRANSFORMS:
            need = {
                "log_prior_stays": "prior_stays",
                "log_prior_revenue": "prior_revenue",
                "log_prior_months": "prior_months",
                "log_tenure_years": "tenure_days",
            }[name]
            if need not in df.columns:
                if strict:
                    _require((need,), df.columns, "follow-up frame")
                continue
            values = TRANSFORMS[name](df).astype("float64")
            if values.nunique() > 1:
                cols[name] = values
                used.append(name)
            continue
        if name not in df.columns:
            if strict:
                _require((name,), df.columns, "follow-up frame")
            continue
        s = df[name]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            values = s.astype("float64")
            if values.nunique() > 1:
                cols[name] = values
                used.append(name)
            continue
        text = s.astype("object").where(s.notna(), "(missing)").astype("str")
        levels = sorted(text.unique())
        if len(levels) < 2:
            continue
        for level in levels[1:]:
            cols[f"{name}[{level}]"] = (text == level).astype("float64")
        used.append(name)
    return pd.DataFrame(cols, index=df.index), used


def _fit(
    y: pd.Series,
    focal: pd.DataFrame,
    covs: pd.DataFrame,
    *,
    family: str,
    w: np.ndarray,
    groups: pd.Series,
    offset: np.ndarray | None = None,
) -> _Fit:
    """GLM with survey weights and customer-clustered standard errors.

    statsmodels warns that robust covariances are "not fully supported" with ``var_weights``;
    for Poisson and logit the cluster sandwich it computes is the survey pseudo-likelihood
    one (scores ``w_i x_i (y_i - mu_i)``, bread ``X' W V X``), which the tests check by hand.
    """
    X = pd.concat([pd.Series(1.0, index=y.index, name="const"), focal, covs], axis=1)
    fam = sm.families.Poisson() if family == "poisson" else sm.families.Binomial()
    codes = pd.factorize(groups.astype("str"), sort=True)[0]
    # tall, thin least squares: threaded BLAS only adds contention (10x slower on a busy box)
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", sm.tools.sm_exceptions.SpecificationWarning)
        model = sm.GLM(
            y.to_numpy(dtype="float64"),
            X.to_numpy(dtype="float64"),
            family=fam,
            var_weights=w,
            offset=offset,
        )
        result = model.fit(cov_type="cluster", cov_kwds={"groups": codes})
    return _Fit(result, X, w, family, offset, len(np.unique(codes)))


def _outcome(
    followup: pd.DataFrame, outcome: str, horizon: int
) -> tuple[pd.Series, np.ndarray | None, pd.Series]:
    """Outcome values, log exposure (first-return hazard only) and the rows that have them."""
    if outcome == "first_return":
        cap = horizon * DAYS_PER_MONTH
        t = followup["days_to_return"]
        exposure = np.minimum(t.fillna(np.inf), np.minimum(followup["days_observed"], cap))
        event = (t.notna() & (t <= exposure)).astype("float64")
        ok = exposure > 0
        log_exposure = np.log(np.where(ok, exposure, DAYS_PER_MONTH) / DAYS_PER_MONTH)
        return event, log_exposure, ok
    col = f"{outcome}_{horizon}m"
    if col not in followup.columns:
        have = ", ".join(str(h) for h in _horizons(followup)) or "none"
        raise ValueError(f"no {horizon}-month follow-up in the frame (horizons: {have})")
    y = followup[col]
    return y, None, y.notna()


def _wald(est: float, se: float, z: float, scale: str) -> tuple[float, float]:
    """Interval on the log (positive means), logit (shares) or natural scale."""
    if not (np.isfinite(est) and np.isfinite(se)):
        return float("nan"), float("nan")
    if scale == "log" and est > 0:
        f = np.exp(z * se / est)
        return est / f, est * f
    if scale == "logit" and 0 < est < 1:
        lo = np.log(est / (1 - est)) - z * se / (est * (1 - est))
        hi = np.log(est / (1 - est)) + z * se / (est * (1 - est))
        return float(1 / (1 + np.exp(-lo))), float(1 / (1 + np.exp(-hi)))
    return est - z * se, est + z * se


def _thresholds(
    cells: pd.DataFrame, key: str, reliability_base: int, anonymity_floor: int
) -> pd.DataFrame:
    """``reliable``, ``suppressed`` and ``note`` per cell, by the rules of
    :func:`rox_helpers.tables.apply_thresholds` (with complementary suppression)."""
    t = cells[[key, "n", "n_people"]].copy()
    for c in ("n_eff", "deff", "estimate", "se", "ci_low", "ci_high"):
        t[c] = np.nan
    t = apply_thresholds(
        t, by=[key], reliability_base=reliability_base, anonymity_floor=anonymity_floor
    )
    return t[[key, "reliable", "suppressed", "note"]]


def loyalty_by_nps_group(
    followup: pd.DataFrame,
    *,
    horizon: int = 12,
    covariates: Sequence[str] | None = None,
    weight: str | None = "weight",
    reliability_base: int = 30,
    anonymity_floor: int = 5,
    level: float = 0.95,
) -> pd.DataFrame:
    """Stays, revenue and retention after answering, per NPS group, raw and adjusted.

    Parameters
    ----------
    followup : pandas.DataFrame
        From :func:`followup`.
    horizon : int, default=12
        Follow-up horizon in months (one of the frame's horizons); only responses with a
        complete window count.
    covariates : sequence of str, optional
        Adjustment set; :data:`DEFAULT_COVARIATES` (those present) by default. ``()`` gives
        unadjusted estimates. Names are follow-up columns (text ones become dummies) or
        :data:`TRANSFORMS`.
    weight : str or None, default="weight"
        Survey weight column (unweighted when absent or None).
    reliability_base, anonymity_floor : int
        engagement.yml ``privacy``: groups of fewer customers than the floor are suppressed
        with a complement; groups of fewer responses than the base are flagged.
    level : float, default=0.95
        Interval level.

    Returns
    -------
    pandas.DataFrame
        One row per ``outcome`` (``stays``, ``revenue``, ``retained``) and ``nps_group``
        (``detractor``, ``passive``, ``promoter``, then the differences ``promoter -
        detractor`` and ``passive - detractor``): ``horizon_months``, ``n`` (responses),
        ``n_people`` (customers), ``raw`` (weighted mean) with ``raw_ci_low``/``raw_ci_high``,
        ``adjusted`` (recycled-prediction mean, or difference) with ``se``, ``ci_low``,
        ``ci_high``, ``p_value`` (differences), ``reliable``, ``suppressed``, ``note``.
        ``attrs``: ``covariates`` used, ``weighted``, ``n_censored`` and ``n_incomplete``
        (rows without covariates).
    """
    strict = covariates is not None
    covariates = DEFAULT_COVARIATES if covariates is None else tuple(covariates)
    col = f"complete_{horizon}m"
    if col not in followup.columns:
        raise ValueError(f"no {horizon}-month follow-up in the frame")
    _require(("customer_id", "nps_group"), followup.columns, "follow-up frame")
    base = followup[followup[col].astype(bool) & followup["nps_group"].notna()]
    covs, used = _covariate_frame(base, covariates, strict=strict)
    usable = covs.notna().all(axis=1)
    d = base[usable]
    covs = covs[usable]
    z = _z(level)
    group = pd.Categorical(d["nps_group"], categories=NPS_GROUPS)
    # a group nobody is in has no estimate (and is suppressed below); the first group
    # present is the reference level of the model
    present = [g for g in NPS_GROUPS if (group == g).any()]
    if not present:
        raise ValueError(f"no responses with an NPS and a complete {horizon}-month follow-up")
    dummies = pd.DataFrame(
        {f"nps_group[{g}]": (group == g).astype("float64") for g in present[1:]},
        index=d.index,
    )
    w, weighted = _weights(d, weight)

    cells = pd.DataFrame(
        {
            "nps_group": list(NPS_GROUPS),
            "n": [int((group == g).sum()) for g in NPS_GROUPS],
            "n_people": [int(d.loc[group == g, "customer_id"].nunique()) for g in NPS_GROUPS],
        }
    )
    flags = _thresholds(cells, "nps_group", reliability_base, anonymity_floor).set_index(
        "nps_group"
    )

    def designs(fit: _Fit) -> dict[str, np.ndarray]:
        """The design with every response put in group ``g`` (recycled predictions)."""
        out = {}
        for g in present:
            X = fit.X.copy()
            for h in present[1:]:
                X[f"nps_group[{h}]"] = 1.0 if h == g else 0.0
            out[g] = X.to_numpy(dtype="float64")
        return out

    rows = []
    for outcome in OUTCOMES:
        family = _FAMILY[outcome]
        y = d[f"{outcome}_{horizon}m"]
        scale = "log" if family == "poisson" else "logit"
        fits = {
            "raw": _fit(y, dummies, covs.iloc[:, :0], family=family, w=w, groups=d["customer_id"]),
            "adjusted": _fit(y, dummies, covs, family=family, w=w, groups=d["customer_id"]),
        }
        est: dict[str, dict[str, tuple[float, np.ndarray]]] = {}
        for kind, fit in fits.items():
            est[kind] = dict.fromkeys(NPS_GROUPS, (np.nan, np.full(fit.X.shape[1], np.nan)))
            est[kind].update({g: fit.mean_and_gradient(X) for g, X in designs(fit).items()})
        for g in NPS_GROUPS:
            row = {"horizon_months": horizon, "outcome": outcome, "nps_group": g}
            row.update(cells.set_index("nps_group").loc[g].to_dict())
            for kind, fit in fits.items():
                m, grad = est[kind][g]
                se = fit.se(grad)
                lo, hi = _wald(m, se, z, scale)
                if kind == "raw":
                    row.update(raw=m, raw_ci_low=lo, raw_ci_high=hi)
                else:
                    row.update(adjusted=m, se=se, ci_low=lo, ci_high=hi, p_value=np.nan)
            row.update(flags.loc[g].to_dict())
            rows.append(row)
        for a, b in (("promoter", "detractor"), ("passive", "detractor")):
            row = {"horizon_months": horizon, "outcome": outcome, "nps_group": f"{a} - {b}"}
            both = (group == a) | (group == b)
            row.update(n=int(both.sum()), n_people=int(d.loc[both, "customer_id"].nunique()))
            for kind, fit in fits.items():
                (ma, ga), (mb, gb) = est[kind][a], est[kind][b]
                diff, se = ma - mb, fit.se(ga - gb)
                lo, hi = diff - z * se, diff + z * se
                if kind == "raw":
                    row.update(raw=diff, raw_ci_low=lo, raw_ci_high=hi)
                else:
                    p = 2 * stats.norm.sf(abs(diff) / se) if se > 0 else np.nan
                    row.update(adjusted=diff, se=se, ci_low=lo, ci_high=hi, p_value=p)
            hidden = bool(flags.loc[[a, b], "suppressed"].any())
            row.update(
                reliable=bool(flags.loc[[a, b], "reliable"].all()) and not hidden,
                suppressed=hidden,
                note=_note_pair(flags, a, b),
            )
            rows.append(row)
    out = pd.DataFrame(rows)
    out = _blank(out)
    out.attrs = {
        "covariates": used,
        "weighted": weighted,
        "n_censored": int((~followup[col].astype(bool)).sum()),
        "n_incomplete": int((~usable).sum()),
        "level": level,
    }
    return out


def _note_pair(flags: pd.DataFrame, a: str, b: str) -> str:
    notes = [n for n in flags.loc[[a, b], "note"] if n]
    return notes[0] if notes else ""


NUMBERS = (
    "n",
    "n_people",
    "raw",
    "raw_ci_low",
    "raw_ci_high",
    "adjusted",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "per_point",
    "per_point_ci_low",
    "per_point_ci_high",
    "per_customer",
    "total",
    "total_ci_low",
    "total_ci_high",
    "customers",
)


def _blank(out: pd.DataFrame) -> pd.DataFrame:
    """Suppressed rows carry no numbers at all (not even ``n``)."""
    cols = [c for c in NUMBERS if c in out.columns]
    out[cols] = out[cols].astype("float64")
    out.loc[out["suppressed"], cols] = np.nan
    return out


def _per_point(fit: _Fit, column: str) -> tuple[float, np.ndarray]:
    """Average marginal effect of one point of ``column`` on the outcome, and its gradient."""
    X = fit.X.to_numpy(dtype="float64")
    k = list(fit.X.columns).index(column)
    beta = fit.params
    eta = X @ beta + (0.0 if fit.offset is None else fit.offset)
    total = fit.w.sum()
    if fit.family == "poisson":
        mu = np.exp(eta)
        mean = fit.w @ mu / total
        grad = beta[k] * (fit.w * mu) @ X / total
    else:
        mu = 1.0 / (1.0 + np.exp(-eta))
        mean = fit.w @ (mu * (1 - mu)) / total
        grad = beta[k] * (fit.w * mu * (1 - mu) * (1 - 2 * mu)) @ X / total
    grad[k] += mean
    return float(beta[k] * mean), grad


def loyalty_by_rating(
    followup: pd.DataFrame,
    ratings: Sequence[str] | None = None,
    *,
    horizon: int = 12,
    outcomes: Sequence[str] = ("stays", "revenue", "retained", "first_return"),
    covariates: Sequence[str] | None = None,
    weight: str | None = "weight",
    reliability_base: int = 30,
    anonymity_floor: int = 5,
    level: float = 0.95,
) -> pd.DataFrame:
    """Adjusted effect of one rating point on later stays, revenue and retention.

    Ratings are correlated (a guest who liked the stay rates everything higher: halo), so
    each is reported twice: ``model="separate"`` (one rating at a time: what a point on it
    predicts, its own effect plus whatever it shares with the others) and ``model="joint"``
    (all attribute ratings together on the responses that rated them all: the effect of a
    point holding the other ratings fixed; smaller, and noisier when ratings are collinear).
    The recommend score (``nps``) is reported separately only: it is driven by the
    ratings, so in a joint model it would absorb their effects.

    Parameters
    ----------
    followup : pandas.DataFrame
        From :func:`followup`.
    ratings : sequence of str, optional
        Rating columns; every ``att_*`` column and ``nps`` by default.
    horizon : int, default=12
        Follow-up horizon in months.
    outcomes : sequence of str
        ``stays`` (rate ratio), ``revenue`` (ratio of means), ``retained`` (odds ratio) over
        the horizon, on the responses with a complete window; ``first_return``: the hazard
        ratio of the next stay (Poisson model of the first return with the time followed as
        exposure, censored at the horizon or the end of the data, so every response counts).
    covariates, weight, reliability_base, anonymity_floor, level
        As in :func:`loyalty_by_nps_group`.

    Returns
    -------
    pandas.DataFrame
        One row per ``model``, ``rating`` and ``outcome``: ``horizon_months``, ``measure``,
        ``n``, ``n_people``, ``ratio`` (per point) with ``ratio_ci_low``/``ratio_ci_high``,
        ``p_value``, ``per_point`` (average marginal effect of one point: stays, currency, or
        probability; none for the hazard) with its interval, ``reliable``, ``suppressed``,
        ``note``. ``attrs``: ``covariates``, ``weighted``.
    """
    strict = covariates is not None
    covariates = DEFAULT_COVARIATES if covariates is None else tuple(covariates)
    if ratings is None:
        ratings = [c for c in followup.columns if c.startswith("att_")]
        ratings += ["nps"] if "nps" in followup.columns else []
    ratings = list(ratings)
    _require(ratings, followup.columns, "follow-up frame")
    unknown = sorted(set(outcomes) - {*OUTCOMES, "first_return"})
    if unknown:
        raise ValueError(f"unknown outcome(s): {', '.join(unknown)}")
    z = _z(level)
    covs_all, _ = _covariate_frame(followup, covariates, strict=strict)
    used: list[str] = []
    joint = [r for r in ratings if r != "nps"]
    specs = [("separate", [r]) for r in ratings]
    if len(joint) > 1:
        specs.append(("joint", joint))
    rows = []
    weighted = False
    for outcome in outcomes:
        y_all, offset_all, has_y = _outcome(followup, outcome, horizon)
        family = "poisson" if outcome == "first_return" else _FAMILY[outcome]
        measure = _MEASURE[outcome]
        for model, focal in specs:
            ok = has_y & followup[focal].notna().all(axis=1) & covs_all.notna().all(axis=1)
            d = followup[ok]
            n, n_people = int(ok.sum()), int(d["customer_id"].nunique())
            hidden = n_people < anonymity_floor
            fit = None
            # covariates that do not vary among these responses leave the model
            covs, names = _covariate_frame(d, covariates, strict=strict)
            used += [c for c in names if c not in used]
            if not hidden and n > len(focal) + covs.shape[1] + 1:
                w, weighted = _weights(d, weight)
                fit = _fit(
                    y_all[ok],
                    d[focal].astype("float64"),
                    covs,
                    family=family,
                    w=w,
                    groups=d["customer_id"],
                    offset=None if offset_all is None else offset_all[ok.to_numpy()],
                )
            for rating in focal:
                row = {
                    "horizon_months": horizon,
                    "model": model,
                    "rating": rating,
                    "outcome": outcome,
                    "measure": measure,
                    "n": n,
                    "n_people": n_people,
                    "reliable": n >= reliability_base and not hidden,
                    "suppressed": hidden,
                    "note": NOTE_FLOOR
                    if hidden
                    else ""
                    if n >= reliability_base
                    else NOTE_LOW_BASE,
                }
                if fit is not None:
                    k = list(fit.X.columns).index(rating)
                    b, se = fit.params[k], float(np.sqrt(fit.cov[k, k]))
                    row.update(
                        ratio=np.exp(b),
                        ratio_ci_low=np.exp(b - z * se),
                        ratio_ci_high=np.exp(b + z * se),
                        p_value=2 * stats.norm.sf(abs(b) / se) if se > 0 else np.nan,
                    )
                    if outcome != "first_return":
                        m, grad = _per_point(fit, rating)
                        s = fit.se(grad)
                        row.update(
                            per_point=m, per_point_ci_low=m - z * s, per_point_ci_high=m + z * s
                        )
                rows.append(row)
    cols = [
        "horizon_months",
        "model",
        "rating",
        "outcome",
        "measure",
        "n",
        "n_people",
        "ratio",
        "ratio_ci_low",
        "ratio_ci_high",
        "p_value",
        "per_point",
        "per_point_ci_low",
        "per_point_ci_high",
        "reliable",
        "suppressed",
        "note",
    ]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out = _blank(out)
    out.attrs = {"covariates": used, "weighted": weighted, "level": level}
    return out


#: the changes :func:`value_per_point` values, with what each means
CHANGES: dict[str, str] = {
    "nps_score_point": "one point higher on the 0-10 recommend scale, for every guest",
    "detractor_to_passive": "a detractor (0-6) becomes a passive (7-8), for every detractor",
    "detractor_to_promoter": "a detractor (0-6) becomes a promoter (9-10), for every detractor",
    "nps_point_via_passives": "one point of NPS: 1% of guests move from detractor to passive",
    "nps_point_via_promoters": "one point of NPS: 0.5% of guests move from detractor to promoter",
}


#: time-varying covariates of :func:`return_rate_within` (fixed traits cancel out within a guest)
WITHIN_COVARIATES: tuple[str, ...] = (
    "app_user_at_response",
    "community_member_at_response",
    "trip_purpose",
)


def _conditional_poisson(
    y: np.ndarray, log_e: np.ndarray, X: np.ndarray, groups: np.ndarray, *, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson regression with one fixed effect per group, the effects profiled out.

    Maximises the conditional (multinomial) likelihood: within a group the events fall on its
    observations in proportion to ``exposure * exp(X b)``; groups without an event carry no
    information. Equal to the Poisson MLE with group dummies (Hausman, Hall & Griliches 1984),
    at the cost of one pass over the rows per Newton step. Returns ``(b, cov, score_by_group)``
    with the covariance cluster-robust by group (``G/(G-1)`` corrected).
    """
    codes, _ = pd.factorize(groups)
    g = codes.max() + 1
    k = X.shape[1]
    b = np.zeros(k)
    n_g = np.bincount(codes, weights=y, minlength=g)

    def parts(b):
        eta = log_e + X @ b
        eta = eta - np.bincount(codes, weights=eta, minlength=g)[codes] / np.bincount(codes)[codes]
        w = np.exp(eta)
        p = w / np.bincount(codes, weights=w, minlength=g)[codes]
        xbar = np.column_stack(
            [np.bincount(codes, weights=p * X[:, j], minlength=g) for j in range(k)]
        )
        resid = X - xbar[codes]
        score_g = np.column_stack(
            [np.bincount(codes, weights=y * resid[:, j], minlength=g) for j in range(k)]
        )
        # Hessian: - sum_g n_g sum_j p_gj (x_gj - xbar_g)(x_gj - xbar_g)'
        wr = resid * np.sqrt(n_g[codes] * p)[:, None]
        return score_g, wr.T @ wr

    for _ in range(max_iter):
        score_g, info = parts(b)
        step = np.linalg.solve(info, score_g.sum(0))
        b = b + step
        if np.max(np.abs(step)) < 1e-10:
            break
    score_g, info = parts(b)
    inv = np.linalg.inv(info)
    used = n_g > 0
    n_used = int(used.sum())
    meat = score_g[used].T @ score_g[used] * n_used / max(n_used - 1, 1)
    return b, inv @ meat @ inv, score_g


def return_rate_within(
    followup: pd.DataFrame,
    rating: str = "nps",
    *,
    horizon: int = 12,
    covariates: Sequence[str] = WITHIN_COVARIATES,
    level: float = 0.95,
    anonymity_floor: int = 5,
) -> pd.DataFrame:
    """The return rate per rating point *within* guests: the rating's effect on a guest's own
    rate of coming back, free of how often that guest travels anyway.

    The next-stay hazard of :func:`loyalty_by_rating` compares guests with each other,
    adjusted for their prior stays; guests differ in their propensity to travel far more than
    prior stays reveal, and in a proportional-hazards comparison that unobserved frailty
    pulls the ratio towards 1 (and confounds it where happier guests travel more). Here each
    guest who answered more than once is compared with themselves: the time to their next
    stay after each answer (constant hazard, censored at ``horizon`` or the end of the data)
    by a Poisson model with one fixed effect per guest (conditional likelihood), with the
    guest's time-varying states (``covariates``) held constant. It estimates the individual
    rate ratio per point that a lasting improvement acts on, from the guests with repeat
    answers (reported as ``n_people``); standard errors are cluster-robust by guest.

    Returns
    -------
    pandas.DataFrame
        One row: ``rating``, ``horizon_months``, ``measure`` ("rate ratio within guests"),
        ``n`` (answers), ``n_people`` (guests with an event contributing), ``ratio``,
        ``ratio_ci_low``, ``ratio_ci_high``, ``p_value``, ``suppressed``.
    """
    _require([rating, "customer_id"], followup.columns, "follow-up frame")
    y, log_e, ok = _outcome(followup, "first_return", horizon)
    d = followup.assign(_y=y, _log_e=log_e)[ok & followup[rating].notna()]
    cols = [rating]
    X = pd.DataFrame({rating: pd.to_numeric(d[rating], errors="coerce").astype("float64")})
    for c in covariates:
        if c not in d.columns:
            continue
        v = d[c]
        if v.dtype == bool or str(v.dtype) in ("boolean", "bool"):
            X[c] = v.astype("float64")
            cols.append(c)
        else:
            dummies = pd.get_dummies(v.astype("str"), prefix=c, drop_first=True, dtype="float64")
            X = pd.concat([X, dummies], axis=1)
            cols += list(dummies.columns)
    keep = X.notna().all(axis=1).to_numpy()
    d, X = d[keep], X[keep]
    # only guests with at least two answers and one return inform a within-guest comparison
    grp = d["customer_id"].astype("str").to_numpy()
    size = pd.Series(grp).map(pd.Series(grp).value_counts()).to_numpy()
    events = d.groupby("customer_id")["_y"].transform("sum").to_numpy()
    use = (size >= 2) & (events > 0)
    d, X, grp = d[use], X[use], grp[use]
    X = X.loc[:, X.std() > 0]
    z = _z(level)
    n_people = len(set(grp))
    row = {
        "rating": rating,
        "horizon_months": horizon,
        "measure": "rate ratio within guests",
        "n": len(d),
        "n_people": n_people,
        "suppressed": n_people < anonymity_floor,
    }
    if n_people < max(anonymity_floor, 3) or rating not in X.columns:
        return pd.DataFrame([{**row, "ratio": np.nan, "ratio_ci_low": np.nan,
                              "ratio_ci_high": np.nan, "p_value": np.nan}])  # fmt: skip
    b, cov, _ = _conditional_poisson(d["_y"].to_numpy(), d["_log_e"].to_numpy(), X.to_numpy(), grp)
    j = list(X.columns).index(rating)
    se = float(np.sqrt(cov[j, j]))
    row.update(
        ratio=float(np.exp(b[j])),
        ratio_ci_low=float(np.exp(b[j] - z * se)),
        ratio_ci_high=float(np.exp(b[j] + z * se)),
        p_value=float(2 * stats.norm.sf(abs(b[j]) / se)),
    )
    out = pd.DataFrame([row])
    out.attrs["covariates"] = [c for c in X.columns if c != rating]
    return out


def value_per_point(
    followup: pd.DataFrame,
    *,
    horizon: int = 12,
    customer_base: int | None = None,
    detractor_share: float | None = None,
    covariates: Sequence[str] | None = None,
    weight: str | None = "weight",
    reliability_base: int = 30,
    anonymity_floor: int = 5,
    level: float = 0.95,
) -> pd.DataFrame:
    """Value over the horizon of one NPS point and of turning detractors around.

    Per guest, the adjusted difference in later revenue (and stays) that goes with the
    change; in total, that times the number of guests it applies to. These are the numbers
    the business case quotes, with the caveats of the design: they value a difference in one
    stay's experience as observed (the later stays' own experience replaces it), so they are
    conservative for a lasting improvement, and observational (adjusted for prior
    behaviour, not randomised).

    Parameters
    ----------
    followup : pandas.DataFrame
        From :func:`followup`.
    horizon : int, default=12
        Horizon in months.
    customer_base : int, optional
        Guests the per-guest values are scaled to. Respondents are recent guests, so the
        active base (:func:`active_guests`) fits better than the whole CRM file. Without it
        only per-guest values are given.
    detractor_share : float, optional
        Share of the base who are detractors; the (weighted) share among the respondents by
        default.
    covariates, weight, reliability_base, anonymity_floor, level
        As in :func:`loyalty_by_nps_group`.

    Returns
    -------
    pandas.DataFrame
        One row per ``change`` (see :data:`CHANGES`) and ``outcome`` (``revenue``,
        ``stays``): ``horizon_months``, ``description``, ``per_customer`` with ``ci_low`` and
        ``ci_high``, ``customers`` (how many guests the change applies to), ``total`` with
        ``total_ci_low``/``total_ci_high`` (the base is taken as known), ``suppressed``,
        ``note``. ``attrs``: ``detractor_share``, ``customer_base``, ``n`` and ``n_people``
        (the answers and guests followed up over the horizon), ``covariates``, ``weighted``.
    """
    kw = {
        "horizon": horizon,
        "covariates": covariates,
        "weight": weight,
        "reliability_base": reliability_base,
        "anonymity_floor": anonymity_floor,
        "level": level,
    }
    groups = loyalty_by_nps_group(followup, **kw).set_index(["outcome", "nps_group"])
    points = loyalty_by_rating(followup, ["nps"], outcomes=("revenue", "stays"), **kw)
    points = points.set_index("outcome")
    if detractor_share is None:
        d = followup[followup[f"complete_{horizon}m"].astype(bool) & followup["nps"].notna()]
        w, _ = _weights(d, weight)
        detractor_share = float(w @ (d["nps_group"] == "detractor").to_numpy() / w.sum())
    base = np.nan if customer_base is None else float(customer_base)
    applies = {
        "nps_score_point": base,
        "detractor_to_passive": base * detractor_share,
        "detractor_to_promoter": base * detractor_share,
        "nps_point_via_passives": base * 0.01,
        "nps_point_via_promoters": base * 0.005,
    }
    source = {
        "detractor_to_passive": "passive - detractor",
        "detractor_to_promoter": "promoter - detractor",
        "nps_point_via_passives": "passive - detractor",
        "nps_point_via_promoters": "promoter - detractor",
    }
    rows = []
    for change, description in CHANGES.items():
        for outcome in ("revenue", "stays"):
            if change == "nps_score_point":
                r = points.loc[outcome]
                est, lo, hi = r["per_point"], r["per_point_ci_low"], r["per_point_ci_high"]
                hidden, note = bool(r["suppressed"]), r["note"]
            else:
                r = groups.loc[(outcome, source[change])]
                est, lo, hi = r["adjusted"], r["ci_low"], r["ci_high"]
                hidden, note = bool(r["suppressed"]), r["note"]
            n = applies[change]
            rows.append(
                {
                    "horizon_months": horizon,
                    "change": change,
                    "outcome": outcome,
                    "description": description,
                    "per_customer": est,
                    "ci_low": lo,
                    "ci_high": hi,
                    "customers": n,
                    "total": est * n,
                    "total_ci_low": lo * n,
                    "total_ci_high": hi * n,
                    "suppressed": hidden,
                    "note": note,
                }
            )
    out = _blank(pd.DataFrame(rows))
    out.loc[out["suppressed"], ["ci_low", "ci_high"]] = np.nan
    base_row = points.loc["revenue"]
    out.attrs = {
        "detractor_share": detractor_share,
        "customer_base": customer_base,
        # the answers (and guests) followed up over the horizon, behind the per-point value
        "n": int(base_row["n"]) if pd.notna(base_row["n"]) else None,
        "n_people": int(base_row["n_people"]) if pd.notna(base_row["n_people"]) else None,
        "covariates": groups.attrs.get("covariates", []),
        "weighted": groups.attrs.get("weighted", False),
    }
    return out
