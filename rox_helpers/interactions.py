"""The interaction log in DuckDB: read, map, pseudonymise and validate, as Ibis expressions.

The log is read by DuckDB straight from the client's files (CSV, Parquet, or a glob of them)
and never loaded into pandas, so logs larger than memory work. The row rules are the ones
pandera applies to the small tables (required values, parse failures, ranges, unknown units
and customers), written as Ibis predicates; each failing row gets every reason it failed.
Customer ids are replaced by their keyed hashes through a join inside the engine, so raw ids
never leave it. The same expressions can later run on Spark, Snowflake or BigQuery.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from rox_helpers import privacy
from rox_helpers.errors import Problem
from rox_helpers.io import detect_delimiter, detect_encoding, format_of, read_table
from rox_helpers.schemas import CANONICAL
from rox_helpers.validate import infer_date_format

if TYPE_CHECKING:  # pragma: no cover
    from rox_helpers.config import Source
    from rox_helpers.data import _Loader

TRUE_TEXT = ("y", "yes", "true", "t", "1", "1.0", "ja", "oui")
FALSE_TEXT = ("n", "no", "false", "f", "0", "0.0", "nein", "non")
OFFSET_RE = r"(?:Z|[+-]\d\d:?\d\d)$"


def connect(memory_limit: str = "3GB", threads: int | None = None) -> ibis.BaseBackend:
    """An in-process DuckDB backend with a memory cap (DuckDB spills beyond it)."""
    con = ibis.duckdb.connect()
    con.raw_sql(f"SET memory_limit='{memory_limit}'")
    con.raw_sql("SET preserve_insertion_order=false")
    if threads:
        con.raw_sql(f"SET threads={int(threads)}")
    return con


def _read(con: ibis.BaseBackend, path: str, src: Source) -> ibis.Table:
    fmt = src.format or format_of(Path(path))
    if fmt == "parquet":
        return con.read_parquet(path, table_name="interactions_raw")
    if fmt == "csv":
        first = Path(sorted(glob.glob(path))[0]) if any(c in path for c in "*?[") else Path(path)
        enc = src.encoding or detect_encoding(first)
        sep = src.delimiter or detect_delimiter(first, enc)
        duck_enc = "utf-8" if enc.startswith("utf-8") else "latin-1"
        return con.read_csv(
            path,
            table_name="interactions_raw",
            all_varchar=True,
            delim=sep,
            header=True,
            encoding=duck_enc,
        )
    raw = read_table(path, format=fmt, sheet=src.sheet)
    return con.create_table("interactions_raw", ibis.memtable(raw.frame))


def _text(col: ibis.Value) -> ibis.Value:
    s = col.cast("string").strip()
    return ibis.ifelse(s == "", ibis.null("string"), s)


def _id(col: ibis.Value) -> ibis.Value:
    """Ids as text; integral floats (123.0, as parquet writes ids with gaps) become "123",
    the same normalisation the pandas tables get, so references match."""
    if col.type().is_floating():
        whole = col.notnull() & (col == col.round())
        return ibis.ifelse(whole, col.cast("int64").cast("string"), col.cast("string"))
    if col.type().is_integer():
        return col.cast("string")
    return _text(col).re_replace(r"^(-?\d+)\.0+$", r"\1")


def _number(col: ibis.Value) -> ibis.Value:
    if col.type().is_numeric():
        return col.cast("float64")
    if col.type().is_boolean():
        return col.cast("float64")
    return _text(col).replace(",", ".").try_cast("float64")


def _boolean(col: ibis.Value) -> ibis.Value:
    if col.type().is_boolean():
        return col
    if col.type().is_numeric():
        return ibis.ifelse(col.isnull(), ibis.null("boolean"), col != 0).name(col.get_name())
    s = _text(col).lower()
    return (
        ibis.cases((s.isin(TRUE_TEXT), True), (s.isin(FALSE_TEXT), False), else_=ibis.null())
        .cast("boolean")
        .name(col.get_name())
    )


def _timestamp(col: ibis.Value, fmt: str | None) -> ibis.Value:
    if col.type().is_timestamp():
        return col.cast(dt.Timestamp())
    if col.type().is_date():
        return col.cast(dt.Timestamp())
    s = _text(col)
    if fmt == "offset":
        # offsets honoured: parsed as instants, kept as naive UTC (the pandas tables' convention)
        return s.try_cast(dt.Timestamp(timezone="UTC")).cast(dt.Timestamp())
    if fmt and not fmt.startswith("%Y-%m-%d"):
        # DuckDB's try_strptime: unparseable values become NULL (quarantined below)
        return _try_strptime(s, fmt)
    return s.try_cast(dt.Timestamp())


def _timestamp_format(raw: ibis.Table, column: str, configured: str | None) -> str | None:
    """The configured format, else one inferred from a sample of the text (or "offset")."""
    if configured or not raw[column].type().is_string():
        return configured
    sample = raw.select(v=raw[column]).filter(lambda t: t.v.notnull()).limit(2000).to_pandas()
    values = sample["v"].astype("str").str.strip()
    if len(values) and values.str.contains(OFFSET_RE, regex=True).mean() > 0.5:
        return "offset"
    return infer_date_format(values)


def _try_strptime(s: ibis.Value, fmt: str) -> ibis.Value:
    @ibis.udf.scalar.builtin(name="try_strptime")
    def try_strptime(value: str, fmt: str) -> dt.timestamp:  # pragma: no cover - SQL builtin
        ...

    return try_strptime(s, fmt)


def load_interactions(loader: _Loader, src: Source):
    """Read, map, pseudonymise and validate the interaction log in DuckDB.

    Returns ``(clean, quarantine, con)`` Ibis tables, or None after recording a
    hard problem on ``loader``.
    """
    from rox_helpers.data import TableReport, plan_columns

    spec = CANONICAL["interactions"]
    path = str((loader.root / src.path).resolve()) if not Path(src.path).is_absolute() else src.path
    report = TableReport(table="interactions", file=path)
    loader.reports["interactions"] = report
    is_glob = any(c in path for c in "*?[")
    if not is_glob and not Path(path).is_file():
        loader.problems.append(
            Problem(
                "error",
                f"File not found: {path}",
                file=path,
                table="interactions",
                rule="declared data file exists",
                fix="Check data.interactions.path in engagement.yml (relative to the "
                "engagement folder).",
            )
        )
        return None
    if not is_glob:
        from rox_helpers.io import sha256_file

        report.sha256 = sha256_file(Path(path))
    con = connect()
    try:
        raw = _read(con, path, src)
    except Exception as exc:
        loader.problems.append(
            Problem(
                "error",
                f"Could not read the interaction log: {type(exc).__name__}: {exc}",
                file=path,
                table="interactions",
                rule="readable file",
                fix="Check the file opens; set format/encoding/delimiter in engagement.yml.",
            )
        )
        return None
    mapping, ignored = plan_columns(loader.cfg, "interactions", src, list(raw.columns))
    report.ignored_columns = ignored
    missing = []
    for canon in spec.required:
        client = mapping.get(canon, canon)
        if client not in raw.columns:
            missing.append((canon, client, "required column"))
    for canon, client in mapping.items():
        if client not in raw.columns and canon not in spec.required:
            missing.append((canon, client, "mapped column exists"))
    if missing:
        for canon, client, rule in missing:
            loader.problems.append(
                Problem(
                    "error",
                    f"column {client!r} (for {canon}) not found",
                    file=path,
                    table="interactions",
                    column=f"{canon} <- {client}",
                    rule=rule,
                    fix=f"Map it under data.interactions.columns. Columns in the file: "
                    f"{', '.join(list(raw.columns)[:25])}",
                )
            )
        return None

    # map and coerce (keep the raw text for the quarantine)
    cols = {}
    raw_text = {}
    for canon, client in mapping.items():
        cspec = spec.columns[canon]
        c = raw[client]
        if cspec.kind not in ("id", "str"):
            raw_text[canon] = _text(c)  # kept only where a value can fail to parse
        if cspec.kind == "id":
            cols[canon] = _id(c)
        elif cspec.kind == "str":
            cols[canon] = _text(c)
        elif cspec.kind == "datetime":
            fmt = _timestamp_format(raw, client, src.date_formats.get(canon) or src.date_format)
            cols[canon] = _timestamp(c, fmt)
        elif cspec.kind in ("float", "int"):
            cols[canon] = _number(c)
        elif cspec.kind == "bool":
            cols[canon] = _boolean(c)
    t = raw.select(**cols, **{f"_raw_{k}": v for k, v in raw_text.items()})

    # pseudonymise customer ids by a join with their HMACs (computed once per distinct id)
    key = loader.get_key()
    ids = t.select(_raw_id=t.customer_id).distinct().filter(lambda x: x._raw_id.notnull())
    ids_df = ids.to_pandas()
    ids_df["_pid"] = privacy.pseudonymise(ids_df["_raw_id"].astype("str"), key, prefix="C-")
    id_map = con.create_table("_id_map", ibis.memtable(ids_df), overwrite=True)
    t = t.left_join(id_map, t.customer_id == id_map._raw_id).drop("_raw_id")
    t = t.mutate(customer_id=t._pid).drop("_pid")
    if "_raw_customer_id" in t.columns:
        t = t.drop("_raw_customer_id")  # the raw id never leaves the engine

    # row rules
    rules: list[tuple[ibis.Value, str]] = []
    for canon in mapping:
        cspec = spec.columns[canon]
        c = t[canon]
        raw_col = f"_raw_{canon}"
        if cspec.required:
            empty = c.isnull() & t[raw_col].isnull() if raw_col in t.columns else c.isnull()
            rules.append((empty, f"{canon}: required value missing"))
        if f"_raw_{canon}" in t.columns and cspec.kind not in ("id", "str"):
            what = (
                "does not parse as a date"
                if cspec.kind == "datetime"
                else f"is not a valid {cspec.kind}"
            )
            rules.append((c.isnull() & t[f"_raw_{canon}"].notnull(), f"{canon}: {what}"))
        if cspec.min is not None:
            rules.append((c < cspec.min, f"{canon}: below {cspec.min:g}"))
        if cspec.max is not None:
            rules.append((c > cspec.max, f"{canon}: above {cspec.max:g}"))
    if "unit_id" in mapping and "units" in loader.tables:
        units = sorted(loader.tables["units"]["unit_id"].dropna().unique())
        rules.append(
            (
                t.unit_id.notnull() & ~t.unit_id.isin(units),
                "unit_id: unknown id (not in units.unit_id)",
            )
        )
    if loader.all_customer_ids is not None:
        known = con.create_table(
            "_known_customers",
            ibis.memtable(pd.DataFrame({"_known": sorted(loader.all_customer_ids)})),
            overwrite=True,
        )
        t = t.left_join(known, t.customer_id == known._known)
        rules.append(
            (
                t.customer_id.notnull() & t._known.isnull(),
                "customer_id: unknown id (not in customers.customer_id)",
            )
        )
    reason = ibis.literal("")
    for cond, msg in rules:
        reason = reason + ibis.ifelse(cond.fill_null(False), "; " + msg, "")
    t = t.mutate(reason=ibis.ifelse(reason.length() > 0, reason.substr(2), ""))
    if "_known" in t.columns:
        t = t.drop("_known")
    raw_cols = [c for c in t.columns if c.startswith("_raw_")]
    # One pass over the file materialises the slim checked log (canonical columns and the
    # reason; DuckDB spills to disk beyond its memory limit). Counts and features read it;
    # only the quarantine export goes back to the raw text, for the few failing rows.
    checked = con.create_table("_interactions_checked", t.drop(*raw_cols), overwrite=True)

    counts = checked.group_by("reason").aggregate(n=checked.count()).to_pandas()
    report.rows_read = int(counts["n"].sum())
    bad = counts[counts["reason"] != ""]
    report.rows_quarantined = int(bad["n"].sum())
    # sorted: DuckDB returns groups in any order, the report must not
    for r, n in sorted(zip(bad["reason"], bad["n"], strict=True)):
        for part in str(r).split("; "):
            report.reasons[part] = report.reasons.get(part, 0) + int(n)
    quarantine = t.filter(t.reason != "")
    quarantine = quarantine.select(
        *[
            quarantine[f"_raw_{c}"].name(c) if f"_raw_{c}" in raw_cols else quarantine[c]
            for c in mapping
        ],
        "reason",
    )
    clean = checked.filter(checked.reason == "").drop("reason")
    if report.rows_quarantined:
        loader.problems.append(
            Problem(
                "warning",
                f"{report.rows_quarantined} row(s) quarantined: "
                + ", ".join(f"{k} ({v})" for k, v in sorted(report.reasons.items())),
                file=path,
                table="interactions",
                rule="row validation",
                n_rows=report.rows_quarantined,
                fix="See runs/<ts>/quarantine/interactions.csv; correct the rows with the client "
                "or accept their exclusion.",
            )
        )
    if loader.no_consent_ids:
        nc = con.create_table(
            "_no_consent",
            ibis.memtable(pd.DataFrame({"_nc": sorted(loader.no_consent_ids)})),
            overwrite=True,
        )
        excluded = clean.semi_join(nc, clean.customer_id == nc._nc).count().to_pyarrow().as_py()
        clean = clean.anti_join(nc, clean.customer_id == nc._nc)
        # quarantined rows of customers without consent keep their reason, not their id
        flagged = quarantine.left_join(nc, quarantine.customer_id == nc._nc)
        hide = flagged._nc.notnull()
        quarantine = flagged.mutate(
            customer_id=ibis.ifelse(hide, ibis.null("string"), flagged.customer_id),
            reason=ibis.ifelse(
                hide,
                flagged.reason + "; identifiers withheld (no analytics consent)",
                flagged.reason,
            ),
        ).drop("_nc")
        report.rows_excluded_consent = int(excluded)
        loader.priv.interactions_excluded = int(excluded)
    report.rows_valid = report.rows_read - report.rows_quarantined - report.rows_excluded_consent
    return clean, quarantine, con
