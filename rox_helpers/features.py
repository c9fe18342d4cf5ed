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


def exact_sum(column: ibis.Value, **kw) -> ibis.Value:
    """The engine's sum of a money or duration column, as float64, exact to a millionth
    whatever order the engine's threads add the rows in (``kw`` go to ``sum``, e.g.
    ``where=``). A float sum over rows several threads read is added up in a different
    order each run and differs in its last digits, which later steps carry into their
    figures; summed as a DECIMAL it is exact. Null when there is nothing to add."""
    return column.cast(EXACT).sum(**kw).cast("float64")


def exact_mean(column: ibis.Value) -> ibis.Value:
    """The engine's mean of a column as :func:`exact_sum` over the count of its values:
    the same whatever order the rows are added in; null when there are none."""
    return exact_sum(column) / column.count().nullif(0).cast("float64")


def _safe(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "other"


def _ratio(num: ibis.Value, den: ibis.Value) -> ibis.Value:
    """``num / den`` as float64 from two integer counts (NULL when ``den`` is 0)."""
    return num.cast("float64") / den.nullif(0).cast("float64")


def _n_distinct(t: ibis.Table, value: ibis.Value, name: str) -> ibis.Table:
    """Per customer, the number of distinct non-null ``value`` (``nunique``)."""
    pairs = t.select("customer_id", _v=value).filter(ibis._._v.notnull()).distinct()
    return pairs.group_by("customer_id").aggregate(**{name: pairs.count()})


def _join_count(f: ibis.Table, counts: ibis.Table, name: str) -> ibis.Table:
    """``f`` with the count column ``name`` of ``counts`` (0 for customers it lacks)."""
    c = counts.rename(_cid="customer_id")
    j = f.left_join(c, f.customer_id == c._cid)
    return j.drop("_cid").mutate(**{name: j[name].fill_null(0)})


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
        "first_seen": t.timestamp.min(),
        "last_seen": t.timestamp.max(),
    }
    cols = set(t.columns)
    if "revenue" in cols:
        # exact (DECIMAL) sums: a parallel float sum differs in the last digit run to run
        aggs["spend"] = exact_sum(t.revenue.fill_null(0))
        paid = t.revenue.fill_null(0) > 0
        if "completed" in cols:
            paid = paid & t.completed.fill_null(False)
        aggs["purchases"] = t.count(where=paid)
    if "completed" in cols:
        # counts, not a mean of booleans cast to numbers (PostgreSQL casts no boolean to
        # bigint or double), so every engine divides the same two integers
        aggs["completion_rate"] = _ratio(t.count(where=t.completed), t.completed.count())
    if "duration_min" in cols:
        aggs["avg_duration_min"] = exact_mean(t.duration_min)
    if "channel" in cols:
        if channels is None:
            channels = sorted(
                c for c in t.select("channel").distinct().to_pandas()["channel"].dropna()
            )
        n = t.count()
        for ch in channels:
            aggs[f"share_{_safe(ch)}"] = _ratio(t.count(where=t.channel == ch), n)
        aggs["digital_share"] = _ratio(t.count(where=t.channel.isin(list(digital_channels))), n)
    f = t.group_by("customer_id").aggregate(**aggs)
    # distinct counts as GROUP BYs of their own, joined back: engines spill a GROUP BY to
    # disk, not COUNT(DISTINCT) (DuckDB runs out of memory on 100M rows), and Spark needs no
    # Expand of every row per distinct column
    distinct = {"frequency": t.timestamp.date()}
    if "journey_stage" in cols:
        distinct["stages_reached"] = t.journey_stage
    if "touchpoint" in cols:
        distinct["touchpoints_used"] = t.touchpoint
    rest = [c for c in aggs if c != "n_interactions"] + [c for c in distinct if c != "frequency"]
    for name, value in distinct.items():
        f = _join_count(f, _n_distinct(t, value, name), name)
    f = f.select("customer_id", "n_interactions", "frequency", *rest)
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
    """:func:`customer_features` executed into pandas, in code-point order of ``customer_id``
    whatever the engine's collation (a PostgreSQL database may sort ``C-a`` after ``C-B``)."""
    df = customer_features(interactions, customers=customers, **kw).to_pandas()
    return df.sort_values("customer_id", kind="stable", ignore_index=True)
