"""`rox diff`: headline figures of two runs, the change and an interval on the change itself.

Run folders are made by hand (a manifest and a few artifact tables) so every change and
interval here can be worked out on paper.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_tiny
from rox_helpers.artifacts import save_table
from rox_helpers.cli import app
from rox_helpers.errors import RoxError
from rox_helpers.rundiff import (
    diff_runs,
    previous_run,
    since_last_run,
    survey_metric_change,
)

Z = 1.959963984540054


def _survey(ids: list[str], answers: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"response_id": ids, "nps": np.asarray(answers, dtype="float64")})


def _block(prefix: str, promoters: int, passives: int, detractors: int) -> pd.DataFrame:
    answers = [10] * promoters + [8] * passives + [3] * detractors
    return _survey([f"{prefix}{i}" for i in range(len(answers))], answers)


def _manifest(run: Path, *, status="ok", inputs=None, seed=1, steps=("00", "01"), eng="eng"):
    run.mkdir(parents=True, exist_ok=True)
    payload = {
        "engagement": eng,
        "run_id": run.name,
        "status": status,
        "inputs": inputs
        or [{"table": "cx_survey", "path": "data/survey.csv", "bytes": 10, "sha256": "a" * 64}],
        "parameters": {"seed": seed, "steps": list(steps)},
        "versions": {"rox-workbook": "0.1.0"},
        "git_commit": "abc",
        "steps": {s: {"status": "ok", "fingerprint": f"{s}-{seed}"} for s in steps},
    }
    (run / "manifest.json").write_text(json.dumps(payload))
    return run


# ------------------------------------------------------------- the survey metric change
def test_independent_samples_use_the_two_standard_errors():
    """No respondent in both runs: se_change = sqrt(se_a^2 + se_b^2), worked by hand.

    A: 40 promoters, 20 passives, 40 detractors -> NPS 0, sum (y - ybar)^2 = 80.
    B: 60, 20, 20 -> NPS 40, sum (y - ybar)^2 = 60*.36 + 20*.16 + 20*1.96 = 64.
    se^2 = sum / (n (n - 1)) for an unweighted NPS, so se_change = sqrt(144 / 9900)."""
    a, b = _block("a", 40, 20, 40), _block("b", 60, 20, 20)
    res = survey_metric_change(a, b, "nps")
    se = 100 * np.sqrt(144 / 9900)
    assert res["method"] == "independent" and res["n_shared"] == 0
    assert res["a"] == pytest.approx(0) and res["b"] == pytest.approx(40)
    assert res["change"] == pytest.approx(40)
    assert res["se_change"] == pytest.approx(se)
    assert res["ci_low"] == pytest.approx(40 - Z * se)
    assert res["ci_high"] == pytest.approx(40 + Z * se)


def _paired_linearised_se(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """The linearisation (influence) SE of NPS_b - NPS_a over the union of respondents:
    u_i = (y_i - ybar_b) / n_b [i in b] - (y_i - ybar_a) / n_a [i in a]."""
    score = {10: 1.0, 8: 0.0, 3: -1.0}
    ya = a.set_index("response_id")["nps"].map(score)
    yb = b.set_index("response_id")["nps"].map(score)
    ids = ya.index.union(yb.index)
    u = pd.Series(0.0, index=ids)
    u.loc[yb.index] += (yb - yb.mean()) / len(yb)
    u.loc[ya.index] -= (ya - ya.mean()) / len(ya)
    n = len(u)
    return 100 * float(np.sqrt(n / (n - 1) * ((u - u.mean()) ** 2).sum()))


def test_shared_respondents_bootstrap_the_change_and_differ_from_the_independent_formula():
    """A refreshed export: run B holds run A's 100 responses plus 50 new promoters.
    NPS goes from 0 to 50/150; the two figures share 100 respondents, so the independent
    formula overstates the uncertainty of the change. The bootstrap over the 150 respondents
    agrees with the linearisation of the paired difference, and is far narrower."""
    a = _block("r", 40, 20, 40)
    b = pd.concat([a, _survey([f"new{i}" for i in range(50)], [10] * 50)], ignore_index=True)
    boot = survey_metric_change(a, b, "nps", n_boot=4000, seed=1)
    indep = survey_metric_change(a, b, "nps", method="independent")
    assert boot["method"] == "bootstrap"
    assert boot["n_shared"] == 100 and boot["n_union"] == 150
    assert boot["change"] == pytest.approx(100 / 3) == indep["change"]
    # by hand: se_a^2 = 80 / 9900, se_b^2 = 113.33 / (150 * 149)
    se_indep = 100 * np.sqrt(80 / 9900 + (90 * 4 / 9 + 20 / 9 + 40 * 16 / 9) / (150 * 149))
    assert indep["se_change"] == pytest.approx(se_indep)
    paired = _paired_linearised_se(a, b)
    assert boot["se_change"] == pytest.approx(paired, rel=0.07)
    assert boot["se_change"] < 0.6 * indep["se_change"]
    assert boot["ci_low"] < boot["change"] < boot["ci_high"]
    assert boot["ci_high"] - boot["ci_low"] < 0.6 * (indep["ci_high"] - indep["ci_low"])
    # the same seed gives the same interval
    again = survey_metric_change(a, b, "nps", n_boot=4000, seed=1)
    assert again["ci_low"] == boot["ci_low"] and again["ci_high"] == boot["ci_high"]


def test_the_same_respondents_with_the_same_answers_cannot_have_moved():
    """Identical tables: the change is exactly 0 in every resample; the independent formula
    would still claim an interval of +-1.96 * sqrt(2) * se."""
    a = _block("r", 40, 20, 40)
    boot = survey_metric_change(a, a.copy(), "nps", n_boot=500)
    assert boot["change"] == 0 and boot["se_change"] == 0
    assert boot["ci_low"] == 0 and boot["ci_high"] == 0
    indep = survey_metric_change(a, a.copy(), "nps", method="independent")
    assert indep["se_change"] == pytest.approx(np.sqrt(2) * 100 * np.sqrt(80 / 9900))


def test_a_respondent_whose_answer_was_corrected_counts_in_both_runs():
    """The same ids with one answer corrected (3 -> 10): the change is 200 / 100 = 2 points.
    A resample that draws that respondent k times moves by exactly 2k points, k ~ Binomial(100,
    1/100): never below 0, 0 in 37% of resamples, at most 6 in 98% of them. So the interval
    is 0 to 6, where the independent formula would put it around -25 to +29."""
    a = _block("r", 40, 20, 40)
    b = a.copy()
    b.loc[b.index[-1], "nps"] = 10
    res = survey_metric_change(a, b, "nps", n_boot=2000, seed=3)
    assert res["change"] == pytest.approx(2.0)
    assert res["ci_low"] == pytest.approx(0.0) and res["ci_high"] == pytest.approx(6.0)
    indep = survey_metric_change(a, b, "nps", method="independent")
    assert indep["ci_low"] < -20 and indep["ci_high"] > 25


# ------------------------------------------------------------------------ diff_runs
@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """Run A and run B of one engagement (no engagement.yml: unweighted survey)."""
    runs = tmp_path / "eng" / "runs"
    a = _manifest(
        runs / "20260101-000000",
        inputs=[
            {"table": "cx_survey", "path": "data/survey.csv", "bytes": 10, "sha256": "a" * 64},
            {"table": "units", "path": "data/units.csv", "bytes": 5, "sha256": "u" * 64},
        ],
        seed=1,
    )
    b = _manifest(
        runs / "20260401-000000",
        inputs=[
            {"table": "cx_survey", "path": "data/survey.csv", "bytes": 12, "sha256": "b" * 64},
            {"table": "units", "path": "data/units.csv", "bytes": 5, "sha256": "u" * 64},
            {"table": "employees", "path": "data/staff.csv", "bytes": 7, "sha256": "e" * 64},
        ],
        seed=2,
    )
    sa = _block("r", 40, 20, 40)
    sb = pd.concat([sa, _survey([f"new{i}" for i in range(50)], [10] * 50)], ignore_index=True)
    save_table(a, "cx_survey", sa)
    save_table(b, "cx_survey", sb)
    emp = pd.DataFrame({"employee_id": ["E1", "E2", "E3"]})
    save_table(a, "employees", emp)
    save_table(b, "employees", emp)

    def ex(enps_est, enps_se):
        return pd.DataFrame(
            {
                "team": ["All", "All", "desk"],
                "measure": ["enps", "pride", "enps"],
                "metric": ["enps", "mean", "enps"],
                "n": [300.0, 300.0, 100.0],
                "estimate": [enps_est, 4.0, 1.0],
                "se": [enps_se, 0.05, 9.0],
                "suppressed": [False, False, False],
            }
        )

    save_table(a, "ex_by_team", ex(-10.0, 3.0))
    save_table(b, "ex_by_team", ex(-2.0, 4.0))

    def scen(rox_lo, rox, rox_hi):
        return pd.DataFrame(
            {
                "scenario": ["<b>Mobile</b> check-in", "<b>Mobile</b> check-in"],
                "quantity": ["rox", "npv"],
                "label": ["ROX", "NPV"],
                "estimate": [rox, 1e6],
                "ci_low": [rox_lo, 0.0],
                "ci_high": [rox_hi, 2e6],
                "n_customers": [500, 500],
            }
        )

    save_table(a, "value_scenarios", scen(1.0, 2.0, 3.0))
    save_table(b, "value_scenarios", scen(1.5, 2.5, 3.5))

    def drivers(ranks):
        return pd.DataFrame(
            {
                "driver": ["speed", "clean", "staff", "wifi"],
                "share": [0.4, 0.3, 0.2, 0.1],
                "ci_low": [0.35, 0.25, 0.15, 0.05],
                "ci_high": [0.45, 0.35, 0.25, 0.15],
                "rank": ranks,
                "n": [150, 150, 150, 150],
            }
        )

    save_table(a, "driver_importances", drivers([1, 2, 3, 4]))
    save_table(b, "driver_importances", drivers([1, 2, 4, 3]))
    save_table(
        a,
        "scorecard_elements",
        pd.DataFrame(
            {
                "element": ["pride", "pride"],
                "unit_id": ["H1", "H2"],
                "period": ["2025Q4", "2025Q4"],
                "index": [40.0, 60.0],
            }
        ),
    )
    save_table(
        b,
        "scorecard_elements",
        pd.DataFrame(
            {
                "element": ["pride", "pride", "pride"],
                "unit_id": ["H1", "H2", "H1"],
                "period": ["2025Q4", "2025Q4", "2026Q1"],
                "index": [40.0, 60.0, 56.0],
            }
        ),
    )
    return a, b


def test_diff_runs_figures_inputs_and_parameters(two_runs):
    a, b = two_runs
    d = diff_runs(a, b, n_boot=1000)
    f = d.figures.set_index("figure")
    nps = f.loc["survey.nps"]
    assert nps["change"] == pytest.approx(100 / 3)
    assert nps["method"].startswith("bootstrap") and nps["n_shared"] == 100
    assert nps["significant"]
    # eNPS from the tables: independent formula sqrt(3^2 + 4^2) = 5, marked conservative
    # because both runs hold the same employees
    enps = f.loc["ex.enps"]
    assert enps["change"] == pytest.approx(8.0) and enps["se_change"] == pytest.approx(5.0)
    assert enps["ci_low"] == pytest.approx(8 - Z * 5) and enps["ci_high"] == pytest.approx(
        8 + Z * 5
    )
    assert "conservative" in enps["method"] and not enps["significant"]
    assert f.loc["ex.pride", "change"] == 0
    # ROX: se read from each 95% interval (width / 3.92), so se_change = sqrt(2) * 2 / 3.92
    rox = f.loc["rox.<b>Mobile</b> check-in"]
    assert rox["change"] == pytest.approx(0.5)
    assert rox["se_change"] == pytest.approx(np.sqrt(2) * 2 / (2 * Z))
    assert rox["method"] == "independent formula"  # no customers table: nothing known shared
    # the top three drivers of either run: wifi is third in B, so all four are compared
    assert {k for k in f.index if k.startswith("driver.")} == {
        "driver.speed",
        "driver.clean",
        "driver.staff",
        "driver.wifi",
    }
    # the scorecard index has no sampling interval: the change alone, on the latest period
    pride = f.loc["scorecard.pride"]
    assert pride["a"] == 50 and pride["b"] == 56 and np.isnan(pride["ci_low"])
    assert pride["method"].startswith("no interval")
    inputs = d.inputs.set_index("path")["status"].to_dict()
    assert inputs == {
        "data/survey.csv": "changed",
        "data/units.csv": "same",
        "data/staff.csv": "added",
    }
    p = d.parameters.set_index("parameter")
    assert p.loc["seed", "changed"] and (p.loc["seed", "a"], p.loc["seed", "b"]) == (1, 2)
    assert not p.loc["steps", "changed"]
    assert d.steps["fingerprint_changed"].all()
    assert set(d.frames()) == {"figures", "inputs", "parameters", "steps"}


def test_diff_needs_two_run_folders(tmp_path):
    with pytest.raises(RoxError, match="not a run folder"):
        diff_runs(tmp_path, tmp_path)


def test_previous_run_is_the_last_complete_run_with_the_same_steps(tmp_path):
    runs = tmp_path / "eng" / "runs"
    full = _manifest(runs / "20260101-000000", steps=("00", "01", "02"))
    _manifest(runs / "20260102-000000", steps=("00",))  # fewer steps: not comparable
    _manifest(runs / "20260103-000000", status="failed", steps=("00", "01", "02"))
    (runs / "20260104-000000-interactive").mkdir()  # no manifest
    _manifest(runs / "20260105-000000", steps=("00", "01", "02"), eng="other")
    cur = _manifest(runs / "20260106-000000", steps=("00", "01", "02"))
    _manifest(runs / "20260107-000000", steps=("00", "01", "02"))  # later: never "previous"
    assert previous_run(cur) == full
    assert previous_run(full) is None
    only00 = _manifest(runs / "20260108-000000", steps=("00",))
    assert previous_run(only00) == runs / "20260107-000000"


def test_since_last_run_only_when_something_changed(two_runs, tmp_path):
    a, b = two_runs
    since = since_last_run(b)
    assert since.previous == a.name and since.html and since.record()["shown"]
    html = since.html
    assert "data/survey.csv" in html and "seed 1 &rarr; 2" in html
    assert "&lt;b&gt;Mobile&lt;/b&gt; check-in" in html and "<b>Mobile" not in html
    assert "+33.3" in html  # NPS change, in the table
    assert "0.0 (n = 100)" in html and "33.3 (n = 150)" in html  # each figure with its base
    # a re-run of the same data and parameters: the same figures, no section
    c = tmp_path / "eng" / "runs" / "20260701-000000"
    for src in (b / "manifest.json", *sorted((b / "artifacts" / "tables").glob("*.parquet"))):
        dst = c / src.relative_to(b)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    m = json.loads((c / "manifest.json").read_text())
    (c / "manifest.json").write_text(json.dumps({**m, "run_id": c.name}))
    again = since_last_run(c)
    assert again.previous == b.name and again.html is None and not again.record()["shown"]


def test_the_report_gets_since_the_last_run_after_the_summary(tmp_path):
    """render_run (the end of `rox run`): the first run has no such section; the second, on
    a refreshed survey, has it after the executive summary, with the bootstrap basis."""
    from rox_helpers.pipeline import Step, render_run

    root = make_tiny(tmp_path / "tiny")
    steps = (Step("00", "none.ipynb", "Setup"),)
    a = _manifest(root / "runs" / "20260101-000000", eng=root.name, steps=("00",))
    b = _manifest(root / "runs" / "20260401-000000", eng=root.name, steps=("00",), seed=1)
    sa = _block("r", 40, 20, 40)
    save_table(a, "cx_survey", sa)
    save_table(b, "cx_survey", pd.concat([sa, _block("new", 50, 0, 0)], ignore_index=True))
    first = render_run(a, root, steps=steps).read_text()
    assert "Since the last run" not in first
    second = render_run(b, root, steps=steps).read_text()
    assert second.index("Executive summary") < second.index('id="since-last-run"')
    assert 'href="#since-last-run"' in second
    assert "bootstrap over the 150 respondents of either run (100 in both)" in second
    rec = json.loads((b / "manifest.json").read_text())["since_last_run"]
    assert rec == {"previous": a.name, "shown": True}


def test_cli_diff_prints_the_tables(two_runs, monkeypatch):
    from rox_helpers import cli

    monkeypatch.setattr(cli.console, "width", 250)
    a, b = two_runs
    res = CliRunner().invoke(app, ["diff", str(a), str(b), "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    assert "Inputs (by sha256)" in res.output and "changed" in res.output
    assert "NPS" in res.output and "+33.3" in res.output and "bootstrap over the 150" in res.output
    assert "seed" in res.output
    bad = CliRunner().invoke(app, ["diff", str(a), str(a.parent)])
    assert bad.exit_code == 1


def test_a_table_in_an_older_layout_is_left_out_with_a_note(two_runs):
    a, b = two_runs
    save_table(a, "ex_by_team", pd.DataFrame({"team": ["All"], "estimate": [1.0]}))
    d = diff_runs(a, b, n_boot=200)
    assert any(n.startswith("ex figures of run 20260101-000000 not read") for n in d.notes)
    f = d.figures.set_index("figure")
    assert f.loc["ex.enps", "method"] == "in one run only"
    assert f.loc["survey.nps", "change"] == pytest.approx(100 / 3)
