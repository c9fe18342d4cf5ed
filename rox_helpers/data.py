"""Load an engagement's files onto the canonical tables.

For each declared table, in dependency order (units, customers, employees,
network, cx_survey, interactions):

1. read the file as received (:mod:`rox_helpers.io`),
2. map client columns to canonical names (engagement.yml ``columns``),
3. privacy: pseudonymise ids and direct identifiers, scrub free text
   (:mod:`rox_helpers.privacy`) -- before anything can be written anywhere,
4. turn missing-value codes into missing values (counted),
5. coerce types (unparseable values are row failures),
6. validate with pandera, lazily (ranges, allowed values, unique keys,
   referential integrity against the tables loaded before),
7. quarantine failing rows with their reasons; keep the rest,
8. respect consent: customers without analytics consent leave the
   customer-level tables (counted).

Interaction logs are never loaded into pandas: the same rules run in DuckDB as
Ibis expressions (:mod:`rox_helpers.interactions`), so logs larger than memory work.

Hard problems (missing file, missing required column) are collected across all
tables and raised together as one :class:`DataValidationError`; row problems
never stop a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rox_helpers import privacy
from rox_helpers.config import EngagementConfig, Source, load_engagement_config
from rox_helpers.errors import DataValidationError, Problem
from rox_helpers.io import RawTable, read_table, sha256_file
from rox_helpers.schemas import CANONICAL, ColumnSpec, TableSpec
from rox_helpers.validate import (
    DEFAULT_MISSING_TEXT,
    apply_missing_codes,
    build_schema,
    coerce_column,
    isin_ids,
    normalise_name,
    row_failures,
    to_id_text,
)

LOAD_ORDER = ("units", "customers", "employees", "network", "cx_survey", "interactions")
# Columns pseudonymised on load. Response ids too: a survey platform's response id links back
# to the platform's own records (which hold e-mail addresses).
ID_PREFIX = {"customer_id": "C-", "referred_by": "C-", "employee_id": "E-", "response_id": "R-"}
NETWORK_ID_PREFIX = "E-"


@dataclass
class TableReport:
    """What happened to one table on load (shown in the data-quality section)."""

    table: str
    file: str
    sha256: str = ""
    rows_read: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_excluded_consent: int = 0
    missing_codes: dict[str, int] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # interaction logs: failing rows kept in the quarantine (a sample when below
    # rows_quarantined; the counts above cover every row)
    quarantine_kept: int | None = None


@dataclass
class PrivacyReport:
    key_source: str = ""
    key_fingerprint: str = ""
    identifiers: list[dict[str, str]] = field(default_factory=list)
    text_masks: dict[str, int] = field(default_factory=dict)
    consent_column: bool = False
    customers_total: int = 0
    customers_without_consent: int = 0
    survey_responses_unlinked: int = 0
    interactions_excluded: int = 0


@dataclass
class EngagementData:
    """Canonical tables of one engagement, ready for analysis.

    ``tables`` holds the small tables in pandas; ``interactions`` (if declared)
    is an Ibis table over DuckDB -- use :mod:`rox_helpers.features` on it.
    ``quarantine`` holds failing rows per table (canonical columns after
    privacy processing, plus ``source_record`` and ``reason``).
    """

    config: EngagementConfig
    root: Path
    tables: dict[str, pd.DataFrame]
    reports: dict[str, TableReport]
    quarantine: dict[str, pd.DataFrame]
    problems: list[Problem]
    privacy: PrivacyReport
    interactions: object | None = None  # ibis.Table
    interactions_quarantine: object | None = None  # ibis.Table
    con: object | None = None  # ibis backend of the log (DuckDB, or the client's engine)
    # what comes back from the log's source: "log" (the validated rows) or "features" (only
    # customer features and unit x month aggregates; see engagement.yml `extract`)
    extract: str = "log"

    @property
    def declared(self) -> list[str]:
        return list(self.config.data.declared())

    def has(self, table: str, *columns: str) -> bool:
        """Whether a table (and optionally columns) is available for analysis."""
        if table == "interactions":
            if self.interactions is None:
                return False
            return all(c in self.interactions.columns for c in columns)
        df = self.tables.get(table)
        return df is not None and all(c in df.columns for c in columns)

    def quality_table(self) -> pd.DataFrame:
        """One row per table: file, rows read, valid, quarantined, excluded for consent."""
        rows = []
        for r in self.reports.values():
            rows.append(
                {
                    "table": r.table,
                    # a connection source is named by backend and table, a file by its name
                    "file": r.file if ", table " in r.file else Path(r.file).name,
                    "rows_read": r.rows_read,
                    "rows_valid": r.rows_valid,
                    "rows_quarantined": r.rows_quarantined,
                    "excluded_no_consent": r.rows_excluded_consent,
                    "missing_codes": int(sum(r.missing_codes.values())),
                }
            )
        kept = {
            r.table: r.quarantine_kept
            for r in self.reports.values()
            if r.quarantine_kept is not None and r.quarantine_kept < r.rows_quarantined
        }
        if kept:  # a log's quarantine keeps a bounded sample: say so beside the counts
            for row in rows:
                n = kept.get(row["table"])
                row["quarantine_file"] = (
                    "all rows" if n is None else f"sample of {n:,} rows (counts cover all)"
                )
        return pd.DataFrame(rows)

    def quarantine_reasons(self) -> pd.DataFrame:
        """Rows quarantined per table and reason (reasons split on ``;``)."""
        rows = [
            {"table": r.table, "reason": reason, "rows": n}
            for r in self.reports.values()
            for reason, n in r.reasons.items()
        ]
        return pd.DataFrame(rows, columns=["table", "reason", "rows"])


# --------------------------------------------------------------------------------------
# Mapping
# --------------------------------------------------------------------------------------


def _measure_specs(cfg: EngagementConfig, table: str, names: list[str]) -> dict[str, ColumnSpec]:
    """Specs for extra measure columns: range from the codebook when it has them."""
    out = {}
    for name in names:
        entry = cfg.codebook.get(name)
        lo, hi = entry.scale if entry else (None, None)
        out[name] = ColumnSpec(name, "float", min=lo, max=hi)
    return out


def plan_columns(
    cfg: EngagementConfig, table: str, src: Source, raw_columns: list[str]
) -> tuple[dict[str, str], list[str]]:
    """``canonical -> client`` for the columns to keep, and the client columns ignored.

    A client column whose name already equals a canonical column (or a codebook
    attribute, or a measure named in ``elements``) needs no mapping entry.
    """
    spec = CANONICAL[table]
    mapping: dict[str, str] = dict(src.columns)
    used = set(mapping.values())
    wanted = set(spec.columns)
    if spec.open_measures:
        wanted |= set(cfg.codebook)
        wanted |= {m.column for _, m in cfg.measures() if m.table == table}
    for col in raw_columns:
        if col in wanted and col not in mapping and col not in used:
            mapping[col] = col
    used = set(mapping.values())
    ignored = [c for c in raw_columns if c not in used]
    return mapping, ignored


def _double_mapped(mapping: dict[str, str], file: str, table: str) -> list[Problem]:
    """One client column may feed only one canonical column (else an id could be copied raw
    into a column that is not pseudonymised)."""
    seen: dict[str, list[str]] = {}
    for canon, client in mapping.items():
        seen.setdefault(client, []).append(canon)
    return [
        Problem(
            "error",
            f"client column {client!r} is mapped to {len(canons)} canonical columns",
            file=file,
            table=table,
            column=", ".join(f"{c} <- {client}" for c in canons),
            rule="one client column per canonical column",
            fix=f"Keep one of {', '.join(canons)} under data.{table}.columns in engagement.yml.",
        )
        for client, canons in seen.items()
        if len(canons) > 1
    ]


def _missing_required(
    spec: TableSpec, mapping: dict[str, str], raw: RawTable, src: Source, table: str
) -> list[Problem]:
    problems = []
    for canon in spec.required:
        client = mapping.get(canon, canon)
        if client not in raw.frame.columns:
            hint = (
                f"Map it under data.{table}.columns (e.g. `{canon}: <client column>`)"
                if canon not in mapping
                else f"The mapping says {canon} <- {client!r}, but the file has no such column"
            )
            problems.append(
                Problem(
                    "error",
                    f"required column {canon!r} not found",
                    file=str(raw.path),
                    table=table,
                    column=f"{canon} <- {client}",
                    rule="required column",
                    fix=f"{hint}. Columns in the file: {', '.join(map(str, raw.frame.columns[:25]))}",
                )
            )
    for canon, client in mapping.items():
        if canon in spec.required:
            continue
        if client not in raw.frame.columns:
            problems.append(
                Problem(
                    "error",
                    f"mapped column {client!r} is not in the file",
                    file=str(raw.path),
                    table=table,
                    column=f"{canon} <- {client}",
                    rule="mapped column exists",
                    fix=f"Correct data.{table}.columns.{canon} in engagement.yml, or remove it. "
                    f"Columns in the file: {', '.join(map(str, raw.frame.columns[:25]))}",
                )
            )
    return problems


# --------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------


class _Loader:
    def __init__(self, cfg: EngagementConfig, root: Path) -> None:
        self.cfg = cfg
        self.root = root
        self.tables: dict[str, pd.DataFrame] = {}
        self.reports: dict[str, TableReport] = {}
        self.quarantine: dict[str, pd.DataFrame] = {}
        self.problems: list[Problem] = []
        self.priv = PrivacyReport()
        self.key: privacy.PseudonymKey | None = None
        self.known_names: list[str] = []
        self.all_customer_ids: set[str] | None = None  # every id in the customers file
        self.no_consent_ids: set[str] = set()

    # --- helpers ---------------------------------------------------------------------
    def get_key(self) -> privacy.PseudonymKey:
        if self.key is None:
            self.key = privacy.load_or_create_key(self.root)
            self.priv.key_source = self.key.source
            self.priv.key_fingerprint = self.key.fingerprint
        return self.key

    def _references(self, table: str, columns: list[str]) -> dict[str, set[str]]:
        refs: dict[str, set[str]] = {}
        spec = CANONICAL[table]
        for col in columns:
            cspec = spec.columns.get(col)
            if not cspec or not cspec.references:
                continue
            rtable, rcol = cspec.references.split(".")
            if rtable == "customers" and self.all_customer_ids is not None:
                refs[col] = self.all_customer_ids
            elif rtable in self.tables and rtable != table:
                refs[col] = set(self.tables[rtable][rcol].dropna().unique())
            elif rtable == table and rtable == "customers":
                continue  # referred_by is checked after the table is known (below)
        return refs

    # --- one table -------------------------------------------------------------------
    def _read_connection(self, table: str, src: Source) -> RawTable | None:
        """A small table from a client's engine (through Ibis), or None after a problem."""
        from rox_helpers import engines

        where = src.where()
        try:
            con, t = engines.open_source(src, f"data.{table}", self.root)
            frame = t.to_pandas()
            engines.disconnect(con)
        except engines.SourceError as exc:
            self.problems.append(
                Problem(
                    "error",
                    exc.message,
                    file=exc.file or where,
                    table=table,
                    column=f"data.{table}",
                    rule=exc.rule or "",
                    fix=exc.fix or "",
                )
            )
            return None
        return RawTable(frame=frame, path=Path(where), format="table")

    def load(self, table: str, src: Source) -> None:
        if src.connection is not None:
            # a small table on a client's engine: brought back whole, then the same steps
            self.reports[table] = report = TableReport(table=table, file=src.where())
            raw = self._read_connection(table, src)
            if raw is not None:
                self._load_raw(table, src, raw, report, Path(src.where()))
            return
        path = (self.root / str(src.path)).resolve()
        report = TableReport(table=table, file=str(path))
        self.reports[table] = report
        try:
            raw = read_table(
                path,
                format=src.resolved_format(),
                encoding=src.encoding,
                delimiter=src.delimiter,
                sheet=src.sheet,
            )
        except DataValidationError as exc:
            self.problems.append(
                Problem(
                    "error",
                    exc.message,
                    file=exc.file or str(path),
                    table=table,
                    column="",
                    rule=exc.rule or "",
                    fix=exc.fix or "",
                )
            )
            return
        report.sha256 = sha256_file(path)
        self._load_raw(table, src, raw, report, path)

    def _load_raw(
        self, table: str, src: Source, raw: RawTable, report: TableReport, path: Path
    ) -> None:
        spec = CANONICAL[table]
        mapping, ignored = plan_columns(self.cfg, table, src, list(map(str, raw.frame.columns)))
        hard = _missing_required(spec, mapping, raw, src, table) + _double_mapped(
            mapping, str(raw.path), table
        )
        if hard:
            self.problems.extend(hard)
            return
        report.rows_read = len(raw.frame)
        if not len(raw.frame):
            self.problems.append(
                Problem(
                    "warning",
                    "the file has a header but no rows",
                    file=str(raw.path),
                    table=table,
                    rule="declared table has data",
                    fix="Check the export with the client; analyses needing this table will say "
                    "so.",
                )
            )
        frame = raw.frame
        frame.columns = [str(c) for c in frame.columns]
        frame = frame.reset_index(drop=True)
        # the n-th data record of the file (1 = first row after the header); a spreadsheet row
        # is this + 1. Not a text line number: quoted multi-line comments would shift those.
        source_record = pd.Series(range(1, len(frame) + 1), name="source_record")

        # 3. privacy on the raw frame: identifiers among ALL client columns
        identifiers = self._identifiers(table, frame, mapping, ignored)
        report.identifiers = dict(identifiers)
        names_col = [
            c
            for c, why in identifiers.items()
            if "name" in c.lower() and not c.lower().endswith(("id", "code"))
        ]
        for c in names_col:
            self.known_names.extend(frame[c].dropna().astype("str").tolist())

        # 2. mapping to canonical names (ids and measures); identifier columns dropped
        #    or hashed
        data: dict[str, pd.Series] = {}
        for canon, client in mapping.items():
            data[canon] = frame[client]
        key = None
        for client, why in identifiers.items():
            action = self.cfg.privacy.identifier_action
            self.priv.identifiers.append(
                {"table": table, "column": client, "reason": why, "action": action}
            )
            if action == "hash" and client not in mapping.values():
                key = key or self.get_key()
                data[f"{normalise_name(client) or 'identifier'}_hash"] = privacy.pseudonymise(
                    frame[client], key, prefix="P-"
                )
            # mapped identifier columns (e.g. a name mapped by mistake) are dropped
            for canon in [k for k, v in mapping.items() if v == client]:
                if spec.columns.get(canon) is None or spec.columns[canon].kind != "id":
                    data.pop(canon, None)
        df = pd.DataFrame(data)
        report.ignored_columns = [c for c in ignored if c not in identifiers]
        del frame

        # 4. missing-value codes
        for col in list(df.columns):
            codes = list(src.missing_codes.get(col, []))
            if col in self.cfg.codebook:
                codes += self.cfg.codebook[col].missing_codes
            codes += list(DEFAULT_MISSING_TEXT)
            df[col], n = apply_missing_codes(df[col], codes)
            declared = raw.missing_by_column.get(mapping.get(col, col), 0)
            if n + declared:
                report.missing_codes[col] = n + declared

        # SPSS value labels for text columns
        for col in df.columns:
            cspec = spec.columns.get(col)
            labels = raw.value_labels.get(mapping.get(col, col))
            if cspec is not None and cspec.kind == "str" and labels:
                df[col] = df[col].map(lambda v, lab=labels: lab.get(v, v) if pd.notna(v) else v)

        # ids are pseudonymised before any row can be written anywhere
        key = None
        for col in df.columns:
            prefix = ID_PREFIX.get(col)
            if table == "network" and col in ("source", "target"):
                prefix = NETWORK_ID_PREFIX
            if prefix is not None:
                key = key or self.get_key()
                df[col] = privacy.pseudonymise(to_id_text(df[col]), key, prefix=prefix)

        # free text scrubbed (comments); names known from customers and staff
        for col in df.columns:
            cspec = spec.columns.get(col)
            if cspec is not None and cspec.free_text and self.cfg.privacy.scrub_free_text:
                result = privacy.scrub_text(
                    df[col].astype("str").where(df[col].notna()), names=self.name_matcher()
                )
                df[col] = result.text
                for k, v in result.counts.items():
                    self.priv.text_masks[k] = self.priv.text_masks.get(k, 0) + int(v)

        # 5. coercion (keep the pre-coercion text for the quarantine)
        before = df.copy()
        unparseable: dict[str, pd.Series] = {}
        measures = [c for c in df.columns if c not in spec.columns and not c.endswith("_hash")]
        mspecs = _measure_specs(self.cfg, table, measures)
        for col in df.columns:
            cspec = spec.columns.get(col) or mspecs.get(col)
            if cspec is None:
                continue
            fmt = src.date_formats.get(col) or src.date_format
            df[col], bad = coerce_column(df[col], cspec, date_format=fmt)
            if bad.any():
                unparseable[col] = bad
        if spec.columns.get("survey_type") and "survey_type" in df.columns:
            df["survey_type"] = df["survey_type"].str.lower()

        if table == "customers":
            # Every id the file holds counts for referential integrity (a customer whose row is
            # quarantined for, say, a bad date still exists), and consent is taken from that
            # customer's own row(s): no recorded "yes" means no consent.
            self.all_customer_ids = set(df["customer_id"].dropna())
            if "consent_analytics" in df.columns and self.cfg.privacy.require_analytics_consent:
                yes = df["consent_analytics"].fillna(False).astype(bool)
                self.no_consent_ids = set(df.loc[~yes, "customer_id"].dropna())

        # 6. validation
        refs = self._references(table, list(df.columns))
        schema = build_schema(spec, list(df.columns), measure_specs=mspecs, references=refs)
        reasons = row_failures(schema, df)
        parts = [reasons]
        for col, bad in unparseable.items():
            kind = (spec.columns.get(col) or mspecs[col]).kind
            what = (
                "does not parse as a date"
                if kind in ("date", "datetime", "period")
                else (f"is not a valid {kind}")
            )
            parts.append(
                pd.Series(
                    f"{col}: " + what + " (value " + before.loc[bad, col].astype("str") + ")",
                    index=bad[bad].index,
                )
            )
        all_reasons = (
            pd.concat([p for p in parts if len(p)]).groupby(level=0).agg("; ".join)
            if any(len(p) for p in parts)
            else pd.Series(dtype="str")
        )
        bad_idx = all_reasons.index
        # 7. quarantine (pre-coercion values, post-privacy)
        if len(bad_idx):
            q = before.loc[bad_idx].copy()
            q.insert(0, "source_record", source_record.loc[bad_idx].to_numpy())
            q["reason"] = all_reasons.loc[bad_idx].to_numpy()
            self.quarantine[table] = self._withhold_no_consent(q)
            for reason_list in all_reasons:
                for r in reason_list.split("; "):
                    rule = r.split(" (value")[0]
                    report.reasons[rule] = report.reasons.get(rule, 0) + 1
            self.problems.append(
                Problem(
                    "warning",
                    f"{len(bad_idx)} row(s) quarantined: "
                    + ", ".join(f"{k} ({v})" for k, v in sorted(report.reasons.items())),
                    file=str(path),
                    table=table,
                    rule="row validation",
                    n_rows=len(bad_idx),
                    fix=f"See runs/<ts>/quarantine/{table}.csv (source_record = n-th data row of "
                    "the file); "
                    "correct the rows with the client or accept their exclusion.",
                )
            )
        df = df.drop(index=bad_idx).reset_index(drop=True)
        report.rows_quarantined = len(bad_idx)
        if report.ignored_columns:
            self.problems.append(
                Problem(
                    "info",
                    f"{len(report.ignored_columns)} column(s) not mapped and ignored: "
                    + ", ".join(report.ignored_columns[:12])
                    + ("..." if len(report.ignored_columns) > 12 else ""),
                    file=str(path),
                    table=table,
                    rule="unmapped columns",
                    fix=f"Map any you need under data.{table}.columns in engagement.yml.",
                )
            )

        # 8. consent
        if table == "customers":
            df = self._apply_consent(df, report)
        elif table == "cx_survey" and "customer_id" in df.columns and self.no_consent_ids:
            unlink = isin_ids(df["customer_id"], self.no_consent_ids)
            self.priv.survey_responses_unlinked = int(unlink.sum())
            for col in ["customer_id", *[c for c in df.columns if c.endswith("_hash")]]:
                df[col] = df[col].mask(unlink)
        report.rows_valid = len(df)
        self.tables[table] = df

    def _withhold_no_consent(self, q: pd.DataFrame) -> pd.DataFrame:
        """Quarantined rows of customers without analytics consent keep their reason but not
        their (pseudonymous) identifiers, so nothing links them across the run's files."""
        if "customer_id" not in q.columns or not self.no_consent_ids:
            return q
        hide = isin_ids(q["customer_id"], self.no_consent_ids)
        if hide.any():
            for col in ["customer_id", *[c for c in q.columns if c.endswith("_hash")]]:
                q[col] = q[col].mask(hide)
            q["reason"] = q["reason"].mask(
                hide, q["reason"] + "; identifiers withheld (no analytics consent)"
            )
        return q

    def _apply_consent(self, df: pd.DataFrame, report: TableReport) -> pd.DataFrame:
        # counted per customer over the whole file, before any row is quarantined
        self.priv.customers_total = len(self.all_customer_ids or ())
        if "consent_analytics" not in df.columns:
            self.problems.append(
                Problem(
                    "warning",
                    "no analytics-consent column: all customers are analysed",
                    table="customers",
                    file=report.file,
                    column="consent_analytics",
                    rule="consent recorded",
                    fix="Map the client's analytics consent flag to consent_analytics, or "
                    "record the legal basis for analysing all customers.",
                )
            )
            return df
        self.priv.consent_column = True
        if not self.cfg.privacy.require_analytics_consent:
            return df
        keep = ~isin_ids(df["customer_id"], self.no_consent_ids)
        self.priv.customers_without_consent = len(self.no_consent_ids)
        report.rows_excluded_consent = int((~keep).sum())
        return df.loc[keep].reset_index(drop=True)

    def _identifiers(
        self, table: str, frame: pd.DataFrame, mapping: dict[str, str], ignored: list[str]
    ) -> dict[str, str]:
        declared = self.cfg.privacy.identifier_columns.get(table, [])
        out = {c: "declared in engagement.yml" for c in declared if c in frame.columns}
        for c in declared:
            if c not in frame.columns:
                self.problems.append(
                    Problem(
                        "warning",
                        f"identifier column {c!r} declared but not in the file",
                        table=table,
                        column=c,
                        rule="privacy.identifier_columns",
                        fix="Correct privacy.identifier_columns in engagement.yml.",
                    )
                )
        if self.cfg.privacy.auto_detect_identifiers:
            # Mapped columns are what the mapping says they are ("greet_by_name" is a behaviour
            # score, a units `name` is a hotel); detection looks at what the consultant did not
            # map. Those columns are ignored anyway; detection hashes them if asked and adds the
            # names they hold to the names masked in free text.
            skip = set(mapping.values())
            candidates = frame[[c for c in frame.columns if c not in skip]]
            for c, why in privacy.detect_identifier_columns(candidates).items():
                out.setdefault(c, f"auto-detected: {why}")
        return out

    def name_matcher(self):
        if not hasattr(self, "_matcher") or self._matcher_n != len(self.known_names):
            self._matcher = privacy.NameMatcher(dict.fromkeys(self.known_names))
            self._matcher_n = len(self.known_names)
        return self._matcher

    # --- all tables ------------------------------------------------------------------
    def run(self) -> EngagementData:
        declared = self.cfg.data.declared()
        for table in LOAD_ORDER:
            if table in declared and table != "interactions":
                t0 = time.perf_counter()
                self.load(table, declared[table])
                self.reports[table].seconds = time.perf_counter() - t0
        inter = quarantine_i = con = None
        if "interactions" in declared:
            from rox_helpers.interactions import load_interactions

            t0 = time.perf_counter()
            res = load_interactions(self, declared["interactions"])
            self.reports["interactions"].seconds = time.perf_counter() - t0
            if res is not None:
                inter, quarantine_i, con = res
        errors = [p for p in self.problems if p.severity == "error"]
        if errors:
            raise DataValidationError(
                f"{len(errors)} problem(s) stop this engagement from loading:",
                problems=errors,
                file=errors[0].file,
                column=errors[0].column,
                rule=errors[0].rule,
                fix=errors[0].fix,
            )
        return EngagementData(
            config=self.cfg,
            root=self.root,
            tables=self.tables,
            reports=self.reports,
            quarantine=self.quarantine,
            problems=self.problems,
            privacy=self.priv,
            interactions=inter,
            interactions_quarantine=quarantine_i,
            con=con,
            extract=declared["interactions"].resolved_extract
            if "interactions" in declared
            else "log",
        )


def load_engagement(engagement: str | Path) -> EngagementData:
    """Load, map, protect and validate every declared table of an engagement.

    Parameters
    ----------
    engagement : str or Path
        The engagement folder (holding ``engagement.yml``).

    Returns
    -------
    EngagementData

    Raises
    ------
    ConfigError
        When engagement.yml is invalid.
    DataValidationError
        When a declared file is missing or lacks a required column (all such
        problems are listed at once).
    """
    root = Path(engagement).resolve()
    if root.is_file():  # the engagement.yml itself
        root = root.parent
    cfg = load_engagement_config(root)
    return _Loader(cfg, root).run()
