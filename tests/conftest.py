"""Shared fixtures: small hand-made engagements with known problems, and the sample."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def make_tiny(root: Path) -> Path:
    """A small engagement with one planted problem of each kind.

    customers.csv (cp1252, ';'): C3 has an unparseable date, C2 appears twice,
    C4 has no analytics consent.  survey.csv: r3 has NPS 11, r4 an unknown
    hotel, r5 an unknown customer, r6 the code 99 (don't know) for cleanliness,
    r7 a comment holding an e-mail address, a phone number and a guest's name.
    """
    (root / "data").mkdir(parents=True)
    customers = (
        "guest_id;full_name;email;phone;joined;consent_analytics;app_user\n"
        "C1;Renée Dubois;renee@example.com;+33 1 23 45 67 89;01/02/2024;Y;Y\n"
        "C2;John Smith;john@example.com;07700 900123;15/03/2024;Y;N\n"
        "C2;John Smith;john@example.com;07700 900123;15/03/2024;Y;N\n"
        "C3;Ana López;ana@example.com;+34 600 123 456;31/02/2024;Y;N\n"
        "C4;Kurt Müller;kurt@example.com;+49 30 123456;05/05/2024;N;Y\n"
    )
    (root / "data" / "customers.csv").write_bytes(customers.encode("cp1252"))
    pd.DataFrame(
        {"hotel": ["H1", "H2"], "month": ["2025-01", "2025-01"], "occupancy": [0.8, 0.7]}
    ).to_csv(root / "data" / "units.csv", index=False)
    pd.DataFrame(
        {
            "resp_id": ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"],
            "guest_id": ["C1", "C2", "C1", "C2", "C9", "C1", "C2", "C4"],
            "hotel": ["H1", "H1", "H2", "H99", "H1", "H2", "H1", "H2"],
            "recommend": [9, 6, 11, 8, 7, 10, 3, 9],
            "att_clean": [8, 5, 9, 7, 6, 99, 2, 8],
            "comment": [
                "Lovely stay",
                None,
                "Great",
                "ok",
                "fine",
                "n/a",
                "Call me on +44 7700 900123 or renee@example.com, Renée Dubois was rude",
                "Nice",
            ],
            "resp_date": ["2025-01-03"] * 8,
        }
    ).to_csv(root / "data" / "survey.csv", index=False)
    write_yaml(
        root / "engagement.yml",
        """
        client: {name: Tiny Hotels}
        data:
          customers:
            path: data/customers.csv
            date_format: "%d/%m/%Y"
            columns: {customer_id: guest_id, signup_date: joined}
          units:
            path: data/units.csv
            columns: {unit_id: hotel, period: month}
          cx_survey:
            path: data/survey.csv
            columns:
              response_id: resp_id
              customer_id: guest_id
              unit_id: hotel
              nps: recommend
              date: resp_date
        privacy:
          identifier_columns: {customers: [full_name, email, phone]}
          identifier_action: hash
        codebook:
          att_clean: {label: Cleanliness, scale: [1, 10], missing_codes: [99]}
        elements:
          results: [{name: nps, table: cx_survey, column: nps, aggregate: nps}]
          values: [{name: clean, table: cx_survey, column: att_clean}]
          pride: [{name: occupancy, table: units, column: occupancy}]
        """,
    )
    return root


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """See :func:`make_tiny`."""
    return make_tiny(tmp_path / "tiny")


def pseudonym(root: Path, value: str, prefix: str) -> str:
    """The token an id gets on load in engagement ``root`` (tests look rows up by it)."""
    from rox_helpers.privacy import load_or_create_key, pseudonymise

    key = load_or_create_key(root)
    return str(pseudonymise(pd.Series([value]), key, prefix=prefix).iloc[0])


def write_notebook(path: Path, *sources: str) -> Path:
    """A minimal engagement notebook: the parameters cell, then one code cell per source."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('ENGAGEMENT = ""\nRUN_DIR = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(src) for src in sources)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> Path:
    """A fresh copy of the sample engagement, data generated from its seed (once a session)."""
    import shutil

    from rox_helpers.sample import ensure_sample_data

    root = tmp_path_factory.mktemp("eng") / "sample"
    root.mkdir()
    shutil.copy(REPO / "engagements" / "sample" / "engagement.yml", root / "engagement.yml")
    ensure_sample_data(root)
    return root


@pytest.fixture(scope="session")
def truth(sample) -> dict:
    import json

    return json.loads((sample / "data" / "ground_truth.json").read_text())


@pytest.fixture(scope="session")
def loaded(sample):
    from rox_helpers.data import load_engagement

    return load_engagement(sample)


# --------------------------------------------------------------------------------------
# Real engines (issue 10): a throwaway PostgreSQL server and a local Spark session
# --------------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    import shutil

    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


def copy_into_postgres(con, name: str, table) -> None:
    """``table`` (pyarrow) as a table ``name`` on the server ``con`` (an Ibis postgres
    backend), loaded with COPY: Ibis inserts row by row (14-23 s for the sample's log)."""
    import io

    import ibis
    import pyarrow.csv as pacsv

    con.create_table(name, schema=ibis.Schema.from_pyarrow(table.schema), overwrite=True)
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    with con.con.cursor() as cur, cur.copy(f'COPY "{name}" FROM STDIN (FORMAT csv)') as copy:
        copy.write(buf.getvalue())
    con.con.commit()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A PostgreSQL server of our own on a socket in a temporary folder (and a loopback
    port), with a database ``rox``; stopped at the end of the session.

    Debian's server binaries refuse to run as root, so as root the cluster belongs to the
    unprivileged user ``postgres`` (created by the Debian package) when it exists, in a
    folder outside pytest's private (0700) temporary tree.
    """
    import getpass
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    bindir = _pg_bin()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip("PostgreSQL server binaries not found (.ci/run installs postgresql)")
    root = Path(tempfile.mkdtemp(prefix="rox-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    user = getpass.getuser()
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to own the server")
        os.chown(root, pwd.getpwnam("postgres").pw_uid, -1)
        os.chown(sock, pwd.getpwnam("postgres").pw_uid, -1)
        as_user = ["runuser", "-u", "postgres", "--"]
        user = "postgres"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_user, *cmd], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr or done.stdout}")

    run(str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "server.log"),
        "-w",
        "-o",
        f"-k {sock} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off",
        "start",
    )
    try:
        run(str(bindir / "createdb"), "-h", str(sock), "-p", str(port), "-U", user, "rox")
        yield f"postgresql://{user}@127.0.0.1:{port}/rox"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def spark():
    """A local Spark session (2 cores, UI off, quiet), shared by the session's tests."""
    pytest.importorskip("pyspark", reason="pyspark not installed (the spark extra)")
    from rox_helpers.spark import get_session, java_version

    if (java_version() or 0) < 17:
        pytest.skip("Spark needs Java 17 (.ci/run installs openjdk-17-jre-headless)")
    session = get_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def raw_log(sample) -> pd.DataFrame:
    """The sample's interaction log as the client sent it."""
    return pd.read_parquet(sample / "data" / "interactions.parquet")


@pytest.fixture(scope="module")
def pg(pg_url, raw_log):
    """The sample's raw interaction log as table ``src_interactions`` on the server."""
    import ibis
    import pyarrow as pa

    con = ibis.connect(pg_url)
    copy_into_postgres(con, "src_interactions", pa.Table.from_pandas(raw_log, preserve_index=False))
    yield con
    con.drop_table("src_interactions", force=True)
    con.disconnect()
