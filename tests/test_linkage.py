"""The ROX linkage model against the generator's truth and independent implementations."""

from __future__ import annotations

from dataclasses import replace

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
    edge = model.edges.set_index(["child", "parent"]).loc[("cleanliness", "pride")]
    assert not edge["noise_corrected"]  # the plain within estimate (no noise correction)
    assert edge["estimate"] == pytest.approx(res.params["pride"], rel=1e-8)


def test_noisy_employee_survey_parents_are_flagged(model, loaded):
    edges = model.edges
    low = (
        (edges["level"] == "unit")
        & edges["parent_reliability"].notna()
        & (edges["parent_reliability"] < loaded.config.linkage.min_reliability)
    )
    assert low.any()
    assert edges.loc[low, "flags"].str.contains("mostly noise").all()
    assert not edges.loc[~low, "flags"].str.contains("mostly noise").any()
    # employee measures get their reliability over persons in build_panel: flagged too
    e = edges.set_index(["child", "parent"]).loc[("checkin_minutes", "fcr_front_desk")]
    assert e["parent_reliability"] < 0.5 and "mostly noise" in e["flags"]
    assert model.panel.cells["v__fcr_front_desk"].notna().any()


def test_intervals_widened_by_the_small_sample_factor(model):
    from scipy.stats import norm, t

    G = model.panel.cells["unit_id"].nunique()
    c = np.sqrt(G / (G - 1)) * t.ppf(0.975, G - 1) / norm.ppf(0.975)
    assert model.small_sample_factor == pytest.approx(c)
    names = model.names
    e = model.edges.iloc[0]
    i, j = names.index(e["child"]), names.index(e["parent"])
    raw = model.draws["B"][:, i, j]
    lo, hi = np.quantile(raw, [0.025, 0.975])
    assert e["ci_low"] == pytest.approx(e["estimate"] + c * (lo - e["estimate"]))
    assert e["ci_high"] == pytest.approx(e["estimate"] + c * (hi - e["estimate"]))
    assert e["se"] == pytest.approx(c * raw.std(ddof=1))
    tot = model.effects.set_index(["from", "to"]).loc[("pride", "nps")]
    draws = np.array(
        [model.total_matrix(b)[names.index("nps"), names.index("pride")] for b in model.draws["B"]]
    )
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert tot["total_ci_low"] == pytest.approx(tot["total"] + c * (lo - tot["total"]))
    assert tot["total_ci_high"] == pytest.approx(tot["total"] + c * (hi - tot["total"]))
    w = linkage.what_if(model, {"pride": 0.1}).set_index("measure").loc["nps"]
    assert w["ci_low"] == pytest.approx(w["change"] + 0.1 * c * (lo - tot["total"]))


def test_wild_residual_scale_uses_the_rank_of_the_two_way_design():
    rng = np.random.default_rng(5)
    unit, t = np.repeat(np.arange(6), 4), np.tile(np.arange(4), 6)
    X = rng.normal(size=(24, 2))
    y = X @ [1.0, -1.0] + rng.normal(size=24)
    _, scale = linkage._fitted_values(X, y, np.ones(24), unit, t)
    # 2 regressors + 5 unit + 3 period dummies + intercept
    assert scale == pytest.approx(np.sqrt(24 / (24 - 11)))
    X[:, 1] = X[:, 0]  # collinear: the rank, not the column count
    assert linkage._fitted_values(X, y, np.ones(24), unit, t)[1] == pytest.approx(
        np.sqrt(24 / (24 - 10))
    )


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
    assert rel["msw"] == pytest.approx(rows.groupby(["unit_id", "period"])["x"].var().mean())


def test_within_reliability_removes_unit_and_period_means():
    # cell values: big unit and period effects plus a within signal of variance 1; 25
    # answers of sd 5 per cell: noise variance 1 per cell mean, true reliability 0.5
    rng = np.random.default_rng(8)
    U, T, n = 80, 8, 25
    value = rng.normal(0, 3, (U, 1)) + rng.normal(0, 3, (1, T)) + rng.normal(0, 1, (U, T))
    rows = pd.DataFrame(
        {
            "unit_id": np.repeat([f"U{u}" for u in range(U)], T * n),
            "period": np.tile(np.repeat([f"P{t}" for t in range(T)], n), U),
            "x": np.repeat(value.ravel(), n) + rng.normal(0, 5, U * T * n),
        }
    )
    rel = linkage.reliability(rows)
    assert rel["within_reliability"] == pytest.approx(0.5, abs=0.06)


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
    # the pride of the people colleagues turn to has no effect of its own in the generator:
    # inconclusive, with the smallest effect the data could have detected
    h = loaded.config.hypotheses[0].model_copy(
        update={"measures": ["influencer_pride", "greet_front_line"], "expected_sign": "+"}
    )
    r = linkage.test_hypotheses(model, [h]).iloc[0]
    assert r["verdict"] == "inconclusive"
    assert r["min_detectable"] > abs(r["effect"]) and "detectable" in r["detail"]


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


NOISY = BASE.replace("  units:", "  cx_survey: {path: c.csv}\n  units:") + (
    "linkage: {paths: {occ: [pride]}, lags: {occ: 0}, lead_grain: null}\n"
)


def _noisy_panel(answer_sd: float, seed: int = 4) -> tuple[linkage.Panel, object]:
    """A unit x period panel: occupancy on the true pride (effect 0.5), pride observed as the
    mean of 20-60 answers of sd ``answer_sd`` around it."""
    cfg = parse_engagement_config(NOISY)
    rng = np.random.default_rng(seed)
    U, T = 60, 8
    true = rng.normal(0, 0.5, (U, 1)) + rng.normal(0, 0.2, (1, T)) + rng.normal(0, 0.4, (U, T))
    occ = 0.5 * true + rng.normal(0, 0.3, (U, 1)) + rng.normal(0, 0.1, (U, T))
    n = rng.integers(20, 61, U * T).astype(float)
    cells = pd.DataFrame(
        {
            "unit_id": np.repeat([f"U{u:02d}" for u in range(U)], T),
            "period": np.tile([f"P{t}" for t in range(T)], U),
            "t": np.tile(np.arange(T), U),
            "pride": true.ravel() + rng.normal(0, answer_sd / np.sqrt(n)),
            "n__pride": n,
            "v__pride": answer_sd**2 / n,
            "occ": occ.ravel(),
            "n__occ": rng.integers(2, 5, U * T).astype(float),
        }
    )
    measures = pd.DataFrame(
        {
            "name": ["pride", "occ"],
            "element": ["pride", "results"],
            "label": ["Pride", "Occupancy"],
            "table": ["employees", "units"],
            "level": ["unit", "unit"],
            "higher_is_better": [True, True],
        }
    )
    noise = (answer_sd**2 / n).mean()
    rel = pd.DataFrame(
        {"measure": ["pride"], "within_reliability": [0.16 / (0.16 + noise)], "msw": [noise]}
    )
    panel = linkage.Panel(cells, None, measures, rel, "quarter", sorted(cells["period"].unique()))
    return panel, cfg


def _corrected_within_slope(d: pd.DataFrame) -> float:
    """The errors-in-variables slope from the full dummy design: (X'WX - noise)^-1 X'Wy."""
    unit = pd.factorize(d["unit_id"])[0]
    D = np.column_stack(
        [
            d["pride"],
            (unit[:, None] == np.arange(unit.max() + 1)).astype(float),
            (d["t"].to_numpy()[:, None] == np.arange(1, d["t"].max() + 1)).astype(float),
        ]
    )
    w = d["n__occ"].to_numpy()
    A, b = (D * w[:, None]).T @ D, (D * w[:, None]).T @ d["occ"].to_numpy()
    W = np.bincount(unit, w)[unit]
    A[0, 0] -= (w * d["v__pride"].to_numpy() * (1 - w / W)).sum()
    return float(np.linalg.solve(A, b)[0])


def test_noise_correction_is_exact_and_guarded():
    panel, cfg = _noisy_panel(answer_sd=1.2)  # within reliability about 0.8
    plain = linkage.fit_linkage(panel, cfg, n_boot=49).edges.iloc[0]
    fixed = linkage.fit_linkage(panel, cfg, n_boot=49, correct_noise=True).edges.iloc[0]
    assert not plain["noise_corrected"] and fixed["noise_corrected"]
    assert fixed["estimate"] == pytest.approx(_corrected_within_slope(panel.cells), rel=1e-8)
    assert abs(fixed["estimate"] - 0.5) < abs(plain["estimate"] - 0.5)
    assert plain["estimate"] < 0.45 and fixed["ci_low"] <= 0.5 <= fixed["ci_high"]

    # a pairs bootstrap replicate: the drawn units' per-unit terms summed, each copy with its
    # own fixed effect -- the same as the direct computation on the stacked copies
    units = sorted(panel.cells["unit_id"].unique())
    eq = linkage.Equation("occ", ["pride"], "unit", 0)
    p = linkage._prepare(panel, eq, {u: i for i, u in enumerate(units)})
    p.correct = True
    draw = np.random.default_rng(0).integers(0, len(units), len(units))
    stacked = pd.concat(
        [
            panel.cells[panel.cells["unit_id"] == units[u]].assign(unit_id=f"copy{k}")
            for k, u in enumerate(draw)
        ]
    )
    assert p.solve("within", draw)[0] == pytest.approx(_corrected_within_slope(stacked), rel=1e-8)

    # below WILD_BELOW units: the wild bootstrap keeps X, so the correction is the same in
    # every replicate
    few = replace(panel, cells=panel.cells[panel.cells["unit_id"].isin(units[:20])])
    wild = linkage.fit_linkage(few, cfg, n_boot=49, correct_noise=True)
    e = wild.edges.iloc[0]
    assert wild.bootstrap.startswith("wild") and wild.n_boot == 49 and e["noise_corrected"]
    assert e["estimate"] == pytest.approx(_corrected_within_slope(few.cells), rel=1e-8)
    assert e["ci_low"] < e["estimate"] < e["ci_high"]

    # mostly noise: the guard leaves the estimate uncorrected, and the link is flagged
    panel, cfg = _noisy_panel(answer_sd=6.0)  # within reliability about 0.15
    plain = linkage.fit_linkage(panel, cfg, n_boot=49).edges.iloc[0]
    kept = linkage.fit_linkage(panel, cfg, n_boot=49, correct_noise=True).edges.iloc[0]
    assert not kept["noise_corrected"]
    assert kept["estimate"] == plain["estimate"]
    assert "mostly noise" in kept["flags"] and "effect attenuated" in kept["flags"]


def test_untestable_hypotheses_and_what_ifs_outside_the_model_are_reported_not_raised(
    model, loaded
):
    h = loaded.config.hypotheses[0].model_copy(update={"measures": ["enps", "nps"]})
    res = linkage.test_hypotheses(model, [h])
    assert res.loc[0, "verdict"] == "not testable" and "linkage.paths" in res.loc[0, "detail"]
    assert {"effect", "ci_low", "ci_high", "min_detectable"} <= set(res.columns)
    cfg = loaded.config.model_copy(deep=True)
    cfg.linkage.what_if = {"eNPS up": {"enps": 5.0}, "Faster": {"checkin_minutes": -0.5}}
    w = linkage.scenario_what_ifs(model, cfg)
    assert set(w["scenario"]) == {"Faster"}
    assert w.attrs["skipped"] == ["eNPS up: enps not in the linkage paths"]
