"""The client deliverables beside ``report.html``: the deck, the Excel appendix and the PDF.

Everything is built from the run folder alone (findings, aggregate tables, the executed
notebooks' charts, the manifest), so a deliverable can be rebuilt from any earlier run::

    deck.pptx       title, executive summary, one slide per key finding with its chart and
                    so-what, the action plan and the business case (python-pptx, master in
                    ``templates/deck/rox_master.pptx``, recoloured in the client's colours)
    appendix.xlsx   the run's aggregate tables, one sheet each, behind a contents sheet;
                    never a customer- or employee-level table; every text cell that a
                    spreadsheet could read as a formula is neutralised
    report.pdf      report.html printed by headless Chromium, when it is installed

:func:`render_deliverables` builds all three and never raises: a deliverable that cannot
be produced comes back as a message (and is logged), so it never fails a run.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from rox_helpers.artifacts import EVIDENCE_KINDS, SETUP_TABLES, evidence_line, load_findings
from rox_helpers.config import EngagementConfig
from rox_helpers.report import HIDDEN_TAGS

log = logging.getLogger(__name__)

DECK_TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "deck" / "rox_master.pptx"
CONFIDENCE_ORDER = {"high": 0, "medium": 1, "low": 2}

# ======================================================================================
# Safe text
# ======================================================================================
# characters XML 1.0 (and so pptx and xlsx) cannot hold; tab, newline and CR are allowed
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_text(value: object, *, limit: int | None = None) -> str:
    """Any value as text a slide or a sheet can hold: characters XML forbids dropped,
    white space runs collapsed, cut to ``limit`` characters with an ellipsis."""
    text = _XML_ILLEGAL.sub("", str(value))
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    return text


# ======================================================================================
# Charts: which notebook image illustrates a finding
# ======================================================================================
@dataclass(frozen=True)
class Chart:
    """One PNG a notebook step shows in the report, under the heading ``heading``."""

    step: str
    heading: str
    index: int  # 1-based position among the images of its section
    png: bytes
    #: the section's text up to the image (markdown and code), for matching findings
    context: str = ""


def _heading_of(markdown: str) -> str | None:
    heads = [ln.lstrip("#").strip() for ln in markdown.splitlines() if ln.startswith("#")]
    return heads[-1] if heads else None


def notebook_charts(notebook: Path, step: str) -> list[Chart]:
    """The images of an executed notebook that reach the report (cells the report hides
    are skipped), each with the heading of its section, in order."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    heading, counts, out, context = "", {}, [], []
    for cell in nb.cells:
        if set(cell.get("metadata", {}).get("tags", [])) & HIDDEN_TAGS:
            continue
        if cell.cell_type == "markdown":
            new = _heading_of(cell.source)
            if new is not None:
                heading, context = new, []
            context.append(cell.source)
            continue
        context.append(cell.source)
        for o in cell.get("outputs", []):
            png = o.get("data", {}).get("image/png") if o.get("output_type") != "error" else None
            if not png:
                continue
            if isinstance(png, list):
                png = "".join(png)
            counts[heading] = counts.get(heading, 0) + 1
            png = base64.b64decode(png)
            out.append(Chart(step, heading, counts[heading], png, "\n".join(context)))
    return out


def run_charts(run_dir: Path) -> dict[str, list[Chart]]:
    """Charts of every executed notebook in a run, by step (``notebooks/<step>_*.ipynb``)."""
    out: dict[str, list[Chart]] = {}
    for nb in sorted((Path(run_dir) / "notebooks").glob("*.ipynb")):
        step = nb.name.split("_", 1)[0]
        try:
            out[step] = notebook_charts(nb, step)
        except Exception as exc:  # a broken notebook file: no charts from it, say so
            log.warning("no charts from %s: %s", nb.name, exc)
            out[step] = []
    return out


_STOP = {
    "the", "and", "for", "with", "from", "that", "this", "are", "was", "per", "its", "our",
    "what", "who", "how", "than", "more", "less", "not", "all", "one", "two", "into", "each",
    # words of any notebook's code or of any step, which say nothing about a chart
    "data", "can", "run", "rows", "table", "show", "display", "none", "true", "false",
    "else", "return", "len", "import", "findings", "finding", "step",
}  # fmt: skip


def _stems(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in _STOP}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def chart_for(
    finding: dict, charts: list[Chart], used: set[int] = frozenset(), *, match_words: bool = True
) -> Chart | None:
    """The chart that illustrates a finding of a step, from that step's ``charts``.

    1. The finding's own ``chart`` reference (see :class:`~rox_helpers.artifacts.Finding`):
       the first image (or the ``#k``-th) under the heading of that text. A reference that
       matches nothing gives no chart rather than a wrong one.
    2. No reference and ``match_words`` (the deck passes it only for steps none of whose
       findings names a chart: runs from before the step notebooks named their charts, or
       a notebook of the consultant's own): the image, not yet ``used``, whose section
       shares the most words with the headline: a word in the heading counts three times,
       one in the section's text (its markdown and the code up to the image) once
       (``Hotel NPS ranges ...`` -> ``Hotels: a league table ...``; ``pride ...`` -> the
       chart drawn under ``if "pride" in emp``). Ties go to the earlier image. Where a step
       names its charts, a finding without a reference has none on purpose, and a
       headline rewritten in review never moves a chart.
    3. Otherwise (no shared word, or not ``match_words``): no chart (the slide shows the
       evidence instead); a wrong chart would be worse than none.

    ``used`` holds ``id()`` of charts already placed; a chart is reused only by reference.
    """
    ref = str(finding.get("chart") or "").strip()
    if ref:
        head, _, k = ref.rpartition("#")
        if not (head and k.isdigit()):
            head, k = ref, "1"
        for c in charts:
            if _norm(c.heading) == _norm(head) and c.index == int(k):
                return c
        return None
    if not match_words:
        return None
    words = _stems(str(finding.get("headline", "")))
    best, best_score = None, 0
    for c in charts:
        if id(c) in used:
            continue
        score = 3 * len(words & _stems(c.heading)) + len(words & _stems(c.context))
        if score > best_score:
            best, best_score = c, score
    return best


def steps_naming_charts(run_dir: Path) -> set[str]:
    """The steps of a run whose notebook names the charts of its findings: at least one
    finding (as the notebook wrote it, before any review) has a ``chart`` reference."""
    return {
        step
        for step, payload in load_findings(run_dir).items()
        if any(str(f.get("chart") or "").strip() for f in payload.get("findings", []))
    }


# ======================================================================================
# Findings
# ======================================================================================
def ordered_findings(run_dir: Path, findings: dict[str, list[dict]] | None = None) -> list[dict]:
    """Every finding of the run, highest confidence first, then in step order (and in
    each step's own order).

    ``findings`` are the reviewed findings by step (``apply_review(...).by_step``: edits
    applied, hidden ones gone); without them, the run's findings as the notebooks wrote them.
    """
    if findings is None:
        findings = {k: v.get("findings", []) for k, v in load_findings(run_dir).items()}
    rows = []
    for step, items in sorted(findings.items()):
        for i, f in enumerate(items):
            f = {**f, "step": str(f.get("step") or step)}
            rank = CONFIDENCE_ORDER.get(str(f.get("confidence")), 3)
            rows.append((rank, step, i, f))
    return [r[3] for r in sorted(rows, key=lambda r: r[:3])]


def _manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def review_state(run_dir: Path) -> tuple[dict[str, list[dict]] | None, dict]:
    """The run's findings with the engagement's ``review.yml`` applied, and its approval
    state (``{"draft": bool, "text": str}``), as the report shows them. A review that
    cannot be read leaves the findings as written and the run a draft."""
    manifest = _manifest(run_dir)
    draft = {"draft": True, "text": "DRAFT - not yet approved"}
    try:
        from rox_helpers.review import apply_review, approval_digest, approval_state, load_review

        root = Path(run_dir).parent.parent
        reviewed = apply_review(load_findings(run_dir), load_review(root)).by_step
        return reviewed, approval_state(manifest, approval_digest(run_dir, root))
    except Exception as exc:
        log.warning("review not applied to the deliverables: %s", exc)
        return None, draft


def _run_date(manifest: dict, run_dir: Path) -> datetime:
    for key in ("started",):
        try:
            return datetime.fromisoformat(str(manifest[key]))
        except (KeyError, ValueError):
            pass
    m = re.match(r"(\d{8})-(\d{6})", Path(run_dir).name)
    return datetime.strptime("".join(m.groups()), "%Y%m%d%H%M%S") if m else datetime(2000, 1, 1)


# ======================================================================================
# Numbers as text (slides)
# ======================================================================================
def fmt_number(v: object) -> str:
    """A number for a slide: thousands separators, three significant figures below 1,000,
    empty for missing; anything else as clean text."""
    if v is None or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not np.isfinite(v):
            return ""
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.3g}"
    if isinstance(v, (pd.Timestamp, datetime)):
        return v.strftime("%Y-%m-%d")
    return clean_text(v, limit=120)


def presentable(df: pd.DataFrame, preferred: Iterable[str] = (), *, max_cols: int = 6):
    """A table for a slide: the ``preferred`` columns present (else the first ones),
    ``estimate`` with ``ci_low``/``ci_high`` merged into one "estimate (low to high)"
    column, every cell formatted as text. Returns (headers, rows)."""
    d = df.copy()
    if {"estimate", "ci_low", "ci_high"} <= set(d.columns):

        def _ci(r):
            est = fmt_number(r["estimate"])
            lo, hi = fmt_number(r["ci_low"]), fmt_number(r["ci_high"])
            return f"{est} ({lo} to {hi})" if est and lo and hi else est

        d["estimate"] = d.apply(_ci, axis=1) if len(d) else d["estimate"]
        d = d.drop(columns=["ci_low", "ci_high"])
    cols = [c for c in preferred if c in d.columns] or list(d.columns)
    cols = cols[:max_cols]
    headers = [clean_text(str(c).replace("_", " "), limit=40) for c in cols]
    rows = [[fmt_number(v) for v in rec] for rec in d[cols].itertuples(index=False)]
    return headers, rows


# ======================================================================================
# The deck
# ======================================================================================
ACTION_COLUMNS = ("priority", "name", "impact", "effort", "owner", "maturity")
VALUE_COLUMNS = ("scenario", "label", "quantity", "estimate", "n_customers", "cost")


class _Deck:
    """The slides of one deck, on the ROX master, in the client's colours."""

    def __init__(self, template: Path, cfg: EngagementConfig, footer: str, draft: bool):
        from pptx import Presentation
        from pptx.dml.color import RGBColor

        self.prs = Presentation(str(template))
        self.rgb = {k: RGBColor.from_string(v.lstrip("#")) for k, v in _colours(cfg).items()}
        self.footer, self.draft = footer, draft
        self.layouts = {lay.name: lay for lay in self.prs.slide_layouts}
        self._brand()

    def _brand(self) -> None:
        from pptx.oxml.ns import qn

        for shp in self.prs.slide_master.shapes:
            colour = {"rox-brand-bar": "primary", "rox-accent-rule": "accent"}.get(shp.name)
            if colour:
                shp.fill.solid()
                shp.fill.fore_color.rgb = self.rgb[colour]
        # title text in the client's primary colour, through the master's title style
        title = self.prs.slide_master.element.find(qn("p:txStyles")).find(qn("p:titleStyle"))
        rpr = title.find(qn("a:lvl1pPr")).find(qn("a:defRPr"))
        for old in rpr.findall(qn("a:solidFill")):
            rpr.remove(old)
        fill = rpr.makeelement(qn("a:solidFill"), {})
        fill.append(fill.makeelement(qn("a:srgbClr"), {"val": str(self.rgb["primary"])}))
        rpr.insert(0, fill)

    @property
    def width(self) -> int:
        return int(self.prs.slide_width)

    @property
    def height(self) -> int:
        return int(self.prs.slide_height)

    def slide(self, title: str, *, layout: str = "Title Only"):
        from pptx.util import Inches, Pt

        s = self.prs.slides.add_slide(self.layouts[layout])
        if s.shapes.title is not None:
            t = s.shapes.title
            text = clean_text(title, limit=160)
            t.text_frame.text = text
            t.text_frame.word_wrap = True
            size = 28 if len(text) <= 60 else 22 if len(text) <= 110 else 18
            for p in t.text_frame.paragraphs:
                for r in p.runs:
                    r.font.size = Pt(size)
            if layout == "Title Only":
                t.left, t.top = Inches(0.5), Inches(0.35)
                t.width, t.height = self.width - Inches(1.0), Inches(1.1)
        self._footer(s)
        return s

    def _footer(self, slide) -> None:
        from pptx.util import Inches

        y = self.height - Inches(0.45)
        self.text(
            slide,
            Inches(0.5),
            y,
            self.width - Inches(3.0),
            Inches(0.35),
            [self.footer],
            size=9,
            colour="neutral",
        )
        if self.draft:
            self.text(
                slide,
                self.width - Inches(2.3),
                y,
                Inches(1.8),
                Inches(0.35),
                ["DRAFT"],
                size=11,
                bold=True,
                colour="draft",
                align="right",
            )

    def text(
        self,
        slide,
        left,
        top,
        width,
        height,
        paragraphs: list[str],
        *,
        size: int = 14,
        min_size: int | None = None,
        bold: bool = False,
        colour: str | None = None,
        align: str = "left",
        bullets: bool = False,
    ):
        """A text box; with ``min_size`` the font shrinks (down to it) until the text fits
        the box (estimated here: PowerPoint's own autofit only acts when text is edited)."""
        from pptx.dml.color import RGBColor
        from pptx.enum.text import MSO_AUTO_SIZE, PP_ALIGN
        from pptx.util import Pt

        texts = [("• " if bullets else "") + clean_text(p, limit=600) for p in paragraphs]
        size = _fit_size(texts, int(width), int(height), size, min_size or size)
        box = slide.shapes.add_textbox(int(left), int(top), int(width), int(height))
        tf = box.text_frame
        tf.word_wrap = True
        tf.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
        for i, text in enumerate(texts):
            p = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
            run = p.add_run()
            run.text = text
            run.font.size = Pt(size)
            run.font.bold = bold
            if colour == "draft":
                run.font.color.rgb = RGBColor(0xC0, 0x39, 0x2B)
            elif colour:
                run.font.color.rgb = self.rgb[colour]
            p.alignment = PP_ALIGN.RIGHT if align == "right" else PP_ALIGN.LEFT
            p.space_after = Pt(6)
        return box

    def picture(self, slide, png: bytes, left, top, max_w, max_h) -> None:
        from PIL import Image

        with Image.open(io.BytesIO(png)) as im:
            w, h = im.size
        scale = min(max_w / w, max_h / h)
        pw, ph = int(w * scale), int(h * scale)
        slide.shapes.add_picture(
            io.BytesIO(png), int(left + (max_w - pw) / 2), int(top), width=pw, height=ph
        )

    def table(self, slide, headers: list[str], rows: list[list[str]], top) -> None:
        from pptx.util import Inches, Pt

        left, width = Inches(0.5), self.width - Inches(1.0)
        row_h = Inches(0.36)
        shape = slide.shapes.add_table(
            len(rows) + 1, len(headers), int(left), int(top), int(width), int(row_h)
        )
        tbl = shape.table
        for j, h in enumerate(headers):
            cell = tbl.cell(0, j)
            cell.text = h
            cell.fill.solid()
            cell.fill.fore_color.rgb = self.rgb["primary"]
        for i, row in enumerate(rows, start=1):
            for j, v in enumerate(row):
                tbl.cell(i, j).text = v
        for i in range(len(rows) + 1):
            for j in range(len(headers)):
                for p in tbl.cell(i, j).text_frame.paragraphs:
                    for r in p.runs:
                        r.font.size = Pt(11)


def _fit_size(texts: list[str], width: int, height: int, size: int, min_size: int) -> int:
    """The largest font size from ``size`` down to ``min_size`` at which ``texts`` (one
    paragraph each) fit a box of ``width`` x ``height`` EMU: about half an em per
    character, 1.2 lines of leading, 6 pt after each paragraph, 0.1 in insets."""
    w_pt, h_pt = (width - 182880) / 12700, (height - 91440) / 12700
    for pt in range(size, min_size - 1, -1):
        per_line = max(1, int(w_pt / (0.5 * pt)))
        lines = sum(max(1, -(-len(t) // per_line)) for t in texts)
        if lines * pt * 1.2 + 6 * len(texts) <= h_pt:
            return pt
    return min_size


def _colours(cfg: EngagementConfig) -> dict[str, str]:
    c = cfg.client.colours
    return {
        "primary": c.primary,
        "secondary": c.secondary,
        "accent": c.accent,
        "neutral": getattr(c, "neutral", "#6B7B8C"),
    }


def render_deck(
    run_dir: str | Path,
    cfg: EngagementConfig,
    out_path: str | Path | None = None,
    *,
    template: Path = DECK_TEMPLATE,
    max_finding_slides: int = 12,
    max_table_rows: int = 10,
    findings: dict[str, list[dict]] | None = None,
    approval: dict | None = None,
) -> Path:
    """Build the client deck of a run (``deck.pptx``) from its folder.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (findings, tables, executed notebooks, manifest).
    cfg : EngagementConfig
        The engagement's config: client name and colours.
    out_path : str or Path, optional
        Where to write; ``run_dir/deck.pptx`` by default.
    template : Path
        The master (``templates/deck/rox_master.pptx``, built by ``build_master.py``).
    max_finding_slides : int, default=12
        Key findings with a slide of their own: the high and medium confidence ones,
        highest first; all of them are listed in the executive summary.
    max_table_rows : int, default=10
        Rows of the action plan and business case shown; the slide says how many more
        are in the appendix.
    findings, approval : optional
        The reviewed findings by step and the approval state (what ``render_run`` gives the
        report); by default both are worked out from the run and the engagement's
        ``review.yml`` (:func:`review_state`).

    Returns
    -------
    Path
        The deck. Marked DRAFT on every slide, as the report is, until the run is signed
        off (and again when anything changes after the sign-off).
    """
    from pptx.util import Inches

    run_dir = Path(run_dir)
    out = Path(out_path) if out_path else run_dir / "deck.pptx"
    manifest = _manifest(run_dir)
    if findings is None or approval is None:
        rf, ra = review_state(run_dir)
        findings, approval = (rf if findings is None else findings), (approval or ra)
    draft = bool(approval.get("draft", True))
    when = _run_date(manifest, run_dir)
    client = clean_text(cfg.client.name, limit=120)
    slug = clean_text(manifest.get("engagement") or run_dir.parent.parent.name, limit=80)
    run_id = clean_text(manifest.get("run_id") or run_dir.name, limit=80)
    footer = f"{clean_text(cfg.client.name, limit=60)} · Return on Experience · run {run_id}"
    deck = _Deck(template, cfg, footer, draft)
    W, H = deck.width, deck.height

    # 1. title
    s = deck.slide(client, layout="Title Slide")
    subtitle = f"Return on Experience · engagement {slug}\nrun {run_id} · {when:%d %B %Y}"
    s.placeholders[1].text_frame.text = subtitle
    if draft:
        deck.text(
            s,
            Inches(0.5),
            Inches(0.45),
            W - Inches(1.0),
            Inches(0.5),
            [clean_text(approval.get("text") or "DRAFT - not yet approved", limit=120)],
            size=16,
            bold=True,
            colour="draft",
            align="right",
        )

    # 2. executive summary: every headline, highest confidence first
    findings = ordered_findings(run_dir, findings)

    def kind_of(f: dict) -> str:
        k = EVIDENCE_KINDS.get(f.get("evidence_kind") or "")
        return f"{k.label.lower()}, " if k else ""

    lines = [
        f"{f.get('headline', '')} ({kind_of(f)}{f.get('confidence', '')} confidence, "
        f"finding {f.get('id') or 'of step ' + f['step']})"
        for f in findings
    ] or ["No findings were recorded in this run."]
    per = 6
    pages = [lines[i : i + per] for i in range(0, len(lines), per)]
    for k, page in enumerate(pages, start=1):
        title = "Executive summary" + (f" ({k} of {len(pages)})" if len(pages) > 1 else "")
        s = deck.slide(title)
        body = [clean_text(x, limit=260) for x in page]
        deck.text(s, Inches(0.6), Inches(1.6), W - Inches(1.2), H - Inches(2.3), body,
                  size=16, min_size=11, bullets=True)  # fmt: skip

    # 3. one slide per key finding, with its chart and its so-what
    charts = run_charts(run_dir)
    named = steps_naming_charts(run_dir)
    used: set[int] = set()
    key = [f for f in findings if f.get("confidence") in ("high", "medium")]
    for f in key[:max_finding_slides]:
        s = deck.slide(str(f.get("headline", "")))
        chart = chart_for(f, charts.get(f["step"], []), used, match_words=f["step"] not in named)
        top, avail_h = Inches(1.6), H - Inches(2.3)
        text_left = Inches(0.6)
        if chart is not None:
            used.add(id(chart))
            deck.picture(s, chart.png, Inches(0.5), top, W * 0.56, avail_h)
            text_left = int(W * 0.56) + Inches(0.8)
        text_w = W - text_left - Inches(0.5)
        so_what = clean_text(f.get("so_what") or "", limit=400)
        deck.text(s, text_left, top, text_w, Inches(0.4), ["What it means"], size=14,
                  bold=True, colour="secondary")  # fmt: skip
        deck.text(s, text_left, top + Inches(0.45), text_w, Inches(1.55), [so_what or "-"],
                  size=15, min_size=10)  # fmt: skip
        evidence = [clean_text(e, limit=200) for e in (f.get("evidence") or [])[:5]]
        # what the headline figure rests on: kind · base · interval (none in older runs)
        stated = evidence_line(f)
        if stated:
            evidence.insert(0, clean_text(stated, limit=260))
        meta = f"Confidence: {f.get('confidence', '')} · finding {f.get('id') or f['step']}"
        if f.get("edited"):
            meta += " · edited in review"
        if f.get("comment"):
            evidence.append(f"Consultant's note: {clean_text(f['comment'], limit=300)}")
        deck.text(s, text_left, top + Inches(2.1), text_w, avail_h - Inches(2.1),
                  [*evidence, meta], size=12, min_size=8, colour="neutral")  # fmt: skip

    # 4. the action plan and 5. the business case, when the run has them
    for name, title, cols in (
        ("actions_plan", "The action plan", ACTION_COLUMNS),
        ("value_scenarios", "The business case", VALUE_COLUMNS),
    ):
        path = run_dir / "artifacts" / "tables" / f"{name}.parquet"
        if not path.is_file():
            continue
        df = pd.read_parquet(path)
        s = deck.slide(title)
        if df.empty:
            deck.text(s, Inches(0.6), Inches(1.6), W - Inches(1.2), Inches(1), ["No rows."])
            continue
        headers, rows = presentable(df.head(max_table_rows), cols)
        deck.table(s, headers, rows, Inches(1.55))
        if len(df) > max_table_rows:
            deck.text(s, Inches(0.6), H - Inches(0.9), W - Inches(1.2), Inches(0.4),
                      [f"First {max_table_rows} of {len(df):,} rows; all of them are in "
                       "the Excel appendix."], size=10, colour="neutral")  # fmt: skip

    cp = deck.prs.core_properties
    cp.title = clean_text(f"{cfg.client.name}: Return on Experience", limit=200)
    cp.author, cp.last_modified_by = "ROX Workbook", "ROX Workbook"
    cp.created = cp.modified = when.replace(tzinfo=None)
    cp.revision = 1
    out.parent.mkdir(parents=True, exist_ok=True)
    deck.prs.save(str(out))
    return out


# ======================================================================================
# The Excel appendix
# ======================================================================================
#: canonical input tables and per-customer features: row-level, never exported
ROW_LEVEL_TABLES = frozenset({*SETUP_TABLES, "customer_features"})
#: a column of these makes a table row-level (one row per person or response); the peer
#: network's ``source``/``target`` are caught as pseudonymised ids (the linkage model's
#: element graph has the same column names and is a summary)
IDENTIFIER_COLUMNS = frozenset(
    {"customer_id", "employee_id", "response_id", "respondent_id", "referred_by", "email",
     "phone", "name_hash"}
)  # fmt: skip
#: pseudonymised identifiers (``privacy.pseudonymise``: prefix + 16 hex characters)
PSEUDONYM_RE = re.compile(r"^[A-Za-z]{0,3}-?[0-9a-f]{16}$")
#: a key table fits on a screenful of scrolling; anything longer is not an appendix table
MAX_APPENDIX_ROWS = 10_000


def is_aggregate_table(name: str, df: pd.DataFrame) -> tuple[bool, str]:
    """Whether a run table may go into the client appendix, and why not when it may not.

    A table is withheld when it is one of the canonical row-level tables
    (:data:`ROW_LEVEL_TABLES`), has an identifier column (:data:`IDENTIFIER_COLUMNS`),
    holds pseudonymised identifiers in any text column, or has more than
    :data:`MAX_APPENDIX_ROWS` rows.
    """
    ok, why = _table_rule(name, list(df.columns), len(df))
    if not ok:
        return ok, why
    for col in df.columns:
        s = df[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            vals = s.dropna().astype(str)
            if vals.str.fullmatch(PSEUDONYM_RE).any():
                return False, f"pseudonymised identifiers in column {col}"
    return True, ""


def _table_rule(name: str, columns: list, n_rows: int) -> tuple[bool, str]:
    """The checks that need only a table's name, columns and length (its parquet footer)."""
    if name in ROW_LEVEL_TABLES:
        return False, "row-level input table"
    ids = sorted(IDENTIFIER_COLUMNS & {str(c).lower() for c in columns})
    if ids:
        return False, f"identifier column(s) {', '.join(ids)}"
    if n_rows > MAX_APPENDIX_ROWS:
        return False, f"{n_rows:,} rows (more than {MAX_APPENDIX_ROWS:,})"
    return True, ""


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(text: str) -> str:
    """A string that no spreadsheet reads as a formula (OWASP CSV injection): one that
    starts with = + - @ (or their full-width forms), a tab or a CR, even after spaces,
    gets a leading apostrophe; characters XML forbids are dropped; cut to Excel's
    32,767 characters."""
    text = _XML_ILLEGAL.sub("", str(text))
    if text.lstrip(" ").startswith(_FORMULA_START):
        text = "'" + text
    return text[:32767]


def excel_value(v: object) -> object:
    """A cell value: numbers stay numbers, dates stay dates (time zones dropped), missing
    values stay empty, text is neutralised."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if np.isfinite(f) else None
    if isinstance(v, pd.Timestamp):
        return v.tz_convert(None).to_pydatetime() if v.tz is not None else v.to_pydatetime()
    if isinstance(v, datetime):
        return v.replace(tzinfo=None)
    if isinstance(v, (list, tuple, np.ndarray, dict)):
        v = json.dumps(v.tolist() if isinstance(v, np.ndarray) else v, default=str)
    return neutralise(v)


def _number_format(s: pd.Series) -> str | None:
    if pd.api.types.is_bool_dtype(s):
        return None
    if pd.api.types.is_integer_dtype(s):
        return "#,##0"
    if pd.api.types.is_float_dtype(s):
        vals = s.to_numpy(dtype=float, na_value=np.nan)
        vals = vals[np.isfinite(vals)]
        big = np.abs(vals).max() if len(vals) else 0.0
        if len(vals) and np.all(vals == np.round(vals)) and big >= 1:
            return "#,##0"
        return "#,##0" if big >= 1000 else "#,##0.0" if big >= 10 else "0.000"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "yyyy-mm-dd"
    return None


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(name: str, taken: set[str]) -> str:
    base = _SHEET_BAD.sub("_", clean_text(name)).strip("'") or "table"
    base = base[:31]
    cand, i = base, 2
    while cand.lower() in taken or cand.lower() in ("contents", "history"):
        suffix = f"~{i}"
        cand, i = base[: 31 - len(suffix)] + suffix, i + 1
    taken.add(cand.lower())
    return cand


def render_appendix(
    run_dir: str | Path,
    cfg: EngagementConfig,
    out_path: str | Path | None = None,
    *,
    approval: dict | None = None,
) -> Path:
    """Write the Excel appendix of a run (``appendix.xlsx``): a contents sheet, then one
    sheet per aggregate table of ``artifacts/tables`` (see :func:`is_aggregate_table`),
    header row frozen and filtered, numbers formatted and kept as numbers, text
    neutralised (:func:`neutralise`). The contents sheet carries the approval state
    (``approval``, else worked out as :func:`review_state` does)."""
    import pyarrow.parquet as pq
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.hyperlink import Hyperlink

    run_dir = Path(run_dir)
    out = Path(out_path) if out_path else run_dir / "appendix.xlsx"
    manifest = _manifest(run_dir)
    primary = _colours(cfg)["primary"].lstrip("#").upper()
    head_fill = PatternFill("solid", fgColor=primary)
    head_font = Font(bold=True, color="FFFFFF")

    wb = Workbook()
    contents = wb.active
    contents.title = "Contents"
    contents.append([neutralise(f"{clean_text(cfg.client.name)}: Return on Experience")])
    contents["A1"].font = Font(bold=True, size=14)
    run_id = str(manifest.get("run_id") or run_dir.name)
    state = approval or review_state(run_dir)[1]
    contents.append([neutralise(f"Appendix tables of run {run_id}")])
    contents.append([neutralise(clean_text(state.get("text") or "DRAFT", limit=200))])
    contents["A3"].font = Font(bold=True, color="C0392B" if state.get("draft", True) else "000000")
    contents.append([])
    contents.append(["Sheet", "Table", "Rows", "Columns"])
    for c in contents[5]:
        c.fill, c.font = head_fill, head_font

    taken: set[str] = {"contents"}
    withheld = []
    for path in sorted((run_dir / "artifacts" / "tables").glob("*.parquet")):
        name = path.stem
        try:
            # name, columns and length from the footer first: a customer table or a log
            # of millions of rows is never loaded
            meta = pq.ParquetFile(path).metadata
            ok, why = _table_rule(name, list(meta.schema.names), meta.num_rows)
            if not ok:
                withheld.append(f"{name} ({why})")
                continue
            df = pd.read_parquet(path)
        except Exception as exc:
            withheld.append(f"{name} (unreadable: {clean_text(exc, limit=120)})")
            continue
        ok, why = is_aggregate_table(name, df)
        if not ok:
            withheld.append(f"{name} ({why})")
            continue
        title = _sheet_name(name, taken)
        ws = wb.create_sheet(title)
        ws.append([neutralise(clean_text(c)) for c in df.columns])
        for c in ws[1]:
            c.fill, c.font = head_fill, head_font
        for rec in df.itertuples(index=False):
            ws.append([excel_value(v) for v in rec])
        for j, col in enumerate(df.columns, start=1):
            letter = get_column_letter(j)
            fmt = _number_format(df[col])
            if fmt:
                for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                    cell.number_format = fmt
            sample = [len(str(col))] + [len(fmt_number(v)) for v in df[col].head(200)]
            ws.column_dimensions[letter].width = min(max(sample) + 2, 50)
        ws.freeze_panes = "A2"
        if len(df.columns):
            ws.auto_filter.ref = f"A1:{get_column_letter(len(df.columns))}{len(df) + 1}"
        contents.append([title, neutralise(name), len(df), len(df.columns)])
        link = contents.cell(row=contents.max_row, column=1)
        link.hyperlink = Hyperlink(ref=link.coordinate, location=f"'{title}'!A1")
        link.font = Font(color="0563C1", underline="single")
    if withheld:
        contents.append([])
        contents.append(["Not in this appendix (row-level or not a summary table):"])
        for w in withheld:
            contents.append([neutralise(w)])
    contents.column_dimensions["A"].width = 34
    contents.column_dimensions["B"].width = 34
    wb.properties.creator = "ROX Workbook"
    when = _run_date(manifest, run_dir).replace(tzinfo=None)
    wb.properties.created = wb.properties.modified = when
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return out


# ======================================================================================
# The PDF
# ======================================================================================
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """Debian's chromium (or ``$ROX_CHROMIUM``), or None when no browser is installed."""
    env = os.environ.get("ROX_CHROMIUM")
    for cand in ((env,) if env else ()) + CHROMIUM_CANDIDATES:
        path = cand if os.path.isabs(cand) else shutil.which(cand)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def render_pdf(
    report_html: str | Path,
    out_path: str | Path | None = None,
    *,
    chromium: str | None = None,
    timeout: float = 120,
) -> Path | str:
    """Print ``report.html`` to PDF with headless Chromium.

    Returns the PDF's path, or a message saying why there is none (no Chromium
    installed, Chromium failed or timed out); it never raises for those.
    """
    html = Path(report_html).resolve()
    out = Path(out_path) if out_path else html.with_suffix(".pdf")
    exe = chromium or find_chromium()
    if exe is None:
        return (
            "PDF not produced: no Chromium found (looked for /usr/bin/chromium and chromium "
            "on PATH). Install Debian's chromium (apt-get install chromium) or set "
            "ROX_CHROMIUM to a Chromium binary; report.html is complete without it."
        )
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="rox-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",  # containers and CI run as root; the page is our own file
            "--disable-gpu",
            "--disable-extensions",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={out.resolve()}",
            html.as_uri(),
        ]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"PDF not produced: Chromium did not finish within {timeout:g} s"
        except OSError as exc:
            return f"PDF not produced: could not start {exe}: {exc}"
    if not out.is_file() or out.read_bytes()[:5] != b"%PDF-":
        tail = " ".join((res.stderr or "").strip().splitlines()[-3:])[:500]
        return f"PDF not produced: Chromium exited with code {res.returncode}. {tail}".strip()
    return out


# ======================================================================================
# All of them, for `rox run`
# ======================================================================================
def attempt_appendix(run_dir: Path, cfg: EngagementConfig, approval: dict | None) -> Path | str:
    """:func:`render_appendix`, or the message saying why it was not produced (never
    raises: a deliverable never fails the run)."""
    try:
        return render_appendix(run_dir, cfg, approval=approval)
    except Exception as exc:
        return f"appendix not produced: {type(exc).__name__}: {exc}"[:1000]


def render_deliverables(
    run_dir: str | Path,
    cfg: EngagementConfig,
    *,
    report_html: str | Path | None,
    findings: dict[str, list[dict]] | None = None,
    approval: dict | None = None,
    appendix: Future | None = None,
) -> dict[str, Path | str]:
    """Build the deck, the Excel appendix and the PDF of a run; never raise.

    ``findings`` (reviewed, by step) and ``approval`` are what the report was rendered
    with; without them they are worked out from the run (:func:`review_state`).
    ``appendix``: the appendix already being built elsewhere (a future of
    :func:`attempt_appendix`), awaited instead of building it here.

    Returns
    -------
    dict
        ``{"deck": ..., "appendix": ..., "pdf": ...}``: the file's Path when it was
        produced, otherwise a message saying why not (also logged as a warning).
    """
    run_dir = Path(run_dir)
    if findings is None or approval is None:
        rf, ra = review_state(run_dir)
        findings, approval = (rf if findings is None else findings), (approval or ra)
    out: dict[str, Path | str] = {}
    jobs = {
        "deck": lambda: render_deck(run_dir, cfg, findings=findings, approval=approval),
        "appendix": lambda: (
            appendix.result()
            if appendix is not None
            else render_appendix(run_dir, cfg, approval=approval)
        ),
        "pdf": lambda: (
            render_pdf(report_html, run_dir / "report.pdf")
            if report_html and Path(report_html).is_file()
            else "PDF not produced: there is no report.html to print"
        ),
    }

    def attempt(name: str) -> Path | str:
        try:
            return jobs[name]()
        except Exception as exc:  # a deliverable never fails the run
            return f"{name} not produced: {type(exc).__name__}: {exc}"[:1000]

    # at the same time: Chromium prints the PDF in its own processes while this one builds
    # the deck and the appendix (each writes only its own file)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(attempt, name) for name in ("pdf", "deck", "appendix")}
        for name in jobs:
            out[name] = futures[name].result()
            if isinstance(out[name], str):
                log.warning("%s", out[name])
    return out


def manifest_outputs(results: dict[str, Path | str], run_dir: str | Path) -> dict[str, object]:
    """The manifest's record of :func:`render_deliverables`: the file's path relative to
    the run folder, or ``{"error": message}``."""
    rec: dict[str, object] = {}
    for name, v in results.items():
        if isinstance(v, Path):
            try:
                rec[name] = str(v.resolve().relative_to(Path(run_dir).resolve()))
            except ValueError:
                rec[name] = str(v)
        else:
            rec[name] = {"error": str(v)}
    return rec
