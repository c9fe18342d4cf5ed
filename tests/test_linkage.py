"""The ROX linkage model against the generator's truth and independent implementations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from rox_helpers import linkage
from rox_helpers.config import parse_engagement_config
from rox_helpers.errors import ConfigError, RoxError


@pytest.fixture(scope="module")
def model(loaded):
    panel = linkage.build_panel(loaded.tables, loaded.config)
    return linkage.fit_linkage(panel, loaded.config, n_boot=299)


def _truth(truth) -> dict[tuple[str, str], float]:
    return {(e["child"], e["parent"]): e["value"] for e in truth["linkage"]["effects"]}


def test_every_true_effect_inside_the_joint_band_and_every_sign_right(model, truth):
    true = _truth(truth)
    edges = model.edges.set_index(["child", "parent"])
    assert set(true) <= set(edges.index), "every link with a true value is estimated"
    for key, value in true.items():
        e = edges.loc[key]
        assert e["joint_low"] <= value <= e["joint_high"], (key, value, e["estimate"])
        if value != 0:
            assert np.sign(e["estimate"]) == np.sign(value), key
    # the joint band is wider than each link's own 95% interval
    assert (edges["joint_high"] - edges["joint_low"] >= edges["ci_high"] - edges["ci_low"]).all()
    # most per-link 95% intervals cover on their own too
    covered = [edges.loc[k, "ci_low"] <= v <= edges.loc[k, "ci_high"] for k, v in true.items()]
    assert np.mean(covered) >= 0.8


def test_influencer_pride_enters_as_a_measure_with_no_effect_of_its_own(model):
    # the generator's greeting depends on each person's own pride only: once the unit's
    # pride is held constant, the pride of the people colleagues turn to adds nothing
    assert model.panel.cells["influencer_pride"].notna().mean() > 0.9
    e = model.edges.set_index(["child", "parent"]).loc[("greet_front_line", "influencer_pride")]
    assert e["ci_low"] <= 0 <= e["ci_high"]
    assert e["ci_high"] - e["ci_low"] < 0.1  # and the interval is informative, not vacuous


def test_total_effect_of_pride_on_nps_matches_the_chain_of_true_links(model, truth):
    true = _truth(truth)
    names = sorted({n for k in true for n in k})
    B = np.zeros((len(names), len(names)))
    for (c, p), v in true.items():
        B[names.index(c), names.index(p)] = v
    T = np.linalg.inv(np.eye(len(names)) - B) - np.eye(len(names))
    expected = T[names.index("nps"), names.index("pride")]
    eff = model.effects.set_index(["from", "to"]).loc[("pride", "nps")]
    assert eff["total_ci_low"] <= expected <= eff["total_ci_high"]
    assert eff["indirect"] == pytest.approx(eff["total"])  # no direct path declared


def test_within_estimates_equal_linearmodels_panelols(model):
    from linearmodels.panel import PanelOLS

    cells = model.panel.cells
    d = cells.dropna(subset=["cleanliness", "pride", "n__cleanliness"]).set_index(["unit_id", "t"])
    res = PanelOLS(
        d["cleanliness"],
        d[["pride"]],
        entity_effects=True,
        time_effects=True,
        weights=d["n__cleanliness"],
    ).fit()
    ours = model.edges.set_index(["child", "parent"]).loc[("cleanliness", "pride"), "estimate"]
    assert ours == pytest.approx(res.params["pride"], rel=1e-8)


def test_respondent_level_link_holds_every_other_attribute_constant(model, loaded):
    import statsmodels.formula.api as smf

    r = model.panel.respondents
    ctl = [c for c in r.columns if c.startswith("ctl__")]
    d = r.dropna(subset=["nps", "checkin_speed", "cleanliness", "staff_friendliness", *ctl])
    f = "nps ~ checkin_speed + cleanliness + staff_friendliness + " + " + ".join(ctl)
    res = smf.wls(f + " + C(unit_id) + C(t)", d, weights=d["weight"]).fit()
    edges = model.edges.set_index(["child", "parent"])
    for p in ("checkin_speed", "cleanliness", "staff_friendliness"):
        assert edges.loc[("nps", p), "estimate"] == pytest.approx(res.params[p], rel=1e-8)
        assert edges.loc[("nps", p), "evidence"] == "respondent-level association within units"


@pytest.fixture(scope="module", params=[False, True], ids=["no_feedback", "feedback"])
def feedback_fit(request, tmp_path_factory):
    """Occupancy on pride in a small engagement generated with or without the generator's
    feedback (last month's occupancy raises this month's pride)."""
    import shutil

    from rox_helpers.data import load_engagement
    from rox_helpers.synthetic import SampleSize, generate_sample

    root = tmp_path_factory.mktemp(f"fb{int(request.param)}")
    shutil.copy(REPO / "engagements" / "sample" / "engagement.yml", root / "engagement.yml")
    size = SampleSize(n_customers=3_000, n_interactions=30_000, n_responses=1_500)
    generate_sample(root / "data", seed=11, size=size, feedback=request.param)
    d = load_engagement(root)
    panel = linkage.build_panel(d.tables, d.config, measures=["pride", "occupancy"])
    model = linkage.fit_linkage(panel, d.config, paths={"occupancy": ["pride"]}, n_boot=199)
    return request.param, model.edges.iloc[0]


def test_lead_test_flags_the_generators_feedback_and_only_then(feedback_fit):
    feedback, edge = feedback_fit
    # the feedback acts within a month: the test runs at the finer grain of the data
    assert edge["lead_grain"] == "month"
    assert bool(edge["feedback_flag"]) is feedback, edge[["lead", "lead_p", "lead_q"]]
    if feedback:  # occupancy raises next month's pride: the lead is positive
        assert edge["lead"] > 0 and edge["lead_ci_low"] > 0
        assert "lead test" in edge["flags"]
    else:
        assert edge["lead_ci_low"] <= 0 <= edge["lead_ci_high"]


def test_reliability_matches_one_way_anova():
    from scipy.stats import f_oneway

    rng = np.random.default_rng(3)
    true = rng.normal(0, 1, 30)
    rows = pd.DataFrame(
        {
            "unit_id": np.repeat([f"U{i // 3}" for i in range(30)], 20),
            "period": np.repeat([f"P{i % 3}" for i in range(30)], 20),
            "x": np.repeat(true, 20) + rng.normal(0, 3, 600),
        }
    )
    rel = linkage.reliability(rows)
    F = f_oneway(*[g["x"] for _, g in rows.groupby(["unit_id", "period"])]).statistic
    assert rel["icc2"] == pytest.approx(1 - 1 / F)
    assert rel["icc1"] == pytest.approx((F - 1) / (F - 1 + 20))


def test_what_if_is_linear_and_flags_extrapolation(model):
    one = linkage.what_if(model, {"checkin_minutes": -0.5}).set_index("measure")
    two = linkage.what_if(model, {"checkin_minutes": -1.0}).set_index("measure")
    assert two.loc["nps", "change"] == pytest.approx(2 * one.loc["nps", "change"])
    assert one.loc["nps", "change"] > 0 and one.loc["nps", "ci_low"] > 0
    assert "pride" not in one.index  # upstream measures do not move
    with pytest.raises(RoxError, match="range"):
        linkage.what_if(model, {"pride": 5.0}, strict=True)
    flagged = linkage.what_if(model, {"pride": 5.0})
    assert flagged["extrapolation"].all() and flagged.attrs["notes"]


def test_hypotheses_are_supported_contradicted_or_inconclusive(model, loaded):
    res = linkage.test_hypotheses(model, loaded.config.hypotheses).set_index("id")
    # all four sample hypotheses follow from true links of the generator
    assert (res["verdict"] == "supported").all(), res[["verdict", "effect"]]
    flipped = [h.model_copy(update={"expected_sign": "+"}) for h in loaded.config.hypotheses]
    res = linkage.test_hypotheses(model, flipped).set_index("id")
    assert res.loc["H2", "verdict"] == "contradicted"
    # greeting -> staff friendliness is weak on this panel: inconclusive with an MDE
    h = loaded.config.hypotheses[0].model_copy(
        update={"measures": ["greet_front_line", "occupancy"], "expected_sign": "+"}
    )
    r = linkage.test_hypotheses(model, [h]).iloc[0]
    if r["verdict"] == "inconclusive":
        assert r["min_detectable"] > abs(r["effect"])


BASE = """
client: {name: X}
data:
  employees: {path: e.csv}
  units: {path: u.csv}
elements:
  pride: [{name: pride, table: employees, column: pride}]
  results: [{name: occ, table: units, column: occupancy}]
"""


def test_config_refuses_loops_self_parents_and_unknown_measures():
    with pytest.raises(ConfigError, match="loop"):
        parse_engagement_config(BASE + "linkage: {paths: {occ: [pride], pride: [occ]}}\n")
    with pytest.raises(ConfigError, match="Nickell"):
        parse_engagement_config(BASE + "linkage: {paths: {occ: [occ, pride]}}\n")
    with pytest.raises(ConfigError, match="did you mean 'pride'"):
        parse_engagement_config(BASE + "linkage: {paths: {occ: [prid]}}\n")
