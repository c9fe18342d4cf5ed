"""``rox run``: execute the engagement notebooks with papermill and render the report.

Each run gets a new folder ``engagements/<slug>/runs/<timestamp>/`` (never an
earlier one) holding ``manifest.json`` (inputs with sha256, parameters,
package versions, git commit, timings, status and a fingerprint per step), the
executed notebooks, a log per notebook (``logs/<step>.log``), the artifacts, the
quarantine and ``report.html``.

The steps form a dependency graph (``Step.needs``: must succeed first;
``Step.after``: read when present, so they run first when planned); independent
steps run in parallel (``jobs``), ``only`` runs some steps and what they need,
and ``resume`` completes an earlier run in place, re-executing only what failed
or changed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from rox_helpers import __version__, kernels
from rox_helpers.artifacts import load_findings, new_run_dir, read_manifest
from rox_helpers.config import EngagementConfig, load_engagement_config
from rox_helpers.errors import NotebookFailure, NotebookRunError, RoxError
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
    Step("05", "05_journey_and_moments.ipynb", "Journey and moments", needs=("00",), after=("02",)),
    # the programme effects need only the setup's tables: split from the six actions so that
    # their bootstrap runs beside steps 01-05 instead of after them
    Step(
        "06a",
        "06a_programme_effects.ipynb",
        "Communities and the app: what joining changed",
        needs=("00",),
    ),
    Step(
        "06",
        "06_six_actions.ipynb",
        "The six actions",
        needs=("00",),
        after=("01", "02", "03", "04", "05", "06a"),
    ),
    Step(
        "07",
        "07_rox_business_case.ipynb",
        "The ROX business case",
        needs=("00",),
        after=("02", "03", "04"),
    ),
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
    """Every declared input file with its size and sha256 (globs and partitioned folders
    expanded); a connection source by its backend, host, database, table and row count
    (never credentials). A connection that fails raises its SourceError here, before a run
    folder exists."""
    out = []
    for table, src in cfg.data.declared().items():
        if src.connection is not None:
            from rox_helpers.engines import manifest_entry

            out.append(manifest_entry(src, table, root))
            continue
        pattern = str(src.path)
        base = Path(pattern) if Path(pattern).is_absolute() else root / pattern
        if any(c in pattern for c in "*?["):
            paths = [Path(x) for x in sorted(glob.glob(str(base)))]
        else:
            paths = [base]
        paths = [f for p in paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p])]
        paths = [p for p in paths if not p.is_dir()]
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


def plan_steps(steps: tuple[Step, ...], only: Sequence[str] | None = None) -> tuple[Step, ...]:
    """The steps to run, in the sequence's order: all of them, or ``only`` those and every
    step they need (transitively). A step's ``after`` steps are not pulled in: they order
    the run when present and are not required.

    Raises
    ------
    ConfigError
        An unknown step id, or a step that needs one not in the sequence.
    """
    by_id = {s.id: s for s in steps}
    for s in steps:
        for n in s.needs:
            if n not in by_id:
                raise RoxError(
                    f"step {s.id} needs step {n}, which is not in the sequence",
                    rule="known steps",
                    fix="Fix the Step definitions in rox_helpers/pipeline.py.",
                )
    if not only:
        return tuple(steps)
    want: set[str] = set()
    todo = [str(o) for o in only]
    while todo:
        sid = todo.pop()
        if sid not in by_id:
            raise RoxError(
                f"there is no step {sid!r}",
                rule="--only names steps of the sequence",
                fix=f"Use one of: {', '.join(by_id)}.",
            )
        if sid not in want:
            want.add(sid)
            todo += list(by_id[sid].needs)
    return tuple(s for s in steps if s.id in want)


def _sha256_text(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def _notebook_digest(path: Path) -> str:
    """sha256 of a notebook's cells (type and source): saving it in JupyterLab (cell ids,
    metadata, outputs) does not change it, editing a cell does."""
    if not path.is_file():
        return "missing"
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return _sha256_text([(c.cell_type, c.source) for c in nb.cells])


def step_fingerprints(
    steps: tuple[Step, ...], notebooks_dir: Path, inputs: list, parameters: dict
) -> dict[str, str]:
    """A hash per step of everything its result depends on: the notebook's source, the
    engagement's inputs (by sha256, engagement.yml included), the run parameters, the
    workbook's version and the fingerprints of the steps it reads (``needs`` and ``after``).
    Equal fingerprints mean ``--resume`` may keep the step's earlier result."""
    by_id = {s.id: s for s in steps}
    out: dict[str, str] = {}

    def fp(s: Step) -> str:
        if s.id not in out:
            src = _notebook_digest(notebooks_dir / s.notebook)
            ups = [fp(by_id[u]) for u in (*s.needs, *s.after) if u in by_id]
            out[s.id] = _sha256_text(s.id, s.notebook, src, inputs, parameters, __version__, ups)
        return out[s.id]

    for s in steps:
        fp(s)
    return out


def critical_path(steps: Sequence[Step], seconds: dict[str, float]) -> dict[str, float]:
    """For each step, the time from its start to the end of the longest chain of steps that
    wait on it (``needs`` or ``after``), by ``seconds`` per step (1 where unknown)."""
    ids = {s.id for s in steps}
    waiting: dict[str, list[str]] = {s.id: [] for s in steps}
    for s in steps:
        for u in (*s.needs, *s.after):
            if u in ids:
                waiting[u].append(s.id)
    out: dict[str, float] = {}

    def length(sid: str) -> float:
        if sid not in out:
            tail = max((length(w) for w in waiting[sid]), default=0.0)
            out[sid] = float(seconds.get(sid) or 1.0) + tail
        return out[sid]

    for s in steps:
        length(s.id)
    return out


def _previous_steps(root: Path, run_dir: Path, key: str) -> dict[str, float]:
    """Each step's ``key`` (``seconds``, ``peak_rss``) in the latest earlier run of the
    engagement that recorded it; empty when there is none."""
    runs = sorted((p for p in (root / "runs").glob("*/manifest.json") if p.parent != run_dir),
                  reverse=True)  # fmt: skip
    for path in runs[:5]:
        try:
            steps = json.loads(path.read_text()).get("steps", {})
        except (OSError, ValueError):
            continue
        got = {k: float(v[key]) for k, v in steps.items() if v.get(key)}
        if got:
            return got
    return {}


def _blas_env(jobs: int) -> dict[str, str]:
    """Thread counts for the kernels: the cores shared out between parallel steps, so that
    two steps with four BLAS threads each do not fight over two cores. Results do not
    depend on it (the analyses seed every random step and fix their reductions)."""
    per = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    return {v: os.environ.get(v, per) for v in kernels.THREAD_VARS}


def run_engagement(
    engagement: str | Path,
    *,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    steps: tuple[Step, ...] = STEPS,
    kernel_name: str = "python3",
    jobs: int | None = None,
    only: Sequence[str] | None = None,
    resume: str | Path | None = None,
    on_event: Callable[[str, Step, float], None] | None = None,
    max_memory: int | None = None,
) -> RunResult:
    """Run the steps of an engagement into a run folder and render the report.

    Steps run as soon as the steps they need have succeeded and the steps they read
    (``after``) have finished, up to ``jobs`` at a time, each in its own kernel. A failed
    step blocks only the steps that need it; the others still run, and the report is
    rendered either way with the failed sections marked. The report's sections, the
    manifest and every artifact are the same whatever ``jobs`` is.

    Parameters
    ----------
    engagement : str or Path
        The engagement folder.
    notebooks_dir : Path
        Where the notebooks live (the repository's ``notebooks/`` by default).
    steps : tuple of Step
        The sequence, in dependency order.
    kernel_name : str
        Jupyter kernel (the current interpreter's ``python3`` by default).
    jobs : int, optional
        Steps run at the same time; the number of cores by default, 1 = one after another.
    only : sequence of str, optional
        Run these steps and the steps they need, nothing else.
    resume : str or Path, optional
        An earlier run folder of this engagement to complete in place: the steps that
        failed, were skipped or never ran, or whose fingerprint (notebook, inputs,
        parameters, workbook version, upstream steps) changed are executed again, with
        every step downstream of them; the others keep their results.
    on_event : callable, optional
        ``on_event(event, step, seconds)`` with event ``start``, ``done``, ``failed``,
        ``skipped`` or ``kept``; called from the calling thread. The CLI uses it for
        progress.
    max_memory : int, optional
        Bytes the steps' kernels may take together: a step does not start beside others
        when the peaks they reached in the engagement's last run (``peak_rss`` in its
        manifest) would add up to more; alone, a step always starts. No limit by default.

    Returns
    -------
    RunResult
        With ``status`` ``"ok"`` or ``"failed"``. The CLI turns a failure into
        :class:`~rox_helpers.errors.NotebookRunError` and a non-zero exit.
    """
    root = Path(engagement).resolve()
    cfg = load_engagement_config(root)
    planned = plan_steps(steps, only)
    kernels.warm_up()
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    inputs = input_hashes(cfg, root)
    parameters = {"seed": cfg.seed, "steps": [s.id for s in planned]}
    # review.yml's segment names change the analyses' outputs; its text edits only the report
    names = {str(k): v for k, v in cfg.segmentation.names.items()}
    fingerprints = step_fingerprints(
        steps, notebooks_dir, inputs, {"seed": cfg.seed, "segment_names": names}
    )
    previous: dict[str, dict] = {}
    if resume is not None:
        run_dir = Path(resume)
        if not run_dir.is_dir() and (root / "runs" / run_dir).is_dir():
            run_dir = root / "runs" / run_dir
        manifest_path = run_dir / "manifest.json"
        old = read_manifest(
            run_dir,
            rule="--resume names a run folder",
            fix=f"Pick one of the folders under {root / 'runs'}.",
        )
        previous = dict(old.get("steps", {}))
    else:
        run_dir = new_run_dir(root)
        manifest_path = run_dir / "manifest.json"
    started = datetime.now(UTC)
    manifest: dict[str, object] = {
        "engagement": root.name,
        "run_id": run_dir.name,
        "started": started.isoformat(timespec="seconds"),
        "status": "running",
        "inputs": inputs,
        "parameters": parameters,
        # whether influencers may be shown by name, and on what legal basis
        "influencer_naming": naming_record(cfg.privacy),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
        "jobs": jobs,
        "steps": {},
    }
    if resume is not None:
        manifest["resumed"] = started.isoformat(timespec="seconds")
    _write_json(manifest_path, manifest)

    # which steps keep an earlier result (resume): ok before, same fingerprint, and nothing
    # upstream re-executed
    planned_ids = {s.id for s in planned}
    keep: set[str] = set()
    for s in planned:
        before = previous.get(s.id, {})
        ups = [u for u in (*s.needs, *s.after) if u in planned_ids]
        if (
            before.get("status") in ("ok", "kept")
            and before.get("fingerprint") == fingerprints[s.id]
            and all(u in keep for u in ups)
        ):
            keep.add(s.id)

    env = _blas_env(jobs)
    status: dict[str, str] = {}
    records: dict[str, dict[str, object]] = {}
    failures: dict[str, NotebookFailure] = {}
    try:
        for s in planned:
            if s.id in keep:
                records[s.id] = {**previous[s.id], "status": "kept"}
                status[s.id] = "ok"
                on_event and on_event("kept", s, 0.0)
        # the longest chain of work first: a step that much waits on is started before one
        # that nothing waits on (the order changes when a result is ready, never what it is)
        rank = critical_path(planned, _previous_steps(root, run_dir, "seconds"))
        peaks = _previous_steps(root, run_dir, "peak_rss") if max_memory else {}

        def fits(s: Step) -> bool:
            """Whether ``s`` may start beside the running steps within ``max_memory``."""
            if not max_memory or not running:
                return True
            busy = sum(peaks.get(r.id, 0.0) for r, _ in running.values())
            return busy + peaks.get(s.id, 0.0) <= max_memory

        pending = sorted((s for s in planned if s.id not in keep), key=lambda s: -rank[s.id])
        running: dict[Future, tuple[Step, float]] = {}
        with _kernel_env(env), ThreadPoolExecutor(max_workers=jobs) as pool:
            while pending or running:
                progressed = False
                for s in list(pending):
                    blocked = [n for n in s.needs if status.get(n) in ("failed", "skipped")]
                    if blocked:
                        pending.remove(s)
                        status[s.id] = "skipped"
                        records[s.id] = {
                            "notebook": s.notebook,
                            "status": "skipped",
                            "reason": f"needs failed step(s) {', '.join(blocked)}",
                            "fingerprint": fingerprints[s.id],
                        }
                        on_event and on_event("skipped", s, 0.0)
                        progressed = True
                        continue
                    waits = [u for u in (*s.needs, *s.after) if u in planned_ids]
                    if len(running) < jobs and all(u in status for u in waits) and fits(s):
                        pending.remove(s)
                        on_event and on_event("start", s, 0.0)
                        fut = pool.submit(_execute, s, notebooks_dir, root, run_dir, kernel_name)
                        running[fut] = (s, time.perf_counter())
                        progressed = True
                if progressed and pending:
                    continue  # a skip may unblock or skip others at once
                if not running:
                    if pending:  # only a bad sequence (a cycle) can leave steps waiting
                        raise RoxError(
                            f"steps {[s.id for s in pending]} wait on each other",
                            rule="steps form a sequence without cycles",
                            fix="Fix the Step definitions in rox_helpers/pipeline.py.",
                        )
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: running[f][0].id):
                    s, t0 = running.pop(fut)
                    secs = time.perf_counter() - t0
                    exc = fut.exception()
                    rec: dict[str, object] = {
                        "notebook": s.notebook,
                        "seconds": round(secs, 2),
                        "fingerprint": fingerprints[s.id],
                    }
                    peak = run_dir / "logs" / f"{s.id}.peak_rss"
                    if peak.is_file():  # written by a forked kernel as it ends
                        rec["peak_rss"] = int(peak.read_text().strip() or 0)
                    if exc is None:
                        status[s.id] = "ok"
                        rec["status"] = "ok"
                        on_event and on_event("done", s, secs)
                    else:
                        fail = _failure_from(exc, s, run_dir / "notebooks" / s.notebook)
                        failures[s.id] = fail
                        status[s.id] = "failed"
                        rec.update(
                            status="failed",
                            cell_index=fail.cell_index,
                            error=f"{fail.ename}: {fail.evalue}",
                        )
                        on_event and on_event("failed", s, secs)
                    records[s.id] = rec
                    manifest["steps"] = {k: records[k] for k in sorted(records)}
                    _write_json(manifest_path, manifest)

        # a resumed run also keeps the records of the earlier steps it did not re-plan
        for s in steps:
            if s.id not in records and s.id in previous:
                records[s.id] = previous[s.id]
        manifest["steps"] = {k: records[k] for k in sorted(records)}
        _write_json(manifest_path, manifest)
        t_render = time.perf_counter()
        report = render_run(run_dir, root, steps=steps, config=cfg)
        manifest = json.loads(manifest_path.read_text())
        manifest["render_seconds"] = round(time.perf_counter() - t_render, 2)
    except BaseException as exc:  # an error of the workbook itself: never leave "running"
        manifest.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:1000])
        _write_json(manifest_path, manifest)
        raise
    failed = [failures[k] for k in sorted(failures)]
    bad = failed or any(r.get("status") not in ("ok", "kept") for r in records.values())
    manifest.update(
        status="failed" if bad else "ok",
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round((datetime.now(UTC) - started).total_seconds(), 2),
    )  # the outputs (report, deck, appendix, PDF) are recorded by render_run
    _write_json(manifest_path, manifest)
    return RunResult(run_dir, report, manifest_path, "failed" if bad else "ok", failed)


@contextmanager
def _kernel_env(env: dict[str, str]):
    """Set the kernels' environment for the run (kernels inherit it when they start)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kernel_manager_for(log_path: Path) -> type:
    """A kernel manager class whose kernel process writes its own output (ipykernel's
    start-up warnings, its shutdown messages) to ``log_path``, not to the terminal that runs
    ``rox run``; cell output goes there too, through papermill."""
    from jupyter_client.manager import AsyncKernelManager

    fork = kernels.fork_enabled()

    class _StepKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            if fork and self.provisioner is None:
                # forked from the warm server (rox_helpers.kernels), which writes the log
                self.kernel_id = self.kernel_id or str(uuid.uuid4())
                self.provisioner = kernels.forked_provisioner_class()(
                    kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
                )
                self.provisioner.log_path = str(log_path)
                return await super().start_kernel(**kw)
            with open(log_path, "a", encoding="utf-8") as out:  # the child keeps its own fd
                kw.setdefault("stdout", out)
                kw.setdefault("stderr", out)
                return await super().start_kernel(**kw)

    return _StepKernelManager


def execute_notebook(
    notebook: Path, executed: Path, parameters: dict, kernel: str, log_path: Path
) -> None:
    """Run ``notebook`` into ``executed`` with papermill; cell output and the kernel's own
    output go to ``log_path``, nothing to the terminal.

    No ``cwd``: papermill changes the process's working directory for it, which is not safe
    across threads (nteract/papermill#473). The notebooks get absolute paths instead.
    """
    import papermill as pm

    with open(log_path, "w", encoding="utf-8") as log:
        pm.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=False,
            log_output=True,
            stdout_file=log,
            stderr_file=log,
            request_save_on_cell_execute=False,
            kernel_manager_class=_kernel_manager_for(log_path),
        )


def _execute(step: Step, notebooks_dir: Path, root: Path, run_dir: Path, kernel: str) -> None:
    """Run one step's notebook (in a worker thread; the kernel is its own process)."""
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    execute_notebook(
        notebooks_dir / step.notebook,
        run_dir / "notebooks" / step.notebook,
        {"ENGAGEMENT": str(root), "RUN_DIR": str(run_dir)},
        kernel,
        logs / f"{step.id}.log",
    )


def sections_for(run_dir: Path, steps: tuple[Step, ...], records: dict) -> list[Section]:
    """The report's sections in the sequence's order, whatever order the steps ran in."""
    out: list[Section] = []
    for s in steps:
        rec = records.get(s.id)
        if rec is None:
            continue
        if rec.get("status") in ("ok", "kept"):
            out.append(Section(s.id, s.title, run_dir / "notebooks" / s.notebook))
        elif rec.get("status") == "failed":
            cell = rec.get("cell_index")
            where = f" in cell {cell}" if cell is not None else ""
            out.append(Section(s.id, s.title, None, error=f"{rec.get('error', '')}{where}"))
        else:
            out.append(Section(s.id, s.title, None, error=str(rec.get("reason", "not run"))))
    return out


def render_run(
    run_dir: str | Path,
    engagement: str | Path | None = None,
    *,
    steps: tuple[Step, ...] = STEPS,
    config: EngagementConfig | None = None,
) -> Path:
    """(Re-)render a run's report from its folder: the executed notebooks, the findings with
    the engagement's ``review.yml`` applied, and the approval state (DRAFT until signed off,
    and again after any change). Records the review and the approval in the manifest.
    ``rox render`` and ``rox signoff`` call it; so does the end of ``rox run``."""
    from rox_helpers.review import apply_review, approval_digest, approval_state, load_review

    run_dir = Path(run_dir)
    root = Path(engagement) if engagement is not None else run_dir.parent.parent
    cfg = config or load_engagement_config(root)
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    reviewed = apply_review(load_findings(run_dir), load_review(root))
    state = approval_state(manifest, approval_digest(run_dir, root))
    # the Excel appendix (tens of thousands of cells through openpyxl) in a process of its
    # own while this one renders the report, the deck and (in Chromium) the PDF
    from rox_helpers.deliverables import attempt_appendix

    appendix = (
        kernels.submit(attempt_appendix, run_dir, cfg, state) if kernels.fork_enabled() else None
    )
    # "Since the last run": the diff against the previous complete run, when something changed
    from rox_helpers.rundiff import since_last_run

    since = since_last_run(run_dir)
    report = render_report(
        sections_for(run_dir, steps, manifest.get("steps", {})),
        cfg,
        run_dir / "report.html",
        slug=root.name,
        run_id=run_dir.name,
        findings=reviewed.by_step,
        approval=state,
        hidden=len(reviewed.hidden),
        since_last=since.html if since else None,
    )
    # the deck, the Excel appendix and the PDF beside the report, in the same review and
    # approval state; one that cannot be made is recorded with its message, never fails
    from rox_helpers.deliverables import manifest_outputs, render_deliverables

    made = render_deliverables(
        run_dir,
        cfg,
        report_html=report,
        findings=reviewed.by_step,
        approval=state,
        appendix=appendix,
    )
    manifest["outputs"] = {"report": "report.html", **manifest_outputs(made, run_dir)}
    manifest.update(review=reviewed.log(), approval=state["text"])
    since and manifest.update(since_last_run=since.record())
    _write_json(manifest_path, manifest)
    return report


def raise_for_failures(result: RunResult) -> None:
    if result.failures:
        raise NotebookRunError(result.failures)
