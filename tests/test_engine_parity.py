"""The same behavioural features on DuckDB, PostgreSQL and Spark (issue 10).

The sample engagement's validated, pseudonymised interaction log is loaded as it is into a
throwaway PostgreSQL server and into a local Spark session (from a Parquet file, as a
Spark source reads it); :func:`rox_helpers.features.features_frame` then runs unchanged on
each engine, with the customers frame joined in from pandas (a memtable the remote engine
receives), and every column must equal DuckDB's: counts and day differences exactly,
shares and means to floating-point tolerance, timestamps to the microsecond, in the same
row order.
"""

from __future__ import annotations

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from conftest import copy_into_postgres
from rox_helpers.features import features_frame

# PostgreSQL and Spark start once a session (~30 s): the whole module runs once, with the
# slow tests
pytestmark = pytest.mark.slow

INT_COLUMNS = (
    "n_interactions",
    "frequency",
    "purchases",
    "stages_reached",
    "touchpoints_used",
    "recency_days",
    "tenure_days",
)


@pytest.fixture(scope="module")
def log(loaded) -> pa.Table:
    """The validated log as Arrow (nulls stay nulls, not NaN, on the way to each engine)."""
    return loaded.interactions.to_pyarrow()


@pytest.fixture(scope="module")
def duck(loaded) -> pd.DataFrame:
    return _features(loaded, loaded.interactions)


def _features(loaded, table: ibis.Table) -> pd.DataFrame:
    return features_frame(
        table,
        customers=loaded.tables["customers"],
        digital_channels=loaded.config.journey.digital_channels,
    )


@pytest.fixture(scope="module")
def pg_log(pg_url, log) -> ibis.Table:
    """The log in a PostgreSQL table, loaded with COPY (Ibis inserts row by row)."""
    con = ibis.connect(pg_url)
    name = "parity_interactions"
    copy_into_postgres(con, name, log)
    yield con.table(name)
    con.drop_table(name, force=True)
    con.disconnect()


@pytest.fixture(scope="module")
def spark_log(spark, log, tmp_path_factory) -> ibis.Table:
    """The log as a Parquet folder read by Spark (a temporary view, no warehouse)."""
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("spark") / "interactions.parquet"
    pq.write_table(log, path)
    con = ibis.pyspark.connect(spark)
    yield con.read_parquet(str(path), table_name="parity_interactions")
    spark.catalog.dropTempView("parity_interactions")


def _assert_same(got: pd.DataFrame, want: pd.DataFrame, engine: str) -> None:
    assert list(got.columns) == list(want.columns), engine
    assert len(got) == len(want) > 100, engine
    # same order: the ids in the same sequence (the comparisons below are positional)
    pd.testing.assert_series_equal(
        got["customer_id"].astype("str"), want["customer_id"].astype("str"), obj=engine
    )
    for col in want.columns:
        g, w = got[col], want[col]
        if col in INT_COLUMNS:
            # counts stay integers on every engine (not floats, not decimals)
            assert pd.api.types.is_integer_dtype(g), f"{engine} {col}: {g.dtype}"
            assert (g.to_numpy() == w.to_numpy()).all(), f"{engine} {col}"
        elif pd.api.types.is_datetime64_any_dtype(w):
            assert pd.api.types.is_datetime64_dtype(g), f"{engine} {col}: {g.dtype} (time zone?)"
            pd.testing.assert_series_equal(
                g.astype("datetime64[us]"), w.astype("datetime64[us]"), obj=f"{engine} {col}"
            )
        elif pd.api.types.is_float_dtype(w):
            assert pd.api.types.is_float_dtype(g), f"{engine} {col}: {g.dtype}"
            pd.testing.assert_series_equal(
                g, w, check_exact=False, rtol=1e-9, atol=0.0, obj=f"{engine} {col}"
            )
        elif col != "customer_id":
            raise AssertionError(f"{col}: unexpected dtype {w.dtype}")


def test_duckdb_features_cover_the_log(duck, log):
    """The reference itself: one row per customer in the log, all the feature kinds."""
    assert duck["customer_id"].is_unique
    assert duck["customer_id"].is_monotonic_increasing
    assert int(duck["n_interactions"].sum()) == log.num_rows
    shares = [c for c in duck.columns if c.startswith("share_")]
    assert len(shares) >= 3
    # the channel shares of a customer add up to 1 (no channel is null in the sample)
    assert (duck[shares].sum(axis=1) - 1.0).abs().max() < 1e-12
    for col in ("spend", "avg_duration_min", "completion_rate", "digital_share"):
        assert duck[col].notna().any() and duck[col].nunique() > 10, col
    assert duck["tenure_days"].gt(duck["recency_days"]).mean() > 0.5  # signup from customers


def test_postgres_features_equal_duckdb(loaded, duck, pg_log):
    assert pg_log.count().to_pyarrow().as_py() == loaded.interactions.count().to_pyarrow().as_py()
    _assert_same(_features(loaded, pg_log), duck, "postgres")


def test_spark_features_equal_duckdb(loaded, duck, spark_log):
    assert (
        spark_log.count().to_pyarrow().as_py() == loaded.interactions.count().to_pyarrow().as_py()
    )
    _assert_same(_features(loaded, spark_log), duck, "spark")


@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_unit_month_aggregates_equal_duckdb(loaded, engine, request):
    """The other aggregate computed from the log in its engine (what an ``extract: features``
    source brings back): unit x month counts, distinct customers and revenue."""
    from rox_helpers.engines import unit_month_aggregates

    remote = request.getfixturevalue("pg_log" if engine == "postgres" else "spark_log")
    want = unit_month_aggregates(loaded.interactions)
    got = unit_month_aggregates(remote)
    assert len(want) > 100 and want["customers"].gt(0).all()
    assert want["month"].nunique() > 12 and want["unit_id"].nunique() > 10
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=engine)
