"""What every figure rests on (issue 9): the kind of evidence, the base and the interval of a
finding, validated, kept through save/load and review, rendered escaped in the report and
on the deck. The test over every finding of a real run is in test_sample.py."""

from __future__ import annotations

import json

import pytest

from rox_helpers.artifacts import (
    EVIDENCE_KINDS,
    Finding,
    evidence_line,
    evidence_problems,
    interval_text,
    load_findings,
    save_findings,
)
from rox_helpers.report import (
    Section,
    _summary_cells,
    evidence_html,
    findings_markdown,
    methodology_markdown,
    reviewed_findings_markdown,
)
from rox_helpers.review import Review, apply_review

HOSTILE = "<script>alert(1)</script>"


def _nps(**kw) -> Finding:
    base = {
        "step": "01",
        "headline": "NPS is -4.2 (95% CI -6.0 to -2.5)",
        "evidence": ["base 14,955 responses"],
        "so_what": "Read later comparisons against this interval.",
        "confidence": "high",
        "evidence_kind": "survey_estimate",
        "base": "14,955 responses",
        "interval": "95% CI -6.0 to -2.5",
    }
    return Finding(**{**base, **kw})


def test_the_vocabulary_says_what_each_kind_means():
    assert {"count", "survey_estimate", "association", "within_unit", "adjusted_comparison",
            "prediction", "scenario"} <= set(EVIDENCE_KINDS)  # fmt: skip
    for k in EVIDENCE_KINDS.values():
        assert k.label and k.meaning.endswith(".") and len(k.meaning) < 220
    # what must carry an interval, and what may say why it has none
    assert EVIDENCE_KINDS["survey_estimate"].needs_interval
    assert EVIDENCE_KINDS["association"].needs_interval
    assert not EVIDENCE_KINDS["count"].needs_interval


def test_a_kind_outside_the_vocabulary_is_refused_like_a_confidence():
    with pytest.raises(ValueError, match="evidence_kind must be one of"):
        _nps(evidence_kind="gut feeling")
    with pytest.raises(ValueError, match="confidence"):
        _nps(confidence="certain")
    # the fields default to empty: callers (and old findings) without them still work
    old = Finding("01", "old style", ["n = 10"], "x", "high")
    assert (old.evidence_kind, old.base, old.interval, old.no_interval) == ("", "", "", "")


def test_evidence_problems_name_what_is_missing():
    assert evidence_problems(_nps()) == []
    assert (
        evidence_problems(
            _nps(evidence_kind="count", interval="", no_interval="exact count of every row")
        )
        == []
    )
    # a survey estimate without an interval is not excused by a reason
    p = evidence_problems(_nps(interval="", no_interval="not computed"))
    assert p == ["kind 'survey_estimate' (Survey estimate) needs a numeric interval"]
    assert "states no number" in " ".join(evidence_problems(_nps(base="all of them")))
    assert "states no number" in " ".join(evidence_problems(_nps(interval="wide")))
    assert "neither an interval nor the reason" in " ".join(
        evidence_problems(_nps(evidence_kind="count", interval=""))
    )
    assert "not one of" in evidence_problems(Finding("01", "old"))[0]
    # dicts (as loaded from a run) are checked the same way
    assert evidence_problems({"evidence_kind": "association", "base": "40 hotels"}) == [
        "neither an interval nor the reason there is none",
        "kind 'association' (Association) needs a numeric interval",
    ]


def test_interval_text_states_an_interval_or_nothing():
    assert interval_text(-6.04, -2.46, "{:+.1f}") == "95% CI -6.0 to -2.5"
    assert interval_text(0.46, 0.49, "{:.2f}", of="hazard ratio") == (
        "95% CI 0.46 to 0.49 (hazard ratio)"
    )
    assert interval_text(1.19, 3.25, "{:.2f}", label="95% interval") == "95% interval 1.19 to 3.25"
    assert interval_text(float("nan"), 1.0) == "" and interval_text(None, 1.0) == ""
    assert interval_text(0.1, 0.2, lambda v: f"{v:.0%}") == "95% CI 10% to 20%"


def test_evidence_line_reads_kind_base_and_interval():
    assert evidence_line(_nps()) == (
        "Survey estimate · base 14,955 responses · 95% CI -6.0 to -2.5"
    )
    line = evidence_line(
        {"evidence_kind": "count", "base": "425,107 rows read", "no_interval": "exact count"}
    )
    assert line == "Exact count · base 425,107 rows read · no interval: exact count"
    assert evidence_line(Finding("01", "old")) == ""


def test_fields_survive_save_and_load_and_old_findings_still_load(tmp_path):
    save_findings(tmp_path, "01", [Finding("01", "old style"), _nps()])
    rows = load_findings(tmp_path, "01")["01"]["findings"]
    # findings without the fields are written as before they existed
    assert set(rows[0]) == {"step", "headline", "evidence", "so_what", "confidence"}
    back = [Finding(**r) for r in rows]
    assert back[1] == _nps()
    # a findings file of an old run, without the fields, still loads and renders
    (tmp_path / "artifacts" / "findings" / "00.json").write_text(
        json.dumps({"step": "00", "findings": [{"step": "00", "headline": "h", "evidence": [],
                                               "so_what": "", "confidence": "high"}]})
    )  # fmt: skip
    old = Finding(**load_findings(tmp_path, "00")["00"]["findings"][0])
    assert evidence_line(old) == "" and "rox-evidence" not in findings_markdown([old])


def test_review_edits_of_the_headline_keep_the_evidence():
    payload = {"01": {"findings": [json.loads(json.dumps(_nps().__dict__))]}}
    review = Review.model_validate(
        {"findings": {"01.1": {"headline": "NPS is negative", "so_what": "Fix it."}}}
    )
    f = apply_review(payload, review).by_step["01"][0]
    assert f["headline"] == "NPS is negative" and f["edited"] == ["headline", "so_what"]
    assert (f["evidence_kind"], f["base"], f["interval"]) == (
        "survey_estimate",
        "14,955 responses",
        "95% CI -6.0 to -2.5",
    )
    assert "95% CI -6.0 to -2.5" in reviewed_findings_markdown([f])


def test_the_evidence_line_is_rendered_escaped_under_each_finding():
    f = _nps(base=f"12 {HOSTILE} responses", interval="95% CI 1 to 2 <b>")
    html = evidence_html(f)
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>" not in html and 'class="rox-evidence"' in html
    assert 'title="An estimate from the customers' in html  # the kind's meaning as a tooltip
    for md in (
        findings_markdown([f]),
        reviewed_findings_markdown([{**f.__dict__, "id": "01.1", "edited": [], "comment": ""}]),
    ):
        assert HOSTILE not in md and "&lt;script&gt;" in md
        assert "Survey estimate · base 12" in md
        # under the headline, before the evidence bullets
        assert md.index("rox-evidence") < md.index("- base 14,955")
    hostile_kind = {"evidence_kind": HOSTILE, "base": "1 row", "interval": "95% CI 1 to 2"}
    assert HOSTILE not in evidence_html(hostile_kind)


def test_the_executive_summary_and_the_methodology_show_the_kinds():
    rec = {**_nps().__dict__, "id": "01.1", "edited": [], "comment": ""}
    old = {"step": "00", "headline": "old", "evidence": [], "so_what": "", "id": "00.1",
           "confidence": "high", "edited": [], "comment": ""}  # fmt: skip
    cells = _summary_cells([Section("00", "Setup", None), Section("01", "Measurement", None)],
                           {"00": [old], "01": [rec]})  # fmt: skip
    summary = cells[1].outputs[0]["data"]["text/html"]
    assert "Survey estimate · base 14,955 responses · 95% CI -6.0 to -2.5" in summary
    md = methodology_markdown({"00": [old], "01": [rec]})
    assert md.startswith('<a id="methodology"></a>')
    for k in EVIDENCE_KINDS.values():
        assert k.label in md and k.meaning in md
    assert "| Survey estimate | An estimate" in md and "| 1 |" in md
    assert "1 finding(s) come from a run made before the kinds were recorded" in md
