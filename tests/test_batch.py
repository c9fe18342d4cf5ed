"""`rox batch`: many engagements, each in its own process and runs folder; failures recorded,
the others still run; a summary with no figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_tiny
from rox_helpers.batch import SUMMARY_COLUMNS, find_engagements, run_batch
from rox_helpers.cli import app


@pytest.fixture(scope="module")
def clients(tmp_path_factory) -> Path:
    """Four engagements in one folder: two good ones, one whose engagement.yml does not load,
    one whose survey file is missing (its setup notebook fails)."""
    root = tmp_path_factory.mktemp("batch") / "engagements"
    make_tiny(root / "alpha")
    make_tiny(root / "bravo")
    bad = make_tiny(root / "charlie-bad-config")
    cfg = bad / "engagement.yml"
    cfg.write_text(cfg.read_text().replace("privacy:", "privcy:"))
    gone = make_tiny(root / "delta-missing-data")
    (gone / "data" / "survey.csv").unlink()
    (root / "notes.txt").write_text("not an engagement")
    return root


@pytest.fixture(scope="module")
def batch(clients, tmp_path_factory):
    """`rox batch engagements/*` as the shell expands it (notes.txt included), two at a time,
    the setup step only."""
    from rox_helpers import cli

    out = tmp_path_factory.mktemp("out") / "batch"
    old = cli.console.width
    cli.console.width = 250
    try:
        options = ["--jobs", "2", "--step-jobs", "1", "--only", "00", "--out", str(out)]
        args = ["batch", *[str(p) for p in sorted(clients.iterdir())], *options]
        res = CliRunner().invoke(app, args)
    finally:
        cli.console.width = old
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        rows = {r["engagement"]: r for r in csv.DictReader(fh)}
    return res, rows, out / "summary.csv"


def test_find_engagements_expands_folders_and_skips_what_is_not_one(clients, tmp_path):
    found, skipped = find_engagements(
        [clients / "bravo", clients, clients / "notes.txt", tmp_path, tmp_path / "nowhere"]
    )
    assert [p.name for p in found] == [
        "bravo",
        "alpha",
        "charlie-bad-config",
        "delta-missing-data",
        "nowhere",  # kept: its run reports that it does not exist
    ]
    assert [p for p, _ in skipped] == [str(clients / "notes.txt"), str(tmp_path)]


def test_batch_runs_every_engagement_and_records_each_failure(batch, clients):
    res, by, _ = batch
    assert res.exit_code == 1, res.output  # one failed: non-zero exit, the others still ran
    assert list(by) == ["alpha", "bravo", "charlie-bad-config", "delta-missing-data"]
    for name in ("alpha", "bravo"):
        e = by[name]
        assert e["status"] == "ok", e["error"]
        # each client's outputs stay in its own runs folder
        run = Path(e["run_dir"])
        assert run.parent == clients / name / "runs"
        assert Path(e["report"]) == run / "report.html" and run.joinpath("report.html").is_file()
        m = json.loads((run / "manifest.json").read_text())
        assert m["engagement"] == name and m["parameters"]["steps"] == ["00"]
        assert m["jobs"] == 1 and m["status"] == "ok"
        assert float(e["seconds"]) > 1
    bad = by["charlie-bad-config"]
    assert bad["status"] == "error" and bad["report"] == "" and bad["run_dir"] == ""
    assert "unknown key 'privcy'" in bad["error"] and "did you mean 'privacy'" in bad["error"]
    assert not (clients / "charlie-bad-config" / "runs").exists()
    gone = by["delta-missing-data"]
    assert gone["status"] == "failed" and "00_engagement_setup.ipynb" in gone["error"]
    assert Path(gone["report"]).is_file()  # rendered, with the failed section marked
    # the console: progress, what was skipped, the summary table and where it is
    out = res.output
    assert out.count(" started") == 4 and "Skipped" in out and "notes.txt" in out
    assert "Batch summary" in out and "Summary: " in out


def test_summary_csv_has_status_and_paths_and_no_figures(batch):
    _, rows, summary = batch
    with open(summary, newline="", encoding="utf-8") as fh:
        assert tuple(next(csv.reader(fh))) == SUMMARY_COLUMNS
    assert {k: r["status"] for k, r in rows.items()} == {
        "alpha": "ok",
        "bravo": "ok",
        "charlie-bad-config": "error",
        "delta-missing-data": "failed",
    }
    text = summary.read_text()
    # nothing about any client's data: no client name, no figure, no respondent
    for leak in ("Tiny Hotels", "nps", "Renée", "Lovely stay"):
        assert leak not in text


def test_run_batch_without_engagements_writes_an_empty_summary(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    res = run_batch([tmp_path / "notes.txt"], out_dir=tmp_path / "b")
    assert res.entries == [] and res.skipped == [(str(tmp_path / "notes.txt"), res.skipped[0][1])]
    assert (tmp_path / "b" / "summary.csv").read_text().strip() == ",".join(SUMMARY_COLUMNS)
