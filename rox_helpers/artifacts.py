"""Tables and findings handed from one notebook to the next, through the run folder.

A run folder (``engagements/<slug>/runs/<timestamp>/``) holds::

    artifacts/tables/<name>.parquet     tidy tables
    artifacts/findings/<step>.json      findings of one notebook step
    quarantine/<table>.csv              rows that failed validation, with reasons

Later notebooks read these, never another notebook's variables.  Writing is
deterministic (sorted keys, no timestamps inside findings), so the same inputs
give byte-identical findings.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

CONFIDENCE = ("high", "medium", "low")


@dataclass
class Finding:
    """One finding of a notebook step, as the report shows it.

    ``confidence`` is ``high``, ``medium`` or ``low``; ``evidence`` holds the
    numbers behind the headline (with bases), ``so_what`` the implication.
    ``chart`` (optional) names the chart that illustrates it in the deck: the text of
    the notebook heading whose section holds the chart, with ``#k`` for its k-th image
    (``"Hotels: a league table#2"``); empty lets the deck match a heading itself.
    """

    step: str
    headline: str
    evidence: list[str] = field(default_factory=list)
    so_what: str = ""
    confidence: str = "medium"
    chart: str = ""

    def __post_init__(self) -> None:
        if self.confidence not in CONFIDENCE:
            raise ValueError(f"confidence must be one of {CONFIDENCE}, got {self.confidence!r}")


def new_run_dir(engagement: str | Path, *, label: str = "") -> Path:
    """Create ``runs/<YYYYmmdd-HHMMSS>[-label]`` under an engagement; never reuse one."""
    runs = Path(engagement) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{label}" if label else stamp
    for i in range(1000):
        cand = runs / (base if i == 0 else f"{base}-{i}")
        try:
            cand.mkdir()
        except FileExistsError:
            continue
        for sub in ("artifacts/tables", "artifacts/findings", "quarantine", "notebooks"):
            (cand / sub).mkdir(parents=True, exist_ok=True)
        return cand
    raise RuntimeError(f"could not create a new run folder under {runs}")


def resolve_run_dir(engagement: str | Path, run_dir: str | Path | None) -> Path:
    """The run folder a notebook writes to.

    ``run_dir`` (the papermill parameter) wins; then the ``ROX_RUN_DIR``
    environment variable; otherwise a new ``runs/<ts>-interactive`` folder, so
    a notebook opened in JupyterLab never writes into an earlier run.
    """
    chosen = run_dir or os.environ.get("ROX_RUN_DIR")
    if chosen:
        path = Path(chosen)
        for sub in ("artifacts/tables", "artifacts/findings", "quarantine", "notebooks"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return path
    return new_run_dir(engagement, label="interactive")


def _table_path(run_dir: str | Path, name: str) -> Path:
    path = Path(run_dir) / "artifacts" / "tables" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_table(run_dir: str | Path, name: str, df: pd.DataFrame) -> Path:
    """Write a tidy table to ``artifacts/tables/<name>.parquet``."""
    path = _table_path(run_dir, name)
    df.to_parquet(path, index=False)
    return path


def load_table(run_dir: str | Path, name: str) -> pd.DataFrame:
    """Read a table another step saved; a clear error names the step to run first."""
    path = Path(run_dir) / "artifacts" / "tables" / f"{name}.parquet"
    if not path.is_file():
        raise FileNotFoundError(
            f"Artifact table {name!r} not found in {path.parent}. Run the notebook that "
            "produces it first (rox run runs them in order)."
        )
    return pd.read_parquet(path)


#: memory DuckDB may use in each step's kernel before it spills to disk (``memory_limit``;
#: its default is 80% of the machine's memory, per kernel, and two kernels run at once)
DUCKDB_MEMORY_LIMIT = os.environ.get("ROX_DUCKDB_MEMORY_LIMIT", "1536MB")


def open_interactions(run_dir: str | Path):
    """The setup step's interaction log as an Ibis table over DuckDB (not loaded into
    memory), or None when the engagement has no log. DuckDB keeps to
    :data:`DUCKDB_MEMORY_LIMIT` and spills the rest to a temporary folder."""
    path = Path(run_dir) / "artifacts" / "tables" / "interactions.parquet"
    if not path.is_file():
        return None
    import tempfile

    import ibis

    spill = Path(tempfile.gettempdir()) / f"rox-duckdb-{os.getpid()}"
    con = ibis.duckdb.connect(memory_limit=DUCKDB_MEMORY_LIMIT, temp_directory=str(spill))
    return con.read_parquet(str(path), table_name="interactions")


def log_withheld(run_dir: str | Path) -> str | None:
    """Where the interaction log stayed when step 00 brought back only features and
    aggregates (``extract: features``): the source as the data-quality table names it
    (backend and table, no credentials), or None when the run has the log or no log at
    all. Read from the ``artifacts/interactions_extract.json`` marker step 00 writes."""
    path = Path(run_dir) / "artifacts" / "interactions_extract.json"
    if not path.is_file():
        return None
    marker = json.loads(path.read_text())
    if marker.get("extract") != "features":
        return None
    return str(marker.get("source") or "the client's engine")


#: the per-customer summaries of a withheld log (segmentation.LogSummaries), as tables
LOG_SUMMARY_TABLES = ("features", "outcomes", "early", "later")


def save_log_summaries(run_dir: str | Path, summaries) -> str | None:
    """Write a :class:`~rox_helpers.segmentation.LogSummaries` as tables
    ``log_summary_<part>`` (customer_id a column); returns its split date as text."""
    for part in LOG_SUMMARY_TABLES:
        frame = getattr(summaries, part)
        if frame is not None:
            table = frame.reset_index()
            table.attrs = {}
            save_table(run_dir, f"log_summary_{part}", table)
    return None if summaries.split is None else summaries.split.isoformat()


def load_log_summaries(run_dir: str | Path):
    """The per-customer summaries step 00 computed in the client's engine when the log
    stayed there (:func:`log_withheld`), as a
    :class:`~rox_helpers.segmentation.LogSummaries`; None otherwise."""
    if log_withheld(run_dir) is None or not has_table(run_dir, "log_summary_features"):
        return None
    from rox_helpers.segmentation import LogSummaries

    def part(name: str) -> pd.DataFrame | None:
        if not has_table(run_dir, f"log_summary_{name}"):
            return None
        return load_table(run_dir, f"log_summary_{name}").set_index("customer_id")

    marker = json.loads((Path(run_dir) / "artifacts" / "interactions_extract.json").read_text())
    split = marker.get("split")
    return LogSummaries(
        features=part("features"),
        outcomes=part("outcomes"),
        early=part("early"),
        later=part("later"),
        split=None if split is None else pd.Timestamp(split),
    )


def load_monthly_activity(run_dir: str | Path) -> pd.DataFrame | None:
    """Step 06's customer x month activity (:func:`rox_helpers.actions.monthly_activity`,
    its ``attrs`` included) as step 00 aggregated it in the client's engine when the log
    stayed there; None otherwise."""
    if log_withheld(run_dir) is None or not has_table(run_dir, "interactions_customer_month"):
        return None
    marker = json.loads((Path(run_dir) / "artifacts" / "interactions_extract.json").read_text())
    span = marker["activity"]
    activity = load_table(run_dir, "interactions_customer_month")
    activity["month"] = activity["month"].dt.to_period("M")
    activity.attrs.update(
        first=pd.Timestamp(span["first"]),
        last=pd.Timestamp(span["last"]),
        lead_stages=list(span["lead_stages"]),
    )
    return activity


def log_skip_reason(run_dir: str | Path, otherwise: str) -> str:
    """Why a section that needs the row-level interaction log is skipped: when the log
    stayed in the client's engine (``extract: features``), that, naming the source and how
    to bring the rows; ``otherwise`` (the section's own reason) when the run has the log or
    the engagement has none."""
    source = log_withheld(run_dir)
    if source is None:
        return otherwise
    return (
        f"needs the row-level interaction log, which stayed in the client's engine ({source}): "
        "with extract: features only per-customer features, customer x month activity and "
        "unit x month aggregates came back. Set data.interactions.extract: log in "
        "engagement.yml to bring the validated, pseudonymised rows into the run."
    )


def read_manifest(
    run_dir: str | Path,
    *,
    rule: str = "a run folder",
    fix: str = "Pass a folder under <engagement>/runs/, e.g. the one `rox run` printed.",
) -> dict:
    """A run folder's ``manifest.json``; a :class:`RoxError` naming the folder when it is not
    a run folder (``rule`` and ``fix`` say what the command expected)."""
    from rox_helpers.errors import RoxError

    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise RoxError(
            f"{run_dir} is not a run folder (no manifest.json)",
            file=str(run_dir),
            rule=rule,
            fix=fix,
        )
    return json.loads(path.read_text())


def save_model(run_dir: str | Path, name: str, model: object) -> Path:
    """Keep a fitted model for later steps of the same run (``artifacts/models/<name>.pkl``),
    so a step that needs it (the business case needs the linkage model's bootstrap draws)
    reuses it instead of fitting it again. Pickle: read back only from a run folder this
    workbook wrote, never from a file someone sent."""
    import pickle

    path = Path(run_dir) / "artifacts" / "models" / f"{name}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pkl.tmp")
    tmp.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)
    return path


def load_model(run_dir: str | Path, name: str) -> object | None:
    """A model an earlier step of this run kept with :func:`save_model`, or ``None``."""
    import pickle

    path = Path(run_dir) / "artifacts" / "models" / f"{name}.pkl"
    if not path.is_file():
        return None
    return pickle.loads(path.read_bytes())  # written by this run (see save_model)


def has_table(run_dir: str | Path, name: str) -> bool:
    return (Path(run_dir) / "artifacts" / "tables" / f"{name}.parquet").is_file()


def save_findings(run_dir: str | Path, step: str, findings: list[Finding], **extra) -> Path:
    """Write the findings of a step (and small extra facts) to ``findings/<step>.json``."""
    path = Path(run_dir) / "artifacts" / "findings" / f"{step}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # an empty optional ``chart`` is left out: findings written before it existed stay the same
    rows = [{k: v for k, v in asdict(f).items() if k != "chart" or v} for f in findings]
    payload = {"step": step, "findings": rows, **extra}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


def load_findings(run_dir: str | Path, step: str | None = None) -> dict[str, dict]:
    """Findings of one step, or of every step (``{step: payload}``)."""
    folder = Path(run_dir) / "artifacts" / "findings"
    paths = [folder / f"{step}.json"] if step else sorted(folder.glob("*.json"))
    return {p.stem: json.loads(p.read_text()) for p in paths if p.is_file()}


def write_quarantine(run_dir: str | Path, table: str, rows: pd.DataFrame) -> Path:
    """Write quarantined rows (already pseudonymised) with their reasons."""
    path = Path(run_dir) / "quarantine" / f"{table}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(path, index=False)
    return path


SETUP_TABLES = ("customers", "interactions", "cx_survey", "employees", "units", "network")


def persist_engagement_data(run_dir: str | Path, data) -> dict[str, int]:
    """Write the canonical (pseudonymised, validated) tables, the customer features and the
    quarantine of a load.

    Returns the number of rows quarantined per table.  ``data`` is an
    :class:`~rox_helpers.data.EngagementData`.
    """
    from rox_helpers.features import features_frame

    for name, df in data.tables.items():
        save_table(run_dir, name, df)
    if data.interactions is not None:
        from rox_helpers.engines import unit_month_aggregates, write_parquet

        withheld = getattr(data, "extract", "log") == "features"
        if withheld:
            # the log stays in the client's engine: only aggregates (and, below, the customer
            # features and what the segmentation needs of it) come back; steps needing rows
            # say they need extract: log
            save_table(run_dir, "interactions_unit_month", unit_month_aggregates(data.interactions))
        else:
            # the validated, pseudonymised log, streamed by the engine (never through pandas
            # on DuckDB; record batches from a client's engine), renamed into place when done
            write_parquet(data.interactions, _table_path(run_dir, "interactions"))
        feats = features_frame(
            data.interactions,
            customers=data.tables.get("customers"),
            digital_channels=data.config.journey.digital_channels,
        )
        save_table(run_dir, "customer_features", feats)
        if withheld:
            from rox_helpers.segmentation import log_summaries

            summaries = log_summaries(
                data.interactions,
                customers=data.tables.get("customers"),
                digital_channels=data.config.journey.digital_channels,
                precomputed=feats,
            )
            split = save_log_summaries(run_dir, summaries)
            # step 06's customer x month activity, aggregated in the engine
            from rox_helpers.actions import monthly_activity

            activity = monthly_activity(
                data.interactions, digital_channels=data.config.journey.digital_channels
            )
            table = activity.assign(month=activity["month"].dt.to_timestamp())
            table.attrs = {}  # time stamps: kept in the marker below (parquet takes JSON attrs)
            save_table(run_dir, "interactions_customer_month", table)
            marker = {
                "extract": "features",
                "source": data.reports["interactions"].file,
                "split": split,
                "activity": {
                    "first": activity.attrs["first"].isoformat(),
                    "last": activity.attrs["last"].isoformat(),
                    "lead_stages": list(activity.attrs["lead_stages"]),
                },
            }
            (Path(run_dir) / "artifacts" / "interactions_extract.json").write_text(
                json.dumps(marker) + "\n"
            )
    # what the privacy step found and which collected fields are used (step 06's data
    # respect), so later steps need not load the engagement again
    from rox_helpers.actions import collected_fields

    save_table(run_dir, "collected_fields", collected_fields(data.reports, data.tables))
    path = Path(run_dir) / "artifacts" / "load_privacy.json"
    path.write_text(json.dumps(asdict(data.privacy), indent=2, sort_keys=True, default=str) + "\n")
    counts = {}
    for table, rows in data.quarantine.items():
        write_quarantine(run_dir, table, rows)
        counts[table] = len(rows)
    if data.interactions_quarantine is not None:
        from rox_helpers.engines import write_csv

        # a bounded sample of the failing rows (its `sample` column says so); the count is
        # of every failing row
        n = data.reports["interactions"].rows_quarantined
        if n:
            path = Path(run_dir) / "quarantine" / "interactions.csv"
            write_csv(data.interactions_quarantine, path)
            counts["interactions"] = n
    return counts


def load_privacy(run_dir: str | Path):
    """Step 00's privacy report of the load (identifiers handled, consent counts) as an
    object with attributes, or ``None`` when the run has none."""
    from types import SimpleNamespace

    path = Path(run_dir) / "artifacts" / "load_privacy.json"
    return SimpleNamespace(**json.loads(path.read_text())) if path.is_file() else None


def ensure_tables(engagement: str | Path, run_dir: str | Path) -> bool:
    """Make sure the run holds the setup step's tables; load the engagement if not.

    A notebook opened on its own (in JupyterLab, or by nbval) then still runs: it gets the
    same canonical tables the setup step would have written. Returns True when it loaded.
    """
    if any(has_table(run_dir, t) for t in SETUP_TABLES):
        return False
    from rox_helpers.data import load_engagement

    persist_engagement_data(run_dir, load_engagement(engagement))
    return True


@dataclass
class RunData:
    """What a step reads from the run folder, in the shape of a loaded engagement
    (``config``, ``tables``, ``interactions``), for functions that take one."""

    config: object
    tables: dict[str, pd.DataFrame]
    interactions: object | None


def run_data(engagement: str | Path, run_dir: str | Path, config=None) -> RunData:
    """The setup step's canonical tables and interaction log from ``run_dir`` (loading the
    engagement first if the run has none, e.g. a notebook opened on its own)."""
    from rox_helpers.config import load_engagement_config

    ensure_tables(engagement, run_dir)
    cfg = config or load_engagement_config(engagement)
    tables = {
        n: load_table(run_dir, n)
        for n in SETUP_TABLES
        if n != "interactions" and has_table(run_dir, n)
    }
    return RunData(cfg, tables, open_interactions(run_dir))
