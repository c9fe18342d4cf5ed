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
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

CONFIDENCE = ("high", "medium", "low")


@dataclass(frozen=True)
class EvidenceKind:
    """One kind of evidence a finding's headline figure can rest on: ``label`` and
    ``meaning`` are what the report and the deck say (plain English for a partner);
    ``needs_interval`` says whether a figure of this kind must carry a numeric interval
    (the others, such as an exact count, state why none applies)."""

    label: str
    meaning: str
    needs_interval: bool


#: The kinds of evidence, from the most certain to the most conditional on assumptions. Each
#: :class:`Finding` names one (``evidence_kind``); the report's methodology section lists them.
EVIDENCE_KINDS: dict[str, EvidenceKind] = {
    "count": EvidenceKind(
        "Exact count",
        "A count of all the data, not a sample: no sampling error (the data can still be "
        "incomplete or wrongly recorded).",
        needs_interval=False,
    ),
    "survey_estimate": EvidenceKind(
        "Survey estimate",
        "An estimate from the customers or staff who answered, with its 95% sampling "
        "interval: another sample could differ by that much.",
        needs_interval=True,
    ),
    "association": EvidenceKind(
        "Association",
        "Two things that go together in the data (after allowing for what the analysis "
        "states): not proof that one causes the other.",
        needs_interval=True,
    ),
    "within_unit": EvidenceKind(
        "Within-unit change over time",
        "Changes within the same hotels or people over time (fixed effects): rules out fixed "
        "differences between them, so nearer to cause, but not proof.",
        needs_interval=True,
    ),
    "adjusted_comparison": EvidenceKind(
        "Adjusted comparison of joiners and non-joiners",
        "Joiners against comparable non-joiners, before and after joining "
        "(quasi-experimental): a causal effect only under the stated assumptions.",
        needs_interval=True,
    ),
    "prediction": EvidenceKind(
        "Model prediction, checked out of sample",
        "What a model predicts, checked against customers or months it was not fitted on: "
        "its error there is the test of it.",
        needs_interval=False,
    ),
    "grouping": EvidenceKind(
        "Model grouping",
        "Groups a model finds in the data; how stable they are is checked by refitting "
        "on resamples.",
        needs_interval=True,
    ),
    "scenario": EvidenceKind(
        "Scenario under assumptions",
        "What would follow if the stated assumptions hold, simulated with their uncertainty: "
        "not an observed result.",
        needs_interval=True,
    ),
    "score": EvidenceKind(
        "Score by a stated rule",
        "A score, index or ranking computed by a stated rule (thresholds, a baseline): not a "
        "statistical estimate; the measures behind it carry their own bases and intervals.",
        needs_interval=False,
    ),
}


@dataclass
class Finding:
    """One finding of a notebook step, as the report shows it.

    ``confidence`` is ``high``, ``medium`` or ``low``; ``evidence`` holds the
    numbers behind the headline (with bases), ``so_what`` the implication.
    ``chart`` (optional) names the chart that illustrates it in the deck: the text of
    the notebook heading whose section holds the chart, with ``#k`` for its k-th image
    (``"Hotels: a league table#2"``). Empty: the finding has no chart of its own. (Only
    where no finding of a step names a chart, as in runs from before the field existed,
    does the deck match a heading to the headline itself: see
    :func:`rox_helpers.deliverables.chart_for`.) The step notebooks name their charts
    through the ``charts`` argument of their findings builders (:func:`chart_namer`).

    The headline figure's evidence, in fields of their own (the report shows them under the
    finding, in the executive summary and on the deck's slide):

    ``evidence_kind``
        what kind of evidence it rests on: a key of :data:`EVIDENCE_KINDS`.
    ``base``
        what the figure is computed on, a number with its unit (``"14,955 responses"``).
    ``interval``
        its interval (``"95% CI -9.7 to -6.3"``); empty where none applies, and then
        ``no_interval`` says why (``"exact count of every row read"``).

    All three are empty in findings written before they existed (old runs still load and
    render); every findings builder of the package sets them.
    """

    step: str
    headline: str
    evidence: list[str] = field(default_factory=list)
    so_what: str = ""
    confidence: str = "medium"
    chart: str = ""
    evidence_kind: str = ""
    base: str = ""
    interval: str = ""
    no_interval: str = ""

    def __post_init__(self) -> None:
        if self.confidence not in CONFIDENCE:
            raise ValueError(f"confidence must be one of {CONFIDENCE}, got {self.confidence!r}")
        if self.evidence_kind and self.evidence_kind not in EVIDENCE_KINDS:
            raise ValueError(
                f"evidence_kind must be one of {tuple(EVIDENCE_KINDS)}, got {self.evidence_kind!r}"
            )


#: the structured evidence fields of a :class:`Finding` (left out of its json when empty)
EVIDENCE_FIELDS = ("evidence_kind", "base", "interval", "no_interval")


def evidence_problems(finding: Finding | Mapping) -> list[str]:
    """What is missing or inconsistent in a finding's structured evidence (empty: nothing).

    A finding names a kind of :data:`EVIDENCE_KINDS`; its base contains a number; it has an
    interval with a number in it or, where its kind needs none, a stated reason; a kind that
    needs an interval (a survey estimate, an association, ...) has one.
    """
    f = asdict(finding) if isinstance(finding, Finding) else dict(finding)
    kind = str(f.get("evidence_kind") or "")
    base = str(f.get("base") or "").strip()
    interval = str(f.get("interval") or "").strip()
    reason = str(f.get("no_interval") or "").strip()
    out = []
    if kind not in EVIDENCE_KINDS:
        out.append(f"kind of evidence {kind!r} is not one of {', '.join(EVIDENCE_KINDS)}")
    if not re.search(r"\d", base):
        out.append(f"base {base!r} states no number")
    if interval and not re.search(r"\d", interval):
        out.append(f"interval {interval!r} states no number")
    if not interval and not reason:
        out.append("neither an interval nor the reason there is none")
    if kind in EVIDENCE_KINDS and EVIDENCE_KINDS[kind].needs_interval and not interval:
        out.append(f"kind {kind!r} ({EVIDENCE_KINDS[kind].label}) needs a numeric interval")
    return out


def interval_text(
    low: object,
    high: object,
    fmt: str | Callable[[float], str] = "{:.3g}",
    *,
    label: str = "95% CI",
    of: str = "",
) -> str:
    """An interval as a finding states it: ``"95% CI -6.0 to -2.5"`` (``of``, when given,
    says what it is the interval of: ``"95% CI 0.46 to 0.49 (hazard ratio)"``). Empty when
    either end is missing or not finite, so the builder states why there is none."""
    try:
        lo, hi = float(low), float(high)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    f = fmt.format if isinstance(fmt, str) else fmt
    return f"{label} {f(lo)} to {f(hi)}" + (f" ({of})" if of else "")


def interval_fields(
    low: object,
    high: object,
    fmt: str | Callable[[float], str] = "{:.3g}",
    *,
    of: str = "",
    otherwise: str,
) -> dict[str, str]:
    """A finding's ``interval`` and ``no_interval``: the interval's text
    (:func:`interval_text`) or, where there is none (an end missing or not finite),
    ``otherwise``, the reason. ``Finding(..., **interval_fields(lo, hi, otherwise=...))``."""
    text = interval_text(low, high, fmt, of=of)
    return {"interval": text, "no_interval": "" if text else otherwise}


def evidence_line(finding: Finding | Mapping) -> str:
    """The finding's evidence in one line of plain text (not escaped): kind · base ·
    interval (or why there is none), e.g. ``"Survey estimate · base 14,955 responses · 95%
    CI -9.7 to -6.3"``. Empty for a finding written before the fields existed."""
    f = asdict(finding) if isinstance(finding, Finding) else dict(finding)
    kind = EVIDENCE_KINDS.get(str(f.get("evidence_kind") or ""))
    parts = [kind.label] if kind else []
    if f.get("base"):
        parts.append(f"base {f['base']}")
    if f.get("interval"):
        parts.append(str(f["interval"]))
    elif f.get("no_interval"):
        parts.append(f"no interval: {f['no_interval']}")
    return " · ".join(parts)


def chart_namer(charts: Mapping[str, str] | None, keys: Iterable[str]) -> Callable[..., str]:
    """The chart references a notebook hands a findings builder, checked.

    A builder (``measurement_findings``, ``driver_findings``, ...) makes findings of a few
    kinds, each with a documented key (``"league"``, ``"comparisons"``, ...). The notebook,
    which owns the headings, passes ``charts={key: reference}`` with a
    :attr:`Finding.chart` reference per kind that has a chart; ``{k}`` in a reference
    stands for the position (1, 2, ...) of the item a finding is about, for kinds with one
    finding per item drawn one chart each (``"What if#{k}"``: the k-th scenario's chart).

    Returns ``ref(key, k=1) -> str``: the reference for a finding of kind ``key`` (``""``
    when the notebook named none).

    Raises
    ------
    ValueError
        A key that is no kind of finding of the builder (a typo would otherwise leave
        its findings without their chart, silently).
    """
    keys = tuple(keys)
    refs = {str(k): str(v or "").strip() for k, v in (charts or {}).items()}
    unknown = sorted(set(refs) - set(keys))
    if unknown:
        raise ValueError(
            f"charts: no kind of finding called {', '.join(map(repr, unknown))}; "
            f"the kinds are {', '.join(keys)}"
        )

    def ref(key: str, k: int = 1) -> str:
        if key not in keys:  # the builder's own mistake
            raise KeyError(key)
        return refs.get(key, "").replace("{k}", str(k))

    return ref


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


def _extract_marker(run_dir: str | Path) -> dict:
    """The ``artifacts/interactions_extract.json`` marker step 00 writes when the log stays
    in the client's engine (what came back instead); empty when there is none."""
    path = Path(run_dir) / "artifacts" / "interactions_extract.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def log_withheld(run_dir: str | Path) -> str | None:
    """Where the interaction log stayed when step 00 brought back only features and
    aggregates (``extract: features``): the source as the data-quality table names it
    (backend and table, no credentials), or None when the run has the log or no log at
    all."""
    marker = _extract_marker(run_dir)
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

    split = _extract_marker(run_dir).get("split")
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
    span = _extract_marker(run_dir)["activity"]
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
    # an empty optional ``chart`` (or evidence field) is left out: findings written before
    # it existed stay the same
    optional = ("chart", *EVIDENCE_FIELDS)
    rows = [{k: v for k, v in asdict(f).items() if k not in optional or v} for f in findings]
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
            # in one fixed order (by customer and time, every column breaking ties): a
            # parallel engine returns rows in a different order each run, and sums and fits
            # downstream would differ in their last digits from run to run
            log = data.interactions
            lead = [c for c in ("customer_id", "timestamp") if c in log.columns]
            write_parquet(
                log.order_by([*lead, *(c for c in log.columns if c not in lead)]),
                _table_path(run_dir, "interactions"),
            )
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
