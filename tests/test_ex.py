"""Employee experience: tables on people, the floor, and turnover against ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rox_helpers import ex


def test_cox_recovers_the_planted_effect_of_pride_on_leaving(loaded, truth):
    model = ex.fit_turnover(loaded.tables["employees"])
    planted = truth["causal_model"]["turnover"]["logit_per_pride_point"]
    coef = float(model.summary.set_index("covariate").loc["pride", "coef"])
    # monthly leaving is rare, so the log hazard ratio is close to the planted monthly logit
    assert coef == pytest.approx(planted, abs=0.15)
    assert model.pride_ci[1] < 1 and "lowers" in model.headline()


def test_kaplan_meier_curves_start_at_one_and_never_rise(loaded):
    curves = ex.km_curves(loaded.tables["employees"], by="team")
    for _, g in curves.groupby("group"):
        assert g["staying"].iloc[0] == pytest.approx(1.0)
        assert (np.diff(g["staying"].to_numpy()) <= 1e-12).all()
        assert (g["ci_low"] <= g["staying"] + 1e-12).all()


def test_ex_table_uses_one_period_and_counts_people(loaded):
    emp = loaded.tables["employees"]
    t = ex.ex_table(emp, "pride", by=["team"]).set_index("team")
    latest = emp[emp["period"] == emp["period"].max()]
    assert t.loc["All", "n_people"] == latest["employee_id"].nunique()
    assert t.loc["All", "estimate"] == pytest.approx(latest["pride"].mean())


def _panel(rows):
    return pd.DataFrame(rows, columns=["employee_id", "unit_id", "team", "period", "pride", "left"])


def test_small_team_is_hidden_with_its_complement():
    p = pd.Timestamp("2025-01-01")
    rows = [(f"S{i}", "H1", "spa", p, 5.0, False) for i in range(3)]
    rows += [(f"F{i}", "H1", "front", p, 4.0, False) for i in range(40)]
    rows += [(f"K{i}", "H1", "kitchen", p, 6.0, False) for i in range(40)]
    t = ex.ex_table(_panel(rows), "pride", by=["team"]).set_index("team")
    assert t.loc["spa", "suppressed"] and np.isnan(t.loc["spa", "estimate"])
    assert int(t[["suppressed"]].drop(index="All").sum().iloc[0]) >= 2


def test_tenure_spells_end_at_the_month_of_leaving():
    months = pd.date_range("2025-01-01", periods=4, freq="MS")
    rows = [("A", "H1", "t", m, 5.0, i == 2) for i, m in enumerate(months)]  # left in month 3
    rows += [("B", "H1", "t", m, 4.0, False) for m in months]
    s = ex.tenure_spells(_panel(rows))
    a = s[s["employee_id"] == "A"]
    assert list(a["start"]) == [0, 1, 2] and list(a["event"]) == [0, 0, 1]
    assert s[s["employee_id"] == "B"]["event"].sum() == 0


def test_ex_drivers_equal_an_independent_least_squares_fit(loaded):
    emp = loaded.tables["employees"]
    out = ex.ex_drivers(emp, "pride", ["engagement", "tenure_months"]).set_index("item")
    latest = emp[emp["period"] == emp["period"].max()]
    d = latest[["pride", "engagement", "tenure_months"]].astype(float).dropna()
    z = (d - d.mean()) / d.std(ddof=0)
    x = np.column_stack([np.ones(len(z)), z["engagement"], z["tenure_months"]])
    beta, *_ = np.linalg.lstsq(x, z["pride"].to_numpy(), rcond=None)
    assert out.loc["engagement", "beta"] == pytest.approx(beta[1], abs=1e-9)
    assert out.loc["tenure_months", "beta"] == pytest.approx(beta[2], abs=1e-9)
    assert out.loc["engagement", "ci_low"] < beta[1] < out.loc["engagement", "ci_high"]


def test_gaps_in_the_pulse_are_calendar_months_not_shorter_tenure():
    months = pd.to_datetime(["2025-01-01", "2025-02-01", "2025-04-01"])  # March missing
    rows = [("A", "H1", "t", m, 5.0, i == 2) for i, m in enumerate(months)]
    s = ex.tenure_spells(_panel(rows))
    assert list(s["start"]) == [0, 1, 3] and list(s["stop"]) == [1, 2, 4]
    assert s["event"].tolist() == [0, 0, 1]
