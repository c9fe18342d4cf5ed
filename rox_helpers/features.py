"""Customer-level behavioural features from the validated interaction log, as Ibis expressions.

The log comes from :mod:`rox_helpers.interactions` (DuckDB by default); the aggregation runs
in the engine and only one row per customer comes back, so the same code can later run on
Spark, Snowflake or BigQuery.

Features (one row per customer)
-------------------------------
``n_interactions``   rows in the log
``frequency``        distinct days with at least one interaction (visits)
``purchases``        completed interactions with revenue > 0
``spend``            total revenue
``first_seen`` / ``last_seen`` and ``recency_days`` (to the reference date)
``tenure_days``      reference date minus signup date (or first seen)
``share_<channel>``  channel mix: share of interactions per channel
``digital_share``    share through digital channels (``journey.digital_channels``)
``stages_reached``   distinct journey stages
``touchpoints_used`` distinct touchpoints
``completion_rate``  share of interactions completed
``avg_duration_min`` mean duration
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------


EXACT = dt.Decimal(38, 6)


def _safe(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "other"


def customer_features(
    interactions: ibis.Table,
    *,
    customers: pd.DataFrame | None = None,
    reference_date: pd.Timestamp | None = None,
    digital_channels: Sequence[str] = ("web", "app"),
    channels: Sequence[str] | None = None,
) -> ibis.Table:
    """Behavioural features per customer, as an (unexecuted) Ibis expression.

    Parameters
    ----------
    interactions : ibis.Table
        Canonical, validated interactions (``customer_id``, ``timestamp`` and
        whichever optional columns exist).
    customers : pandas.DataFrame, optional
        Canonical customers; gives ``tenure_days`` from ``signup_date``.
    reference_date : Timestamp, optional
        "Today" for recency and tenure; the day after the last interaction
        by default, so reruns give the same numbers.
    digital_channels : sequence of str
        Channels counted as digital.
    channels : sequence of str, optional
        Channels for the channel-mix shares; found from the data when omitted.

    Returns
    -------
    ibis.Table
        One row per ``customer_id`` with the columns listed in the module docstring.
    """
    t = interactions.filter(interactions.customer_id.notnull())
    if reference_date is None:
        last = t.timestamp.max().to_pyarrow().as_py()
        # no valid interactions left: any date gives the same (empty) result
        last = pd.Timestamp("2000-01-01") if last is None else pd.Timestamp(last)
        reference_date = last.normalize() + pd.Timedelta(days=1)
    ref = ibis.literal(pd.Timestamp(reference_date).to_pydatetime(), type=dt.Timestamp())
    aggs: dict[str, ibis.Value] = {
        "n_interactions": t.count(),
        "frequency": t.timestamp.date().nunique(),
        "first_seen": t.timestamp.min(),
        "last_seen": t.timestamp.max(),
    }
    cols = set(t.columns)
    if "revenue" in cols:
        # exact (DECIMAL) sums: a parallel float sum differs in the last digit run to run
        aggs["spend"] = t.revenue.fill_null(0).cast(EXACT).sum().cast("float64")
        paid = t.revenue.fill_null(0) > 0
        if "completed" in cols:
            paid = paid & t.completed.fill_null(False)
        aggs["purchases"] = paid.cast("int64").sum()
    if "completed" in cols:
        aggs["completion_rate"] = t.completed.cast("float64").mean()
    if "duration_min" in cols:
        aggs["avg_duration_min"] = t.duration_min.cast(EXACT).sum().cast(
            "float64"
        ) / t.duration_min.count().nullif(0).cast("float64")
    if "channel" in cols:
        if channels is None:
            channels = sorted(
                c for c in t.select("channel").distinct().to_pandas()["channel"].dropna()
            )
        n = t.count().cast("float64")
        for ch in channels:
            aggs[f"share_{_safe(ch)}"] = (t.channel == ch).cast("int64").sum().cast("float64") / n
        aggs["digital_share"] = (
            t.channel.isin(list(digital_channels)).cast("int64").sum().cast("float64") / n
        )
    if "journey_stage" in cols:
        aggs["stages_reached"] = t.journey_stage.nunique()
    if "touchpoint" in cols:
        aggs["touchpoints_used"] = t.touchpoint.nunique()
    f = t.group_by("customer_id").aggregate(**aggs)
    f = f.mutate(recency_days=(ref.date() - f.last_seen.date()).cast("int64"))
    start = f.first_seen
    if customers is not None and "signup_date" in customers.columns:
        signup = ibis.memtable(
            customers[["customer_id", "signup_date"]]
            .dropna(subset=["customer_id"])
            .assign(signup_date=lambda d: d["signup_date"].astype("datetime64[us]"))
        )
        f = f.left_join(signup, f.customer_id == signup.customer_id).drop("customer_id_right")
        start = ibis.coalesce(f.signup_date.cast(dt.Timestamp()), f.first_seen)
    f = f.mutate(tenure_days=(ref.date() - start.date()).cast("int64"))
    if "signup_date" in f.columns:
        f = f.drop("signup_date")
    return f.order_by("customer_id")


def features_frame(
    interactions: ibis.Table, *, customers: pd.DataFrame | None = None, **kw
) -> pd.DataFrame:
    """:func:`customer_features` executed into pandas."""
    return customer_features(interactions, customers=customers, **kw).to_pandas()
