"""``rox``: the command line, thin over the library.

Commands: ``new`` (scaffold an engagement), ``validate`` (load and check the
data, no analysis), ``run`` (notebooks and report), ``sample`` (generate the
bundled sample engagement's data), ``diff`` (what moved between two runs),
``batch`` (run many engagements).  Every RoxError is printed as its fields
(file, column, rule, fix) with exit code 1; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rox_helpers.errors import ConfigError, DataValidationError, Problem, RoxError

# papermill validates notebooks with nbformat, nbformat with jsonschema, and jsonschema, when
# the rfc3987-syntax package is installed (JupyterLab's dependencies bring it), builds some
# forty grammars for its "iri" formats as it is imported: about 1 s at the start of every
# `rox run`, before the first step can start. No notebook schema has those formats; the
# command does without them (jsonschema then skips that check, as it does when the package
# is absent).
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def parse_bytes(text: str) -> int:
    """``6G``, ``6GiB``, ``512M``, ``2.5g`` or a number of bytes, as bytes (powers of 1024)."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not m:
        raise RoxError(
            f"--max-memory {text!r} is not an amount of memory",
            rule="a number with K, M, G or T",
            fix="Write it like 6G or 512M.",
        )
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="ROX Workbook: Return on Experience engagements, from client files to client report.",
)
console = Console(stderr=False, soft_wrap=True)  # paths are never broken across lines
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def _problems_table(problems: list[Problem], title: str) -> Table:
    """Problems as a table that stays readable in an 80-column terminal: where, rows, what, fix."""
    table = Table(title=title, show_lines=True, expand=True)
    table.add_column("", width=8, no_wrap=True)
    table.add_column("where", ratio=2, overflow="fold")
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("problem and fix", ratio=5, overflow="fold")
    colour = {"error": "red", "warning": "yellow", "info": "blue"}
    for p in problems:
        where = "\n".join(
            x
            for x in (
                f"[bold]{p.table}[/]" if p.table else "",
                Path(p.file).name if p.file else "",
                f"[cyan]{p.column}[/]" if p.column else "",
                f"[dim]{p.rule}[/]" if p.rule else "",
            )
            if x
        )
        what = p.message + (f"\n[green]fix:[/] {p.fix}" if p.fix else "")
        table.add_row(
            f"[{colour.get(p.severity, 'white')}]{p.severity}[/]",
            where,
            f"{p.n_rows:,}" if p.n_rows else "",
            what,
        )
    return table


def _fail(exc: RoxError) -> None:
    if _state["debug"]:
        raise exc
    problems = getattr(exc, "problems", None)
    if problems:
        err_console.print(f"[bold red]Error:[/] {exc.message}")
        err_console.print(_problems_table(problems, "Problems"))
    else:
        err_console.print(f"[bold red]Error:[/] {exc.message}")
        for k, v in exc.details().items():
            err_console.print(f"  [bold]{k}:[/] {v}")
    raise typer.Exit(1)


@app.command()
def new(
    slug: Annotated[str, typer.Argument(help="Folder name for the engagement, e.g. acme-2026.")],
    from_data: Annotated[
        Path | None,
        typer.Option("--from-data", help="Folder of client files to inspect and map."),
    ] = None,
    root: Annotated[Path, typer.Option(help="Where engagements live.")] = Path("engagements"),
    client: Annotated[str | None, typer.Option(help="Client name.")] = None,
) -> None:
    """Scaffold engagements/<slug>/ (optionally proposing a mapping from client files)."""
    from rox_helpers.scaffold import new_engagement

    try:
        res = new_engagement(root, slug, client_name=client, from_data=from_data)
    except RoxError as exc:
        _fail(exc)
        return
    console.print(f"[green]Created[/] {res.path}")
    if res.proposals:
        t = Table(title="Proposed column mapping (review every row in engagement.yml)")
        for col in ("table", "file", "canonical", "client column", "confidence", "why"):
            t.add_column(col, overflow="fold")
        for p in res.proposals:
            conf = f"{p.confidence:.2f}"
            t.add_row(
                p.table,
                p.file,
                p.canonical,
                p.client_column,
                f"[yellow]{conf}[/]" if p.review else conf,
                p.reason,
            )
        console.print(t)
    for note in res.notes:
        console.print(f"[blue]note:[/] {note}")
    console.print(f"Next: edit {res.config_path}, then run [bold]rox validate {res.path}[/].")


@app.command()
def validate(
    engagement: Annotated[Path, typer.Argument(help="The engagement folder.")],
) -> None:
    """Load, map and validate the engagement's data without running any analysis."""
    from rox_helpers.data import load_engagement

    try:
        data = load_engagement(engagement)
    except (ConfigError, DataValidationError) as exc:
        _fail(exc)
        return
    except RoxError as exc:
        _fail(exc)
        return
    q = data.quality_table()
    t = Table(title=f"Tables of {engagement}")
    for col in q.columns:
        t.add_column(col, justify="right" if q[col].dtype.kind in "iuf" else "left")
    for row in q.itertuples(index=False):
        t.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row])
    console.print(t)
    if data.problems:
        console.print(_problems_table(data.problems, "Problems (rows quarantined, not lost)"))
    errors = [p for p in data.problems if p.severity == "error"]
    console.print(
        "[green]Valid:[/] the engagement can run." if not errors else "[red]Not valid.[/]"
    )
    if errors:
        raise typer.Exit(1)


@app.command()
def run(
    engagement: Annotated[Path, typer.Argument(help="The engagement folder.")],
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Steps run at once (default: the cores)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run this step (e.g. 03) and what it needs; repeatable."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Complete this earlier run in place: re-run what failed or changed.",
        ),
    ] = None,
    per: Annotated[
        str | None,
        typer.Option(
            "--per",
            help="Also one report per unit (or region, or any column of the units table).",
        ),
    ] = None,
    max_memory: Annotated[
        str | None,
        typer.Option(
            "--max-memory",
            help="Memory the steps may take together, e.g. 6G: a step waits rather than "
            "start beside others when their peaks in the last run would add up to more.",
        ),
    ] = None,
) -> None:
    """Run the notebooks into a new runs/<timestamp>/ folder and render the report."""
    import time

    from rox_helpers.errors import NotebookRunError
    from rox_helpers.pipeline import STEPS, plan_steps, raise_for_failures, run_engagement

    t0 = time.perf_counter()
    try:
        total = len(plan_steps(STEPS, only))
        limit = parse_bytes(max_memory) if max_memory else None
        if per:  # a wrong column fails now, not after the notebooks
            from rox_helpers.units import check_per

            check_per(engagement, per)
    except RoxError as exc:
        _fail(exc)
        return
    finished = 0
    colour = {"done": "green", "kept": "cyan", "failed": "red", "skipped": "yellow"}

    def on_event(event: str, step, secs: float) -> None:
        nonlocal finished
        clock = f"[dim]{time.perf_counter() - t0:6.1f} s[/]"
        if event == "start":
            console.print(f"{clock} [bold]{step.id}[/] {step.title} ... started")
            return
        finished += 1
        what = {"done": f"done in {secs:.1f} s", "failed": f"failed after {secs:.1f} s"}.get(
            event, "kept from the earlier run" if event == "kept" else "skipped"
        )
        console.print(f"{clock} [bold]{step.id}[/] [{colour[event]}]{what}[/] ({finished}/{total})")

    result = None
    per_error: RoxError | None = None
    try:
        result = run_engagement(
            engagement,
            jobs=jobs,
            only=only or None,
            resume=resume,
            on_event=on_event,
            max_memory=limit,
        )
        console.print(f"Run folder: {result.run_dir}")
        if per:  # from what the run made, even when a step failed
            try:
                _render_per(result.run_dir, per, jobs)
            except RoxError as exc:  # said after the main report's paths
                per_error = exc
        raise_for_failures(result)
    except NotebookRunError as exc:
        if result is not None and result.report:
            console.print(f"Report (with the failed section marked): {result.report}")
        _fail(exc)
        return
    except RoxError as exc:
        _fail(exc)
        return
    console.print(f"[bold green]Report:[/] {result.report}")
    _print_outputs(result.run_dir)
    _print_per(result.run_dir)
    if per_error is not None:
        _fail(per_error)


def _render_per(run_dir: Path, per: str, jobs: int | None) -> None:
    """One report per unit (or region) of a run, with progress; exit 1 if any failed."""
    import time

    from rox_helpers.unit_reports import render_per

    t0 = time.perf_counter()

    def on_event(event: str, r) -> None:
        if event == "start":
            return
        colour = "green" if event == "ok" else "red"
        clock = f"[dim]{time.perf_counter() - t0:6.1f} s[/]"
        why = f": {r.error}" if r.error else ""
        console.print(f"{clock} {per} [bold]{r.value}[/] [{colour}]{event}[/] ({r.seconds} s){why}")

    res = render_per(run_dir, per, jobs=jobs, on_event=on_event)
    console.print(
        f"[bold green]Reports per {per}:[/] {len(res.reports) - res.n_failed} of "
        f"{len(res.reports)} made in {res.seconds:.1f} s; index: {res.index}"
    )
    if res.n_failed:
        raise RoxError(
            f"{res.n_failed} report(s) per {per} failed",
            file=str(res.index),
            rule="every unit's report renders",
            fix="See the error beside each failed unit in the index and its log.txt.",
        )


def _print_per(run_dir: Path) -> None:
    """Where the reports per unit of a run are, when it has any."""
    import json

    for name, rec in json.loads((run_dir / "manifest.json").read_text()).get("per", {}).items():
        console.print(f"Reports per {name}: {run_dir / rec['index']}")


def _print_outputs(run_dir: Path) -> None:
    """The deliverables beside the report (deck, appendix, PDF), or why one is missing."""
    import json

    outputs = json.loads((run_dir / "manifest.json").read_text()).get("outputs", {})
    for name, out in outputs.items():
        if name == "report":
            continue
        if isinstance(out, dict):
            console.print(f"[yellow]{name.capitalize()} not made:[/] {out.get('error', '')}")
        else:
            console.print(f"{name.capitalize()}: {run_dir / out}")


@app.command()
def render(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (engagements/<slug>/runs/<ts>).")],
    per: Annotated[
        str | None,
        typer.Option(
            "--per",
            help="Only the reports per unit (or region, or any column of the units table).",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Reports per unit made at once."),
    ] = None,
) -> None:
    """Re-render a run's report with the engagement's review.yml applied (no re-run); with
    --per, make one report per unit (or region) of the run instead."""
    from rox_helpers.pipeline import render_run

    try:
        _need_run(run_dir)
        if per:
            _render_per(run_dir, per, jobs)
            return
        report = render_run(run_dir)
    except RoxError as exc:
        _fail(exc)
        return
    _review_summary(run_dir)
    console.print(f"[bold green]Report:[/] {report}")
    _print_outputs(run_dir)


@app.command()
def signoff(
    run_dir: Annotated[Path, typer.Argument(help="The run folder to approve.")],
    by: Annotated[str, typer.Option("--by", help="Who approves it (recorded in the manifest).")],
) -> None:
    """Approve a run: record who, when and the hash of what they approved; the report loses
    its DRAFT marking until anything changes."""
    from rox_helpers.pipeline import render_run
    from rox_helpers.review import sign_off

    try:
        _need_run(run_dir)
        record = sign_off(run_dir, run_dir.parent.parent, by)
        report = render_run(run_dir)
    except RoxError as exc:
        _fail(exc)
        return
    console.print(
        f"[bold green]Approved[/] by {record['by']} at {record['at']} "
        f"(sha256 {record['digest'][:12]}...). Report: {report}"
    )


def _need_run(run_dir: Path) -> None:
    from rox_helpers.artifacts import read_manifest

    read_manifest(run_dir)


def _review_summary(run_dir: Path) -> None:
    import json

    log = json.loads((run_dir / "manifest.json").read_text()).get("review", {})
    console.print(
        f"Review: {len(log.get('edited', []))} edited, {len(log.get('hidden', []))} hidden."
    )
    for item in log.get("not_applied", []):
        console.print(f"[yellow]Not applied[/] {item['id']}: {item['why']}")


@app.command()
def sample(
    engagement: Annotated[Path, typer.Argument(help="Engagement folder to fill.")] = Path(
        "engagements/sample"
    ),
    seed: Annotated[int | None, typer.Option(help="Seed (default: from engagement.yml).")] = None,
    force: Annotated[bool, typer.Option(help="Regenerate even if the data exists.")] = False,
) -> None:
    """Generate the sample hotel-chain engagement's data (deterministic from the seed)."""
    from rox_helpers.sample import ensure_sample_data

    try:
        path, made = ensure_sample_data(engagement, seed=seed, force=force)
    except RoxError as exc:
        _fail(exc)
        return
    console.print(("Generated" if made else "Up to date:") + f" {path}")


@app.command()
def diff(
    run_a: Annotated[Path, typer.Argument(help="The earlier run folder.")],
    run_b: Annotated[Path, typer.Argument(help="The later run folder.")],
    all_figures: Annotated[
        bool, typer.Option("--all", help="Also list figures that are in one run only.")
    ] = False,
    n_boot: Annotated[
        int, typer.Option("--n-boot", min=100, help="Bootstrap resamples (shared respondents).")
    ] = 2000,
) -> None:
    """What moved from RUN_A to RUN_B: headline figures with an interval on each change,
    the inputs that changed (sha256) and the parameters."""
    from rox_helpers.rundiff import diff_runs, format_change, format_value

    try:
        d = diff_runs(run_a, run_b, n_boot=n_boot)
    except RoxError as exc:
        _fail(exc)
        return
    console.print(f"[bold]{run_a.name}[/] -> [bold]{run_b.name}[/] (change = b - a)")
    for note in d.notes:
        console.print(f"[yellow]note:[/] {note}")
    t = Table(title="Inputs (by sha256)")
    for col in ("table", "path", "status", "sha256 a", "sha256 b"):
        t.add_column(col, overflow="fold")
    colour = {"same": "dim", "changed": "yellow", "added": "green", "removed": "red"}
    for r in d.inputs.itertuples():
        t.add_row(
            str(r.table),
            str(r.path),
            f"[{colour[r.status]}]{r.status}[/]",
            str(r.sha256_a or "")[:12],
            str(r.sha256_b or "")[:12],
        )
    console.print(t)
    p = d.parameters[d.parameters["changed"]]
    if len(p):
        t = Table(title="Parameters and code that changed")
        for col in ("kind", "parameter", "a", "b"):
            t.add_column(col, overflow="fold")
        for r in p.itertuples():
            t.add_row(r.kind, r.parameter, str(r.a), str(r.b))
        console.print(t)
    else:
        console.print("Parameters and code: the same.")
    f = d.figures if all_figures else d.figures[d.figures["a"].notna() & d.figures["b"].notna()]
    t = Table(title=f"Headline figures ({d.level:.0%} interval on the change)")
    for col in ("step", "figure", "a", "b", "change (interval)", "basis"):
        t.add_column(col, overflow="fold", justify="right" if col in ("a", "b") else "left")
    for _, r in f.iterrows():
        change = format_change(r)
        t.add_row(
            str(r["step"]),
            str(r["label"]) + (f"\n[dim]{r['note']}[/]" if r["note"] else ""),
            format_value(r["a"], r["unit"]),
            format_value(r["b"], r["unit"]),
            f"[bold]{change}[/]" if r["significant"] else change,
            str(r["method"]),
        )
    console.print(t)
    left = len(d.figures) - len(f)
    if left:
        console.print(f"[dim]{left} figure(s) in one run only; --all lists them.[/]")


@app.command()
def batch(
    engagements: Annotated[
        list[Path],
        typer.Argument(help="Engagement folders (globs welcome), or folders that hold them."),
    ],
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Engagements run at once.")] = 1,
    step_jobs: Annotated[
        int | None,
        typer.Option(
            "--step-jobs", min=1, help="Steps per engagement at once (default: cores/jobs)."
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run this step (e.g. 01) and what it needs; repeatable."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Batch folder for summary.csv (default: ./batch-runs/<ts>)."),
    ] = None,
) -> None:
    """Run many engagements, each in its own process and runs/ folder; carry on past
    failures; write summary.csv (status, duration, report; no figures). Exit 1 if any failed."""
    import time

    from rox_helpers.batch import run_batch

    t0 = time.perf_counter()

    def on_event(event: str, e) -> None:
        clock = f"[dim]{time.perf_counter() - t0:6.1f} s[/]"
        if event == "start":
            console.print(f"{clock} [bold]{e.engagement}[/] started")
        else:
            colour = {"ok": "green", "failed": "red"}.get(e.status, "red")
            console.print(
                f"{clock} [bold]{e.engagement}[/] [{colour}]{e.status}[/] ({e.seconds} s)"
            )

    res = run_batch(
        [str(p) for p in engagements], jobs=jobs, step_jobs=step_jobs, only=only, out_dir=out,
        on_event=on_event,
    )  # fmt: skip
    for path, why in res.skipped:
        console.print(f"[yellow]Skipped[/] {path}: {why}")
    t = Table(title="Batch summary")
    for col in ("engagement", "status", "seconds", "report", "error"):
        t.add_column(col, overflow="fold", justify="right" if col == "seconds" else "left")
    colour = {"ok": "green", "failed": "red", "error": "red"}
    for e in res.entries:
        t.add_row(
            e.engagement,
            f"[{colour.get(e.status, 'yellow')}]{e.status}[/]",
            f"{e.seconds:.1f}",
            e.report,
            e.error,
        )
    console.print(t)
    console.print(f"Summary: {res.summary}")
    if not res.entries:
        console.print("[red]No engagement found.[/]")
    if not res.ok or not res.entries:
        raise typer.Exit(1)
