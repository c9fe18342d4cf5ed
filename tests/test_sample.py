"""The bundled sample engagement against the generator's ground truth, and one end-to-end run.

The generator records every planted bad row and every piece of personal data it planted in a
comment; these tests check the data layer finds exactly those, and that no raw identifier from
the raw files reaches any file of a run.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rox_helpers.cli import app

REPO = Path(__file__).resolve().parent.parent


def _planted_rows(truth: dict, file: str) -> set[int]:
    return {r for kind in truth["bad_rows"][file].values() for r in kind["rows"]}


@pytest.mark.parametrize(
    ("table", "file"),
    [
        ("customers", "customers.csv"),
        ("cx_survey", "cx_survey.sav"),
        ("employees", "employees.csv"),
    ],
)
def test_quarantine_is_exactly_the_planted_bad_rows(loaded, truth, table, file):
    quarantined = set(loaded.quarantine[table]["source_record"] - 1)  # 1-based -> 0-based
    assert quarantined == _planted_rows(truth, file)


def test_interaction_quarantine_is_the_planted_unknown_units(loaded, truth):
    rep = loaded.reports["interactions"]
    planted = truth["bad_rows"]["interactions.parquet"]["unknown_unit"]["count"]
    assert rep.rows_quarantined == planted
    assert rep.reasons == {"unit_id: unknown id (not in units.unit_id)": planted}


def test_consent_share_matches_the_generator(loaded, truth):
    p = loaded.privacy
    share = 1 - p.customers_without_consent / p.customers_total
    assert share == pytest.approx(truth["consent_analytics"]["realised"], abs=0.01)


def test_planted_personal_data_in_comments_is_masked(loaded, truth):
    s = loaded.tables["cx_survey"].assign(
        response_id=lambda d: d["response_id"].map(_token_to_raw(loaded))
    )
    s = s.set_index("response_id")
    pii = truth["survey"]["planted_pii"]
    for kind, token in (("email", "[email]"), ("phone", "[phone]"), ("staff_name", "[name]")):
        planted = [x["resp_id"] if isinstance(x, dict) else x for x in pii[kind]]
        ids = [i for i in planted if i in s.index]
        assert len(ids) >= 5, kind
        comments = s.loc[ids, "comment"].astype("str")
        assert comments.str.contains(token, regex=False).all(), kind
    assert not s["comment"].dropna().str.contains("@").any()


def _token_to_raw(loaded) -> dict[str, str]:
    """Response tokens back to the generator's ids (the tests hold the key; a report never does)."""
    import pyreadstat

    from rox_helpers.privacy import load_or_create_key, pseudonymise

    raw, _ = pyreadstat.read_sav(str(loaded.root / "data" / "cx_survey.sav"), usecols=["resp_id"])
    key = load_or_create_key(loaded.root)
    tokens = pseudonymise(raw["resp_id"], key, prefix="R-")
    return dict(zip(tokens, raw["resp_id"], strict=True))


def _raw_identifiers(sample: Path) -> dict[str, set[str]]:
    cust = pd.read_csv(sample / "data" / "customers.csv", sep=";", encoding="cp1252", dtype=str)
    emp = pd.read_csv(sample / "data" / "employees.csv", dtype=str)
    digits = cust["phone"].dropna().str.replace(r"\D", "", regex=True)
    return {
        "names": set(cust["full_name"].dropna()) | set(emp["name"].dropna()),
        "emails": set(cust["email"].dropna().str.lower()),
        "phones": set(digits[digits.str.len() >= 7]),
        "ids": set(cust["guest_id"].dropna()) | set(emp["emp_id"].dropna()),
    }


def _run_text(run_dir: Path) -> str:
    chunks = []
    for p in sorted(run_dir.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix == ".parquet":
            chunks.append(pd.read_parquet(p).to_csv(index=False))
        else:
            chunks.append(p.read_bytes().decode("utf-8", errors="ignore"))
    return "\n".join(chunks)


def _leaks(text: str, raw: dict[str, set[str]]) -> dict[str, list[str]]:
    words = re.findall(r"[^\W\d_][^\W\d_'-]*", text)
    grams = {" ".join(words[i : i + n]) for n in (2, 3, 4) for i in range(len(words) - n + 1)}
    emails = {e.lower() for e in re.findall(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)}
    phones = {re.sub(r"\D", "", m) for m in re.findall(r"\+?[\d()][\d ()-]{6,}\d", text)}
    ids = set(re.findall(r"\b(?:G\d{7}|E\d{5})\b", text))
    return {
        "names": sorted(raw["names"] & grams)[:5],
        "emails": sorted(raw["emails"] & emails)[:5],
        "phones": sorted(raw["phones"] & phones)[:5],
        "ids": sorted(raw["ids"] & ids)[:5],
    }


@pytest.fixture(scope="module")
def sample_run(sample):
    """``rox run <sample>`` through the CLI, once for the tests of this module (the only
    full run of the sample in the suite): the CLI's result and the run folder."""
    from rox_helpers import cli

    cli.console.width = cli.err_console.width = 250
    res = CliRunner().invoke(app, ["run", str(sample)])
    assert res.exit_code == 0, res.output
    run_dir = Path(res.output.split("Run folder:", 1)[1].split()[0])
    return res, run_dir


@pytest.mark.slow
def test_rox_run_on_the_sample_end_to_end(sample, truth, sample_run):
    res, run_dir = sample_run
    report = run_dir / "report.html"
    assert str(report) in res.output.replace("\n", "")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert {i["path"] for i in manifest["inputs"]} >= {
        "data/customers.csv",
        "data/interactions.parquet",
        "data/cx_survey.sav",
        "engagement.yml",
    }
    html = report.read_text()
    assert "Harbour &amp; Pine Hotels" in html
    assert "5 of 5 ROX elements" in html
    for table in ("customers", "cx_survey", "employees", "interactions"):
        assert (run_dir / "quarantine" / f"{table}.csv").is_file()
    feats = pd.read_parquet(run_dir / "artifacts" / "tables" / "customer_features.parquet")
    assert feats["customer_id"].str.startswith("C-").all()
    # the segmentation step: segments, and behaviour against demographics, reach the report
    assert manifest["steps"]["02"]["status"] == "ok"
    assert "behavioural segments:" in html and "better than demographics" in html
    # the driver step: the segment comparison reaches the report
    assert manifest["steps"]["03"]["status"] == "ok"
    assert "business: Speed of check-in first; leisure: Cleanliness of the room first" in html
    # the linkage step: its findings reach the report, the manifest records the naming rule
    assert manifest["steps"]["04"]["status"] == "ok"
    assert manifest["influencer_naming"] == {"named": False, "legal_basis": None}
    findings = json.loads((run_dir / "artifacts" / "findings" / "04.json").read_text())
    hyp = [f for f in findings["findings"] if "hypotheses" in f["headline"]]
    assert hyp and hyp[0]["headline"].startswith("4 supported")
    assert "The ROX linkage model" in html and "4 supported of 4 hypotheses" in html
    # privacy: nothing from the raw identifiers, or the personal data planted in comments,
    # appears in any file of the run (artifacts, quarantine, notebooks, report, manifest)
    leaks = _leaks(_run_text(run_dir), _raw_identifiers(sample))
    assert leaks == {"names": [], "emails": [], "phones": [], "ids": []}


@pytest.mark.slow
def test_every_chart_reference_names_a_chart_and_the_deck_shows_it(sample_run):
    """The step notebooks name each finding's chart by its section heading: a heading
    renamed (or a chart moved) without its reference breaks here, not silently in the deck.
    Every reference resolves to a chart of its step's executed notebook, and the deck's
    slide for the finding carries exactly that image; a finding without a reference gets
    no chart (no guessing from its words in a step that names its charts)."""
    from pptx import Presentation
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    from rox_helpers import deliverables as dl

    _, run_dir = sample_run
    charts = dl.run_charts(run_dir)
    findings = dl.ordered_findings(run_dir)
    named = [f for f in findings if f.get("chart")]
    broken = [
        f"{f['step']}: {f['chart']!r} ({f['headline'][:60]})"
        for f in named
        if dl.chart_for(f, charts.get(f["step"], [])) is None
    ]
    assert not broken, "chart references that name no chart of their notebook:\n" + "\n".join(
        broken
    )
    # every step with a chart names some, so none of them leans on matching words
    assert dl.steps_naming_charts(run_dir) == {s for s, c in charts.items() if c}
    assert len(named) >= 20, [f["headline"] for f in named]

    prs = Presentation(str(run_dir / "deck.pptx"))
    slides = {
        s.shapes.title.text: [
            p.image.blob for p in s.shapes if p.shape_type == MSO_SHAPE_TYPE.PICTURE
        ]
        for s in prs.slides
        if s.shapes.title is not None
    }
    on_slides = [f for f in findings if dl.clean_text(f["headline"], limit=160) in slides]
    assert len(on_slides) == 12  # the key findings: as many as the deck gives slides
    for f in on_slides:
        pictures = slides[dl.clean_text(f["headline"], limit=160)]
        if f.get("chart"):
            assert pictures == [dl.chart_for(f, charts[f["step"]]).png], f["headline"]
        else:
            assert pictures == [], f["headline"]
    assert sum(bool(f.get("chart")) for f in on_slides) >= 8


@pytest.mark.slow
def test_every_finding_states_its_kind_of_evidence_base_and_interval(sample_run):
    """Every figure the report states carries its base, its interval and what kind of
    evidence it rests on: every finding of every step of the sample run names a kind of the
    vocabulary, a base with a number, and an interval (or, where its kind allows, why there
    is none); the report shows each line under its finding, and the deck on its slide."""
    from pptx import Presentation

    from rox_helpers import deliverables as dl
    from rox_helpers.artifacts import EVIDENCE_KINDS, evidence_line, evidence_problems

    _, run_dir = sample_run
    findings = dl.ordered_findings(run_dir)
    steps = {f["step"] for f in findings}
    assert steps >= {"00", "01", "02", "03", "04", "05", "06", "06a", "07"}, steps
    assert len(findings) >= 40
    problems = {
        f"{f['step']}: {f['headline'][:60]}": p for f in findings if (p := evidence_problems(f))
    }
    assert not problems, problems
    kinds = {f["evidence_kind"] for f in findings}
    assert kinds <= set(EVIDENCE_KINDS)
    # the design's range of evidence is all there, from counts to the quasi-experiment
    assert kinds >= {"count", "survey_estimate", "association", "within_unit",
                     "adjusted_comparison", "prediction", "scenario"}, kinds  # fmt: skip
    page = (run_dir / "report.html").read_text()
    assert 'id="methodology"' in page
    text = unescape(page)  # the lines are escaped (tested in test_evidence.py)
    for f in findings:
        assert evidence_line(f) in text, f["headline"]
    for k in EVIDENCE_KINDS.values():
        assert k.meaning in text
    prs = Presentation(str(run_dir / "deck.pptx"))
    text = "\n".join(
        p.text for s in prs.slides for shp in s.shapes if shp.has_text_frame
        for p in shp.text_frame.paragraphs
    )  # fmt: skip
    on_slides = [f for f in findings if dl.clean_text(f["headline"], limit=160) in text]
    assert on_slides
    key = [f for f in findings if f["confidence"] in ("high", "medium")][:12]
    for f in key:
        assert dl.clean_text(evidence_line(f), limit=260) in text, f["headline"]


def _run_outputs(run_dir: Path) -> dict[str, str]:
    """Every artifact table (as CSV), findings file and kept model, and every output of every
    executed notebook, with the run's own folder name taken out."""
    import nbformat

    out: dict[str, str] = {}
    for p in sorted((run_dir / "artifacts").rglob("*")):
        key = str(p.relative_to(run_dir))
        if p.suffix == ".parquet":
            out[key] = pd.read_parquet(p).to_csv(index=False)
        elif p.suffix == ".json":
            out[key] = p.read_text()
    for p in sorted((run_dir / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        for i, cell in enumerate(nb.cells):
            for j, o in enumerate(cell.get("outputs", [])):
                text = json.dumps({k: o[k] for k in ("text", "data") if k in o}, sort_keys=True)
                out[f"{p.name}[{i}][{j}]"] = text.replace(run_dir.name, "<run>")
    return out


@pytest.mark.slow
def test_the_sample_gives_the_same_results_whatever_the_jobs_kernels_and_threads(
    sample, sample_run, monkeypatch
):
    """The module's run (steps two at a time, in kernels forked from the warm server, one BLAS
    thread each on two cores) against one step at a time in fresh interpreters with two BLAS
    threads: every table, finding and kept model, and every output of every notebook (figures,
    tables, text) the same. On the sample, not only the small engagement: the log's row order
    and float sums over a month once differed run to run here."""
    from rox_helpers.pipeline import run_engagement

    _, a = sample_run
    monkeypatch.setenv("ROX_KERNEL_FORK", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    b = run_engagement(sample, jobs=1)
    assert b.status == "ok"
    fa, fb = _run_outputs(a), _run_outputs(b.run_dir)
    assert fa.keys() == fb.keys() and len(fa) > 100
    differ = [k for k in fa if fa[k] != fb[k]]
    assert differ == []
