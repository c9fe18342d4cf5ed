"""Type coercion, missing-value codes and pandera validation of canonical tables.

The rules come from :mod:`rox_helpers.schemas` (plus the codebook scales in
engagement.yml).  Validation is lazy: every failing row is found at once, and
each row gets every reason it failed, so the quarantine file explains itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from rox_helpers.schemas import ColumnSpec, TableSpec

# Text that means "no answer" in nearly every client export; always missing, always counted.
DEFAULT_MISSING_TEXT = ("N/A", "n/a", "NA", "#N/A", "NULL", "null", "None", "none", "-", "nan")

TRUE_WORDS = {"y", "yes", "true", "t", "1", "ja", "oui", "si", "sí", "x"}
FALSE_WORDS = {"n", "no", "false", "f", "0", "nein", "non"}

DATE_CANDIDATES = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%m/%d/%Y %I:%M:%S %p",
    "%Y-%m",
    "%b %Y",
    "%B %Y",
)


def isin_ids(s: pd.Series, ids: Iterable[str] | pd.Index) -> pd.Series:
    """``s.isin(ids)`` for large id sets.

    pandas 3's string ``isin`` builds a pyarrow scalar per lookup value (7 s for 200k values
    against 1M ids); comparing as Python objects uses a hash table (0.6 s).
    """
    index = ids if isinstance(ids, pd.Index) else pd.Index(list(ids), dtype=object)
    return pd.Series(s.astype(object).isin(index.astype(object)), index=s.index)


# --------------------------------------------------------------------------------------
# Missing-value codes
# --------------------------------------------------------------------------------------


def _code_strings(codes: Iterable[object]) -> set[str]:
    out: set[str] = set()
    for c in codes:
        out.add(str(c).strip())
        if isinstance(c, int | float) and not isinstance(c, bool) and float(c).is_integer():
            out.add(str(int(c)))
            out.add(f"{float(c)}")
    return out


def apply_missing_codes(s: pd.Series, codes: Iterable[object]) -> tuple[pd.Series, int]:
    """Turn values equal to any code (compared as text, so 99 matches "99" and 99.0)
    into missing values; return the new series and how many cells changed."""
    code_set = _code_strings(codes)
    if not code_set or s.isna().all():
        return s, 0
    present = s.notna()
    as_text = s.astype("str").str.strip()
    mask = present & as_text.isin(code_set)
    n = int(mask.sum())
    return (s.mask(mask) if n else s), n


# --------------------------------------------------------------------------------------
# Coercion
# --------------------------------------------------------------------------------------


def infer_date_format(values: pd.Series, candidates: Sequence[str] = DATE_CANDIDATES) -> str | None:
    """The candidate format that parses the most of a sample of ``values``.

    Day-first and month-first formats are told apart by the values themselves
    (a first field above 12); when both parse everything, day-first wins (the
    convention of most clients outside the US) and the caller should say so.
    """
    sample = values.dropna().astype("str").str.strip()
    sample = sample[sample != ""].head(2000)
    if sample.empty:
        return None
    best, best_n = None, 0
    for fmt in candidates:
        n = int(pd.to_datetime(sample, format=fmt, errors="coerce").notna().sum())
        if n > best_n:
            best, best_n = fmt, n
    return best if best_n > 0 else None


def _parse_dates(s: pd.Series, fmt: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    else:
        text = s.astype("str").str.strip().where(s.notna())
        fmt = fmt or infer_date_format(text)
        # utc=True: offsets ("+02:00", "Z") are honoured, and mixed offsets do not raise
        out = pd.to_datetime(text, format=fmt or "mixed", errors="coerce", utc=True)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out.astype("datetime64[us]")


def _to_number(s: pd.Series) -> pd.Series:
    """Numbers as float64. Infinity (a float column's, or text such as ``inf`` or ``1e999``)
    is no value: NaN here, so a present value that becomes NaN is quarantined, as the
    interaction log's loader does (a NaN in a float column is missing, as pandas reads it)."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    if pd.api.types.is_numeric_dtype(s):
        out = s.astype("float64")
    else:
        text = s.astype("str").str.strip().where(s.notna())
        # decimal comma ("3,5") when there is no dot; thousands separators are not guessed
        text = text.str.replace(r"^(-?\d+),(\d+)$", r"\1.\2", regex=True)
        text = text.str.replace(r"^[€$£]\s*", "", regex=True)
        out = pd.to_numeric(text, errors="coerce").astype("float64")
    return out.mask(np.isinf(out))


def _to_bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean")
    text = s.astype("str").str.strip().str.lower().where(s.notna())
    text = text.str.replace(r"\.0$", "", regex=True)
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[text.isin(TRUE_WORDS)] = True
    out[text.isin(FALSE_WORDS)] = False
    return out


def to_id_text(s: pd.Series) -> pd.Series:
    """Identifiers as stripped text; integral floats (123.0, as Excel gives) become "123"."""
    if pd.api.types.is_float_dtype(s):
        ints = s.dropna()
        if (ints == ints.round()).all():
            s = s.astype("Int64")
    out = s.astype("str").str.strip().where(s.notna())
    out = out.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)  # "123.0" as CSV writes floats
    return out.mask(out == "").astype("str")


def coerce_column(
    s: pd.Series, spec: ColumnSpec, *, date_format: str | None = None
) -> tuple[pd.Series, pd.Series]:
    """Convert a client column to the canonical kind.

    Returns
    -------
    (converted, unparseable)
        ``unparseable`` is True where a value was present but could not be
        converted (those rows are quarantined with the original value).
    """
    present = s.notna()
    if spec.kind in ("id",):
        out = to_id_text(s)
    elif spec.kind == "str":
        out = s.astype("str").str.strip().where(present)
        out = out.mask(out == "").astype("str")
        present = out.notna()
    elif spec.kind in ("date", "datetime"):
        out = _parse_dates(s, date_format)
        if spec.kind == "date":
            out = out.dt.normalize()
    elif spec.kind == "period":
        out = _parse_dates(s, date_format)
        out = out.dt.to_period("M").dt.to_timestamp().astype("datetime64[us]")
    elif spec.kind in ("float", "int"):
        out = _to_number(s)
    elif spec.kind == "bool":
        out = _to_bool(s)
    else:  # pragma: no cover - guarded by Kind
        raise ValueError(spec.kind)
    bad = present & out.isna()
    return out, bad


# --------------------------------------------------------------------------------------
# Pandera schema
# --------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:g}"


def build_schema(
    spec: TableSpec,
    columns: Sequence[str],
    *,
    measure_specs: dict[str, ColumnSpec] | None = None,
    references: dict[str, set[str]] | None = None,
) -> pa.DataFrameSchema:
    """A pandera schema for the canonical ``columns`` present in a table.

    Parameters
    ----------
    spec : TableSpec
        The canonical table.
    columns : sequence of str
        Columns present after mapping (canonical names and mapped measures).
    measure_specs : dict, optional
        Specs for extra measure columns (codebook attributes, KPIs), with ranges.
    references : dict, optional
        ``column -> set of valid ids`` for referential integrity.
    """
    measure_specs = measure_specs or {}
    references = references or {}
    cols: dict[str, pa.Column] = {}
    for name in columns:
        cspec = spec.columns.get(name) or measure_specs.get(name)
        if cspec is None:
            continue
        checks: list[pa.Check] = []
        if cspec.min is not None and cspec.max is not None:
            checks.append(
                pa.Check.in_range(
                    cspec.min, cspec.max, error=f"outside {_fmt(cspec.min)}-{_fmt(cspec.max)}"
                )
            )
        elif cspec.min is not None:
            checks.append(pa.Check.ge(cspec.min, error=f"below {_fmt(cspec.min)}"))
        elif cspec.max is not None:
            checks.append(pa.Check.le(cspec.max, error=f"above {_fmt(cspec.max)}"))
        if cspec.allowed:
            checks.append(
                pa.Check.isin(list(cspec.allowed), error=f"not one of {', '.join(cspec.allowed)}")
            )
        if name in references:
            # built once per table; membership needs no order (sorting a million ids did)
            valid = pd.Index(list(references[name]), dtype=object)
            target = cspec.references or "the referenced table"
            checks.append(
                pa.Check(
                    lambda s, valid=valid: isin_ids(s, valid),
                    element_wise=False,
                    ignore_na=True,
                    error=f"unknown id (not in {target})",
                )
            )
        cols[name] = pa.Column(
            nullable=not cspec.required,
            checks=checks,
            required=True,
            coerce=False,
        )
    key = [k for k in spec.key if k in columns]
    return pa.DataFrameSchema(
        cols,
        unique=key or None,
        report_duplicates="exclude_first",
        strict=False,
        name=spec.name,
    )


def row_failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.Series:
    """Validate lazily; return ``index -> "; "-joined reasons`` for failing rows only."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        fc = exc.failure_cases
    else:
        return pd.Series(dtype="str")
    fc = fc[fc["index"].notna()]
    if fc.empty:
        return pd.Series(dtype="str")
    # a duplicate compound key is reported once per key column: say it once, naming the key
    key = [k for k in (schema.unique or []) if k in frame.columns]
    if len(key) > 1:
        dup = fc["check"].astype("str").str.contains("uniqu", case=False)
        fc.loc[dup, "column"] = "(" + ", ".join(key) + ")"
    check = fc["check"].astype("str")
    column = fc["column"].astype("str")
    value = fc["failure_case"].astype("str")
    reason = np.select(
        [
            check.str.contains("not_nullable"),
            check.str.contains("uniqu", case=False),
        ],
        [
            column + ": required value missing",
            "duplicate " + column.str.replace(r"[\[\]']", "", regex=True) + " (first kept)",
        ],
        default=column + ": " + check + " (value " + value + ")",
    )
    out = (
        pd.DataFrame({"index": fc["index"].astype("int64"), "reason": reason})
        .drop_duplicates()
        .groupby("index")["reason"]
        .agg("; ".join)
    )
    return out.astype("str")


def normalise_name(name: str) -> str:
    """snake_case a client column name (used for matching, not for renaming)."""
    s = re.sub(r"[^0-9a-zA-Z]+", "_", str(name)).strip("_").lower()
    return re.sub(r"_+", "_", s)
