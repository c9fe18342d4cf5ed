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

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

from rox_helpers import __version__
from rox_helpers.config import EngagementConfig

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "report"
HIDDEN_TAGS = {"parameters", "injected-parameters", "remove-cell", "remove"}


def escape(text: object) -> str:
    """HTML-escape anything that goes into a report (client data included)."""
    return html.escape(str(text), quote=True)


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


def build_report_notebook(sections: list[Section], cfg: EngagementConfig) -> nbformat.NotebookNode:
    """One notebook holding every section's visible cells, in order."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["title"] = f"{cfg.client.name} - Return on Experience"
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
            if kept is not None:
                nb.cells.append(kept)
    return nb


def render_report(
    sections: list[Section],
    cfg: EngagementConfig,
    out_path: Path,
    *,
    slug: str,
    run_id: str,
) -> Path:
    """Render ``sections`` to a self-contained ``report.html``; return its path."""
    nb = build_report_notebook(sections, cfg)
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
            "title": f"{cfg.client.name}: Return on Experience",
            "client": cfg.client.name,
            "primary": colours.primary,
            "secondary": colours.secondary,
            "accent": colours.accent,
            "run_id": run_id,
            "slug": slug,
            "version": __version__,
            "sections": [{"anchor": s.anchor, "title": s.title} for s in sections],
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


def findings_markdown(findings) -> str:
    """Findings as escaped Markdown: headline, evidence bullets, so-what and confidence."""
    parts = []
    for f in findings:
        lines = [f"**{escape(f.headline)}**", ""]
        lines += [f"- {escape(e)}" for e in f.evidence]
        if f.so_what:
            lines += [
                "",
                f"*What it means:* {escape(f.so_what)} (confidence: {escape(f.confidence)})",
            ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
