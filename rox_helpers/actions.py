"""PwC's six improvement actions: evidence, maturity, value at stake and an action plan.

For each action the module gathers the evidence from the data (with its base and its
uncertainty), scores the client's maturity from 1 to 5 against documented thresholds
(``templates/maturity.yml``, overridable per engagement), states the value at stake and
phrases next steps from the evidence. The statistical core is
:func:`adoption_effects`: the effect of joining the community or installing the app on the
customers who did (the ATT), with self-selection handled.

The six actions (keys used throughout):

====================  ==================================================================
``fuse_cx_ex``        Fuse CX and EX: the EX -> CX links of the linkage model and the
                      units where EX holds CX back.
``communities``       Build communities with a purpose: effect of community membership
                      and app use on stays, retention, revenue and NPS of those who joined.
``magic_moments``     Create magic moments: journey moments (step 05) and Kano delighters.
``behaviour``         Understand customers by behaviour, not demographics (step 02).
``data_respect``      Treat customer data with respect: consent, identifiers, data
                      minimisation, re-identification risk (k-anonymity), value exchange.
``win_journey``       Win the journey: goal completion, friction hot spots and the
                      navigation / quality / breadth / price / convenience attributes.
====================  ==================================================================

Community and app effects: design and estimand
----------------------------------------------
Members chose to join, and the customers who join are those who already came more often,
so the raw member / non-member difference overstates the effect (on the sample about 2.5x
against a true 1.1x). :func:`adoption_effects` estimates the **average effect on the treated
(ATT)**: for customers who joined (installed) during the observed window, with at least
``min_pre_months`` of history before, the ratio of their seasonally adjusted stays per
active month after the join month to what they would have had without joining.

* **Index date.** A joiner's index month is the join month (left out as a wash-out); each
  non-joiner gets ``control_draws`` index months drawn from the joiners' index months, so
  both groups are compared over the same calendar months.
* **Windows.** The months before the index month are split in two halves: the *early*
  half gives the covariates (prior stay rate, months with a stay, spend per stay, digital
  share, activity); the *baseline* half is the starting level of the outcome. Months after
  the index month are the *post* window.
* **Outcome and identification.** The outcome is the change from baseline to post in the
  seasonally adjusted rate (difference-in-differences): customers' fixed differences in how
  often they travel, the very thing they select on, cancel out. The covariates come from an
  earlier window than the baseline on purpose: conditioning a change on a noisy measure of
  the same period's level creates regression to the mean (Daw & Hatfield 2018). For the
  same reason the covariates from the log (spend per stay, digital share, activity) count
  only the rows of stays and after them, not the search, booking and pre-arrival rows
  (:func:`lead_up_stages`): those are dated ahead of the stay they lead to (by the booking
  lead time, months for some guests), so in the early window they measure the baseline
  window's stays. On generator 1.2 of the sample, counting them biased the app's ratio by
  about +0.15 in simulations where installing had no effect at all.
* **What is estimated.** The total effect of joining on the joiners: every path from the
  programme to their stays counts (for the app, the direct uplift and the higher return
  rate that mobile check-in brings through check-in speed and NPS).
* **Estimator.** Doubly robust DiD (Sant'Anna & Zhao 2020): augmented inverse-probability
  weighting for the ATT on the change, a logistic propensity model and a linear outcome
  model of the change among non-joiners; units with a propensity outside
  ``[trim, 1 - trim]`` are dropped (overlap trimming). The ratio is
  ``mean post rate of the treated / (that - ATT)``.
* **Uncertainty.** A Bayesian bootstrap over customers (Rubin 1981), stratified by group:
  each replicate weights every customer by an exponential draw, re-estimates the seasonal
  index under those weights and refits the propensity and outcome models; percentile
  intervals. The non-joiners' index months are random too: the replicates rotate over
  ``index_draws`` designs with independent draws (built once, not once per replicate), so
  the interval carries that spread as well (about 5-10% of the variance on the sample,
  ``benchmarks/bench_actions.py``).
* **Checks shown.** Standardised mean differences of every covariate before and after
  weighting (target < 0.1); an E-value (VanderWeele & Ding 2017) for how strong an
  unmeasured confounder would have to be; the naive (ever vs never) ratio and a
  selection-on-observables AIPW on the post-period level beside the adjusted estimate.

Joiners with no observed history before joining (joined before the log starts, or within
``min_pre_months`` of it or of their sign-up) cannot be compared with their own past; they
are left out of the estimand and counted.

References
----------
Sant'Anna, P. H. C. & Zhao, J. (2020). Doubly robust difference-in-differences estimators.
*Journal of Econometrics* 219(1), 101-122.
VanderWeele, T. J. & Ding, P. (2017). Sensitivity analysis in observational research:
introducing the E-value. *Annals of Internal Medicine* 167(4), 268-274.
Crump, R. K., Hotz, V. J., Imbens, G. W. & Mitnik, O. A. (2009). Dealing with limited
overlap in estimation of average treatment effects. *Biometrika* 96(1), 187-199.

Rubin, D. B. (1981). The Bayesian bootstrap. *The Annals of Statistics* 9(1), 130-134.

Daw, J. R. & Hatfield, L. A. (2018). Matching and regression to the mean in
difference-in-differences analysis. *Health Services Research* 53(6), 4138-4156.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from rox_helpers.errors import ConfigError, DataValidationError
from rox_helpers.stats import wilson_interval

ACTIONS: dict[str, str] = {
    "fuse_cx_ex": "Fuse CX and EX",
    "communities": "Build communities with a purpose",
    "magic_moments": "Create magic moments",
    "behaviour": "Understand customers by behaviour",
    "data_respect": "Treat customer data with respect",
    "win_journey": "Win the journey",
}
DEFAULT_MATURITY_FILE = Path(__file__).resolve().parent.parent / "templates" / "maturity.yml"
EVIDENCE_COLUMNS = [
    "action",
    "metric",
    "label",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "unit",
    "note",
]
JOURNEY_DIMENSIONS: dict[str, tuple[str, ...]] = {
    # keyword patterns matched against codebook keys and labels (first dimension wins)
    "navigation": ("booking", "navigat", "website", "find", "ease"),
    "price": ("value", "price", "cost", "money"),
    "convenience": ("speed", "check", "location", "wait", "convenien", "quick"),
    "breadth": ("breakfast", "choice", "range", "menu", "breadth", "food", "wifi"),
    "quality": ("clean", "comfort", "quiet", "quality", "friendl", "staff", "room"),
}


# ======================================================================================
# Small statistics
# ======================================================================================
def e_value(rr: float) -> float:
    """E-value of a risk (rate) ratio (VanderWeele & Ding 2017).

    The minimum strength of association, on the risk-ratio scale, that an unmeasured
    confounder would need with both the treatment and the outcome to fully explain away
    ``rr``: ``RR + sqrt(RR (RR - 1))`` for ``RR >= 1``; ratios below 1 are inverted first.
    """
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    r = rr if rr >= 1 else 1 / rr
    return float(r + math.sqrt(r * (r - 1)))


def e_value_ci(ci_low: float, ci_high: float) -> float:
    """E-value of the confidence limit closest to the null (1 if the interval contains 1)."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return float("nan")
    if ci_low <= 1 <= ci_high:
        return 1.0
    return e_value(ci_low if ci_low > 1 else ci_high)


def rr_from_difference(diff: float, sd: float) -> float:
    """Approximate risk ratio of a mean difference: ``exp(0.91 d)``, ``d = diff / sd``
    (VanderWeele & Ding 2017, continuous outcomes)."""
    if not (np.isfinite(diff) and np.isfinite(sd)) or sd <= 0:
        return float("nan")
    return float(math.exp(0.91 * diff / sd))


def aipw_att(
    y: np.ndarray,
    treated: np.ndarray,
    propensity: np.ndarray,
    m0: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """Augmented inverse-probability-weighted estimate of the ATT (normalised weights).

    ``ATT = mean_treated(y - m0) - sum_controls w (y - m0) / sum_controls w`` with
    ``w = p / (1 - p)``: consistent when either the propensity ``p`` or the outcome model
    ``m0 = E[y | x, untreated]`` is right. ``weights`` are unit weights (e.g. 1 / copies of a
    control), applied in both sums.
    """
    y = np.asarray(y, float)
    d = np.asarray(treated, bool)
    p = np.asarray(propensity, float)
    m0 = np.asarray(m0, float)
    u = np.ones_like(y) if weights is None else np.asarray(weights, float)
    r = y - m0
    w = u * p / (1 - p)
    return float(np.sum(u[d] * r[d]) / np.sum(u[d]) - np.sum(w[~d] * r[~d]) / np.sum(w[~d]))


def smd(
    x: np.ndarray, treated: np.ndarray, control_weights: np.ndarray | None = None
) -> tuple[float, float]:
    """Standardised mean difference (treated - control), unweighted and with the controls
    weighted, both over the pooled unweighted SD ``sqrt((s1^2 + s0^2) / 2)``."""
    x = np.asarray(x, float)
    d = np.asarray(treated, bool)
    w = np.ones(len(x)) if control_weights is None else np.asarray(control_weights, float)
    x1, x0, w0 = x[d], x[~d], w[~d]
    sd = math.sqrt((np.var(x1) + np.var(x0)) / 2)
    if sd == 0 or not np.isfinite(sd):
        return 0.0, 0.0
    before = (x1.mean() - x0.mean()) / sd
    after = (x1.mean() - np.average(x0, weights=w0)) / sd
    return float(before), float(after)


# ======================================================================================
# Community and app: the adoption panel
# ======================================================================================
@dataclass
class AdoptionPanel:
    """Customers x months of activity, the input of :func:`adoption_effects`.

    Arrays are ``(n customers, T months)``: ``stays``, ``revenue``, ``interactions``,
    ``digital`` (interactions in digital channels), ``active`` (share of the month after
    sign-up), ``nps_sum`` and ``nps_n`` (survey answers). ``customers`` is aligned row by
    row. ``stay_side_interactions``, ``stay_side_digital`` and ``stay_side_revenue`` are the
    same counts over the rows of the stay and after it only (no search, booking or
    pre-arrival rows, which are dated ahead of the stay they lead to); the pre-join
    covariates use them when present (see :func:`monthly_activity`).
    """

    customers: pd.DataFrame
    months: pd.PeriodIndex
    stays: np.ndarray
    revenue: np.ndarray
    interactions: np.ndarray
    digital: np.ndarray
    active: np.ndarray
    nps_sum: np.ndarray
    nps_n: np.ndarray
    stay_side_interactions: np.ndarray | None = None
    stay_side_digital: np.ndarray | None = None
    stay_side_revenue: np.ndarray | None = None

    _cumsums: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _first_active: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.customers)

    @property
    def first_active(self) -> np.ndarray:
        """Month position of each customer's first active month (``T`` if never active)."""
        if self._first_active is None:
            a = self.active > 0
            self._first_active = np.where(a.any(1), np.argmax(a, axis=1), a.shape[1])
        return self._first_active

    def cumsum(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, T + 1)`` running sums over months of an array (``any_stay``: months with a
        stay), so that a window's sum is ``c[:, hi] - c[:, lo]``. With ``rows``, those rows'
        running sums (``(len(rows), T + 1)``, not kept): a design needs a few hundred
        thousand rows, and the running sums of every array over a million customers were
        the peak of step 06's memory."""
        if rows is None and name in self._cumsums:
            return self._cumsums[name]
        a = self.stays if name == "any_stay" else getattr(self, name)
        if rows is not None:
            a = a[rows]
        if name == "any_stay":
            a = (a > 0).astype(float)
        c = np.zeros((a.shape[0], a.shape[1] + 1))
        np.cumsum(a, axis=1, out=c[:, 1:])
        if rows is None:
            self._cumsums[name] = c
        return c

    def month_index(self, dates: pd.Series) -> np.ndarray:
        """Position of each date's month in ``months`` (may fall outside ``0..T-1``); a large
        sentinel for missing dates."""
        d = pd.to_datetime(dates)
        out = np.full(len(d), 10**6, dtype=np.int64)
        ok = d.notna().to_numpy()
        if ok.any():
            out[ok] = _month_number(d[ok]) - _month_number(self.months[:1])[0]
        return out


def _month_number(values) -> np.ndarray:
    """Months since year 0 (year * 12 + month) of periods, dates or a PeriodIndex."""
    if isinstance(values, pd.PeriodIndex):
        return np.asarray(values.year * 12 + values.month, dtype=np.int64)
    s = pd.Series(values)
    if not isinstance(s.dtype, pd.PeriodDtype):
        s = pd.to_datetime(s)
    return (s.dt.year * 12 + s.dt.month).to_numpy(np.int64)


STAY_SIDE = ("stay_side_interactions", "stay_side_digital", "stay_side_revenue")


def lead_up_stages(interactions, *, stay_stage: str = "check_in", max_rows: int = 500_000):
    """Journey stages whose rows lead up to a stay (search, booking, pre-arrival), read from
    the log: the stages whose rows mostly come before the customer's nearest completed
    ``stay_stage`` row rather than after it.

    Such rows are dated ahead of the stay they lead to (by the booking lead time), so their
    count, channel or booked revenue in one window foretells stays in the next one. The
    stay stage itself is never a lead-up stage. ``interactions`` is a pandas frame or an
    Ibis table (then computed in its engine over every row, with window functions: only
    one share per stage comes back, so it also runs on a log that stays in the client's
    engine). ``max_rows`` is kept for callers of the earlier row-reading version; unused.

    Returns
    -------
    list of str
    """
    if not isinstance(interactions, pd.DataFrame):
        return _lead_up_stages_in_engine(interactions, stay_stage)
    if "journey_stage" not in interactions.columns:
        return []
    d = interactions[interactions["customer_id"].notna()]
    done = d["completed"].fillna(True).astype(bool) if "completed" in d else True
    d = pd.DataFrame(
        {
            "customer_id": d["customer_id"].astype("str").to_numpy(),
            "ts": pd.to_datetime(d["timestamp"]).to_numpy(),
            "stage": d["journey_stage"].astype("str").to_numpy(),
            "is_stay": ((d["journey_stage"] == stay_stage) & done).to_numpy(bool),
        }
    ).dropna(subset=["ts"])
    stays = d.loc[d["is_stay"], ["customer_id", "ts"]].rename(columns={"ts": "stay_ts"})
    if stays.empty:
        return []
    rows = d[~d["is_stay"] & (d["stage"] != stay_stage)].sort_values("ts")
    near = pd.merge_asof(
        rows,
        stays.sort_values("stay_ts"),
        left_on="ts",
        right_on="stay_ts",
        by="customer_id",
        direction="nearest",
    ).dropna(subset=["stay_ts"])
    before = (near["ts"] < near["stay_ts"]).groupby(near["stage"]).mean()
    return sorted(before.index[before > 0.5])


def _lead_up_stages_in_engine(t, stay_stage: str) -> list[str]:
    """:func:`lead_up_stages` as one query: each non-stay row's nearest completed stay of
    the same customer (the last one at or before it, the first one after it, by window
    functions; the earlier on a tie, as ``merge_asof(direction="nearest")``), then the
    share of each stage's rows that come before it."""
    import ibis

    if "journey_stage" not in t.columns:
        return []
    t = t.filter(t["customer_id"].notnull() & t["timestamp"].notnull())
    done = t["completed"].fill_null(True) if "completed" in t.columns else ibis.literal(True)
    is_stay = (t["journey_stage"] == stay_stage) & done
    t = t.mutate(_sec=t["timestamp"].epoch_seconds(), _is_stay=is_stay)
    stay_sec = ibis.ifelse(t["_is_stay"], t["_sec"], ibis.null("int64"))
    by = {"group_by": "customer_id", "order_by": ["_sec", ibis.desc("_is_stay")]}
    t = t.mutate(
        _prev=stay_sec.max().over(ibis.window(**by, rows=(None, 0))),
        _next=stay_sec.min().over(ibis.window(**by, rows=(0, None))),
    )
    rows = t.filter(~t["_is_stay"] & (t["journey_stage"] != stay_stage))
    rows = rows.filter(rows["_prev"].notnull() | rows["_next"].notnull())
    back = rows["_sec"] - rows["_prev"]
    ahead = rows["_next"] - rows["_sec"]
    before = ibis.cases(
        (rows["_prev"].isnull(), rows["_sec"] < rows["_next"]),
        (rows["_next"].isnull(), False),
        (back <= ahead, False),  # the stay at or before it is the nearest
        else_=rows["_sec"] < rows["_next"],
    )
    shares = (
        rows.group_by(stage=rows["journey_stage"])
        .aggregate(before=ibis.ifelse(before, 1.0, 0.0).mean())  # PostgreSQL casts no bool
        .to_pandas()
    )
    return sorted(str(s) for s in shares.loc[shares["before"] > 0.5, "stage"])


def monthly_activity(
    interactions,
    *,
    stay_stage: str = "check_in",
    digital_channels: Sequence[str] = ("web", "app"),
    lead_stages: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per customer and month: ``stays`` (completed ``stay_stage`` rows), ``revenue``,
    ``interactions`` and ``digital`` interactions; the same three counts over the stay-side
    rows only (``stay_side_revenue``, ``stay_side_interactions``, ``stay_side_digital``:
    every stage but the ``lead_stages``); plus the log's first and last timestamp in
    ``attrs``.

    ``interactions`` is the canonical log as a pandas frame or an Ibis table (aggregated by
    the engine, so logs larger than memory work). ``lead_stages`` are the stages that lead
    up to a stay (search, booking, pre-arrival); by default they are read from the log
    (:func:`lead_up_stages`). They are left out of the stay-side counts because a booking
    is dated weeks or months ahead of its stay: counted in a window before joining, it
    measures the stays of the next window, the baseline of the before/after comparison.
    """
    if lead_stages is None:
        lead_stages = lead_up_stages(interactions, stay_stage=stay_stage)
    lead = [s for s in lead_stages if s != stay_stage]
    if not isinstance(interactions, pd.DataFrame):
        import ibis

        from rox_helpers.features import EXACT, exact_sum

        t = interactions
        need = {"customer_id", "timestamp"}
        _require_columns(need, t.columns, "interactions")
        stage = t["journey_stage"] if "journey_stage" in t.columns else ibis.literal("")
        done = t["completed"].fill_null(True) if "completed" in t.columns else ibis.literal(True)
        rev = t["revenue"].fill_null(0) if "revenue" in t.columns else ibis.literal(0)
        chan = t["channel"] if "channel" in t.columns else ibis.literal("")
        t = t.filter(t["customer_id"].notnull())
        side = ~stage.isin(lead).fill_null(False) if lead else ibis.literal(True)
        g = t.mutate(
            month=t["timestamp"].truncate("M"),
            # 0/1 by ifelse: PostgreSQL casts no boolean to bigint (a missing stage is 0,
            # as in the pandas branch)
            _stay=ibis.ifelse(((stage == stay_stage) & done).fill_null(False), 1, 0),
            _dig=ibis.ifelse(chan.isin(list(digital_channels)).fill_null(False), 1, 0),
            _rev=rev.cast(EXACT),
            _side=ibis.ifelse(side, 1, 0),
        )
        agg = g.group_by(["customer_id", "month"]).aggregate(
            stays=g["_stay"].sum(),
            revenue=exact_sum(g["_rev"]),
            interactions=g["customer_id"].count(),
            digital=g["_dig"].sum(),
            stay_side_revenue=exact_sum(g["_rev"], where=g["_side"] == 1).fill_null(0.0),
            stay_side_interactions=g["_side"].sum(),
            stay_side_digital=(g["_dig"] * g["_side"]).sum(),
        )
        # in a fixed order: the engine's varies with its threads, and sums over these rows
        # (revenue per stay) would differ in their last digits run to run
        out = agg.to_pandas().sort_values(["customer_id", "month"], ignore_index=True)
        span = t.aggregate(lo=t["timestamp"].min(), hi=t["timestamp"].max()).to_pandas()
        lo, hi = span["lo"].iloc[0], span["hi"].iloc[0]
    else:
        _require_columns({"customer_id", "timestamp"}, interactions.columns, "interactions")
        d = interactions[interactions["customer_id"].notna()]
        n = len(d)
        stage = d["journey_stage"] if "journey_stage" in d else pd.Series("", index=d.index)
        done = (
            d["completed"].fillna(True).astype(bool)
            if "completed" in d
            else pd.Series(True, index=d.index)
        )
        side = ~stage.isin(lead).to_numpy(bool)
        revenue = d["revenue"].fillna(0).to_numpy(float) if "revenue" in d else np.zeros(n)
        digital = (
            d["channel"].isin(list(digital_channels)).to_numpy().astype(np.int64)
            if "channel" in d
            else np.zeros(n, dtype=np.int64)
        )
        g = pd.DataFrame(
            {
                "customer_id": d["customer_id"].to_numpy(),
                "month": pd.to_datetime(d["timestamp"]).dt.to_period("M").dt.to_timestamp(),
                "stays": ((stage == stay_stage) & done).to_numpy().astype(np.int64),
                "revenue": revenue,
                "interactions": np.ones(n, dtype=np.int64),
                "digital": digital,
                "stay_side_revenue": revenue * side,
                "stay_side_interactions": side.astype(np.int64),
                "stay_side_digital": digital * side,
            }
        )
        out = g.groupby(["customer_id", "month"], as_index=False).sum()
        lo, hi = pd.to_datetime(d["timestamp"]).min(), pd.to_datetime(d["timestamp"]).max()
    out["month"] = pd.to_datetime(out["month"]).dt.to_period("M")
    out.attrs.update(first=pd.Timestamp(lo), last=pd.Timestamp(hi), lead_stages=list(lead))
    return out


def _require_columns(need, have, table: str) -> None:
    missing = sorted(set(need) - set(have))
    if missing:
        raise DataValidationError(
            f"The {table} table has no column(s) {', '.join(missing)}.",
            column=", ".join(missing),
            rule=f"{table} columns needed by the six-actions analysis",
            fix=f"Map the client's columns onto {', '.join(missing)} in engagement.yml.",
        )


def adoption_panel(
    customers: pd.DataFrame,
    activity: pd.DataFrame,
    survey: pd.DataFrame | None = None,
) -> AdoptionPanel:
    """Customers x months arrays from :func:`monthly_activity` and the survey.

    Only whole months are kept: a first or last month the log covers only in part is left
    out. A customer is active from the month of ``signup_date`` on (the share of that month
    after sign-up); without ``signup_date``, from the first month of the log.
    """
    _require_columns({"customer_id"}, customers.columns, "customers")
    first, last = activity.attrs.get("first"), activity.attrs.get("last")
    if first is None or pd.isna(first):
        raise DataValidationError(
            "The interaction log is empty: no months to compare before and after joining.",
            rule="interactions present",
            fix="Declare the interaction log (data.interactions) in engagement.yml.",
        )
    m0 = pd.Period(first, "M")
    m1 = pd.Period(last, "M")
    if pd.Timestamp(first) > m0.start_time + pd.Timedelta(days=1):
        m0 += 1
    if pd.Timestamp(last) < m1.end_time - pd.Timedelta(days=2):
        m1 -= 1
    months = pd.period_range(m0, m1, freq="M")
    T = len(months)
    cust = customers.drop_duplicates("customer_id").reset_index(drop=True)
    n = len(cust)
    pos = pd.Series(np.arange(n), index=cust["customer_id"].to_numpy())
    names = ("stays", "revenue", "interactions", "digital")
    names += tuple(k for k in STAY_SIDE if k in activity.columns)
    # positions by one hash lookup over plain Python strings (pandas' string isin/loc were
    # most of this function's time at a million customers)
    ids = pd.Index(pos.index.astype(object))
    ri_all = ids.get_indexer(activity["customer_id"].astype(object))
    mi = _month_number(activity["month"]) - _month_number(months[:1])[0]
    ok = (ri_all >= 0) & (mi >= 0) & (mi < T)
    cell = ri_all[ok] * T + mi[ok]
    # sums into zeros by bincount: the same additions in the same order as np.add.at on a
    # zero array (tested), several times faster
    arrays = {k: _cell_sums(cell, activity[k].to_numpy(float)[ok], n, T) for k in names}
    starts = months.to_timestamp().to_numpy()
    ends = (months + 1).to_timestamp().to_numpy()
    days = (ends - starts) / np.timedelta64(1, "D")
    if "signup_date" in cust:
        su = pd.to_datetime(cust["signup_date"]).fillna(pd.Timestamp(starts[0])).to_numpy()
    else:
        su = np.full(n, starts[0])
    # month by month: the same operations on each element as one broadcast over all
    # months, without its customers x months temporaries
    active = np.empty((n, T))
    for j in range(T):
        lo = np.maximum(su, starts[j])
        active[:, j] = np.clip((ends[j] - lo) / np.timedelta64(1, "D") / days[j], 0, 1)
    nps_sum = np.zeros((n, T))
    nps_n = np.zeros((n, T))
    if survey is not None and {"customer_id", "date", "nps"} <= set(survey.columns):
        s = survey.dropna(subset=["customer_id", "date", "nps"])
        sri = ids.get_indexer(s["customer_id"].astype(object))
        smi = _month_number(pd.to_datetime(s["date"])) - _month_number(months[:1])[0]
        ok = (sri >= 0) & (smi >= 0) & (smi < T)
        scell = sri[ok] * T + smi[ok]
        nps_sum = _cell_sums(scell, s["nps"].to_numpy(float)[ok], n, T)
        nps_n = _cell_sums(scell, np.ones(len(scell)), n, T)
    return AdoptionPanel(
        customers=cust,
        months=months,
        active=active,
        nps_sum=nps_sum,
        nps_n=nps_n,
        **arrays,
    )


def _cell_sums(cell: np.ndarray, values: np.ndarray, n: int, T: int) -> np.ndarray:
    """``(n, T)`` sums of ``values`` by flat cell ``row * T + month``: ``np.add.at`` into
    zeros, by ``np.bincount`` (which adds each value in turn, in the same order)."""
    return np.bincount(cell, weights=values, minlength=n * T).reshape(n, T)


OUTCOMES: dict[str, tuple[str, str]] = {
    # name -> (scale of the effect, label)
    "stays": ("ratio", "Stays per active month (seasonally adjusted)"),
    "retention": ("difference", "Share of active months with a stay"),
    "revenue": ("ratio", "Revenue per active month (seasonally adjusted)"),
    "nps": ("difference", "Likelihood to recommend (0-10)"),
}


@dataclass
class _Design:
    """The design: rows (customers, controls repeated once per drawn index month), index
    months, unit weights, covariates and window values.

    ``adj`` holds what the seasonal index enters (the covariate and outcome windows of the
    seasonally adjusted rates), so that a bootstrap replicate can re-estimate the index
    without rebuilding the rest (:meth:`reseason`).
    """

    rows: np.ndarray
    treated: np.ndarray
    weight: np.ndarray
    X: pd.DataFrame
    values: dict[str, dict[str, np.ndarray]]  # outcome -> {"base", "post"}
    n_excluded: int
    adj: dict[str, Any] = field(default_factory=dict, repr=False)
    Xn: np.ndarray | None = field(default=None, repr=False)  # X as floats, made once

    def matrix(self) -> np.ndarray:
        if self.Xn is None:
            self.Xn = self.X.to_numpy(float)
        return self.Xn

    def reseason(self, panel: AdoptionPanel, season: np.ndarray) -> _Design:
        """The same design under another seasonal index (a bootstrap replicate's)."""
        a = self.adj
        if "active_t" not in a:  # months first, made once for all the replicates
            a["active_t"] = np.ascontiguousarray(a["active"].T)
        new = _adjusted(a["active_t"], season, a["first"], a["mid"], a["k"], months_first=True)
        values = {**self.values}
        for o in ("stays", "revenue"):
            values[o] = {
                "base": a[f"{o}_base_num"] / np.maximum(new["base"], 1e-9),
                "post": a[f"{o}_post_num"] / np.maximum(new["post"], 1e-9),
            }
        Xn = self.matrix().copy()
        Xn[:, self.X.columns.get_loc("prior_stay_rate")] = a["stays_prior_num"] / np.maximum(
            new["prior"], 1e-9
        )
        # X (the frame) is the point design's; replicates use Xn
        return _Design(self.rows, self.treated, self.weight, self.X, values, self.n_excluded, a, Xn)


@dataclass
class AdoptionEffects:
    """Result of :func:`adoption_effects` for one treatment.

    ``effects``: one row per ``outcome`` and ``method`` (``naive``, ``aipw_level``,
    ``dr_did``): ``estimate``, ``ci_low``, ``ci_high``, ``scale`` (``ratio`` or
    ``difference``), ``n_treated``, ``n_control``, ``mu1``, ``mu0``, ``e_value``,
    ``e_value_ci``, ``note``. ``balance``: one row per covariate, ``mean_treated``,
    ``mean_control``, ``mean_control_weighted``, ``smd_before``, ``smd_after``.
    ``counts``: joiners in the data, in the estimand, left out for want of history,
    trimmed.
    """

    treatment: str
    effects: pd.DataFrame
    balance: pd.DataFrame
    counts: dict[str, int]
    estimand: str
    draws: dict[str, np.ndarray] = field(default_factory=dict)

    def headline(self, outcome: str = "stays") -> pd.Series:
        e = self.effects
        return e[(e["outcome"] == outcome) & (e["method"] == "dr_did")].iloc[0]

    def naive(self, outcome: str = "stays") -> pd.Series:
        e = self.effects
        return e[(e["outcome"] == outcome) & (e["method"] == "naive")].iloc[0]


def _index_months(
    panel: AdoptionPanel, flag: str, date: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(treated, index month, valid) per customer: treated = flag true with a join date;
    customers with the flag but no date are neither treated nor controls."""
    c = panel.customers
    if flag not in c or date not in c:
        raise DataValidationError(
            f"The customers table has no {flag!r} / {date!r} columns.",
            column=f"{flag}, {date}",
            rule="membership flag and join date",
            fix=f"Map the client's columns onto {flag} and {date} in engagement.yml.",
        )
    f = c[flag].astype("boolean").fillna(False).to_numpy(bool)
    k = panel.month_index(c[date])
    has_date = c[date].notna().to_numpy()
    treated = f & has_date
    valid = treated | ~f
    return treated, k, valid


def _season(panel: AdoptionPanel, controls: np.ndarray, g: np.ndarray | None = None):
    """Seasonal index from the non-joiners (their calendar pattern of stays per active
    month), customers weighted by ``g`` (a bootstrap replicate's weights)."""
    return _season_of(panel.stays[controls], panel.active[controls], g)


def _season_of(stays: np.ndarray, active: np.ndarray, g: np.ndarray | None = None):
    """:func:`_season` from the non-joiners' rows of ``stays`` and ``active`` (taken once
    for all the bootstrap replicates)."""
    T = stays.shape[1]
    g = np.ones(len(stays)) if g is None else g
    season = (g @ stays) / np.maximum(g @ active, 1e-12)
    season = season / season[season > 0].mean() if (season > 0).any() else np.ones(T)
    return np.where(season > 0, season, 1.0)


def _adjusted(active, season, first, mid, k, *, months_first: bool = False):
    """Seasonally adjusted active months in the prior, baseline and post windows, from the
    design rows' ``active`` months (n rows x T; T x n with ``months_first``).

    Months first, the running sums over months are vector additions over the rows (each
    bootstrap replicate makes them again): the same additions, in the same order, as
    row by row (tested)."""
    if not months_first:
        n, T = active.shape
        cs = np.zeros((n, T + 1))
        np.cumsum(active * season[None, :], axis=1, out=cs[:, 1:])
        flat, base, step = cs.ravel(), np.arange(n) * (T + 1), 1
        total = cs[:, T]
    else:
        T, n = active.shape
        cs = np.zeros((T + 1, n))
        np.multiply(active, season[:, None], out=cs[1:])
        for j in range(2, T + 1):  # np.cumsum over axis 0 walks each column in turn
            cs[j] += cs[j - 1]
        flat, base, step = cs.ravel(), np.arange(n), n
        total = cs[T]

    def win(lo, hi):
        return np.take(flat, base + hi * step) - np.take(flat, base + lo * step)

    return {"prior": win(first, mid), "base": win(mid, k), "post": total - win(0, k + 1)}


def _eligible(k, first, T: int, min_pre_months: int, min_post_months: int) -> np.ndarray:
    """Index months with the history needed before and after them."""
    return (k >= 0) & (k < T) & (k - first >= min_pre_months) & (T - 1 - k >= min_post_months)


class _RowSums:
    """The running sums (:meth:`AdoptionPanel.cumsum`) over the customers that can enter
    the designs of one estimate, made once per array and shared by all its designs (the
    draws of the index months): joiners with the history their join month needs, and the
    non-joiners, whose index months are drawn. Also the non-joiners' rows of ``stays`` and
    ``active`` for the seasonal index, taken once for every replicate."""

    def __init__(self, panel: AdoptionPanel, rows: np.ndarray, controls: np.ndarray) -> None:
        self.panel, self.rows, self.c_rows = panel, np.asarray(rows), np.asarray(controls)
        self._sums: dict[str, np.ndarray] = {}
        self._controls: tuple[np.ndarray, np.ndarray] | None = None

    def position(self, rows: np.ndarray) -> np.ndarray:
        """Positions of panel rows among ``self.rows`` (sorted), which must hold them."""
        pos = np.searchsorted(self.rows, rows)
        if len(rows) and not np.array_equal(self.rows[np.minimum(pos, len(self.rows) - 1)], rows):
            raise ValueError("design rows outside the rows whose running sums were made")
        return pos

    def cumsum(self, name: str) -> np.ndarray:
        if name not in self._sums:
            self._sums[name] = self.panel.cumsum(name, self.rows)
        return self._sums[name]

    def controls(self) -> tuple[np.ndarray, np.ndarray]:
        if self._controls is None:
            self._controls = (self.panel.stays[self.c_rows], self.panel.active[self.c_rows])
        return self._controls


def _design(
    panel: AdoptionPanel,
    rows: np.ndarray,
    treated_all: np.ndarray,
    k_all: np.ndarray,
    other_k: np.ndarray | None,
    rng: np.random.Generator,
    *,
    min_pre_months: int,
    min_post_months: int,
    control_draws: int,
    static: pd.DataFrame,
    sums: _RowSums | None = None,
) -> _Design:
    T = len(panel.months)
    t_rows = rows[treated_all[rows]]
    c_rows = rows[~treated_all[rows]]
    pool = k_all[t_rows]
    pool = pool[(pool >= 0) & (pool < T)]
    if len(pool) == 0:
        raise DataValidationError(
            "No customer joined within the months the interaction log covers.",
            rule="joiners inside the observed window",
            fix="Check the join dates against the log's period.",
        )
    c_rep = np.repeat(c_rows, control_draws)
    all_rows = np.concatenate([t_rows, c_rep])
    k = np.concatenate([k_all[t_rows], rng.choice(pool, len(c_rep))])
    d = np.concatenate([np.ones(len(t_rows), bool), np.zeros(len(c_rep), bool)])
    u = np.concatenate([np.ones(len(t_rows)), np.full(len(c_rep), 1 / control_draws)])
    season = _season_of(*sums.controls()) if sums is not None else _season(panel, c_rows)

    first = panel.first_active[all_rows]
    eligible = _eligible(k, first, T, min_pre_months, min_post_months)
    n_excluded = int((~eligible & d).sum())
    rows, k, d, u = all_rows[eligible], k[eligible], d[eligible], u[eligible]
    first = first[eligible]
    mid = first + (k - first) // 2
    end = np.full(len(rows), T)
    # window sums as flat gathers from the running sums of the design rows (or of the rows
    # ``sums`` holds for every design of one estimate): one take per window and array
    flat = {}
    base = (np.arange(len(rows)) if sums is None else sums.position(rows)) * (T + 1)

    def win(name: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        c = flat.get(name)
        if c is None:
            c = flat[name] = (
                panel.cumsum(name, rows) if sums is None else sums.cumsum(name)
            ).ravel()
        return np.take(c, base + hi) - np.take(c, base + lo)

    def rate(name: str, den: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return win(name, lo, hi) / np.maximum(win(den, lo, hi), 1e-9)

    active = panel.active[rows]
    adj = _adjusted(active, season, first, mid, k)
    nums = {
        "stays_prior_num": win("stays", first, mid),
        "stays_base_num": win("stays", mid, k),
        "stays_post_num": win("stays", k + 1, end),
        "revenue_base_num": win("revenue", mid, k),
        "revenue_post_num": win("revenue", k + 1, end),
    }
    values = {
        o: {
            "base": nums[f"{o}_base_num"] / np.maximum(adj["base"], 1e-9),
            "post": nums[f"{o}_post_num"] / np.maximum(adj["post"], 1e-9),
        }
        for o in ("stays", "revenue")
    }
    values["retention"] = {
        "base": rate("any_stay", "active", mid, k),
        "post": rate("any_stay", "active", k + 1, end),
    }
    nb, npo = win("nps_n", first, k), win("nps_n", k + 1, end)
    values["nps"] = {
        "base": np.where(nb > 0, win("nps_sum", first, k) / np.maximum(nb, 1), np.nan),
        "post": np.where(npo > 0, win("nps_sum", k + 1, end) / np.maximum(npo, 1), np.nan),
    }
    # interaction-based covariates from the stay-side rows only: a search, booking or
    # pre-arrival row in the covariate window belongs to a stay in the baseline window, and
    # conditioning the change on it is conditioning on the baseline (regression to the mean)
    side = panel.stay_side_interactions is not None
    inter_n = "stay_side_interactions" if side else "interactions"
    dig_n = "stay_side_digital" if side else "digital"
    rev_n = "stay_side_revenue" if side else "revenue"
    e_stays = nums["stays_prior_num"]
    e_inter = win(inter_n, first, mid)
    starts = panel.months.to_timestamp()
    if "signup_date" in panel.customers:
        su = pd.to_datetime(panel.customers["signup_date"]).to_numpy()[rows]
        at = starts.to_numpy()[k]
        tenure = np.nan_to_num((at - su) / np.timedelta64(365, "D"), nan=0.0)
    else:
        tenure = np.zeros(len(rows))
    X = pd.DataFrame(
        {
            "prior_stay_rate": e_stays / np.maximum(adj["prior"], 1e-9),
            "prior_months_with_stay": rate("any_stay", "active", first, mid),
            "log_prior_spend_per_stay": np.log1p(win(rev_n, first, mid) / np.maximum(e_stays, 1)),
            "prior_digital_share": win(dig_n, first, mid) / np.maximum(e_inter, 1),
            "prior_any_interaction": (e_inter > 0).astype(float),
            "log_prior_months": np.log1p(win("active", first, mid)),
            "log_tenure_years": np.log1p(np.maximum(tenure, 0)),
            "index_month": k.astype(float),
        }
    )
    if other_k is not None:
        X["other_before"] = (other_k[rows] < k).astype(float)
    if not static.empty:
        X = pd.concat([X, static.iloc[rows].reset_index(drop=True)], axis=1)
    adj_info = {"active": active, "first": first, "mid": mid, "k": k, **nums}
    return _Design(
        rows=rows, treated=d, weight=u, X=X, values=values, n_excluded=n_excluded, adj=adj_info
    )


def _static_dummies(customers: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    cols = [c for c in columns if c in customers.columns]
    if not cols:
        return pd.DataFrame(index=customers.index)
    d = customers[cols].astype("str").fillna("(missing)").astype(object)
    return pd.get_dummies(d, drop_first=True, dtype=float).reset_index(drop=True)


def _fit_nuisance(
    des: _Design,
    trim: float,
    seed: int,
    *,
    scale: tuple[np.ndarray, np.ndarray] | None = None,
    init: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Propensity (logistic, standardised covariates), the trimming mask, the scaled X and
    the fit (``scale``, ``init``) that a bootstrap replicate starts from.

    ``scale`` fixes the standardisation (a replicate uses the point estimate's, so the
    penalty means the same in every replicate); ``init`` warm-starts Newton's method from
    the point estimate's coefficients (two iterations instead of five).
    """
    from sklearn.linear_model import LogisticRegression

    X = des.matrix()
    if scale is None:
        mu = np.average(X, axis=0, weights=des.weight)
        sd = np.sqrt(np.average((X - mu) ** 2, axis=0, weights=des.weight))
    else:
        mu, sd = scale
    Z = (X - mu) / np.where(sd > 0, sd, 1)
    model = LogisticRegression(
        C=1.0,
        solver="newton-cholesky",
        max_iter=200,
        random_state=seed,
        warm_start=init is not None,
    )
    if init is not None:
        model.coef_, model.intercept_ = init[0].copy(), init[1].copy()
    model.fit(Z, des.treated, sample_weight=des.weight)
    p = model.predict_proba(Z)[:, 1]
    keep = (p >= trim) & (p <= 1 - trim)
    return p, keep, Z, {"scale": (mu, sd), "init": (model.coef_, model.intercept_)}


def _distinct(rows: np.ndarray) -> int:
    """Number of distinct customers among design rows (controls appear once per draw)."""
    if len(rows) == 0:
        return 0
    seen = np.zeros(int(rows.max()) + 1, bool)
    seen[rows] = True
    return int(seen.sum())


def _wls_predict(Z: np.ndarray, Y: np.ndarray, fit_rows: np.ndarray, w: np.ndarray):
    """Weighted least squares of every column of ``Y`` on ``Z`` (with an intercept) over
    ``fit_rows``, predicted for all rows. The normal equations are solved by Cholesky with a
    vanishing ridge (1e-6, the intercept unpenalised) that keeps collinear dummies solvable;
    the same as scikit-learn's ``Ridge(alpha=1e-6)`` (tested) without its per-call
    preprocessing, which dominated the bootstrap."""
    from scipy.linalg import solve

    A = np.column_stack([np.ones(len(Z)), Z])
    Af, wf = A[fit_rows], w[fit_rows]
    G = Af.T @ (Af * wf[:, None])
    G[np.arange(1, A.shape[1]), np.arange(1, A.shape[1])] += 1e-6
    B = solve(G, Af.T @ (Y[fit_rows] * wf[:, None]), assume_a="pos")
    return A @ B


def _estimate(
    des: _Design, trim: float, seed: int, outcomes: Sequence[str], **fit: Any
) -> dict[str, Any]:
    p, keep, Z, nuisance = _fit_nuisance(des, trim, seed, **fit)
    d, u = des.treated, des.weight
    out: dict[str, Any] = {
        "nuisance": nuisance,
        "p": p,
        "keep": keep,
        "n_treated": int((d & keep).sum()),
        "n_control": _distinct(des.rows[~d & keep]),
        "n_trimmed": int((d & ~keep).sum()),
    }
    # outcomes observed for the same units share one multi-output outcome regression
    groups: dict[bytes, list[str]] = {}
    masks = {}
    for o in outcomes:
        base, post = des.values[o]["base"], des.values[o]["post"]
        ok = keep & np.isfinite(post) & np.isfinite(base)
        masks[o] = ok
        groups.setdefault(ok.tobytes(), []).append(o)
    for names in groups.values():
        ok = masks[names[0]]
        dd, uu, pp, zz = d[ok], u[ok], p[ok], Z[ok]
        if dd.sum() < 2 or (~dd).sum() < 2:
            out.update(dict.fromkeys(names))
            continue
        ys = []
        for o in names:
            base, post = des.values[o]["base"][ok], des.values[o]["post"][ok]
            ys += [post - base, post]  # the change (DR-DiD) and the level (AIPW)
        Y = np.column_stack(ys)
        M = _wls_predict(zz, Y, ~dd, uu)
        n_control = _distinct(des.rows[ok][~dd])
        for i, o in enumerate(names):
            post = Y[:, 2 * i + 1]
            out[o] = {
                "n_treated": int(dd.sum()),
                "n_control": n_control,
                "dr_did": aipw_att(Y[:, 2 * i], dd, pp, M[:, 2 * i], uu),
                "aipw_level": aipw_att(post, dd, pp, M[:, 2 * i + 1], uu),
                "mu1": float(np.average(post[dd], weights=uu[dd])),
                "sd0": float(np.sqrt(np.cov(post[~dd], aweights=uu[~dd]))),
            }
    return out


def _naive(panel: AdoptionPanel, flag: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """Ever vs never adopters over the whole window (the comparison a dashboard makes)."""
    ever, never = flag & valid, ~flag & valid
    act = panel.active
    out = {}
    for o, num in (("stays", panel.stays), ("revenue", panel.revenue)):
        r1 = num[ever].sum() / max(act[ever].sum(), 1e-9)
        r0 = num[never].sum() / max(act[never].sum(), 1e-9)
        out[o] = (r1 / r0 if r0 > 0 else np.nan, r1, r0)
    anys = (panel.stays > 0).astype(float)
    r1 = anys[ever].sum() / max(act[ever].sum(), 1e-9)
    r0 = anys[never].sum() / max(act[never].sum(), 1e-9)
    out["retention"] = (r1 - r0, r1, r0)
    s1 = panel.nps_sum[ever].sum() / max(panel.nps_n[ever].sum(), 1)
    s0 = panel.nps_sum[never].sum() / max(panel.nps_n[never].sum(), 1)
    out["nps"] = (s1 - s0, s1, s0)
    return out


def adoption_effects(
    panel: AdoptionPanel,
    *,
    treatment: str = "community",
    flag: str = "is_community_member",
    date: str = "community_join_date",
    other: tuple[str, str] | None = ("app_user", "app_install_date"),
    static_covariates: Sequence[str] = ("region", "age_band"),
    outcomes: Sequence[str] = ("stays", "retention", "revenue", "nps"),
    min_pre_months: int = 6,
    min_post_months: int = 3,
    control_draws: int = 3,
    trim: float = 0.05,
    n_boot: int = 200,
    index_draws: int = 10,
    max_controls: int | None = 50_000,
    level: float = 0.95,
    min_base: int = 30,
    seed: int = 0,
) -> AdoptionEffects:
    """Effect of joining (the community, the app) on the customers who joined (ATT).

    See the module docstring for the design. Parameters
    ----------
    panel : AdoptionPanel
        From :func:`adoption_panel`.
    treatment : str
        Name used in the tables (``community``, ``app``).
    flag, date : str
        Customers columns: the membership flag and the join date.
    other : (str, str), optional
        The other programme's flag and date: whether a customer had already adopted it
        before the index month is a covariate.
    static_covariates : sequence of str
        Customer attributes fixed before joining (demographics). Leave out snapshots that
        joining could change (a loyalty tier recomputed from recent stays).
    outcomes : sequence of str
        Among :data:`OUTCOMES`.
    min_pre_months, min_post_months : int
        Months of history needed before and after the index month.
    control_draws : int
        Index months drawn per non-joiner (each copy weighs ``1 / control_draws``).
    trim : float
        Overlap trimming: units with a propensity outside ``[trim, 1 - trim]`` are dropped.
    n_boot : int
        Bootstrap replicates (propensity and outcome models refitted in each).
    index_draws : int
        Draws of the non-joiners' index months that the replicates rotate over (the
        point estimate uses the first).
    max_controls : int, optional
        Non-joiners beyond this many are represented by a seeded random sample of this
        size (all of them counted in ``counts["non_joiners"]``); None keeps them all. Every
        bootstrap replicate refits two models on joiners + ``control_draws`` x non-joiners
        rows, so a chain with a million customers needs it.
    level : float
    min_base : int
        Outcomes with fewer joiners in the estimand are reported as suppressed.
    seed : int

    Returns
    -------
    AdoptionEffects
    """
    unknown = sorted(set(outcomes) - set(OUTCOMES))
    if unknown:
        raise ValueError(f"unknown outcome(s) {unknown}; choose from {list(OUTCOMES)}")
    treated, k_all, valid = _index_months(panel, flag, date)
    other_k = None
    if other is not None and set(other) <= set(panel.customers.columns):
        f = panel.customers[other[0]].astype("boolean").fillna(False).to_numpy(bool)
        ok = panel.month_index(panel.customers[other[1]])
        other_k = np.where(f, ok, 10**6)
    static = _static_dummies(panel.customers, static_covariates)
    base_rows = np.flatnonzero(valid)
    controls = base_rows[~treated[base_rows]]
    n_controls_all = len(controls)
    if max_controls is not None and n_controls_all > max_controls:
        # a seeded simple random sample of non-joiners: the ATT's control weights are
        # normalised, so a random subset estimates the same thing (with its own variance,
        # which the bootstrap over the subset carries)
        keep_c = np.random.default_rng([seed, 7919]).choice(controls, max_controls, replace=False)
        base_rows = np.sort(np.concatenate([base_rows[treated[base_rows]], keep_c]))
    kw = {
        "min_pre_months": min_pre_months,
        "min_post_months": min_post_months,
        "control_draws": control_draws,
        "static": static,
    }
    import sklearn
    from threadpoolctl import threadpool_limits

    # the running sums of the rows any design can hold, made once: joiners with enough
    # history for their own join month, and every non-joiner of the estimate
    t_all, c_all = base_rows[treated[base_rows]], base_rows[~treated[base_rows]]
    T = len(panel.months)
    ok = _eligible(k_all[t_all], panel.first_active[t_all], T, min_pre_months, min_post_months)
    kw["sums"] = _RowSums(panel, np.union1d(t_all[ok], c_all), c_all)
    # many small least-squares problems: one BLAS thread each is faster than contention
    with threadpool_limits(limits=1, user_api="blas"):
        rng = np.random.default_rng(seed)
        des = _design(panel, base_rows, treated, k_all, other_k, rng, **kw)
        est = _estimate(des, trim, seed, outcomes)

        # Bayesian bootstrap (Rubin 1981), stratified by group: every replicate gives each
        # customer an exponential weight (normalised within joiners and within non-joiners;
        # a non-joiner's copies share it), re-estimates the seasonal index under those
        # weights and refits the propensity and outcome models. The non-joiners' index
        # months are redrawn too: the replicates rotate over ``index_draws`` designs, each
        # with its own draw, built once (see "Uncertainty" in the module docstring).
        t_rows, c_rows = base_rows[treated[base_rows]], base_rows[~treated[base_rows]]
        fit = est["nuisance"]
        designs = [des] + [
            _design(
                panel, base_rows, treated, k_all, other_k, np.random.default_rng([seed, j]), **kw
            )
            for j in range(1, min(index_draws, max(n_boot, 1)))
        ]
        draws: dict[str, list[tuple[float, float, float]]] = {o: [] for o in outcomes}
        n_failed = 0
        g = np.zeros(panel.n)
        for b in range(n_boot):
            r = np.random.default_rng([seed, b])
            gt, gc = r.exponential(size=len(t_rows)), r.exponential(size=len(c_rows))
            g[t_rows], g[c_rows] = gt / gt.mean(), gc / gc.mean()
            db = designs[b % len(designs)]
            bd = db.reseason(panel, _season_of(*kw["sums"].controls(), g[c_rows]))
            bd.weight = db.weight * g[db.rows]
            try:
                # inputs checked once for the point estimate: skip sklearn's per-call checks
                with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                    be = _estimate(bd, trim, seed, outcomes, **fit)
            except (ValueError, DataValidationError):  # e.g. one class left after trimming
                n_failed += 1
                continue
            for o in outcomes:
                if be[o] is not None:
                    draws[o].append((be[o]["dr_did"], be[o]["aipw_level"], be[o]["mu1"]))

    naive = _naive(panel, treated | (~valid), valid)
    a = (1 - level) / 2
    rows_out = []
    out_draws = {}
    for o in outcomes:
        scale, label = OUTCOMES[o]
        nv, n1, n0 = naive[o]
        n_ever = int((treated & valid).sum())
        rows_out.append(
            {
                "treatment": treatment,
                "outcome": o,
                "label": label,
                "method": "naive",
                "scale": scale,
                "estimate": nv,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "n_treated": n_ever,
                "n_control": int((~treated & valid).sum()),
                "mu1": n1,
                "mu0": n0,
                "note": "ever vs never adopters over the whole log; no adjustment",
            }
        )
        res = est[o]
        if res is None:
            continue
        dr = np.array(draws[o]) if draws[o] else np.empty((0, 3))
        out_draws[o] = dr
        suppressed = res["n_treated"] < min_base
        for j, method in enumerate(("dr_did", "aipw_level")):
            att, mu1 = res[method], res["mu1"]
            mu0 = mu1 - att
            if scale == "ratio":
                estimate = mu1 / mu0 if mu0 > 0 else np.nan
                bt = dr[:, 2] / (dr[:, 2] - dr[:, j]) if len(dr) else np.empty(0)
                bt = bt[np.isfinite(bt) & (bt > 0)]
                lo, hi = np.quantile(bt, [a, 1 - a]) if len(bt) > 1 else (np.nan, np.nan)
                ev, evc = e_value(estimate), e_value_ci(lo, hi)
            else:
                estimate = att
                bt = dr[:, j] if len(dr) else np.empty(0)
                lo, hi = np.quantile(bt, [a, 1 - a]) if len(bt) > 1 else (np.nan, np.nan)
                if o == "nps":
                    sd = res["sd0"]
                    ev = e_value(rr_from_difference(att, sd))
                    evc = e_value_ci(rr_from_difference(lo, sd), rr_from_difference(hi, sd))
                else:  # a share: ratio of the treated mean to its counterfactual
                    ev = e_value(mu1 / mu0) if mu0 > 0 else np.nan
                    evc = e_value_ci(mu1 / (mu1 - lo), mu1 / (mu1 - hi)) if mu1 - hi > 0 else np.nan
            note = (
                "doubly robust DiD (AIPW on the change from the baseline window)"
                if method == "dr_did"
                else "AIPW on the post-join level (selection on observables only); "
                "a sensitivity check"
            )
            if suppressed:
                note += f"; fewer than {min_base} joiners: not reported"
            rows_out.append(
                {
                    "treatment": treatment,
                    "outcome": o,
                    "label": label,
                    "method": method,
                    "scale": scale,
                    "estimate": np.nan if suppressed else estimate,
                    "ci_low": np.nan if suppressed else lo,
                    "ci_high": np.nan if suppressed else hi,
                    "n_treated": res["n_treated"],
                    "n_control": res["n_control"],
                    "mu1": mu1,
                    "mu0": mu0,
                    "e_value": np.nan if suppressed else ev,
                    "e_value_ci": np.nan if suppressed else evc,
                    "note": note,
                }
            )
    effects = pd.DataFrame(rows_out)
    effects["n_boot"] = n_boot
    effects["suppressed"] = effects["estimate"].isna() & (effects["method"] != "naive")

    # balance in the point-estimate sample (trimmed), controls weighted p / (1 - p)
    keep, p = est["keep"], est["p"]
    d = des.treated[keep]
    w = des.weight[keep] * np.where(d, 1.0, p[keep] / (1 - p[keep]))
    bal = []
    for col in des.X.columns:
        x = des.X[col].to_numpy(float)[keep]
        u0 = des.weight[keep][~d]
        s_before = _smd_weighted(x, d, des.weight[keep])
        _, s_after = smd(x, d, w)
        bal.append(
            {
                "treatment": treatment,
                "covariate": col,
                "mean_treated": float(x[d].mean()),
                "mean_control": float(np.average(x[~d], weights=u0)),
                "mean_control_weighted": float(np.average(x[~d], weights=w[~d])),
                "smd_before": s_before,
                "smd_after": s_after,
            }
        )
    balance = pd.DataFrame(bal)
    balance["balanced"] = balance["smd_after"].abs() < 0.1
    counts = {
        "joiners": int((treated & valid).sum()),
        "in_estimand": est["n_treated"],
        "no_history": des.n_excluded,
        "trimmed": est["n_trimmed"],
        "controls": est["n_control"],
        "failed_replicates": n_failed,
        "non_joiners": n_controls_all,
    }
    estimand = (
        f"ATT: {treatment} joiners with at least {min_pre_months} months of history before "
        f"the join month and {min_post_months} after it; their outcome after the join month "
        "against what they would have had without joining (their own baseline, moved as "
        "comparable non-joiners' moved over the same calendar months)"
    )
    return AdoptionEffects(treatment, effects, balance, counts, estimand, out_draws)


def _smd_weighted(x: np.ndarray, d: np.ndarray, u: np.ndarray) -> float:
    """SMD before weighting, honouring the unit weights of repeated controls."""
    x1, x0, u0 = x[d], x[~d], u[~d]
    m0 = np.average(x0, weights=u0)
    v0 = np.average((x0 - m0) ** 2, weights=u0)
    sd = math.sqrt((np.var(x1) + v0) / 2)
    return 0.0 if sd == 0 else float((x1.mean() - m0) / sd)


# ======================================================================================
# Treat data with respect: k-anonymity and the privacy evidence
# ======================================================================================
def k_anonymity(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], *, floor: int = 5
) -> dict[str, float]:
    """k-anonymity of a record-level table over its quasi-identifiers.

    Records are grouped into equivalence classes by the combination of their
    quasi-identifier values (a missing value is a value of its own). ``k`` is the smallest
    class size; records in classes smaller than ``floor`` are the ones at risk of
    re-identification.

    Returns
    -------
    dict
        ``n_records``, ``n_classes``, ``k_min``, ``classes_below_floor``,
        ``records_below_floor``, ``share_below_floor``, ``quasi_identifiers`` (those found).
    """
    qi = [c for c in quasi_identifiers if c in table.columns]
    n = len(table)
    if n == 0:
        return {
            "n_records": 0,
            "n_classes": 0,
            "k_min": float("nan"),
            "classes_below_floor": 0,
            "records_below_floor": 0,
            "share_below_floor": float("nan"),
            "quasi_identifiers": ", ".join(qi),
        }
    if not qi:
        sizes = np.array([n])
    else:
        key = table[qi].astype("str").fillna("\x00missing").astype(object)
        sizes = key.groupby(qi, dropna=False, sort=False).size().to_numpy()
    small = sizes < floor
    return {
        "n_records": n,
        "n_classes": len(sizes),
        "k_min": int(sizes.min()),
        "classes_below_floor": int(small.sum()),
        "records_below_floor": int(sizes[small].sum()),
        "share_below_floor": float(sizes[small].sum() / n),
        "quasi_identifiers": ", ".join(qi),
    }


def released_tables_anonymity(
    tables: Mapping[str, pd.DataFrame],
    quasi_identifiers: Sequence[str],
    *,
    floor: int,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """k-anonymity of each customer-level table a run releases.

    A table without the quasi-identifiers but with ``customer_id`` is joined to
    ``customers`` for them: whoever holds both files can link them. ``signup_year`` is
    derived from ``signup_date``. One row per table.
    """
    rows = []
    if customers is not None and "signup_date" in customers and "signup_year" not in customers:
        customers = customers.assign(
            signup_year=pd.to_datetime(customers["signup_date"]).dt.year.astype("Int64")
        )
    for name, df in tables.items():
        if df is None or "customer_id" not in df.columns:
            continue
        d = df
        if "signup_date" in d and "signup_year" not in d:
            d = d.assign(signup_year=pd.to_datetime(d["signup_date"]).dt.year.astype("Int64"))
        missing = [c for c in quasi_identifiers if c not in d.columns]
        if missing and customers is not None:
            have = [c for c in missing if c in customers.columns]
            if have:
                look = customers.drop_duplicates("customer_id").set_index("customer_id")[have]
                d = d.join(look, on="customer_id")
        rows.append({"table": name, **k_anonymity(d, quasi_identifiers, floor=floor)})
    return pd.DataFrame(rows)


def collected_fields(
    reports: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """Fields collected per table and whether an analysis uses them.

    ``reports`` are the load reports (:class:`rox_helpers.data.TableReport`): columns the
    client sent that were mapped (``used`` if any value is present), left unmapped
    (``not used``) or recognised as direct identifiers (``identifier``).
    """
    rows = []
    for table, rep in reports.items():
        df = tables.get(table)
        idents = set(getattr(rep, "identifiers", {}) or {})
        for c in sorted(idents):  # a set: sorted, so the table is the same run to run
            rows.append({"table": table, "field": c, "status": "identifier"})
        for c in getattr(rep, "ignored_columns", []) or []:
            rows.append({"table": table, "field": c, "status": "not used"})
        if df is not None:
            for c in df.columns:
                if c.endswith("_hash"):
                    continue
                used = bool(df[c].notna().any())
                rows.append({"table": table, "field": c, "status": "used" if used else "empty"})
    return pd.DataFrame(rows, columns=["table", "field", "status"])


def data_respect_evidence(
    customers: pd.DataFrame | None,
    *,
    customers_total: int,
    customers_without_consent: int,
    consent_recorded: bool,
    identifiers: Sequence[Mapping[str, str]],
    fields: pd.DataFrame,
    anonymity: pd.DataFrame,
    floor: int,
) -> pd.DataFrame:
    """Evidence of action 5, aggregates only.

    Customers without analytics consent enter only as a count. The value exchange is the
    uptake, among consenting customers, of what they get in return (the app, the
    community, offers through marketing consent).
    """
    ev = []

    def add(metric, label, value, n, unit="share", note="", lo=np.nan, hi=np.nan):
        ev.append(_row("data_respect", metric, label, value, n, unit, note, lo, hi))

    if consent_recorded and customers_total:
        share = 1 - customers_without_consent / customers_total
        lo, hi = wilson(customers_total - customers_without_consent, customers_total)
        add(
            "consent_coverage",
            "Customers with analytics consent",
            share,
            customers_total,
            note=f"{customers_without_consent:,} customers without consent appear only in "
            "this count",
            lo=lo,
            hi=hi,
        )
    else:
        add("consent_coverage", "Customers with analytics consent", np.nan, 0, note="not recorded")
    n_id = len(identifiers)
    handled = sum(1 for i in identifiers if i.get("action") in ("hash", "drop"))
    add(
        "identifiers_handled",
        "Direct identifiers found that were hashed or dropped on load",
        handled / n_id if n_id else 1.0,
        n_id,
        note=", ".join(f"{i['table']}.{i['column']} ({i.get('action')})" for i in identifiers)
        or "none found",
    )
    if len(fields):
        used = (fields["status"] == "used").sum()
        add(
            "data_minimisation",
            "Share of collected fields the analyses use",
            used / len(fields),
            len(fields),
            note=f"{(fields['status'] == 'identifier').sum()} identifier fields, "
            f"{(fields['status'] == 'not used').sum()} unmapped, "
            f"{(fields['status'] == 'empty').sum()} empty",
        )
    if len(anonymity):
        worst = anonymity.sort_values("share_below_floor", ascending=False).iloc[0]
        add(
            "reidentification_risk",
            f"Share of released customer records in classes under {floor} (worst table)",
            float(worst["share_below_floor"]),
            int(worst["n_records"]),
            note=f"{worst['table']}: smallest class {worst['k_min']} over "
            f"{worst['quasi_identifiers'] or 'no quasi-identifiers'}",
        )
        add(
            "k_min",
            "Smallest equivalence class (k) over the released tables",
            float(anonymity["k_min"].min()),
            int(anonymity["n_records"].sum()),
            unit="count",
        )
    if customers is not None and len(customers):
        c = customers
        if "consent_analytics" in c:
            c = c[c["consent_analytics"].astype("boolean").fillna(False).to_numpy(bool)]
        for col, metric, label in (
            ("app_user", "value_exchange_app", "Consenting customers using the app"),
            ("is_community_member", "value_exchange_community", "Consenting community members"),
            ("consent_marketing", "value_exchange_offers", "Consenting customers taking offers"),
        ):
            if col in c and len(c):
                x = c[col].astype("boolean").fillna(False).to_numpy(bool)
                lo, hi = wilson(int(x.sum()), len(x))
                add(metric, label, float(x.mean()), len(x), lo=lo, hi=hi)
    return pd.DataFrame(ev, columns=EVIDENCE_COLUMNS)


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (NaN when ``n`` is 0)."""
    lo, hi = wilson_interval(k, n, level)
    return float(lo[0]), float(hi[0])


# ======================================================================================
# Evidence of the other actions
# ======================================================================================
def _row(action, metric, label, value, n, unit="share", note="", lo=np.nan, hi=np.nan):
    return {
        "action": action,
        "metric": metric,
        "label": label,
        "value": value,
        "ci_low": lo,
        "ci_high": hi,
        "n": n,
        "unit": unit,
        "note": note,
    }


EX_TABLES = ("employees", "network")


def fuse_evidence(
    edges: pd.DataFrame,
    measures: pd.DataFrame,
    effects: pd.DataFrame | None = None,
    profile: pd.DataFrame | None = None,
    *,
    ex_measure: str | None = None,
    cx_measure: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evidence of action 1 from the linkage model.

    Parameters
    ----------
    edges : pandas.DataFrame
        ``linkage_edges`` (``child``, ``parent``, ``estimate``, ``ci_low``, ``ci_high``).
    measures : pandas.DataFrame
        ``name, element, table, higher_is_better`` of the panel's measures.
    effects : pandas.DataFrame, optional
        ``linkage_effects`` (``from``, ``to``, ``total``, ``total_ci_low``,
        ``total_ci_high``): the total effect of ``ex_measure`` on ``cx_measure``.
    profile : pandas.DataFrame, optional
        One row per unit with the unit's average ``ex_measure`` and ``cx_measure``
        (:func:`rox_helpers.linkage.unit_profile`).

    Returns
    -------
    (evidence, units)
        ``units``: per unit, its EX and CX levels, the change of EX that would bring it to
        the median unit's (0 when at or better than the median), the CX that change would
        bring by the total effect (``cx_gain``, in the good direction, with an interval),
        and ``held_back`` when the whole interval is a gain.
    """
    info = measures.set_index("name")
    order = {
        e: i for i, e in enumerate(("pride", "influencers", "behaviours", "values", "results"))
    }
    is_ex = info["table"].isin(EX_TABLES) | (info["element"] == "pride")
    ex = set(info.index[is_ex & info["element"].isin(["pride", "influencers", "behaviours"])])
    e = edges[edges["parent"].isin(ex) & edges["child"].isin(info.index)]
    # links that run down the chain: from EX to behaviours, values (CX) and results
    down = [
        order[info.loc[c, "element"]] > order[info.loc[p, "element"]]
        for p, c in zip(e["parent"], e["child"], strict=True)
    ]
    e = e[np.asarray(down, dtype=bool)] if len(e) else e
    rows = []
    if len(e):
        supported = ((e["ci_low"] > 0) | (e["ci_high"] < 0)).to_numpy()
        rows.append(
            _row(
                "fuse_cx_ex",
                "ex_cx_links_supported",
                "Share of EX links to behaviours and CX whose interval excludes zero",
                float(supported.mean()),
                len(e),
                note=", ".join(f"{p}->{c}" for p, c in zip(e["parent"], e["child"], strict=True)),
            )
        )
    units = pd.DataFrame()
    if effects is not None and profile is not None and ex_measure and cx_measure:
        tot = effects[(effects["from"] == ex_measure) & (effects["to"] == cx_measure)]
        if len(tot) and {ex_measure, cx_measure} <= set(profile.columns):
            t = tot.iloc[0]
            ex_sign = 1.0 if bool(info.loc[ex_measure, "higher_is_better"]) else -1.0
            cx_sign = 1.0 if bool(info.loc[cx_measure, "higher_is_better"]) else -1.0
            med = float(profile[ex_measure].median())
            # how far each unit's EX is on the wrong side of the median, in EX's raw units
            shortfall = np.clip(ex_sign * (med - profile[ex_measure].to_numpy(float)), 0, None)
            change = ex_sign * shortfall
            units = profile[["unit_id", ex_measure, cx_measure]].copy()
            units["ex_change_to_median"] = change
            # CX gained (in the good direction) if the unit's EX reached the median
            lo_hi = np.sort(
                np.stack([change * t["total_ci_low"], change * t["total_ci_high"]]) * cx_sign,
                axis=0,
            )
            units["cx_gain"] = change * t["total"] * cx_sign
            units["cx_gain_ci_low"], units["cx_gain_ci_high"] = lo_hi[0], lo_hi[1]
            units["held_back"] = (shortfall > 0) & (units["cx_gain_ci_low"] > 0)
            units = units.sort_values("cx_gain", ascending=False).reset_index(drop=True)
            held = units["held_back"].to_numpy(bool)
            rows.append(
                _row(
                    "fuse_cx_ex",
                    "units_ex_not_holding_back",
                    f"Units where EX ({ex_measure}) is not holding {cx_measure} back",
                    1 - float(held.mean()),
                    len(units),
                    note=f"total effect {t['total']:.3g} ({t['total_ci_low']:.3g} to "
                    f"{t['total_ci_high']:.3g}) per point of {ex_measure}",
                )
            )
            rows.append(
                _row(
                    "fuse_cx_ex",
                    "cx_at_stake_from_ex",
                    f"Mean {cx_measure} gained per unit if units below the median {ex_measure} "
                    "reached it",
                    float(units["cx_gain"].mean()),
                    len(units),
                    unit=cx_measure,
                    lo=float(units["cx_gain_ci_low"].mean()),
                    hi=float(units["cx_gain_ci_high"].mean()),
                )
            )
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS), units


def community_evidence(effects: Sequence[AdoptionEffects], customers: pd.DataFrame) -> pd.DataFrame:
    """Evidence of action 2: uptake and the adjusted effect on stays of each programme."""
    rows = []
    flags = {"community": "is_community_member", "app": "app_user"}
    labels = {"community": "Customers in the community", "app": "Customers using the app"}
    for res in effects:
        col = flags.get(res.treatment)
        if col in customers:
            x = customers[col].astype("boolean").fillna(False).to_numpy(bool)
            lo, hi = wilson(int(x.sum()), len(x))
            rows.append(
                _row(
                    "communities",
                    f"{res.treatment}_uptake",
                    labels.get(res.treatment, f"Customers in the {res.treatment}"),
                    float(x.mean()),
                    len(x),
                    lo=lo,
                    hi=hi,
                )
            )
        h = res.headline("stays")
        rows.append(
            _row(
                "communities",
                f"{res.treatment}_stay_uplift",
                f"Extra stays of {res.treatment} joiners (adjusted rate ratio - 1)",
                h["estimate"] - 1,
                int(h["n_treated"]),
                unit="relative",
                lo=h["ci_low"] - 1,
                hi=h["ci_high"] - 1,
                note=f"naive ratio {res.naive('stays')['estimate']:.2f}; E-value "
                f"{h['e_value']:.2f} (interval {h['e_value_ci']:.2f})",
            )
        )
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)


def magic_moments_evidence(
    moments: pd.DataFrame | None, kano: pd.DataFrame | None, *, alpha: float = 0.05
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evidence of action 3 from step 05's ``journey_moments`` and step 03's Kano classes.

    Returns ``(evidence, moments)``: the moments table lists each significant magic moment
    and pain point (``q < alpha``) and each delighter, with its source.
    """
    rows, found = [], []
    # only the tests that were run count (rows under the minimum base carry no q)
    if moments is not None and "q" in moments:
        moments = moments[moments["q"].notna()]
    if moments is not None and len(moments):
        m = moments
        sig = m["q"] < alpha if "q" in m else pd.Series(True, index=m.index)
        magic = m[(m["kind"] == "magic") & sig]
        pain = m[(m["kind"] == "pain") & sig]
        rows.append(
            _row(
                "magic_moments",
                "magic_moments_found",
                f"Touchpoints where a very good experience is followed by loyalty (q < {alpha})",
                float(len(magic)),
                len(m),
                unit="count",
            )
        )
        rows.append(
            _row(
                "magic_moments",
                "pain_point_share",
                "Share of touchpoints tested that are significant pain points",
                len(pain) / len(m),
                len(m),
            )
        )
        for _, r in pd.concat([magic, pain]).iterrows():
            found.append(
                {
                    "source": "journey (step 05"
                    + (f", {r['source']}" if isinstance(r.get("source"), str) else "")
                    + ")",
                    "name": r["touchpoint"]
                    + (f" ({r['signal']})" if isinstance(r.get("signal"), str) else ""),
                    "kind": r["kind"],
                    "effect": r.get("effect", np.nan),
                    "ci_low": r.get("ci_low", np.nan),
                    "ci_high": r.get("ci_high", np.nan),
                    "n": r.get("n", np.nan),
                }
            )
    if kano is not None and len(kano) and "kano_class" in kano:
        de = kano[kano["kano_class"] == "delighter"]
        rows.append(
            _row(
                "magic_moments",
                "delighters",
                "Attributes that delight (Kano: reward well above penalty)",
                float(len(de)),
                len(kano),
                unit="count",
            )
        )
        for _, r in de.iterrows():
            found.append(
                {
                    "source": "Kano (step 03)",
                    "name": r["driver"],
                    "kind": "delighter",
                    "effect": r.get("reward", np.nan),
                    "ci_low": r.get("reward_ci_low", np.nan),
                    "ci_high": r.get("reward_ci_high", np.nan),
                    "n": r.get("n", np.nan),
                }
            )
    cols = ["source", "name", "kind", "effect", "ci_low", "ci_high", "n"]
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS), pd.DataFrame(found, columns=cols)


def behaviour_evidence(versus: pd.DataFrame | None) -> pd.DataFrame:
    """Evidence of action 4 from step 02's ``segments_vs_demographics``."""
    if versus is None or not len(versus):
        return pd.DataFrame(columns=EVIDENCE_COLUMNS)
    v = versus
    wins = (v["ci_low"] > 0).to_numpy()
    return pd.DataFrame(
        [
            _row(
                "behaviour",
                "behaviour_beats_demographics",
                "Later outcomes that behavioural segments predict better than demographics",
                float(wins.mean()),
                len(v),
                note=", ".join(
                    f"{o}: gain {g:.3f}" for o, g in zip(v["outcome"], v["gain"], strict=True)
                ),
            ),
            _row(
                "behaviour",
                "behaviour_gain",
                "Mean out-of-sample explained variance gained over demographics",
                float(v["gain"].mean()),
                int(v["n_test"].min()) if "n_test" in v else len(v),
                unit="r2",
                lo=float(v["ci_low"].mean()),
                hi=float(v["ci_high"].mean()),
                note="interval: mean of the per-outcome limits",
            ),
        ],
        columns=EVIDENCE_COLUMNS,
    )


def journey_dimensions(
    codebook: Mapping[str, Any], overrides: Mapping[str, Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """Codebook attributes per journey dimension (navigation, quality, breadth, price,
    convenience): ``overrides`` from engagement.yml, else keyword matches on each attribute's
    key and label."""
    if overrides:
        return {k: list(v) for k, v in overrides.items()}
    out: dict[str, list[str]] = {k: [] for k in JOURNEY_DIMENSIONS}
    for key, entry in codebook.items():
        if not str(key).startswith("att_"):
            continue
        text = f"{key} {getattr(entry, 'label', '')}".lower()
        for dim, words in JOURNEY_DIMENSIONS.items():
            if any(w in text for w in words):
                out[dim].append(key)
                break
    return {k: v for k, v in out.items() if v}


def completion_counts(interactions) -> pd.DataFrame:
    """Interactions and completed interactions per ``journey_stage`` and ``touchpoint``
    (``journey_stage, touchpoint, completed, n``) from the log, pandas or Ibis."""
    if not isinstance(interactions, pd.DataFrame):
        t = interactions
        _require_columns({"journey_stage", "touchpoint", "completed"}, t.columns, "interactions")
        g = t.group_by(["journey_stage", "touchpoint"]).aggregate(
            completed=t["completed"].fill_null(False).cast("int64").sum(),
            n=t["completed"].count(),
        )
        return g.to_pandas().sort_values(["journey_stage", "touchpoint"]).reset_index(drop=True)
    _require_columns(
        {"journey_stage", "touchpoint", "completed"}, interactions.columns, "interactions"
    )
    ok = interactions["completed"].astype("boolean").fillna(False).astype(bool)
    d = interactions[["journey_stage", "touchpoint"]].assign(completed=ok.to_numpy(), n=1)
    return d.groupby(["journey_stage", "touchpoint"], as_index=False)[["completed", "n"]].sum()


def journey_evidence(
    funnel: pd.DataFrame | None,
    completion: pd.DataFrame | None,
    survey: pd.DataFrame | None,
    dimensions: Mapping[str, Sequence[str]],
    *,
    stages: Sequence[str] = (),
    goal_stage: str = "check_in",
    scale: tuple[float, float] = (1, 10),
    min_base: int = 30,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Evidence of action 6.

    Goal completion and friction come from step 05's ``journey_funnel`` when it has
    ``stage`` and ``n`` columns (the share of the first stage's customers who reach
    ``goal_stage``); otherwise from the log's :func:`completion_counts`: the product of the
    completion rates of the ``stages`` before ``goal_stage``, and as hot spots the
    touchpoints that lose the most interactions. The dimensions are scored from the survey:
    the top-two-box share of their attributes' ratings.

    Returns ``(evidence, friction, dimensions)``.
    """
    rows = []
    friction = pd.DataFrame()
    if funnel is not None and {"stage", "n"} <= set(funnel.columns) and len(funnel):
        f = funnel.groupby("stage", sort=False)["n"].sum()
        if goal_stage in f.index and f.iloc[0] > 0:
            k, n = int(f[goal_stage]), int(f.iloc[0])
            lo, hi = wilson(k, n)
            rows.append(
                _row(
                    "win_journey",
                    "goal_completion",
                    f"Customers starting a journey who reach {goal_stage}",
                    k / n,
                    n,
                    lo=lo,
                    hi=hi,
                    note="from the journey funnel (step 05)",
                )
            )
        f2 = f.to_frame("n").reset_index()
        f2["drop_off"] = 1 - f2["n"] / f2["n"].shift(1)
        friction = (
            f2.dropna().sort_values("drop_off", ascending=False).rename(columns={"stage": "where"})
        )
    elif completion is not None and len(completion):
        g = completion[completion["n"] >= min_base].copy()
        g = g.rename(columns={"completed": "sum", "n": "count"})
        if len(g):
            g["completion"] = g["sum"] / g["count"]
            ci = [wilson(int(a), int(b)) for a, b in zip(g["sum"], g["count"], strict=True)]
            g["ci_low"], g["ci_high"] = [c[0] for c in ci], [c[1] for c in ci]
            g["lost"] = g["count"] - g["sum"]
            friction = (
                g.rename(columns={"count": "n", "sum": "completed", "touchpoint": "where"})
                .sort_values("lost", ascending=False)
                .reset_index(drop=True)
            )
        if len(g) and "journey_stage" in g and stages and goal_stage in stages:
            before = [s for s in stages[: stages.index(goal_stage)] if s in set(g["journey_stage"])]
            st = g[g["journey_stage"].isin(before)].groupby("journey_stage")[["sum", "count"]].sum()
            if len(st):
                p = st["sum"] / st["count"]
                value = float(p.prod())
                # delta method on the log of the product of independent stage rates
                se = math.sqrt(float(((1 - p) / (st["count"] * p)).sum()))
                rows.append(
                    _row(
                        "win_journey",
                        "goal_completion",
                        f"Journeys that get through {', '.join(before)} to {goal_stage}",
                        value,
                        int(st["count"].get(before[0], st["count"].iloc[0])),
                        lo=value * math.exp(-1.96 * se),
                        hi=min(1.0, value * math.exp(1.96 * se)),
                        note="product of the stages' completion rates in the interaction log "
                        "(no journey funnel from step 05)",
                    )
                )
    dims = []
    if survey is not None:
        top = scale[1] - 1
        for dim, cols in dimensions.items():
            cols = [c for c in cols if c in survey.columns]
            if not cols:
                continue
            vals = survey[cols].to_numpy(float)
            ok = np.isfinite(vals)
            n = int(ok.sum())
            if n < min_base:
                continue
            k = int((vals[ok] >= top).sum())
            lo, hi = wilson(k, n)
            dims.append(
                {
                    "dimension": dim,
                    "attributes": ", ".join(cols),
                    "mean_rating": float(np.nanmean(vals)),
                    "top2": k / n,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": n,
                }
            )
    dims_df = pd.DataFrame(
        dims, columns=["dimension", "attributes", "mean_rating", "top2", "ci_low", "ci_high", "n"]
    )
    if len(dims_df):
        rows.append(
            _row(
                "win_journey",
                "journey_dimensions_top2",
                "Mean top-two-box share over navigation, quality, breadth, price, convenience",
                float(dims_df["top2"].mean()),
                int(dims_df["n"].sum()),
                note="weakest: " + dims_df.sort_values("top2").iloc[0]["dimension"],
            )
        )
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS), friction, dims_df


# ======================================================================================
# Maturity
# ======================================================================================
@dataclass
class MaturityModel:
    """Thresholds of every maturity metric and the actions' default efforts."""

    metrics: dict[str, dict[str, Any]]
    actions: dict[str, dict[str, Any]]
    source: str

    def table(self) -> pd.DataFrame:
        rows = [
            {
                "metric": m,
                "action": s["action"],
                "label": s.get("label", m),
                "higher_is_better": bool(s.get("higher_is_better", True)),
                "thresholds": list(s["thresholds"]),
                "rationale": " ".join(str(s.get("rationale", "")).split()),
            }
            for m, s in self.metrics.items()
        ]
        return pd.DataFrame(rows)


def _check_thresholds(metric: str, spec: Mapping[str, Any], file: str) -> None:
    th = spec.get("thresholds")
    hib = bool(spec.get("higher_is_better", True))
    ok = (
        isinstance(th, list | tuple)
        and len(th) == 4
        and all(isinstance(x, int | float) for x in th)
    )
    if ok:
        diffs = np.diff(np.asarray(th, float))
        ok = bool((diffs > 0).all()) if hib else bool((diffs < 0).all())
    if not ok:
        order = "increasing" if hib else "decreasing (lower is better)"
        raise ConfigError(
            f"Maturity metric {metric!r}: thresholds must be four {order} numbers, the values "
            f"that reach levels 2, 3, 4 and 5; got {th!r}.",
            file=file,
            column=f"metrics.{metric}.thresholds",
            rule="four monotone cut-points",
            fix="Write e.g. thresholds: [0.2, 0.4, 0.6, 0.8].",
        )
    if spec.get("action") not in ACTIONS:
        raise ConfigError(
            f"Maturity metric {metric!r}: action {spec.get('action')!r} is not one of the six.",
            file=file,
            column=f"metrics.{metric}.action",
            rule="one of " + ", ".join(ACTIONS),
            fix="Use one of the six action keys.",
        )


def load_maturity(
    actions_config: Any = None, engagement: str | Path | None = None
) -> MaturityModel:
    """The maturity thresholds: the shipped ``templates/maturity.yml``, then the engagement's
    ``actions.maturity_file`` (relative to the engagement folder), then its inline
    ``actions.maturity`` overrides, each layer replacing what it names."""

    def read(path: Path) -> dict:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"Cannot read the maturity thresholds {path}: {exc}",
                file=str(path),
                rule="readable YAML",
                fix="Start from templates/maturity.yml.",
            ) from None
        if not isinstance(raw, dict) or "metrics" not in raw:
            raise ConfigError(
                f"{path} has no 'metrics:' mapping.",
                file=str(path),
                rule="maturity file layout",
                fix="Start from templates/maturity.yml.",
            )
        return raw

    base = read(DEFAULT_MATURITY_FILE)
    metrics = {k: dict(v) for k, v in base["metrics"].items()}
    actions = {k: dict(v) for k, v in (base.get("actions") or {}).items()}
    source = "templates/maturity.yml"
    if actions_config is not None and getattr(actions_config, "maturity_file", None):
        path = Path(actions_config.maturity_file)
        if not path.is_absolute() and engagement is not None:
            root = Path(engagement)
            path = (root if root.is_dir() else root.parent) / path
        over = read(path)
        for k, v in over["metrics"].items():
            metrics[k] = {**metrics.get(k, {}), **v}
        for k, v in (over.get("actions") or {}).items():
            actions[k] = {**actions.get(k, {}), **v}
        source += f" + {path.name}"
    inline = getattr(actions_config, "maturity", None) or {}
    for k, v in inline.items():
        given = v.model_dump(exclude_none=True) if hasattr(v, "model_dump") else dict(v)
        if k not in metrics and "action" not in given:
            raise ConfigError(
                f"actions.maturity.{k}: not a maturity metric "
                f"(known: {', '.join(sorted(metrics))}).",
                column=f"actions.maturity.{k}",
                rule="known maturity metric",
                fix="Correct the name, or give the new metric an action and a label.",
            )
        metrics[k] = {**metrics.get(k, {}), **given}
    if inline:
        source += " + engagement.yml"
    for k, v in metrics.items():
        _check_thresholds(k, v, source)
    return MaturityModel(metrics, actions, source)


def maturity_level(value: float, thresholds: Sequence[float], higher_is_better: bool) -> int:
    """1 + the number of cut-points ``value`` reaches (``>=``, or ``<=`` when lower is
    better)."""
    th = np.asarray(thresholds, float)
    if higher_is_better:
        return int(1 + (value >= th).sum())
    return int(1 + (value <= th).sum())


def score_maturity(
    evidence: pd.DataFrame, model: MaturityModel
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score each scored metric and each action.

    Returns ``(metrics, actions)``: ``metrics`` has every evidence row that has thresholds,
    with ``level`` (1-5), ``threshold_next`` (the value that reaches the next level) and the
    thresholds beside the measured value; ``actions`` one row per action with ``maturity``
    (mean of its metrics' levels), ``n_metrics`` and a note when nothing could be measured.
    """
    rows = []
    for _, e in evidence.iterrows():
        spec = model.metrics.get(e["metric"])
        if spec is None or not np.isfinite(e["value"]):
            continue
        hib = bool(spec.get("higher_is_better", True))
        th = list(spec["thresholds"])
        lvl = maturity_level(float(e["value"]), th, hib)
        rows.append(
            {
                **e.to_dict(),
                "level": lvl,
                "thresholds": " / ".join(f"{t:g}" for t in th),
                "threshold_next": th[lvl - 1] if lvl < 5 else np.nan,
                "higher_is_better": hib,
                "rationale": " ".join(str(spec.get("rationale", "")).split()),
            }
        )
    metrics = pd.DataFrame(rows)
    acts = []
    for key, title in ACTIONS.items():
        m = metrics[metrics["action"] == key] if len(metrics) else metrics
        acts.append(
            {
                "action": key,
                "title": title,
                "maturity": float(m["level"].mean()) if len(m) else np.nan,
                "n_metrics": len(m),
                "note": "" if len(m) else "not measurable with these data",
            }
        )
    return metrics, pd.DataFrame(acts)


# ======================================================================================
# Value at stake, next steps and the plan
# ======================================================================================
def action_plan(
    actions: pd.DataFrame,
    value: pd.DataFrame,
    model: MaturityModel,
    initiatives: Sequence[Any] = (),
) -> pd.DataFrame:
    """Actions and initiatives on impact x effort (1-5 each).

    An action's impact is the room to grow (``6 - maturity``, capped 1-5), one point higher
    when its value at stake is in the upper half of the actions that have one; its effort
    is the shipped default of ``templates/maturity.yml`` (with its rationale). Initiatives
    from engagement.yml keep the impact and effort the consultant gave, else inherit their
    action's. Priority: ``measure first`` when the action could not be scored (impact 3
    until it is), ``quick win`` (impact >= 3, effort < 3), ``major project`` (impact >= 3,
    effort >= 3), ``fill-in`` (impact < 3, effort < 3), else ``deprioritise``. Values at
    stake of one action (e.g. community and app) are summed.
    """
    v = (
        value.groupby("action")["value_at_stake"].sum(min_count=1)
        if len(value)
        else pd.Series(dtype=float)
    )
    valued = v.dropna()
    upper = set(valued[valued >= valued.median()].index) if len(valued) > 1 else set()
    rows = []
    for _, a in actions.iterrows():
        mat = a["maturity"]
        impact = 3.0 if not np.isfinite(mat) else float(np.clip(6 - mat, 1, 5))
        if a["action"] in upper:
            impact = min(5.0, impact + 1)
        eff = model.actions.get(a["action"], {})
        rows.append(
            {
                "kind": "action",
                "name": a["title"],
                "action": a["action"],
                "maturity": mat,
                "impact": impact,
                "effort": float(eff.get("effort", 3)),
                "owner": "",
                "basis": "impact from maturity gap and value at stake; effort: "
                + " ".join(str(eff.get("effort_rationale", "shipped default")).split()),
            }
        )
    by_action = {r["action"]: r for r in rows}
    for ini in initiatives:
        act = ini.action
        base = by_action.get(act, {"impact": 3.0, "effort": 3.0, "maturity": np.nan})
        rows.append(
            {
                "kind": "initiative",
                "name": ini.name,
                "action": act,
                "maturity": base["maturity"],
                "impact": float(ini.impact) if ini.impact is not None else base["impact"],
                "effort": float(ini.effort) if ini.effort is not None else base["effort"],
                "owner": ini.owner or "",
                "basis": ini.note or "from engagement.yml",
            }
        )
    plan = pd.DataFrame(rows)
    hi_i, lo_e = plan["impact"] >= 3, plan["effort"] < 3
    unmeasured = plan["maturity"].isna().to_numpy()
    plan["priority"] = np.select(
        [unmeasured, hi_i & lo_e, hi_i & ~lo_e, ~hi_i & lo_e],
        ["measure first", "quick win", "major project", "fill-in"],
        "deprioritise",
    )
    order = {
        "quick win": 0,
        "major project": 1,
        "measure first": 2,
        "fill-in": 3,
        "deprioritise": 4,
    }
    plan["rank"] = plan["priority"].map(order)
    plan = plan.sort_values(["rank", "impact", "effort"], ascending=[True, False, True])
    return plan.drop(columns="rank").reset_index(drop=True)


def next_steps(metrics: pd.DataFrame, model: MaturityModel) -> pd.DataFrame:
    """One recommended next step per action, phrased from its weakest scored metric: what
    was measured, the threshold of the next level, and the action's step template."""
    rows = []
    for key, title in ACTIONS.items():
        m = metrics[metrics["action"] == key] if len(metrics) else metrics
        tmpl = " ".join(str(model.actions.get(key, {}).get("next_step", "")).split())
        if not len(m):
            rows.append(
                {
                    "action": key,
                    "title": title,
                    "next_step": "Collect the data this action needs first: "
                    + (tmpl or "see the evidence section."),
                }
            )
            continue
        w = m.sort_values("level").iloc[0]
        val = _fmt_value(w["value"], w["unit"])
        if w["level"] < 5:
            nxt = _fmt_value(w["threshold_next"], w["unit"])
            lead = (
                f"{w['label']} is {val} (level {w['level']}); reaching {nxt} lifts it to "
                f"level {w['level'] + 1}."
            )
        else:
            lead = f"{w['label']} is {val}, already at level 5: keep it there."
        rows.append({"action": key, "title": title, "next_step": f"{lead} {tmpl}".strip()})
    return pd.DataFrame(rows)


def _fmt_value(x: float, unit: str) -> str:
    if not np.isfinite(x):
        return "n/a"
    if unit == "share":
        return f"{x:.1%}"
    if unit == "relative":
        return f"{x:+.1%}"
    if unit == "count":
        return f"{x:,.0f}"
    return f"{x:.3g}"


_JOINING = {"community": "Joining the community", "app": "Installing the app"}


def programme_findings(
    community: Sequence[AdoptionEffects], *, charts: Mapping[str, str] | None = None
) -> list:
    """Findings of step 06a: what joining the community or installing the app changed in
    joiners' stays, against the raw comparison.

    ``charts``: the notebook's chart reference (:attr:`~rox_helpers.artifacts.Finding.chart`)
    for ``community`` (one finding per programme, ``{k}`` its position in ``community``; see
    :func:`~rox_helpers.artifacts.chart_namer`).
    """
    from rox_helpers.artifacts import Finding, chart_namer, interval_text

    chart = chart_namer(charts, ("community",))

    out = []
    for k, res in enumerate(community, start=1):
        h, nv = res.headline("stays"), res.naive("stays")
        if not np.isfinite(h["estimate"]):
            continue
        covers_one = h["ci_low"] <= 1 <= h["ci_high"]
        out.append(
            Finding(
                step="06a",
                headline=f"{_JOINING.get(res.treatment, 'Joining the ' + res.treatment)} "
                "changes joiners' stays by "
                f"{h['estimate'] - 1:+.0%} (95% CI {h['ci_low'] - 1:+.0%} to "
                f"{h['ci_high'] - 1:+.0%}), not the {nv['estimate']:.1f}x a raw comparison "
                "suggests",
                evidence=[
                    f"{int(h['n_treated']):,} joiners in the estimand against "
                    f"{int(h['n_control']):,} comparable non-joiners; "
                    f"{res.counts['no_history']:,} joiners without history before joining and "
                    f"{res.counts['trimmed']:,} outside the overlap left out",
                    "Doubly robust difference-in-differences; covariate balance "
                    f"{'met' if res.balance['balanced'].all() else 'NOT met'} "
                    f"(largest |SMD| after weighting "
                    f"{res.balance['smd_after'].abs().max():.2f})",
                    f"E-value {h['e_value']:.2f}: an unmeasured confounder would need a risk "
                    f"ratio of {h['e_value']:.2f} with both joining and stays to explain the "
                    f"effect away ({h['e_value_ci']:.2f} to move the interval to include none)",
                ],
                so_what="Self-selection explains most of the raw gap: value the programme on "
                "the adjusted figure."
                + (" The interval includes no effect." if covers_one else ""),
                confidence="medium" if not covers_one else "low",
                chart=chart("community", k),
                evidence_kind="adjusted_comparison",
                base=f"{int(h['n_treated']):,} joiners against {int(h['n_control']):,} "
                "comparable non-joiners",
                interval=interval_text(
                    h["ci_low"] - 1,
                    h["ci_high"] - 1,
                    "{:+.0%}",
                    of="change in joiners' stays",
                ),
            )
        )
    return out


def actions_findings(
    actions: pd.DataFrame,
    metrics: pd.DataFrame,
    steps: pd.DataFrame,
    plan: pd.DataFrame,
    anonymity: pd.DataFrame | None = None,
    *,
    charts: Mapping[str, str] | None = None,
) -> list:
    """Findings of step 06 for the report (the programme effects are step 06a's: see
    :func:`programme_findings`).

    ``charts``: the notebook's chart reference (:attr:`~rox_helpers.artifacts.Finding.chart`)
    for each kind of finding that has one, by kind: ``maturity``, ``anonymity``,
    ``quick_wins`` (see :func:`~rox_helpers.artifacts.chart_namer`).
    """
    from rox_helpers.artifacts import Finding, chart_namer

    chart = chart_namer(charts, ("maturity", "anonymity", "quick_wins"))
    rule = "a score against the thresholds of templates/maturity.yml"

    out = []
    scored = actions.dropna(subset=["maturity"])
    if len(scored):
        weakest = scored.sort_values("maturity").iloc[0]
        strongest = scored.sort_values("maturity").iloc[-1]
        ev = [
            f"{r['title']}: {r['maturity']:.1f} of 5 ({r['n_metrics']} measured metric(s))"
            for _, r in actions.iterrows()
            if np.isfinite(r["maturity"])
        ]
        out.append(
            Finding(
                step="06",
                headline=f"Most mature: {strongest['title']} ({strongest['maturity']:.1f}/5); "
                f"least mature: {weakest['title']} ({weakest['maturity']:.1f}/5)",
                evidence=ev,
                so_what="Scores are against the thresholds in "
                "templates/maturity.yml (each with its rationale), not a benchmark of peers.",
                confidence="medium",
                chart=chart("maturity"),
                evidence_kind="score",
                base=f"{int(scored['n_metrics'].sum()):,} measured metrics over "
                f"{len(scored):,} actions",
                no_interval=f"{rule}; the metrics behind it carry their own intervals",
            )
        )
    if anonymity is not None and len(anonymity):
        worst = anonymity.sort_values("share_below_floor", ascending=False).iloc[0]
        out.append(
            Finding(
                step="06",
                headline=f"Re-identification risk: {worst['share_below_floor']:.1%} of the "
                f"records of {worst['table']} sit in groups smaller than the anonymity floor",
                evidence=[
                    f"{r['table']}: k = {r['k_min']}, {r['records_below_floor']:,} of "
                    f"{r['n_records']:,} records in classes under the floor over "
                    f"{r['quasi_identifiers']}"
                    for _, r in anonymity.iterrows()
                ],
                so_what="Coarsen or drop quasi-identifiers in any customer-level file shared "
                "beyond the analysis team.",
                confidence="high",
                chart=chart("anonymity"),
                evidence_kind="count",
                base=f"{int(worst['n_records']):,} records of {worst['table']}",
                no_interval="an exact count of every record",
            )
        )
    top = plan[plan["priority"] == "quick win"].head(3)
    if len(top):
        out.append(
            Finding(
                step="06",
                headline="Quick wins: " + "; ".join(top["name"]),
                evidence=[
                    f"{r['title']}: {r['next_step']}"
                    for _, r in steps.iterrows()
                    if r["action"] in set(top["action"])
                ],
                so_what="Owners are left for the consultant to assign in engagement.yml "
                "(actions.initiatives).",
                confidence="medium",
                chart=chart("quick_wins"),
                evidence_kind="score",
                base=f"{len(plan):,} actions and initiatives in the plan",
                no_interval="priority by the plan's rule: impact (from the maturity gap and "
                "value at stake) against effort",
            )
        )
    return out


__all__ = [
    "ACTIONS",
    "AdoptionEffects",
    "AdoptionPanel",
    "MaturityModel",
    "action_plan",
    "actions_findings",
    "adoption_effects",
    "adoption_panel",
    "aipw_att",
    "behaviour_evidence",
    "collected_fields",
    "community_evidence",
    "completion_counts",
    "data_respect_evidence",
    "e_value",
    "e_value_ci",
    "fuse_evidence",
    "journey_dimensions",
    "journey_evidence",
    "k_anonymity",
    "lead_up_stages",
    "load_maturity",
    "magic_moments_evidence",
    "maturity_level",
    "monthly_activity",
    "next_steps",
    "programme_findings",
    "released_tables_anonymity",
    "rr_from_difference",
    "score_maturity",
    "smd",
    "wilson",
]
