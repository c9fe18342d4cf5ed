"""The client report: the executed notebooks rendered as one self-contained HTML file.

Code, parameter cells, warnings and tracebacks never reach the client; nothing
is loaded from the network (the template in ``templates/report/rox`` drops the
require.js, MathJax and widget scripts of nbconvert's default templates);
images are embedded.  A failed step appears as a marked section, not a gap.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rox_helpers import __version__
from rox_helpers.artifacts import EVIDENCE_KINDS, evidence_line
from rox_helpers.config import EngagementConfig

if TYPE_CHECKING:  # imported where used: every notebook imports this module for its
    import nbformat  # tables and findings, and nbformat/nbconvert double its start-up time

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "report"
HIDDEN_TAGS = {"parameters", "injected-parameters", "remove-cell", "remove"}
#: the charts of cells tagged so are also shown in the executive summary (the scorecard, the
#: six-action radar, the plan, the business case)
SUMMARY_TAG = "summary"
#: findings per step in the executive summary (high confidence first, then medium)
SUMMARY_PER_STEP = 2
#: first line of a findings block in a notebook's output: the report re-renders the block
#: from the run's findings with the consultant's review applied
FINDINGS_MARK = "<!-- rox:findings -->"
#: anchor of the "Since the last run" section (after the executive summary)
SINCE_LAST = "since-last-run"
#: anchor of the methodology section (the kinds of evidence; after the steps)
METHODOLOGY = "methodology"


def escape(text: object) -> str:
    """HTML-escape anything that goes into a report (client data included)."""
    return html.escape(str(text), quote=True)


def evidence_html(finding) -> str:
    """A finding's evidence line (kind · base · interval, :func:`evidence_line`), escaped, in
    a span whose tooltip says what the kind means; empty for a finding written before the
    evidence fields existed. ``finding``: a :class:`~rox_helpers.artifacts.Finding` or its
    dict."""
    line = evidence_line(finding)
    if not line:
        return ""
    kind = finding.get("evidence_kind") if isinstance(finding, dict) else finding.evidence_kind
    meaning = EVIDENCE_KINDS[kind].meaning if kind in EVIDENCE_KINDS else ""
    return f'<span class="rox-evidence" title="{escape(meaning)}">{escape(line)}</span>'


def methodology_markdown(findings: dict[str, list[dict]] | None = None) -> str:
    """The methodology section: each kind of evidence a finding can rest on, what it means,
    and (given the report's findings by step) how many findings of this report rest on it."""
    counts: dict[str, int] = {}
    for fs in (findings or {}).values():
        for f in fs:
            k = f.get("evidence_kind") or ""
            counts[k] = counts.get(k, 0) + 1
    rows = [
        "| Kind of evidence | What it means | Findings in this report |",
        "| --- | --- | --- |",
    ]
    rows += [
        f"| {escape(k.label)} | {escape(k.meaning)} | {counts.get(key, 0)} |"
        for key, k in EVIDENCE_KINDS.items()
    ]
    unstated = counts.get("", 0)
    return (
        f'<a id="{METHODOLOGY}"></a>\n\n## Methodology: what each finding rests on\n\n'
        "Under every finding a line gives the kind of evidence its headline figure rests on, "
        "the base it is computed on, and its 95% interval (or why none applies). Cause and "
        "effect is claimed only as far as the kind allows.\n\n"
        + "\n".join(rows)
        + (
            f"\n\n{unstated} finding(s) come from a run made before the kinds were recorded "
            "and state none."
            if unstated
            else ""
        )
    )


@dataclass
class Section:
    step: str
    title: str
    notebook: Path | None
    error: str = ""

    @property
    def anchor(self) -> str:
        return f"step-{self.step}"


def _clean_cell(cell: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    tags = set(cell.get("metadata", {}).get("tags", []))
    if tags & HIDDEN_TAGS:
        return None
    if cell.cell_type == "code":
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                continue
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue
            outputs.append(out)
        cell.outputs = outputs
    return cell


def _is_findings_output(out: nbformat.NotebookNode) -> bool:
    md = out.get("data", {}).get("text/markdown", "")
    md = "".join(md) if isinstance(md, list) else md
    return out.get("output_type") in ("display_data", "execute_result") and md.startswith(
        FINDINGS_MARK
    )


def _html_output(markdown: str) -> nbformat.NotebookNode:
    """A display output holding ``markdown`` rendered to HTML here: nbconvert's image
    embedding re-parses each inline HTML tag of a Markdown output on its own and empties
    ``<span>...</span>``, so findings (with their id and edit badges) go in as HTML."""
    import nbformat
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return nbformat.v4.new_output(
        "display_data", data={"text/html": markdown2html_mistune(markdown)}
    )


def _summary_cells(sections: list[Section], findings: dict[str, list[dict]] | None) -> list:
    """The executive summary: every step's headlines (reviewed), then the cells the
    notebooks tagged ``summary`` (the scorecard, the radar, the plan, the business case)."""
    import nbformat

    cells = [nbformat.v4.new_markdown_cell('<a id="summary"></a>\n\n## Executive summary')]
    if findings:
        lines = []
        rank = {"high": 0, "medium": 1}
        for sec in sections:
            top = sorted(
                (f for f in findings.get(sec.step, []) if f.get("confidence") in rank),
                key=lambda f: rank[f["confidence"]],
            )[:SUMMARY_PER_STEP]
            for f in top:
                ev = evidence_html(f)
                lines.append(
                    f"- **{escape(f['headline'])}** "
                    f'<span class="rox-fid">{escape(f["id"])}</span>'
                    + (' <span class="rox-edited">edited</span>' if f.get("edited") else "")
                    + (f"<br>{ev}" if ev else "")
                )
        if lines:
            cell = nbformat.v4.new_code_cell("")
            cell.outputs = [
                _html_output(
                    "What the evidence says (the strongest findings of each step; every "
                    "finding, with its base, interval and caveats, follows in its section):\n\n"
                    + "\n".join(lines)
                )
            ]
            cells.append(cell)
    for sec in sections:
        if sec.error or sec.notebook is None or not sec.notebook.is_file():
            continue
        for cell in nbformat.read(sec.notebook, as_version=4).cells:
            if SUMMARY_TAG in cell.get("metadata", {}).get("tags", []):
                c = _clean_cell(cell)
                if c is not None and c.cell_type == "code":
                    # the charts only: the tables stay in their section
                    c.outputs = [o for o in c.outputs if "image/png" in o.get("data", {})]
                    c.metadata["tags"] = [t for t in c.metadata.get("tags", []) if t != SUMMARY_TAG]
                    if c.outputs:
                        cells.append(c)
    return cells


def build_report_notebook(
    sections: list[Section],
    cfg: EngagementConfig,
    findings: dict[str, list[dict]] | None = None,
    since_last: str | None = None,
) -> nbformat.NotebookNode:
    """One notebook holding every section's visible cells, in order.

    With ``findings`` (reviewed, by step: :func:`rox_helpers.review.apply_review`), an
    executive summary comes first and each notebook's findings block is re-rendered from
    them, so the consultant's edits reach the report. ``since_last`` (escaped HTML, from
    :func:`rox_helpers.rundiff.since_last_run`) follows the summary as "Since the last run".
    """
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["title"] = f"{cfg.client.name} - Return on Experience"
    if findings is not None:
        nb.cells.extend(_summary_cells(sections, findings))
    if since_last:
        nb.cells.append(
            nbformat.v4.new_markdown_cell(f'<a id="{SINCE_LAST}"></a>\n\n## Since the last run')
        )
        cell = nbformat.v4.new_code_cell("")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": since_last})]
        nb.cells.append(cell)
    for sec in sections:
        nb.cells.append(nbformat.v4.new_markdown_cell(f'<a id="{escape(sec.anchor)}"></a>'))
        if sec.error or sec.notebook is None or not sec.notebook.is_file():
            msg = sec.error or "the notebook did not run"
            nb.cells.append(
                nbformat.v4.new_markdown_cell(
                    f"## {escape(sec.title)}\n\n"
                    f'<div style="border-left:4px solid #c0392b;padding:8px 12px;background:#fdf2f0">'
                    f"<strong>This section could not be produced.</strong> {escape(msg)}"
                    "</div>"
                )
            )
            continue
        src = nbformat.read(sec.notebook, as_version=4)
        for cell in src.cells:
            kept = _clean_cell(cell)
            if kept is None:
                continue
            if findings is not None and kept.cell_type == "code":
                kept.outputs = [
                    _html_output(reviewed_findings_markdown(findings.get(sec.step, [])))
                    if _is_findings_output(out)
                    else out
                    for out in kept.outputs
                ]
            nb.cells.append(kept)
    if findings is not None:
        nb.cells.append(nbformat.v4.new_markdown_cell(methodology_markdown(findings)))
    # one id per cell, in order: copies (the summary) and different notebooks would clash,
    # and nbconvert would replace the clashes with random ids, changing the report's text
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"rox-{i:04d}"
    return nb


def render_report(
    sections: list[Section],
    cfg: EngagementConfig,
    out_path: Path,
    *,
    slug: str,
    run_id: str,
    findings: dict[str, list[dict]] | None = None,
    approval: dict | None = None,
    hidden: int = 0,
    since_last: str | None = None,
    title: str | None = None,
) -> Path:
    """Render ``sections`` to a self-contained ``report.html``; return its path.

    ``findings`` (reviewed) adds the executive summary and the reviewed findings;
    ``approval`` (:func:`rox_helpers.review.approval_state`) marks the report DRAFT on every
    page, or approved; ``hidden`` counts the findings the reviewer hid; ``since_last``
    (escaped HTML) adds the "Since the last run" section after the summary; ``title``
    (plain text, escaped by the template) replaces "<client>: Return on Experience" (a
    unit's report names the unit).
    """
    nb = build_report_notebook(sections, cfg, findings, since_last)
    approval = approval or {"draft": True, "text": "DRAFT - not yet approved"}
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    c = Config()
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES)]
    c.HTMLExporter.template_name = "rox"
    exporter = HTMLExporter(config=c)
    colours = cfg.client.colours
    resources = {
        "rox": {
            "title": title or f"{cfg.client.name}: Return on Experience",
            "client": cfg.client.name,
            "primary": colours.primary,
            "secondary": colours.secondary,
            "accent": colours.accent,
            "run_id": run_id,
            "slug": slug,
            "version": __version__,
            "sections": (
                [{"anchor": "summary", "title": "Executive summary"}]
                if findings is not None
                else []
            )
            + ([{"anchor": SINCE_LAST, "title": "Since the last run"}] if since_last else [])
            + [{"anchor": s.anchor, "title": s.title} for s in sections]
            + ([{"anchor": METHODOLOGY, "title": "Methodology"}] if findings is not None else []),
            "draft": bool(approval["draft"]),
            "approval": approval["text"],
            "hidden": hidden,
        }
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    out_path.write_text(body, encoding="utf-8")
    return out_path


def _fmt_cell(v: object) -> object:
    if isinstance(v, bool) or v is None:
        return "yes" if v is True else ("no" if v is False else "")
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return "" if v != v else (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.3g}")
    return v


def show_table(df, *, columns: dict[str, str] | None = None):
    """A table for the report: escaped HTML, no index, thousands separators, readable headers.

    ``columns`` renames (and selects, in order) columns for display; a listed column the
    frame does not have is left out (an analysis that produced no such figure).
    """
    from IPython.display import HTML

    if df.empty:
        return HTML('<p class="rox-empty"><em>No rows to show.</em></p>')
    d = df
    if columns:
        d = d[[c for c in columns if c in d.columns]].rename(columns=columns)
    d = d.astype(object).map(_fmt_cell)
    return HTML(d.to_html(index=False, escape=True, classes="rox-table", border=0))


def reviewed_findings_markdown(findings: list[dict]) -> str:
    """Reviewed findings (dicts with ``id``, ``edited``, ``comment``) as escaped Markdown,
    each with its id (what review.yml refers to) and the consultant's marks."""
    parts = [FINDINGS_MARK]
    for f in findings:
        edited = f.get("edited") or []
        badge = ' <span class="rox-edited">edited</span>' if edited else ""
        lines = [
            f'**{escape(f["headline"])}** <span class="rox-fid">{escape(f["id"])}</span>{badge}',
            "",
        ]
        ev = evidence_html(f)
        if ev:
            lines += [ev, ""]
        lines += [f"- {escape(e)}" for e in f.get("evidence", [])]
        if f.get("so_what"):
            lines += [
                "",
                f"*What it means:* {escape(f['so_what'])} "
                f"(confidence: {escape(f.get('confidence', ''))})",
            ]
        if f.get("comment"):
            lines += ["", f"> *Consultant's note:* {escape(f['comment'])}"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def findings_markdown(findings) -> str:
    """Findings as escaped Markdown: headline, evidence bullets, so-what and confidence.

    Starts with :data:`FINDINGS_MARK`, so the report can re-render the block from the run's
    findings with the review applied."""
    parts = [FINDINGS_MARK]
    for f in findings:
        lines = [f"**{escape(f.headline)}**", ""]
        ev = evidence_html(f)
        if ev:
            lines += [ev, ""]
        lines += [f"- {escape(e)}" for e in f.evidence]
        if f.so_what:
            lines += [
                "",
                f"*What it means:* {escape(f.so_what)} (confidence: {escape(f.confidence)})",
            ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
