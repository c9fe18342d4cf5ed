"""The six actions (step 06): the AIPW / DR-DiD adoption effects against hand computations,
a simulated panel with a known effect and the sample's generator; k-anonymity against a
hand-computed example and a brute-force property test; maturity scoring and the plan."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from rox_helpers import actions
from rox_helpers.config import Actions, Initiative, MaturityOverride, parse_engagement_config
from rox_helpers.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------
# AIPW for the ATT: hand computation and double robustness
# --------------------------------------------------------------------------------------
def test_aipw_att_hand_computed():
    # treated residuals y - m0: 1, 2 -> mean 3/2; controls: residuals 0, 1, 0 with odds
    # weights p/(1-p) = 1, 1/4, 1/3 -> weighted mean (1/4) / (19/12) = 3/19
    y = [3, 5, 2, 4, 1]
    d = [1, 1, 0, 0, 0]
    p = [0.5, 0.8, 0.5, 0.2, 0.25]
    m0 = [2, 3, 2, 3, 1]
    assert actions.aipw_att(y, d, p, m0) == pytest.approx(51 / 38, rel=1e-12)
    # unit weights: a control counted twice at weight 1/2 is the same control
    y2, d2, p2, m2 = [*y, 4], [*d, 0], [*p, 0.2], [*m0, 3]
    w2 = [1, 1, 1, 0.5, 1, 0.5]
    assert actions.aipw_att(y2, d2, p2, m2, w2) == pytest.approx(51 / 38, rel=1e-12)


def _confounded(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    p = expit(-0.5 + x1 - 0.5 * x2)
    d = rng.random(n) < p
    mu0 = 1 + 2 * x1 + x2
    tau = 1 + x1  # heterogeneous: the ATT differs from the average effect
    y = mu0 + d * tau + rng.normal(size=n)
    return y, d, p, mu0, tau


def test_aipw_is_doubly_robust_on_a_simulation_with_known_att():
    y, d, p, mu0, tau = _confounded(40_000, 1)
    att = tau[d].mean()
    naive = y[d].mean() - y[~d].mean()
    assert abs(naive - att) > 1  # confounded
    right_p_wrong_m = actions.aipw_att(y, d, p, np.zeros_like(y))
    wrong_p_right_m = actions.aipw_att(y, d, np.full_like(p, d.mean()), mu0)
    both_wrong = actions.aipw_att(y, d, np.full_like(p, d.mean()), np.zeros_like(y))
    assert right_p_wrong_m == pytest.approx(att, abs=0.1)
    assert wrong_p_right_m == pytest.approx(att, abs=0.05)
    assert both_wrong == pytest.approx(naive)  # reduces to the raw difference


def test_smd_hand_computed():
    x = np.array([1.0, 3.0, 0.0, 2.0, 4.0])
    d = np.array([True, True, False, False, False])
    # treated mean 2, var 1; controls mean 2, var 8/3; pooled sd sqrt((1 + 8/3) / 2)
    before, after = actions.smd(x, d, np.array([1, 1, 3, 1, 0.0]))
    assert before == pytest.approx(0.0)
    sd = math.sqrt((1 + 8 / 3) / 2)
    assert after == pytest.approx((2 - 0.5) / sd)  # weighted control mean (0*3+2)/4


def test_e_value_matches_vanderweele_ding():
    # their worked example: RR 3.9 (CI 1.8 to 8.7) -> E-values 7.26 and 3.0
    assert actions.e_value(3.9) == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    assert actions.e_value(3.9) == pytest.approx(7.26, abs=0.01)
    assert actions.e_value_ci(1.8, 8.7) == pytest.approx(3.0, abs=0.01)
    assert actions.e_value_ci(0.8, 1.3) == 1.0
    assert actions.e_value(1 / 3.9) == pytest.approx(actions.e_value(3.9))
    assert actions.rr_from_difference(0.5, 1.0) == pytest.approx(math.exp(0.455))


# --------------------------------------------------------------------------------------
# The adoption design on a simulated panel with a known multiplicative effect
# --------------------------------------------------------------------------------------
def _simulated_panel(n=8000, T=24, effect=0.15, seed=3) -> tuple[actions.AdoptionPanel, float]:
    """Stays ~ Poisson(base * season * exp(effect * after joining)); joining is self-selected
    on log(base) (as in the sample's generator); join months uniform over the window."""
    rng = np.random.default_rng(seed)
    log_base = np.log(0.12) + rng.normal(-0.5 * 0.8**2, 0.8, n)
    z = (log_base - log_base.mean()) / log_base.std()
    joins = rng.random(n) < expit(-1.5 + 0.8 * z)
    k = np.where(joins, rng.integers(-3, T - 1, n), 10**6)
    months = pd.period_range("2024-01", periods=T, freq="M")
    season = 1 + 0.3 * np.sin(np.arange(T) * 2 * np.pi / 12)
    tt = np.arange(T)[None, :]
    treated_m = tt > k[:, None]  # effect from the month after the join month
    lam = np.exp(log_base)[:, None] * season[None, :] * np.exp(effect * treated_m)
    stays = rng.poisson(lam).astype(float)
    start = months.to_timestamp()
    cust = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "signup_date": pd.Timestamp("2020-01-01"),
            "region": rng.choice(["N", "S"], n),
            "is_community_member": joins,
            "community_join_date": pd.Series(
                [start[j] + pd.Timedelta(days=3) if 0 <= j < T else pd.NaT for j in k]
            ),
        }
    )
    # members who joined before the window began get a date before it
    early = joins & (k < 0)
    cust.loc[early, "community_join_date"] = start[0] - pd.Timedelta(days=40)
    zeros = np.zeros((n, T))
    panel = actions.AdoptionPanel(
        customers=cust,
        months=months,
        stays=stays,
        revenue=stays * 100,
        interactions=stays * 3,
        digital=stays,
        active=np.ones((n, T)),
        nps_sum=zeros,
        nps_n=zeros.copy(),
    )
    return panel, math.exp(effect)


def test_adoption_effects_recover_a_known_effect():
    panel, truth = _simulated_panel()
    res = actions.adoption_effects(
        panel,
        other=None,
        static_covariates=("region",),
        outcomes=("stays", "revenue"),
        n_boot=40,
        seed=7,
    )
    h, naive = res.headline("stays"), res.naive("stays")
    assert h["ci_low"] < truth < h["ci_high"]
    assert naive["estimate"] > h["ci_high"]  # self-selection inflates the raw ratio
    assert abs(h["estimate"] - truth) < 0.08
    # revenue is 100 per stay here: the same ratio
    r = res.effects.query("outcome == 'revenue' and method == 'dr_did'").iloc[0]
    assert r["estimate"] == pytest.approx(h["estimate"], rel=1e-9)
    # members who joined before the window have no history: left out and counted
    assert res.counts["no_history"] > 0
    assert (
        res.counts["in_estimand"] + res.counts["no_history"] + res.counts["trimmed"]
        == res.counts["joiners"]
    )
    assert (res.balance["smd_after"].abs() < 0.1).all()
    assert res.counts["failed_replicates"] == 0


def test_adoption_effects_same_seed_same_numbers():
    panel, _ = _simulated_panel(n=3000)
    kw = {"other": None, "static_covariates": (), "outcomes": ("stays",), "n_boot": 5}
    a = actions.adoption_effects(panel, seed=1, **kw).effects
    b = actions.adoption_effects(panel, seed=1, **kw).effects
    pd.testing.assert_frame_equal(a, b)


def test_adoption_effects_need_the_join_columns():
    panel, _ = _simulated_panel(n=500)
    from rox_helpers.errors import DataValidationError

    with pytest.raises(DataValidationError, match="app_user"):
        actions.adoption_effects(panel, flag="app_user", date="app_install_date", n_boot=0)


# --------------------------------------------------------------------------------------
# The sample engagement: the generator's true effects
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_panel(tmp_path_factory):
    """The sample's customers, log and survey as loaded (a copy of the tracked sample;
    regenerated from its seed only if the copy is stale)."""
    from rox_helpers.data import load_engagement
    from rox_helpers.sample import ensure_sample_data

    root = tmp_path_factory.mktemp("actions") / "sample"
    src = REPO / "engagements" / "sample"
    root.mkdir()
    shutil.copy(src / "engagement.yml", root / "engagement.yml")
    if (src / "data").is_dir():
        shutil.copytree(src / "data", root / "data")
    ensure_sample_data(root)
    data = load_engagement(root)
    activity = actions.monthly_activity(data.interactions)
    panel = actions.adoption_panel(data.tables["customers"], activity, data.tables.get("cx_survey"))
    truth = json.loads((root / "data" / "ground_truth.json").read_text())
    return panel, truth, data


PROGRAMMES = {
    "community": ("is_community_member", "community_join_date", ("app_user", "app_install_date")),
    "app": ("app_user", "app_install_date", ("is_community_member", "community_join_date")),
}


@pytest.fixture(scope="module")
def sample_effects(sample_panel):
    panel, _, _ = sample_panel
    out = {}
    for name, (flag, date, other) in PROGRAMMES.items():
        out[name] = actions.adoption_effects(
            panel,
            treatment=name,
            flag=flag,
            date=date,
            other=other,
            outcomes=("stays",),
            n_boot=80,
            seed=20261123,
        )
    return out


@pytest.mark.parametrize("treatment", list(PROGRAMMES))
def test_sample_adjusted_effect_removes_self_selection(sample_panel, sample_effects, treatment):
    _, truth, _ = sample_panel
    res = sample_effects[treatment]
    h, naive = res.headline("stays"), res.naive("stays")
    naive_truth = truth["uplift"][treatment]["naive_rate_ratio_ever_vs_never"]
    assert not h["ci_low"] <= naive["estimate"] <= h["ci_high"]
    assert not h["ci_low"] <= naive_truth <= h["ci_high"]
    # our naive ratio (stays of consenting customers) reproduces the generator's (trips)
    assert naive["estimate"] == pytest.approx(naive_truth, rel=0.1)
    # balance after weighting
    assert (res.balance["smd_after"].abs() < 0.1).all()
    assert res.balance["smd_before"].abs().max() > 0.2  # there was selection to remove
    # the E-value of the interval is 1 exactly when the interval holds 1
    assert h["e_value"] > 1
    holds_one = h["ci_low"] <= 1 <= h["ci_high"]
    assert (h["e_value_ci"] == 1) == holds_one
    # the level-only AIPW leaves the lasting frequency confounded: far above the DiD
    lvl = res.effects.query("outcome == 'stays' and method == 'aipw_level'").iloc[0]
    assert lvl["estimate"] > h["ci_high"]


def test_sample_community_interval_covers_the_true_effect(sample_panel, sample_effects):
    # membership has no other path to stays in the generator: its total effect, simulated
    # with and without joining, is its direct effect
    _, truth, _ = sample_panel
    up = truth["uplift"]["community"]
    assert up["true_total_rate_ratio"] == pytest.approx(up["true_rate_ratio"], abs=0.005)
    h = sample_effects["community"].headline("stays")
    true_rr = up["true_total_rate_ratio"]
    assert h["ci_low"] < true_rr < h["ci_high"], (h["ci_low"], h["ci_high"], true_rr)
    assert h["ci_low"] > 1 and h["e_value_ci"] > 1  # a real effect, distinguished from none
    assert h["n_treated"] == pytest.approx(up["n_joiners_in_estimand"], abs=20)


def test_sample_app_interval_covers_the_total_effect(sample_panel, sample_effects):
    # installing acts directly (exp(0.08)) and through mobile check-in -> check-in rating ->
    # NPS -> return rate and the app's booking ease; the DiD estimates the total effect on
    # the installers, which the generator computes by simulating them without the app
    _, truth, _ = sample_panel
    up = truth["uplift"]["app"]
    assert up["true_total_rate_ratio"] > up["true_rate_ratio"]  # the indirect path adds
    h, naive = sample_effects["app"].headline("stays"), sample_effects["app"].naive("stays")
    true_rr = up["true_total_rate_ratio"]
    assert h["ci_low"] < true_rr < h["ci_high"], (h["ci_low"], h["ci_high"], true_rr)
    assert naive["estimate"] > h["ci_high"]
    # the same installers as the truth's estimand (less the few trimmed)
    assert h["n_treated"] == pytest.approx(up["n_joiners_in_estimand"], abs=20)


def test_lead_up_stages_and_stay_side_counts():
    # one guest, two trips: searched and booked in January for a stay in March (a lead-up
    # in an earlier month than its stay), then a stay, check-out and review in March
    days = ["01-10", "01-12", "03-01", "03-01", "03-03", "03-05", "04-20", "05-02", "05-02"]
    hours = [0, 0, 0, 1, 0, 0, 0, 0, 2]
    ts = pd.to_datetime(["2025-" + d for d in days]) + pd.to_timedelta(hours, unit="h")
    stage = [
        "discover",
        "book",
        "check_in",
        "stay",
        "check_out",
        "post_stay",
        "book",
        "check_in",
        "stay",
    ]
    chan = [
        "web",
        "web",
        "front_desk",
        "front_desk",
        "front_desk",
        "web",
        "app",
        "front_desk",
        "front_desk",
    ]
    revenue = [0, 300, 0, 40, 0, 0, 200, 0, 0]
    log = pd.DataFrame(
        {"customer_id": "C1", "timestamp": ts, "journey_stage": stage, "channel": chan}
    ).assign(revenue=revenue)
    assert actions.lead_up_stages(log) == ["book", "discover"]
    act = actions.monthly_activity(log).set_index("month")
    jan, mar, apr = (pd.Period(m, "M") for m in ("2025-01", "2025-03", "2025-04"))
    assert act.attrs["lead_stages"] == ["book", "discover"]
    # everything counts in the totals; the stay-side columns leave the lead-up rows out
    assert act.loc[jan, ["interactions", "digital", "revenue"]].tolist() == [2, 2, 300]
    assert act.loc[jan, ["stay_side_interactions", "stay_side_digital"]].tolist() == [0, 0]
    assert act.loc[jan, "stay_side_revenue"] == 0
    assert act.loc[mar, ["stays", "stay_side_interactions", "stay_side_digital"]].tolist() == [
        1, 4, 1,
    ]  # fmt: skip
    assert act.loc[mar, "stay_side_revenue"] == 40
    assert act.loc[apr, "stay_side_interactions"] == 0
    # given explicitly, the lead-up stages are not read from the log
    own = actions.monthly_activity(log, lead_stages=["discover"]).set_index("month")
    assert own.loc[jan, "stay_side_interactions"] == 1
    panel = actions.adoption_panel(pd.DataFrame({"customer_id": ["C1"]}), act.reset_index())
    assert panel.stay_side_interactions is not None
    # whole months only (February to April): March's four stay-side rows
    assert panel.stay_side_interactions.tolist() == [[0, 4, 0]]


def test_lead_up_stages_in_the_engine_equal_the_rows_read_in_pandas(sample_panel):
    """On an Ibis table the lead-up stages are found in its engine (window functions, one
    share per stage back): the same stages as from the rows in pandas, on the sample and on
    small logs (a row at equal distance from two stays goes with the earlier one)."""
    import ibis

    data = sample_panel[2]
    rows = data.interactions.to_pandas()
    assert actions.lead_up_stages(data.interactions) == actions.lead_up_stages(rows)
    assert actions.lead_up_stages(rows) == ["book", "discover", "pre_arrival"]
    ts = pd.to_datetime(["2025-01-01", "2025-01-03", "2025-01-05", "2025-01-06", "2025-01-20"])
    for stages in (
        ["check_in", "x", "check_in", "y", "check_in"],  # x halfway: after the earlier stay
        ["y", "x", "check_in", "y", "x"],
        ["x", "x", "y", "y", "y"],  # no stay at all
    ):
        log = pd.DataFrame({"customer_id": "C1", "timestamp": ts, "journey_stage": stages})
        assert actions.lead_up_stages(ibis.memtable(log)) == actions.lead_up_stages(log), stages
    assert actions.lead_up_stages(ibis.memtable(log.drop(columns="journey_stage"))) == []


def test_sample_privacy_evidence(sample_panel):
    _, truth, data = sample_panel
    p = data.privacy
    ev = actions.data_respect_evidence(
        data.tables["customers"],
        customers_total=p.customers_total,
        customers_without_consent=p.customers_without_consent,
        consent_recorded=p.consent_column,
        identifiers=p.identifiers,
        fields=actions.collected_fields(data.reports, data.tables),
        anonymity=actions.released_tables_anonymity(
            {"customers": data.tables["customers"]},
            ["region", "age_band", "signup_year"],
            floor=5,
            customers=data.tables["customers"],
        ),
        floor=5,
    ).set_index("metric")
    assert ev.loc["consent_coverage", "value"] == pytest.approx(
        truth["consent_analytics"]["realised"], abs=0.01
    )
    # the planted identifiers (names, e-mails, phones) are all found and dropped
    assert ev.loc["identifiers_handled", "value"] == 1.0
    assert ev.loc["identifiers_handled", "n"] >= 4
    assert 0 < ev.loc["data_minimisation", "value"] < 1
    # aggregates only: every figure about customers rests on more than the anonymity floor
    about_people = ev.index.str.startswith(("consent", "value_exchange", "reidentification"))
    assert (ev.loc[about_people, "n"] >= 5).all()


# --------------------------------------------------------------------------------------
# k-anonymity
# --------------------------------------------------------------------------------------
def test_k_anonymity_hand_computed():
    t = pd.DataFrame(
        {
            "region": ["A"] * 4 + ["B"] * 5 + [None] * 2,
            "age": ["x", "x", "x", "y", "x", "x", "x", "x", "x", "x", "x"],
            "spend": range(11),  # not a quasi-identifier
        }
    )
    # classes: (A,x)=3, (A,y)=1, (B,x)=5, (missing,x)=2 -> k=1; under 5: 3+1+2 = 6 of 11
    r = actions.k_anonymity(t, ["region", "age", "not_there"], floor=5)
    assert r["n_classes"] == 4
    assert r["k_min"] == 1
    assert r["classes_below_floor"] == 3
    assert r["records_below_floor"] == 6
    assert r["share_below_floor"] == pytest.approx(6 / 11)
    assert r["quasi_identifiers"] == "region, age"
    r3 = actions.k_anonymity(t, ["region", "age"], floor=3)
    assert (r3["classes_below_floor"], r3["records_below_floor"]) == (2, 3)


def test_released_tables_inherit_quasi_identifiers_through_the_id():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "region": ["N", "N", "S"],
            "signup_date": pd.to_datetime(["2020-01-05", "2020-06-01", "2021-01-01"]),
        }
    )
    feats = pd.DataFrame({"customer_id": ["a", "b", "c"], "spend": [1.0, 2.0, 3.0]})
    out = actions.released_tables_anonymity(
        {"customers": customers, "customer_features": feats},
        ["region", "signup_year"],
        floor=2,
        customers=customers,
    ).set_index("table")
    for name in ("customers", "customer_features"):
        assert out.loc[name, "k_min"] == 1  # (S, 2021) is unique
        assert out.loc[name, "records_below_floor"] == 1


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["N", "S", "E", None]),
            st.sampled_from(["18-24", "25-34", "35-44"]),
            st.integers(0, 2),
        ),
        min_size=1,
        max_size=60,
    ),
    floor=st.integers(2, 6),
)
def test_k_anonymity_matches_brute_force(rows, floor):
    t = pd.DataFrame(rows, columns=["region", "age_band", "tier"])
    r = actions.k_anonymity(t, ["region", "age_band", "tier"], floor=floor)
    counts = Counter(rows)
    assert r["n_records"] == len(rows)
    assert r["n_classes"] == len(counts)
    assert r["k_min"] == min(counts.values())
    below = [c for c in counts.values() if c < floor]
    assert r["classes_below_floor"] == len(below)
    assert r["records_below_floor"] == sum(below)
    assert 0 <= r["share_below_floor"] <= 1
    # coarsening (dropping a quasi-identifier) never lowers k
    assert actions.k_anonymity(t, ["region", "age_band"], floor=floor)["k_min"] >= r["k_min"]


# --------------------------------------------------------------------------------------
# Maturity, next steps and the plan
# --------------------------------------------------------------------------------------
def test_maturity_levels():
    th = [0.5, 0.7, 0.85, 0.95]
    assert [actions.maturity_level(v, th, True) for v in (0.1, 0.5, 0.8, 0.95, 1)] == [
        1,
        2,
        3,
        5,
        5,
    ]
    lower = [0.2, 0.1, 0.05, 0.01]
    assert [actions.maturity_level(v, lower, False) for v in (0.3, 0.2, 0.07, 0.0)] == [
        1,
        2,
        3,
        5,
    ]


def test_shipped_thresholds_cover_all_six_actions_with_rationales():
    model = actions.load_maturity()
    tab = model.table()
    assert set(tab["action"]) == set(actions.ACTIONS)
    assert (tab["rationale"].str.len() > 40).all()
    assert set(model.actions) == set(actions.ACTIONS)
    assert all("effort" in a and "next_step" in a for a in model.actions.values())


def test_maturity_overrides_file_then_inline(tmp_path):
    (tmp_path / "mine.yml").write_text(
        "metrics:\n  consent_coverage:\n    thresholds: [0.6, 0.7, 0.8, 0.9]\n"
        "    rationale: client target\n"
    )
    cfg = Actions(
        maturity_file="mine.yml",
        maturity={"goal_completion": MaturityOverride(thresholds=[0.1, 0.2, 0.3, 0.4])},
    )
    model = actions.load_maturity(cfg, tmp_path)
    assert model.metrics["consent_coverage"]["thresholds"] == [0.6, 0.7, 0.8, 0.9]
    assert model.metrics["consent_coverage"]["rationale"] == "client target"
    assert model.metrics["consent_coverage"]["action"] == "data_respect"  # kept
    assert model.metrics["goal_completion"]["thresholds"] == [0.1, 0.2, 0.3, 0.4]
    bad = Actions(maturity={"goal_completion": MaturityOverride(thresholds=[0.4, 0.3, 0.2, 0.1])})
    with pytest.raises(ConfigError, match="increasing"):
        actions.load_maturity(bad, tmp_path)
    with pytest.raises(ConfigError, match="not a maturity metric"):
        actions.load_maturity(
            Actions(maturity={"nope": MaturityOverride(thresholds=[1, 2, 3, 4])}), tmp_path
        )


def _evidence():
    return pd.DataFrame(
        [
            ("data_respect", "consent_coverage", "Consent", 0.9, 1000, "share"),
            ("data_respect", "reidentification_risk", "Risk", 0.07, 1000, "share"),
            ("win_journey", "goal_completion", "Goal", 0.55, 500, "share"),
            ("win_journey", "unscored_metric", "Other", 3.0, 500, "count"),
        ],
        columns=["action", "metric", "label", "value", "n", "unit"],
    ).assign(ci_low=np.nan, ci_high=np.nan, note="")


def test_score_maturity_next_steps_and_plan():
    model = actions.load_maturity()
    metrics, acts = actions.score_maturity(_evidence(), model)
    lv = metrics.set_index("metric")["level"]
    assert lv["consent_coverage"] == 4  # 0.9 reaches 0.5, 0.7, 0.85
    assert lv["reidentification_risk"] == 3  # 0.07 <= 0.2, 0.1
    assert lv["goal_completion"] == 2
    assert "unscored_metric" not in lv.index
    a = acts.set_index("action")
    assert a.loc["data_respect", "maturity"] == pytest.approx(3.5)
    assert a.loc["win_journey", "maturity"] == 2
    assert np.isnan(a.loc["fuse_cx_ex", "maturity"])
    assert (
        metrics.set_index("metric").loc["goal_completion", "thresholds"] == "0.5 / 0.6 / 0.7 / 0.8"
    )

    steps = actions.next_steps(metrics, model).set_index("action")["next_step"]
    assert "55.0% (level 2); reaching 60.0% lifts it to level 3" in steps["win_journey"]
    assert steps["fuse_cx_ex"].startswith("Collect the data")

    value = pd.DataFrame({"action": ["win_journey", "data_respect"], "value_at_stake": [1e6, 1e3]})
    ini = [Initiative(name="Mobile check-in", action="win_journey", effort=4, owner="COO")]
    plan = actions.action_plan(acts, value, model, ini).set_index("name")
    # win the journey: room to grow 6 - 2 = 4, +1 for the larger value at stake
    assert plan.loc["Win the journey", "impact"] == 5
    assert plan.loc["Treat customer data with respect", "impact"] == 2.5
    assert plan.loc["Mobile check-in", "impact"] == 5  # inherited
    assert plan.loc["Mobile check-in", "effort"] == 4  # the consultant's
    assert plan.loc["Mobile check-in", "owner"] == "COO"
    assert plan.loc["Mobile check-in", "priority"] == "major project"
    assert plan.loc["Treat customer data with respect", "priority"] == "fill-in"  # 2.5, 2
    assert plan.loc["Create magic moments", "priority"] == "measure first"  # not scored


def test_actions_config_section_parses():
    cfg = parse_engagement_config((REPO / "engagements" / "sample" / "engagement.yml").read_text())
    assert cfg.actions.n_boot >= 0
    text = (
        "client: {name: Tiny}\ndata: {cx_survey: {path: data/s.csv}}\n"
        "actions:\n  quasi_identifiers: [region]\n  initiatives:\n"
        "    - {name: Coaching, action: fuse_cx_ex, impact: 4, effort: 3, owner: HR}\n"
    )
    cfg2 = parse_engagement_config(text)
    assert cfg2.actions.quasi_identifiers == ["region"]
    assert cfg2.actions.initiatives[0].impact == 4
    with pytest.raises(ConfigError, match="fuse_cx_ex"):
        parse_engagement_config(text.replace("action: fuse_cx_ex", "action: fuse"))
    with pytest.raises(ConfigError):
        parse_engagement_config(text.replace("effort: 3", "effort: 9"))


# --------------------------------------------------------------------------------------
# The other actions' evidence
# --------------------------------------------------------------------------------------
def test_journey_goal_completion_is_the_product_of_stage_rates():
    comp = pd.DataFrame(
        {
            "journey_stage": ["discover", "discover", "book", "check_in", "post_stay"],
            "touchpoint": ["web", "app", "web", "desk", "email"],
            "completed": [80, 40, 95, 100, 10],
            "n": [100, 50, 100, 100, 40],
        }
    )
    ev, friction, _ = actions.journey_evidence(
        None,
        comp,
        None,
        {},
        stages=["discover", "book", "check_in", "post_stay"],
        goal_stage="check_in",
    )
    g = ev.set_index("metric").loc["goal_completion"]
    assert g["value"] == pytest.approx(0.8 * 0.95)
    assert g["ci_low"] < g["value"] < g["ci_high"]
    assert friction.iloc[0]["where"] == "email"  # 30 lost, the most
    assert friction["lost"].tolist() == sorted(friction["lost"], reverse=True)


def test_magic_moments_degrade_without_step_05():
    ev, found = actions.magic_moments_evidence(None, None)
    assert ev.empty and found.empty
    moments = pd.DataFrame(
        {
            "touchpoint": ["checkin", "room", "wifi", "bar"],
            "kind": ["magic", "magic", "pain", "none"],
            "effect": [0.2, 0.1, -0.3, 0.0],
            "ci_low": [0.1, -0.1, -0.5, -0.1],
            "ci_high": [0.3, 0.3, -0.1, 0.1],
            "q": [0.01, 0.2, 0.03, 0.9],
            "n": [300, 200, 150, 100],
        }
    )
    ev, found = actions.magic_moments_evidence(moments, None)
    e = ev.set_index("metric")["value"]
    assert e["magic_moments_found"] == 1  # room's q is 0.2
    assert e["pain_point_share"] == pytest.approx(1 / 4)
    assert set(found["name"]) == {"checkin", "wifi"}


def test_fuse_evidence_finds_units_held_back():
    measures = pd.DataFrame(
        {
            "name": ["pride", "greet", "nps"],
            "element": ["pride", "behaviours", "results"],
            "table": ["employees", "employees", "cx_survey"],
            "higher_is_better": [True, True, True],
        }
    )
    edges = pd.DataFrame(
        {
            "parent": ["pride", "greet"],
            "child": ["greet", "nps"],
            "estimate": [0.1, 5.0],
            "ci_low": [0.05, -1.0],
            "ci_high": [0.15, 11.0],
        }
    )
    effects = pd.DataFrame(
        {"from": ["pride"], "to": ["nps"], "total": [4.0], "total_ci_low": [1.0],
         "total_ci_high": [7.0]}
    )  # fmt: skip
    profile = pd.DataFrame(
        {"unit_id": ["u1", "u2", "u3", "u4", "u5"], "pride": [4.0, 4.5, 5.0, 5.5, 4.9],
         "nps": [10, 20, 30, 40, 25]}
    )  # fmt: skip
    ev, units = actions.fuse_evidence(
        edges, measures, effects, profile, ex_measure="pride", cx_measure="nps"
    )
    e = ev.set_index("metric")["value"]
    assert e["ex_cx_links_supported"] == pytest.approx(0.5)
    u = units.set_index("unit_id")
    # median pride 4.9: u1 needs +0.9 -> +3.6 NPS (0.9 to 6.3); u5 at the median: none
    assert u.loc["u1", "cx_gain"] == pytest.approx(3.6)
    assert (u.loc["u1", "cx_gain_ci_low"], u.loc["u1", "cx_gain_ci_high"]) == pytest.approx(
        (0.9, 6.3)
    )
    assert set(u.index[u["held_back"]]) == {"u1", "u2"}
    assert e["units_ex_not_holding_back"] == pytest.approx(3 / 5)


def test_outcome_regression_equals_scikit_learns_ridge():
    """The bootstrap's weighted least squares is sklearn's Ridge(alpha=1e-6), collinear
    dummies included (solved, not singular)."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(3)
    n = 400
    a = rng.integers(0, 3, n)
    Z = np.column_stack([rng.normal(size=(n, 3)), a == 0, a == 1, a == 2]).astype(float)
    Y = Z[:, :3] @ rng.normal(size=(3, 2)) + rng.normal(size=(n, 2)) + 5
    w = rng.uniform(0.2, 2, n)
    fit_rows = rng.random(n) < 0.7
    got = actions._wls_predict(Z, Y, fit_rows, w)
    ref = Ridge(alpha=1e-6).fit(Z[fit_rows], Y[fit_rows], sample_weight=w[fit_rows])
    np.testing.assert_allclose(got, ref.predict(Z), rtol=0, atol=1e-6)


def test_adoption_effects_on_a_random_sample_of_non_joiners():
    panel, truth = _simulated_panel()
    kw = {"other": None, "static_covariates": ("region",), "outcomes": ("stays",), "seed": 7}
    full = actions.adoption_effects(panel, n_boot=40, **kw)
    part = actions.adoption_effects(panel, n_boot=40, max_controls=1500, **kw)
    assert part.counts["non_joiners"] == full.counts["non_joiners"] > 1500
    assert part.counts["controls"] <= 1500 < full.counts["controls"]
    assert part.counts["in_estimand"] == full.counts["in_estimand"]  # every joiner kept
    h = part.headline()
    assert h["ci_low"] < truth < h["ci_high"]
    # fewer controls, a wider interval
    f = full.headline()
    assert h["ci_high"] - h["ci_low"] > f["ci_high"] - f["ci_low"]
