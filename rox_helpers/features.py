"""Interaction logs and customer-level behavioural features, as Ibis expressions.

The interaction log is read by DuckDB straight from the client's files (CSV,
Parquet, or a glob of them), validated by row rules written as Ibis
expressions (the same rules pandera applies to small tables), and aggregated
to one row per customer.  Nothing is materialised in pandas until the
features themselves are asked for, so logs larger than memory work, and the
same expressions can later run on Spark, Snowflake or BigQuery.

Features (one row per customer)
-------------------------------
``n_interactions``   rows in the log
``frequency``        distinct days with at least one interaction (visits)
``purchases``        completed interactions with revenue > 0
``spend``            total revenue
``first_seen`` / ``last_seen`` and ``recency_days`` (to the reference date)
``tenure_days``      reference date minus signup date (or first seen)
``share_<channel>``  channel mix: share of interactions per channel
``digital_share``    share through digital channels (``journey.digital_channels``)
``stages_reached``   distinct journey stages
``touchpoints_used`` distinct touchpoints
``completion_rate``  share of interactions completed
``avg_duration_min`` mean duration
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from rox_helpers import privacy
from rox_helpers.errors import Problem
from rox_helpers.io import detect_delimiter, detect_encoding, format_of, read_table
from rox_helpers.schemas import CANONICAL

if TYPE_CHECKING:  # pragma: no cover
    from rox_helpers.config import Source
    from rox_helpers.data import _Loader

# ibis 12 calls APIs that pandas 3 and DuckDB 2 deprecate; the warnings are ibis's own, not
# actionable by a consultant, and would clutter every notebook. Filtered narrowly by message.
warnings.filterwarnings("ignore", message=".*future.infer_string.*", module=r"ibis\.")
warnings.filterwarnings("ignore", message="fetch_arrow_table.*", module=r"ibis\.")

TRUE_TEXT = ("y", "yes", "true", "t", "1", "ja", "oui")
FALSE_TEXT = ("n", "no", "false", "f", "0", "nein", "non")


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
        first = sorted(Path().glob(path))[0] if any(c in path for c in "*?[") else Path(path)
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


def _number(col: ibis.Value) -> ibis.Value:
    if col.type().is_numeric():
        return col.cast("float64")
    if col.type().is_boolean():
        return col.cast("float64")
    return _text(col).replace(",", ".").try_cast("float64")


def _boolean(col: ibis.Value) -> ibis.Value:
    if col.type().is_boolean():
        return col
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
    if fmt:
        # DuckDB's try_strptime: unparseable values become NULL (quarantined below)
        return _try_strptime(s, fmt)
    return s.try_cast(dt.Timestamp())


def _try_strptime(s: ibis.Value, fmt: str) -> ibis.Value:
    @ibis.udf.scalar.builtin(name="try_strptime")
    def try_strptime(value: str, fmt: str) -> dt.Timestamp:  # pragma: no cover - SQL builtin
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
        if cspec.kind == "id" or cspec.kind == "str":
            cols[canon] = _text(c)
        elif cspec.kind == "datetime":
            fmt = src.date_formats.get(canon) or src.date_format
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
    for r, n in zip(bad["reason"], bad["n"], strict=True):
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
        report.rows_excluded_consent = int(excluded)
        loader.priv.interactions_excluded = int(excluded)
    report.rows_valid = report.rows_read - report.rows_quarantined - report.rows_excluded_consent
    return clean, quarantine, con


# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "other"


def customer_features(
    interactions: ibis.Table,
    *,
    customers: pd.DataFrame | None = None,
    reference_date: pd.Timestamp | None = None,
    digital_channels: Sequence[str] = ("web", "app"),
    channels: Sequence[str] | None = None,
) -> ibis.Table:
    """Behavioural features per customer, as an (unexecuted) Ibis expression.

    Parameters
    ----------
    interactions : ibis.Table
        Canonical, validated interactions (``customer_id``, ``timestamp`` and
        whichever optional columns exist).
    customers : pandas.DataFrame, optional
        Canonical customers; gives ``tenure_days`` from ``signup_date``.
    reference_date : Timestamp, optional
        "Today" for recency and tenure; the day after the last interaction
        by default, so reruns give the same numbers.
    digital_channels : sequence of str
        Channels counted as digital.
    channels : sequence of str, optional
        Channels for the channel-mix shares; found from the data when omitted.

    Returns
    -------
    ibis.Table
        One row per ``customer_id`` with the columns listed in the module docstring.
    """
    t = interactions.filter(interactions.customer_id.notnull())
    if reference_date is None:
        last = t.timestamp.max().to_pyarrow().as_py()
        reference_date = pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
    ref = ibis.literal(pd.Timestamp(reference_date).to_pydatetime(), type=dt.Timestamp())
    aggs: dict[str, ibis.Value] = {
        "n_interactions": t.count(),
        "frequency": t.timestamp.date().nunique(),
        "first_seen": t.timestamp.min(),
        "last_seen": t.timestamp.max(),
    }
    cols = set(t.columns)
    if "revenue" in cols:
        aggs["spend"] = t.revenue.fill_null(0).sum()
        paid = t.revenue.fill_null(0) > 0
        if "completed" in cols:
            paid = paid & t.completed.fill_null(False)
        aggs["purchases"] = paid.cast("int64").sum()
    if "completed" in cols:
        aggs["completion_rate"] = t.completed.cast("float64").mean()
    if "duration_min" in cols:
        aggs["avg_duration_min"] = t.duration_min.mean()
    if "channel" in cols:
        if channels is None:
            channels = sorted(
                c for c in t.select("channel").distinct().to_pandas()["channel"].dropna()
            )
        n = t.count().cast("float64")
        for ch in channels:
            aggs[f"share_{_safe(ch)}"] = (t.channel == ch).cast("int64").sum().cast("float64") / n
        aggs["digital_share"] = (
            t.channel.isin(list(digital_channels)).cast("int64").sum().cast("float64") / n
        )
    if "journey_stage" in cols:
        aggs["stages_reached"] = t.journey_stage.nunique()
    if "touchpoint" in cols:
        aggs["touchpoints_used"] = t.touchpoint.nunique()
    f = t.group_by("customer_id").aggregate(**aggs)
    f = f.mutate(recency_days=(ref.date() - f.last_seen.date()).cast("int64"))
    start = f.first_seen
    if customers is not None and "signup_date" in customers.columns:
        signup = ibis.memtable(
            customers[["customer_id", "signup_date"]]
            .dropna(subset=["customer_id"])
            .assign(signup_date=lambda d: d["signup_date"].astype("datetime64[us]"))
        )
        f = f.left_join(signup, f.customer_id == signup.customer_id).drop("customer_id_right")
        start = ibis.coalesce(f.signup_date.cast(dt.Timestamp()), f.first_seen)
    f = f.mutate(tenure_days=(ref.date() - start.date()).cast("int64"))
    if "signup_date" in f.columns:
        f = f.drop("signup_date")
    return f.order_by("customer_id")


def features_frame(
    interactions: ibis.Table, *, customers: pd.DataFrame | None = None, **kw
) -> pd.DataFrame:
    """:func:`customer_features` executed into pandas."""
    return customer_features(interactions, customers=customers, **kw).to_pandas()
