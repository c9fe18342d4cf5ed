"""`rox run` and `rox validate` end to end on a small engagement (fast), plus failure paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_tiny, write_notebook
from rox_helpers.cli import app
from rox_helpers.errors import NotebookRunError
from rox_helpers.pipeline import Step, raise_for_failures, run_engagement

runner = CliRunner()


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """Rich wraps at the terminal width; a wide console keeps messages on one line."""
    from rox_helpers import cli

    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(cli.err_console, "width", 250)


RAW_PERSONAL = ("Renée", "Dubois", "renee@example.com", "John Smith", "07700 900123", "Müller")


def _all_text(folder: Path) -> str:
    chunks = []
    for p in folder.rglob("*"):
        if p.is_file():
            chunks.append(p.read_bytes().decode("utf-8", errors="ignore"))
            if p.suffix == ".parquet":
                import pandas as pd

                chunks.append(pd.read_parquet(p).to_csv())
    return "\n".join(chunks)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run shared by the read-only tests (each notebook run costs a kernel start)."""
    return run_engagement(make_tiny(tmp_path_factory.mktemp("run") / "tiny"))


def test_run_writes_report_manifest_artifacts_quarantine(tiny_run):
    r = tiny_run
    assert r.status == "ok" and not r.failures
    assert r.run_dir.parent.name == "runs"
    manifest = json.loads(r.manifest.read_text())
    assert manifest["status"] == "ok"
    assert manifest["steps"]["00"]["status"] == "ok"
    inputs = {i["path"]: i for i in manifest["inputs"]}
    assert re.fullmatch(r"[0-9a-f]{64}", inputs["data/customers.csv"]["sha256"])
    assert "engagement.yml" in inputs
    assert manifest["versions"]["pandas"].startswith("3.")
    assert (r.run_dir / "quarantine" / "customers.csv").is_file()
    assert (r.run_dir / "artifacts" / "findings" / "00.json").is_file()
    assert (r.run_dir / "notebooks" / "00_engagement_setup.ipynb").is_file()
    findings = json.loads((r.run_dir / "artifacts" / "findings" / "00.json").read_text())
    assert any("quarantined" in f["headline"] for f in findings["findings"])


def test_report_is_self_contained_and_hides_code(tiny_run):
    html = tiny_run.report.read_text()
    assert "Tiny Hotels" in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html), "network reference in report"
    assert "<script src" not in html
    for leak in ("load_engagement(", "import ", "Traceback", "ENGAGEMENT ="):
        assert leak not in html, leak
    assert "data:image/png;base64" in html  # charts embedded


def test_no_raw_personal_data_anywhere_in_the_run(tiny_run):
    text = _all_text(tiny_run.run_dir)
    for raw in RAW_PERSONAL:
        assert raw not in text, raw


def test_each_run_gets_a_new_folder(tiny_run):
    a = tiny_run
    b = run_engagement(a.run_dir.parent.parent)
    assert a.run_dir != b.run_dir and a.report.is_file() and b.report.is_file()
    # the findings are the same for the same inputs
    fa = (a.run_dir / "artifacts" / "findings" / "00.json").read_text()
    fb = (b.run_dir / "artifacts" / "findings" / "00.json").read_text()
    assert fa == fb


def test_failing_notebook_names_notebook_and_cell_and_keeps_it(tiny, tmp_path):
    write_notebook(tmp_path / "99_broken.ipynb", "x = 1", "raise ValueError('planted failure')")
    r = run_engagement(
        tiny, notebooks_dir=tmp_path, steps=(Step("99", "99_broken.ipynb", "Broken step"),)
    )
    assert r.status == "failed"
    f = r.failures[0]
    assert f.notebook == "99_broken.ipynb" and f.ename == "ValueError"
    assert "planted failure" in f.evalue
    assert f.cell_index is not None
    assert Path(f.output_path).is_file()  # kept for debugging
    html = r.report.read_text()
    assert "could not be produced" in html and "planted failure" in html
    assert json.loads(r.manifest.read_text())["status"] == "failed"
    with pytest.raises(NotebookRunError) as exc:  # what `rox run` turns into exit code 1
        raise_for_failures(r)
    assert "99_broken.ipynb" in exc.value.message and f"cell {f.cell_index}" in exc.value.message
    assert exc.value.file == f.output_path


def test_cli_validate_ok_and_exit_1_on_hard_errors(tiny):
    ok = runner.invoke(app, ["validate", str(tiny)])
    assert ok.exit_code == 0, ok.output
    assert "quarantined" in ok.output and "customers" in ok.output
    (tiny / "data" / "units.csv").unlink()
    bad = runner.invoke(app, ["validate", str(tiny)])
    assert bad.exit_code == 1
    assert "units.csv" in bad.output and "not found" in bad.output
    assert "Traceback" not in bad.output


def test_cli_config_error_is_a_clear_message(tiny):
    cfg = tiny / "engagement.yml"
    cfg.write_text(cfg.read_text().replace("privacy:", "privcy:"))
    res = runner.invoke(app, ["validate", str(tiny)])
    assert res.exit_code == 1
    assert "did you mean 'privacy'" in res.output and "Traceback" not in res.output


def _public_survey_export(folder: Path) -> None:
    """A survey export as downloaded from a public portal: long questions as headers, an
    unnamed index column, blank cells, a "Don't know" code, US dates, a stray totals row."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(11)
    n = 120
    df = pd.DataFrame(
        {
            "Respondent ID": [f"{1000 + i}" for i in range(n)],
            "Date submitted": pd.date_range("2026-01-03", periods=n, freq="D").strftime("%m/%d/%Y"),
            "On a scale from 0 to 10, how likely is it that you would recommend Contoso "
            "Resorts to a friend or colleague?": rng.integers(0, 11, n).astype(float),
            "Overall, how satisfied were you with your most recent stay? (1 = very "
            "dissatisfied, 5 = very satisfied)": rng.integers(1, 6, n).astype(float),
            "Please rate: cleanliness of the room": rng.integers(1, 11, n).astype(float),
            "Please rate: speed of check-in": rng.integers(1, 11, n).astype(float),
            "Is there anything else you would like to tell us?": ["Great pool"] * n,
        }
    )
    df.iloc[::7, 2] = np.nan  # blank cells
    df.iloc[::11, 4] = 99  # "don't know"
    df.iloc[3, 6] = "Ask for Maria at maria.garcia@contoso.example"
    df.to_csv(folder / "survey_results_2026.csv")  # writes an unnamed index column


def test_cli_new_from_data_then_validate_on_unseen_files(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    _public_survey_export(drop)
    (drop / "notes.txt").write_text("not a data file\n")
    res = runner.invoke(
        app, ["new", "contoso-2026", "--from-data", str(drop), "--root", str(tmp_path / "eng")]
    )
    assert res.exit_code == 0, res.output
    assert "Proposed column mapping" in res.output and "nps" in res.output
    cfg = (tmp_path / "eng" / "contoso-2026" / "engagement.yml").read_text()
    assert "# REVIEW" in cfg
    val = runner.invoke(app, ["validate", str(tmp_path / "eng" / "contoso-2026")])
    assert val.exception is None or isinstance(val.exception, SystemExit), val.exception
    assert val.exit_code in (0, 1)
    assert "Traceback" not in val.output
    assert "cx_survey" in val.output
    assert "survey_results_2026.csv" in val.output
