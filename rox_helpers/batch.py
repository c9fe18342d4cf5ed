"""``rox batch``: run many engagements, one client at a time per process, and summarise.

Each engagement runs with :func:`rox_helpers.pipeline.run_engagement` in a process of its own
(``jobs`` engagements at once), so one client's data, kernels, environment and memory never
meet another's; its run folder, report and deliverables stay under its own ``runs/``. A
failure (a config that does not load, a notebook that fails, anything unexpected) is recorded
and the other engagements still run.

The summary (``summary.csv``; the CLI also prints it) has one row per engagement: the folder,
its status (``ok``; ``failed``: the run finished with failed steps, the report marks them;
``error``: the run could not be made), the time taken, the run folder, the report and the
error. It holds no figures of any client. It is written to ``batch-runs/<timestamp>/`` under
the current directory unless ``out_dir`` says otherwise: not under an engagements folder, so
that ``rox batch engagements/*`` never picks it up as an engagement.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

__all__ = ["BatchEntry", "BatchResult", "find_engagements", "run_batch"]

SUMMARY_COLUMNS = ("engagement", "path", "status", "seconds", "run_dir", "report", "error")
#: the longest error kept in the summary (the run's manifest and logs hold the rest)
MAX_ERROR = 500


@dataclass
class BatchEntry:
    """One engagement of a batch: where it is and how its run went (no figures)."""

    engagement: str
    path: str
    status: str = "pending"
    seconds: float = 0.0
    run_dir: str = ""
    report: str = ""
    error: str = ""


@dataclass
class BatchResult:
    entries: list[BatchEntry]
    summary: Path
    #: arguments that named no engagement (a file, or a folder without any), with the reason
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(e.status == "ok" for e in self.entries)


def find_engagements(paths: Sequence[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The engagement folders named by ``paths``, in order, each once.

    A path is an engagement when it holds ``engagement.yml``; a folder that does not is
    searched one level down (``rox batch engagements``). A path that does not exist is kept,
    so that its run fails with a clear message; files and folders holding no engagement are
    returned as skipped, with the reason.
    """
    found: list[Path] = []
    skipped: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            found.append(p)

    for raw in paths:
        p = Path(raw)
        if not p.exists() or (p / "engagement.yml").is_file():
            add(p)
        elif p.is_dir():
            inner = sorted(c for c in p.iterdir() if (c / "engagement.yml").is_file())
            if inner:
                for c in inner:
                    add(c)
            else:
                skipped.append((str(p), "no engagement.yml in it or in its sub-folders"))
        else:
            skipped.append((str(p), "a file, not an engagement folder"))
    return found, skipped


def _run_one(engagement: str, jobs: int, only: list[str] | None, kwargs: dict) -> dict:
    """Run one engagement (in a worker process); never raises."""
    from rox_helpers.errors import RoxError
    from rox_helpers.pipeline import run_engagement

    t0 = time.perf_counter()
    out = {"status": "error", "run_dir": "", "report": "", "error": ""}
    try:
        if not Path(engagement).exists():
            raise RoxError(
                f"{engagement} does not exist",
                file=engagement,
                rule="rox batch takes engagement folders",
                fix="Check the path (or the glob) on the command line.",
            )
        res = run_engagement(engagement, jobs=jobs, only=only, **kwargs)
        out.update(
            status=res.status,
            run_dir=str(res.run_dir),
            report=str(res.report) if res.report else "",
            error="; ".join(
                f"{f.notebook}"
                + (f" cell {f.cell_index}" if f.cell_index is not None else "")
                + f": {f.ename}: {f.evalue}"
                for f in res.failures
            ),
        )
    except RoxError as exc:
        problems = [
            " ".join(x for x in (p.column, p.message) if x)
            for p in getattr(exc, "problems", None) or []
            if p.severity == "error"
        ]
        fix = exc.details().get("fix")
        out["error"] = " ".join(
            [exc.message, *[f"{p};" for p in problems[:3]], f"(fix: {fix})" if fix else ""]
        )
    except Exception as exc:  # anything else: recorded, the batch goes on
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["error"] = " ".join(str(out["error"]).split())[:MAX_ERROR]
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def new_batch_dir(base: str | Path = "batch-runs") -> Path:
    """``<base>/<YYYYmmdd-HHMMSS>``, never an existing folder."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        cand = base / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            cand.mkdir()
        except FileExistsError:
            continue
        return cand
    raise RuntimeError(f"could not create a new batch folder under {base}")


def write_summary(entries: Sequence[BatchEntry], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(SUMMARY_COLUMNS))
        w.writeheader()
        for e in entries:
            w.writerow(asdict(e))
    return path


def run_batch(
    paths: Sequence[str | Path],
    *,
    jobs: int = 1,
    step_jobs: int | None = None,
    only: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    on_event: Callable[[str, BatchEntry], None] | None = None,
    run_kwargs: dict | None = None,
) -> BatchResult:
    """Run every engagement of ``paths`` and write ``summary.csv``.

    Parameters
    ----------
    paths : sequence of str or Path
        Engagement folders, or folders holding engagements (see :func:`find_engagements`).
    jobs : int, default=1
        Engagements run at once, each in its own process.
    step_jobs : int, optional
        Steps each engagement runs at once; by default the cores shared out between the
        engagements (``cores // jobs``, at least 1).
    only : sequence of str, optional
        Passed to each run: these steps and what they need.
    out_dir : str or Path, optional
        The batch folder; ``batch-runs/<timestamp>/`` under the current directory by default.
    on_event : callable, optional
        ``on_event(event, entry)`` with ``start`` or ``done``, from the calling thread.
    run_kwargs : dict, optional
        More keyword arguments for :func:`~rox_helpers.pipeline.run_engagement`
        (``notebooks_dir``, ``steps``); must pickle.

    Returns
    -------
    BatchResult
        The entries in the order of ``paths`` and the summary's path; ``ok`` is False when
        any engagement did not finish ``ok``.
    """
    found, skipped = find_engagements(paths)
    jobs = max(1, int(jobs))
    per = step_jobs or max(1, (os.cpu_count() or 1) // jobs)
    out = Path(out_dir) if out_dir is not None else new_batch_dir()
    out.mkdir(parents=True, exist_ok=True)
    entries = [BatchEntry(p.name, str(p)) for p in found]
    only_list = [str(o) for o in only] if only else None
    kwargs = dict(run_kwargs or {})
    if entries:
        # spawn: a fresh interpreter per engagement (no state, threads or env inherited)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(entries)), mp_context=ctx, max_tasks_per_child=1
        ) as pool:
            todo = list(enumerate(entries))
            running: dict[Future, int] = {}
            while todo or running:
                while todo and len(running) < jobs:
                    i, e = todo.pop(0)
                    e.status = "running"
                    on_event and on_event("start", e)
                    running[pool.submit(_run_one, e.path, per, only_list, kwargs)] = i
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    e = entries[running.pop(fut)]
                    try:
                        res = fut.result()
                    except Exception as exc:  # the worker process itself died
                        res = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
                    for k, v in res.items():
                        setattr(e, k, v)
                    on_event and on_event("done", e)
                    write_summary(entries, out / "summary.csv")
    summary = write_summary(entries, out / "summary.csv")
    return BatchResult(entries, summary, skipped)
