"""Sources where the data lives (issue 10): files, globs, partitioned folders, and connections
to a DuckDB database file, PostgreSQL and Spark, with their errors, pseudonyms computed in the
engine, and a bounded quarantine.

The PostgreSQL tests run against the throwaway server of ``pg_url`` (tests/conftest.py);
the Spark ones against the local ``spark`` session. Each creates its own tables (names
starting ``src_``) and drops them.
"""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import ibis
import pandas as pd
import pytest
from typer.testing import CliRunner

from rox_helpers import engines, privacy
from rox_helpers.cli import app
from rox_helpers.config import Source, parse_engagement_config
from rox_helpers.data import load_engagement
from rox_helpers.errors import ConfigError, DataValidationError

runner = CliRunner()
KEY = privacy.PseudonymKey.from_bytes(b"0123456789abcdef-a-test-key-for-sources")
# ids that exercise the normalisation: digits, an integral float as text, blanks around,
# quotes and a backslash (SQL literals), and non-ASCII (brought back and hashed in Python)
IDS = ["C1", "123", "42.0", "  padded ", "o'brien", "back\\slash", "Renée", "ÅSA-7", "x" * 80]


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


def _config(source_yaml: str) -> str:
    head = "client: {name: T}\ndata:\n  cx_survey: {path: data/s.csv}\n  interactions:\n"
    return head + textwrap.indent(textwrap.dedent(source_yaml).strip() + "\n", "    ")


def test_a_source_is_a_path_or_a_connection_with_a_table():
    ok = parse_engagement_config(
        _config("connection: postgresql://analyst@db.example:5432/dwh\ntable: crm.visits")
    )
    src = ok.data.interactions
    assert src.connection and src.table == "crm.visits" and src.path is None
    assert src.resolved_extract == "features"  # connections bring back features by default
    assert (
        parse_engagement_config(_config("path: data/x.parquet")).data.interactions.resolved_extract
        == "log"
    )
    for bad, words in [
        ("path: data/x.parquet\nconnection: spark:local[*]\ntable: t", "exactly one of path"),
        ("format: csv", "exactly one of path"),
        ("connection: spark:local[*]", "needs a table"),
        ("path: data/x.parquet\ntable: t", "table goes with connection"),
        ("path: data/x.parquet\nextract: features", "features extract is for connection"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_engagement_config(_config(bad))
        text = str(err.value) + " ".join(p.message for p in err.value.problems)
        assert words in text, bad
        assert any("data.interactions" in p.column for p in err.value.problems), bad


def test_a_password_in_engagement_yml_is_refused_and_says_where_to_put_it():
    for url in (
        "postgresql://analyst:s3cret-pw@db.example:5432/dwh",
        "postgresql://analyst@db.example/dwh?password=s3cret-pw",
    ):
        with pytest.raises(ConfigError) as err:
            parse_engagement_config(_config(f"connection: {url}\ntable: visits"))
        problems = err.value.problems
        text = " ".join(f"{p.message} {p.column} {p.fix}" for p in problems)
        assert "data.interactions.connection" in text
        assert "PGPASSWORD" in text and "~/.pgpass" in text and "${" in text
        assert "s3cret-pw" not in text + str(err.value)  # the secret is never echoed
    # a reference to the environment is fine
    ok = parse_engagement_config(
        _config("connection: postgresql://analyst:${DWH_PW}@db.example/dwh\ntable: visits")
    )
    assert ok.data.interactions.connection.endswith("${DWH_PW}@db.example/dwh")


def test_connections_are_parsed_and_described_without_credentials(tmp_path):
    pg = engines.parse_connection("postgresql://analyst:${PW}@db.example:6543/dwh")
    assert (pg.backend, pg.host, pg.port, pg.database) == ("postgres", "db.example", 6543, "dwh")
    shown = engines.describe("postgresql://analyst:${PW}@db.example:6543/dwh", "crm.visits")
    assert shown == "postgres db.example:6543/dwh, table crm.visits"
    assert engines.parse_connection("spark:local[2]").master == "local[2]"
    assert engines.parse_connection("spark://master:7077").master == "spark://master:7077"
    rel = engines.parse_connection("db/log.duckdb", tmp_path)
    assert rel.backend == "duckdb" and rel.path == str(tmp_path / "db" / "log.duckdb")
    assert engines.parse_connection("duckdb:///abs/x.duckdb", tmp_path).path == "/abs/x.duckdb"
    with pytest.raises(engines.SourceError, match="Unknown kind of connection"):
        engines.parse_connection("mysql://u@h/db")


# --------------------------------------------------------------------------------------
# Files: globs, partitioned folders, DuckDB database files
# --------------------------------------------------------------------------------------


def _point_at(root: Path, source_yaml: str) -> None:
    """Replace the sample's interactions source by ``source_yaml`` (its columns kept)."""
    path = root / "engagement.yml"
    text = path.read_text()
    old = "    path: data/interactions.parquet\n"
    assert text.count(old) == 1
    path.write_text(text.replace(old, textwrap.indent(textwrap.dedent(source_yaml), "    ")))


def _copy_sample(sample: Path, dest: Path) -> Path:
    """A copy of the sample engagement (without its log) sharing the sample's pseudonym key,
    so its tokens can be compared with the sample's."""
    import shutil

    from rox_helpers.privacy import _key_file_name, default_key_dir, load_or_create_key

    shutil.copytree(sample, dest, ignore=shutil.ignore_patterns("runs", "interactions.parquet"))
    load_or_create_key(sample)
    shutil.copy(
        default_key_dir() / _key_file_name(sample), default_key_dir() / _key_file_name(dest)
    )
    return dest


def _clean(data) -> pd.DataFrame:
    df = data.interactions.to_pandas()
    df["timestamp"] = df["timestamp"].astype("datetime64[us]")  # Spark gives ns
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def test_glob_and_hive_partitioned_folder_read_the_same_log(sample, loaded, raw_log, tmp_path):
    root = _copy_sample(sample, tmp_path / "parts")
    months = raw_log["ts"].dt.month
    for m in sorted(months.unique())[:3]:  # a few partitions are enough
        folder = root / "data" / "log" / "year=2025" / f"month={m:02d}"
        folder.mkdir(parents=True)
        raw_log[months == m].to_parquet(folder / "part-0.parquet", index=False)
    rest = raw_log[~months.isin(sorted(months.unique())[:3])]
    rest.to_parquet(root / "data" / "log" / "rest.parquet", index=False)

    _point_at(root, "path: data/log/*/*/*.parquet\n")
    # the glob misses rest.parquet: fewer rows, same rules
    partial = load_engagement(root)
    assert 0 < partial.reports["interactions"].rows_read < len(raw_log)

    yml = root / "engagement.yml"
    yml.write_text(yml.read_text().replace("path: data/log/*/*/*.parquet", "path: data/log/"))
    whole = load_engagement(root)
    assert whole.reports["interactions"].rows_read == len(raw_log)
    pd.testing.assert_frame_equal(_clean(whole), _clean(loaded))
    # the manifest hashes every file of the folder
    from rox_helpers.pipeline import input_hashes

    files = [e for e in input_hashes(whole.config, root) if e["table"] == "interactions"]
    assert len(files) == 4 and all(e.get("sha256") for e in files)


def test_hive_partition_columns_are_kept(tmp_path, raw_log):
    from rox_helpers.interactions import _read, connect

    folder = tmp_path / "log" / "hotel=H1"
    folder.mkdir(parents=True)
    raw_log.head(50).to_parquet(folder / "p.parquet", index=False)
    t = _read(connect(), str(tmp_path / "log") + "/", Source(path="log/"))
    assert "hotel" in t.columns and set(t.hotel.to_pandas()) == {"H1"}


def test_duckdb_database_file_is_read_only_and_gives_the_same_log(
    sample, loaded, raw_log, tmp_path
):
    from rox_helpers.io import sha256_file

    root = _copy_sample(sample, tmp_path / "ddb")
    db = root / "data" / "client.duckdb"
    con = ibis.duckdb.connect(str(db))
    con.create_table("visits", raw_log)
    con.disconnect()
    before = sha256_file(db)
    _point_at(root, "connection: data/client.duckdb\ntable: visits\nextract: log\n")
    data = load_engagement(root)
    assert data.reports["interactions"].file.startswith("duckdb ")
    pd.testing.assert_frame_equal(_clean(data), _clean(loaded))
    assert sha256_file(db) == before  # opened read-only: the client's file is untouched
    assert (
        data.quality_table().set_index("table").loc["interactions", "file"].endswith("table visits")
    )


# --------------------------------------------------------------------------------------
# PostgreSQL: a real server
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _source_error(
    sample: Path, tmp_path: Path, connection: str, table: str, *, cli: bool = False
) -> str:
    """Load a copy of the sample pointing at ``connection``: the interactions problem, as
    text. ``rox run`` exits 1 before a run folder exists (and ``rox validate`` with 1)."""
    root = _copy_sample(sample, tmp_path / "eng")
    _point_at(root, f"connection: {connection}\ntable: {table}\nextract: log\n")
    with pytest.raises(DataValidationError) as err:
        load_engagement(root)
    (problem,) = [p for p in err.value.problems if p.table == "interactions"]
    if cli:
        res = runner.invoke(app, ["validate", str(root)], terminal_width=200)
        assert res.exit_code == 1 and "data.interactions" in res.output
    # rox run stops before a run folder exists: nothing half-written
    run = runner.invoke(app, ["run", str(root), "--only", "00"], terminal_width=200)
    assert run.exit_code == 1 and not (root / "runs").exists()
    assert "data.interactions" in run.output
    return f"{problem.message}\nrule: {problem.rule}\nfix: {problem.fix}\nfile: {problem.file}"


def test_server_down_names_the_source_backend_and_fix(sample, tmp_path):
    msg = _source_error(
        sample, tmp_path, f"postgresql://postgres@127.0.0.1:{_free_port()}/rox", "visits", cli=True
    )
    assert "data.interactions" in msg and "postgres" in msg
    assert "does not answer" in msg and "running and reachable" in msg


def test_unreachable_spark_master_fails_fast_and_names_the_fix(sample, tmp_path):
    """Spark would retry a master that does not answer for a minute or more, then fail with
    a Java stack trace; the workbook asks the master first (no Java needed to get here)."""
    msg = _source_error(sample, tmp_path, f"spark://127.0.0.1:{_free_port()}", "visits")
    assert "data.interactions" in msg and "spark spark://127.0.0.1" in msg
    assert "not reachable" in msg and "spark:local[*]" in msg and "cluster is up" in msg


def test_authentication_failure(sample, pg_url, tmp_path):
    url = pg_url.replace("postgres@", "nobody_here@")
    msg = _source_error(sample, tmp_path, url, "src_interactions")
    assert "authentication failed" in msg and "PGPASSWORD" in msg and "data.interactions" in msg


def test_database_missing(sample, pg_url, tmp_path):
    msg = _source_error(sample, tmp_path, pg_url.rsplit("/", 1)[0] + "/no_such_db", "x")
    assert "database does not exist" in msg and "no_such_db" in msg


def test_table_missing(sample, pg, pg_url, tmp_path):
    msg = _source_error(sample, tmp_path, pg_url, "public.no_such_table")
    assert "table public.no_such_table not found" in msg and "table exists" in msg


def test_permission_denied(sample, pg, pg_url, tmp_path):
    con = ibis.connect(pg_url)
    with con.con.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS src_reader")
        cur.execute("CREATE ROLE src_reader LOGIN")
    try:
        url = pg_url.replace("postgres@", "src_reader@")
        msg = _source_error(sample, tmp_path, url, "src_interactions")
        assert "permission denied on src_interactions" in msg
        assert "grant SELECT on src_interactions" in msg
    finally:
        with con.con.cursor() as cur:
            cur.execute("DROP ROLE IF EXISTS src_reader")
        con.disconnect()


def test_mapped_column_missing_on_the_server(sample, pg, pg_url, tmp_path):
    root = _copy_sample(sample, tmp_path / "eng")
    _point_at(root, f"connection: {pg_url}\ntable: src_interactions\nextract: log\n")
    yml = root / "engagement.yml"
    yml.write_text(yml.read_text().replace("journey_stage: stage", "journey_stage: phase"))
    with pytest.raises(DataValidationError) as err:
        load_engagement(root)
    (p,) = [p for p in err.value.problems if p.table == "interactions"]
    assert p.column == "journey_stage <- phase" and "not found in the source table" in p.message
    assert "table src_interactions" in p.file and "stage" in p.fix


def test_environment_reference_is_expanded_at_connect_and_never_shown(pg, pg_url, monkeypatch):
    user_url = pg_url.replace("postgres@", "${SRC_PG_USER}@")
    conn = engines.parse_connection(user_url)
    monkeypatch.delenv("SRC_PG_USER", raising=False)
    with pytest.raises(engines.SourceError, match=r"SRC_PG_USER.*not set"):
        engines.connect(conn, "data.interactions")
    monkeypatch.setenv("SRC_PG_USER", "postgres")
    con = engines.connect(conn, "data.interactions")
    assert con.table("src_interactions").count().execute() > 0
    assert "SRC_PG_USER" not in conn.label() and "postgres@" not in conn.label()


# --------------------------------------------------------------------------------------
# Pseudonyms in the engine equal privacy.pseudonymise
# --------------------------------------------------------------------------------------


def _expected() -> pd.DataFrame:
    """What the pandas tables give each id: to_id_text, then pseudonymise."""
    from rox_helpers.validate import to_id_text

    norm = to_id_text(pd.Series(IDS))
    return pd.DataFrame({"_raw_id": norm, "_pid": privacy.pseudonymise(norm, KEY, prefix="C-")})


def _engine_tokens(table: ibis.Table, backend: str) -> pd.DataFrame:
    from rox_helpers.interactions import _id, _pseudonymised_ids

    t = table.select(customer_id=_id(table.customer_id, backend))
    ascii_only = t.filter(~t.customer_id.re_search(r"[^ -~]"))
    direct = ascii_only.mutate(
        _pid=engines.hmac_token(ascii_only.customer_id, KEY.key, backend, "C-")
    ).to_pandas()
    mapped = _pseudonymised_ids(t, KEY, backend).to_pandas()
    return direct.rename(columns={"customer_id": "_raw_id"}), mapped


def _check_tokens(direct: pd.DataFrame, mapped: pd.DataFrame) -> None:
    want = _expected().set_index("_raw_id")["_pid"]
    # the in-engine HMAC alone, on every printable-ASCII id
    assert len(direct) == len(IDS) - 2
    for raw, pid in zip(direct["_raw_id"], direct["_pid"], strict=True):
        assert pid == want[raw], raw
    # the full mapping (non-ASCII ids through Python) covers every id
    got = mapped.set_index("_raw_id")["_pid"].sort_index()
    pd.testing.assert_series_equal(got, want.sort_index(), check_names=False)


def test_hmac_in_duckdb_equals_pseudonymise():
    t = ibis.duckdb.connect().create_table("ids", pd.DataFrame({"customer_id": IDS}))
    _check_tokens(*_engine_tokens(t, "duckdb"))


def test_hmac_in_postgres_equals_pseudonymise(pg_url):
    con = ibis.connect(pg_url)
    t = con.create_table("src_ids", pd.DataFrame({"customer_id": IDS}), overwrite=True)
    try:
        _check_tokens(*_engine_tokens(t, "postgres"))
    finally:
        con.drop_table("src_ids", force=True)
        con.disconnect()


# text of the right shape, real dates and not (31 February, 29 February of a common year,
# month 13, hour 24, minute 60), as a client's export might hold them
DATE_TEXT = {
    None: [
        "2026-02-28 10:00",
        "2026-02-31 10:00",
        "2024-02-29",
        "2023-02-29",
        "2000-02-29 23:59:59",
        "1900-02-29",
        "2026-13-01",
        "2026-04-31T08:00",
        "2026-04-30T08:60",
        "2026-04-30 24:00",
        "2026-04-30 24:01",
        "2026-04-30 24:00:00.000",
        "2026-04-30 24:00:00.5",
        "2026-00-10",
        "not a date",
    ],
    "%d/%m/%Y %H:%M": [
        "31/02/2026 10:00",
        "29/02/2024 10:00",
        "29/02/2023 01:00",
        "30/06/2026 23:59",
        "31/06/2026 12:00",
        "15/06/2026 24:30",
        "1/1/2026 0:00",
        "00/01/2026 10:00",
    ],
    "%d %b %Y": ["31 Feb 2026", "29 feb 2024", "01 Foo 2026", "30 SEP 2026", "31 Sep 2026"],
    "%B %d, %y": ["February 29, 24", "February 29, 25", "Junk 01, 26", "december 31, 99"],
    # offsets beyond +-14:59 are no offsets (DuckDB would wrap +25:00 into another day)
    "offset": [
        "2026-01-01 10:00+01:00",
        "2026-01-01T10:00:00Z",
        "2026-01-01 10:00-12:00",
        "2026-01-01 10:00+25:00",
        "2026-01-01 10:00+01:99",
        "2026-02-30 10:00+01:00",
    ],
}


@pytest.mark.parametrize("fmt", list(DATE_TEXT), ids=lambda f: f or "iso")
def test_text_dates_that_do_not_exist_are_null_on_postgres_as_on_duckdb(pg_url, fmt):
    """PostgreSQL's casts and to_timestamp refuse the whole query on one value of the right
    shape that is no date (31/02/2026); behind the field check it becomes NULL (and is
    quarantined), the same values as DuckDB's try-parsers, the reference."""
    from rox_helpers.interactions import _timestamp

    values = DATE_TEXT[fmt]
    df = pd.DataFrame({"i": range(len(values)), "ts": values})
    duck = ibis.duckdb.connect().create_table("dates", df)
    want = duck.select("i", t=_timestamp(duck.ts, fmt)).order_by("i").to_pandas()
    assert want["t"].notna().sum() >= 2 and want["t"].isna().sum() >= 2
    con = ibis.connect(pg_url)
    t = con.create_table("src_dates", df, overwrite=True)
    try:
        got = t.select("i", t=_timestamp(t.ts, fmt, "postgres")).order_by("i").to_pandas()
    finally:
        con.drop_table("src_dates", force=True)
        con.disconnect()
    got["t"] = got["t"].astype(want["t"].dtype)
    pd.testing.assert_frame_equal(got, want)


def test_year_zero_is_null_on_postgres_not_a_refused_query(pg_url):
    """Year 0 does not exist: PostgreSQL refuses the query on it (DuckDB reads 1 BC)."""
    from rox_helpers.interactions import _timestamp

    df = pd.DataFrame({"i": [0, 1, 2], "ts": ["0000-01-01", "01/01/0000 10:00", "0001-01-01"]})
    con = ibis.connect(pg_url)
    t = con.create_table("src_year0", df, overwrite=True)
    try:
        iso = t.select("i", x=_timestamp(t.ts, None, "postgres")).order_by("i").to_pandas()
        dmy = t.select("i", x=_timestamp(t.ts, "%d/%m/%Y %H:%M", "postgres"))
        dmy = dmy.order_by("i").to_pandas()
    finally:
        con.drop_table("src_year0", force=True)
        con.disconnect()
    assert iso["x"].isna().tolist() == [True, True, False]
    assert dmy["x"].isna().tolist() == [True, True, True]


def test_spark_master_urls_are_split_into_host_and_port():
    from rox_helpers.spark import _host_port

    assert _host_port("master") == ("master", 7077)
    assert _host_port("10.0.0.1:7078") == ("10.0.0.1", 7078)
    assert _host_port("[::1]") == ("::1", 7077) and _host_port("[::1]:8000") == ("::1", 8000)


NUMBERS = {
    "float": [1.5, float("nan"), float("inf"), -float("inf"), None, -2.0],
    "text": ["1,5", "NaN", "inf", "1e999", None, "2e5", "-.5", "7.", "1e99", "x"],
}


@pytest.mark.parametrize("kind", list(NUMBERS))
def test_numbers_on_postgres_equal_duckdb_and_nan_or_infinity_is_null(pg_url, kind):
    """NaN, infinity and text beyond a double's range are NULL on both engines (and so
    quarantined); PostgreSQL's cast would refuse the whole query on 1e999."""
    import pyarrow as pa

    from rox_helpers.interactions import _number

    values = NUMBERS[kind]
    df = pa.table({"i": range(len(values)), "v": values})
    duck = ibis.duckdb.connect().create_table("nums", df)
    want = duck.select("i", x=_number(duck.v)).order_by("i").to_pandas()
    assert want["x"].notna().sum() >= 2
    assert want["x"].map(lambda v: pd.isna(v) or abs(v) < float("inf")).all()
    con = ibis.connect(pg_url)
    t = con.create_table("src_nums", df, overwrite=True)
    try:
        got = t.select("i", x=_number(t.v, "postgres")).order_by("i").to_pandas()
    finally:
        con.drop_table("src_nums", force=True)
        con.disconnect()
    pd.testing.assert_frame_equal(got, want)


def test_numbers_on_spark_equal_duckdb(spark):
    from rox_helpers.interactions import _number

    con = ibis.pyspark.connect(spark)
    for kind, values in NUMBERS.items():
        df = pd.DataFrame({"i": range(len(values)), "v": values})
        want = ibis.duckdb.connect().create_table("nums", df)
        want = want.select("i", x=_number(want.v)).order_by("i").to_pandas()
        t = con.create_table("src_nums", df, overwrite=True)
        try:
            got = t.select("i", x=_number(t.v, "pyspark")).order_by("i").to_pandas()
        finally:
            con.drop_table("src_nums", force=True)
        pd.testing.assert_frame_equal(got, want, obj=kind)


def test_hmac_in_spark_equals_pseudonymise(spark):
    con = ibis.pyspark.connect(spark)
    t = con.create_table("src_ids", pd.DataFrame({"customer_id": IDS}), overwrite=True)
    try:
        _check_tokens(*_engine_tokens(t, "pyspark"))
    finally:
        con.drop_table("src_ids", force=True)


# --------------------------------------------------------------------------------------
# The quarantine holds a bounded sample
# --------------------------------------------------------------------------------------


def test_quarantine_is_a_bounded_sample_and_says_so(sample, raw_log, tmp_path):
    from rox_helpers.artifacts import new_run_dir, persist_engagement_data

    root = _copy_sample(sample, tmp_path / "q")
    bad = raw_log.copy()
    n_bad = 40
    bad.loc[bad.index[:n_bad], "duration_min"] = -5.0  # below the minimum of 0
    bad.to_parquet(root / "data" / "log.parquet", index=False)
    _point_at(root, "path: data/log.parquet\nquarantine_sample: 7\n")
    yml = root / "engagement.yml"
    data = load_engagement(root)
    rep = data.reports["interactions"]
    base = load_engagement(sample).reports["interactions"]
    assert rep.reasons["duration_min: below 0"] == n_bad and rep.quarantine_kept == 7
    # the counts cover every failing row, not only the sample
    assert base.rows_quarantined < rep.rows_quarantined <= base.rows_quarantined + n_bad
    (warn,) = [p for p in data.problems if p.table == "interactions" and p.rule == "row validation"]
    assert f"sample of 7 of these {rep.rows_quarantined:,} rows" in warn.message
    quality = data.quality_table().set_index("table")
    assert quality.loc["interactions", "quarantine_file"] == "sample of 7 rows (counts cover all)"
    assert quality.loc["customers", "quarantine_file"] == "all rows"

    run_dir = new_run_dir(root)
    counts = persist_engagement_data(run_dir, data)
    assert counts["interactions"] == rep.rows_quarantined
    q = pd.read_csv(run_dir / "quarantine" / "interactions.csv")
    assert len(q) == 7
    assert (q["sample"] == f"sample: 7 of {rep.rows_quarantined:,} failing rows kept").all()
    # a large enough bound keeps every row, with no sample note
    yml.write_text(yml.read_text().replace("quarantine_sample: 7", "quarantine_sample: 100000"))
    full = load_engagement(root)
    q_all = full.interactions_quarantine.to_pandas()
    assert len(q_all) == rep.rows_quarantined and "sample" not in q_all.columns


# --------------------------------------------------------------------------------------
# The manifest records backend and table, never credentials
# --------------------------------------------------------------------------------------


def test_manifest_records_backend_table_and_rows_not_credentials(
    sample, pg, pg_url, tmp_path, monkeypatch
):
    from rox_helpers.pipeline import input_hashes

    root = _copy_sample(sample, tmp_path / "m")
    monkeypatch.setenv("SRC_SECRET_PW", "not-a-real-pw-42")
    url = pg_url.replace("postgres@", "postgres:${SRC_SECRET_PW}@")
    _point_at(root, f"connection: {url}\ntable: src_interactions\nextract: log\n")
    cfg = load_engagement(root).config
    (entry,) = [e for e in input_hashes(cfg, root) if e["table"] == "interactions"]
    host, _port = pg_url.split("@")[1].split(":")
    assert entry["backend"] == "postgres" and entry["source_table"] == "src_interactions"
    assert entry["host"] == host and entry["database"] == "rox"
    assert entry["rows"] == pg.table("src_interactions").count().execute()
    text = json.dumps(entry)
    assert "not-a-real-pw-42" not in text and "SRC_SECRET_PW" not in text
    assert "postgres@" not in text and "sha256" not in entry


def test_a_spark_catalog_table_is_a_source(sample, loaded, spark, raw_log, tmp_path):
    """A table registered in the Spark session (here a temporary view over Parquet) is read
    by name, and gives the same validated log as the file."""
    root = _copy_sample(sample, tmp_path / "cat")
    lake = tmp_path / "lake"
    lake.mkdir()
    raw_log.to_parquet(lake / "part-0.parquet", index=False)
    spark.read.parquet(str(lake)).createOrReplaceTempView("src_visits")
    try:
        _point_at(root, "connection: spark:local[2]\ntable: src_visits\nextract: log\n")
        data = load_engagement(root)
        assert data.reports["interactions"].file == "spark local[2], table src_visits"
        pd.testing.assert_frame_equal(_clean(data), _clean(loaded))
    finally:
        spark.catalog.dropTempView("src_visits")


def test_extract_features_brings_back_features_and_aggregates_only(
    sample, loaded, pg, pg_url, tmp_path
):
    """A connection source defaults to extract: features: the run gets the customer
    features, the segmentation's per-customer summaries and unit x month aggregates (equal
    to DuckDB's), no row of the log, and the steps that need rows say they need extract:
    log, naming the source."""
    from rox_helpers.artifacts import new_run_dir, persist_engagement_data
    from rox_helpers.engines import unit_month_aggregates
    from rox_helpers.features import features_frame
    from rox_helpers.framework import analysis_availability

    root = _copy_sample(sample, tmp_path / "feat")
    _point_at(root, f"connection: {pg_url}\ntable: src_interactions\n")
    data = load_engagement(root)
    assert data.extract == "features"
    run_dir = new_run_dir(root)
    persist_engagement_data(run_dir, data)
    tables = run_dir / "artifacts" / "tables"
    assert not (tables / "interactions.parquet").exists()
    want = features_frame(
        loaded.interactions,
        customers=loaded.tables["customers"],
        digital_channels=loaded.config.journey.digital_channels,
    )
    got = pd.read_parquet(tables / "customer_features.parquet")
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9)
    agg = pd.read_parquet(tables / "interactions_unit_month.parquet")
    pd.testing.assert_frame_equal(agg, unit_month_aggregates(loaded.interactions), rtol=1e-9)
    assert agg["interactions"].sum() == loaded.reports["interactions"].rows_valid
    # what the segmentation needs of the log, per customer, computed on the server: equal
    # to DuckDB's from the Parquet file
    from rox_helpers.artifacts import load_log_summaries, log_skip_reason, log_withheld
    from rox_helpers.segmentation import log_summaries

    got_s = load_log_summaries(run_dir)
    want_s = log_summaries(
        loaded.interactions,
        customers=loaded.tables["customers"],
        digital_channels=loaded.config.journey.digital_channels,
    )
    for part in ("features", "outcomes", "early", "later"):
        pd.testing.assert_frame_equal(
            getattr(got_s, part), getattr(want_s, part), check_dtype=False, rtol=1e-9, obj=part
        )
    assert got_s.split == want_s.split
    # step 06's customer x month activity, aggregated on the server
    from rox_helpers.actions import monthly_activity
    from rox_helpers.artifacts import load_monthly_activity

    got_a = load_monthly_activity(run_dir)
    want_a = monthly_activity(
        loaded.interactions, digital_channels=loaded.config.journey.digital_channels
    )
    key = ["customer_id", "month"]
    pd.testing.assert_frame_equal(
        got_a.sort_values(key).reset_index(drop=True),
        want_a.sort_values(key).reset_index(drop=True),
        check_dtype=False,
        rtol=1e-9,
    )
    assert got_a.attrs == want_a.attrs
    # the steps that need rows say where the log stayed and how to bring it
    source = engines.describe(pg_url, "src_interactions")
    assert log_withheld(run_dir) == source
    why = log_skip_reason(run_dir, "the engagement has no interaction log.")
    assert source in why and "extract: log" in why and "engagement.yml" in why
    avail = analysis_availability(data).set_index("analysis")
    assert not avail.loc["Journey funnel", "runs"]
    assert "extract: log" in avail.loc["Journey funnel", "reason"]
    assert avail.loc["Behavioural segmentation", "runs"]  # from the summaries
    assert avail.loc["CX metrics (NPS, CSAT, CES)", "runs"]


def test_a_small_table_from_a_connection_is_loaded_like_its_file(sample, loaded, tmp_path):
    """Customers from a table in a DuckDB database file: the same canonical table as from
    the CSV (read as text, mapped, pseudonymised, validated the same way)."""
    import shutil

    from rox_helpers.io import read_table

    root = _copy_sample(sample, tmp_path / "small")
    shutil.copy(sample / "data" / "interactions.parquet", root / "data" / "interactions.parquet")
    raw = read_table(sample / "data" / "customers.csv").frame
    con = ibis.duckdb.connect(str(root / "data" / "crm.duckdb"))
    con.create_table("customers", raw)
    con.disconnect()
    yml = root / "engagement.yml"
    text = yml.read_text()
    old = "    path: data/customers.csv\n"
    assert text.count(old) == 1
    yml.write_text(text.replace(old, "    connection: data/crm.duckdb\n    table: customers\n"))
    data = load_engagement(root)
    assert data.reports["customers"].file == "duckdb data/crm.duckdb, table customers"
    pd.testing.assert_frame_equal(data.tables["customers"], loaded.tables["customers"])
    assert (
        data.reports["customers"].rows_quarantined == loaded.reports["customers"].rows_quarantined
    )
