"""Review and sign-off (issue 9): review.yml edits reach the report, DRAFT until approved."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from conftest import make_tiny
from rox_helpers.cli import app
from rox_helpers.config import load_engagement_config
from rox_helpers.errors import ConfigError, RoxError
from rox_helpers.pipeline import render_run, run_engagement
from rox_helpers.review import apply_review, load_review, sign_off

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = make_tiny(tmp_path_factory.mktemp("review") / "tiny")
    r = run_engagement(root, only=["00"], jobs=1)
    assert r.status == "ok"
    return r


def _findings(run) -> list[dict]:
    return json.loads((run.run_dir / "artifacts" / "findings" / "00.json").read_text())["findings"]


def _review(root, text: str) -> None:
    (root / "review.yml").write_text(textwrap.dedent(text))


def test_a_fresh_report_is_a_draft_with_a_summary_and_finding_ids(run):
    html = run.report.read_text()
    assert "DRAFT - not yet approved" in html and 'class="rox-watermark"' in html
    assert "Executive summary" in html
    first = _findings(run)[0]
    assert html.count('<span class="rox-fid">00.1</span>') == 2  # summary and section
    assert first["headline"].split(":")[0] in html


def test_review_edits_hides_and_comments_reach_the_report(run):
    root = run.run_dir.parent.parent
    fs = _findings(run)
    assert len(fs) >= 2
    _review(
        root,
        f"""
        findings:
          "00.1":
            headline: "Rewritten by the consultant <b>bold</b>"
            comment: "Checked with the client's data team."
            was: {json.dumps(fs[0]["headline"])}
          "00.2":
            hide: true
            reason: "Not for this audience."
          "09.9":
            headline: "nothing to edit"
        """,
    )
    try:
        html = render_run(run.run_dir).read_text()
        assert "Rewritten by the consultant &lt;b&gt;bold&lt;/b&gt;" in html  # escaped
        assert fs[0]["headline"] not in html
        assert fs[1]["headline"] not in html  # hidden
        assert "Checked with the client" in html and 'class="rox-edited"' in html
        assert "1 finding(s) hidden by the reviewer" in html
        log = json.loads(run.manifest.read_text())["review"]
        assert log["edited"] == ["00.1"]
        assert log["hidden"] == [{"id": "00.2", "reason": "Not for this audience."}]
        assert [n["id"] for n in log["not_applied"]] == ["09.9"]
        res = runner.invoke(app, ["render", str(run.run_dir)])
        assert res.exit_code == 0 and "Not applied" in res.output and "09.9" in res.output
    finally:
        (root / "review.yml").unlink()
        render_run(run.run_dir)


def test_an_edit_written_for_another_text_is_not_applied(run):
    f = _findings(run)
    payload = {"00": {"findings": f}}
    from rox_helpers.review import Review

    review = Review.model_validate(
        {"findings": {"00.1": {"headline": "New", "was": "an older machine headline"}}}
    )
    out = apply_review(payload, review)
    assert out.by_step["00"][0]["headline"] == f[0]["headline"]
    assert out.not_applied[0]["id"] == "00.1" and "changed" in out.not_applied[0]["why"]


def test_bad_review_file_names_key_and_fix(tmp_path):
    _review(tmp_path, 'findings:\n  "03.1":\n    hide: true\n')
    with pytest.raises(ConfigError) as exc:
        load_review(tmp_path)
    assert "reason" in str(exc.value) and "03.1" in str(exc.value)
    _review(tmp_path, 'findings:\n  "03.1":\n    headlin: "typo"\n')
    with pytest.raises(ConfigError, match="headlin"):
        load_review(tmp_path)


def test_segment_names_from_review_reach_the_config(tmp_path):
    root = make_tiny(tmp_path / "tiny")
    _review(root, "segments:\n  1: Business regulars\n")
    assert load_engagement_config(root).segmentation.names[1] == "Business regulars"


def test_signoff_records_approval_and_any_change_makes_a_draft_again(run):
    root = run.run_dir.parent.parent
    with pytest.raises(RoxError, match="name"):
        sign_off(run.run_dir, root, " ")
    res = runner.invoke(app, ["signoff", str(run.run_dir), "--by", "Jane Partner"])
    assert res.exit_code == 0, res.output
    manifest = json.loads(run.manifest.read_text())
    so = manifest["signoff"]
    assert so["by"] == "Jane Partner" and len(so["digest"]) == 64
    html = run.report.read_text()
    assert "Approved by Jane Partner" in html and 'class="rox-watermark"' not in html
    # a review change after sign-off: draft again, naming the earlier approval
    _review(root, 'findings:\n  "00.1":\n    comment: "late change"\n')
    try:
        html = render_run(run.run_dir).read_text()
        assert "DRAFT - changed after approval by Jane Partner" in html
        assert 'class="rox-watermark"' in html
    finally:
        (root / "review.yml").unlink()
    assert "Approved by Jane Partner" in render_run(run.run_dir).read_text()


def test_signoff_refuses_a_failed_run(tmp_path):
    from conftest import write_notebook
    from rox_helpers.pipeline import Step

    root = make_tiny(tmp_path / "tiny")
    write_notebook(tmp_path / "x.ipynb", "raise ValueError('no')")
    r = run_engagement(root, notebooks_dir=tmp_path, steps=(Step("X", "x.ipynb", "X"),))
    with pytest.raises(RoxError, match="did not finish cleanly"):
        sign_off(r.run_dir, root, "Jane")


def test_unit_report_figures_are_part_of_what_is_approved(run):
    """Unit reports made after a sign-off were not read by the approver: the run (and so
    every report marked from it) is a draft again; their re-rendered HTML is not part of it."""
    from rox_helpers.review import approval_digest

    root = run.run_dir.parent.parent
    before = approval_digest(run.run_dir, root)
    (run.run_dir / "per_unit" / "H1").mkdir(parents=True)
    (run.run_dir / "per_unit" / "H1" / "report.html").write_text("<p>re-rendered</p>")
    assert approval_digest(run.run_dir, root) == before
    figures = run.run_dir / "per_unit" / "_figures"
    figures.mkdir()
    try:
        (figures / "measures.parquet").write_bytes(b"unit figures")
        assert approval_digest(run.run_dir, root) != before
    finally:
        import shutil

        shutil.rmtree(run.run_dir / "per_unit")
    assert approval_digest(run.run_dir, root) == before
