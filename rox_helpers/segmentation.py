"""Behavioural segmentation: who the customers are by what they do, not by who they are.

The pieces, in the order notebook 02 uses them:

1. **Features** -- :func:`behavioural_features` turns the validated interaction log (an Ibis
   table, aggregated in the engine) into one row per customer: the data layer's features
   (:func:`rox_helpers.features.customer_features`: recency, frequency, spend, channel mix,
   digital share, journey stages reached, touchpoints used, tenure) plus how a customer books
   and travels (visit rate per month observed, booking-channel mix, booking lead time, nights
   per stay, spend per night) and the app and community flags of the customer table.
   :func:`survey_features` adds attitudinal ones for respondents (NPS, CSAT, effort, ratings,
   trip purpose). :func:`make_preprocessor` is the scikit-learn ``ColumnTransformer`` that
   imputes missing values (median, counted), transforms skewed features (Yeo-Johnson or
   log1p) and scales everything.
2. **Segments** -- :class:`BehaviouralSegmenter`, a scikit-learn estimator, chooses the number
   of segments in a range by the silhouette of KMeans (on a seeded subsample) and by the BIC of
   a Gaussian mixture, reconciles the two by bootstrap stability (adjusted Rand index), fits
   KMeans (MiniBatchKMeans above a size threshold) and assigns new customers to the nearest
   segment centre. Segment numbers run 1..k from the largest segment down.
3. **Profiles** -- :func:`profile_segments`: size, mean of each feature against the overall
   mean (index = 100 x segment / overall), a descriptive name made from the most distinctive
   features (overridable by ``names``), and :func:`segment_outcomes`: NPS, stays, revenue and
   retention per segment with intervals. :meth:`BehaviouralSegmenter.projection` gives the
   2-D PCA coordinates for a chart; :meth:`SegmentProfiles.heatmap` the index table.
4. **Behaviour vs demographics** -- :func:`behaviour_vs_demographics`: segments from behaviour
   in an earlier period and from demographics alone (age band, region), with the same number
   of segments, fitted on training customers and each predicting later-period outcomes of
   held-out customers; the gain in explained variance (R², or deviance R² for 0/1 outcomes)
   with a bootstrap interval.
5. **Typing tool** -- :func:`typing_tool`: a shallow decision tree on a few behaviours or
   survey answers that assigns a new customer to a segment, its held-out accuracy and its
   rules as text (:func:`sklearn.tree.export_text`).

:func:`segment_engagement` runs all of it on a loaded engagement.

Only customers with at least one interaction in the period have behavioural features; the
others cannot be segmented by behaviour and are counted, not guessed. Segments are
associations in the data, not causes; the behaviour-vs-demographics comparison is out of
sample and across periods so that the behaviour that defines a segment is not also the
outcome it is credited with predicting.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin, _fit_context
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    PowerTransformer,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier, export_text
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from rox_helpers.errors import DataValidationError
from rox_helpers.features import _safe, customer_features, exact_mean, exact_sum

if TYPE_CHECKING:  # pragma: no cover
    from rox_helpers.data import EngagementData

__all__ = [
    "DEFAULT_FEATURES",
    "PHRASES",
    "BehaviouralSegmenter",
    "LogSummaries",
    "SegmentProfiles",
    "SegmentationResult",
    "TypingTool",
    "behaviour_vs_demographics",
    "behavioural_features",
    "customer_outcomes",
    "log_summaries",
    "make_preprocessor",
    "observed_enough",
    "profile_segments",
    "segment_engagement",
    "segment_outcomes",
    "survey_features",
    "typing_tool",
]

DAYS_PER_MONTH = 365.25 / 12

#: Features the segmenter uses by default (``*`` patterns expand against the columns present;
#: absent ones are skipped). They describe *how* a customer behaves -- how often, how much per
#: night, through which channel they book, how far ahead, how long they stay, whether they use
#: the app -- one feature per aspect, because KMeans weighs every scaled feature equally.
#: Lifecycle features (tenure, recency, totals that grow with tenure) describe *where* a
#: customer is in the relationship; they are profiled, not segmented on, unless configured.
DEFAULT_FEATURES: tuple[str, ...] = (
    "visit_rate",
    "spend_per_night",
    "booking_lead_days",
    "nights_per_stay",
    "digital_share",
    "book_share_web",
)

#: Words for a segment name: feature -> (phrase when high, phrase when low); ``None`` = say
#: nothing. The most distinctive features (largest standardised difference from the overall
#: mean) give the name, e.g. "frequent short-notice app-booking customers".
PHRASES: dict[str, tuple[str | None, str | None]] = {
    "visit_rate": ("frequent", "occasional"),
    "frequency": ("frequent", "occasional"),
    "n_interactions": ("highly engaged", "low-contact"),
    "spend": ("high-value", "low-value"),
    "spend_per_night": ("high-spend", "budget"),
    "spend_per_purchase": ("high-spend", "budget"),
    "purchases": ("frequent-buying", None),
    "booking_lead_days": ("plan-ahead", "short-notice"),
    "nights_per_stay": ("long-stay", "short-stay"),
    "book_share_web": ("web-booking", None),
    "book_share_app": ("app-booking", None),
    "book_share_phone": ("phone-booking", None),
    "book_share_front_desk": ("walk-in", None),
    "digital_share": ("digital-first", "offline"),
    "share_app": ("app-heavy", None),
    "share_web": ("web-heavy", None),
    "share_phone": ("phone-heavy", None),
    "share_front_desk": ("in-person", None),
    "app_user": ("app-using", "app-less"),
    "community_member": ("community", None),
    "recency_days": ("lapsing", "recently active"),
    "tenure_days": ("long-standing", "new"),
    "stages_reached": ("full-journey", "browsing"),
    "touchpoints_used": ("many-touchpoint", "few-touchpoint"),
    "completion_rate": ("decisive", "hesitant"),
    "nps": ("promoter", "critical"),
}
#: A share column of a trip purpose that turns the noun into "<purpose> travellers".
PURPOSE_PREFIX = "trip_share_"


# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------


def _ts(value: Any) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def _as_float(cond: ibis.BooleanValue) -> ibis.FloatingValue:
    """1.0, 0.0 or NULL (as ``cast("float64")``, which PostgreSQL refuses for booleans)."""
    return ibis.cases((cond, 1.0), (~cond, 0.0), else_=ibis.null("float64"))


def _period(t: ibis.Table, start: pd.Timestamp | None, end: pd.Timestamp | None) -> ibis.Table:
    lit = lambda v: ibis.literal(v.to_pydatetime(), type=dt.Timestamp())  # noqa: E731
    if start is not None:
        t = t.filter(t.timestamp >= lit(start))
    if end is not None:
        t = t.filter(t.timestamp < lit(end))
    return t


def behavioural_features(
    interactions: ibis.Table,
    *,
    customers: pd.DataFrame | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    digital_channels: Sequence[str] = ("web", "app"),
    channels: Sequence[str] | None = None,
    booking_stage: str = "book",
    arrival_stage: str = "check_in",
    departure_stage: str = "check_out",
    precomputed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Behavioural features per customer over a period, aggregated in the engine.

    Parameters
    ----------
    interactions : ibis.Table
        Canonical, validated interactions (``customer_id``, ``timestamp`` and whichever
        optional columns exist), e.g. ``EngagementData.interactions``.
    customers : pandas.DataFrame, optional
        Canonical customers: ``signup_date`` gives tenure and the months observed,
        ``app_user`` and ``is_community_member`` become the 0/1 features ``app_user`` and
        ``community_member``.
    start, end : Timestamp or str, optional
        The period ``[start, end)``; the whole log by default. ``end`` is "today" for recency
        and tenure (the day after the last interaction by default, as in
        :func:`~rox_helpers.features.customer_features`).
    digital_channels : sequence of str, default=("web", "app")
        Channels counted as digital.
    channels : sequence of str, optional
        Channels for the channel shares; all channels in the whole log by default, so that two
        periods give the same columns.
    booking_stage, arrival_stage, departure_stage : str
        Journey stages of a booking, an arrival and a departure. The trip features
        (``booking_lead_days``, ``nights_per_stay``, ``spend_per_night``) pair a booking with
        the arrival that follows it and the arrival with its departure; they are missing for a
        customer without such a pair, and not computed when the log has no journey stages.

    precomputed : pandas.DataFrame, optional
        The setup step's ``customer_features`` table of the same log
        (:func:`~rox_helpers.features.features_frame`): over the whole log (no ``start``,
        ``end``) the data layer's features are taken from it instead of aggregating the
        log again, when its columns are the ones this call would compute.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (customers with at least one interaction in the period),
        float columns: the data layer's features (``n_interactions``, ``frequency``,
        ``spend``, ``purchases``, ``completion_rate``, ``avg_duration_min``, ``share_<channel>``,
        ``digital_share``, ``stages_reached``, ``touchpoints_used``, ``recency_days``,
        ``tenure_days``) and

        ``months_observed``   months from the later of period start and sign-up to ``end``
        ``visit_rate``        visits (distinct days) per month observed
        ``spend_per_purchase`` revenue per paid, completed interaction
        ``bookings``          rows at ``booking_stage``
        ``book_share_<ch>``   channel mix of the bookings
        ``booking_lead_days`` mean days from a booking to the arrival that follows it
        ``nights_per_stay``   mean nights from arrival to departure (at least 1)
        ``spend_per_night``   mean booking revenue per night of the stay it paid for
        ``app_user``, ``community_member``  0/1 from the customer table

        Missing values mean "not observed" (no booking, no stay), never zero.
    """
    whole_log = start is None and end is None
    start, end = _ts(start), _ts(end)
    cols = set(interactions.columns)
    if channels is None and "channel" in cols:
        channels = sorted(
            c for c in interactions.select("channel").distinct().to_pandas()["channel"].dropna()
        )
    t = _period(interactions.filter(interactions.customer_id.notnull()), start, end)
    if end is None:
        last = t.timestamp.max().to_pyarrow().as_py()
        last = pd.Timestamp("2000-01-01") if last is None else pd.Timestamp(last)
        end = last.normalize() + pd.Timedelta(days=1)
    if start is None:
        first = t.timestamp.min().to_pyarrow().as_py()
        start = end if first is None else pd.Timestamp(first).normalize()
    expr = customer_features(
        t,
        customers=customers,
        reference_date=end,
        digital_channels=digital_channels,
        channels=channels,
    )
    if whole_log and precomputed is not None and list(precomputed.columns) == list(expr.columns):
        # the same aggregation, done by the setup step (same reference date: the day after
        # the last interaction; same customer order: code points of customer_id)
        base = precomputed
    else:
        # code-point order of customer_id, as features_frame and the precomputed table
        base = expr.to_pandas().sort_values("customer_id", kind="stable", ignore_index=True)
    base = base.set_index("customer_id").drop(columns=["first_seen", "last_seen"])
    base.index = base.index.astype("str")
    parts = [base]

    if {"journey_stage", "channel"} <= cols:
        b = t.filter(t.journey_stage == booking_stage)
        aggs = {"bookings": b.count().cast("float64")}
        for ch in channels or ():
            aggs[f"book_share_{_safe(ch)}"] = _as_float(b.channel == ch).mean()
        parts.append(
            b.group_by("customer_id").aggregate(**aggs).to_pandas().set_index("customer_id")
        )
    if "journey_stage" in cols:
        parts.append(_trip_features(t, booking_stage, arrival_stage, departure_stage, cols))

    # every part lined up on the base's customers (customers without a booking or a trip
    # get missing values): one hash lookup per part, on Python strings (pandas' string
    # alignment of a million ids costs seconds per operation)
    ids = base.index.astype(object)
    cols: dict[str, np.ndarray] = {}
    for p in parts:
        if not len(p.columns):
            continue
        pos = None if p is base else _positions(p.index, ids)
        for c in p.columns:
            v = p[c].to_numpy(dtype="float64", na_value=np.nan)
            cols[c] = v if pos is None else _take(v, pos)
    out = pd.DataFrame(cols, index=pd.Index(base.index, name="customer_id"))

    cust = None
    cust_pos = None
    if customers is not None:
        cust = customers.dropna(subset=["customer_id"]).drop_duplicates("customer_id")
        cust = cust.set_index(cust["customer_id"].astype("str"))
        cust_pos = _positions(cust.index, ids)
    # months observed: from the later of the period start and sign-up (the whole period when
    # the sign-up date is unknown)
    since = pd.Series(start, index=out.index, dtype="datetime64[us]")
    if cust is not None and "signup_date" in cust.columns:
        signup = pd.Series(
            _take(pd.to_datetime(cust["signup_date"]).astype("datetime64[us]"), cust_pos),
            index=out.index,
        )
        since = since.where(signup.isna() | (signup < since), signup)
    days = (end - since).dt.days.astype("float64")
    out["months_observed"] = (days / DAYS_PER_MONTH).clip(lower=1.0)
    out["visit_rate"] = out["frequency"] / out["months_observed"]
    if "spend" in out and "purchases" in out:
        out["spend_per_purchase"] = out["spend"] / out["purchases"].where(out["purchases"] > 0)
    if cust is not None:
        for src, name in (("app_user", "app_user"), ("is_community_member", "community_member")):
            if src in cust.columns:
                flag = cust[src].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
                out[name] = _take(flag, cust_pos)
    return out


def _positions(index: pd.Index, ids: pd.Index) -> np.ndarray:
    """Position of each of ``ids`` (object dtype) in ``index``; -1 where absent."""
    return pd.Index(index.astype(object)).get_indexer(ids)


def _take(values, pos: np.ndarray):
    """``values`` at ``pos`` (a numpy array or an extension array), missing where
    ``pos`` is -1: what ``reindex`` gives, without aligning string labels."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        out = values[np.where(pos < 0, 0, pos)] if len(values) else np.full(len(pos), np.nan)
        return np.where(pos < 0, np.nan, out)
    return values.take(pos, allow_fill=True)


def _trip_features(
    t: ibis.Table, booking: str, arrival: str, departure: str, cols: set[str]
) -> pd.DataFrame:
    """Lead time, nights and spend per night from consecutive booking/arrival/departure rows."""
    s = t.filter(t.journey_stage.isin([booking, arrival, departure]))
    rev = s.revenue.fill_null(0).cast("float64") if "revenue" in cols else ibis.literal(0.0)
    s = s.select("customer_id", "timestamp", "journey_stage", rev=rev)
    w = ibis.window(group_by="customer_id", order_by=["timestamp", "journey_stage", "rev"])
    s = s.mutate(
        prev_stage=s.journey_stage.lag().over(w),
        prev_ts=s.timestamp.lag().over(w),
        prev2_stage=s.journey_stage.lag(2).over(w),
        prev2_rev=s.rev.lag(2).over(w),
    )
    secs = s.timestamp.epoch_seconds() - s.prev_ts.epoch_seconds()
    is_lead = (s.journey_stage == arrival) & (s.prev_stage == booking)
    is_stay = (s.journey_stage == departure) & (s.prev_stage == arrival)
    nights = ibis.greatest((s.timestamp.date() - s.prev_ts.date()).cast("int64"), 1).cast("float64")
    paid = is_stay & (s.prev2_stage == booking) & (s.prev2_rev > 0)
    s = s.mutate(
        lead=ibis.ifelse(is_lead, secs.cast("float64"), ibis.null("float64")),
        nights=ibis.ifelse(is_stay, nights, ibis.null("float64")),
        per_night=ibis.ifelse(paid, s.prev2_rev / nights, ibis.null("float64")),
    )
    # exact means (to a microsecond, a night, a millionth of spend): a float mean is added
    # up in the order the engine's threads deliver the rows, which varies with the load
    agg = s.group_by("customer_id").aggregate(
        booking_lead_days=exact_mean(s.lead) / 86400.0,
        nights_per_stay=exact_mean(s.nights),
        spend_per_night=exact_mean(s.per_night),
    )
    return agg.to_pandas().set_index("customer_id")


def survey_features(
    cx_survey: pd.DataFrame,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    attributes: Sequence[str] | None = None,
    purpose: str = "trip_purpose",
) -> pd.DataFrame:
    """Attitudinal features per respondent customer (mean over their responses in the period).

    Parameters
    ----------
    cx_survey : pandas.DataFrame
        Canonical ``cx_survey``; rows without ``customer_id`` (anonymous) are left out.
    start, end : Timestamp or str, optional
        Responses dated in ``[start, end)`` (``date`` column); all by default.
    attributes : sequence of str, optional
        Rating columns; all ``att_*`` columns by default.
    purpose : str, default="trip_purpose"
        Column of the declared trip purpose (or segment); each value becomes a share column
        ``trip_share_<value>``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``responses``, ``nps``, ``csat``, ``ces`` (when present),
        the attribute means and the trip-purpose shares. Unanswered = missing.
    """
    if "customer_id" not in cx_survey.columns:
        raise DataValidationError(
            "the survey has no customer_id column",
            column="customer_id",
            rule="attitudinal features need respondents linked to customers",
            fix="Map the survey's customer identifier to `customer_id` in engagement.yml.",
        )
    s = cx_survey[cx_survey["customer_id"].notna()]
    if "date" in s.columns and (start is not None or end is not None):
        d = pd.to_datetime(s["date"])
        keep = pd.Series(True, index=s.index)
        if start is not None:
            keep &= d >= pd.Timestamp(start)
        if end is not None:
            keep &= d < pd.Timestamp(end)
        s = s[keep]
    attributes = (
        [c for c in s.columns if str(c).startswith("att_")] if attributes is None else attributes
    )
    scores = [c for c in ("nps", "csat", "ces", *attributes) if c in s.columns]
    key = s["customer_id"].astype("str")
    num = s[scores].apply(pd.to_numeric, errors="coerce").astype("float64")
    out = num.groupby(key).mean()
    out.insert(0, "responses", key.groupby(key).size().astype("float64"))
    if purpose in s.columns:
        p = s[purpose].astype("str").where(s[purpose].notna())
        for value in sorted(p.dropna().unique()):
            share = (p == value).astype("float64").where(p.notna())
            out[f"{PURPOSE_PREFIX}{_safe(value)}"] = share.groupby(key).mean()
    out.index.name = "customer_id"
    return out


def customer_outcomes(
    interactions: ibis.Table,
    *,
    customers: Sequence[str] | pd.Index | None = None,
    cx_survey: pd.DataFrame | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    arrival_stage: str = "check_in",
) -> pd.DataFrame:
    """Business outcomes per customer over a period: stays, revenue, retention, NPS.

    Parameters
    ----------
    interactions : ibis.Table
        Canonical interactions.
    customers : sequence of str, optional
        The customers to report (e.g. those segmented in an earlier period); a customer with
        no interaction in the period gets 0 stays, 0 revenue and ``retained = 0``. By default
        the customers active in the period.
    cx_survey : pandas.DataFrame, optional
        Canonical survey; gives ``nps`` (mean 0-10 answer in the period; missing for
        customers who did not answer).
    start, end : Timestamp or str, optional
        The period ``[start, end)``.
    arrival_stage : str, default="check_in"
        Journey stage counted as a stay (visits, distinct days, when the log has no stages).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``stays``, ``revenue``, ``retained`` (0/1: any
        interaction in the period) and, with a survey, ``nps``.
    """
    start, end = _ts(start), _ts(end)
    t = _period(interactions.filter(interactions.customer_id.notnull()), start, end)
    cols = set(t.columns)
    if "journey_stage" in cols:
        stays = _as_float(t.journey_stage == arrival_stage).sum()
    else:
        stays = t.timestamp.date().nunique().cast("float64")
    aggs = {"stays": stays, "retained": ibis.literal(1.0)}
    aggs["revenue"] = exact_sum(t.revenue.fill_null(0)) if "revenue" in cols else ibis.literal(0.0)
    out = t.group_by("customer_id").aggregate(**aggs).to_pandas().set_index("customer_id")
    out.index = out.index.astype("str")
    out = out[["stays", "revenue", "retained"]].astype("float64")
    if customers is not None:
        idx = pd.Index(customers, dtype="str", name="customer_id")
        out = out.reindex(idx).fillna(0.0)
    out.index.name = "customer_id"
    return _with_nps(out, cx_survey, start, end)


def _with_nps(outcomes: pd.DataFrame, cx_survey: pd.DataFrame | None, start, end) -> pd.DataFrame:
    """``outcomes`` with the customers' mean NPS answer in ``[start, end)`` (when the survey
    has one; missing for customers who did not answer)."""
    if cx_survey is not None and "nps" in cx_survey.columns:
        sv = survey_features(cx_survey, start=_ts(start), end=_ts(end), attributes=())
        outcomes["nps"] = sv["nps"].reindex(outcomes.index)
    return outcomes


@dataclass
class LogSummaries:
    """Everything the segmentation step takes from the interaction log, per customer: what
    step 00 computes in the client's engine when the log stays there (``extract:
    features``), so that the segments need no row of it.

    Attributes
    ----------
    features : pandas.DataFrame
        :func:`behavioural_features` over the whole log.
    outcomes : pandas.DataFrame
        ``stays`` and ``revenue`` per active customer (:func:`customer_outcomes`).
    early, later : pandas.DataFrame or None
        Features before ``split`` and outcomes from ``split`` on (of the customers in
        ``early``, survey NPS left out), for :func:`behaviour_vs_demographics`; None when
        the customer table has no age band and region.
    split : Timestamp or None
    """

    features: pd.DataFrame
    outcomes: pd.DataFrame
    early: pd.DataFrame | None = None
    later: pd.DataFrame | None = None
    split: pd.Timestamp | None = None


def log_summaries(
    interactions: ibis.Table,
    *,
    customers: pd.DataFrame | None = None,
    digital_channels: Sequence[str] = ("web", "app"),
    split: pd.Timestamp | str | None = None,
    precomputed: pd.DataFrame | None = None,
) -> LogSummaries:
    """The per-customer summaries of the log the segmentation uses (:class:`LogSummaries`),
    aggregated by the log's engine.

    ``split`` is the start of the "later" period (the middle of the log by default);
    ``precomputed`` the setup step's ``customer_features`` (see
    :func:`behavioural_features`).
    """
    X = behavioural_features(
        interactions,
        customers=customers,
        digital_channels=digital_channels,
        precomputed=precomputed,
    )
    # in customer order: engines return groups in any order, the run's artifact must not
    outcomes = customer_outcomes(interactions)[["stays", "revenue"]].sort_index()
    if customers is None or not {"age_band", "region"} <= set(customers.columns):
        return LogSummaries(X, outcomes)
    if split is None:
        lo = pd.Timestamp(interactions.timestamp.min().to_pyarrow().as_py())
        hi = pd.Timestamp(interactions.timestamp.max().to_pyarrow().as_py())
        split = (lo + (hi - lo) / 2).normalize()
    split = pd.Timestamp(split)
    early = behavioural_features(
        interactions, customers=customers, end=split, digital_channels=digital_channels
    )
    later = customer_outcomes(interactions, customers=early.index, start=split)
    return LogSummaries(X, outcomes, early, later, split)


# --------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------


def resolve_features(patterns: Sequence[str], columns: Sequence[str]) -> list[str]:
    """Expand ``*`` patterns against ``columns`` (in pattern order, no duplicates).

    Names without a wildcard that are not in ``columns`` are dropped silently only when they
    come from :data:`DEFAULT_FEATURES`; callers check explicit names themselves.
    """
    out: list[str] = []
    for p in patterns:
        hits = sorted(fnmatch.filter(columns, p)) if any(c in p for c in "*?[") else [p]
        out += [h for h in hits if h in columns and h not in out]
    return out


def observed_enough(
    X: pd.DataFrame, features: Sequence[str] | None = None, *, min_observed: float = 0.75
) -> pd.Series:
    """Which customers show enough behaviour to be segmented.

    A customer whose only trips never reached a booking or a stay (browsing, abandoned
    bookings) has no lead time, length of stay or price per night: imputing those with the
    median would invent a typical traveller, and such customers form a cluster of their own
    that describes missing data, not behaviour. They are left unsegmented and counted, like
    customers with no interaction at all.

    Parameters
    ----------
    X : pandas.DataFrame
        From :func:`behavioural_features`.
    features : sequence of str, optional
        The segmentation features (patterns allowed); :data:`DEFAULT_FEATURES` by default.
    min_observed : float, default=0.75
        Smallest share of those features a customer must have observed.

    Returns
    -------
    pandas.Series of bool
        Indexed like ``X``.
    """
    if not 0 < min_observed <= 1:
        raise ValueError(f"min_observed must be in (0, 1], got {min_observed}")
    cols = resolve_features(list(DEFAULT_FEATURES if features is None else features), list(X))
    if not cols:
        return pd.Series(True, index=X.index)
    return X[cols].notna().mean(axis=1) >= min_observed - 1e-12


def _is_binary(s: pd.Series) -> bool:
    v = s.dropna().unique()
    return len(v) <= 2 and set(np.asarray(v, dtype="float64")) <= {0.0, 1.0}


def make_preprocessor(
    X: pd.DataFrame,
    features: Sequence[str] | None = None,
    *,
    transform: str = "yeo-johnson",
    skew_threshold: float = 1.0,
) -> tuple[ColumnTransformer, pd.DataFrame]:
    """The imputation, transformation and scaling of the segmentation features.

    Each feature is imputed with its median (a missing value means "not observed": a
    customer who never booked has no booking lead time), then

    - skewed features (non-binary, ``|skewness| > skew_threshold`` on ``X``) are transformed:
      Yeo-Johnson (:class:`~sklearn.preprocessing.PowerTransformer`, which also
      standardises) or ``log1p`` then standardised;
    - all others (0/1 flags, shares, symmetric features) are standardised.

    Parameters
    ----------
    X : pandas.DataFrame
        The training features (decides which features are skewed).
    features : sequence of str, optional
        Columns to use; all numeric columns by default.
    transform : {"yeo-johnson", "log1p", "none"}, default="yeo-johnson"
        Transformation of skewed features (``log1p`` needs non-negative values and falls back
        to Yeo-Johnson for a feature with negatives).
    skew_threshold : float, default=1.0
        Absolute sample skewness above which a feature counts as skewed.

    Returns
    -------
    preprocessor : sklearn.compose.ColumnTransformer
        Unfitted; output columns in the order of ``features``.
    plan : pandas.DataFrame
        One row per feature: ``feature``, ``skewness``, ``binary``, ``transform``
        (``"yeo-johnson"``, ``"log1p"`` or ``"scale"``), ``missing`` (count), ``missing_share``,
        ``median`` (the imputed value).
    """
    features = list(X.select_dtypes("number").columns if features is None else features)
    rows = []
    for f in features:
        s = X[f].astype("float64")
        binary = _is_binary(s)
        sk = float(stats.skew(s.dropna())) if s.notna().sum() > 2 else 0.0
        sk = 0.0 if math.isnan(sk) else sk
        how = "scale"
        if transform != "none" and not binary and abs(sk) > skew_threshold:
            how = "log1p" if transform == "log1p" and (s.dropna() >= 0).all() else "yeo-johnson"
        rows.append(
            {
                "feature": f,
                "skewness": sk,
                "binary": binary,
                "transform": how,
                "missing": int(s.isna().sum()),
                "missing_share": float(s.isna().mean()) if len(s) else 0.0,
                "median": float(s.median()) if s.notna().any() else float("nan"),
            }
        )
    plan = pd.DataFrame(
        rows,
        columns=[
            "feature",
            "skewness",
            "binary",
            "transform",
            "missing",
            "missing_share",
            "median",
        ],
    )
    steps = []
    for f, how in zip(plan["feature"], plan["transform"], strict=True):
        impute = SimpleImputer(strategy="median", keep_empty_features=True)
        if how == "yeo-johnson":
            pipe = Pipeline([("impute", impute), ("power", PowerTransformer("yeo-johnson"))])
        elif how == "log1p":
            log = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
            pipe = Pipeline([("impute", impute), ("log1p", log), ("scale", StandardScaler())])
        else:
            pipe = Pipeline([("impute", impute), ("scale", StandardScaler())])
        steps.append((f, pipe, [f]))
    pre = ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=False)
    return pre, plan


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------


def _nearest(Z: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre and the squared distance to it (chunked, float64)."""
    labels = np.empty(len(Z), dtype=np.int64)
    d2min = np.empty(len(Z))
    cc = (centres**2).sum(1)
    for a in range(0, len(Z), 262_144):
        z = Z[a : a + 262_144]
        d2 = (z**2).sum(1)[:, None] - 2 * z @ centres.T + cc[None, :]
        labels[a : a + len(z)] = d2.argmin(1)
        d2min[a : a + len(z)] = np.maximum(d2.min(1), 0.0)
    return labels, d2min


class BehaviouralSegmenter(ClusterMixin, TransformerMixin, BaseEstimator):
    """Behavioural segments: preprocessing, choice of k, stability, KMeans, assignment.

    Parameters
    ----------
    features : sequence of str, optional
        Feature columns of ``X`` (``*`` patterns allowed); :data:`DEFAULT_FEATURES` (those
        present) by default.
    k_range : tuple of int, default=(2, 8)
        Smallest and largest number of segments considered.
    n_clusters : int, optional
        Fix the number of segments instead of choosing it (``k_range`` is then ignored and
        the diagnostics cover this k only).
    selection : {"reconcile", "silhouette", "bic"}, default="reconcile"
        How k is chosen: the silhouette maximum of KMeans, the BIC minimum of a Gaussian
        mixture, or (``"reconcile"``) both: their common choice when they agree; otherwise
        whichever of the two choices is more stable over bootstrap resamples (mean adjusted
        Rand index), the smaller one when their stabilities differ by less than
        ``stability_tolerance``. (BIC tends to keep adding components to skewed, lumpy
        behavioural data; a segment split that the data do not support does not survive
        resampling.)
    skew_transform : {"yeo-johnson", "log1p", "none"}, default="yeo-johnson"
        Transformation of skewed features, see :func:`make_preprocessor`.
    skew_threshold : float, default=1.0
        Absolute skewness above which a feature is transformed.
    selection_sample : int, default=20_000
        Customers (seeded subsample) on which k is chosen and stability is measured.
    silhouette_sample : int, default=5_000
        Customers on which the silhouette is computed (quadratic cost).
    n_bootstrap : int, default=10
        Bootstrap resamples for the stability of each k (0 = skip stability).
    stability_tolerance : float, default=0.02
        Stability difference below which the smaller of the two candidate k is preferred.
    n_init : int, default=4
        KMeans restarts.
    minibatch_threshold : int, default=200_000
        Above this many customers the final model is a MiniBatchKMeans started from the
        centres found on the selection sample.
    random_state : int, RandomState instance or None, default=0
        Seed of every draw (subsamples, bootstrap, KMeans, mixture).

    Attributes
    ----------
    features_ : list of str
        The features used, in order.
    preprocessor_ : sklearn.compose.ColumnTransformer
        Fitted imputation/transformation/scaling.
    preprocessing_ : pandas.DataFrame
        The preprocessing plan (see :func:`make_preprocessor`).
    k_diagnostics_ : pandas.DataFrame
        One row per k: ``k``, ``silhouette``, ``bic``, ``inertia``, ``stability_ari``,
        ``stability_low``, ``stability_high``, ``sizes`` (cluster sizes on the selection
        sample, largest first), ``chosen``.
    k_silhouette_, k_bic_ : int
        The k each criterion prefers (``None`` with a fixed ``n_clusters``).
    k_rule_ : str
        The rule that gave ``n_clusters_``, in words.
    n_clusters_ : int
        Number of segments.
    stability_ : dict
        ``ari`` (mean adjusted Rand index between the model on the selection sample and
        models on its bootstrap resamples), ``ci_low``, ``ci_high``, ``n_bootstrap``.
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        Segment centres in the scaled space, row ``j`` for segment ``j + 1``.
    labels_ : ndarray of int
        Segment (1..k, 1 = largest) of each training customer.
    inertia_ : float
        Sum of squared distances to the segment centres (scaled space).
    model_ : KMeans or MiniBatchKMeans
        The fitted clustering (its own labels are 0-based and in its own order).
    pca_ : sklearn.decomposition.PCA
        Two-component PCA of the scaled training features (for :meth:`projection`).

    Examples
    --------
    >>> seg = BehaviouralSegmenter(k_range=(2, 6), random_state=7).fit(features)  # doctest: +SKIP
    >>> seg.n_clusters_, seg.k_rule_  # doctest: +SKIP
    """

    _parameter_constraints: ClassVar[dict] = {
        "features": [list, tuple, None],
        "k_range": [tuple, list],
        "n_clusters": [Interval(Integral, 2, None, closed="left"), None],
        "selection": [StrOptions({"reconcile", "silhouette", "bic"})],
        "skew_transform": [StrOptions({"yeo-johnson", "log1p", "none"})],
        "skew_threshold": [Interval(Real, 0, None, closed="left")],
        "selection_sample": [Interval(Integral, 100, None, closed="left")],
        "silhouette_sample": [Interval(Integral, 100, None, closed="left")],
        "n_bootstrap": [Interval(Integral, 0, None, closed="left")],
        "stability_tolerance": [Interval(Real, 0, 1, closed="both")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "minibatch_threshold": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        features: Sequence[str] | None = None,
        k_range: tuple[int, int] = (2, 8),
        n_clusters: int | None = None,
        selection: str = "reconcile",
        skew_transform: str = "yeo-johnson",
        skew_threshold: float = 1.0,
        selection_sample: int = 20_000,
        silhouette_sample: int = 5_000,
        n_bootstrap: int = 10,
        stability_tolerance: float = 0.02,
        n_init: int = 4,
        minibatch_threshold: int = 200_000,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.features = features
        self.k_range = k_range
        self.n_clusters = n_clusters
        self.selection = selection
        self.skew_transform = skew_transform
        self.skew_threshold = skew_threshold
        self.selection_sample = selection_sample
        self.silhouette_sample = silhouette_sample
        self.n_bootstrap = n_bootstrap
        self.stability_tolerance = stability_tolerance
        self.n_init = n_init
        self.minibatch_threshold = minibatch_threshold
        self.random_state = random_state

    # ---------------------------------------------------------------- checks
    def _check_k_range(self) -> tuple[int, int]:
        kr = self.k_range
        ok = (
            len(kr) == 2
            and all(isinstance(k, Integral) and not isinstance(k, bool) for k in kr)
            and 2 <= kr[0] <= kr[1]
        )
        if not ok:
            raise InvalidParameterError(
                f"The 'k_range' parameter of BehaviouralSegmenter must be a pair of integers "
                f"(k_min, k_max) with 2 <= k_min <= k_max. Got {kr!r} instead."
            )
        return int(kr[0]), int(kr[1])

    def _check_X(self, X: Any, *, fitting: bool) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise DataValidationError(
                f"BehaviouralSegmenter needs a DataFrame of named features, got {type(X).__name__}",
                rule="features by name",
                fix="Pass the frame from behavioural_features() (one row per customer).",
            )
        if fitting:
            wanted = list(DEFAULT_FEATURES if self.features is None else self.features)
            explicit = [f for f in wanted if not any(c in f for c in "*?[")]
            missing = [f for f in explicit if f not in X.columns]
            if missing and self.features is not None:
                raise DataValidationError(
                    f"segmentation feature(s) {missing} not in the data",
                    column=", ".join(missing),
                    rule="configured features exist",
                    fix="Choose from: " + ", ".join(map(str, X.columns)),
                )
            feats = resolve_features(wanted, list(map(str, X.columns)))
            if len(feats) < 2:
                raise DataValidationError(
                    f"only {len(feats)} segmentation feature(s) found ({feats})",
                    rule="at least two features",
                    fix="Declare interactions with channels and journey stages, or list "
                    "features under segmentation.features in engagement.yml.",
                )
            nonnum = [f for f in feats if not pd.api.types.is_numeric_dtype(X[f])]
            if nonnum:
                raise DataValidationError(
                    f"segmentation feature(s) {nonnum} are not numeric",
                    column=", ".join(nonnum),
                    rule="numeric features",
                    fix="Encode them as numbers (0/1 flags, shares, counts) first.",
                )
            return X[feats]
        missing = [f for f in self.features_ if f not in X.columns]
        if missing:
            raise DataValidationError(
                f"feature(s) {missing} used in fit are missing",
                column=", ".join(missing),
                rule="same features as in fit",
                fix="Build the new customers' features with behavioural_features().",
            )
        return X[self.features_]

    # ---------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: pd.DataFrame, y: None = None) -> BehaviouralSegmenter:
        """Choose k, fit the segments and record the diagnostics.

        Parameters
        ----------
        X : pandas.DataFrame
            One row per customer (:func:`behavioural_features`, optionally joined with
            :func:`survey_features`).
        y : None
            Ignored.

        Returns
        -------
        BehaviouralSegmenter
            ``self``, fitted.

        Raises
        ------
        DataValidationError
            Features missing or not numeric, or fewer customers than ``k_max`` x 10.
        """
        k_min, k_max = self._check_k_range()
        if self.n_clusters is not None:
            k_min = k_max = int(self.n_clusters)
        Xf = self._check_X(X, fitting=True)
        n = len(Xf)
        if n < 10 * k_max:
            raise DataValidationError(
                f"{n} customers are too few for up to {k_max} segments",
                rule="at least 10 customers per possible segment",
                fix="Lower segmentation.k_max or widen the period.",
            )
        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=4)
        self.features_ = list(Xf.columns)
        self.feature_names_in_ = np.asarray(self.features_, dtype=object)
        self.n_features_in_ = len(self.features_)
        pre, plan = make_preprocessor(
            Xf, self.features_, transform=self.skew_transform, skew_threshold=self.skew_threshold
        )
        # Yeo-Johnson's lambda from a subsample at most the selection sample's size x 10
        fit_rows = self._subsample(n, max(self.selection_sample * 10, 200_000), seeds[0])
        self.preprocessor_ = pre.fit(Xf.iloc[fit_rows] if fit_rows is not None else Xf)
        self.preprocessing_ = plan
        Z = self._scaled(Xf)

        sel = self._subsample(n, self.selection_sample, seeds[1])
        Zs = Z if sel is None else Z[sel]
        # KMeans on a few thousand rows is fastest on one thread, and many times slower when
        # its OpenMP threads contend for cores busy with other work
        with threadpool_limits(limits=1):
            diag, models = self._diagnose(Zs, range(k_min, k_max + 1), seeds[2])
        self.k_diagnostics_ = diag
        k, rule = self._choose(diag)
        self.n_clusters_ = k
        self.k_rule_ = rule
        row = diag.set_index("k").loc[k]
        self.stability_ = {
            "ari": float(row["stability_ari"]),
            "ci_low": float(row["stability_low"]),
            "ci_high": float(row["stability_high"]),
            "n_bootstrap": int(self.n_bootstrap),
        }
        self.k_diagnostics_["chosen"] = self.k_diagnostics_["k"] == k

        if n > self.minibatch_threshold:
            model = MiniBatchKMeans(
                n_clusters=k,
                init=models[k].cluster_centers_,
                n_init=1,
                batch_size=8192,
                max_no_improvement=20,
                random_state=int(seeds[3]),
            ).fit(Z)
        elif sel is None:
            model = models[k]
        else:
            with threadpool_limits(limits=1):
                model = KMeans(n_clusters=k, n_init=self.n_init, random_state=int(seeds[3]))
                model.fit(Z)
        self.model_ = model
        raw, d2 = _nearest(Z, model.cluster_centers_)
        counts = np.bincount(raw, minlength=k)
        order = np.argsort(-counts, kind="stable")  # new segment j+1 = old cluster order[j]
        self.cluster_centers_ = model.cluster_centers_[order]
        remap = np.empty(k, dtype=np.int64)
        remap[order] = np.arange(1, k + 1)
        self.labels_ = remap[raw]
        self.inertia_ = float(d2.sum())
        proj_rows = self._subsample(n, 200_000, seeds[0])
        self.pca_ = PCA(n_components=min(2, Z.shape[1]), random_state=int(seeds[0])).fit(
            Z if proj_rows is None else Z[proj_rows]
        )
        return self

    def _subsample(self, n: int, m: int, seed: int) -> np.ndarray | None:
        if n <= m:
            return None
        return np.sort(np.random.default_rng(int(seed)).choice(n, m, replace=False))

    def _scaled(self, Xf: pd.DataFrame) -> np.ndarray:
        Z = np.asarray(self.preprocessor_.transform(Xf), dtype="float64")
        return np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0)

    def _diagnose(
        self, Zs: np.ndarray, ks: range, seed: int
    ) -> tuple[pd.DataFrame, dict[int, KMeans]]:
        rng = np.random.default_rng(int(seed))
        m = len(Zs)
        sil_idx = np.sort(rng.choice(m, min(m, self.silhouette_sample), replace=False))
        boot = [rng.integers(0, m, m) for _ in range(self.n_bootstrap)]
        rows, models = [], {}
        for k in ks:
            s = int(rng.integers(0, 2**31 - 1))
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=s).fit(Zs)
            models[k] = km
            lab = km.labels_
            sil = (
                float(silhouette_score(Zs[sil_idx], lab[sil_idx]))
                if len(np.unique(lab[sil_idx])) > 1
                else float("nan")
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gm = GaussianMixture(
                    n_components=k, covariance_type="full", reg_covar=1e-4, random_state=s
                ).fit(Zs)
            bic = float(gm.bic(Zs))
            aris = []
            for b, idx in enumerate(boot):
                kb = KMeans(n_clusters=k, n_init=self.n_init, random_state=s + b + 1).fit(Zs[idx])
                aris.append(adjusted_rand_score(lab, kb.predict(Zs)))
            aris = np.asarray(aris)
            rows.append(
                {
                    "k": k,
                    "silhouette": sil,
                    "bic": bic,
                    "inertia": float(km.inertia_),
                    "stability_ari": float(aris.mean()) if len(aris) else float("nan"),
                    "stability_low": float(np.quantile(aris, 0.025)) if len(aris) else np.nan,
                    "stability_high": float(np.quantile(aris, 0.975)) if len(aris) else np.nan,
                    "sizes": np.sort(np.bincount(lab, minlength=k))[::-1].tolist(),
                }
            )
        return pd.DataFrame(rows), models

    def _choose(self, diag: pd.DataFrame) -> tuple[int, str]:
        if len(diag) == 1:
            self.k_silhouette_ = self.k_bic_ = None
            return int(diag["k"].iloc[0]), "fixed by n_clusters"
        d = diag.set_index("k")
        k_sil = int(d["silhouette"].idxmax())
        k_bic = int(d["bic"].idxmin())
        self.k_silhouette_, self.k_bic_ = k_sil, k_bic
        if self.selection == "silhouette":
            return k_sil, f"silhouette maximum (k={k_sil}; BIC prefers k={k_bic})"
        if self.selection == "bic":
            return k_bic, f"BIC minimum (k={k_bic}; silhouette prefers k={k_sil})"
        if k_sil == k_bic:
            return k_sil, f"silhouette and BIC agree on k={k_sil}"
        s_sil, s_bic = float(d.loc[k_sil, "stability_ari"]), float(d.loc[k_bic, "stability_ari"])
        if np.isnan(s_sil) or np.isnan(s_bic):
            return k_sil, (
                f"silhouette prefers k={k_sil}, BIC k={k_bic}; without bootstrap resamples "
                "the silhouette's choice"
            )
        (small, s_small), (large, s_large) = sorted([(k_sil, s_sil), (k_bic, s_bic)])
        if s_large > s_small + self.stability_tolerance:
            k, why = large, "more stable"
        elif s_small > s_large + self.stability_tolerance:
            k, why = small, "more stable"
        else:
            k, why = small, f"as stable (within {self.stability_tolerance:g}) and smaller"
        return k, (
            f"silhouette prefers k={k_sil} (bootstrap stability ARI {s_sil:.2f}), BIC k={k_bic} "
            f"(ARI {s_bic:.2f}); k={k} is {why}"
        )

    # ---------------------------------------------------------------- use
    def scaled(self, X: pd.DataFrame) -> pd.DataFrame:
        """The imputed, transformed and scaled features of ``X`` (the space of the segments).

        Parameters
        ----------
        X : pandas.DataFrame
            Customers with the features used in :meth:`fit`.

        Returns
        -------
        pandas.DataFrame
            Same index, one column per feature.
        """
        check_is_fitted(self)
        Xf = self._check_X(X, fitting=False)
        return pd.DataFrame(self._scaled(Xf), index=X.index, columns=self.features_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment (1..k) of each customer: the nearest segment centre.

        Parameters
        ----------
        X : pandas.DataFrame
            Customers with the features used in :meth:`fit`; missing values are imputed as in
            training.

        Returns
        -------
        ndarray of int
        """
        check_is_fitted(self)
        Z = self._scaled(self._check_X(X, fitting=False))
        return _nearest(Z, self.cluster_centers_)[0] + 1

    def fit_predict(self, X: pd.DataFrame, y: None = None) -> np.ndarray:
        """:meth:`fit`, then the training labels."""
        return self.fit(X).labels_

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Distance of each customer to each segment centre (scaled space).

        Returns
        -------
        ndarray of shape (n_customers, n_clusters_)
            Column ``j`` is the distance to segment ``j + 1``.
        """
        check_is_fitted(self)
        Z = self._scaled(self._check_X(X, fitting=False))
        c = self.cluster_centers_
        d2 = (Z**2).sum(1)[:, None] - 2 * Z @ c.T + (c**2).sum(1)[None, :]
        return np.sqrt(np.maximum(d2, 0.0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of :meth:`transform`'s columns: ``distance_1`` .. ``distance_k``."""
        check_is_fitted(self)
        return np.asarray([f"distance_{j}" for j in range(1, self.n_clusters_ + 1)], dtype=object)

    def projection(
        self, X: pd.DataFrame, labels: np.ndarray | None = None, *, max_points: int | None = None
    ) -> pd.DataFrame:
        """2-D PCA coordinates of customers and segment centres, for a scatter chart.

        Parameters
        ----------
        X : pandas.DataFrame
            Customers (the training frame or new ones).
        labels : array of int, optional
            Their segments; :meth:`predict` by default.
        max_points : int, optional
            Keep a seeded random subsample of this many customers (charts of a million
            points help nobody). Centres are always kept.

        Returns
        -------
        pandas.DataFrame
            ``customer_id`` (or the index), ``segment``, ``pc1``, ``pc2``, ``is_centre``;
            ``attrs["explained_variance_ratio"]`` holds the two components' shares.
        """
        check_is_fitted(self)
        labels = self.predict(X) if labels is None else np.asarray(labels)
        keep = np.arange(len(X))
        if max_points is not None and len(X) > max_points:
            seed = self.random_state if isinstance(self.random_state, Integral) else 0
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(len(X), max_points, replace=False))
        Z = self._scaled(self._check_X(X.iloc[keep], fitting=False))
        P = self.pca_.transform(Z)
        C = self.pca_.transform(self.cluster_centers_)
        pts = pd.DataFrame(
            {
                "customer_id": X.index[keep].astype("str"),
                "segment": labels[keep],
                "pc1": P[:, 0],
                "pc2": P[:, 1] if P.shape[1] > 1 else 0.0,
                "is_centre": False,
            }
        )
        cen = pd.DataFrame(
            {
                "customer_id": pd.array([pd.NA] * len(C), dtype="str"),
                "segment": np.arange(1, len(C) + 1),
                "pc1": C[:, 0],
                "pc2": C[:, 1] if C.shape[1] > 1 else 0.0,
                "is_centre": True,
            }
        )
        out = pd.concat([pts, cen], ignore_index=True)
        out.attrs["explained_variance_ratio"] = self.pca_.explained_variance_ratio_.tolist()
        return out

    def summary(self) -> dict[str, Any]:
        """The choice of k and its evidence, JSON-ready (for a findings file)."""
        check_is_fitted(self)
        return {
            "n_clusters": int(self.n_clusters_),
            "k_range": list(self._check_k_range()),
            "k_silhouette": self.k_silhouette_,
            "k_bic": self.k_bic_,
            "rule": self.k_rule_,
            "stability": self.stability_,
            "features": list(self.features_),
            "n_customers": len(self.labels_),
        }


# --------------------------------------------------------------------------------------
# Profiles and names
# --------------------------------------------------------------------------------------


@dataclass
class SegmentProfiles:
    """Who is in each segment.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per segment: ``segment``, ``name``, ``description``, ``auto_name``, ``n``,
        ``share``, ``distinctive`` (the features behind the name).
    index : pandas.DataFrame
        Tidy, one row per segment x feature: ``segment``, ``name``, ``feature``, ``n``
        (customers with the feature observed), ``mean``, ``overall_mean``, ``index``
        (100 x mean / overall mean; missing when the overall mean is 0), ``std_diff``
        (difference in overall standard deviations).
    """

    summary: pd.DataFrame
    index: pd.DataFrame

    def heatmap(self, value: str = "index") -> pd.DataFrame:
        """Segments x features matrix of ``value`` (``"index"`` or ``"std_diff"``), rows in
        segment order, labelled by name -- the data of a profile heatmap."""
        m = self.index.pivot(index="segment", columns="feature", values=value)
        feats = list(dict.fromkeys(self.index["feature"]))
        m = m[feats].sort_index()
        m.index = self.summary.set_index("segment").loc[m.index, "name"].to_numpy()
        m.index.name = "segment"
        return m

    def names(self) -> dict[int, str]:
        """Segment number -> name."""
        return dict(zip(self.summary["segment"], self.summary["name"], strict=True))


def _name_key(names: Mapping[Any, str] | None, segment: int, auto: str) -> str | None:
    if not names:
        return None
    for key in (segment, str(segment), auto):
        if key in names:
            return names[key]
    return None


def _auto_name(z: pd.Series, n_words: int, min_diff: float, noun: str) -> tuple[str, list[str]]:
    """Name from the features furthest from the overall mean (in SDs)."""
    words: list[str] = []
    used: list[str] = []
    purpose = None
    pz = z[[c for c in z.index if str(c).startswith(PURPOSE_PREFIX)]]
    if len(pz) and pz.max() >= min_diff:
        purpose = str(pz.idxmax())[len(PURPOSE_PREFIX) :].replace("_", " ")
    for feat in z.drop(pz.index).abs().sort_values(ascending=False, kind="stable").index:
        if len(words) >= n_words or abs(z[feat]) < min_diff:
            break
        hi, lo = PHRASES.get(str(feat), (None, None))
        phrase = hi if z[feat] > 0 else lo
        if phrase and phrase not in words:
            words.append(phrase)
            used.append(f"{feat} {'+' if z[feat] > 0 else '-'}{abs(z[feat]):.1f} SD")
    head = f"{purpose} travellers" if purpose else noun
    return (" ".join([*words, head]) if words else f"typical {noun}"), used


def profile_segments(
    features: pd.DataFrame,
    labels: Sequence[int] | np.ndarray | pd.Series,
    *,
    columns: Sequence[str] | None = None,
    names: Mapping[int | str, str] | None = None,
    descriptions: Mapping[int | str, str] | None = None,
    name_features: Sequence[str] | None = None,
    n_words: int = 3,
    min_diff: float = 0.3,
    noun: str = "customers",
) -> SegmentProfiles:
    """Size, feature means against the overall mean, and a name for each segment.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per customer (raw, unscaled features; may include survey features, whose
        means are over respondents).
    labels : array of int
        Segment of each row of ``features`` (e.g. ``segmenter.labels_``).
    columns : sequence of str, optional
        Features to profile; all numeric columns by default.
    names, descriptions : mapping, optional
        Consultant's names and descriptions, keyed by segment number (int or str) or by the
        automatic name; unnamed segments keep the automatic name.
    name_features : sequence of str, optional
        Features allowed in automatic names; those in :data:`PHRASES` and the trip-purpose
        shares by default.
    n_words : int, default=3
        Most distinctive features named.
    min_diff : float, default=0.3
        Smallest standardised difference (segment mean - overall mean, in overall SDs) worth a
        word.
    noun : str, default="customers"
        The noun of a name ("frequent app-booking customers"); replaced by "<purpose>
        travellers" when a trip-purpose share stands out.

    Returns
    -------
    SegmentProfiles
    """
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise ValueError(f"{len(labels)} labels for {len(features)} customers")
    columns = list(features.select_dtypes("number").columns if columns is None else columns)
    X = features[columns].astype("float64")
    overall = X.mean()
    sd = X.std(ddof=0)
    segs = np.sort(np.unique(labels))
    rows, summary = [], []
    allowed = set(PHRASES) if name_features is None else set(name_features)
    for s in segs:
        part = X[labels == s]
        mean = part.mean()
        z = ((mean - overall) / sd.where(sd > 0)).fillna(0.0)
        zn = z[[c for c in z.index if c in allowed or str(c).startswith(PURPOSE_PREFIX)]]
        auto, used = _auto_name(zn, n_words, min_diff, noun)
        name = _name_key(names, int(s), auto) or auto
        desc = _name_key(descriptions, int(s), auto) or ""
        summary.append(
            {
                "segment": int(s),
                "name": name,
                "description": desc,
                "auto_name": auto,
                "n": len(part),
                "share": len(part) / len(X),
                "distinctive": "; ".join(used),
            }
        )
        for c in columns:
            rows.append(
                {
                    "segment": int(s),
                    "name": name,
                    "feature": c,
                    "n": int(part[c].notna().sum()),
                    "mean": float(mean[c]),
                    "overall_mean": float(overall[c]),
                    "index": float(100 * mean[c] / overall[c]) if overall[c] else float("nan"),
                    "std_diff": float(z[c]),
                }
            )
    summ = pd.DataFrame(summary)
    # two segments with the same automatic name: number them
    dup = summ["name"].duplicated(keep=False)
    summ.loc[dup, "name"] = (
        summ.loc[dup, "name"] + " (" + summ.loc[dup, "segment"].astype(str) + ")"
    )
    idx = pd.DataFrame(rows)
    idx["name"] = idx["segment"].map(dict(zip(summ["segment"], summ["name"], strict=True)))
    return SegmentProfiles(summary=summ, index=idx)


def _mean_ci(y: np.ndarray, level: float) -> tuple[float, float, float]:
    n = len(y)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(y.mean())
    if n < 2:
        return m, float("nan"), float("nan")
    se = float(y.std(ddof=1) / math.sqrt(n))
    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return m, m - q * se, m + q * se


def _wilson(k: float, n: int, level: float) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    den = 1 + z**2 / n
    c = (p + z**2 / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    # exact ends for 0 and n successes (c - h and c + h only equal them up to rounding)
    return (0.0 if k == 0 else max(0.0, c - h)), (1.0 if k == n else min(1.0, c + h))


def segment_outcomes(
    segments: pd.Series,
    *,
    outcomes: pd.DataFrame | None = None,
    cx_survey: pd.DataFrame | None = None,
    names: Mapping[int, str] | None = None,
    weight: str | None = None,
    level: float = 0.95,
    min_base: int = 30,
) -> pd.DataFrame:
    """Outcomes per segment with intervals.

    Parameters
    ----------
    segments : pandas.Series
        Segment per customer, indexed by ``customer_id``.
    outcomes : pandas.DataFrame, optional
        Per-customer outcomes indexed by ``customer_id`` (:func:`customer_outcomes`): means
        with t intervals, 0/1 columns as shares with Wilson intervals.
    cx_survey : pandas.DataFrame, optional
        Canonical survey: NPS per segment over the segment's responses, with the interval of
        :func:`rox_helpers.metrics.metric` (survey weights if ``weight`` is given).
    names : mapping, optional
        Segment number -> name (a ``name`` column).
    level : float, default=0.95
        Confidence level.
    min_base : int, default=30
        Reliability base: estimates on fewer customers (responses) are flagged ``suppressed``.

    Returns
    -------
    pandas.DataFrame
        One row per segment x outcome: ``segment``, ``name``, ``outcome``, ``n``,
        ``estimate``, ``ci_low``, ``ci_high``, ``suppressed``; NPS on -100..100.
    """
    from rox_helpers.metrics import metric

    seg = segments.copy()
    seg.index = seg.index.astype("str")
    rows = []
    if outcomes is not None:
        o = outcomes.copy()
        o.index = o.index.astype("str")
        o = o.join(seg.rename("segment"), how="inner")
        for col in [c for c in outcomes.columns if pd.api.types.is_numeric_dtype(outcomes[c])]:
            binary = _is_binary(o[col])
            for s, part in o.groupby("segment", sort=True):
                y = part[col].dropna().to_numpy(dtype="float64")
                if binary:
                    est = float(y.mean()) if len(y) else float("nan")
                    lo, hi = _wilson(float(y.sum()), len(y), level)
                else:
                    est, lo, hi = _mean_ci(y, level)
                rows.append(
                    {
                        "segment": int(s),
                        "outcome": col,
                        "n": len(y),
                        "estimate": est,
                        "ci_low": lo,
                        "ci_high": hi,
                    }
                )
    if cx_survey is not None and "nps" in cx_survey.columns:
        sv = cx_survey[cx_survey["customer_id"].notna()].copy()
        sv["segment"] = sv["customer_id"].astype("str").map(seg)
        sv = sv[sv["segment"].notna()]
        sv["segment"] = sv["segment"].astype("int64")
        if len(sv):
            res = metric(sv, "nps", by=["segment"], weight=weight, level=level)
            for r in res.itertuples():
                rows.append(
                    {
                        "segment": int(r.segment),
                        "outcome": "nps",
                        "n": int(r.n),
                        "estimate": r.estimate,
                        "ci_low": r.ci_low,
                        "ci_high": r.ci_high,
                    }
                )
    out = pd.DataFrame(rows, columns=["segment", "outcome", "n", "estimate", "ci_low", "ci_high"])
    out["suppressed"] = out["n"] < min_base
    out.insert(1, "name", out["segment"].map(dict(names or {})).astype("str"))
    return out


# --------------------------------------------------------------------------------------
# Behaviour vs demographics
# --------------------------------------------------------------------------------------


def _group_predict(
    train_g: np.ndarray, train_y: np.ndarray, test_g: np.ndarray, k: int
) -> np.ndarray:
    """Test predictions = training mean of the test customer's group (overall mean if empty)."""
    sums = np.bincount(train_g, weights=train_y, minlength=k)
    cnts = np.bincount(train_g, minlength=k)
    overall = train_y.mean()
    means = np.where(cnts > 0, sums / np.maximum(cnts, 1), overall)
    return means[test_g]


def _explained(y: np.ndarray, pred: np.ndarray, binary: bool, base: float) -> float:
    """Out-of-sample R² (1 - SSE / SST about the test mean) or, for 0/1 outcomes, the
    deviance R² against the training base rate (1 - D_model / D_null)."""
    if binary:
        p = np.clip(pred, 1e-6, 1 - 1e-6)
        p0 = np.clip(base, 1e-6, 1 - 1e-6)
        d_model = -2 * np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
        d_null = -2 * np.sum(y * np.log(p0) + (1 - y) * np.log(1 - p0))
        return float(1 - d_model / d_null) if d_null > 0 else float("nan")
    sst = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / sst) if sst > 0 else float("nan")


def _explained_terms(
    y: np.ndarray, pb: np.ndarray, pd_: np.ndarray, binary: bool, base: float
) -> np.ndarray:
    """Per-customer terms whose sums over a resample give :func:`_explained` of both
    predictions: the log-likelihood terms of the two models and of the base rate (0/1
    outcomes), or the two squared errors and the first two moments of ``y`` about its mean.
    """
    if binary:
        p0 = np.clip(base, 1e-6, 1 - 1e-6)

        def ll(pred):
            p = np.clip(pred, 1e-6, 1 - 1e-6)
            return y * np.log(p) + (1 - y) * np.log(1 - p)

        return np.column_stack([ll(pb), ll(pd_), y * np.log(p0) + (1 - y) * np.log(1 - p0)])
    yc = y - (y.mean() if len(y) else 0.0)
    return np.column_stack([(y - pb) ** 2, (y - pd_) ** 2, np.ones(len(y)), yc, yc**2])


def _gain_from_sums(sums: np.ndarray, binary: bool) -> float:
    """Behaviour's minus demographics' :func:`_explained` from the resample's sums of
    :func:`_explained_terms` (NaN where the measure is undefined)."""
    if binary:
        d_b, d_d, d_null = -2 * sums[0], -2 * sums[1], -2 * sums[2]
        if not d_null > 0:
            return float("nan")
        return float((1 - d_b / d_null) - (1 - d_d / d_null))
    n, s1, s2 = sums[2], sums[3], sums[4]
    sst = s2 - s1 * s1 / n if n > 0 else 0.0
    if not sst > 1e-12 * s2:  # no variation in the resample (rounding aside)
        return float("nan")
    return float((1 - sums[0] / sst) - (1 - sums[1] / sst))


def demographic_segments(
    train: pd.DataFrame, test: pd.DataFrame, columns: Sequence[str], k: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """k segments from demographics alone: KMeans on the one-hot coded columns (missing is a
    category of its own), fitted on ``train``; 0-based labels of train and test."""
    enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    cat = lambda d: d[list(columns)].astype("str").fillna("missing")  # noqa: E731
    A = enc.fit_transform(cat(train))
    B = enc.transform(cat(test))
    n_distinct = len(cat(train).drop_duplicates())  # = distinct one-hot rows
    km = KMeans(n_clusters=min(k, n_distinct), n_init=10, random_state=seed).fit(A)
    return km.labels_, km.predict(B)


def behaviour_vs_demographics(
    early_features: pd.DataFrame,
    demographics: pd.DataFrame,
    later_outcomes: pd.DataFrame,
    *,
    segmenter: BehaviouralSegmenter | None = None,
    demographic_columns: Sequence[str] = ("age_band", "region"),
    outcomes: Sequence[str] | None = None,
    test_size: float = 0.3,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: int = 0,
) -> pd.DataFrame:
    """Do behavioural segments predict later outcomes better than demographic ones?

    Behavioural segments are fitted on the training customers' features from an earlier
    period (``segmenter``, whose choice of k is kept); demographic segments with the same k
    come from ``demographic_columns`` alone. Each segmentation predicts a held-out customer's
    later outcome by the training mean of that customer's segment. Out-of-sample explained
    variance: R² for numeric outcomes, deviance R² (against the training base rate) for 0/1
    outcomes. The gain (behaviour - demographics) gets a percentile interval from a paired
    bootstrap of the held-out customers (the segmentations stay fixed).

    Parameters
    ----------
    early_features : pandas.DataFrame
        Behavioural features of the earlier period, indexed by ``customer_id``.
    demographics : pandas.DataFrame
        Customers with ``customer_id`` and the demographic columns.
    later_outcomes : pandas.DataFrame
        Later-period outcomes indexed by ``customer_id`` (:func:`customer_outcomes` with
        ``customers=early_features.index``); missing values (e.g. NPS of non-respondents)
        leave the customer out of that outcome only.
    segmenter : BehaviouralSegmenter, optional
        Unfitted estimator (cloned); default settings by default.
    demographic_columns : sequence of str, default=("age_band", "region")
    outcomes : sequence of str, optional
        Outcome columns; all numeric columns of ``later_outcomes`` by default.
    test_size : float, default=0.3
        Share of customers held out.
    n_boot : int, default=1000
        Bootstrap resamples of the held-out customers.
    level : float, default=0.95
    random_state : int, default=0

    Returns
    -------
    pandas.DataFrame
        One row per outcome: ``outcome``, ``measure`` (``"r2"`` or ``"deviance_r2"``),
        ``n_train``, ``n_test``, ``k``, ``behaviour``, ``demographics``, ``gain``,
        ``ci_low``, ``ci_high``, ``p_gain_le_0`` (share of resamples with no gain).
        ``attrs["k_rule"]`` says how k was chosen.
    """
    from sklearn.base import clone

    missing = [c for c in demographic_columns if c not in demographics.columns]
    if missing:
        raise DataValidationError(
            f"demographic column(s) {missing} not in the customer table",
            column=", ".join(missing),
            rule="demographics declared",
            fix="Map age band and region in data.customers.columns of engagement.yml.",
        )
    demo = demographics.dropna(subset=["customer_id"]).drop_duplicates("customer_id")
    demo = demo.set_index(demo["customer_id"].astype("str"))[list(demographic_columns)]
    ids = early_features.index.astype("str")
    # membership on Python strings: pandas' string isin of a million ids takes seconds
    ids = ids[ids.astype(object).isin(demo.index.astype(object))]
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(len(ids))
    n_test = round(test_size * len(ids))
    test_ids, train_ids = ids[np.sort(perm[:n_test])], ids[np.sort(perm[n_test:])]
    ef = early_features.copy()
    ef.index = ef.index.astype("str")
    seg = clone(segmenter) if segmenter is not None else BehaviouralSegmenter()
    if seg.random_state is None:
        seg.set_params(random_state=random_state)
    seg.fit(ef.loc[train_ids])
    k = seg.n_clusters_
    b_train, b_test = seg.labels_ - 1, seg.predict(ef.loc[test_ids]) - 1
    d_train, d_test = demographic_segments(
        demo.loc[train_ids], demo.loc[test_ids], demographic_columns, k, random_state
    )
    lo_ = later_outcomes.copy()
    lo_.index = lo_.index.astype("str")
    outcomes = list(lo_.select_dtypes("number").columns if outcomes is None else outcomes)
    boot_rng = np.random.default_rng(random_state + 1)
    rows = []
    for col in outcomes:
        ytr = lo_[col].reindex(train_ids).to_numpy(dtype="float64")
        yte = lo_[col].reindex(test_ids).to_numpy(dtype="float64")
        mtr, mte = ~np.isnan(ytr), ~np.isnan(yte)
        binary = _is_binary(lo_[col])
        y = yte[mte]
        base = float(ytr[mtr].mean())
        pb = _group_predict(b_train[mtr], ytr[mtr], b_test[mte], k)
        pd_ = _group_predict(d_train[mtr], ytr[mtr], d_test[mte], k)
        r_b, r_d = _explained(y, pb, binary, base), _explained(y, pd_, binary, base)
        # each resample as a count per held-out customer: the two measures are sums of
        # per-customer terms, so a resample is one weighted sum (not a copy of the arrays)
        terms = _explained_terms(y, pb, pd_, binary, base)
        gains = np.empty(n_boot)
        for b in range(n_boot):
            i = boot_rng.integers(0, len(y), len(y))
            gains[b] = _gain_from_sums(np.bincount(i, minlength=len(y)) @ terms, binary)
        a = (1 - level) / 2
        rows.append(
            {
                "outcome": col,
                "measure": "deviance_r2" if binary else "r2",
                "n_train": int(mtr.sum()),
                "n_test": int(mte.sum()),
                "k": int(k),
                "behaviour": r_b,
                "demographics": r_d,
                "gain": r_b - r_d,
                "ci_low": float(np.nanquantile(gains, a)) if n_boot else float("nan"),
                "ci_high": float(np.nanquantile(gains, 1 - a)) if n_boot else float("nan"),
                "p_gain_le_0": float(np.mean(gains <= 0)) if n_boot else float("nan"),
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["k_rule"] = seg.k_rule_
    return out


# --------------------------------------------------------------------------------------
# Typing tool
# --------------------------------------------------------------------------------------


@dataclass
class TypingTool:
    """A shallow decision tree that assigns a customer to a segment.

    Attributes
    ----------
    tree : sklearn.tree.DecisionTreeClassifier
        Fitted on the training customers (missing values handled by the tree itself).
    columns : list of str
        The questions / behaviours it may ask about.
    used : list of str
        Those it does ask about.
    accuracy, ci_low, ci_high : float
        Share of held-out customers assigned to their segment, with a Wilson interval.
    n_test : int
    rules : str
        The tree as indented text (:func:`sklearn.tree.export_text`), leaves labelled with
        segment names.
    confusion : pandas.DataFrame
        Held-out segment (rows) x assigned segment (columns), counts.
    """

    tree: DecisionTreeClassifier
    columns: list[str]
    used: list[str]
    accuracy: float
    ci_low: float
    ci_high: float
    n_test: int
    rules: str
    confusion: pd.DataFrame
    names: dict[int, str] = field(default_factory=dict)

    def assign(self, customers: pd.DataFrame) -> pd.Series:
        """Segment of each new customer (index kept)."""
        X = customers[self.columns].astype("float64")
        return pd.Series(self.tree.predict(X), index=customers.index, name="segment")


def typing_tool(
    features: pd.DataFrame,
    labels: Sequence[int] | np.ndarray,
    *,
    columns: Sequence[str] | None = None,
    max_depth: int = 3,
    min_samples_leaf: int | float = 0.02,
    test_size: float = 0.3,
    names: Mapping[int, str] | None = None,
    level: float = 0.95,
    random_state: int = 0,
) -> TypingTool:
    """A few questions or behaviours that assign a new customer to a segment.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per customer: the raw features (trees need no scaling) and/or survey answers.
    labels : array of int
        Their segments.
    columns : sequence of str, optional
        Candidate questions / behaviours; all numeric columns by default.
    max_depth : int, default=3
        Depth of the tree (at most ``2 ** max_depth`` leaves: short enough to print).
    min_samples_leaf : int or float, default=0.02
        Smallest leaf (count or share of training customers).
    test_size : float, default=0.3
        Share of customers held out for the accuracy (stratified by segment).
    names : mapping, optional
        Segment number -> name, for the rules.
    level : float, default=0.95
    random_state : int, default=0

    Returns
    -------
    TypingTool
    """
    from sklearn.model_selection import train_test_split

    columns = list(features.select_dtypes("number").columns if columns is None else columns)
    X = features[columns].astype("float64")
    y = np.asarray(labels)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    tree = DecisionTreeClassifier(
        max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=random_state
    ).fit(Xtr, ytr)
    pred = tree.predict(Xte)
    k = int((pred == yte).sum())
    lo, hi = _wilson(k, len(yte), level)
    names = dict(names or {})
    class_names = [f"{c}: {names[c]}" if c in names else f"segment {c}" for c in tree.classes_]
    rules = export_text(tree, feature_names=columns, class_names=class_names, decimals=2)
    used = [columns[i] for i in np.unique(tree.tree_.feature[tree.tree_.feature >= 0])]
    segs = np.unique(y)
    conf = pd.crosstab(
        pd.Categorical(yte, categories=segs), pd.Categorical(pred, categories=segs), dropna=False
    )
    conf.index.name, conf.columns.name = "segment", "assigned"
    return TypingTool(
        tree=tree,
        columns=columns,
        used=used,
        accuracy=k / len(yte),
        ci_low=lo,
        ci_high=hi,
        n_test=len(yte),
        rules=rules,
        confusion=conf,
        names=names,
    )


# --------------------------------------------------------------------------------------
# One engagement, end to end
# --------------------------------------------------------------------------------------


@dataclass
class SegmentationResult:
    """Everything notebook 02 shows and hands on.

    Attributes
    ----------
    features : pandas.DataFrame
        Behavioural (+ survey) features per segmented customer.
    segments : pandas.DataFrame
        ``customer_id``, ``segment``, ``name``.
    segmenter : BehaviouralSegmenter
    profiles : SegmentProfiles
    outcomes : pandas.DataFrame
        :func:`segment_outcomes` over the whole period.
    projection : pandas.DataFrame
        :meth:`BehaviouralSegmenter.projection` (subsampled).
    versus_demographics : pandas.DataFrame or None
        :func:`behaviour_vs_demographics` (``None`` without a split or demographics).
    typing : TypingTool
    notes : list of str
        What was left out and why (customers without interactions, skipped analyses).
    """

    features: pd.DataFrame
    segments: pd.DataFrame
    segmenter: BehaviouralSegmenter
    profiles: SegmentProfiles
    outcomes: pd.DataFrame
    projection: pd.DataFrame
    versus_demographics: pd.DataFrame | None
    typing: TypingTool
    notes: list[str] = field(default_factory=list)


def segment_engagement(
    data: EngagementData,
    *,
    features: Sequence[str] | None = None,
    k_range: tuple[int, int] | None = None,
    names: Mapping[int | str, str] | None = None,
    descriptions: Mapping[int | str, str] | None = None,
    split: pd.Timestamp | str | None = None,
    typing_columns: Sequence[str] | None = None,
    n_boot: int = 1000,
    random_state: int | None = None,
    segmenter_params: Mapping[str, Any] | None = None,
    features_table: pd.DataFrame | None = None,
    summaries: LogSummaries | None = None,
) -> SegmentationResult:
    """Segment a loaded engagement's customers and evaluate the segments.

    Parameters
    ----------
    data : EngagementData
        From :func:`rox_helpers.data.load_engagement`; needs interactions.
    features, k_range, names, descriptions : optional
        Default to ``config.segmentation`` (``features``, ``k_min``/``k_max``, ``names``,
        ``descriptions``), then to the module defaults.
    split : Timestamp or str, optional
        Start of the "later" period for :func:`behaviour_vs_demographics`; the middle of the
        interaction log by default.
    typing_columns : sequence of str, optional
        Questions / behaviours for the typing tool; the segmentation features by default.
    n_boot : int, default=1000
        Bootstrap resamples of the behaviour-vs-demographics gain.
    random_state : int, optional
        The engagement's ``seed`` by default.
    segmenter_params : mapping, optional
        Further :class:`BehaviouralSegmenter` parameters (e.g. ``n_bootstrap``).
    features_table : pandas.DataFrame, optional
        The setup step's ``customer_features`` of the same log: the whole-log features
        start from it (see :func:`behavioural_features`) instead of a second aggregation.
    summaries : LogSummaries, optional
        What the segmentation takes from the log, computed beforehand
        (:func:`log_summaries`; step 00 does it in the client's engine under ``extract:
        features``): then ``data.interactions`` is not read and may be None.

    Returns
    -------
    SegmentationResult
    """
    cfg = data.config
    sc = getattr(cfg, "segmentation", None)
    seed = int(cfg.seed if random_state is None else random_state)
    if features is None and sc is not None and sc.features:
        features = list(sc.features)
    if k_range is None:
        k_range = (sc.k_min, sc.k_max) if sc is not None else (2, 8)
    names = names if names is not None else (dict(sc.names) if sc is not None else None)
    descriptions = (
        descriptions if descriptions is not None else (dict(sc.descriptions) if sc else None)
    )
    customers = data.tables.get("customers")
    survey = data.tables.get("cx_survey")
    if summaries is None:
        if data.interactions is None:
            raise DataValidationError(
                "behavioural segmentation needs the interactions table",
                column="data.interactions",
                rule="interactions declared",
                fix="Declare the interaction log under data.interactions in engagement.yml.",
            )
        summaries = log_summaries(
            data.interactions,
            customers=customers,
            digital_channels=tuple(cfg.journey.digital_channels),
            split=split,
            precomputed=features_table,
        )
    notes: list[str] = []
    X = summaries.features
    if customers is not None:
        n_all = customers["customer_id"].nunique()
        notes.append(
            f"{n_all - len(X)} of {n_all} customers have no interaction and are not segmented."
        )
    min_observed = getattr(sc, "min_observed", 0.75) if sc is not None else 0.75
    enough = observed_enough(X, features, min_observed=min_observed)
    if not enough.all():
        notes.append(
            f"{int((~enough).sum())} of {len(X)} customers with interactions show too little "
            f"behaviour to place (under {min_observed:.0%} of the segmentation features "
            "observed, e.g. browsing without a booking or a stay) and are not segmented."
        )
        X = X.loc[enough]
    extra = dict(segmenter_params or {})
    if sc is not None and getattr(sc, "n_clusters", None) and "n_clusters" not in extra:
        extra["n_clusters"] = sc.n_clusters
    seg = BehaviouralSegmenter(
        features=features, k_range=tuple(k_range), random_state=seed, **extra
    ).fit(X)
    if survey is not None and "customer_id" in survey.columns:
        sv = survey_features(survey)
        X = X.join(sv, how="left")
    # named after what defines them (plus app/community use and declared trip purpose)
    profiles = profile_segments(
        X,
        seg.labels_,
        names=names,
        descriptions=descriptions,
        name_features=[*seg.features_, "app_user", "community_member"],
    )
    name_of = profiles.names()
    segments = pd.DataFrame({"customer_id": X.index.astype("str"), "segment": seg.labels_}).assign(
        name=lambda d: d["segment"].map(name_of)
    )
    s = segments.set_index("customer_id")["segment"]
    use_weight = cfg.measurement.weighting.use_client_weight
    weight = "weight" if survey is not None and use_weight and "weight" in survey else None
    outcomes = segment_outcomes(
        s,
        outcomes=summaries.outcomes.reindex(
            pd.Index(X.index, dtype="str", name="customer_id")
        ).fillna(0.0),
        cx_survey=survey,
        names=name_of,
        weight=weight,
        min_base=cfg.privacy.reliability_base,
    )
    proj = seg.projection(X, seg.labels_, max_points=5000)
    proj["name"] = proj["segment"].map(name_of)

    vs = None
    if (
        customers is not None
        and {"age_band", "region"} <= set(customers.columns)
        and summaries.early is not None
        and summaries.later is not None
    ):
        split = summaries.split
        early = summaries.early
        later = _with_nps(summaries.later.copy(), survey, split, None)
        vs = behaviour_vs_demographics(
            early,
            customers,
            later,
            segmenter=BehaviouralSegmenter(
                features=features,
                n_clusters=seg.n_clusters_,
                random_state=seed,
                **{k: v for k, v in extra.items() if k != "n_clusters"},
            ),
            n_boot=n_boot,
            random_state=seed,
        )
        vs.attrs["split"] = str(pd.Timestamp(split).date())
    else:
        notes.append(
            "Behaviour vs demographics skipped: the customer table has no age band and region."
        )
    typing = typing_tool(
        X, seg.labels_, columns=typing_columns or seg.features_, names=name_of, random_state=seed
    )
    return SegmentationResult(
        features=X,
        segments=segments,
        segmenter=seg,
        profiles=profiles,
        outcomes=outcomes,
        projection=proj,
        versus_demographics=vs,
        typing=typing,
        notes=notes,
    )


def segmentation_findings(
    result: SegmentationResult, *, step: str = "02", charts: Mapping[str, str] | None = None
) -> list:
    """The findings of the segmentation step, each with its base and interval.

    ``charts``: the notebook's chart reference (:attr:`~rox_helpers.artifacts.Finding.chart`)
    for each kind of finding that has one, by kind: ``segments``, ``worth``,
    ``versus_demographics``, ``typing`` (see :func:`~rox_helpers.artifacts.chart_namer`).
    """
    from rox_helpers.artifacts import Finding, chart_namer, interval_text

    chart = chart_namer(charts, ("segments", "worth", "versus_demographics", "typing"))

    out = []
    seg = result.segmenter
    summ = result.profiles.summary
    out.append(
        Finding(
            step=step,
            headline=f"{seg.n_clusters_} behavioural segments: "
            + "; ".join(f"{r.name} ({r.share:.0%})" for r in summ.itertuples()),
            evidence=[f"{r.name}: {r.n:,} customers; {r.distinctive}" for r in summ.itertuples()]
            + [
                f"number of segments: {seg.k_rule_}",
                f"stability (adjusted Rand index over bootstrap resamples): "
                f"{seg.stability_['ari']:.2f} [{seg.stability_['ci_low']:.2f}, "
                f"{seg.stability_['ci_high']:.2f}]",
                *result.notes,
            ],
            so_what="Segments built from what customers do, so each can be reached by "
            "changing what they meet.",
            confidence="high" if seg.stability_["ari"] >= 0.8 else "medium",
            chart=chart("segments"),
            evidence_kind="grouping",
            base=f"{int(summ['n'].sum()):,} customers segmented",
            interval=interval_text(
                seg.stability_["ci_low"],
                seg.stability_["ci_high"],
                "{:.2f}",
                of="stability, adjusted Rand index over bootstrap resamples",
            ),
        )
    )
    o = result.outcomes
    o = o[~o["suppressed"].astype(bool)] if "suppressed" in o else o
    if len(o):
        first = o[o["outcome"] == o["outcome"].iloc[0]]
        worth = first.loc[first["estimate"].idxmax()]
        out.append(
            Finding(
                step=step,
                headline="The segments differ in what they are worth",
                evidence=[
                    f"{r.name}, {r.outcome}: {r.estimate:,.3g} (95% CI {r.ci_low:,.3g} to "
                    f"{r.ci_high:,.3g}; n = {int(r.n):,})"
                    for r in o.itertuples()
                ],
                so_what="Where value concentrates, experience investments return most.",
                confidence="medium",
                chart=chart("worth"),
                evidence_kind="association",
                base=f"{int(first['n'].sum()):,} customers in {first['name'].nunique()} "
                f"segments ({worth['outcome']})",
                interval=interval_text(
                    worth.ci_low,
                    worth.ci_high,
                    "{:,.3g}",
                    of=f"{worth['name']}, {worth['outcome']}: the highest segment",
                ),
            )
        )
    vs = result.versus_demographics
    if vs is not None and len(vs):
        better = vs[vs["ci_low"] > 0]
        # the figure the headline rests on: the first outcome behaviour predicts better, or
        # (none) the first outcome compared
        lead = next((better if len(better) else vs).itertuples())
        out.append(
            Finding(
                step=step,
                headline=(
                    f"Behaviour predicts later {', '.join(better['outcome'])} better than "
                    "demographics"
                    if len(better)
                    else "Behavioural segments predict no later outcome better than demographics"
                ),
                evidence=[
                    f"{r.outcome}: explained {r.behaviour:.1%} by behaviour vs "
                    f"{r.demographics:.1%} by age band and region (gain {r.gain:+.1%}, 95% CI "
                    f"{r.ci_low:+.1%} to {r.ci_high:+.1%}; {int(r.n_test):,} held-out customers)"
                    for r in vs.itertuples()
                ]
                + [
                    f"segments from behaviour before {vs.attrs.get('split', 'the split')}, "
                    "outcomes after it, held-out customers"
                ],
                so_what="Action 4: understand customers by their behaviour, not their "
                "demographics.",
                confidence="medium",
                chart=chart("versus_demographics"),
                evidence_kind="prediction",
                base=f"{int(lead.n_test):,} held-out customers",
                interval=interval_text(
                    lead.ci_low, lead.ci_high, "{:+.1%}", of=f"gain in {lead.outcome} explained"
                ),
            )
        )
    ty = result.typing
    out.append(
        Finding(
            step=step,
            headline=f"{len(ty.used)} questions assign a new customer to a segment, right "
            f"{ty.accuracy:.0%} of the time",
            evidence=[
                f"uses {', '.join(ty.used)}; held-out accuracy {ty.accuracy:.1%} (95% CI "
                f"{ty.ci_low:.1%} to {ty.ci_high:.1%}, n = {ty.n_test:,})"
            ],
            so_what="The client can tag customers in its own systems and next year's survey.",
            confidence="medium",
            chart=chart("typing"),
            evidence_kind="prediction",
            base=f"{ty.n_test:,} held-out customers",
            interval=interval_text(ty.ci_low, ty.ci_high, "{:.1%}", of="accuracy"),
        )
    )
    return out
