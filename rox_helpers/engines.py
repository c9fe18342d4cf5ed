"""Where a table lives: files read by DuckDB, or a connection to a client's engine.

A source in ``engagement.yml`` is either ``path`` (a file, a glob such as
``data/interactions/*.parquet``, or a hive-partitioned folder such as
``interactions/year=2026/month=*/``, whose partition columns are kept) or ``connection``
plus ``table``:

=================================================  ===============================================
``duckdb:///abs/path.duckdb``, ``db/x.duckdb``     a DuckDB database file (relative paths from the
                                                   engagement folder), opened read-only
``postgresql://user@host:port/db``                 PostgreSQL through Ibis's postgres backend
                                                   (libpq: PGPASSWORD, PGUSER, ~/.pgpass and
                                                   PGSERVICE are honoured)
``spark:local[*]``, ``spark://master:7077``        Spark through Ibis's pyspark backend; the table
                                                   is a catalog table or a Parquet/Delta path
=================================================  ===============================================

Connections are made through Ibis backends only (no hand-written driver calls or SQL).
Credentials never sit in ``engagement.yml``: a literal password in a URL is a configuration
error; ``${VAR}`` references are expanded from the environment at connect time, and the
expanded text is never stored, printed or written to a manifest. :func:`describe` is what
messages and the manifest show (backend, host, database, table; no user, no password).

Every failure to reach a table is turned into a :class:`SourceError` (a
:class:`~rox_helpers.errors.RoxError`) naming the source (``data.interactions``), the
backend and the fix: server down, authentication failed, database missing, table missing,
permission denied.

:func:`hmac_token` computes the workbook's pseudonym (:func:`rox_helpers.privacy.pseudonymise`)
inside the engine, so raw identifiers never leave it.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import ibis
import ibis.expr.datatypes as dt

from rox_helpers.errors import RoxError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from rox_helpers.config import Source

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
BACKENDS = ("duckdb", "postgres", "pyspark")
PASSWORD_FIX = (
    "Remove it from engagement.yml. PostgreSQL reads it from the environment (PGPASSWORD), "
    "from ~/.pgpass or from a PGSERVICE entry in ~/.pg_service.conf; or write "
    "${MY_PG_PASSWORD} in the URL and set that variable before `rox run`."
)


class SourceError(RoxError):
    """A source that cannot be read: names the source, the backend and the fix."""


@dataclass(frozen=True)
class Connection:
    """A parsed ``connection:`` value (no secrets: ``${VAR}`` references stay unexpanded)."""

    backend: str  # duckdb | postgres | pyspark
    text: str
    host: str = ""
    port: int | None = None
    database: str = ""
    master: str = ""
    path: str = ""  # DuckDB database file

    def label(self) -> str:
        """The backend and where it is, without user or password."""
        if self.backend == "postgres":
            where = self.host or "local socket"
            if self.port:
                where += f":{self.port}"
            return f"postgres {where}/{self.database}".rstrip("/")
        if self.backend == "pyspark":
            return f"spark {self.master}"
        return f"duckdb {self.path}"


def literal_password_problem(text: str) -> str | None:
    """Why a connection text is refused (a password written into it), or None."""
    if "://" not in text:
        return None
    parts = urlsplit(text)
    password = parts.password
    if password is None:
        for k, v in parse_qsl(parts.query):
            if k.lower() == "password":
                password = v
    if password is None or ENV_REF.fullmatch(password):
        return None
    return "the connection URL holds a password, and engagement.yml is shared. " + PASSWORD_FIX


def parse_connection(text: str, root: Path | None = None) -> Connection:
    """Which backend a ``connection:`` names, and where (nothing is opened)."""
    t = text.strip()
    low = t.lower()
    if low.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(t)
        return Connection(
            "postgres",
            t,
            host=parts.hostname or "",
            port=parts.port,
            database=parts.path.lstrip("/").split("/")[0],
        )
    if low.startswith("spark:"):
        rest = t[len("spark:") :]
        master = "spark:" + rest if rest.startswith("//") else rest  # spark://host:7077
        return Connection("pyspark", t, master=master or "local[*]")
    if low.startswith("duckdb://") or low.endswith((".duckdb", ".ddb", ".db")):
        raw = t[len("duckdb://") :] if low.startswith("duckdb://") else t
        path = Path(raw)
        if not path.is_absolute() and root is not None:
            path = Path(root) / path
        return Connection("duckdb", t, path=str(path))
    raise SourceError(
        f"Unknown kind of connection {t.split('://')[0]!r}.",
        rule="connection is duckdb, postgresql or spark",
        fix="Use duckdb:///path/file.duckdb (or a .duckdb path), "
        "postgresql://user@host:5432/db, spark:local[*] or spark://master:7077.",
    )


def describe(connection: str, table: str | None) -> str:
    """How messages and the manifest name a connection source (no credentials)."""
    try:
        label = parse_connection(connection).label()
    except SourceError:
        label = "unknown connection"
    return f"{label}, table {table}" if table else label


def expand_env(text: str, source: str) -> str:
    """``${VAR}`` references replaced by the environment's values (never shown)."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise SourceError(
                f"{source}: the connection refers to ${{{name}}}, which is not set.",
                column=source,
                rule="credentials come from the environment",
                fix=f"Set {name} in the environment (export {name}=...) before `rox run`.",
            )
        from urllib.parse import quote

        return quote(os.environ[name], safe="")

    return ENV_REF.sub(sub, text)


def is_path_like(table: str) -> bool:
    """Whether a Spark ``table:`` is a file path rather than a catalog table."""
    return "/" in table or table.endswith((".parquet", ".delta")) or ":" in table


# --------------------------------------------------------------------------------------
# Connecting and opening a table
# --------------------------------------------------------------------------------------


def _fix_for(kind: str, conn: Connection, source: str, table: str) -> tuple[str, str]:
    """(rule, fix) for one kind of failure."""
    where = conn.label()
    if kind == "down":
        return (
            "server reachable",
            f"Check that the server at {where} is running and reachable from this machine "
            "(host and port in the connection URL, VPN, firewall).",
        )
    if kind == "auth":
        return (
            "authentication",
            "Check the user in the URL (or PGUSER) and give its password through "
            "PGPASSWORD, ~/.pgpass, a PGSERVICE entry or ${VAR} in the URL; ask the "
            "client's DBA for a read-only role if you have none.",
        )
    if kind == "database":
        return (
            "database exists",
            f"Correct the database name at the end of {source}.connection (the server has "
            "no such database).",
        )
    if kind == "table":
        return (
            "table exists",
            f"Correct {source}.table (schema.table); list the tables the role can see with "
            "the client's DBA.",
        )
    if kind == "permission":
        return (
            "read permission",
            f"Ask the client's DBA to grant SELECT on {table} (and USAGE on its schema) to "
            "the role in the connection.",
        )
    if kind == "file":
        return (
            "database file exists",
            f"Check {source}.connection (a relative path starts at the engagement folder).",
        )
    return ("readable source", f"Check {source} in engagement.yml and that the engine answers.")


def classify(exc: BaseException) -> str:
    """The kind of a connection failure, from the driver's exception (any backend)."""
    text = f"{type(exc).__name__}: {exc}".lower()
    state = getattr(getattr(exc, "diag", None), "sqlstate", None) or getattr(exc, "sqlstate", "")
    if state == "42501" or "permission denied" in text or "insufficient privilege" in text:
        return "permission"
    if state == "3D000" or ("database" in text and "does not exist" in text):
        return "database"
    if (
        state in ("28000", "28P01")
        or "authentication failed" in text
        or "no password supplied" in text
        or ("role" in text and "does not exist" in text)
    ):
        return "auth"
    if state in ("42P01", "3F000") or any(
        s in text
        for s in (
            "tablenotfound",
            "table_or_view_not_found",
            "path_not_found",
            "does not exist",
            "not found",
            "no such table",
        )
    ):
        return "table"
    if any(
        s in text
        for s in (
            "connection refused",
            "could not connect",
            "timeout",
            "timed out",
            "could not translate host name",
            "name or service not known",
            "no route to host",
            "server closed the connection",
            "connection failed",
        )
    ):
        return "down"
    return "other"


def source_error(
    exc: BaseException, conn: Connection, source: str, table: str, *, kind: str | None = None
) -> SourceError:
    """A :class:`SourceError` for a failure of ``conn`` (the driver's text is kept)."""
    kind = kind or classify(exc)
    rule, fix = _fix_for(kind, conn, source, table)
    what = {
        "down": "the server does not answer",
        "auth": "authentication failed",
        "database": "the database does not exist",
        "table": f"table {table} not found",
        "permission": f"permission denied on {table}",
        "file": "the database file does not exist",
    }.get(kind, "could not read the source")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SourceError(
        f"{source} ({conn.label()}): {what}. The {conn.backend} backend said: {detail}",
        file=describe(conn.text, table),
        column=source,
        rule=rule,
        fix=fix,
    )


def connect(conn: Connection, source: str, table: str = "") -> ibis.BaseBackend:
    """An Ibis backend for ``conn``; :class:`SourceError` with the fix when it fails."""
    if conn.backend == "postgres":
        url = urlsplit(expand_env(conn.text, source))
        kwargs: dict[str, object] = dict(parse_qsl(url.query))
        from urllib.parse import unquote

        if url.username:
            kwargs["user"] = unquote(url.username)
        if url.password:
            kwargs["password"] = unquote(url.password)
        if url.hostname:
            kwargs["host"] = url.hostname
        kwargs["port"] = url.port or int(os.environ.get("PGPORT", 5432))
        database = url.path.lstrip("/").split("/")[0]
        if database:
            kwargs["database"] = database
        kwargs.setdefault("connect_timeout", 10)
        try:
            return ibis.postgres.connect(**kwargs)
        except Exception as exc:
            raise source_error(exc, conn, source, table) from None
    if conn.backend == "pyspark":
        from rox_helpers.spark import get_session

        try:
            session = get_session(conn.master)
        except RoxError as exc:
            raise SourceError(
                f"{source} ({conn.label()}): {exc.message}",
                file=describe(conn.text, table),
                column=source,
                rule="Spark available",
                fix=exc.fix,
            ) from None
        except Exception as exc:
            raise source_error(exc, conn, source, table) from None
        return ibis.pyspark.connect(session)
    path = Path(conn.path)
    if not path.is_file():
        raise source_error(FileNotFoundError(f"no file {path}"), conn, source, table, kind="file")
    # An in-memory DuckDB with the database attached read-only: the client's file is never
    # written, while the load keeps its own scratch tables in memory.
    from rox_helpers.interactions import connect as duck

    con = duck()
    try:
        con.attach(str(path), name="source_db", read_only=True)
    except Exception as exc:
        raise source_error(exc, conn, source, table) from None
    return con


def open_table(
    con: ibis.BaseBackend, conn: Connection, table: str, source: str, root: Path | None = None
) -> ibis.Table:
    """The source table as an Ibis table, checked readable (one row is fetched)."""
    try:
        if conn.backend == "pyspark" and is_path_like(table):
            path = table
            if "://" not in table and not Path(table).is_absolute() and root is not None:
                path = str(Path(root) / table)
            if "://" not in path and not Path(path).exists():
                raise FileNotFoundError(f"path_not_found: {path}")
            if (Path(path) / "_delta_log").is_dir() or table.endswith(".delta"):
                t = con.read_delta(path)
            else:
                t = con.read_parquet(path)
        else:
            *schema, name = table.split(".")
            kwargs = {}
            if conn.backend == "duckdb":
                kwargs["database"] = ("source_db", schema[0]) if schema else "source_db"
            elif schema:
                kwargs["database"] = schema[-1]
            t = con.table(name, **kwargs)
        t.limit(1).execute()
    except SourceError:
        raise
    except Exception as exc:
        raise source_error(exc, conn, source, table) from None
    return t


def open_source(src: Source, source: str, root: Path) -> tuple[ibis.BaseBackend, ibis.Table]:
    """Connect to a connection source and open its table (SourceError on failure)."""
    conn = parse_connection(src.connection or "", root)
    con = connect(conn, source, src.table or "")
    return con, open_table(con, conn, src.table or "", source, root)


def backend_name(con: ibis.BaseBackend) -> str:
    return getattr(con, "name", "duckdb")


def manifest_entry(src: Source, table: str, root: Path, *, count: bool = True) -> dict:
    """What the run manifest records of a connection source: backend, host, database and
    table, and the row count (no credentials, no file hash: the data is not a file)."""
    conn = parse_connection(src.connection or "", root)
    entry: dict[str, object] = {
        "table": table,
        "path": describe(src.connection or "", src.table),  # what `rox diff` shows
        "backend": conn.backend,
        "source_table": src.table,
        "where": conn.label(),
        "extract": src.resolved_extract,
    }
    if conn.backend == "postgres":
        entry.update(host=conn.host, database=conn.database)
    elif conn.backend == "duckdb":
        p = Path(conn.path)
        entry["file"] = str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
    if count:
        con, t = open_source(src, f"data.{table}", root)
        entry["rows"] = int(t.count().to_pyarrow().as_py())
        disconnect(con)
    return entry


def disconnect(con: ibis.BaseBackend) -> None:
    """Close a client connection (a Spark session is shared and left running)."""
    if backend_name(con) == "postgres":
        with contextlib.suppress(Exception):  # closing a broken connection
            con.disconnect()


# --------------------------------------------------------------------------------------
# Pseudonyms in the engine
# --------------------------------------------------------------------------------------


def _pads(key: bytes) -> tuple[str, str]:
    import hashlib

    if len(key) > 64:  # RFC 2104: long keys are hashed first
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key).hex(), bytes(b ^ 0x5C for b in key).hex()


def _hash_fns(backend: str):
    """(utf8 text -> hex, hex -> hex of its sha256) for ``backend``, or None."""
    if backend == "duckdb":

        @ibis.udf.scalar.builtin(name="encode")
        def utf8(s: str) -> dt.binary: ...  # pragma: no cover - SQL builtin

        @ibis.udf.scalar.builtin(name="hex")
        def hexs(b: dt.binary) -> str: ...  # pragma: no cover

        @ibis.udf.scalar.builtin(name="unhex")
        def unhex(s: str) -> dt.binary: ...  # pragma: no cover

        @ibis.udf.scalar.builtin(name="sha256")
        def sha(b: dt.binary) -> str: ...  # pragma: no cover

        return (lambda s: hexs(utf8(s))), (lambda h: sha(unhex(h)))
    if backend == "postgres":

        @ibis.udf.scalar.builtin(name="convert_to")
        def convert_to(s: str, enc: str) -> dt.binary: ...  # pragma: no cover

        @ibis.udf.scalar.builtin(name="encode")
        def encode(b: dt.binary, fmt: str) -> str: ...  # pragma: no cover

        @ibis.udf.scalar.builtin(name="decode")
        def decode(s: str, fmt: str) -> dt.binary: ...  # pragma: no cover

        @ibis.udf.scalar.builtin(name="sha256")
        def sha(b: dt.binary) -> dt.binary: ...  # pragma: no cover

        return (
            lambda s: encode(convert_to(s, "UTF8"), "hex"),
            lambda h: encode(sha(decode(h, "hex")), "hex"),
        )
    if backend == "pyspark":

        @ibis.udf.scalar.builtin(name="hex")
        def hexs(b: dt.binary) -> str: ...  # pragma: no cover

        @ibis.udf.scalar.builtin(name="unhex")
        def unhex(s: str) -> dt.binary: ...  # pragma: no cover

        @ibis.udf.scalar.builtin(name="sha2")
        def sha2(b: dt.binary, bits: int) -> str: ...  # pragma: no cover

        return (lambda s: hexs(s.cast("binary"))), (lambda h: sha2(unhex(h), 256))
    return None


def supports_hmac(backend: str) -> bool:
    return backend in BACKENDS


def hmac_token(value: ibis.Value, key: bytes, backend: str, prefix: str, n_hex: int = 16):
    """``prefix`` + the first ``n_hex`` hex characters of HMAC-SHA256(key, value), computed
    in the engine: SHA256((K xor opad) || SHA256((K xor ipad) || m)), with the message as
    UTF-8 bytes. Equal to :func:`rox_helpers.privacy.pseudonymise` for values that are
    already normalised text (stripped; printable ASCII, where NFC changes nothing).

    The key's pads are part of the query the engine receives (as any literal is); a server
    that logs statement text keeps them in its log. Returns None for backends without the
    hash functions.
    """
    fns = _hash_fns(backend)
    if fns is None:
        return None
    to_hex, sha_hex = fns
    ipad, opad = _pads(key)
    inner = sha_hex(ipad + to_hex(value))
    outer = sha_hex(opad + inner)
    return prefix + outer.lower().substr(0, n_hex)


# --------------------------------------------------------------------------------------
# Bringing results back
# --------------------------------------------------------------------------------------


def write_parquet(expr: ibis.Table, path: Path) -> Path:
    """Write an expression's rows to one Parquet file, whatever the backend (DuckDB streams
    it; others send record batches). Written to a temporary name and renamed, so a failed
    transfer leaves nothing half-written."""
    import pyarrow.parquet as pq

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        if backend_name(expr._find_backend()) == "duckdb":
            expr.to_parquet(tmp)
        else:
            import pyarrow as pa

            reader = expr.to_pyarrow_batches()
            # timestamps in microseconds whatever the engine (Spark comes back in ns), as
            # DuckDB writes them: later steps see the same types
            schema = pa.schema(
                [
                    f.with_type(pa.timestamp("us", f.type.tz))
                    if pa.types.is_timestamp(f.type)
                    else f
                    for f in reader.schema
                ]
            )
            with pq.ParquetWriter(tmp, schema) as writer:
                for batch in reader:
                    writer.write_table(pa.Table.from_batches([batch]).cast(schema))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_csv(expr: ibis.Table, path: Path) -> Path:
    """Write an expression's rows to one CSV file (small results such as the quarantine)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        if backend_name(expr._find_backend()) == "duckdb":
            expr.to_csv(tmp)
        else:
            expr.to_pandas().to_csv(tmp, index=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def unit_month_aggregates(log: ibis.Table) -> pd.DataFrame:
    """The unit x month aggregates of a validated log, computed in its engine (what an
    ``extract: features`` source brings back besides the customer features): interactions,
    distinct customers and, where the log has them, revenue and completed contacts."""
    keys = {"month": log.timestamp.truncate("M").cast("timestamp")}
    if "unit_id" in log.columns:
        keys = {"unit_id": log.unit_id, **keys}
    metrics = {"interactions": log.count(), "customers": log.customer_id.nunique()}
    if "revenue" in log.columns:
        from rox_helpers.features import exact_sum

        metrics["revenue"] = exact_sum(log.revenue)
    if "completed" in log.columns:
        metrics["completed"] = ibis.ifelse(log.completed, 1, 0).sum()
    out = log.group_by(**keys).aggregate(**metrics).to_pandas()
    out = out.sort_values(list(keys)).reset_index(drop=True)
    for col in ("interactions", "customers", "completed"):
        if col in out:
            out[col] = out[col].fillna(0).astype("int64")
    out["month"] = out["month"].astype("datetime64[us]")
    return out
