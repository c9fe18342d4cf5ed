"""Read client files as they were received: CSV, Parquet, Excel and SPSS ``.sav``.

Readers return the client's columns untouched (no renaming, no type coercion:
that is :mod:`rox_helpers.data`'s job) plus what the file itself says about
them: detected encoding and delimiter, SPSS column labels, value labels and
declared missing values.

CSV encodings detected: UTF-8, UTF-8 with BOM, and cp1252 (the superset of
latin-1 that Excel on Windows writes).  Delimiters detected: ``,`` ``;`` tab ``|``.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rox_helpers.config import FORMAT_BY_SUFFIX
from rox_helpers.errors import DataValidationError

SNIFF_BYTES = 256 * 1024
FORMATS = ("csv", "parquet", "excel", "sav")


@dataclass
class RawTable:
    """A file as read, before mapping.

    ``missing_by_column`` counts values the file itself declared missing (SPSS
    user-missing codes) and that were turned into missing values on read.
    """

    frame: pd.DataFrame
    path: Path
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    column_labels: dict[str, str] = field(default_factory=dict)
    value_labels: dict[str, dict[object, str]] = field(default_factory=dict)
    missing_by_column: dict[str, int] = field(default_factory=dict)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def format_of(path: Path) -> str:
    """The format implied by a file's suffix (csv when unknown)."""
    return FORMAT_BY_SUFFIX.get(path.suffix.lower(), "csv")


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` (BOM), ``utf-8`` or ``cp1252``, from the first bytes of the file."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is still UTF-8
        if exc.start >= len(head) - 3 and exc.reason.startswith("unexpected end"):
            return "utf-8"
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def detect_delimiter(path: Path, encoding: str) -> str:
    """The most plausible delimiter among ``, ; \\t |`` (csv.Sniffer, then counts)."""
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        sample = fh.read(64 * 1024)
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in ",;\t|"}
        return max(counts, key=counts.get) if max(counts.values()) else ","


def read_table(
    path: str | Path,
    *,
    format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
    nrows: int | None = None,
) -> RawTable:
    """Read one client file.

    Parameters
    ----------
    path : str or Path
        The file.
    format : {"csv", "parquet", "excel", "sav"}, optional
        Defaults to the one implied by the suffix.
    encoding, delimiter : str, optional
        CSV only; detected when not given.
    sheet : str or int, optional
        Excel only; the first sheet by default.
    nrows : int, optional
        Read only the first rows (used to inspect unknown files).

    Returns
    -------
    RawTable
        CSV and Excel cells are strings (missing cells are missing, nothing
        else is interpreted); Parquet and SPSS keep their types.

    Raises
    ------
    DataValidationError
        When the file is missing or cannot be parsed as the format says.
    """
    path = Path(path)
    fmt = format or format_of(path)
    if not path.is_file():
        raise DataValidationError(
            f"File not found: {path}",
            file=str(path),
            rule="declared data file exists",
            fix="Check the `path:` under `data:` in engagement.yml (relative to the "
            "engagement folder) or copy the client's file there.",
        )
    try:
        if fmt == "csv":
            enc = encoding or detect_encoding(path)
            sep = delimiter or detect_delimiter(path, enc)
            frame = pd.read_csv(
                path,
                sep=sep,
                encoding=enc,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                nrows=nrows,
                skipinitialspace=True,
            )
            return RawTable(frame, path, fmt, encoding=enc, delimiter=sep)
        if fmt == "parquet":
            frame = pd.read_parquet(path)
            if nrows is not None:
                frame = frame.head(nrows)
            return RawTable(frame, path, fmt)
        if fmt == "excel":
            frame = pd.read_excel(path, sheet_name=sheet or 0, dtype=str, nrows=nrows)
            return RawTable(frame, path, fmt)
        if fmt == "sav":
            return _read_sav(path, nrows=nrows)
    except DataValidationError:
        raise
    except Exception as exc:  # a parser's own error, re-said with the file and a fix
        raise DataValidationError(
            f"Could not read {path.name} as {fmt}: {type(exc).__name__}: {exc}",
            file=str(path),
            rule=f"readable {fmt} file",
            fix="Check the file opens in its own program; set `format:`, `encoding:` or "
            "`delimiter:` for this source in engagement.yml if detection guessed wrong.",
        ) from exc
    raise DataValidationError(
        f"Unknown format {fmt!r} for {path}",
        file=str(path),
        rule=f"format is one of {', '.join(FORMATS)}",
        fix="Set `format:` for this source in engagement.yml.",
    )


def _read_sav(path: Path, *, nrows: int | None) -> RawTable:
    """SPSS: value labels and column labels kept; declared user-missing codes become
    missing values and are counted per column."""
    import pyreadstat

    kw = {"row_limit": nrows} if nrows else {}
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True, **kw)
    missing: dict[str, int] = {}
    declared_ranges = meta.missing_ranges or {}
    declared_values = getattr(meta, "missing_user_values", None) or {}
    for col in frame.columns:
        mask = pd.Series(False, index=frame.index)
        for rng in declared_ranges.get(col, []):
            lo, hi = rng.get("lo"), rng.get("hi")
            s = frame[col]
            if pd.api.types.is_numeric_dtype(s):
                mask |= s.between(lo, hi)
            else:
                mask |= s.isin([lo, hi])
        for v in declared_values.get(col, []):
            mask |= frame[col] == v
        n = int(mask.sum())
        if n:
            frame[col] = frame[col].mask(mask)
            missing[col] = n
    # SPSS stores empty strings for missing text: make them missing
    for col in frame.columns:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            frame[col] = frame[col].replace("", pd.NA)
    return RawTable(
        frame,
        path,
        "sav",
        column_labels={
            c: lab for c, lab in zip(meta.column_names, meta.column_labels, strict=False) if lab
        },
        value_labels=dict(meta.variable_value_labels or {}),
        missing_by_column=missing,
    )
