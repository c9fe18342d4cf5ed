"""Journeys, funnel arithmetic, intervals, BH, channel gaps, moments, languages and themes."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rox_helpers import journey
from rox_helpers.errors import ConfigError

STAGES = ["discover", "book", "pre_arrival", "check_in", "stay", "check_out", "post_stay"]
T0 = pd.Timestamp("2025-01-01 10:00")


def _rows(cust, unit, channel, steps, start, revenue=None):
    """Contacts of one guest: ``steps`` is a list of (stage, completed, hours after start)."""
    revenue = revenue or {}
    return [
        {
            "customer_id": cust,
            "unit_id": unit,
            "channel": channel,
            "journey_stage": stage,
            "completed": done,
            "timestamp": start + pd.Timedelta(hours=h),
            "revenue": float(revenue.get(stage, 0.0)),
        }
        for stage, done, h in steps
    ]


def hand_log(with_completed: bool = True) -> pd.DataFrame:
    """Nine journeys whose funnel is worked out by hand in :func:`test_funnel_arithmetic`.

    A  web  H1: the whole way to check-out (revenue 200 + 50)              completed
    B  web  H1: discover, dead end; 30 days later discover, book dead end  2 journeys, stopped
    C  phone H1: discover twice a day apart, book, pre-arrival dead end     stopped (no-show)
    D  front_desk H2: walk-in book, stay, post-stay (150)                  completed, enters at book
    E  app  H1: discover, book completed, then the log ends                open
    F  web  H1: discover dead end; app H2 the same day, to check-out (300)  2 journeys (units)
    G  web  H1: discover dead end, again a day later, dead end             1 journey, stopped
    """
    full = [
        ("discover", True, 0),
        ("book", True, 1),
        ("pre_arrival", True, 100),
        ("check_in", True, 120),
        ("stay", True, 121),
        ("check_out", True, 140),
    ]
    rows = []
    rows += _rows("A", "H1", "web", full, T0, {"book": 200, "stay": 50})
    rows += _rows("B", "H1", "web", [("discover", False, 0)], T0)
    rows += _rows(
        "B", "H1", "web", [("discover", True, 0), ("book", False, 1)], T0 + pd.Timedelta(days=30)
    )
    rows += _rows(
        "C",
        "H1",
        "phone",
        [
            ("discover", True, 0),
            ("discover", True, 24),
            ("book", True, 25),
            ("pre_arrival", False, 60),
        ],
        T0,
        {"book": 100},
    )
    walk_in = [
        ("book", True, 0),
        ("check_in", True, 0.2),
        ("stay", True, 1),
        ("check_out", True, 20),
        ("post_stay", False, 60),
    ]
    rows += _rows("D", "H2", "front_desk", walk_in, T0, {"book": 150})
    rows += _rows(
        "E", "H1", "app", [("discover", True, 0), ("book", True, 1)], T0 + pd.Timedelta(days=59)
    )
    rows += _rows("F", "H1", "web", [("discover", False, 0)], T0)
    rows += _rows("F", "H2", "app", full, T0 + pd.Timedelta(hours=2), {"book": 300})
    rows += _rows("G", "H1", "web", [("discover", False, 0), ("discover", False, 24)], T0)
    df = pd.DataFrame(rows)
    if not with_completed:
        df = df.drop(columns="completed")
    return df


@pytest.fixture(scope="module")
def hand_journeys() -> journey.Journeys:
    return journey.build_journeys(ibis.memtable(hand_log()), STAGES, goal_stage="check_out")


# --------------------------------------------------------------------------------------
# Journeys and the funnel
# --------------------------------------------------------------------------------------


def test_journeys_are_rebuilt_by_the_session_rules(hand_journeys) -> None:
    p = hand_journeys.paths
    assert hand_journeys.info["n_journeys"] == 9
    by_status = p.groupby("status")["journeys"].sum().to_dict()
    assert by_status == {"completed": 3, "open": 1, "stopped": 5}
    stopped = p[p["status"] == "stopped"].groupby("last")["journeys"].sum().to_dict()
    assert stopped == {"discover": 3, "book": 1, "pre_arrival": 1}
    walk_in = p[p["entry"] == "book"]
    assert walk_in["channel"].tolist() == ["front_desk"] and walk_in["last"].tolist() == [
        "post_stay"
    ]
    # the completed journeys' revenue: 250 + 150 + 300
    assert p.loc[p["status"] == "completed", "revenue"].sum() == pytest.approx(700.0)
    tr = hand_journeys.transitions.set_index("from_stage")
    # discover -> book: A 1 h, B 1 h, C 25 h (first discover to book), E 1 h, F 1 h
    assert tr.loc["discover", "n"] == 5
    assert tr.loc["discover", "median_days"] == pytest.approx(1 / 24)


def test_funnel_arithmetic(hand_journeys) -> None:
    f = journey.funnel(hand_journeys).set_index("stage")
    assert f.loc["discover", ["reached", "stopped", "continued"]].tolist() == [8, 3, 5]
    # book: A, B2, C, D (walk-in), F2 reach it and resolve; E is open (censored)
    assert f.loc["book", ["reached", "stopped", "open"]].tolist() == [5, 1, 1]
    assert f.loc["pre_arrival", ["reached", "stopped"]].tolist() == [4, 1]
    assert f.loc["check_in", "drop_rate"] == 0
    assert f.loc["discover", "drop_rate"] == pytest.approx(3 / 8)
    assert f.loc["book", "drop_rate"] == pytest.approx(1 / 5)
    assert f.loc["pre_arrival", "drop_rate"] == pytest.approx(1 / 4)
    # product-limit: share still in, and the share of all journeys ending at each stage
    assert f.loc["book", "share_reaching"] == pytest.approx(5 / 8)
    assert f.loc["pre_arrival", "share_reaching"] == pytest.approx(1 / 2)
    assert f.loc["book", "share_ending"] == pytest.approx(1 / 8)
    assert f.loc["pre_arrival", "share_ending"] == pytest.approx(1 / 8)
    # after the goal: two of the three that checked out made no post-stay contact; no leak
    assert f.loc["check_out", "drop_rate"] == pytest.approx(2 / 3)
    assert not f.loc["check_out", "is_leak_stage"] and f.loc["check_out", "value_at_stake"] == 0
    # value at stake: stopped x mean revenue of a completed journey (700 / 3)
    assert f.loc["discover", "value_per_journey"] == pytest.approx(700 / 3)
    assert f.loc["discover", "value_at_stake"] == pytest.approx(3 * 700 / 3)
    lo, hi = journey.wilson_interval(3, 8)
    assert (f.loc["discover", "ci_low"], f.loc["discover", "ci_high"]) == (lo[0], hi[0])


def test_funnel_by_channel_and_entry(hand_journeys) -> None:
    by = journey.funnel(hand_journeys, by="channel").set_index(["group", "stage"])
    # web journeys: A, B1, B2, F1, G; B1, F1 and G stop at discover
    assert by.loc[("web", "discover"), ["reached", "stopped"]].tolist() == [5, 3]
    assert by.loc[("front_desk", "book"), "reached"] == 1
    assert by.loc[("front_desk", "discover"), "reached"] == 0
    only = journey.funnel(hand_journeys, entry_stage="discover").set_index("stage")
    assert only.loc["book", "reached"] == 4  # the walk-in is left out
    leaks = journey.biggest_leaks(
        pd.concat([journey.funnel(hand_journeys, reliability_base=1), by.reset_index()]),
    )
    overall = leaks[leaks["by"] == "overall"]
    assert overall["stage"].tolist() == ["discover", "book", "pre_arrival"]
    assert overall["rank"].tolist() == [1, 2, 3]


def test_funnel_by_segment() -> None:
    segs = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D", "E", "F"],
            "name": ["s1", "s1", "s2", "s2", "s1", "s2"],
        }
    )
    j = journey.build_journeys(
        ibis.memtable(hand_log()), STAGES, goal_stage="check_out", segments=segs
    )
    f = journey.funnel(j, by="segment").set_index(["group", "stage"])
    # s1: A, B1, B2, E; s2: C, D, F1, F2; G has no segment
    assert f.loc[("s1", "discover"), ["reached", "stopped"]].tolist() == [4, 1]
    assert f.loc[("s2", "discover"), ["reached", "stopped"]].tolist() == [3, 1]
    assert f.loc[("(no segment)", "discover"), ["reached", "stopped"]].tolist() == [1, 1]
    assert f.loc[("s2", "book"), "reached"] == 3  # C, the walk-in D and F2
    # s1 completed A (250); s2 completed D and F2 (150 + 300)
    assert f.loc[("s1", "discover"), "value_per_journey"] == pytest.approx(250)
    assert f.loc[("s2", "discover"), "value_per_journey"] == pytest.approx(225)


def test_journeys_without_completed_use_the_end_of_the_log() -> None:
    j = journey.build_journeys(
        ibis.memtable(hand_log(with_completed=False)),
        STAGES,
        goal_stage="check_out",
        open_days=5,
    )
    p = j.paths
    # E (last seen at the end of the log) is open; the rest short of the goal have stopped
    assert p.loc[p["status"] == "open", "journeys"].sum() == 1
    assert p.loc[(p["status"] == "open"), "last"].tolist() == ["book"]
    # without dead ends, B's two tries at H1 (30 days apart) become one journey
    assert j.info["n_journeys"] == 8


def test_stage_configuration_errors() -> None:
    log = ibis.memtable(hand_log())
    with pytest.raises(ConfigError, match="fewer than two"):
        journey.build_journeys(log, ["discover"])
    with pytest.raises(ConfigError, match="goal_stage"):
        journey.build_journeys(log, STAGES, goal_stage="checkout")
    from rox_helpers.config import Journey

    with pytest.raises(ValueError, match="goal_stage"):
        Journey(stages=["a", "b"], goal_stage="c")


# --------------------------------------------------------------------------------------
# Intervals and multiple testing
# --------------------------------------------------------------------------------------


def test_wilson_interval_against_formula_and_a_published_value() -> None:
    z = stats.norm.ppf(0.975)
    k, n = 7, 20
    centre = (k + z**2 / 2) / (n + z**2)
    half = z * np.sqrt(k * (n - k) / n + z**2 / 4) / (n + z**2)
    lo, hi = journey.wilson_interval(k, n)
    assert lo[0] == pytest.approx(centre - half) and hi[0] == pytest.approx(centre + half)
    # 0 of 10: upper limit 0.2775 (Newcombe 1998, Table I)
    lo, hi = journey.wilson_interval(0, 10)
    assert lo[0] == pytest.approx(0.0, abs=1e-12) and hi[0] == pytest.approx(0.2775, abs=1e-4)
    lo, _ = journey.wilson_interval(np.array([1, 0]), np.array([4, 0]))
    assert np.isnan(lo[1])


def test_benjamini_hochberg_by_hand() -> None:
    q = journey.benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.02, 0.04, 0.04 (step-up minimum)
    np.testing.assert_allclose(q, [0.02, 0.04, 0.04, 0.02])
    q = journey.benjamini_hochberg([0.01, np.nan, 0.04])
    np.testing.assert_allclose(q, [0.02, np.nan, 0.04])


def test_nps_difference_by_hand() -> None:
    d = journey.nps_difference(pd.Series([10, 10, 9, 5]), pd.Series([0, 7, 8, 10]))
    assert d["nps_group"] == pytest.approx(50) and d["nps_rest"] == pytest.approx(0)
    se = 100 * np.sqrt((0.75 + 0.25 - 0.25) / 4 + (0.25 + 0.25 - 0) / 4)
    z = stats.norm.ppf(0.975)
    assert d["ci_low"] == pytest.approx(50 - z * se) and d["ci_high"] == pytest.approx(50 + z * se)


# --------------------------------------------------------------------------------------
# Channel consistency and moments
# --------------------------------------------------------------------------------------


def test_channel_consistency_finds_the_planted_gap() -> None:
    rng = np.random.default_rng(1)
    n = 300
    chan = np.repeat(["app", "web", "phone"], n)
    shift = {"app": 1.0, "web": 0.0, "phone": -0.5}
    survey = pd.DataFrame(
        {
            "channel": chan,
            "att_ease": 7 + np.array([shift[c] for c in chan]) + rng.normal(0, 1.5, 3 * n),
            "att_clean": 7 + rng.normal(0, 1.5, 3 * n),
            "ces": 3 - np.array([shift[c] for c in chan]) + rng.normal(0, 1, 3 * n),
        }
    )
    means, gaps = journey.channel_consistency(survey, ["att_ease", "att_clean", "ces"])
    g = gaps.set_index("attribute")
    assert g.loc["att_ease", "significant"] and not g.loc["att_clean", "significant"]
    assert (g.loc["att_ease", "best_channel"], g.loc["att_ease", "worst_channel"]) == (
        "app",
        "phone",
    )
    assert g.loc["att_ease", "ci_low"] < 1.5 < g.loc["att_ease", "ci_high"]
    # effort: lower is better, so the app (least effort) is best
    assert g.loc["ces", "best_channel"] == "app" and g.loc["ces", "gap"] > 0
    m = means.set_index(["attribute", "channel"])
    d = survey.loc[survey["channel"] == "web", "att_ease"]
    assert m.loc[("att_ease", "web"), "mean"] == pytest.approx(d.mean())


def _followup(seed: int = 7, n: int = 4000) -> pd.DataFrame:
    """Responses at two touchpoints: at A a very good experience adds 0.2 to the chance of
    returning and a bad one takes 0.2 off; at B nothing. Frequent guests both rate higher
    and return more, so raw differences overstate the effect."""
    rng = np.random.default_rng(seed)
    prior = rng.poisson(2.0, n)
    tp = rng.choice(["A", "B"], n)
    lp = np.log1p(prior)
    csat = np.clip(np.round(3 + 0.8 * (lp - lp.mean()) + rng.normal(0, 1.3, n)), 1, 5)
    vg, bad = (csat >= 5).astype(float), (csat <= 2).astype(float)
    effect = np.where(tp == "A", 0.2 * vg - 0.2 * bad, 0.0)
    p = np.clip(0.3 + 0.15 * lp + effect, 0, 1)
    return pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(n)],
            "customer_id": [f"c{i}" for i in range(n)],
            "touchpoint": tp,
            "csat": csat,
            "prior_stays": prior.astype(float),
            "prior_revenue": prior * 120.0,
            "prior_months": 12.0,
            "tenure_days": rng.integers(100, 2000, n).astype(float),
            "retained_6m": (rng.random(n) < p).astype(float),
            "att_clean": np.clip(np.round(7 + rng.normal(0, 2, n)), 1, 10),
        }
    )


def test_moments_hold_prior_behaviour_constant() -> None:
    fu = _followup(seed=11)
    m = journey.moment_effects(fu, min_base=30).set_index(["touchpoint", "contrast"])
    a_good, a_bad = m.loc[("A", "very_good")], m.loc[("A", "bad")]
    assert a_good["ci_low"] < 0.2 < a_good["ci_high"] and a_good["kind"] == "magic"
    assert a_bad["ci_low"] < -0.2 < a_bad["ci_high"] and a_bad["kind"] == "pain"
    # confounding by frequency inflates the raw differences
    assert a_good["raw"] > a_good["effect"] and a_bad["raw"] < a_bad["effect"]
    b = m.loc["B"]
    assert (b["kind"] == "none").all()
    assert (b["ci_low"] < 0).all() and (b["ci_high"] > 0).all()
    # BH across the four contrasts
    np.testing.assert_allclose(m["q"], journey.benjamini_hochberg(m["p_value"]))
    assert {"touchpoint", "kind", "effect", "ci_low", "ci_high", "q", "n"} <= set(
        m.reset_index().columns
    )
    # too small a base: reported, not tested
    small = journey.moment_effects(fu.head(100), min_base=30)
    assert small["effect"].isna().all() and small["note"].str.contains("fewer than").all()


def test_forgiveness_and_pooled_moments() -> None:
    fu = _followup(seed=11)
    f = journey.forgiveness(fu, ["att_clean"], min_base=20).set_index("comparison")
    # after a problem (cleanliness <= 4) the very good experience at A still helps
    assert f.loc["recovery", "n_group"] >= 20 and np.isfinite(f.loc["recovery", "effect"])
    assert f.loc["recovery", "effect"] > 0
    pooled = journey.pooled_moments(fu).set_index("contrast")
    # half the responses are at A (+-0.2), half at B (0): about +-0.1 pooled
    assert pooled.loc["very_good", "ci_low"] < 0.1 < pooled.loc["very_good", "ci_high"]
    assert pooled.loc["bad", "ci_low"] < -0.1 < pooled.loc["bad", "ci_high"]


# --------------------------------------------------------------------------------------
# Moments from the interaction log
# --------------------------------------------------------------------------------------

LOG_STAGES = ["book", "check_in", "check_out"]


def _contact(cust, ts, stage, tp, channel, done=True, minutes=np.nan, revenue=0.0, unit="H1"):
    return {
        "customer_id": cust,
        "unit_id": unit,
        "timestamp": pd.Timestamp(ts),
        "journey_stage": stage,
        "touchpoint": tp,
        "channel": channel,
        "completed": done,
        "duration_min": minutes,
        "revenue": revenue,
    }


def test_log_moment_frame_follows_each_contact_after_its_journey() -> None:
    """X: trip 1 (Jan-Feb 2024); trip 2 starts with a web dead end, booked by phone the next
    day; trip 3 in December. Y: one trip, then a stay 17 months later (sets the data end)."""
    rows = [
        _contact("X", "2024-01-10 09:00", "book", "web_booking", "web", minutes=4, revenue=300),
        _contact("X", "2024-02-01 15:00", "check_in", "desk_checkin", "front_desk", minutes=12),
        _contact("X", "2024-02-03 11:00", "check_out", "desk_checkout", "front_desk", minutes=3),
        _contact("X", "2024-03-01 10:00", "book", "web_booking", "web", done=False, minutes=9),
        _contact("X", "2024-03-02 10:00", "book", "phone_booking", "phone", revenue=200),
        _contact("X", "2024-03-20 15:00", "check_in", "desk_checkin", "front_desk", minutes=5),
        _contact("X", "2024-03-22 11:00", "check_out", "desk_checkout", "front_desk"),
        _contact("X", "2024-12-01 15:00", "check_in", "desk_checkin", "front_desk", minutes=6),
        _contact("Y", "2024-01-05 09:00", "book", "web_booking", "web", revenue=150),
        _contact("Y", "2024-01-20 15:00", "check_in", "desk_checkin", "front_desk", minutes=7),
        _contact("Y", "2024-01-21 11:00", "check_out", "desk_checkout", "front_desk"),
        _contact("Y", "2025-06-01 15:00", "check_in", "desk_checkin", "front_desk", minutes=7),
    ]
    customers = pd.DataFrame(
        {
            "customer_id": ["X", "Y"],
            "signup_date": pd.to_datetime(["2023-06-01", None]),
            "app_install_date": pd.to_datetime(["2024-03-01", None]),
        }
    )
    fr = journey.log_moment_frame(
        ibis.memtable(pd.DataFrame(rows)), LOG_STAGES, customers=customers, horizon=6
    )
    assert fr.attrs["data_end"].startswith("2025-06-02")
    # Y's last stay has no complete window; every other contact is followed
    assert len(fr) == len(rows) - 1
    x = fr[fr["customer_id"] == "X"].set_index(["touchpoint", "journey_start"])
    trip1 = x.xs(pd.Timestamp("2024-01-10 09:00"), level="journey_start")
    # the booking is followed from the day after check-out: its own stay is no return
    assert trip1["stays_6m"].tolist() == [1.0, 1.0, 1.0] and (trip1["retained_6m"] == 1).all()
    assert (trip1["prior_stays"] == 0).all() and (trip1["prior_revenue"] == 0).all()
    trip2 = x.xs(pd.Timestamp("2024-03-01 10:00"), level="journey_start")
    assert len(trip2) == 4  # the dead end and the phone booking are one journey
    assert (trip2["stays_6m"] == 0).all()  # December is more than 6 months after 22 March
    assert (trip2["prior_stays"] == 1).all() and (trip2["prior_revenue"] == 300).all()
    assert trip2.loc["web_booking", "completed"] == 0 and trip2.loc["web_booking", "switched"] == 1
    assert trip2.loc["phone_booking", "switched"] == 0 and trip1["switched"].sum() == 0
    # status at the start of the journey: the app came on 1 March, with trip 2
    assert (trip1["app_user_at_response"] == 0).all()
    assert (trip2["app_user_at_response"] == 1).all()
    # tenure from sign-up
    assert trip1["tenure_days"].iloc[0] == pytest.approx(
        (pd.Timestamp("2024-01-10 09:00") - pd.Timestamp("2023-06-01")).total_seconds() / 86400
    )
    trip3 = x.xs(pd.Timestamp("2024-12-01 15:00"), level="journey_start")
    # its 12 months of history are cut at the start of the log (5 January)
    observed = (pd.Timestamp("2024-12-01 15:00") - pd.Timestamp("2024-01-05")).days + 15 / 24
    assert trip3["prior_stays"].tolist() == [2.0]
    assert trip3["prior_months"].iloc[0] == pytest.approx(observed / (365.25 / 12))
    y = fr[fr["customer_id"] == "Y"]
    assert (y["stays_6m"] == 0).all() and (y["tenure_days"] == 0).all()  # first seen then


def _planted_log(seed: int = 5, n: int = 1500) -> pd.DataFrame:
    """Trips of ``n`` guests over two years at three hotels: a web booking (8% dead ends),
    a desk check-in and a check-out. After a trip the guest comes back within six months
    with probability 0.6, halved (0.3) when the check-in was among the slowest tenth; slow
    or fast bookings change nothing."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2023-01-01")
    slow_cut = np.exp(np.log(6.0) + 0.35 * stats.norm.ppf(0.9))
    rows = []
    for c in range(n):
        cust = f"c{c}"
        day = rng.uniform(0, 180)
        while day < 730:
            book = t0 + pd.Timedelta(days=day)
            ok = rng.random() > 0.08
            rows.append(
                _contact(cust, book, "book", "web_booking", "web", ok, rng.lognormal(1.6, 0.4))
            )
            p_back, end = 0.6, day
            if ok:
                minutes = rng.lognormal(np.log(6.0), 0.35)
                arrive = book + pd.Timedelta(days=10)
                rows.append(
                    _contact(cust, arrive, "check_in", "desk_checkin", "front_desk", True, minutes)
                )
                rows.append(
                    _contact(cust, arrive + pd.Timedelta(days=2), "check_out", "checkout", "desk")
                )
                p_back = 0.3 if minutes > slow_cut else 0.6
                end = day + 12
            day = end + (rng.uniform(20, 170) if rng.random() < p_back else rng.uniform(200, 400))
    df = pd.DataFrame(rows)
    df["timestamp"] = df["timestamp"].dt.floor("min")
    df["unit_id"] = df["customer_id"].str[1:].astype(int).mod(3).map(lambda i: f"H{i}")
    return df


def test_log_moments_find_the_planted_pain_point_and_nothing_else() -> None:
    log = ibis.memtable(_planted_log())
    m = journey.interaction_moments(log, LOG_STAGES, horizon=6, min_base=30)
    assert set(m["source"]) == {"interactions"}
    tested = m[m["q"].notna()].set_index(["touchpoint", "contrast"])
    slow = tested.loc[("desk_checkin", "slow")]
    assert slow["kind"] == "pain" and slow["ci_high"] < 0
    # the return probability halves: the interval of (rate after a slow check-in) / (middle)
    mid = slow["return_rate_middle"]
    assert (mid + slow["ci_low"]) / mid < 0.5 < (mid + slow["ci_high"]) / mid
    assert slow["stays_effect"] < 0 and slow["stays_ci_high"] < 0
    others = tested.drop(index=("desk_checkin", "slow"))
    assert {("desk_checkin", "fast"), ("web_booking", "slow"), ("web_booking", "failed")} <= set(
        others.index
    )
    assert (others["kind"] == "none").all(), others[["effect", "q"]]
    # a dead-end booking is followed from the dead end, not from a stay it never had: no
    # mechanical "loss" of the stay it would have led to
    failed = tested.loc[("web_booking", "failed")]
    assert failed["ci_low"] < 0 < failed["ci_high"] or failed["effect"] > 0
    # BH over every touchpoint x signal tested
    np.testing.assert_allclose(tested["q"], journey.benjamini_hochberg(tested["p_value"]))
    # no switch in this log: reported, not tested
    sw = m[m["contrast"] == "channel_switch"]
    assert sw["q"].isna().all() and sw["note"].str.contains("fewer than").all()
    # restricting the signals and touchpoints restricts the family
    only = journey.interaction_moments(
        log, LOG_STAGES, horizon=6, signals=["slow"], touchpoints=["desk_checkin"]
    )
    assert only[["touchpoint", "contrast"]].values.tolist() == [["desk_checkin", "slow"]]
    with pytest.raises(ValueError, match="unknown log signal"):
        journey.log_moment_effects(journey.log_moment_frame(log, LOG_STAGES), signals=["sluggish"])


def test_ols_cluster_matches_statsmodels() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(2)
    n = 400
    groups = rng.integers(0, 60, n)
    X = np.column_stack(
        [np.ones(n), rng.random(n) < 0.3, rng.normal(size=n), rng.integers(0, 3, n) == 1]
    ).astype("float64")
    y = (rng.random(n) < 0.4 + 0.1 * X[:, 1] + 0.05 * X[:, 2].clip(-1, 1)).astype("float64")
    y2 = rng.poisson(1 + X[:, 1]).astype("float64")
    codes = pd.factorize(groups)[0]
    est, se = journey._ols_cluster(np.column_stack([y, y2]), X, codes)
    for j, yy in enumerate((y, y2)):
        res = sm.OLS(yy, X).fit(cov_type="cluster", cov_kwds={"groups": codes})
        assert est[j] == pytest.approx(res.params[1])
        assert se[j] == pytest.approx(res.bse[1])
    # a duplicated (collinear) column changes nothing for the focal coefficient
    est2, se2 = journey._ols_cluster(np.column_stack([y, y2]), np.column_stack([X, X[:, 2]]), codes)
    np.testing.assert_allclose(est2, est)
    np.testing.assert_allclose(se2, se, rtol=1e-6)


def test_combined_moments_findings_and_chart() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from rox_helpers import plotting

    survey = journey.moment_effects(_followup(seed=11), min_base=30)
    log = journey.interaction_moments(ibis.memtable(_planted_log(n=800)), LOG_STAGES, horizon=6)
    both = journey.combine_moments(survey, log)
    assert list(both.columns) == list(journey.MOMENT_COLUMNS)
    assert both.groupby("source").size().to_dict() == {
        "interactions": len(log),
        "survey": len(survey),
    }
    # each source is its own BH family: the survey rows keep their q
    s = both[both["source"] == "survey"].reset_index(drop=True)
    np.testing.assert_allclose(s["q"], survey["q"])
    assert s["signal"].str.contains("csat at or").all()
    # what action 3 (actions.magic_moments_evidence) reads is all there
    assert {"touchpoint", "kind", "q", "effect", "ci_low", "ci_high", "n"} <= set(both.columns)
    findings = journey.journey_findings(moments=both)
    heads = [f.headline for f in findings]
    assert len(findings) == 2 and heads[1].startswith("From the interaction log: 1 pain point")
    assert any("desk_checkin" in e and "slowest" in e for e in findings[1].evidence)
    ax = plotting.journey_moments(both, max_rows=8)
    assert len(ax.get_yticklabels()) == 8 and "clearest" in ax.get_title()
    assert any("(log)" in t.get_text() for t in ax.get_yticklabels())


# --------------------------------------------------------------------------------------
# Languages and themes
# --------------------------------------------------------------------------------------


def test_detect_language() -> None:
    texts = pd.Series(
        [
            "The room was not clean.",
            "La chambre n'était pas propre.",
            "Das Zimmer war nicht sauber.",
            "Ewig beim Check-in gewartet.",
            "Séjour décevant.",
            "OK!",
            "Thanks to [name], the staff were lovely.",
        ]
    )
    assert journey.detect_language(texts).tolist() == ["en", "fr", "de", "de", "fr", "", "en"]


def _corpus(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    wifi = ["The wifi kept dropping.", "Wifi was slow and dropping all night.", "Slow wifi."]
    food = ["Delicious breakfast pastries.", "The breakfast pastries were delicious."]
    park = ["Parking garage was expensive.", "Expensive parking in the garage."]
    rows = []
    for texts, nps, n in ((wifi, (0, 6), 45), (food, (9, 10), 45), (park, (5, 10), 45)):
        for _ in range(n):
            rows.append((texts[rng.integers(len(texts))], int(rng.integers(nps[0], nps[1] + 1))))
    rows += [("Petit déjeuner délicieux, merci.", 10)] * 4 + [("Das WLAN war sehr langsam.", 2)] * 3
    # personal data the scrub on load would have masked: must never be shown as an example
    rows += [("Slow wifi, write to me at someone@example.com please.", 1)]
    df = pd.DataFrame(rows, columns=["comment", "nps"])
    df["response_id"] = [f"r{i}" for i in range(len(df))]
    df["att_wifi"] = np.where(df["comment"].str.contains("ifi"), 3.0, 8.0)
    return df


def test_themes_find_the_planted_topics_and_set_languages_aside() -> None:
    df = _corpus()
    res = journey.comment_themes(
        df,
        n_themes=3,
        lexicon={"wifi": ["wifi"]},
        attributes=["att_wifi"],
        min_base=20,
        seed=1,
    )
    assert res.n_set_aside == 7 and res.n_comments == len(df) - 7
    aside = res.languages.set_index("language")
    assert aside.loc["fr", "comments"] == 4 and aside.loc["de", "comments"] == 3
    th = res.themes.set_index("theme")
    assert th.loc["wifi", "n"] == 46 and th.loc["wifi", "source"] == "lexicon"
    assert th.loc["wifi", "tone"] == "pain" and "att_wifi (-5.0)" in th.loc["wifi", "attributes"]
    nmf = res.themes[res.themes["source"] == "nmf"]
    assert len(nmf) == 3
    kept = df[~df["comment"].str.contains("déjeuner|WLAN")].reset_index(drop=True)
    found = {}
    for word in ("wifi", "breakfast", "parking"):
        hit = nmf[nmf["top_terms"].str.split(", ").map(lambda t, w=word: w in t[:3])]
        assert len(hit) == 1, f"no single theme led by {word!r}"
        found[word] = hit["theme"].iloc[0]
        members = res.assignments[found[word]].astype(bool).to_numpy()
        truth = kept["comment"].str.lower().str.contains(word).to_numpy()
        assert (members == truth).mean() > 0.95
    assert th.loc[found["breakfast"], "tone"] == "magic"
    # the NPS comparison is the hand formula's
    d = journey.nps_difference(
        kept.loc[kept["comment"].str.lower().str.contains("wifi"), "nps"],
        kept.loc[~kept["comment"].str.lower().str.contains("wifi"), "nps"],
    )
    assert th.loc["wifi", "nps_difference"] == pytest.approx(d["difference"])
    examples = " | ".join(res.themes["examples"])
    assert "@" not in examples and examples.count("|") >= 5
    assert all(len(e) <= 140 for e in examples.split(" | "))
    # seeded: the same themes again
    again = journey.comment_themes(
        df, n_themes=3, lexicon={"wifi": ["wifi"]}, attributes=["att_wifi"], min_base=20, seed=1
    )
    pd.testing.assert_frame_equal(res.themes, again.themes)


# --------------------------------------------------------------------------------------
# The sample engagement against the generator's truth
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_journeys(loaded) -> journey.Journeys:
    jc = loaded.config.journey
    return journey.build_journeys(
        loaded.interactions, jc.stages, goal_stage=jc.goal_stage, session_gap_days=7
    )


def test_sample_funnel_recovers_the_generator(sample_journeys, truth) -> None:
    tj = truth["causal_model"]["journey"]
    f = journey.funnel(sample_journeys, entry_stage="discover").set_index("stage")
    for stage, key in (
        ("discover", "p_stop_after_discover"),
        ("book", "p_book_abandoned"),
        ("pre_arrival", "p_no_show"),
    ):
        lo, hi = f.loc[stage, ["share_ending_ci_low", "share_ending_ci_high"]]
        assert lo <= tj[key] <= hi, f"{stage}: {tj[key]} outside [{lo:.4f}, {hi:.4f}]"
        assert hi - lo < 0.01
    # the stay itself loses nobody, and the post-stay contact is after the goal
    assert f.loc["check_in", "stopped"] == 0 and not f.loc["check_out", "is_leak_stage"]
    # open (censored) journeys are few
    p = sample_journeys.paths
    assert p.loc[p["status"] == "open", "journeys"].sum() < 0.05 * p["journeys"].sum()


def test_sample_log_moments_slow_checkin(loaded, sample_journeys, truth) -> None:
    """Desk time drives the check-in speed rating, which drives NPS, which drives the return
    rate: a slow front-desk check-in should cost returns, but only a little. The sample's
    interval is checked against the generator's first-order implied effect, not a number."""
    jc = loaded.config.journey
    fr = journey.log_moment_frame(
        loaded.interactions,
        jc.stages,
        customers=loaded.tables["customers"],
        horizon=jc.horizon_months,
        journeys=sample_journeys,
    )
    m = journey.log_moment_effects(fr, horizon=jc.horizon_months)
    assert set(m["source"]) == {"interactions"}
    tested = m[m["q"].notna()]
    np.testing.assert_allclose(tested["q"], journey.benjamini_hochberg(tested["p_value"]))
    r = m.set_index(["touchpoint", "contrast"])
    slow = r.loc[("front_desk_checkin", "slow")]
    assert slow["n_group"] >= 30 and slow["ci_low"] < slow["effect"] < slow["ci_high"]
    assert slow["effect"] < 0  # the generator's direction
    assert slow["effect"] < r.loc[("front_desk_checkin", "fast"), "effect"]
    # implied by the generator: extra desk minutes x rating per minute x NPS weight of
    # check-in speed (business 0.45 ... leisure 0.05) x log trip rate per NPS point, turned
    # into a 6-month return probability (d P = exp(-L) L d log rate, L = -log(1 - P))
    cm = truth["causal_model"]
    desk = fr[fr["touchpoint"] == "front_desk_checkin"]
    lo_cut, hi_cut = desk["minutes"].quantile([0.1, 0.9])
    extra = (
        desk.loc[desk["minutes"] >= hi_cut, "minutes"].mean()
        - desk.loc[(desk["minutes"] > lo_cut) & (desk["minutes"] < hi_cut), "minutes"].mean()
    )
    weights = [w["checkin_speed"] for w in cm["nps"]["driver_weights"].values()]
    lam = -np.log(1 - slow["return_rate_middle"])
    per_weight = (
        extra
        * cm["attributes"]["checkin_speed_per_minute"]
        * cm["returns"]["log_rate_per_nps_point"]
        * np.exp(-lam)
        * lam
    )
    implied = sorted(per_weight * np.array([min(weights), max(weights)]))
    assert slow["ci_low"] <= implied[1] and slow["ci_high"] >= implied[0]
    # a dead-end booking is followed from the dead end: no mechanical loss of the stay it
    # never had (that would be about -0.9)
    failed = r.loc[("website_booking", "failed")]
    assert abs(failed["effect"]) < 0.05


def test_sample_languages_and_examples(loaded, truth, sample) -> None:
    from conftest import pseudonym

    survey = loaded.tables["cx_survey"]
    planted = {pseudonym(sample, r["resp_id"], "R-") for r in truth["survey"]["foreign_language"]}
    planted &= set(survey["response_id"])
    assert len(planted) >= 40
    res = journey.comment_themes(survey, n_themes=4, min_base=30, seed=truth["seed"])
    kept = set(res.assignments["response_id"])
    assert not planted & kept  # every planted foreign comment set aside
    assert res.n_set_aside <= len(planted) + 5  # and hardly any English with them
    examples = " | ".join(res.themes["examples"])
    assert "@" not in examples and "[" not in examples
    emails = loaded.tables["customers"].filter(like="email")
    assert emails.empty  # dropped on load: nothing to leak


def test_pipeline_registers_step_05() -> None:
    from rox_helpers.pipeline import STEPS

    step = {s.id: s for s in STEPS}["05"]
    assert step.notebook == "05_journey_and_moments.ipynb"
    assert step.needs == ("00",) and step.after == ("02",)
