"""``rox``: the command line, thin over the library.

Commands: ``new`` (scaffold an engagement), ``validate`` (load and check the
data, no analysis), ``run`` (notebooks and report), ``sample`` (generate the
bundled sample engagement's data).  Every RoxError is printed as its fields
(file, column, rule, fix) with exit code 1; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rox_helpers.errors import ConfigError, DataValidationError, Problem, RoxError

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
) -> None:
    """Run the notebooks into a new runs/<timestamp>/ folder and render the report."""
    import time

    from rox_helpers.errors import NotebookRunError
    from rox_helpers.pipeline import STEPS, plan_steps, raise_for_failures, run_engagement

    t0 = time.perf_counter()
    try:
        total = len(plan_steps(STEPS, only))
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
    try:
        result = run_engagement(
            engagement, jobs=jobs, only=only or None, resume=resume, on_event=on_event
        )
        console.print(f"Run folder: {result.run_dir}")
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
) -> None:
    """Re-render a run's report with the engagement's review.yml applied (no re-run)."""
    from rox_helpers.pipeline import render_run

    try:
        _need_run(run_dir)
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
    if not (run_dir / "manifest.json").is_file():
        raise RoxError(
            f"{run_dir} is not a run folder (no manifest.json)",
            file=str(run_dir),
            rule="a run folder",
            fix="Pass a folder under <engagement>/runs/, e.g. the one `rox run` printed.",
        )


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
