"""The interaction log in its engine: read, map, pseudonymise and validate, as Ibis expressions.

The log is read where it lives and never loaded into pandas: by DuckDB straight from the
client's files (a file, a glob, or a hive-partitioned folder), or by the client's own engine
(a DuckDB database file, PostgreSQL or Spark; see :mod:`rox_helpers.engines`). The row rules
are the ones pandera applies to the small tables (required values, parse failures, ranges,
unknown units and customers), written as Ibis predicates that every backend runs; each failing
row gets every reason it failed. Failure counts per rule come back, and a bounded sample of
failing rows (``quarantine_sample``, 10,000 by default) for the quarantine.

Customer ids are pseudonymised inside the engine: the HMAC-SHA256 token of
:func:`rox_helpers.privacy.pseudonymise` is computed with the engine's own sha256 and hex
functions (:func:`rox_helpers.engines.hmac_token`), so raw ids never leave it. Ids that are not
printable ASCII (where Python's NFC normalisation could change the bytes) are few; they are
brought back distinct, hashed in Python and mapped, as are all ids on a backend without the
hash functions.

Nothing is written on the client's engine: DuckDB over files keeps scratch tables in its own
in-memory database; Spark caches the checked log in its session (memory, spilling to local
disk); other engines get only queries (and temporary tables for Ibis memtables: the known
customer ids and those without consent).
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from rox_helpers import engines, privacy
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
    import os
    import tempfile

    # spills go to the system's temporary folder, not a .tmp folder in whatever directory
    # the command runs from (DuckDB's default)
    spill = Path(tempfile.gettempdir()) / f"rox-duckdb-{os.getpid()}"
    con = ibis.duckdb.connect(temp_directory=str(spill))
    con.raw_sql(f"SET memory_limit='{memory_limit}'")
    con.raw_sql("SET preserve_insertion_order=false")
    if threads:
        con.raw_sql(f"SET threads={int(threads)}")
    return con


def _expand(path: str) -> tuple[str, bool]:
    """A folder becomes a recursive glob of its files; hive partitioning when a path segment
    is ``key=value``."""
    hive = any("=" in part for part in Path(path).parts)
    if Path(path).is_dir() or path.endswith("/"):
        base = path.rstrip("/")
        for ext in ("parquet", "pq", "csv", "txt"):
            if glob.glob(f"{base}/**/*.{ext}", recursive=True):
                return f"{base}/**/*.{ext}", hive
        return f"{base}/**/*", hive
    return path, hive


def _read(con: ibis.BaseBackend, path: str, src: Source) -> ibis.Table:
    path, hive = _expand(path)
    fmt = src.format or format_of(Path(path))
    if fmt == "parquet":
        if hive:
            return con.read_parquet(path, table_name="interactions_raw", hive_partitioning=True)
        return con.read_parquet(path, table_name="interactions_raw")
    if fmt == "csv":
        first = Path(sorted(glob.glob(path, recursive=True))[0]) if _is_glob(path) else Path(path)
        enc = src.encoding or detect_encoding(first)
        sep = src.delimiter or detect_delimiter(first, enc)
        duck_enc = "utf-8" if enc.startswith("utf-8") else "latin-1"
        extra = {"hive_partitioning": True} if hive else {}
        return con.read_csv(
            path,
            table_name="interactions_raw",
            all_varchar=True,
            delim=sep,
            header=True,
            encoding=duck_enc,
            **extra,
        )
    raw = read_table(path, format=fmt, sheet=src.sheet)
    return con.create_table("interactions_raw", ibis.memtable(raw.frame))


def _is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _text(col: ibis.Value, backend: str = "duckdb") -> ibis.Value:
    s = col.cast("string")
    # Ibis writes strip() for Spark as TRIM(' \t\n\r\v\f' FROM s), which Spark reads as
    # trimming the letters v and f as well ("front_desk" -> "ront_desk"): a regex instead
    s = s.re_replace(r"^\s+|\s+$", "") if backend == "pyspark" else s.strip()
    return ibis.ifelse(s == "", ibis.null("string"), s)


def _id(col: ibis.Value, backend: str = "duckdb") -> ibis.Value:
    """Ids as text; integral floats (123.0, as parquet writes ids with gaps) become "123",
    the same normalisation the pandas tables get, so references match."""
    if col.type().is_floating():
        whole = col.notnull() & (col == col.round())
        return ibis.ifelse(whole, col.cast("int64").cast("string"), col.cast("string"))
    if col.type().is_integer():
        return col.cast("string")
    s = _text(col, backend)
    return ibis.ifelse(s.re_search(INTEGRAL_RE), s.re_extract(INTEGRAL_RE, 1), s)


DOUBLE_MAX = 1.7976931348623157e308
INTEGRAL_RE = r"^(-?[0-9]+)[.]0+$"
# at most 200 digits and a two-digit exponent: PostgreSQL's cast refuses the whole query on a
# number beyond a double's range (1e999), where DuckDB's try_cast gives infinity (NULL in
# _number); 1e-999 is NULL here and 0 on DuckDB
NUMBER_RE = r"^[+-]?([0-9]{1,200}([.][0-9]{0,200})?|[.][0-9]{1,200})([eE][+-]?[0-9]{1,2})?$"
ISO_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?$"
ISO_OFFSET_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?"
    r" ?(Z|[+-][0-9]{2}:?[0-9]{2})$"
)
# strftime -> (PostgreSQL to_timestamp, Java/Spark, regex guard, what the field is)
_FORMAT_CODES = {
    "%Y": ("YYYY", "yyyy", "[0-9]{4}", "year"),
    "%y": ("YY", "yy", "[0-9]{2}", "year2"),
    "%m": ("MM", "M", "[0-9]{1,2}", "month"),
    "%d": ("DD", "d", "[0-9]{1,2}", "day"),
    "%H": ("HH24", "H", "[0-9]{1,2}", "hour"),
    "%I": ("HH12", "h", "[0-9]{1,2}", "hour12"),
    "%M": ("MI", "m", "[0-9]{1,2}", "minute"),
    "%S": ("SS", "s", "[0-9]{1,2}", "second"),
    "%f": ("US", "SSSSSS", "[0-9]{1,6}", None),
    "%b": ("Mon", "MMM", "[A-Za-z]{3}", "month_abbr"),
    "%B": ("Month", "MMMM", "[A-Za-z]+", "month_name"),
    "%p": ("AM", "a", "[AaPp][Mm]", None),
}
MONTH_NAMES = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
# ISO text with each field captured (for PostgreSQL, whose cast refuses 31 February)
ISO_PARTS_RE = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[ T]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.]([0-9]+))?)?)?"
)
ISO_ROLES = ("year", "month", "day", "hour", "minute", "second", "fraction")
# a UTC offset's hours and minutes (real ones run from -12:00 to +14:00; PostgreSQL refuses
# the whole query beyond 15:59, DuckDB wraps +25:00 into another day)
OFFSET_PARTS_RE = r"([+-])([0-9]{2}):?([0-9]{2})$"


def _translate(fmt: str) -> tuple[str, str, str, tuple[str | None, ...]]:
    """A strftime format as a PostgreSQL pattern, a Spark (Java) pattern, a guard regex with
    one capture group per field, and what each group is (``year``, ``month``, ...)."""
    import re

    pg, java, rx, roles = [], [], ["^"], []
    i = 0
    while i < len(fmt):
        code = fmt[i : i + 2]
        if code in _FORMAT_CODES:
            a, b, c, role = _FORMAT_CODES[code]
            pg.append(a)
            java.append(b)
            rx.append(f"({c})")
            roles.append(role)
            i += 2
            continue
        ch = fmt[i]
        pg.append(f'"{ch}"' if ch.isalpha() else ch)
        java.append(f"'{ch}'" if ch.isalpha() else ch)
        rx.append(re.escape(ch))
        i += 1
    return "".join(pg), "".join(java), "".join(rx) + "$", tuple(roles)


def _real_date(
    s: ibis.Value, pattern: str, roles: Sequence[str | None], *, midnight_24: bool = False
) -> ibis.Value:
    """Whether text that matches ``pattern`` (one capture group per field, ``roles``) is a
    real date and time: month 1-12, a day the month has (29 February in leap years only),
    hour, minute and second in range. PostgreSQL refuses the whole query when one value
    of the right shape is no date (31/02/2026); with this in the guard it is quarantined,
    as DuckDB's and Spark's try-parsers make it NULL. Null for text that does not match.
    ``midnight_24``: 24:00(:00) is the next day's midnight, as an ISO cast reads it."""
    # a field that did not match is NULL ("" on DuckDB, NULL on PostgreSQL)
    parts = {r: s.re_extract(pattern, i + 1).nullif("") for i, r in enumerate(roles) if r}

    def num(role: str) -> ibis.Value:
        return parts[role].cast("int64")

    # year 0 does not exist (PostgreSQL refuses it; DuckDB reads it as 1 BC)
    ok = num("year") >= 1 if "year" in parts else ibis.literal(True)
    year = num("year") if "year" in parts else (num("year2") if "year2" in parts else None)
    month = num("month") if "month" in parts else None
    for role, width in (("month_abbr", 3), ("month_name", None)):
        if role in parts:
            name = parts[role].lower()
            names = [m[:width] if width else m for m in MONTH_NAMES]
            ok = ok & name.isin(names)
            month = ibis.cases(*((name == n, k) for k, n in enumerate(names, 1)), else_=1)
    if month is not None:
        ok = ok & month.between(1, 12)
    if "day" in parts:
        if year is None:
            leap = ibis.literal(True)
        else:  # two-digit years are 1970-2069 on PostgreSQL: leap when divisible by 4
            leap = ((year % 4) == 0) & (((year % 100) != 0) | ((year % 400) == 0))
        if month is None:
            days = ibis.literal(31)
        else:
            days = ibis.cases(
                (month.isin([4, 6, 9, 11]), 30),
                (month == 2, ibis.ifelse(leap, 29, 28)),
                else_=31,
            )
        ok = ok & num("day").between(1, days)
    fields = {}
    for role, lo, hi in (("hour", 0, 23), ("hour12", 1, 12), ("minute", 0, 59), ("second", 0, 59)):
        if role in parts:
            # an optional field left out (ISO without a time) is no error
            fields[role] = num(role).between(lo, hi) | parts[role].isnull()
    if midnight_24 and "hour" in parts:
        zero = [(num(r) == 0) | parts[r].isnull() for r in ("minute", "second") if r in parts]
        if "fraction" in parts:
            zero.append(parts["fraction"].re_search("^0+$") | parts["fraction"].isnull())
        fields["hour"] = fields["hour"] | ((num("hour") == 24) & ibis.and_(*zero))
    return ibis.and_(ok, *fields.values())


def _offset_ok(s: ibis.Value) -> ibis.Value:
    """Whether text's UTC offset (if it ends in one) is a real one: at most 14 hours and 59
    minutes. Checked on every engine, so an offset of +25:00 is quarantined everywhere."""
    # no match is NULL on PostgreSQL and "" on DuckDB
    hh, mm = (s.re_extract(OFFSET_PARTS_RE, i).nullif("") for i in (2, 3))
    bad = (hh.cast("int64") > 14) | (mm.cast("int64") > 59)
    return ~bad.fill_null(False)


def _try_cast(s: ibis.Value, to, guard: str, backend: str) -> ibis.Value:
    """``try_cast``, on PostgreSQL (whose cast raises) as a cast behind a regex guard (and,
    for timestamps, a check that the date is real: :func:`_real_date`)."""
    if backend == "postgres":
        ok = s.re_search(guard)
        if isinstance(to, dt.Timestamp):
            ok = ok & _real_date(s, ISO_PARTS_RE, ISO_ROLES, midnight_24=True).fill_null(False)
        return ibis.ifelse(ok, s.cast(to), ibis.null(to))
    return s.try_cast(to)


def _number(col: ibis.Value, backend: str = "duckdb") -> ibis.Value:
    """Numbers as float64; NaN and infinity (a float column's, or text such as ``1e999``)
    are no values: NULL, so the row is quarantined as not a valid number, as text that
    does not parse is. Passed on, a NaN passes every range check (it compares above
    everything in DuckDB) and makes the engine's exact sums of the column fail."""
    if col.type().is_integer() or col.type().is_boolean():
        return col.cast("float64")
    if col.type().is_numeric():
        x = col.cast("float64")
    else:
        x = _try_cast(_text(col, backend).replace(",", "."), dt.float64, NUMBER_RE, backend)
    # infinity as beyond the largest double: Ibis's isinf lets it through on Spark
    return ibis.ifelse(x.isnan() | (x.abs() > DOUBLE_MAX), ibis.null("float64"), x)


def _boolean(col: ibis.Value, backend: str = "duckdb") -> ibis.Value:
    if col.type().is_boolean():
        return col
    if col.type().is_numeric():
        return ibis.ifelse(col.isnull(), ibis.null("boolean"), col != 0).name(col.get_name())
    s = _text(col, backend).lower()
    return (
        ibis.cases((s.isin(TRUE_TEXT), True), (s.isin(FALSE_TEXT), False), else_=ibis.null())
        .cast("boolean")
        .name(col.get_name())
    )


def _timestamp(col: ibis.Value, fmt: str | None, backend: str = "duckdb") -> ibis.Value:
    """Timestamps (naive, UTC). Unparseable text becomes NULL (and is quarantined): on
    PostgreSQL, whose casts raise, behind a regex guard and a check of the date's fields
    (31/02/2026 is quarantined, not a refused query)."""
    if col.type().is_timestamp():
        return col.cast(dt.Timestamp())
    if col.type().is_date():
        return col.cast(dt.Timestamp())
    s = _text(col, backend)
    if fmt == "offset":
        # offsets honoured: parsed as instants, kept as naive UTC (the pandas tables' convention)
        utc = _try_cast(s, dt.Timestamp(timezone="UTC"), ISO_OFFSET_RE, backend)
        return ibis.ifelse(_offset_ok(s), utc, ibis.null(utc.type())).cast(dt.Timestamp())
    if fmt and not fmt.startswith("%Y-%m-%d"):
        return _strptime(s, fmt, backend)
    return _try_cast(s, dt.Timestamp(), ISO_RE, backend)


def _timestamp_format(raw: ibis.Table, column: str, configured: str | None) -> str | None:
    """The configured format, else one inferred from a sample of the text (or "offset")."""
    if configured or not raw[column].type().is_string():
        return configured
    sample = raw.select(v=raw[column]).filter(lambda t: t.v.notnull()).limit(2000).to_pandas()
    values = sample["v"].astype("str").str.strip()
    if len(values) and values.str.contains(OFFSET_RE, regex=True).mean() > 0.5:
        return "offset"
    return infer_date_format(values)


def _strptime(s: ibis.Value, fmt: str, backend: str) -> ibis.Value:
    """Text in a strftime format to a timestamp, NULL where it does not parse."""
    pg_fmt, java_fmt, guard, roles = _translate(fmt)
    if backend == "postgres":

        @ibis.udf.scalar.builtin(name="to_timestamp")
        def to_timestamp(value: str, fmt: str) -> dt.Timestamp(timezone="UTC"):  # pragma: no cover
            ...

        parsed = to_timestamp(s, pg_fmt).cast(dt.Timestamp())
        ok = s.re_search(guard) & _real_date(s, guard, roles).fill_null(False)
        return ibis.ifelse(ok, parsed, ibis.null(dt.Timestamp()))
    if backend == "pyspark":

        @ibis.udf.scalar.builtin(name="try_to_timestamp")
        def try_to_timestamp(value: str, fmt: str) -> dt.timestamp:  # pragma: no cover
            ...

        return try_to_timestamp(s, java_fmt)

    # DuckDB's try_strptime: unparseable values become NULL (quarantined below)
    @ibis.udf.scalar.builtin(name="try_strptime")
    def try_strptime(value: str, fmt: str) -> dt.timestamp:  # pragma: no cover - SQL builtin
        ...

    return try_strptime(s, fmt)


ODD_ID_RE = r"[^ -~]"  # not printable ASCII: Python's NFC may change the bytes hashed
MAX_CASES = 500  # odd ids mapped by a CASE expression up to this many, by a join beyond


def _pseudonymised_ids(t: ibis.Table, key: privacy.PseudonymKey, backend: str) -> ibis.Table:
    """A table ``_raw_id -> _pid`` over the distinct customer ids, tokens computed in the
    engine (once per distinct id). Ids that are not printable ASCII, and every id on a
    backend without sha256/hex functions, are brought back, hashed by
    :func:`rox_helpers.privacy.pseudonymise` and mapped (a memtable).

    A ``_src_id`` column of ``t`` (the client's raw value each id was normalised from) is
    kept: the log then joins its tokens on the raw column, without normalising every row."""
    extra = [c for c in ("_src_id",) if c in t.columns]
    ids = t.select(t.customer_id.name("_raw_id"), *extra).distinct()
    ids = ids.filter(ids._raw_id.notnull())
    token = engines.hmac_token(ids._raw_id, key.key, backend, "C-")
    if token is None:
        ids_df = ids.to_pandas()
        ids_df["_pid"] = privacy.pseudonymise(ids_df["_raw_id"].astype("str"), key, prefix="C-")
        return ibis.memtable(ids_df)
    odd = ids._raw_id.re_search(ODD_ID_RE)
    odd_df = ids.filter(odd).select("_raw_id").distinct().to_pandas()
    if not len(odd_df):
        return ids.mutate(_pid=token)
    odd_df["_pid"] = privacy.pseudonymise(odd_df["_raw_id"].astype("str"), key, prefix="C-")
    if len(odd_df) <= MAX_CASES:
        mapped = ibis.cases(
            *[(ids._raw_id == r, p) for r, p in zip(odd_df["_raw_id"], odd_df["_pid"], strict=True)]
        )
        return ids.mutate(_pid=ibis.ifelse(odd, mapped, token))
    m = ibis.memtable(odd_df.rename(columns={"_raw_id": "_odd_id", "_pid": "_odd_pid"}))
    j = ids.left_join(m, ids._raw_id == m._odd_id)
    pid = ibis.ifelse(j._odd_pid.notnull(), j._odd_pid, token).name("_pid")
    return j.select(j._raw_id, *[j[c] for c in extra], pid)


def _raw_id_map(
    con: ibis.BaseBackend, raw_id: ibis.Value, key: privacy.PseudonymKey, backend: str
) -> ibis.Table:
    """``_src_key -> _pid``: the token of each distinct raw value of the client's id column
    (normalised by :func:`_id`, then :func:`_pseudonymised_ids`); raw values that normalise
    to nothing (blank) have no row. Materialised on DuckDB."""
    raw_ids = raw_id.name("_src_id").as_table().distinct()
    if backend == "duckdb":
        raw_ids = con.create_table("_src_ids", raw_ids, overwrite=True)
    id_map = _pseudonymised_ids(
        raw_ids.select(customer_id=_id(raw_ids._src_id, backend), _src_id=raw_ids._src_id),
        key,
        backend,
    )
    id_map = id_map.select(_src_key=id_map._src_id, _pid=id_map._pid)
    if backend == "duckdb":
        id_map = con.create_table("_id_map", id_map, overwrite=True)
    return id_map


def _open(loader: _Loader, src: Source, report) -> tuple[ibis.BaseBackend, ibis.Table] | None:
    """The raw log and its backend: the client's engine for a connection, DuckDB over the
    files otherwise. Records a hard problem on ``loader`` and returns None when it cannot."""
    if src.connection:
        try:
            return engines.open_source(src, "data.interactions", loader.root)
        except engines.SourceError as exc:
            loader.problems.append(
                Problem(
                    "error",
                    exc.message,
                    file=exc.file or report.file,
                    table="interactions",
                    column="data.interactions",
                    rule=exc.rule or "readable source",
                    fix=exc.fix or "",
                )
            )
            return None
    path = report.file
    if not _is_glob(path) and not Path(path).exists():
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
    if Path(path).is_file():
        from rox_helpers.io import sha256_file

        report.sha256 = sha256_file(Path(path))
    con = connect()
    try:
        return con, _read(con, path, src)
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


def load_interactions(loader: _Loader, src: Source):
    """Read, map, pseudonymise and validate the interaction log in its engine.

    Returns ``(clean, quarantine, con)``: Ibis tables on the source's backend (``quarantine``
    is a bounded sample of the failing rows, ``src.quarantine_sample`` at most), or None
    after recording a hard problem on ``loader``.
    """
    from rox_helpers.data import TableReport, plan_columns

    spec = CANONICAL["interactions"]
    if src.connection:
        path = src.where()
    else:
        path = str(src.path)
        path = str((loader.root / path).resolve()) if not Path(path).is_absolute() else path
        if path.endswith(("/", "/*")) or str(src.path).endswith("/"):
            path = path.rstrip("*").rstrip("/") + "/"
    report = TableReport(table="interactions", file=path)
    loader.reports["interactions"] = report
    opened = _open(loader, src, report)
    if opened is None:
        return None
    con, raw = opened
    backend = engines.backend_name(con)
    what = "source table" if src.connection else "file"
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
                    f"column {client!r} (for {canon}) not found in the {what}",
                    file=path,
                    table="interactions",
                    column=f"{canon} <- {client}",
                    rule=rule,
                    fix=f"Map it under data.interactions.columns. Columns in the {what}: "
                    f"{', '.join(list(raw.columns)[:25])}",
                )
            )
        engines.disconnect(con)
        return None

    # map and coerce (keep the raw text for the quarantine)
    cols = {}
    raw_text = {}
    for canon, client in mapping.items():
        cspec = spec.columns[canon]
        c = raw[client]
        if cspec.kind not in ("id", "str"):
            raw_text[canon] = _text(c, backend)  # kept only where a value can fail to parse
        if cspec.kind == "id":
            cols[canon] = _id(c, backend)
        elif cspec.kind == "str":
            cols[canon] = _text(c, backend)
        elif cspec.kind == "datetime":
            fmt = _timestamp_format(raw, client, src.date_formats.get(canon) or src.date_format)
            cols[canon] = _timestamp(c, fmt, backend)
        elif cspec.kind in ("float", "int"):
            cols[canon] = _number(c, backend)
        elif cspec.kind == "bool":
            cols[canon] = _boolean(c, backend)
    # pseudonymise customer ids in the engine: the client's distinct raw ids (materialised
    # on DuckDB) are normalised and hashed once each, and the log joins their tokens on the
    # raw column. Normalising every row of the log instead (a trim and a regex per row,
    # which DuckDB inlined into the hash and the join) was most of the load at 10M rows.
    client_id = mapping["customer_id"]
    id_map = _raw_id_map(con, raw[client_id], loader.get_key(), backend)
    order = list(cols)
    cols.pop("customer_id")
    t = raw.select(_src_id=raw[client_id], **cols, **{f"_raw_{k}": v for k, v in raw_text.items()})
    t = t.left_join(id_map, t._src_id == id_map._src_key)
    # the raw id never leaves the engine
    t = t.mutate(customer_id=t._pid).select(*order, *[f"_raw_{k}" for k in raw_text])

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
            what_fails = (
                "does not parse as a date"
                if cspec.kind == "datetime"
                else f"is not a valid {cspec.kind}"
            )
            rules.append((c.isnull() & t[f"_raw_{canon}"].notnull(), f"{canon}: {what_fails}"))
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
        known = ibis.memtable(pd.DataFrame({"_known": sorted(loader.all_customer_ids)}))
        if backend == "duckdb":
            known = con.create_table("_known_customers", known, overwrite=True)
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
    checked = t.drop(*raw_cols)
    if backend == "duckdb":
        # One pass over the files materialises the slim checked log (canonical columns and
        # the reason; DuckDB spills to disk beyond its memory limit) in our own in-memory
        # database. Counts and features read it; only the quarantine export goes back to the
        # raw text, for the few failing rows. A client's engine only answers queries.
        checked = con.create_table("_interactions_checked", checked, overwrite=True)
    elif backend == "pyspark":
        # Spark's own cache (executor memory, spilling to its local disk; nothing written to
        # the lake or the catalog): every query below would otherwise read the files and
        # redo the ids, tokens, joins and rules (step 00 of the sample: 8 such jobs). A
        # temporary view first: it registers the memtables (known ids) the cache reads.
        checked = con.create_view("_interactions_checked", checked, overwrite=True).cache()

    counts = checked.group_by("reason").aggregate(n=checked.count()).to_pandas()
    report.rows_read = int(counts["n"].sum())
    bad = counts[counts["reason"] != ""]
    report.rows_quarantined = int(bad["n"].sum())
    # sorted: engines return groups in any order, the report must not
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
    limit = src.quarantine_sample
    kept = min(report.rows_quarantined, limit)
    report.quarantine_kept = kept
    if report.rows_quarantined:
        sample = (
            f" The quarantine keeps a sample of {kept:,} of these {report.rows_quarantined:,} "
            "rows (data.interactions.quarantine_sample); the counts cover them all."
            if kept < report.rows_quarantined
            else ""
        )
        loader.problems.append(
            Problem(
                "warning",
                f"{report.rows_quarantined} row(s) quarantined: "
                + ", ".join(f"{k} ({v})" for k, v in sorted(report.reasons.items()))
                + sample,
                file=path,
                table="interactions",
                rule="row validation",
                n_rows=report.rows_quarantined,
                fix="See runs/<ts>/quarantine/interactions.csv; correct the rows with the client "
                "or accept their exclusion.",
            )
        )
    if loader.no_consent_ids:
        nc = ibis.memtable(pd.DataFrame({"_nc": sorted(loader.no_consent_ids)}))
        if backend == "duckdb":
            nc = con.create_table("_no_consent", nc, overwrite=True)
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
    # in a fixed order, so the sample kept and the exported file are the same run to run
    # (the engine returns rows in any order; a join above reorders them)
    by = list(quarantine.columns)
    if kept < report.rows_quarantined:
        quarantine = quarantine.mutate(
            sample=ibis.literal(
                f"sample: {kept:,} of {report.rows_quarantined:,} failing rows kept"
            )
        )
    quarantine = quarantine.order_by(by)
    if kept < report.rows_quarantined:
        quarantine = quarantine.limit(limit)
    report.rows_valid = report.rows_read - report.rows_quarantined - report.rows_excluded_consent
    return clean, quarantine, con
