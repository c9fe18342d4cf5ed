"""One report per unit (issue 9, batch): a unit's figures beside the chain's, from a run.

A small hand-made chain checks suppression (a hotel and a team under the anonymity floor,
and that neither can be recomputed from the chain's total); the sample engagement, run
once through the CLI with ``--per region``, checks the figures against the main run's and
against a direct computation from the run's responses.
"""

from __future__ import annotations

import html
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rox_helpers import artifacts, units
from rox_helpers.errors import RoxError

# --------------------------------------------------------------------------------------
# A small chain: six hotels in two regions; H4 has three staff (under the floor of 5); H1's
# maintenance team has two people
# --------------------------------------------------------------------------------------

XSS = "<script>alert(1)</script>"


def make_chain(root: Path) -> Path:
    """Hotels H1, H2, H5 (North) and H3, H4, H6 (South). Staff per hotel (one pulse): H1 12
    (front desk 10, maintenance 2), H2 10, H3 15, H4 3, H5 9, H6 11, all front desk but
    H1's two. Survey responses: 40, 35, 30, 6, 25 and 20; hotel H3 is named
    ``<script>alert(1)</script>``."""
    (root / "data").mkdir(parents=True)
    rng = np.random.default_rng(7)
    names = {"H1": "Harbour One", "H2": "Pine Two", "H3": XSS, "H4": "Tiny Four"}
    names |= {"H5": "Five North", "H6": "Six South"}
    regions = {"H1": "North", "H2": "North", "H3": "South", "H4": "South"}
    regions |= {"H5": "North", "H6": "South"}
    pd.DataFrame(
        [
            {"unit_id": u, "period": p, "name": names[u], "region": regions[u], "occupancy": 0.7}
            for u in names
            for p in ("2025-01", "2025-02")
        ]
    ).to_csv(root / "data" / "units.csv", index=False)
    staff = {"H1": [("front_desk", 10), ("maintenance", 2)], "H2": [("front_desk", 10)]}
    staff |= {"H3": [("front_desk", 15)], "H4": [("front_desk", 3)]}
    staff |= {"H5": [("front_desk", 9)], "H6": [("front_desk", 11)]}
    rows = []
    for u, teams in staff.items():
        for team, k in teams:
            for i in range(k):
                rows.append(
                    {
                        "employee_id": f"{u}-{team}-{i}",
                        "unit_id": u,
                        "period": "2025-02",
                        "team": team,
                        "pride": float(rng.integers(1, 8)),
                        "enps": float(rng.integers(0, 11)),
                    }
                )
    pd.DataFrame(rows).to_csv(root / "data" / "employees.csv", index=False)
    resp = []
    for u, k in {"H1": 40, "H2": 35, "H3": 30, "H4": 6, "H5": 25, "H6": 20}.items():
        for i in range(k):
            resp.append(
                {
                    "response_id": f"{u}-r{i}",
                    "unit_id": u,
                    "date": "2025-01-15" if i % 2 else "2025-02-15",
                    "nps": int(rng.integers(0, 11)),
                    "csat": int(rng.integers(1, 6)),
                }
            )
    pd.DataFrame(resp).to_csv(root / "data" / "survey.csv", index=False)
    (root / "engagement.yml").write_text(
        textwrap.dedent(
            """
            client: {name: Small Chain}
            data:
              units: {path: data/units.csv}
              employees: {path: data/employees.csv}
              cx_survey: {path: data/survey.csv}
            elements:
              pride:
                - {name: pride, table: employees, column: pride, label: Pride}
                - {name: pride_fd, table: employees, column: pride, where: {team: front_desk},
                   label: Pride (front desk)}
              results:
                - {name: nps, table: cx_survey, column: nps, aggregate: nps, label: NPS}
                - {name: occupancy, table: units, column: occupancy, label: Occupancy}
            privacy: {anonymity_floor: 5, reliability_base: 30}
            """
        ).lstrip()
    )
    return root


@pytest.fixture
def chain_run(tmp_path: Path) -> Path:
    """The small chain loaded into a run folder, as the setup step leaves it."""
    from rox_helpers.data import load_engagement

    root = make_chain(tmp_path / "chain")
    run_dir = artifacts.new_run_dir(root)
    artifacts.persist_engagement_data(run_dir, load_engagement(root))
    (run_dir / "manifest.json").write_text(json.dumps({"status": "ok", "steps": {}}))
    return run_dir


def _row(card: pd.DataFrame, measure: str, group: str) -> pd.Series:
    return card[(card["measure"] == measure) & (card["group"] == group)].iloc[0]


def test_a_unit_under_the_anonymity_floor_is_suppressed_and_not_recoverable(chain_run):
    fig = units.prepare(chain_run, "unit")
    card = fig.scorecard
    pride = card[card["measure"] == "pride"]
    h4 = _row(card, "pride", "H4")
    assert h4["suppressed"] and np.isnan(h4["estimate"]) and np.isnan(h4["n_people"])
    # the chain's total is published, so at least one more hotel is hidden with H4 ...
    chain = _row(card, "pride", units.ALL)
    assert not chain["suppressed"]
    hidden = pride[pride["suppressed"] & ~pride["is_chain"]]
    assert len(hidden) >= 2
    # ... and the chain minus the published hotels is not H4's score
    shown = pride[~pride["suppressed"] & ~pride["is_chain"]]
    left_n = chain["n_people"] - shown["n_people"].sum()
    left_total = (
        chain["estimate"] * chain["n_people"] - (shown["estimate"] * shown["n_people"]).sum()
    )
    emp = artifacts.load_table(chain_run, "employees")
    true_h4 = emp.loc[emp["unit_id"] == "H4", "pride"]
    assert left_n != len(true_h4)
    assert not np.isclose(left_total / left_n, true_h4.mean())
    # the report view says "suppressed", never a number or a difference or a rank
    view = units.unit_view(fig, "H4")
    shown_row = units.scorecard_display(view).set_index("Measure").loc["Pride"]
    assert shown_row[view.label] == units.SUPPRESSED
    assert shown_row["Base"] == "" and shown_row["Difference (95% CI)"] == ""
    assert shown_row["Rank"] == ""
    # H4's six survey responses reach the floor: its NPS is shown, flagged as indicative
    # (below the reliability base of 30)
    nps = _row(card, "nps", "H4")
    assert not nps["suppressed"] and not nps["reliable"]


def test_a_hidden_hotel_cannot_be_recovered_from_its_regions_report(chain_run):
    """The reports per region show South's pride; the reports per hotel must then hide a
    second South hotel with H4 (the smallest hotel overall, H5, is in the North)."""
    per_unit = units.prepare(chain_run, "unit").scorecard
    per_region = units.prepare(chain_run, "region").scorecard
    south = _row(per_region, "pride", "South")
    assert not south["suppressed"]
    region_of = {"H1": "North", "H2": "North", "H5": "North"}
    region_of |= {"H3": "South", "H4": "South", "H6": "South"}
    pride = per_unit[(per_unit["measure"] == "pride") & ~per_unit["is_chain"]]
    for region in ("North", "South"):
        cells = pride[pride["group"].map(region_of) == region]
        assert cells["suppressed"].sum() in (0, 2, 3), region
    shown = pride[~pride["suppressed"] & (pride["group"].map(region_of) == "South")]
    left_n = south["n_people"] - shown["n_people"].sum()
    assert left_n > 3  # more than H4's three people are left: H4 is not isolated
    # the same holds for the subset measure (front desk) and for the teams
    fd = per_unit[(per_unit["measure"] == "pride_fd") & ~per_unit["is_chain"]]
    assert fd.loc[fd["group"].isin(["H3", "H4", "H6"]), "suppressed"].sum() >= 2


def test_a_team_under_the_floor_is_suppressed_with_its_complements(chain_run):
    fig = units.prepare(chain_run, "unit")
    t = fig.teams[fig.teams["measure"] == "Pride"]
    h1 = t[t["group"] == "H1"].set_index("team")
    assert h1.loc["maintenance", "suppressed"]
    # H1 shows its pride overall: its front desk alone would give the maintenance team away
    assert not _row(fig.scorecard, "pride", "H1")["suppressed"]
    assert h1.loc["front_desk", "suppressed"]
    # H4's front desk (3 people) is hidden; across hotels H1's front desk hides with it
    assert t[(t["group"] == "H4") & (t["team"] == "front_desk")]["suppressed"].all()
    shown = units.teams_display(units.unit_view(fig, "H1"))
    assert set(shown.loc[shown["Measure"] == "Pride", "Estimate (95% CI)"]) == {units.SUPPRESSED}


def test_a_subset_measure_is_hidden_when_the_rest_of_the_unit_is_under_the_floor(chain_run):
    """H1's front desk (10) and its whole staff (12) are both over the floor, but the two
    figures together give the other two people's pride away."""
    fig = units.prepare(chain_run, "unit")
    assert not _row(fig.scorecard, "pride", "H1")["suppressed"]
    assert _row(fig.scorecard, "pride_fd", "H1")["suppressed"]
    # H2 and H3 are front desk only: nothing to subtract, shown
    assert not _row(fig.scorecard, "pride_fd", "H2")["suppressed"]
    fd = fig.scorecard[(fig.scorecard["measure"] == "pride_fd") & ~fig.scorecard["is_chain"]]
    assert fd["suppressed"].sum() >= 2  # the chain's front desk does not give H1's back
    assert fd.loc[~fd["suppressed"], "rank"].notna().all()
    assert fd.loc[fd["suppressed"], "rank"].isna().all()


def test_unit_nps_and_base_equal_a_direct_computation(chain_run):
    fig = units.prepare(chain_run, "unit")
    survey = artifacts.load_table(chain_run, "cx_survey")
    for unit in ("H1", "H2", "H3"):
        s = survey.loc[survey["unit_id"] == unit, "nps"].dropna()
        direct = 100 * ((s >= 9).mean() - (s <= 6).mean())
        row = _row(fig.scorecard, "nps", unit)
        assert row["n"] == len(s)
        assert row["estimate"] == pytest.approx(direct)
        assert row["ci_low"] < row["estimate"] < row["ci_high"]
    chain = survey["nps"].dropna()
    row = _row(fig.scorecard, "nps", units.ALL)
    assert row["n"] == len(chain)
    assert row["estimate"] == pytest.approx(100 * ((chain >= 9).mean() - (chain <= 6).mean()))
    # the difference to the chain is the difference of the two, its interval around it
    h1 = _row(fig.scorecard, "nps", "H1")
    assert h1["difference"] == pytest.approx(h1["estimate"] - row["estimate"])
    assert h1["diff_ci_low"] < h1["difference"] < h1["diff_ci_high"]


def test_per_region_groups_hotels_and_an_unknown_column_is_named(chain_run):
    fig = units.prepare(chain_run, "region")
    assert list(fig.groups["value"]) == ["North", "South"]
    assert list(fig.groups["n_units"]) == [3, 3]
    survey = artifacts.load_table(chain_run, "cx_survey")
    north = survey.loc[survey["unit_id"].isin(["H1", "H2", "H5"]), "nps"].dropna()
    assert _row(fig.scorecard, "nps", "North")["n"] == len(north)
    with pytest.raises(RoxError) as err:
        units.prepare(chain_run, "brand")
    assert "brand" in err.value.message
    assert "region" in err.value.details()["fix"] and "unit" in err.value.details()["fix"]
    with pytest.raises(RoxError, match="numbers or dates"):
        units.prepare(chain_run, "occupancy")


def test_check_per_reads_the_units_file_before_a_run(tmp_path):
    root = make_chain(tmp_path / "chain")
    units.check_per(root, "region")
    units.check_per(root, "unit")
    with pytest.raises(RoxError, match="no column 'brand'"):
        units.check_per(root, "brand")
    with pytest.raises(RoxError, match="numbers or dates"):
        units.check_per(root, "occupancy")  # read as text from the CSV, still a number


def test_reports_per_unit_escape_names_continue_past_a_failure_and_index_them(chain_run):
    """The papermill path on the small chain: the real unit notebook for each hotel, except
    H2, whose run fails on purpose (a notebook that raises for it)."""
    import nbformat

    from rox_helpers.unit_reports import render_per

    nb = nbformat.read(units_notebook(), as_version=4)
    boom = nbformat.v4.new_code_cell('if VALUE == "H2":\n    raise RuntimeError("planted")')
    nb.cells.insert(3, boom)
    path = chain_run / "unit_report_test.ipynb"
    nbformat.write(nb, path)

    res = render_per(chain_run, "unit", jobs=2, notebook=path)
    status = {r.value: r.status for r in res.reports}
    assert status == {f"H{i}": "failed" if i == 2 else "ok" for i in range(1, 7)}
    failed = next(r for r in res.reports if r.value == "H2")
    assert "planted" in failed.error
    # the name is text, never markup, in the report and in the index
    page = (res.folder / "h3" / "report.html").read_text()
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "DRAFT" in page
    index = (res.folder / "index.html").read_text()
    assert XSS not in index and "&lt;script&gt;" in index
    assert "planted" in index
    rows = pd.read_csv(res.folder / "index.csv")
    assert set(rows.loc[rows["status"] == "ok", "unit_id"]) == {"H1", "H3", "H4", "H5", "H6"}
    # every finding of a unit's report states its kind of evidence, base and interval
    from rox_helpers.artifacts import evidence_line, evidence_problems

    for slug in ("h1", "h3", "h4", "h5", "h6"):
        fs = json.loads((res.folder / slug / "findings.json").read_text())["findings"]
        assert fs and {f["id"]: evidence_problems(f) for f in fs} == {f["id"]: [] for f in fs}
        page = html.unescape((res.folder / slug / "report.html").read_text())
        assert all(evidence_line(f) in page for f in fs), slug
    # H4's pride is not in its report: the cell reads "suppressed"
    h4 = (res.folder / "h4" / "report.html").read_text()
    assert units.SUPPRESSED in h4
    manifest = json.loads((chain_run / "manifest.json").read_text())
    rec = manifest["per"]["unit"]
    assert rec["reports"] == 6 and rec["failed"] == 1
    assert rec["units"]["H1"]["report"] == "per_unit/h1/report.html"
    assert res.folder == chain_run / "per_unit"


def units_notebook() -> Path:
    return Path(__file__).resolve().parent.parent / "notebooks" / "unit_report.ipynb"


# --------------------------------------------------------------------------------------
# The sample engagement, end to end through the CLI (once)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_per_region(sample):
    """``rox run <sample> --only 01 --only 02 --per region`` (the steps whose tables the unit
    reports read; the chain's funnel is rebuilt from the log without step 05), once."""
    from rox_helpers.cli import app

    res = CliRunner().invoke(
        app, ["run", str(sample), "--only", "01", "--only", "02", "--per", "region"]
    )
    run_dir = Path(res.output.split("Run folder:", 1)[1].split()[0])
    return res, run_dir


@pytest.mark.slow
def test_cli_run_per_region_end_to_end(sample_per_region):
    res, run_dir = sample_per_region
    assert res.exit_code == 0, res.output
    regions = sorted(artifacts.load_table(run_dir, "units")["region"].unique())
    index = pd.read_csv(run_dir / "per_region" / "index.csv")
    assert sorted(index["region"]) == regions
    assert set(index["status"]) == {"ok"}
    for rel in index["report"]:
        page = (run_dir / "per_region" / rel).read_text()
        assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page), "network reference"
        assert "<script src" not in page and "import " not in page
        assert "data:image/png;base64" in page
        assert "DRAFT" in page
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["per"]["region"]["reports"] == len(regions)
    assert "Reports per region:" in res.output and "index.html" in res.output


@pytest.mark.slow
def test_unit_findings_name_charts_of_their_own_report(sample_per_region):
    """Each region's findings name their charts by the headings of the unit notebook; a
    renamed heading breaks here, not silently. Each also states its kind of evidence, base
    and interval."""
    from rox_helpers import deliverables as dl
    from rox_helpers.artifacts import evidence_problems

    _, run_dir = sample_per_region
    named = 0
    for folder in sorted((run_dir / "per_region").iterdir()):
        if not (folder / "findings.json").is_file():
            continue
        charts = dl.notebook_charts(folder / "unit_report.ipynb", "unit")
        for f in json.loads((folder / "findings.json").read_text())["findings"]:
            # and each states its kind of evidence, base and interval (or why none applies)
            assert evidence_problems(f) == [], (folder.name, f["headline"])
            if f.get("chart"):
                named += 1
                assert dl.chart_for(f, charts) is not None, (folder.name, f["chart"])
    assert named >= 4  # the NPS headline (the trend) of each region at least


@pytest.mark.slow
def test_cli_per_unknown_column_fails_before_the_run(sample):
    from rox_helpers.cli import app

    res = CliRunner().invoke(app, ["run", str(sample), "--per", "brand"])
    assert res.exit_code == 1
    assert "brand" in res.output and "region" in res.output
    assert "Run folder" not in res.output


@pytest.mark.slow
def test_chain_figures_in_a_unit_report_equal_the_main_runs(sample_per_region):
    _, run_dir = sample_per_region
    fig = units.figures(run_dir, "region")
    card = fig.scorecard
    chain_nps = _row(card, "nps", units.ALL)
    # the measurement step's figures: NPS by quarter's total row and its headline finding
    by_q = artifacts.load_table(run_dir, "nps_by_quarter")
    total = by_q[by_q["quarter"] == "All"].iloc[0]
    assert chain_nps["n"] == total["n"]
    assert chain_nps["estimate"] == pytest.approx(total["estimate"])
    headline = artifacts.load_findings(run_dir, "01")["01"]["findings"][0]["headline"]
    lo, hi = f"{chain_nps['ci_low']:.1f}", f"{chain_nps['ci_high']:.1f}"
    assert f"NPS is {chain_nps['estimate']:.1f} (95% CI {lo} to {hi})" == headline
    # EX: pride in the latest pulse, counted on people, as the measurement step's table
    ex = artifacts.load_table(run_dir, "ex_by_team")
    ex_total = ex[(ex["measure"] == "pride") & (ex["team"] == "All")].iloc[0]
    chain_pride = _row(card, "pride", units.ALL)
    assert chain_pride["n_people"] == ex_total["n_people"]
    assert chain_pride["estimate"] == pytest.approx(ex_total["estimate"])
    # and every region's report shows those chain figures
    for v in fig.groups["value"]:
        view = units.unit_view(fig, v)
        row = view.scorecard.set_index("measure").loc["nps"]
        assert row["chain_estimate"] == pytest.approx(total["estimate"])


@pytest.mark.slow
def test_sample_unit_nps_equals_a_direct_computation_from_the_responses(sample_per_region):
    from rox_helpers.config import load_engagement_config
    from rox_helpers.weights import survey_weights

    _, run_dir = sample_per_region
    fig = units.prepare(run_dir, "unit")
    survey = artifacts.load_table(run_dir, "cx_survey")
    cfg = load_engagement_config(run_dir.parent.parent)
    w = cfg.measurement.weighting
    weighted, _ = survey_weights(
        survey,
        artifacts.load_table(run_dir, "customers"),
        use_client_weight=w.use_client_weight,
        rake_to_customers=w.rake_to_customers,
        trim=w.trim,
    )
    unit = fig.groups["value"].iloc[3]
    s = weighted[(weighted["unit_id"] == unit) & weighted["nps"].notna()]
    y = np.where(s["nps"] >= 9, 1.0, np.where(s["nps"] <= 6, -1.0, 0.0))
    direct = 100 * np.average(y, weights=s["weight_final"])
    row = _row(fig.scorecard, "nps", unit)
    assert row["n"] == len(s)
    assert row["estimate"] == pytest.approx(direct)
    # the league table of the measurement step has the same raw score and base
    league = artifacts.load_table(run_dir, "nps_league").set_index("unit_id")
    assert row["estimate"] == pytest.approx(league.loc[unit, "estimate"])
    assert row["n"] == league.loc[unit, "n"]
