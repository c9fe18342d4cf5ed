"""The ROX scorecard: indices against a frozen baseline, direction-aware."""

from __future__ import annotations

import pandas as pd
import pytest

from rox_helpers import framework


def _values(rows):
    return pd.DataFrame(rows, columns=list(framework.VALUE_COLUMNS))


def test_baseline_average_scores_50_and_direction_is_respected():
    rows = []
    for unit, (pride, turnover) in {"A": (4.0, 0.10), "B": (5.0, 0.05), "C": (6.0, 0.00)}.items():
        rows.append(("pride", "pride", "Pride", True, unit, "2025Q1", pride, 50))
        rows.append(("pride", "turnover", "Turnover", False, unit, "2025Q1", turnover, 50))
        rows.append(("pride", "pride", "Pride", True, unit, "2025Q2", pride + 1.0, 50))
        rows.append(("pride", "turnover", "Turnover", False, unit, "2025Q2", turnover, 50))
    measures, elements = framework.scorecard(_values(rows), baseline_period="2025Q1")
    m = measures.set_index(["measure", "unit_id", "period"])
    assert m.loc[("pride", "B", "2025Q1"), "index"] == pytest.approx(50)
    # one baseline SD above the mean -> 60; lower turnover counts for pride
    assert m.loc[("pride", "C", "2025Q1"), "index"] == pytest.approx(60)
    assert m.loc[("turnover", "C", "2025Q1"), "index"] == pytest.approx(60)
    assert m.loc[("turnover", "A", "2025Q1"), "index"] == pytest.approx(40)
    # later periods are measured against the frozen baseline, not against themselves
    assert m.loc[("pride", "B", "2025Q2"), "index"] == pytest.approx(60)
    e = elements.set_index(["element", "unit_id", "period"])
    assert e.loc[("pride", "C", "2025Q1"), "index"] == pytest.approx(60)
    assert e.loc[("pride", "C", "2025Q1"), "n_measures"] == 2


def test_indices_are_clipped_to_0_100():
    rows = [
        ("values", "v", "V", True, u, "P1", x, 9)
        for u, x in zip("ABC", (0.0, 1.0, 2.0), strict=True)
    ]
    rows.append(("values", "v", "V", True, "A", "P2", 100.0, 9))
    measures, _ = framework.scorecard(_values(rows), baseline_period="P1")
    assert measures["index"].between(0, 100).all() and measures["index"].max() == 100


def test_unit_period_values_on_the_sample(loaded):
    values, skipped = framework.unit_period_values(loaded.tables, loaded.config)
    survey = loaded.tables["cx_survey"]
    unit = sorted(survey["unit_id"].unique())[0]
    q = framework.period_label(survey["date"], "quarter")
    g = survey[(survey["unit_id"] == unit) & (q == "2025Q2")]["nps"].dropna()
    expected = 100 * ((g >= 9).mean() - (g <= 6).mean())
    got = values.set_index(["measure", "unit_id", "period"]).loc[("nps", unit, "2025Q2"), "value"]
    assert got == pytest.approx(expected)
    assert set(skipped["measure"]) == {"community_member", "app_user"}  # no unit, no period
    assert "chain only" in skipped["reason"].iloc[0]


def test_survey_weights_keep_unknown_respondents_at_their_share(loaded):
    from rox_helpers.weights import UNKNOWN, survey_weights

    s, sw = survey_weights(
        loaded.tables["cx_survey"], loaded.tables["customers"], rake_to_customers=["region"]
    )
    assert sw.method == "raked" and sw.rake.converged
    share_before = (s["region"] == UNKNOWN).mul(s["weight"]).sum() / s["weight"].sum()
    share_after = (s["region"] == UNKNOWN).mul(s["weight_final"]).sum() / s["weight_final"].sum()
    assert share_after == pytest.approx(share_before, rel=1e-6)
    known = s[s["region"] != UNKNOWN]
    pop = loaded.tables["customers"]["region"].value_counts(normalize=True)
    got = known.groupby("region")["weight_final"].sum() / known["weight_final"].sum()
    pd.testing.assert_series_equal(got.sort_index(), pop.sort_index(), check_names=False, rtol=1e-6)


def test_sums_are_per_month_so_a_partial_quarter_does_not_read_as_a_fall(loaded):
    values, _ = framework.unit_period_values(loaded.tables, loaded.config)
    rev = values[values["measure"] == "revenue"].groupby("period")["value"].mean()
    units = loaded.tables["units"]
    last_month = units[units["period"] == units["period"].max()]["revenue"].mean()
    # the sample ends in October: its last quarter holds one month
    assert rev.iloc[-1] == pytest.approx(last_month)
    assert rev.iloc[-1] > 0.8 * rev.iloc[-2]


def test_a_measure_starting_after_the_baseline_gets_its_own_first_period():
    rows = [
        ("values", "late", "Late", True, u, p, x, 9)
        for p in ("P2", "P3")
        for u, x in zip("ABC", (1.0, 2.0, 3.0), strict=True)
    ]
    rows += [("values", "early", "Early", True, u, "P1", x, 9)
             for u, x in zip("ABC", (1.0, 2.0, 3.0), strict=True)]  # fmt: skip
    measures, _ = framework.scorecard(_values(rows), baseline_period="P1")
    late = measures[measures["measure"] == "late"]
    assert (late["baseline_period"] == "P2").all() and late["index"].notna().all()
    assert (measures[measures["measure"] == "early"]["baseline_period"] == "P1").all()
