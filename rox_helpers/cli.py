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
) -> None:
    """Run the notebooks into a new runs/<timestamp>/ folder and render the report."""
    from rox_helpers.errors import NotebookRunError
    from rox_helpers.pipeline import raise_for_failures, run_engagement

    def on_event(event: str, step, secs: float) -> None:
        if event == "start":
            console.print(f"[bold]{step.id}[/] {step.title} ...")
        elif event == "done":
            console.print(f"[green]  done[/] in {secs:.1f} s")
        else:
            console.print(f"[red]  failed[/] after {secs:.1f} s")

    try:
        result = run_engagement(engagement, on_event=on_event)
        console.print(f"Run folder: {result.run_dir}")
        raise_for_failures(result)
    except NotebookRunError as exc:
        if result.report:
            console.print(f"Report (with the failed section marked): {result.report}")
        _fail(exc)
        return
    except RoxError as exc:
        _fail(exc)
        return
    console.print(f"[bold green]Report:[/] {result.report}")


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
