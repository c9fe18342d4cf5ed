"""``rox run``: execute the engagement notebooks with papermill and render the report.

Each run gets a new folder ``engagements/<slug>/runs/<timestamp>/`` (never an
earlier one) holding ``manifest.json`` (inputs with sha256, parameters,
package versions, git commit, timings, status), the executed notebooks, the
artifacts, the quarantine and ``report.html``.
"""

from __future__ import annotations

import glob
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from rox_helpers import __version__
from rox_helpers.artifacts import new_run_dir
from rox_helpers.config import EngagementConfig, load_engagement_config
from rox_helpers.errors import NotebookFailure, NotebookRunError
from rox_helpers.influencers import naming_record
from rox_helpers.io import sha256_file
from rox_helpers.report import Section, render_report

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KEY_PACKAGES = (
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "scikit-learn",
    "ibis-framework",
    "duckdb",
    "pandera",
    "pydantic",
    "papermill",
    "nbconvert",
    "matplotlib",
    "seaborn",
)


@dataclass(frozen=True)
class Step:
    """One notebook of the sequence and the steps it needs first."""

    id: str
    notebook: str
    title: str
    needs: tuple[str, ...] = ()
    #: steps whose artifacts it uses when they exist, without needing them to succeed
    after: tuple[str, ...] = ()


STEPS: tuple[Step, ...] = (
    Step("00", "00_engagement_setup.ipynb", "Engagement setup and data"),
    Step("01", "01_measurement.ipynb", "Measurement and the ROX scorecard", needs=("00",)),
    Step("02", "02_behavioural_segmentation.ipynb", "Behavioural segmentation", needs=("00",)),
    Step("03", "03_driver_analysis.ipynb", "Key driver analysis", needs=("00",), after=("02",)),
    Step("04", "04_rox_linkage.ipynb", "The ROX linkage model", needs=("00",)),
)


@dataclass
class RunResult:
    run_dir: Path
    report: Path | None
    manifest: Path
    status: str
    failures: list[NotebookFailure] = field(default_factory=list)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "rox-workbook": __version__}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(path: Path = REPO_ROOT) -> str | None:
    try:
        res = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def input_hashes(cfg: EngagementConfig, root: Path) -> list[dict[str, object]]:
    """Every declared input file with its size and sha256 (globs expanded)."""
    out = []
    for table, src in cfg.data.declared().items():
        pattern = src.path
        base = Path(pattern) if Path(pattern).is_absolute() else root / pattern
        if any(c in pattern for c in "*?["):
            paths = [Path(x) for x in sorted(glob.glob(str(base)))]
        else:
            paths = [base]
        for p in paths:
            rel = p.relative_to(root) if p.resolve().is_relative_to(root) else p
            entry: dict[str, object] = {"table": table, "path": str(rel)}
            if p.is_file():
                entry.update(bytes=p.stat().st_size, sha256=sha256_file(p))
            else:
                entry.update(missing=True)
            out.append(entry)
    (root / "engagement.yml").is_file() and out.append(
        {
            "table": "(config)",
            "path": "engagement.yml",
            "bytes": (root / "engagement.yml").stat().st_size,
            "sha256": sha256_file(root / "engagement.yml"),
        }
    )
    return out


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def _failure_from(exc: Exception, step: Step, out_nb: Path) -> NotebookFailure:
    cell = getattr(exc, "cell_index", None)
    return NotebookFailure(
        notebook=step.notebook,
        cell_index=cell,
        ename=getattr(exc, "ename", type(exc).__name__),
        evalue=(str(getattr(exc, "evalue", "") or exc).splitlines() or [""])[0][:500],
        output_path=str(out_nb),
    )


def run_engagement(
    engagement: str | Path,
    *,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    steps: tuple[Step, ...] = STEPS,
    kernel_name: str = "python3",
    on_event: Callable[[str, Step, float], None] | None = None,
) -> RunResult:
    """Run every step of an engagement into a new run folder and render the report.

    Parameters
    ----------
    engagement : str or Path
        The engagement folder.
    notebooks_dir : Path
        Where the notebooks live (the repository's ``notebooks/`` by default).
    steps : tuple of Step
        The sequence to run, in dependency order.
    kernel_name : str
        Jupyter kernel (the current interpreter's ``python3`` by default).
    on_event : callable, optional
        ``on_event(event, step, seconds)`` with event ``start``, ``done`` or
        ``failed``; the CLI uses it for progress.

    Returns
    -------
    RunResult
        With ``status`` ``"ok"`` or ``"failed"``; the report is rendered either
        way, with failed sections marked.  The CLI turns a failure into
        :class:`~rox_helpers.errors.NotebookRunError` and a non-zero exit.
    """
    import papermill as pm

    root = Path(engagement).resolve()
    cfg = load_engagement_config(root)
    run_dir = new_run_dir(root)
    manifest_path = run_dir / "manifest.json"
    started = datetime.now(UTC)
    manifest: dict[str, object] = {
        "engagement": root.name,
        "run_id": run_dir.name,
        "started": started.isoformat(timespec="seconds"),
        "status": "running",
        "inputs": input_hashes(cfg, root),
        "parameters": {"seed": cfg.seed, "steps": [s.id for s in steps]},
        # whether influencers may be shown by name, and on what legal basis
        "influencer_naming": naming_record(cfg.privacy),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
        "steps": {},
    }
    _write_json(manifest_path, manifest)

    try:
        failures: list[NotebookFailure] = []
        sections: list[Section] = []
        failed_ids: set[str] = set()
        for step in steps:
            out_nb = run_dir / "notebooks" / step.notebook
            blocked = [n for n in step.needs if n in failed_ids]
            rec: dict[str, object] = {"notebook": step.notebook}
            if blocked:
                rec.update(status="skipped", reason=f"needs failed step(s) {', '.join(blocked)}")
                failed_ids.add(step.id)
                sections.append(Section(step.id, step.title, None, error=str(rec["reason"])))
                manifest["steps"][step.id] = rec  # type: ignore[index]
                continue
            on_event and on_event("start", step, 0.0)
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(
                    str(notebooks_dir / step.notebook),
                    str(out_nb),
                    parameters={"ENGAGEMENT": str(root), "RUN_DIR": str(run_dir)},
                    kernel_name=kernel_name,
                    cwd=str(notebooks_dir),
                    progress_bar=False,
                    log_output=False,
                    request_save_on_cell_execute=False,
                )
            except Exception as exc:  # papermill raises PapermillExecutionError and others
                secs = time.perf_counter() - t0
                fail = _failure_from(exc, step, out_nb)
                failures.append(fail)
                failed_ids.add(step.id)
                rec.update(
                    status="failed",
                    seconds=round(secs, 2),
                    cell_index=fail.cell_index,
                    error=f"{fail.ename}: {fail.evalue}",
                )
                sections.append(
                    Section(
                        step.id,
                        step.title,
                        None,
                        error=f"{fail.ename} in cell {fail.cell_index}: {fail.evalue}",
                    )
                )
                on_event and on_event("failed", step, secs)
            else:
                secs = time.perf_counter() - t0
                rec.update(status="ok", seconds=round(secs, 2))
                sections.append(Section(step.id, step.title, out_nb))
                on_event and on_event("done", step, secs)
            manifest["steps"][step.id] = rec  # type: ignore[index]
            _write_json(manifest_path, manifest)

        report = render_report(
            sections, cfg, run_dir / "report.html", slug=root.name, run_id=run_dir.name
        )
    except BaseException as exc:  # an error of the workbook itself: never leave "running"
        manifest.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:1000])
        _write_json(manifest_path, manifest)
        raise
    status = "failed" if failures else "ok"
    manifest.update(
        status=status,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round((datetime.now(UTC) - started).total_seconds(), 2),
        outputs={"report": "report.html"},
    )
    _write_json(manifest_path, manifest)
    return RunResult(run_dir, report, manifest_path, status, failures)


def raise_for_failures(result: RunResult) -> None:
    if result.failures:
        raise NotebookRunError(result.failures)
