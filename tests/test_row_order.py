"""What the engine brings back does not depend on the order of the log's rows.

DuckDB adds a group's rows in whatever order its threads read them and returns the groups in
whatever order its threads finish, so a float sum in the engine, or a pandas sum over the
rows it returned, differs in its last digits from run to run; a later step (revenue per
stay, the business case's scale to the hotels' revenue) then carries that into its figures.
This was found by the sample's determinism test (test_sample.py), one run in several. Here
every engine-side aggregation the steps use runs on the sample's log and on the same rows
shuffled, and must come back identical to the last bit and in the same row order.
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def logs(loaded):
    """The sample's validated log, in its order and shuffled (two DuckDB tables)."""
    log = loaded.interactions.to_pandas()
    shuffled = log.sample(frac=1.0, random_state=3).reset_index(drop=True)
    return ibis.memtable(log), ibis.memtable(shuffled), log, shuffled


def test_a_float_sum_of_the_logs_revenue_depends_on_the_order(logs):
    """What makes the tests below able to fail: added up in another order, the log's
    revenue comes out different in the last digits."""
    *_, log, shuffled = logs
    assert sum(log["revenue"].fillna(0).tolist()) != sum(shuffled["revenue"].fillna(0).tolist())


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(), b.reset_index(), check_exact=True)


def test_monthly_activity(logs):
    from rox_helpers.actions import monthly_activity

    a, b, *_ = logs
    got_a, got_b = monthly_activity(a), monthly_activity(b)
    _same(got_a, got_b)
    # the revenue per stay of step 06a, summed in pandas over these rows
    assert got_a["revenue"].sum() / got_a["stays"].sum() == (
        got_b["revenue"].sum() / got_b["stays"].sum()
    )
    assert got_a[["customer_id", "month"]].equals(
        got_a[["customer_id", "month"]].sort_values(["customer_id", "month"], ignore_index=True)
    )


def test_unit_month_aggregates(logs):
    from rox_helpers.engines import unit_month_aggregates

    a, b, *_ = logs
    _same(unit_month_aggregates(a), unit_month_aggregates(b))


def test_customer_features(logs):
    from rox_helpers.features import features_frame

    a, b, *_ = logs
    _same(features_frame(a), features_frame(b))


def test_stay_summary(logs):
    from rox_helpers.value import stay_summary

    a, b, *_ = logs
    end = pd.Timestamp("2030-01-01")
    _same(stay_summary(a, end=end), stay_summary(b, end=end))


def test_log_moment_frame(logs, loaded):
    from rox_helpers.journey import log_moment_frame

    a, b, *_ = logs
    stages = ["discover", "book", "pre_arrival", "check_in", "stay", "check_out"]
    fa = log_moment_frame(a, stages, customers=loaded.tables["customers"])
    fb = log_moment_frame(b, stages, customers=loaded.tables["customers"])
    assert len(fa) > 1000 and np.isfinite(fa["prior_revenue"]).all()
    _same(fa, fb)


def test_behavioural_features_and_outcomes(logs, loaded):
    """The segmentation's inputs: the trip features (means of lead times, nights and spend
    per night after a window over each guest's rows) and the outcomes (revenue sums)."""
    from rox_helpers.segmentation import behavioural_features, customer_outcomes

    a, b, *_ = logs
    cust = loaded.tables["customers"]
    fa, fb = behavioural_features(a, customers=cust), behavioural_features(b, customers=cust)
    assert fa["spend_per_night"].notna().sum() > 1000
    _same(fa, fb)
    ids = cust["customer_id"]
    _same(customer_outcomes(a, customers=ids), customer_outcomes(b, customers=ids))
