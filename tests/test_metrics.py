"""Metrics against hand-computed values and R's survey package; weights; invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rox_helpers.errors import DataValidationError
from rox_helpers.metrics import ces, csat, enps, metric, nps
from rox_helpers.weights import nonresponse_check, population_margins, rake

REF = Path(__file__).parent / "reference"  # values from survey_reference.R (R's survey package)
SAMPLE = pd.read_csv(REF / "survey_sample.csv")
MARGINS = {
    "region": pd.Series({"North": 5000, "South": 3500, "East": 1500}),
    "tier": pd.Series({"Blue": 7000, "Silver": 2200, "Gold": 800}),
}
VARIABLES = [("nps_y", "nps", 100.0), ("csat_top2", "csat", 1.0), ("ces", "ces", 1.0)]


# --- hand-computed values -----------------------------------------------------------


def test_nps_uses_the_multinomial_variance():
    df = pd.DataFrame({"nps": [10, 9, 8, 7, 6, 0, 10, 3, 9, 9]})
    r = nps(df).iloc[0]
    p, d, n = 5 / 10, 3 / 10, 10
    assert r["estimate"] == pytest.approx(100 * (p - d))
    # Var(y) with y in {-1, 0, 1}: p + d - (p - d)^2 (not p(1-p) + d(1-d))
    assert r["se"] == pytest.approx(100 * np.sqrt((p + d - (p - d) ** 2) / (n - 1)))
    z = 1.959963984540054
    assert r["ci_low"] == pytest.approx(r["estimate"] - z * r["se"])
    assert r["n"] == 10 and r["n_eff"] == 10 and r["deff"] == 1


def test_csat_is_top_two_box_with_a_wilson_interval():
    df = pd.DataFrame({"csat": [5, 5, 4, 4, 4, 4, 4, 3, 2, 1]})
    r = csat(df).iloc[0]
    p, n, z = 0.7, 10, 1.959963984540054
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert r["estimate"] == pytest.approx(0.7)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((centre - half, centre + half))


def test_ces_mean_and_low_effort_share():
    df = pd.DataFrame({"ces": [1, 2, 3, 4, 7, None]})
    assert ces(df).iloc[0]["estimate"] == pytest.approx(17 / 5)
    assert ces(df, low_effort=True).iloc[0]["estimate"] == pytest.approx(3 / 5)
    assert ces(df).iloc[0]["n"] == 5


def test_enps_reads_the_employee_question():
    df = pd.DataFrame({"enps": [10, 0, 0, 8]})
    assert enps(df).iloc[0]["estimate"] == pytest.approx(-25)


def test_out_of_range_answers_are_refused_with_a_fix():
    with pytest.raises(DataValidationError) as exc:
        nps(pd.DataFrame({"nps": [3, 11]}))
    assert exc.value.column == "nps" and exc.value.fix


def test_weights_shrink_the_effective_base():
    df = pd.DataFrame({"nps": [10, 0, 10, 0], "w": [1.0, 1.0, 1.0, 3.0]})
    r = nps(df, weight="w").iloc[0]
    assert r["estimate"] == pytest.approx(100 * (2 - 4) / 6)
    assert r["n_eff"] == pytest.approx(36 / 12)
    assert r["deff"] == pytest.approx(4 / 3)


# --- R's survey package ---------------------------------------------------------------


@pytest.mark.parametrize("design", ["weighted", "unweighted"])
@pytest.mark.parametrize(("variable", "name", "factor"), VARIABLES)
def test_estimates_and_standard_errors_equal_r_survey(design, variable, name, factor):
    ref = pd.read_csv(REF / "survey_reference.csv")
    ref = ref[(ref.design == design) & (ref.variable == variable)].set_index("unit")
    weight = "weight" if design == "weighted" else None
    overall = metric(SAMPLE, name, weight=weight).iloc[0]
    assert overall["estimate"] / factor == pytest.approx(ref.loc["ALL", "estimate"], abs=1e-6)
    assert overall["se"] / factor == pytest.approx(ref.loc["ALL", "se"], abs=1e-6)
    by_unit = metric(SAMPLE, name, weight=weight, by=["unit"]).set_index("unit")
    units = ref.drop(index="ALL")
    np.testing.assert_allclose(by_unit["estimate"] / factor, units["estimate"], atol=1e-6)
    np.testing.assert_allclose(by_unit["se"] / factor, units["se"], atol=1e-6)


def test_raked_weights_and_raked_standard_error_equal_r_survey():
    res = rake(SAMPLE, MARGINS, weight="weight")
    assert res.converged
    ref = pd.read_csv(REF / "rake_reference.csv")
    np.testing.assert_allclose(res.weights.to_numpy(), ref["weight"].to_numpy(), rtol=1e-6)
    raked = SAMPLE.assign(rw=res.weights)
    r = nps(raked, weight="rw", calibration=["region", "tier"]).iloc[0]
    mean_ref = pd.read_csv(REF / "rake_mean_reference.csv").iloc[0]
    assert r["estimate"] / 100 == pytest.approx(mean_ref["estimate"], abs=1e-6)
    assert r["se"] / 100 == pytest.approx(mean_ref["se"], abs=1e-6)
    # ignoring the raking overstates the error
    assert nps(raked, weight="rw").iloc[0]["se"] > r["se"]


# --- raking ---------------------------------------------------------------------------


def test_raking_matches_every_margin_and_trimming_caps_weights():
    res = rake(SAMPLE, MARGINS, weight="weight", trim=(0.5, 2.0))
    w = res.weights
    assert w.max() <= 2.0 * w.mean() * (1 + 1e-6) and w.min() >= 0.5 * w.mean() * (1 - 1e-6)
    assert res.trimmed > 0
    untrimmed = rake(SAMPLE, MARGINS, weight="weight")
    assert res.n_eff > untrimmed.n_eff  # trimming buys effective base
    for col, pop in MARGINS.items():
        got = untrimmed.weights.groupby(SAMPLE[col]).sum()
        np.testing.assert_allclose(got[pop.index], pop, rtol=1e-8)


def test_raking_refuses_a_level_without_respondents():
    margins = {"region": pd.Series({"North": 10, "South": 10, "East": 10, "West": 5})}
    with pytest.raises(DataValidationError) as exc:
        rake(SAMPLE, margins)
    assert "West" in exc.value.message and "Collapse" in exc.value.fix


def test_population_margins_count_levels():
    pop = pd.DataFrame({"region": ["a", "a", "b", None]})
    assert population_margins(pop, ["region"])["region"].to_dict() == {"a": 2, "b": 1}


def test_nonresponse_check_finds_a_planted_difference():
    rng = np.random.default_rng(3)
    feats = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(2000)],
            "frequency": rng.poisson(3, 2000).astype(float),
            "spend": rng.gamma(2, 100, 2000),
        }
    )
    answered = feats["frequency"] + rng.normal(0, 1, 2000) > 4  # frequent guests answer more
    out = nonresponse_check(feats, feats.loc[answered, "customer_id"]).set_index("behaviour")
    assert out.loc["frequency", "significant"] and out.loc["frequency", "std_difference"] > 0.5
    assert "higher frequency" in out.loc["frequency", "reading"]
    assert not out.loc["spend", "significant"]


# --- invariants (hypothesis) ----------------------------------------------------------

answers = st.lists(st.integers(0, 10), min_size=2, max_size=60)


@settings(max_examples=60, deadline=None)
@given(answers)
def test_nps_is_within_bounds_and_its_interval_contains_it(values):
    r = nps(pd.DataFrame({"nps": values})).iloc[0]
    assert -100 <= r["estimate"] <= 100
    if np.isfinite(r["ci_low"]):
        assert -100 <= r["ci_low"] <= r["estimate"] <= r["ci_high"] <= 100


@settings(max_examples=60, deadline=None)
@given(answers)
def test_weights_of_one_equal_the_unweighted_result(values):
    df = pd.DataFrame({"nps": values, "w": 1.0})
    a, b = nps(df).iloc[0], nps(df, weight="w").iloc[0]
    for col in ("estimate", "se", "ci_low", "ci_high", "n_eff"):
        assert a[col] == pytest.approx(b[col], nan_ok=True)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=3, max_size=40))
def test_intervals_narrow_with_n(values):
    small = csat(pd.DataFrame({"csat": values})).iloc[0]
    large = csat(pd.DataFrame({"csat": values * 4})).iloc[0]
    assert small["ci_low"] <= small["estimate"] <= small["ci_high"]
    assert (large["ci_high"] - large["ci_low"]) <= (small["ci_high"] - small["ci_low"]) + 1e-12


def test_bootstrap_is_seeded_and_agrees_with_the_analytic_interval():
    df = pd.DataFrame({"nps": np.random.default_rng(1).integers(0, 11, 2000)})
    a = nps(df, method="bootstrap", seed=7, n_boot=1000).iloc[0]
    b = nps(df, method="bootstrap", seed=7, n_boot=1000).iloc[0]
    assert a["ci_low"] == b["ci_low"] and a["ci_high"] == b["ci_high"]
    analytic = nps(df).iloc[0]
    assert a["ci_low"] == pytest.approx(analytic["ci_low"], abs=1.0)
    assert a["ci_high"] == pytest.approx(analytic["ci_high"], abs=1.0)


def test_trimmed_raking_keeps_the_caps_and_says_when_they_conflict_with_the_margins():
    feasible = rake(SAMPLE, MARGINS, weight="weight", trim=(0.2, 5.0))
    mean = feasible.weights.sum() / len(SAMPLE)
    assert feasible.converged
    assert feasible.weights.max() <= 5.0 * mean * (1 + 1e-9)
    for col, pop in MARGINS.items():
        got = feasible.weights.groupby(SAMPLE[col]).sum()
        np.testing.assert_allclose(got[pop.index], pop, rtol=1e-6)
    # caps this tight cannot hold with these margins: reported, not hidden
    tight = rake(SAMPLE, MARGINS, weight="weight", trim=(0.9, 1.1))
    assert not tight.converged and tight.max_margin_error > 1e-3


def test_negative_weights_are_refused():
    with pytest.raises(DataValidationError) as exc:
        nps(pd.DataFrame({"nps": [9, 3], "w": [1.0, -1.0]}), weight="w")
    assert "negative" in exc.value.message
