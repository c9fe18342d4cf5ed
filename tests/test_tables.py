"""Grouped tables: the two thresholds, complementary suppression, comparisons, shrinkage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rox_helpers.tables import (
    ALL,
    NOTE_FLOOR,
    NOTE_LOW_BASE,
    NOTE_SECONDARY,
    bh_family,
    compare_periods,
    compare_to_rest,
    league_table,
    metric_table,
)


def _survey(sizes: dict[str, int], seed: int = 0, shift: dict[str, float] | None = None):
    rng = np.random.default_rng(seed)
    parts = []
    for unit, n in sizes.items():
        base = 7 + (shift or {}).get(unit, 0.0)
        parts.append(
            pd.DataFrame({"unit_id": unit, "nps": np.clip(rng.normal(base, 2, n).round(), 0, 10)})
        )
    return pd.concat(parts, ignore_index=True)


def test_floor_hides_small_groups_and_a_complement_so_they_cannot_be_recomputed():
    df = _survey({"A": 3, "B": 20, "C": 40, "D": 100})
    t = metric_table(df, "nps", by=["unit_id"]).set_index("unit_id")
    assert t.loc["A", "suppressed"] and t.loc["A", "note"] == NOTE_FLOOR
    assert t.loc["B", "suppressed"] and t.loc["B", "note"] == NOTE_SECONDARY
    assert t.loc[["A", "B"], ["n", "estimate", "ci_low", "n_people"]].isna().all().all()
    assert not t.loc["C", "suppressed"] and t.loc["C", "reliable"]
    assert not t.loc[ALL, "suppressed"] and t.loc[ALL, "n"] == 163


def test_reliability_base_flags_but_does_not_hide():
    df = _survey({"A": 12, "B": 12, "C": 50})
    t = metric_table(df, "nps", by=["unit_id"], reliability_base=30).set_index("unit_id")
    assert not t.loc["A", "suppressed"] and not t.loc["A", "reliable"]
    assert t.loc["A", "note"] == NOTE_LOW_BASE and np.isfinite(t.loc["A", "estimate"])
    assert t.loc["C", "reliable"] and t.loc["C", "note"] == ""


def test_employee_floor_counts_people_not_rows():
    # 4 people answering monthly for a year: 48 rows, still below a floor of 5 people
    emp = pd.DataFrame(
        {
            "employee_id": [f"E{i % 4}" for i in range(48)] + [f"F{i % 30}" for i in range(60)],
            "team": ["spa"] * 48 + ["front_desk"] * 60,
            "enps": np.tile([9, 7, 3, 10], 27),
        }
    )
    t = metric_table(emp, "enps", by=["team"], people="employee_id").set_index("team")
    assert t.loc["spa", "suppressed"]
    # the only other team would give spa away through the total: it is hidden too
    assert t.loc["front_desk", "suppressed"] or t.loc[ALL, "suppressed"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=2, max_size=8))
def test_no_hidden_cell_can_be_recomputed_from_published_ones(sizes):
    df = _survey({f"U{i}": n for i, n in enumerate(sizes)})
    t = metric_table(df, "nps", by=["unit_id"], anonymity_floor=5)
    cells = t[t["unit_id"] != ALL]
    total_published = not t.loc[t["unit_id"] == ALL, "suppressed"].iloc[0]
    hidden = int(cells["suppressed"].sum())
    # with the total published, a lone hidden cell follows by subtraction: never allowed
    assert not (total_published and hidden == 1)
    # every group under the floor is hidden
    assert cells.loc[cells["suppressed"], "n"].isna().all()
    assert (np.array(sizes)[~cells["suppressed"].to_numpy()] >= 5).all()


def test_compare_to_rest_finds_the_planted_group_and_controls_fdr():
    df = _survey({"A": 300, "B": 300, "C": 300, "D": 300}, shift={"C": 1.5})
    out = compare_to_rest(df, "nps", by="unit_id").set_index("unit_id")
    assert out.loc["C", "significant"] and out.loc["C", "difference"] > 0
    assert (out["q_value"] >= out["p_value"] - 1e-12).all()
    assert out.loc["C", "test"] == "z (linearised)"


def test_compare_to_rest_skips_groups_under_the_floor():
    df = _survey({"A": 3, "B": 100, "C": 100})
    out = compare_to_rest(df, "nps", by="unit_id")
    assert "A" not in set(out["unit_id"])


def test_benjamini_hochberg_by_hand():
    out = bh_family({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.20})
    np.testing.assert_allclose(out["q_value"], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.20])
    assert list(out["significant"]) == [True, False, False, False]


def test_small_units_are_shrunk_more_than_large_ones():
    rng = np.random.default_rng(5)
    units = {f"U{i}": 200 for i in range(10)}
    df = _survey(units, seed=1, shift={f"U{i}": rng.normal(0, 0.5) for i in range(10)})
    # two units with the same planted lift: one with 8 answers, one with 800
    small = pd.DataFrame({"unit_id": "SMALL", "nps": [10, 10, 10, 9, 10, 10, 9, 10]})
    big = pd.DataFrame({"unit_id": "BIG", "nps": np.tile([10, 10, 10, 9, 10, 10, 9, 10], 100)})
    t = league_table(pd.concat([df, small, big], ignore_index=True), "nps").set_index("unit_id")
    assert t.loc["SMALL", "estimate"] == pytest.approx(t.loc["BIG", "estimate"])
    move_small = abs(t.loc["SMALL", "estimate"] - t.loc["SMALL", "shrunk"])
    move_big = abs(t.loc["BIG", "estimate"] - t.loc["BIG", "shrunk"])
    assert move_small > 5 * move_big
    assert t.loc["SMALL", "weight_own"] < t.loc["BIG", "weight_own"] <= 1
    assert t.loc["BIG", "rank"] < t.loc["SMALL", "rank"]
    assert not t.loc["SMALL", "reliable"]


def test_league_statuses_against_a_target():
    df = _survey({"A": 200, "B": 200, "C": 200}, shift={"A": 2.0, "C": -2.0})
    t = league_table(df, "nps", target=20.0, amber_margin=10.0).set_index("unit_id")
    assert set(t["status"]) <= {"green", "amber", "red"}
    assert t.loc["A", "status"] == "green" and t.loc["C", "status"] == "red"


def test_compare_periods_finds_a_planted_shift_and_not_a_null_one():
    rng = np.random.default_rng(8)
    q1 = pd.DataFrame({"q": "2025Q1", "nps": np.clip(rng.normal(7, 2, 800).round(), 0, 10)})
    q2 = pd.DataFrame({"q": "2025Q2", "nps": np.clip(rng.normal(7, 2, 800).round(), 0, 10)})
    q3 = pd.DataFrame({"q": "2025Q3", "nps": np.clip(rng.normal(8, 2, 800).round(), 0, 10)})
    out = compare_periods(pd.concat([q1, q2, q3], ignore_index=True), "nps", period="q")
    out = out.set_index("period")
    assert list(out["previous"]) == ["2025Q1", "2025Q2"]
    assert out.loc["2025Q3", "significant"] and out.loc["2025Q3", "change"] > 0
    assert not out.loc["2025Q2", "significant"]


def test_hidden_cells_together_hold_at_least_the_floor():
    # cells of 1 and 2 people: hiding just those two would give away their 3 people
    df = _survey({"A": 1, "B": 2, "C": 40, "D": 50})
    t = metric_table(df, "nps", by=["unit_id"]).set_index("unit_id")
    assert t.loc["A", "suppressed"] and t.loc["B", "suppressed"] and t.loc["C", "suppressed"]
    assert not t.loc["D", "suppressed"]


def test_comparisons_never_expose_a_hidden_complement():
    # the reviewer's case: H (2 people) is hidden, S (6) hidden as its complement
    df = _survey({"A": 40, "B": 30, "S": 6, "H": 2})
    t = metric_table(df, "nps", by=["unit_id"]).set_index("unit_id")
    assert t.loc["S", "suppressed"] and t.loc["H", "suppressed"]
    out = compare_to_rest(df, "nps", by="unit_id")
    assert set(out["unit_id"]) == {"A", "B"}
    assert "rest" not in out.columns


def test_two_way_tables_hide_complements_within_each_slice():
    rng = np.random.default_rng(4)
    rows = [("U1", "app", 2), ("U1", "web", 40), ("U1", "desk", 30),
            ("U2", "app", 25), ("U2", "web", 35), ("U2", "desk", 28)]  # fmt: skip
    df = pd.concat(
        [
            pd.DataFrame({"unit_id": u, "chan": c, "nps": rng.integers(0, 11, n)})
            for u, c, n in rows
        ],
        ignore_index=True,
    )
    t = metric_table(df, "nps", by=["unit_id", "chan"])
    cells = t[t["unit_id"] != ALL].set_index(["unit_id", "chan"])["suppressed"]
    # U1/app is hidden; within U1 (a one-way margin) and within app, a complement is too
    assert cells[("U1", "app")]
    assert cells.loc["U1"].sum() >= 2
    assert cells.xs("app", level="chan").sum() >= 2


def test_league_table_hides_units_under_the_floor():
    df = _survey({"A": 200, "B": 200, "TINY": 2})
    t = league_table(df, "nps").set_index("unit_id")
    assert t.loc["TINY", "suppressed"] and np.isnan(t.loc["TINY", "estimate"])
    assert pd.isna(t.loc["TINY", "rank"])
