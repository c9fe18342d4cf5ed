"""``rox run --per unit``: one report per unit (or region) from one run, run by papermill.

After a run, :func:`render_per` computes every unit's figures once
(:func:`rox_helpers.units.prepare`), executes ``notebooks/unit_report.ipynb`` for each
value with papermill (``jobs`` at a time, each in its own kernel), and renders each
executed notebook into a self-contained ``report.html`` with the main report's template,
colours, escaping and approval marking::

    runs/<ts>/per_<column>/           (per_unit/ for hotels, per_region/ ...)
      _figures/            every unit's figures beside the chain's (parquet), computed once
      <slug>/unit_report.ipynb, log.txt, findings.json, report.html
      index.html, index.csv   each value's status and report

A unit that fails is recorded with its error and the others go on. The manifest records
the reports under ``per``.
"""

from __future__ import annotations

import csv
import html
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rox_helpers import units
from rox_helpers.artifacts import read_manifest
from rox_helpers.config import EngagementConfig, load_engagement_config
from rox_helpers.pipeline import NOTEBOOKS_DIR, _blas_env, _kernel_env, _write_json
from rox_helpers.report import Section, render_report

NOTEBOOK = "unit_report.ipynb"
#: the section id of a unit report's one section (and of its findings)
STEP = "unit"
_RENDER_LOCK = threading.Lock()  # nbconvert's exporters are not known to be thread-safe


@dataclass
class UnitReport:
    value: str
    label: str
    slug: str
    status: str = "pending"  # ok, failed
    seconds: float = 0.0
    report: str = ""  # relative to the per_<column> folder
    error: str = ""


@dataclass
class PerResult:
    per: str
    column: str
    folder: Path
    index: Path
    reports: list[UnitReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.reports)

    @property
    def n_failed(self) -> int:
        return sum(r.status != "ok" for r in self.reports)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "evalue", "") or exc).strip().splitlines()
    name = getattr(exc, "ename", type(exc).__name__)
    return f"{name}: {text[0] if text else ''}"[:500]


def _one(
    entry: UnitReport,
    *,
    per: str,
    folder: Path,
    run_dir: Path,
    root: Path,
    cfg: EngagementConfig,
    notebook: Path,
    kernel: str,
    approval: dict,
) -> UnitReport:
    """Execute the unit's notebook and render its report (in a worker thread)."""
    from rox_helpers.pipeline import execute_notebook

    t0 = time.perf_counter()
    out = folder / entry.slug
    out.mkdir(parents=True, exist_ok=True)
    executed = out / NOTEBOOK
    try:
        execute_notebook(
            notebook,
            executed,
            {
                "ENGAGEMENT": str(root),
                "RUN_DIR": str(run_dir),
                "PER": per,
                "VALUE": entry.value,
                "OUT_DIR": str(out),
            },
            kernel,
            out / "log.txt",
        )
        path = out / "findings.json"
        records = json.loads(path.read_text())["findings"] if path.is_file() else []
        with _RENDER_LOCK:
            render_report(
                [Section(STEP, f"{entry.label} beside the chain", executed)],
                cfg,
                out / "report.html",
                slug=root.name,
                run_id=run_dir.name,
                findings={STEP: records},
                approval=approval,
                title=f"{cfg.client.name}: {entry.label}",
            )
        entry.status, entry.report = "ok", f"{entry.slug}/report.html"
    except Exception as exc:
        entry.status, entry.error = "failed", _first_line(exc)
        cell = getattr(exc, "cell_index", None)
        if cell is not None:
            entry.error += f" (cell {cell} of {executed})"
    entry.seconds = round(time.perf_counter() - t0, 2)
    return entry


def write_index(result: PerResult, cfg: EngagementConfig, approval: dict) -> Path:
    """``index.csv`` and a self-contained ``index.html`` (escaped, client colours, DRAFT
    marking as the reports): each value's status, time and report."""
    folder = result.folder
    with open(folder / "index.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([result.column, "label", "status", "seconds", "report", "error"])
        for r in result.reports:
            w.writerow([r.value, r.label, r.status, r.seconds, r.report, r.error])
    e = html.escape
    c = cfg.client.colours
    rows = []
    for r in result.reports:
        link = f'<a href="{e(r.report)}">report</a>' if r.report else ""
        colour = "#1e7b34" if r.status == "ok" else "#c0392b"
        rows.append(
            f"<tr><td>{e(r.value)}</td><td>{e(r.label)}</td>"
            f'<td style="color:{colour}">{e(r.status)}</td><td>{r.seconds:.1f}</td>'
            f"<td>{link}</td><td>{e(r.error)}</td></tr>"
        )
    draft = approval.get("draft", True)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(cfg.client.name)}: reports per {e(result.per)}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 2em; color: #222; }}
h1 {{ color: {e(c.primary)}; }}
table {{ border-collapse: collapse; }}
th {{ background: {e(c.primary)}; color: white; text-align: left; padding: 4px 10px; }}
td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; }}
.rox-approval {{ color: {"#c0392b" if draft else "#1e7b34"}; font-weight: bold; }}
</style></head><body>
<p class="rox-approval">{e(approval.get("text", ""))}</p>
<h1>{e(cfg.client.name)}: one report per {e(result.per)}</h1>
<p>Run {e(folder.parent.name)}; {len(result.reports)} report(s), {result.n_failed} failed.</p>
<table><tr><th>{e(result.column)}</th><th>name</th><th>status</th><th>seconds</th>
<th>report</th><th>error</th></tr>
{"".join(rows)}
</table></body></html>
"""
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def render_per(
    run_dir: str | Path,
    per: str = units.UNIT,
    *,
    jobs: int | None = None,
    notebook: Path = NOTEBOOKS_DIR / NOTEBOOK,
    kernel_name: str = "python3",
    config: EngagementConfig | None = None,
    on_event: Callable[[str, UnitReport], None] | None = None,
) -> PerResult:
    """One report per value of ``per`` (``unit``, ``region``, any column of the units
    table) from a finished run; see the module docstring.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (``engagements/<slug>/runs/<ts>``).
    per : str
        ``unit`` or a column of the units table.
    jobs : int, optional
        Reports made at once (the number of cores by default).
    notebook : Path
        The unit report notebook.
    on_event : callable, optional
        ``on_event(event, report)`` with ``start``, ``ok`` or ``failed``, from the calling
        thread (the CLI prints progress).

    Raises
    ------
    RoxError
        The folder is not a run, the run has no units table, or ``per`` names no column of
        it (the error lists those available).
    """
    import os

    from rox_helpers.review import approval_digest, approval_state

    t0 = time.perf_counter()
    run_dir = Path(run_dir).resolve()
    root = run_dir.parent.parent
    manifest = read_manifest(run_dir, rule="reports per unit are made from a run folder")
    cfg = config or load_engagement_config(root)
    fig = units.prepare(run_dir, per, config=cfg)
    folder = units.per_dir(run_dir, fig.column)
    fig.save(folder / "_figures")
    # the unit reports carry the run's approval state: DRAFT until the run is signed off
    approval = approval_state(manifest, approval_digest(run_dir, root))
    entries = [
        UnitReport(str(r.value), str(r.label), str(r.slug))
        for r in fig.groups.itertuples(index=False)
    ]
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    kw = {
        "per": per,
        "folder": folder,
        "run_dir": run_dir,
        "root": root,
        "cfg": cfg,
        "notebook": Path(notebook),
        "kernel": kernel_name,
        "approval": approval,
    }
    with _kernel_env(_blas_env(jobs)), ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = []
        for entry in entries:
            on_event and on_event("start", entry)
            futures.append(pool.submit(_one, entry, **kw))
        for fut in as_completed(futures):
            done = fut.result()
            on_event and on_event(done.status, done)
    result = PerResult(per, fig.column, folder, folder / "index.html", entries)
    result.seconds = round(time.perf_counter() - t0, 2)
    write_index(result, cfg, approval)
    # record them in the manifest (read again: the run may have written it since)
    manifest = read_manifest(run_dir)
    per_runs = dict(manifest.get("per", {}))
    per_runs[units.per_name(fig.column)] = {
        "column": fig.column,
        "made": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": result.seconds,
        "reports": len(entries),
        "failed": result.n_failed,
        "index": str((folder / "index.html").relative_to(run_dir)),
        "units": {
            r.value: (
                {"status": r.status, "report": str((folder / r.report).relative_to(run_dir))}
                if r.status == "ok"
                else {"status": r.status, "error": r.error}
            )
            for r in entries
        },
    }
    manifest["per"] = per_runs
    _write_json(run_dir / "manifest.json", manifest)
    return result
