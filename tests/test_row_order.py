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


def _tied_log(n: int = 300) -> pd.DataFrame:
    """Per guest: two failed web bookings at the same minute on two touchpoints, then a
    completed phone booking and a stay; which of the tied pair "switched" to the phone, and
    the journey's first channel, once came back in the engine's order."""
    rows = []
    for i in range(n):
        c, t0 = f"C{i:04d}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=i % 200)
        for tp, ch, done, dt in (
            ("tp_b", "web", False, 0),
            ("tp_a", "web", False, 0),
            ("phone_desk", "phone", True, 1),
            ("front_desk", "walk_in", True, 60 * 24 * 20),
        ):
            stage = "check_in" if tp == "front_desk" else "book"
            rows.append((c, t0 + pd.Timedelta(minutes=dt), stage, tp, ch, done, 100.0))
    # a later stay of every other guest, so the journeys have an outcome to follow
    for i in range(0, n, 2):
        t1 = pd.Timestamp("2024-01-01") + pd.Timedelta(days=i % 200 + 90)
        rows.append((f"C{i:04d}", t1, "check_in", "front_desk", "walk_in", True, 80.0))
    cols = ["customer_id", "timestamp", "journey_stage", "touchpoint", "channel", "completed"]
    return pd.DataFrame(rows, columns=[*cols, "revenue"]).assign(unit_id="H1")


def test_ties_in_a_journey_do_not_depend_on_the_row_order():
    from rox_helpers.journey import build_journeys, log_moment_frame

    log = _tied_log()
    stages = ["book", "check_in"]
    frames, paths = [], []
    for seed in (0, 1, 2):
        t = ibis.memtable(log.sample(frac=1.0, random_state=seed).reset_index(drop=True))
        fr = log_moment_frame(t, stages, horizon=3, data_end="2024-12-31")
        frames.append(fr)
        paths.append(build_journeys(t, stages).paths)
    switched = frames[0].groupby("touchpoint")["switched"].agg(["sum", "count"])
    # in the numbering's order (touchpoint breaks the tie) tp_b, the later, switched
    assert switched.loc["tp_b", "sum"] == switched.loc["tp_b", "count"] > 200
    assert switched.loc["tp_a", "sum"] == 0
    for fr, p in zip(frames[1:], paths[1:], strict=True):
        _same(frames[0], fr)
        _same(paths[0], p)
