"""The ROX business case: what customers are worth, and what an experience investment returns.

Customer lifetime value (non-contractual)
-----------------------------------------
A hotel guest who stops coming never says so, so the relationship is modelled as in
Fader, Hardie & Lee (2005a), fitted by maximum likelihood with scipy (the published
log-likelihoods, written out below; the ``lifetimes`` package is unmaintained):

* **BG/NBD** for repeat stays. While alive, a guest stays as a Poisson process with rate
  ``lambda ~ Gamma(r, alpha)``; after each stay the guest drops out with probability
  ``p ~ Beta(a, b)``. Per guest the data are ``x`` (repeat stays), ``t_x`` (time of the last
  stay since the first) and ``T`` (time since the first stay to the end of the period).
* **Gamma-Gamma** for spend (Fader, Hardie & Lee 2005b; Fader & Hardie 2013): the values
  of a guest's stays are ``Gamma(p, nu)`` with ``nu ~ Gamma(q, gamma)``, independent of
  the stay process. The expected spend per stay of a guest with ``x`` stays averaging
  ``zbar`` is ``p (gamma + x zbar) / (p x + q - 1)``.

Both are checked against the published CDNOW estimates in the tests. On an engagement
the models are fitted on a calibration period and their predicted stays compared with
what each guest actually did in the held-out months (:func:`holdout_check`); the CLV
itself is computed from a fit on the whole log (:func:`customer_value`).

Hotel data (assumptions, stated in the notebook):

* a stay is a distinct arrival day (rows at the ``stay_stage`` journey stage, completed
  where the log says so); time is measured in months of 365.25/12 days;
* spend per stay is a guest's revenue in the period (bookings and on-property spend)
  divided by their stays: room revenue is booked before the stay it pays for, so revenue
  cannot be split cleanly into first and repeat stays, and the mean over all the period's
  stays is used (Fader & Hardie use repeat purchases only);
* CLV is the discounted margin of a guest's expected stays over the horizon: the value of
  the existing customers, not of customers yet to be acquired.

Investment scenarios
--------------------
Each scenario of ``value.scenarios`` (engagement.yml) changes one measure for the customers
it reaches. The change is carried down the chain the earlier notebooks estimated:

1. **linkage model** (notebook 04): the total effect of the changed measure on each rated
   attribute of the guest survey (e.g. check-in minutes -> check-in speed rating), per unit
   of change, with its bootstrap draws; a change made directly to a rated attribute skips
   this step;
2. **driver model** (notebook 03, :func:`rox_helpers.drivers.what_if`): the change in the
   0-10 recommend score per rating point, per ``driver_groups`` group (trip purpose: the
   same attribute matters differently on business and leisure trips), averaged with the
   survey-weighted group mix of the reached customers' responses;
3. **loyalty model** (:func:`rox_helpers.loyalty.return_rate_within`): the rate ratio of the
   next stay per recommend point within guests (each guest who answered more than once
   compared with themselves), the effect of a lasting change on a guest's own return rate
   (comparing guests with each other attenuates it through their unobserved propensity to
   travel); the reached customers' stay rate is multiplied by
   ``exp(beta * change in recommend score)``;
4. **CLV model**: their expected stays and spend over the horizon (BG/NBD and Gamma-Gamma),
   so the extra stays, revenue, margin and 12-month retention follow.

ROX ratio = present value of the extra margin / present value of the investment (one-off
cost plus running costs); NPV = the difference; payback = months until the undiscounted
extra margin, net of running costs, has repaid the one-off cost (:func:`business_case`).

Uncertainty: Monte Carlo over the models' parameter uncertainty (seeded): bootstrap draws
of the linkage model, normal draws matching the driver model's bootstrap interval and the
loyalty model's Wald interval, and the CLV models' asymptotic normal on the log scale.
The percentile interval of each figure is shown; :func:`tornado` varies one assumption at
a time. What is *not* in the interval: the model structure (a multiplicative effect on the
stay rate, stays of the reached customers only, no new customers), the margin and cost
figures the client gives, and the observational nature of the driver and loyalty links.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005a). "Counting your customers" the easy
way: an alternative to the Pareto/NBD model. Marketing Science 24, 275-284.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005b). RFM and CLV: using iso-value curves
for customer base analysis. Journal of Marketing Research 42, 415-430.
Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
brucehardie.com/notes/025.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import gammaln, hyp2f1

from rox_helpers.artifacts import Finding, chart_namer, interval_text
from rox_helpers.config import EngagementConfig, ValueScenario
from rox_helpers.errors import ConfigError, DataValidationError, RoxError
from rox_helpers.features import exact_sum

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "ScenarioBasis",
    "bgnbd_loglik",
    "business_case",
    "clv_by_segment",
    "customer_value",
    "discount_factors",
    "evaluate_scenario",
    "gamma_gamma_loglik",
    "holdout_check",
    "revenue_scale",
    "scenario_basis",
    "scenario_table",
    "stay_summary",
    "tornado",
    "use_widgets",
    "value_findings",
]

DAYS_PER_MONTH = 365.25 / 12
NOT_SEGMENTED = "not segmented"


# --------------------------------------------------------------------------------------
# BG/NBD and Gamma-Gamma
# --------------------------------------------------------------------------------------
def bgnbd_loglik(params: Sequence[float], x, t_x, T) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (Fader, Hardie & Lee 2005a, eq. 6).

    ``params`` = ``(r, alpha, a, b)``; ``x`` repeat transactions, ``t_x`` recency and ``T``
    age, in the same time unit as ``alpha``.
    """
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


class _BGNBDLoglik:
    """:func:`bgnbd_loglik` for fixed ``x, t_x, T`` and any parameters, with the same values
    element by element: the special functions are evaluated once per distinct ``x`` (a
    few dozen stay counts) and the logarithms once per distinct ``T`` and ``t_x`` (days),
    then looked up, instead of once per customer at every step of the optimiser."""

    def __init__(self, x, t_x, T) -> None:
        self.x = np.asarray(x, dtype="float64")
        self.ux, self.ix = np.unique(self.x, return_inverse=True)
        self.uT, self.iT = np.unique(np.asarray(T, dtype="float64"), return_inverse=True)
        self.ut, self.it = np.unique(np.asarray(t_x, dtype="float64"), return_inverse=True)

    def __call__(self, params: Sequence[float]) -> np.ndarray:
        r, alpha, a, b = (float(v) for v in params)
        x, ux, ix = self.x, self.ux, self.ix
        a1 = gammaln(r + ux)[ix] - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + ux)[ix] - gammaln(b) - gammaln(a + b + ux)[ix]
        a3 = -(r + x) * np.log(alpha + self.uT)[self.iT]
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(
                x > 0,
                np.log(a)
                - np.log(np.maximum(b + ux - 1, 1e-300))[ix]
                - (r + x) * np.log(alpha + self.ut)[self.it],
                -np.inf,
            )
        return a1 + a2 + np.logaddexp(a3, a4)


def gamma_gamma_loglik(params: Sequence[float], x, zbar) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood of the mean spend ``zbar`` over ``x``
    transactions (Fader & Hardie 2013, eq. 3); ``params`` = ``(p, q, gamma)``."""
    p, q, g = (float(v) for v in params)
    x, z = np.asarray(x, dtype="float64"), np.asarray(zbar, dtype="float64")
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(z)
        + px * np.log(x)
        - (px + q) * np.log(g + x * z)
    )


def _hessian(f, theta: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    k = len(theta)
    h = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            e_i, e_j = np.eye(k)[i] * step, np.eye(k)[j] * step
            v = (
                f(theta + e_i + e_j)
                - f(theta + e_i - e_j)
                - f(theta - e_i + e_j)
                + f(theta - e_i - e_j)
            ) / (4 * step * step)
            h[i, j] = h[j, i] = v
    return h


LOG_BOUND = 15.0  # parameters are estimated on the log scale within exp(-15) .. exp(15)


def _fit_ml(negll, start: np.ndarray, names: tuple[str, ...]):
    """Maximum likelihood on log parameters: (estimate, covariance of the log parameters,
    log-likelihood). L-BFGS-B within :data:`LOG_BOUND` (Nelder-Mead if it stalls). A
    parameter at a bound (e.g. BG/NBD's ``a`` -> 0 when nobody seems to lapse) gets no
    standard error of its own: the likelihood is flat there."""
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    res = optimize.minimize(
        negll,
        start,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 2000},
    )
    if not res.success:  # polish where the quasi-Newton steps stalled
        res2 = optimize.minimize(
            negll,
            res.x,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 600, "xatol": 1e-7, "fatol": 1e-9},
        )
        res = res2 if res2.fun <= res.fun else res
    theta = res.x
    at_bound = np.abs(theta) > LOG_BOUND - 0.5
    free = ~at_bound
    cov = np.zeros((len(theta), len(theta)))
    H = _hessian(lambda th: negll(np.where(free, th, theta)), theta)[np.ix_(free, free)]
    vals, vecs = np.linalg.eigh((H + H.T) / 2)
    keep = vals > 1e-9 * max(vals.max(), 1e-300)
    # a flat direction (e.g. a -> 0 with b large: nobody seems to lapse) gets no spread
    cov[np.ix_(free, free)] = (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T
    flat = [n for n, b in zip(names, at_bound, strict=True) if b] + [""] * int((~keep).sum())
    return np.exp(theta), cov, -float(res.fun), len(flat)


class _Fitted:
    _names: tuple[str, ...] = ()
    params_: pd.Series
    cov_log_: np.ndarray
    loglik_: float
    n_: int

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    @property
    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors and 95% intervals (delta method on the log scale)."""
        self._check_is_fitted()
        se_log = np.sqrt(np.diag(self.cov_log_))
        est = self.params_.to_numpy()
        return pd.DataFrame(
            {
                "parameter": list(self._names),
                "estimate": est,
                "se": est * se_log,
                "ci_low": est * np.exp(-1.96 * se_log),
                "ci_high": est * np.exp(1.96 * se_log),
            }
        )

    def sample_params(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` parameter draws from the asymptotic normal of the log parameters.

        Directions the data barely pin down (log-scale variance above 1, e.g. BG/NBD's
        ``a`` and ``b`` together when nobody seems to lapse: a ridge of the likelihood where
        the normal approximation fails) are held at the estimate; :attr:`ridge_` counts
        them."""
        self._check_is_fitted()
        mean = np.log(self.params_.to_numpy())
        vals, vecs = np.linalg.eigh(self.cov_log_)
        keep = (vals > 0) & (vals <= 1.0)
        z = rng.standard_normal((n, int(keep.sum())))
        draws = mean + (z * np.sqrt(vals[keep])) @ vecs[:, keep].T
        return np.exp(np.clip(draws, -LOG_BOUND, LOG_BOUND))

    @property
    def ridge_(self) -> int:
        """Directions of the log parameters with variance above 1 (not sampled)."""
        self._check_is_fitted()
        return int((np.linalg.eigvalsh(self.cov_log_) > 1.0).sum())


class BetaGeoModel(_Fitted):
    """BG/NBD model of repeat transactions (Fader, Hardie & Lee 2005a).

    Parameters are estimated by maximum likelihood (:meth:`fit`); after fitting,
    ``params_`` (``r``, ``alpha``, ``a``, ``b``), ``cov_log_`` (covariance of their logs),
    ``loglik_`` and ``n_`` are set, and :attr:`summary` gives standard errors.
    """

    _names = ("r", "alpha", "a", "b")

    def fit(self, x, t_x, T) -> BetaGeoModel:
        x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
        if len(x) == 0:
            raise DataValidationError(
                "no customers to fit the BG/NBD model on",
                rule="at least one customer with a first stay in the period",
                fix="Check the stay stage and the period.",
            )
        if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
            raise DataValidationError(
                "BG/NBD needs x >= 0 and 0 <= t_x <= T for every customer",
                rule="0 <= recency <= age",
                fix="Recompute the summary from the transaction log.",
            )
        scale = float(np.mean(T)) or 1.0
        loglik = _BGNBDLoglik(x, t_x, T)

        def negll(theta):
            r, alpha, a, b = np.exp(theta)
            ll = loglik((r, alpha * scale, a, b))
            return -float(np.sum(ll)) if np.all(np.isfinite(ll)) else 1e100

        est, cov, ll, self.flat_directions_ = _fit_ml(negll, np.zeros(4), self._names)
        est[1] *= scale  # alpha back in the data's time unit (log-scale covariance unchanged)
        self.params_ = pd.Series(est, index=list(self._names))
        self.cov_log_, self.loglik_, self.n_ = cov, ll, len(x)
        return self

    def _p(self, params) -> tuple[float, float, float, float]:
        self._check_is_fitted()
        src = self.params_.to_numpy() if params is None else params
        return tuple(float(v) for v in src)  # type: ignore[return-value]

    def expected_transactions(self, t, params=None) -> np.ndarray:
        """E[X(t)]: expected repeat transactions of a new customer in ``(0, t]``."""
        r, alpha, a, b = self._p(params)
        t = np.asarray(t, dtype="float64")
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))

    def conditional_expected_transactions(self, t, x, t_x, T, params=None) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected transactions in the next ``t`` (eq. 10); broadcasts."""
        r, alpha, a, b = self._p(params)
        t, x, t_x, T = (np.asarray(v, dtype="float64") for v in (t, x, t_x, T))
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        return head * body * self.probability_alive(x, t_x, T, params)

    def probability_alive(self, x, t_x, T, params=None) -> np.ndarray:
        """P(alive | x, t_x, T) at the end of the observation."""
        r, alpha, a, b = self._p(params)
        x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
        with np.errstate(divide="ignore", over="ignore"):
            odds = np.where(
                x > 0,
                a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + t_x)) ** (r + x),
                0.0,
            )
        return 1.0 / (1.0 + odds)


class GammaGammaModel(_Fitted):
    """Gamma-Gamma model of the spend per transaction (Fader & Hardie 2013).

    Fitted on customers with at least one valued transaction: ``x`` transactions averaging
    ``zbar`` (> 0). ``params_``: ``p``, ``q``, ``gamma``.
    """

    _names = ("p", "q", "gamma")

    def fit(self, x, zbar) -> GammaGammaModel:
        x, z = np.asarray(x, dtype="float64"), np.asarray(zbar, dtype="float64")
        ok = (x > 0) & (z > 0) & np.isfinite(z)
        if ok.sum() < 3:
            raise DataValidationError(
                "too few customers with spend to fit the Gamma-Gamma model",
                column="revenue",
                rule="at least 3 customers with a positive mean spend",
                fix="Check that the interaction log carries revenue.",
            )
        x, z = x[ok], z[ok]
        scale = float(np.mean(z))

        def negll(theta):
            p, q, g = np.exp(theta)
            ll = gamma_gamma_loglik((p, q, g), x, z / scale)
            return -float(np.sum(ll)) if np.all(np.isfinite(ll)) else 1e100

        est, cov, _ll, self.flat_directions_ = _fit_ml(negll, np.log([1.0, 2.0, 1.0]), self._names)
        est[2] *= scale
        # the likelihood of the rescaled spend differs by a constant: report the data's
        self.params_ = pd.Series(est, index=list(self._names))
        self.cov_log_, self.n_ = cov, int(ok.sum())
        self.loglik_ = float(np.sum(gamma_gamma_loglik(est, x, z)))
        return self

    def expected_spend(self, x, zbar, params=None) -> np.ndarray:
        """E[M | x, zbar]; customers with no valued transaction get the population mean
        ``p gamma / (q - 1)``."""
        self._check_is_fitted()
        p, q, g = (float(v) for v in (self.params_.to_numpy() if params is None else params))
        x, z = np.asarray(x, dtype="float64"), np.asarray(zbar, dtype="float64")
        z = np.where(np.isfinite(z) & (x > 0), z, 0.0)
        return p * (g + x * z) / (p * x + q - 1)


# --------------------------------------------------------------------------------------
# Customer summaries from the interaction log (aggregated in the engine)
# --------------------------------------------------------------------------------------
def _stays(interactions, stay_stage: str):
    t = interactions
    cols = set(t.columns)
    for need in ("customer_id", "timestamp", "journey_stage"):
        if need not in cols:
            raise DataValidationError(
                f"the business case needs interactions.{need}",
                file="interactions",
                column=need,
                rule="required column for stays",
                fix=f"Map the {need} column in engagement.yml (data.interactions.columns).",
            )
    s = t.filter(t.customer_id.notnull() & (t.journey_stage == stay_stage))
    if "completed" in cols:
        s = s.filter(s.completed.fill_null(True))
    return s.select("customer_id", day=s.timestamp.date())


def _months(delta: pd.Series) -> pd.Series:
    return delta.dt.days.astype("float64") / DAYS_PER_MONTH


def stay_summary(
    interactions,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str,
    stay_stage: str = "check_in",
) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma inputs per customer with a stay in ``[start, end)``.

    Parameters
    ----------
    interactions : ibis.Table
        Canonical interaction log (``customer_id``, ``timestamp``, ``journey_stage``;
        ``revenue`` and ``completed`` when present).
    start, end : Timestamp or str
        The period (``start`` defaults to the start of the log).
    stay_stage : str, default="check_in"
        Journey stage whose (completed) rows are stays; one stay per customer and day.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``stays``, ``x`` (repeat stays), ``t_x`` and ``T`` (months
        from the first stay to the last one and to ``end``), ``revenue`` (all revenue in the
        period), ``spend_per_stay`` (revenue / stays).
    """
    end = pd.Timestamp(end)
    s = _stays(interactions, stay_stage)
    s = s.filter(s.day < end.date())
    t = interactions.filter(interactions.customer_id.notnull())
    t = t.filter(t.timestamp < end)
    if start is not None:
        start = pd.Timestamp(start)
        s = s.filter(s.day >= start.date())
        t = t.filter(t.timestamp >= start)
    d = s.distinct()
    agg = d.group_by("customer_id").aggregate(stays=d.count(), first=d.day.min(), last=d.day.max())
    out = agg.to_pandas().set_index("customer_id")
    out.index = out.index.astype("str")
    if "revenue" in interactions.columns:
        rev = t.group_by("customer_id").aggregate(revenue=exact_sum(t.revenue.fill_null(0)))
        rev = rev.to_pandas().set_index("customer_id")["revenue"]
        rev.index = rev.index.astype("str")
        out["revenue"] = rev.reindex(out.index).fillna(0.0)
    else:
        out["revenue"] = np.nan
    first, last = pd.to_datetime(out["first"]), pd.to_datetime(out["last"])
    out["stays"] = out["stays"].astype("int64")
    out["x"] = out["stays"] - 1
    out["t_x"] = _months(last - first)
    out["T"] = _months(end.normalize() - first)
    out["spend_per_stay"] = out["revenue"] / out["stays"]
    out = out.drop(columns=["first", "last"]).sort_index()
    return out[["stays", "x", "t_x", "T", "revenue", "spend_per_stay"]]


def _holdout_counts(interactions, customers: pd.Index, start, end, stay_stage: str):
    """Stays per customer and per holdout month in ``[start, end)`` (engine), for the
    calibration customers only."""
    s = _stays(interactions, stay_stage).distinct()
    s = s.filter((s.day >= pd.Timestamp(start).date()) & (s.day < pd.Timestamp(end).date()))
    per = s.group_by("customer_id", "day").aggregate(n=s.count()).to_pandas()
    per = per.sort_values(["customer_id", "day"], ignore_index=True)  # the engine's order varies
    per["customer_id"] = per["customer_id"].astype("str")
    per = per[per["customer_id"].isin(customers)]
    per["month"] = np.ceil(_months(pd.to_datetime(per["day"]) - pd.Timestamp(start)) + 1e-9)
    return per


# --------------------------------------------------------------------------------------
# Holdout check and customer value
# --------------------------------------------------------------------------------------
def _segment_of(index: pd.Index, segments: pd.DataFrame | None) -> pd.Series:
    if segments is None or segments.empty:
        return pd.Series(NOT_SEGMENTED, index=index)
    name = "name" if "name" in segments.columns else "segment"
    m = segments.drop_duplicates("customer_id").set_index(segments["customer_id"].astype("str"))
    return m[name].astype("str").reindex(index).fillna(NOT_SEGMENTED)


def _frequency_bucket(x: pd.Series, top: int = 7) -> pd.Series:
    return x.clip(upper=top).map(lambda v: f"{int(v)}+" if v >= top else str(int(v)))


#: a segment gets its own BG/NBD fit from this many customers (the pooled fit below)
MIN_SEGMENT_FIT = 300


def _fit_by_group(summary: pd.DataFrame, groups: pd.Series, min_customers: int = MIN_SEGMENT_FIT):
    """A pooled BG/NBD fit (key ``None``) and one per group with enough customers: a single
    gamma-distributed stay rate cannot describe segments whose paces differ several-fold."""
    models = {None: BetaGeoModel().fit(summary["x"], summary["t_x"], summary["T"])}
    counts = groups.value_counts()
    if len(counts) > 1:
        for g in counts.index[counts >= min_customers]:
            d = summary[groups == g]
            models[g] = BetaGeoModel().fit(d["x"], d["t_x"], d["T"])
    return models


def _model_key(groups: pd.Series, models: dict) -> np.ndarray:
    return np.array([g if g in models else None for g in groups], dtype=object)


def _per_model(models: dict, keys: np.ndarray, func) -> np.ndarray:
    """Apply ``func(model, mask)`` per model and stitch the rows back in order."""
    out = None
    for k, m in models.items():
        mask = (
            np.array([x == k for x in keys])
            if k is not None
            else np.array([x is None for x in keys])
        )
        if not mask.any():
            continue
        part = func(m, mask)
        if out is None:
            out = np.zeros((len(keys), *np.shape(part)[1:]))
        out[mask] = part
    return out if out is not None else np.zeros(len(keys))


@dataclass
class HoldoutCheck:
    """The CLV model's check against a holdout period (see :func:`holdout_check`)."""

    table: pd.DataFrame
    monthly: pd.DataFrame
    model: BetaGeoModel
    calibration_start: pd.Timestamp
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp
    #: the BG/NBD fits used: pooled (key None) and per segment with enough customers
    models: dict = field(default_factory=dict)

    @property
    def total(self) -> pd.Series:
        return self.table[self.table["by"] == "all"].iloc[0]


def holdout_check(
    interactions,
    *,
    holdout_months: int = 12,
    stay_stage: str = "check_in",
    segments: pd.DataFrame | None = None,
    end: pd.Timestamp | str | None = None,
) -> HoldoutCheck:
    """Fit the BG/NBD model on a calibration period and compare its predictions with the
    stays each customer actually made in the ``holdout_months`` that follow.

    Returns
    -------
    HoldoutCheck
        ``table``: one row per group (``by`` = ``all``, ``calibration stays`` -- repeat stays
        in the calibration period, 0 .. 7+ -- and ``segment``): ``group``, ``n`` customers,
        ``predicted`` and ``actual`` holdout stays per customer, ``predicted_total``,
        ``actual_total``, ``ratio`` (predicted / actual). ``monthly``: predicted and actual
        stays of the calibration customers in each holdout month, and cumulated.
    """
    start = pd.Timestamp(interactions.timestamp.min().to_pyarrow().as_py()).normalize()
    if end is None:
        last = _stays(interactions, stay_stage).day.max().to_pyarrow().as_py()
        end = pd.Timestamp(last) + pd.Timedelta(days=1)
    end = pd.Timestamp(end)
    cal_end = end - pd.DateOffset(months=holdout_months)
    if cal_end - start < pd.Timedelta(days=90):
        raise DataValidationError(
            f"the log covers {start.date()} to {end.date()}: too short for a calibration "
            f"period and {holdout_months} months of holdout",
            file="interactions",
            rule="at least 3 months of calibration before the holdout",
            fix="Lower value.holdout_months in engagement.yml.",
        )
    cal = stay_summary(interactions, start=start, end=cal_end, stay_stage=stay_stage)
    seg = _segment_of(cal.index, segments)
    models = _fit_by_group(cal, seg)
    model = models[None]
    keys = _model_key(seg, models)
    h = _months(pd.Series([end - cal_end])).iloc[0]

    def expect(g):
        return _per_model(
            models,
            keys,
            lambda m, k: m.conditional_expected_transactions(
                g, cal["x"][k], cal["t_x"][k], cal["T"][k]
            ),
        )

    pred = expect(h)
    per = _holdout_counts(interactions, cal.index, cal_end, end, stay_stage)
    actual = per.groupby("customer_id")["n"].sum().reindex(cal.index).fillna(0.0)
    frame = pd.DataFrame(
        {
            "predicted": pred,
            "actual": actual.to_numpy(),
            "bucket": _frequency_bucket(cal["x"]).to_numpy(),
            "segment": seg.to_numpy(),
        },
        index=cal.index,
    )
    rows = []
    splits = [("all", None), ("calibration stays", "bucket")]
    if segments is not None and not segments.empty:
        splits.append(("segment", "segment"))
    for by, col in splits:
        groups = [("All customers", frame)] if col is None else frame.groupby(col, sort=True)
        for g, d in groups:
            rows.append(
                {
                    "by": by,
                    "group": str(g),
                    "n": len(d),
                    "predicted": d["predicted"].mean(),
                    "actual": d["actual"].mean(),
                    "predicted_total": d["predicted"].sum(),
                    "actual_total": d["actual"].sum(),
                }
            )
    table = pd.DataFrame(rows)
    table["ratio"] = table["predicted_total"] / table["actual_total"].where(
        table["actual_total"] > 0
    )
    n_months = int(np.ceil(h - 1e-9))
    grid = np.arange(0, n_months + 1, dtype="float64")
    grid[-1] = h
    cum = np.stack(
        [
            model.conditional_expected_transactions(g, cal["x"], cal["t_x"], cal["T"]).sum()
            for g in grid
        ]
    )
    act = per.groupby("month")["n"].sum().reindex(range(1, n_months + 1)).fillna(0.0)
    monthly = pd.DataFrame(
        {
            "month": range(1, n_months + 1),
            "predicted": np.diff(cum),
            "actual": act.to_numpy(),
        }
    )
    monthly["predicted_cumulative"] = monthly["predicted"].cumsum()
    monthly["actual_cumulative"] = monthly["actual"].cumsum()
    return HoldoutCheck(table, monthly, model, start, cal_end, end, models)


@dataclass
class CustomerValue:
    """Per-customer CLV inputs and results (see :func:`customer_value`)."""

    customers: pd.DataFrame
    stays_by_month: np.ndarray  # customers x months: expected stays in each future month
    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel
    end: pd.Timestamp
    margin: float
    discount_rate: float
    horizon_months: int
    notes: list[str] = field(default_factory=list)
    #: BG/NBD fits: pooled (key None) and per segment; each customer's key
    models: dict = field(default_factory=dict)
    model_keys: np.ndarray | None = None


def discount_factors(n_months: int, discount_rate: float) -> np.ndarray:
    """``(1 + rate) ** (-m / 12)`` for months ``m = 1..n``: cash at the end of each month,
    discounted at a yearly rate."""
    return (1.0 + discount_rate) ** (-np.arange(1, n_months + 1) / 12.0)


def revenue_scale(units: pd.DataFrame | None, interactions, *, months: int = 12) -> float:
    """Units' revenue over the log's revenue in the last ``months`` full months both cover.

    The interaction log holds only the guests the client can identify (CRM members who
    consented to analytics); the hotels' revenue (``units.revenue``) holds every guest's.
    Scaling the log's extra value by this ratio assumes that the other guests are reached
    and respond like the log's. Returns 1.0 when either revenue is missing.
    """
    if units is None or "revenue" not in units.columns or "revenue" not in interactions.columns:
        return 1.0
    u = units.dropna(subset=["revenue"]).copy()
    u["month"] = pd.to_datetime(u["period"]).dt.to_period("M")
    t = interactions.filter(interactions.revenue.notnull())
    by = t.group_by(month=t.timestamp.truncate("M")).aggregate(revenue=exact_sum(t.revenue))
    log = by.to_pandas().sort_values("month", ignore_index=True)  # added up below, in order
    log["month"] = pd.to_datetime(log["month"]).dt.to_period("M")
    both = sorted(set(u["month"]) & set(log["month"]))
    # the log's last month is usually partial: keep months before it
    both = [m for m in both if m < log["month"].max()][-months:]
    if not both:
        return 1.0
    num = u.loc[u["month"].isin(both), "revenue"].sum()
    den = log.loc[log["month"].isin(both), "revenue"].sum()
    return float(num / den) if den > 0 and num > 0 else 1.0


def _monthly_stays(model: BetaGeoModel, summary: pd.DataFrame, n_months: int, params=None):
    """Expected stays of each customer in each of the next ``n_months`` months: the
    differences of :meth:`BetaGeoModel.conditional_expected_transactions` over months
    0..n, with the same values. Its expectation part depends on the customer only through
    ``(x, T)``, so the hypergeometric function runs once per distinct pair (not per
    customer and month), and the customers x months matrix is filled block by block (no
    full-size temporaries)."""
    t = np.arange(0, n_months + 1, dtype="float64")[None, :]
    x = summary["x"].to_numpy(dtype="float64")
    t_x = summary["t_x"].to_numpy(dtype="float64")
    T = summary["T"].to_numpy(dtype="float64")
    out = np.empty((len(x), n_months))
    if not len(x):
        return out
    pairs, inv = np.unique(np.column_stack([x, T]), axis=0, return_inverse=True)
    inv = inv.ravel()
    r, alpha, a, b = model._p(params)
    ux, uT = pairs[:, :1], pairs[:, 1:]
    z = t / (alpha + uT + t)
    head = (a + b + ux - 1) / (a - 1)
    body = 1 - ((alpha + uT) / (alpha + uT + t)) ** (r + ux) * hyp2f1(
        r + ux, b + ux, a + b + ux - 1, z
    )
    expected = head * body
    alive = model.probability_alive(x, t_x, T, params)
    for lo in range(0, len(x), 100_000):
        rows = slice(lo, lo + 100_000)
        cum = expected[inv[rows]]
        cum *= alive[rows, None]
        out[rows] = np.diff(cum, axis=1)
    return out


def customer_value(
    interactions,
    *,
    margin: float,
    discount_rate: float,
    horizon_months: int,
    stay_stage: str = "check_in",
    segments: pd.DataFrame | None = None,
    extra_months: int = 12,
) -> CustomerValue:
    """Fit BG/NBD and Gamma-Gamma on the whole log and value every customer.

    ``clv`` = margin x expected spend per stay x expected stays in each month of the horizon,
    discounted at ``discount_rate`` (yearly). ``extra_months`` of expected stays beyond the
    horizon are kept for the sensitivity analysis (a longer horizon).

    Returns
    -------
    CustomerValue
        ``customers``: per customer the summary of :func:`stay_summary` plus ``segment``,
        ``p_alive``, ``expected_stays`` (horizon), ``expected_stays_12m``, ``expected_spend``
        (per stay), ``clv``.
    """
    last = _stays(interactions, stay_stage).day.max().to_pyarrow().as_py()
    if last is None:
        raise DataValidationError(
            f"no stays (rows at journey stage {stay_stage!r}) in the interaction log",
            file="interactions",
            column="journey_stage",
            rule="stays are rows at value.stay_stage",
            fix="Set value.stay_stage to the stage that marks an arrival.",
        )
    end = pd.Timestamp(last) + pd.Timedelta(days=1)
    summ = stay_summary(interactions, end=end, stay_stage=stay_stage)
    seg = _segment_of(summ.index, segments)
    models = _fit_by_group(summ, seg)
    keys = _model_key(seg, models)
    bg = models[None]
    gg = GammaGammaModel().fit(summ["stays"], summ["spend_per_stay"])
    notes = []
    if bg.flat_directions_ or bg.ridge_:
        notes.append(
            f"The BG/NBD model finds little sign of guests lapsing (a = {bg.params_['a']:.2g}, "
            f"b = {bg.params_['b']:.3g}, poorly determined): guests are expected to keep "
            "their own pace; the holdout check is the test of that, and the intervals hold "
            "this part of the model at its estimate."
        )
    valued = summ["spend_per_stay"] > 0
    if valued.sum() > 10:
        rho = stats.spearmanr(summ.loc[valued, "stays"], summ.loc[valued, "spend_per_stay"])[0]
        if abs(rho) > 0.3:
            notes.append(
                f"Spend per stay and the number of stays are correlated (Spearman {rho:.2f}); "
                "the Gamma-Gamma model assumes they are independent."
            )
    n_months = horizon_months + extra_months
    per_month = _per_model(models, keys, lambda m, k: _monthly_stays(m, summ[k], n_months))
    spend = gg.expected_spend(summ["stays"], summ["spend_per_stay"])
    df = discount_factors(horizon_months, discount_rate)
    out = summ.copy()
    out["segment"] = seg
    out["p_alive"] = _per_model(
        models, keys, lambda m, k: m.probability_alive(summ["x"][k], summ["t_x"][k], summ["T"][k])
    )
    out["expected_stays"] = per_month[:, :horizon_months].sum(axis=1)
    out["expected_stays_12m"] = per_month[:, :12].sum(axis=1)
    out["expected_spend"] = spend
    out["clv"] = margin * spend * (per_month[:, :horizon_months] @ df)
    return CustomerValue(out, per_month, bg, gg, end, margin, discount_rate, horizon_months, notes)


def clv_by_segment(
    value: CustomerValue,
    *,
    anonymity_floor: int = 5,
    reliability_base: int = 30,
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """CLV per segment: ``segment``, ``n`` customers, ``p_alive``, ``expected_stays``,
    ``expected_spend``, ``clv`` (mean per customer) with ``ci_low``/``ci_high`` (bootstrap of
    customers; the CLV models' parameters taken as known), ``total_clv``, ``share_of_value``,
    ``reliable``, ``suppressed`` and ``note``; a total row ``All customers`` last."""
    d = value.customers
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    rows = []
    split = d["segment"].nunique() > 1 or (d["segment"] != NOT_SEGMENTED).any()
    groups = [*(d.groupby("segment", sort=True) if split else []), ("All customers", d)]
    total = float(d["clv"].sum())
    for name, g in groups:
        v = g["clv"].to_numpy()
        n = len(v)
        # resamples drawn in blocks (the same random numbers as one n_boot x n draw): a
        # million customers x 500 resamples would need gigabytes at once
        means = np.array([np.nan])
        if n:
            means = np.empty(n_boot)
            step = max(1, 2_000_000 // n)
            for lo in range(0, n_boot, step):
                m = min(step, n_boot - lo)
                means[lo : lo + m] = v[rng.integers(0, n, size=(m, n))].mean(axis=1)
        hidden = n < anonymity_floor
        rows.append(
            {
                "segment": str(name),
                "n": n,
                "p_alive": g["p_alive"].mean(),
                "expected_stays": g["expected_stays"].mean(),
                "expected_spend": g["expected_spend"].mean(),
                "clv": v.mean() if n else np.nan,
                "ci_low": np.quantile(means, alpha),
                "ci_high": np.quantile(means, 1 - alpha),
                "total_clv": v.sum(),
                "share_of_value": v.sum() / total if total else np.nan,
                "reliable": n >= reliability_base and not hidden,
                "suppressed": hidden,
                "note": "hidden: fewer people than the anonymity floor"
                if hidden
                else ""
                if n >= reliability_base
                else "indicative: base below the reliability threshold",
            }
        )
    out = pd.DataFrame(rows)
    num = [
        "p_alive",
        "expected_stays",
        "expected_spend",
        "clv",
        "ci_low",
        "ci_high",
        "total_clv",
        "share_of_value",
    ]
    out.loc[out["suppressed"], num] = np.nan
    return out


# --------------------------------------------------------------------------------------
# Business-case arithmetic
# --------------------------------------------------------------------------------------
def business_case(
    benefits,
    *,
    cost: float,
    running_cost: float = 0.0,
    discount_rate: float,
) -> dict[str, np.ndarray | float]:
    """NPV, ROX ratio and payback of a stream of monthly benefits.

    Parameters
    ----------
    benefits : array-like, shape (..., n_months)
        Extra margin in months ``1..n`` (cash at the end of each month); leading axes are
        Monte Carlo draws.
    cost : float
        One-off investment at month 0.
    running_cost : float, default=0
        Yearly running cost, paid in twelfths at the end of each month.
    discount_rate : float
        Yearly discount rate.

    Returns
    -------
    dict
        ``pv_benefit``, ``pv_cost`` (cost + discounted running costs), ``npv`` (their
        difference), ``rox`` (``pv_benefit / pv_cost``), ``payback_months`` (months until
        the undiscounted benefits net of running costs repay ``cost``, interpolated within
        the month; NaN if not within the horizon; 0 when nothing is invested).
    """
    b = np.asarray(benefits, dtype="float64")
    n = b.shape[-1]
    df = discount_factors(n, discount_rate)
    monthly_run = running_cost / 12.0
    pv_benefit = b @ df
    pv_cost = cost + monthly_run * df.sum()
    net = b - monthly_run
    cum = np.cumsum(net, axis=-1)
    reached = cum >= cost
    first = np.argmax(reached, axis=-1)
    any_reached = reached.any(axis=-1)
    prev = np.where(
        first > 0, np.take_along_axis(cum, np.maximum(first - 1, 0)[..., None], -1)[..., 0], 0.0
    )
    step = np.take_along_axis(net, first[..., None], -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(step > 0, (cost - prev) / step, 1.0)
    payback = np.where(any_reached, first + np.clip(frac, 0.0, 1.0), np.nan)
    if cost <= 0:
        payback = np.zeros_like(payback)
    with np.errstate(divide="ignore", invalid="ignore"):
        rox = np.where(pv_cost > 0, pv_benefit / pv_cost, np.nan)
    out = {
        "pv_benefit": pv_benefit,
        "pv_cost": pv_cost,
        "npv": pv_benefit - pv_cost,
        "rox": rox,
        "payback_months": payback,
    }
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in out.items()}


# --------------------------------------------------------------------------------------
# Scenarios: the chain from a change to value
# --------------------------------------------------------------------------------------
@dataclass
class ScenarioBasis:
    """Everything a scenario's value depends on, at the point estimate and per Monte Carlo
    draw, so that cost, change, horizon and discount rate can be varied live
    (:func:`evaluate_scenario`)."""

    scenario: ValueScenario
    chain: pd.DataFrame  # the links: step, link, estimate (per unit of change), ci_low, ci_high
    driver_coefficients: pd.DataFrame  # per group and driver: share_of_reached, coef, se, n
    nps_per_unit: float  # change in the recommend score per unit of change
    nps_per_unit_draws: np.ndarray
    beta: float  # log stay-rate ratio per recommend point
    beta_draws: np.ndarray
    clv_factor_draws: np.ndarray  # CLV-model parameter uncertainty, as a factor on revenue
    revenue_by_month: np.ndarray  # expected revenue of the reached customers, months 1..
    stays_by_month: np.ndarray
    p_alive: np.ndarray  # reached customers
    stays_12m: np.ndarray
    n_customers: int
    n_all_customers: int
    margin: float
    notes: list[str] = field(default_factory=list)
    #: per-draw link values (for the tornado): name -> draws of the per-unit factor
    link_draws: dict[str, np.ndarray] = field(default_factory=dict)
    #: revenue and stays scaled from the log to the business (:func:`revenue_scale`)
    scale: float = 1.0


def _survey_measures(config: EngagementConfig, survey: pd.DataFrame) -> dict[str, str]:
    """measure name -> survey column, for measures that are rated attributes of the survey."""
    return {
        m.name: m.column
        for _, m in config.measures()
        if m.table == "cx_survey"
        and m.column in survey.columns
        and m.column in config.codebook
        and m.aggregate == "mean"
    }


def check_scenarios(config: EngagementConfig, known: Sequence[str]) -> None:
    """Raise ConfigError naming every scenario whose measure is not known (did you mean)."""
    problems = []
    for i, s in enumerate(config.value.scenarios):
        if s.measure not in known:
            close = difflib.get_close_matches(s.measure, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"value.scenarios.{i}.measure: {s.measure!r} is not usable{hint}")
    if problems:
        raise ConfigError(
            "; ".join(problems),
            file="engagement.yml",
            column="value.scenarios",
            rule="a scenario changes a measure of the linkage model or a rated attribute of "
            f"the survey ({', '.join(sorted(known))})",
            fix="Use one of the measures listed.",
        )


def _driver_coefficients(
    survey: pd.DataFrame,
    columns: list[str],
    *,
    outcome: str,
    drivers: list[str],
    group: str | None,
    reached: pd.Series,
    n_boot: int,
    seed: int,
    rng: np.random.Generator,
    n_draws: int,
) -> tuple[dict[str, float], dict[str, np.ndarray], pd.DataFrame]:
    """Survey-weighted mix of per-group recommend-score coefficients of ``columns``:
    point, normal draws matching each group's bootstrap interval, and a table."""
    from rox_helpers.drivers import what_if

    weight = "weight" if "weight" in survey.columns else None
    cluster = "unit_id" if "unit_id" in survey.columns else None
    have = survey[survey[outcome].notna()]
    if group is not None and group in have.columns and have[group].notna().any():
        keys = sorted(have[group].dropna().astype("str").unique())
        lab = have[group].astype("str")
    else:
        keys, lab = ["all"], pd.Series("all", index=have.index)
    # group mix among the reached customers' responses (survey-weighted)
    w = have[weight].astype("float64") if weight else pd.Series(1.0, index=have.index)
    mine = reached.reindex(have.index).fillna(False).astype(bool)
    if not mine.any():
        mine = pd.Series(True, index=have.index)
    mix = w[mine].groupby(lab[mine]).sum()
    mix = (mix / mix.sum()).reindex(keys).fillna(0.0)
    point = dict.fromkeys(columns, 0.0)
    draws = {c: np.zeros(n_draws) for c in columns}
    rows = []
    z = stats.norm.ppf(0.975)
    for k in keys:
        d = have[lab == k]
        if mix[k] == 0 or len(d) < len(drivers) + 10:
            continue
        res = what_if(
            d,
            columns,
            outcome=outcome,
            drivers=drivers,
            shift=1.0,
            weight=weight,
            cluster=cluster,
            # only the linear model's mean is used: no promoter/detractor logistic fits (the
            # resamples and the mean's rows are the same without them)
            promoter_min=None,
            detractor_max=None,
            n_boot=n_boot,
            random_state=seed,
        )
        res = res[res["quantity"] == "mean_outcome"].set_index("driver")
        for c in columns:
            r = res.loc[c]
            coef = float(r["coef"])
            se = (
                (float(r["ci_high"]) - float(r["ci_low"]))
                / (2 * z)
                / max(float(r["mean_shift"]), 1e-9)
            )
            point[c] += mix[k] * coef
            draws[c] += mix[k] * rng.normal(coef, se if np.isfinite(se) else 0.0, n_draws)
            rows.append(
                {
                    "group": k,
                    "driver": c,
                    "share_of_reached": mix[k],
                    "coef": coef,
                    "se": se,
                    "n": int(r["n"]),
                }
            )
    return point, draws, pd.DataFrame(rows)


def scenario_basis(
    scenario: ValueScenario,
    *,
    config: EngagementConfig,
    survey: pd.DataFrame,
    customers: pd.DataFrame | None,
    value: CustomerValue,
    followup: pd.DataFrame,
    linkage_model=None,
    scale: float = 1.0,
    n_boot: int = 200,
    seed: int | None = None,
) -> ScenarioBasis:
    """Carry one scenario down the chain (linkage -> drivers -> loyalty -> CLV).

    Parameters
    ----------
    scenario : ValueScenario
        From ``config.value.scenarios``.
    config : EngagementConfig
    survey : pandas.DataFrame
        Canonical ``cx_survey`` (with ``customer_id``, the outcome and the rated attributes).
    customers : pandas.DataFrame, optional
        Canonical customers; needed when the scenario ``applies_to`` a column of it.
    value : CustomerValue
        From :func:`customer_value`.
    followup : pandas.DataFrame
        From :func:`rox_helpers.loyalty.followup_table`.
    linkage_model : LinkageModel, optional
        From :func:`rox_helpers.linkage.fit_linkage`; needed unless the scenario changes a
        rated attribute directly.
    scale : float, default=1
        Factor from the log's revenue to the revenue the business case stands for
        (:func:`revenue_scale`); 1 values the log's customers only.
    n_boot : int, default=200
        Bootstrap resamples of the driver model.
    seed : int, optional
        Seed of the Monte Carlo draws (``config.seed`` by default).
    """
    from rox_helpers.loyalty import return_rate_within

    seed = config.seed if seed is None else seed
    n_draws = config.value.n_draws
    rng = np.random.default_rng(seed)
    outcome = config.outcome.column
    rated = _survey_measures(config, survey)
    names = list(linkage_model.names) if linkage_model is not None else []
    check_scenarios(config, sorted(set(rated) | set(names)))
    notes: list[str] = []
    links: dict[str, np.ndarray] = {}
    chain_rows = []

    # 1. linkage: change in each rated attribute per unit of change
    if scenario.measure in rated:
        per_unit = {rated[scenario.measure]: (1.0, np.ones(n_draws))}
        chain_rows.append(
            {
                "step": "1 linkage",
                "link": f"{scenario.measure} changed directly",
                "estimate": 1.0,
                "ci_low": 1.0,
                "ci_high": 1.0,
            }
        )
    else:
        m = linkage_model
        j = names.index(scenario.measure)
        T = m.total_matrix()
        B = m.draws["B"]
        if len(B):
            pick = rng.integers(0, len(B), n_draws)
            Tb = np.stack([m.total_matrix(b)[:, j] for b in B])
            Tb = T[:, j] + m.small_sample_factor * (Tb - T[:, j])  # as linkage.what_if does
            Tb = Tb[pick]
        else:
            Tb = np.tile(T[:, j], (n_draws, 1))
            notes.append("The linkage model has no bootstrap draws: its link is taken as known.")
        per_unit = {
            rated[n]: (float(T[i, j]), Tb[:, i])
            for i, n in enumerate(names)
            if n in rated and abs(T[i, j]) > 1e-9 * max(1.0, np.abs(T[:, j]).max())
        }
        if not per_unit:
            raise RoxError(
                f"{scenario.measure!r} reaches no rated attribute of the survey in the linkage "
                "model, so its effect on guests cannot be followed",
                column=f"value.scenarios.{scenario.name}",
                rule="the changed measure has a path to a rated attribute (linkage.paths)",
                fix="Add the path to linkage.paths, or target a rated attribute directly.",
            )
        for col, (pt, dr) in per_unit.items():
            label = config.codebook[col].label if col in config.codebook else col
            chain_rows.append(
                {
                    "step": "1 linkage",
                    "link": f"{label} (rating points) per unit of {scenario.measure}",
                    "estimate": pt,
                    "ci_low": np.quantile(dr, 0.025),
                    "ci_high": np.quantile(dr, 0.975),
                }
            )
            links[f"linkage: {label}"] = dr

    # who is reached
    reached_ids, n_all = _reached(scenario, customers, value)
    # membership tests on Python strings (pandas' string isin of a million ids takes seconds)
    reached_index = pd.Index(list(reached_ids), dtype=object)
    reached_resp = (
        pd.Series(
            survey["customer_id"].astype("str").astype(object).isin(reached_index).to_numpy(),
            index=survey.index,
        )
        if len(reached_ids)
        else (pd.Series(False, index=survey.index))
    )
    # 2. drivers: recommend points per rating point, mixed over the reached customers' groups
    drivers = [c for c in survey.columns if c in config.codebook and c.startswith("att_")]
    drivers = drivers or list(rated.values())
    cols = list(per_unit)
    coef, coef_draws, coef_table = _driver_coefficients(
        survey,
        cols,
        outcome=outcome,
        drivers=drivers,
        group=config.value.driver_groups,
        reached=reached_resp,
        n_boot=n_boot,
        seed=seed,
        rng=rng,
        n_draws=n_draws,
    )
    for col in cols:
        label = config.codebook[col].label if col in config.codebook else col
        chain_rows.append(
            {
                "step": "2 drivers",
                "link": f"recommend score (0-10) per point of {label}",
                "estimate": coef[col],
                "ci_low": np.quantile(coef_draws[col], 0.025),
                "ci_high": np.quantile(coef_draws[col], 0.975),
            }
        )
        links[f"driver weight: {label}"] = coef_draws[col]
    nps_point = sum(per_unit[c][0] * coef[c] for c in cols)
    nps_draws = sum(per_unit[c][1] * coef_draws[c] for c in cols)

    # 3. loyalty: log stay-rate ratio per recommend point, within guests (a lasting
    # improvement acts on each guest's own return rate; comparing guests with each other
    # attenuates it through their unobserved propensity to travel)
    lr = return_rate_within(followup, outcome, horizon=12)
    r = lr.iloc[0]
    if not np.isfinite(r.get("ratio", np.nan)):
        raise RoxError(
            "the loyalty model could not estimate the return rate per recommend point",
            column=outcome,
            rule="enough identified respondents followed in the interaction log",
            fix="Check that survey responses carry customer ids found in the log.",
        )
    beta = float(np.log(r["ratio"]))
    se_b = (np.log(r["ratio_ci_high"]) - np.log(r["ratio_ci_low"])) / (2 * stats.norm.ppf(0.975))
    beta_draws = rng.normal(beta, se_b, n_draws)
    chain_rows.append(
        {
            "step": "3 loyalty",
            "link": "stay-rate ratio per recommend point (within guests)",
            "estimate": float(r["ratio"]),
            "ci_low": float(r["ratio_ci_low"]),
            "ci_high": float(r["ratio_ci_high"]),
        }
    )
    links["loyalty: stay rate per recommend point"] = beta_draws

    # 4. CLV: the reached customers' expected revenue by month, and its parameter uncertainty
    cust = value.customers
    sel = cust.index.astype(object).isin(reached_index)
    spend = cust["expected_spend"].to_numpy()
    revenue = scale * (value.stays_by_month[sel] * spend[sel, None]).sum(axis=0)
    stays = scale * value.stays_by_month[sel].sum(axis=0)
    factor = _clv_factor(value, sel, rng, n_draws)
    links["CLV model: expected revenue of the reached customers"] = factor
    chain_rows.append(
        {
            "step": "4 CLV",
            "link": "expected revenue of the reached customers over the horizon",
            "estimate": float(revenue[: value.horizon_months].sum()),
            "ci_low": float(np.quantile(factor, 0.025) * revenue[: value.horizon_months].sum()),
            "ci_high": float(np.quantile(factor, 0.975) * revenue[: value.horizon_months].sum()),
        }
    )
    chain = pd.DataFrame(chain_rows)
    return ScenarioBasis(
        scenario=scenario,
        chain=chain,
        driver_coefficients=coef_table,
        nps_per_unit=float(nps_point),
        nps_per_unit_draws=np.asarray(nps_draws, dtype="float64"),
        beta=beta,
        beta_draws=beta_draws,
        clv_factor_draws=factor,
        revenue_by_month=revenue,
        stays_by_month=stays,
        p_alive=cust.loc[sel, "p_alive"].to_numpy(),
        stays_12m=cust.loc[sel, "expected_stays_12m"].to_numpy(),
        n_customers=int(sel.sum()),
        n_all_customers=n_all,
        margin=value.margin,
        notes=notes + value.notes,
        link_draws=links,
        scale=float(scale),
    )


def _reached(scenario: ValueScenario, customers: pd.DataFrame | None, value: CustomerValue):
    """Ids of the customers (with stays) a scenario reaches, and how many customers the
    customer table says it reaches in all."""
    ids = value.customers.index
    if scenario.applies_to is None:
        return set(ids), len(ids)
    col = scenario.applies_to
    if customers is None or col not in customers.columns:
        have = [] if customers is None else list(customers.columns)
        close = difflib.get_close_matches(col, have, n=1, cutoff=0.6)
        raise ConfigError(
            f"scenario {scenario.name!r} applies to {col!r}, which is not a column of the "
            "customers table" + (f"; did you mean {close[0]!r}?" if close else ""),
            file="engagement.yml",
            column=f"value.scenarios.{scenario.name}.applies_to",
            rule="applies_to names a yes/no column of the canonical customers table",
            fix="Use a customers column such as app_user, or leave applies_to empty.",
        )
    flag = customers[col]
    try:
        flag = flag.astype("boolean").fillna(False).astype(bool)
    except (TypeError, ValueError):
        raise ConfigError(
            f"customers.{col} is not a yes/no column",
            file="engagement.yml",
            column=f"value.scenarios.{scenario.name}.applies_to",
            rule="applies_to names a yes/no column",
            fix="Use a yes/no column of the customers table.",
        ) from None
    who = set(customers.loc[flag, "customer_id"].astype("str"))
    return who & set(ids), len(who)


def _clv_factor(value: CustomerValue, sel: np.ndarray, rng, n_draws: int, k: int = 100):
    """CLV-model parameter uncertainty as a factor on the reached customers' horizon
    revenue: ``k`` joint draws of the BG/NBD and Gamma-Gamma parameters, evaluated on up to
    400 of the reached customers (the factor is a ratio, so a subsample suffices)."""
    idx = np.flatnonzero(sel)
    if len(idx) == 0:
        return np.ones(n_draws)
    sub = rng.choice(idx, size=min(400, len(idx)), replace=False)
    summ = value.customers.iloc[sub]
    h = value.horizon_months
    models = value.models or {None: value.bgnbd}
    keys = value.model_keys[sub] if value.model_keys is not None else np.full(len(sub), None)
    draws_by = {key: m.sample_params(k, rng) for key, m in models.items()}
    ggp = value.gamma_gamma.sample_params(k, rng)

    def stays(i=None):
        return _per_model(
            models,
            keys,
            lambda m, mask: _monthly_stays(
                m, summ[mask], h, params=None if i is None else draws_by[_key_of(models, m)][i]
            ).sum(axis=1),
        )

    base = (stays() * summ["expected_spend"]).sum()
    f = np.empty(k)
    for i in range(k):
        sp = value.gamma_gamma.expected_spend(summ["stays"], summ["spend_per_stay"], params=ggp[i])
        f[i] = (stays(i) * sp).sum() / base
    return f[rng.integers(0, k, n_draws)]


def _key_of(models: dict, model) -> object:
    return next(k for k, m in models.items() if m is model)


#: quantities of :func:`evaluate_scenario`, with labels
QUANTITIES: dict[str, str] = {
    "change": "Change in the measure",
    "nps_change": "Recommend score (0-10) of reached guests' stays",
    "stay_rate_uplift": "Stay-rate uplift of reached guests",
    "retention_12m_change": "12-month retention of reached guests (points)",
    "extra_stays": "Extra stays over the horizon",
    "extra_revenue": "Extra revenue over the horizon",
    "pv_benefit": "Present value of the extra margin",
    "pv_cost": "Present value of the investment",
    "npv": "Net present value",
    "rox": "ROX ratio (value / investment)",
    "payback_months": "Payback (months)",
}


def _ramp(n: int, ramp_months: int) -> np.ndarray:
    m = np.arange(1, n + 1, dtype="float64")
    return np.ones(n) if ramp_months <= 0 else np.minimum(1.0, m / ramp_months)


def evaluate_scenario(
    basis: ScenarioBasis,
    *,
    cost: float | None = None,
    change: float | None = None,
    horizon_years: int = 3,
    discount_rate: float = 0.08,
    margin: float | None = None,
    running_cost: float | None = None,
    ramp_months: int | None = None,
    level: float = 0.95,
    fixed: dict[str, float] | None = None,
    draws: bool = True,
) -> pd.DataFrame:
    """The scenario's figures at the point estimates and over the Monte Carlo draws.

    Any argument left ``None`` takes the scenario's (or the CLV's) own value. ``fixed``
    pins links at a value for every draw (the tornado): ``nps_per_unit``, ``beta``,
    ``clv_factor``. ``draws=False`` skips the Monte Carlo (no intervals; quicker).

    Returns
    -------
    pandas.DataFrame
        One row per quantity (:data:`QUANTITIES`): ``scenario``, ``quantity``, ``label``,
        ``estimate``, ``ci_low``, ``ci_high``. ``attrs["monthly"]``: the point estimate's
        monthly extra stays, revenue and margin with the cumulative net cash flow.
    """
    s = basis.scenario
    cost = s.cost if cost is None else float(cost)
    change = s.change if change is None else float(change)
    margin = basis.margin if margin is None else float(margin)
    running = s.running_cost if running_cost is None else float(running_cost)
    ramp = s.ramp_months if ramp_months is None else int(ramp_months)
    fixed = fixed or {}
    n = round(horizon_years * 12)
    if n > len(basis.revenue_by_month):
        raise ValueError(
            f"horizon of {horizon_years} years is longer than the {len(basis.revenue_by_month)} "
            "months the CLV was computed for"
        )
    rev, sty, f = basis.revenue_by_month[:n], basis.stays_by_month[:n], _ramp(n, ramp)

    def figures(nps_unit, beta, factor):
        nps_unit, beta, factor = (
            np.atleast_1d(np.asarray(v, dtype="float64")) for v in (nps_unit, beta, factor)
        )
        nps = change * nps_unit
        uplift = np.exp(beta * nps) - 1.0
        extra_rev = uplift[:, None] * f[None, :] * rev[None, :] * factor[:, None]
        extra_stays = (uplift[:, None] * f[None, :] * sty[None, :] * factor[:, None]).sum(axis=1)
        case = business_case(
            margin * extra_rev, cost=cost, running_cost=running, discount_rate=discount_rate
        )
        p, e = basis.p_alive[None, :], basis.stays_12m[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(p > 0, e / p, 0.0)
        k = (1.0 + uplift)[:, None]
        if p.size:  # draws x customers, in blocks of draws (no draws x customers matrix)
            step = max(1, 2_000_000 // p.size)
            ret = np.concatenate(
                [
                    (p * (np.exp(-lam) - np.exp(-k[lo : lo + step] * lam))).mean(axis=1)
                    for lo in range(0, len(k), step)
                ]
            )
        else:
            ret = uplift * 0.0
        return {
            "change": np.full_like(nps, change),
            "nps_change": nps,
            "stay_rate_uplift": uplift,
            "retention_12m_change": ret,
            "extra_stays": extra_stays,
            "extra_revenue": extra_rev.sum(axis=1),
            "pv_benefit": np.atleast_1d(case["pv_benefit"]),
            "pv_cost": np.full_like(nps, case["pv_cost"]),
            "npv": np.atleast_1d(case["npv"]),
            "rox": np.atleast_1d(case["rox"]),
            "payback_months": np.atleast_1d(case["payback_months"]),
        }, extra_rev

    nu = fixed.get("nps_per_unit", basis.nps_per_unit)
    be = fixed.get("beta", basis.beta)
    fa = fixed.get("clv_factor", 1.0)
    point, extra = figures(nu, be, fa)
    nd = len(basis.beta_draws) if draws else 1
    sim, _ = (
        figures(
            np.full(nd, fixed["nps_per_unit"])
            if "nps_per_unit" in fixed
            else basis.nps_per_unit_draws,
            np.full(nd, fixed["beta"]) if "beta" in fixed else basis.beta_draws,
            np.full(nd, fixed["clv_factor"]) if "clv_factor" in fixed else basis.clv_factor_draws,
        )
        if draws
        else ({q: np.full(1, np.nan) for q in QUANTITIES}, None)
    )
    a = (1 - level) / 2
    rows = []
    for q, label in QUANTITIES.items():
        d = sim[q]
        ok = np.isfinite(d)
        lo, hi = np.quantile(d[ok], [a, 1 - a]) if ok.mean() > 0.5 else (np.nan, np.nan)
        rows.append(
            {
                "scenario": s.name,
                "quantity": q,
                "label": label,
                "estimate": float(point[q][0]),
                "ci_low": float(lo),
                "ci_high": float(hi),
            }
        )
    out = pd.DataFrame(rows)
    extra_m = extra[0]
    monthly = pd.DataFrame(
        {
            "month": np.arange(1, n + 1),
            "extra_stays": (np.exp(be * change * nu) - 1) * f * sty * fa,
            "extra_revenue": extra_m,
            "extra_margin": margin * extra_m,
        }
    )
    monthly["cumulative_net"] = (monthly["extra_margin"] - running / 12).cumsum() - cost
    out.attrs = {
        "monthly": monthly,
        "share_payback_within_horizon": float(np.isfinite(sim["payback_months"]).mean())
        if draws
        else np.nan,
        "prob_rox_above_1": float((sim["rox"] > 1).mean()) if draws else np.nan,
    }
    return out


def scenario_table(
    bases: Sequence[ScenarioBasis], *, horizon_years: int, discount_rate: float, level=0.95
) -> pd.DataFrame:
    """Every scenario's figures (:func:`evaluate_scenario`) stacked, with ``n_customers``
    (reached customers with stays), ``cost``, ``prob_rox_above_1``."""
    parts = []
    for b in bases:
        e = evaluate_scenario(
            b, horizon_years=horizon_years, discount_rate=discount_rate, level=level
        )
        prob = e.attrs["prob_rox_above_1"]
        e.attrs = {}  # (the monthly frame stays with evaluate_scenario)
        parts.append(
            e.assign(
                n_customers=b.n_customers,
                cost=b.scenario.cost,
                prob_rox_above_1=prob,
            )
        )
    if not parts:
        return pd.DataFrame(
            columns=[
                "scenario",
                "quantity",
                "label",
                "estimate",
                "ci_low",
                "ci_high",
                "n_customers",
                "cost",
                "prob_rox_above_1",
            ]
        )
    return pd.concat(parts, ignore_index=True)


def tornado(
    basis: ScenarioBasis,
    *,
    horizon_years: int,
    discount_rate: float,
    quantity: str = "rox",
) -> pd.DataFrame:
    """One assumption at a time at its low and high value, the others at their point.

    Assumptions: cost (+-20%), the expected change (``change_range`` or +-50%), margin
    (+-20%), discount rate (+-2 points), horizon (+-1 year), ramp-up (+6 months), and each
    model link at the 2.5% and 97.5% points of its draws.

    Returns
    -------
    pandas.DataFrame
        ``scenario``, ``assumption``, ``low``/``high`` (the input values), ``at_low``,
        ``at_high`` (the quantity), ``base``, ``swing`` (``|at_high - at_low|``), sorted by
        swing, largest first.
    """
    s = basis.scenario
    kw = {"horizon_years": horizon_years, "discount_rate": discount_rate}

    def at(**over) -> float:
        args = {**kw, **over}
        e = evaluate_scenario(basis, draws=False, **args).set_index("quantity")
        return float(e.loc[quantity, "estimate"])

    base = at()
    lo_c, hi_c = s.change_range or (0.5 * s.change, 1.5 * s.change)
    h_lo = max(1, horizon_years - 1)
    h_hi = min(horizon_years + 1, len(basis.revenue_by_month) // 12)
    q = (0.025, 0.975)
    nps_q = np.quantile(basis.nps_per_unit_draws, q)
    beta_q = np.quantile(basis.beta_draws, q)
    fac_q = np.quantile(basis.clv_factor_draws, q)
    specs = [
        ("Investment cost", 0.8 * s.cost, 1.2 * s.cost, "cost"),
        ("Expected change", lo_c, hi_c, "change"),
        ("Margin", 0.8 * basis.margin, min(1.0, 1.2 * basis.margin), "margin"),
        ("Discount rate", max(0.0, discount_rate - 0.02), discount_rate + 0.02, "discount_rate"),
        ("Horizon (years)", h_lo, h_hi, "horizon_years"),
        ("Ramp-up (months)", s.ramp_months, s.ramp_months + 6, "ramp_months"),
    ]
    rows = []
    for name, lo, hi, arg in specs:
        rows.append((name, lo, hi, at(**{arg: lo}), at(**{arg: hi})))
    for name, (lo, hi), key in (
        ("Experience -> recommend score (linkage x drivers)", nps_q, "nps_per_unit"),
        ("Recommend score -> stay rate (loyalty)", beta_q, "beta"),
        ("Customer value (CLV models)", fac_q, "clv_factor"),
    ):
        rows.append((name, lo, hi, at(fixed={key: lo}), at(fixed={key: hi})))
    out = pd.DataFrame(rows, columns=["assumption", "low", "high", "at_low", "at_high"])
    out.insert(0, "scenario", s.name)
    out["base"] = base
    out["swing"] = (out["at_high"] - out["at_low"]).abs()
    return out.sort_values("swing", ascending=False, ignore_index=True)


# --------------------------------------------------------------------------------------
# Live controls and findings
# --------------------------------------------------------------------------------------
def use_widgets(interactive: bool | None = None) -> bool:
    """Whether the scenario cell should show ipywidgets controls.

    ``interactive`` (the notebook parameter) wins when True or False. ``None`` (auto):
    controls only when ipywidgets is installed *and* the kernel was started by a Jupyter
    server for a notebook (JupyterLab sets ``JPY_SESSION_NAME`` in the kernel's environment;
    papermill, nbclient and nbval do not), so ``rox run`` and the report stay static.
    """
    if interactive is False:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return bool(interactive) or bool(os.environ.get("JPY_SESSION_NAME"))


def _money(v: float, currency: str) -> str:
    if not np.isfinite(v):
        return "n/a"
    a = abs(v)
    s = f"{a / 1e6:.2f} M" if a >= 1e6 else f"{a / 1e3:.0f} k" if a >= 1e4 else f"{a:,.0f}"
    return f"{'-' if v < 0 else ''}{currency} {s}"


def value_findings(
    check: HoldoutCheck | None,
    clv: pd.DataFrame | None,
    scenarios: pd.DataFrame | None,
    tornados: dict[str, pd.DataFrame] | None = None,
    *,
    currency: str = "EUR",
    horizon_years: int = 3,
    step: str = "07",
    charts: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Findings of the business case: the CLV model's holdout check, value by segment, and
    each scenario's ROX with its interval and the assumption that matters most.

    ``charts``: the notebook's chart reference (:attr:`~rox_helpers.artifacts.Finding.chart`)
    for each kind of finding that has one, by kind: ``holdout``, ``clv``, ``scenarios``
    (one finding per scenario, ``{k}`` its position in ``scenarios``) (see
    :func:`~rox_helpers.artifacts.chart_namer`)."""
    chart = chart_namer(charts, ("holdout", "clv", "scenarios"))
    out: list[Finding] = []
    if check is not None:
        t = check.total
        ratio = t["ratio"]
        out.append(
            Finding(
                step,
                f"The customer value model predicted {t['predicted_total']:,.0f} repeat stays "
                f"in the {len(check.monthly)} held-out months; guests made "
                f"{t['actual_total']:,.0f} ({ratio - 1:+.0%}).",
                [
                    f"Calibration {check.calibration_start.date()} to "
                    f"{check.calibration_end.date()}, holdout to {check.holdout_end.date()}, "
                    f"{int(t['n']):,} customers (BG/NBD).",
                    *(
                        f"{r.group} repeat stays before: predicted {r.predicted:.2f}, actual "
                        f"{r.actual:.2f} per guest (n={r.n:,})"
                        for r in check.table[check.table["by"] == "calibration stays"].itertuples()
                    ),
                ],
                "The model forecasts what existing guests will do well enough to value them"
                if abs(ratio - 1) <= 0.15
                else "Treat the customer values with caution: the model misses the holdout",
                "high" if abs(ratio - 1) <= 0.1 else "medium" if abs(ratio - 1) <= 0.2 else "low",
                chart=chart("holdout"),
                evidence_kind="prediction",
                base=f"{int(t['n']):,} customers over {len(check.monthly)} held-out months",
                no_interval="a point forecast set against what the guests then did; its error "
                "on the held-out months is the check (no interval on the forecast is computed)",
            )
        )
    if clv is not None and len(clv):
        seg = clv[(clv["segment"] != "All customers") & ~clv["suppressed"]]
        tot = clv[clv["segment"] == "All customers"].iloc[0]
        if len(seg) > 1:
            top = seg.sort_values("clv", ascending=False).iloc[0]
            out.append(
                Finding(
                    step,
                    f"The {top['segment']} segment is worth {_money(top['clv'], currency)} per "
                    f"guest over {horizon_years} years, {top['clv'] / tot['clv']:.1f}x the "
                    "average guest",
                    [
                        f"{r.segment}: {_money(r.clv, currency)} per guest (95% CI "
                        f"{_money(r.ci_low, currency)} to {_money(r.ci_high, currency)}), "
                        f"n={r.n:,}, {r.share_of_value:.0%} of the value"
                        for r in seg.itertuples()
                    ],
                    "Protect the experience of the segments that carry the value first.",
                    "medium",
                    chart=chart("clv"),
                    evidence_kind="prediction",
                    base=f"{int(top['n']):,} guests in the segment",
                    interval=interval_text(
                        top["ci_low"],
                        top["ci_high"],
                        lambda v: _money(v, currency),
                        of=f"{top['segment']} per guest",
                    ),
                )
            )
    if scenarios is not None and len(scenarios):
        for k, (name, d) in enumerate(scenarios.groupby("scenario", sort=False), start=1):
            d = d.set_index("quantity")
            rox, npv, pb = d.loc["rox"], d.loc["npv"], d.loc["payback_months"]
            up = d.loc["stay_rate_uplift"]
            ev = [
                f"ROX {rox['estimate']:.2f} (95% interval {rox['ci_low']:.2f} to "
                f"{rox['ci_high']:.2f}); NPV {_money(npv['estimate'], currency)} over "
                f"{horizon_years} years; probability the value exceeds the cost "
                f"{d['prob_rox_above_1'].iloc[0]:.0%}.",
                f"Reached guests' stay rate {up['estimate']:+.1%} (95% interval "
                f"{up['ci_low']:+.1%} to {up['ci_high']:+.1%}); recommend score "
                f"{d.loc['nps_change', 'estimate']:+.2f} points; "
                f"{int(d['n_customers'].iloc[0]):,} guests reached.",
                "Payback "
                + (
                    f"after {pb['estimate']:.0f} months"
                    if np.isfinite(pb["estimate"])
                    else "not within the horizon"
                )
                + ".",
            ]
            if tornados and name in tornados and len(tornados[name]):
                t0 = tornados[name].iloc[0]
                ev.append(
                    f"The figure moves most with: {t0['assumption']} (ROX {t0['at_low']:.2f} "
                    f"to {t0['at_high']:.2f})."
                )
            pays = rox["ci_low"] > 1
            out.append(
                Finding(
                    step,
                    f"{name}: every {currency} invested returns {rox['estimate']:.2f} in margin "
                    f"over {horizon_years} years"
                    + (
                        " -- it pays back even at the low end of the interval."
                        if pays
                        else "."
                        if rox["ci_high"] > 1
                        else " -- it does not pay back on these figures."
                    ),
                    ev,
                    "Invest"
                    if pays
                    else "Invest only with a cheaper design or a longer horizon"
                    if rox["estimate"] < 1
                    else "Worth piloting: the value is uncertain",
                    "medium" if pays or rox["ci_high"] < 1 else "low",
                    chart=chart("scenarios", k),
                    evidence_kind="scenario",
                    base=f"{int(d['n_customers'].iloc[0]):,} guests reached",
                    interval=interval_text(
                        rox["ci_low"], rox["ci_high"], "{:.2f}", label="95% interval", of="ROX"
                    ),
                )
            )
    return out
