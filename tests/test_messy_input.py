"""Messy client input found in review: each case once gave a wrong result, a leak or a traceback."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from conftest import pseudonym, write_notebook
from rox_helpers.data import load_engagement
from rox_helpers.errors import DataValidationError
from rox_helpers.features import features_frame
from rox_helpers.pipeline import Step, run_engagement


def _edit(root, fn):
    path = root / "engagement.yml"
    cfg = yaml.safe_load(path.read_text())
    fn(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _with_log(root, df: pd.DataFrame, name: str, **source) -> None:
    if name.endswith(".parquet"):
        df.to_parquet(root / "data" / name, index=False)
    else:
        df.to_csv(root / "data" / name, index=False)

    def add(cfg):
        cfg["data"]["interactions"] = {
            "path": source.pop("path", f"data/{name}"),
            "columns": {"customer_id": "guest_id", "timestamp": "ts", "unit_id": "hotel"},
            **source,
        }

    _edit(root, add)


def test_one_client_column_for_two_canonical_columns_is_refused(tiny):
    _edit(tiny, lambda c: c["data"]["cx_survey"]["columns"].update(trip_purpose="guest_id"))
    with pytest.raises(DataValidationError) as exc:
        load_engagement(tiny)
    p = exc.value.problems[0]
    assert p.rule == "one client column per canonical column"
    assert "customer_id <- guest_id" in p.column and "trip_purpose <- guest_id" in p.column


def test_response_ids_are_pseudonymised(tiny):
    data = load_engagement(tiny)
    ids = set(data.tables["cx_survey"]["response_id"]) | set(
        data.quarantine["cx_survey"]["response_id"]
    )
    assert all(i.startswith("R-") for i in ids)
    assert pseudonym(tiny, "r1", "R-") in ids


def test_consent_counted_per_customer_and_ids_withheld_in_quarantine(tiny):
    path = tiny / "data" / "customers.csv"
    text = path.read_bytes().decode("cp1252").replace("05/05/2024;N", "31/02/2024;N")
    path.write_bytes(text.encode("cp1252"))  # C4 (no consent) now also has a bad date
    data = load_engagement(tiny)
    assert data.privacy.customers_without_consent == 1  # counted before quarantine
    q = data.quarantine["customers"]
    withheld = q[q["reason"].str.contains("identifiers withheld")]
    assert len(withheld) == 1
    assert withheld[["customer_id", "email_hash", "full_name_hash"]].isna().all().all()


def test_interaction_ids_booleans_and_day_first_timestamps(tiny):
    log = pd.DataFrame(
        {
            "guest_id": ["C1", "C2", "C1"],
            "ts": ["13/01/2025 10:00", "14/01/2025 11:30", "31/02/2025 09:00"],
            "hotel": ["H1", "H2", "H1"],
            "completed": ["1.0", "0.0", "1.0"],
        }
    )
    _with_log(tiny, log, "log.csv")
    data = load_engagement(tiny)
    rep = data.reports["interactions"]
    assert rep.rows_quarantined == 1  # only the impossible date
    assert rep.reasons == {"timestamp: does not parse as a date": 1}
    clean = data.interactions.to_pandas().sort_values("timestamp")
    assert list(clean["timestamp"]) == [
        pd.Timestamp("2025-01-13 10:00"),
        pd.Timestamp("2025-01-14 11:30"),
    ]
    assert list(clean["completed"]) == [True, False]


def test_float_ids_and_numeric_flags_in_parquet(tiny):
    units = pd.DataFrame({"hotel": [1.0, 2.0], "month": ["2025-01", "2025-01"]})
    units.to_csv(tiny / "data" / "units.csv", index=False)
    log = pd.DataFrame(
        {
            "guest_id": ["C1", "C2"],
            "ts": pd.to_datetime(["2025-01-13", "2025-01-14"]),
            "hotel": [1.0, None],  # float because of the gap, as parquet writes it
            "completed": [1.0, 0.0],
        }
    )
    _with_log(tiny, log, "log.parquet")

    def no_survey(cfg):
        del cfg["data"]["cx_survey"]
        cfg["elements"] = {}
        cfg["outcome"] = {"table": "customers", "column": "customer_id"}

    _edit(tiny, no_survey)
    data = load_engagement(tiny)
    assert data.reports["interactions"].rows_quarantined == 0
    clean = data.interactions.to_pandas().sort_values("timestamp")
    assert clean["unit_id"].iloc[0] == "1"
    assert list(clean["completed"]) == [True, False]


def test_utc_offsets_are_honoured(tiny):
    log = pd.DataFrame(
        {
            "guest_id": ["C1", "C2"],
            "ts": ["2025-01-13T23:30:00+02:00", "2025-01-13T21:00:00Z"],
            "hotel": ["H1", "H2"],
        }
    )
    _with_log(tiny, log, "log.csv")
    data = load_engagement(tiny)
    ts = sorted(data.interactions.to_pandas()["timestamp"])
    assert ts == [pd.Timestamp("2025-01-13 21:00"), pd.Timestamp("2025-01-13 21:30")]


def test_mixed_offsets_in_a_date_column_do_not_raise(tiny):
    path = tiny / "data" / "survey.csv"
    df = pd.read_csv(path)
    df["resp_date"] = ["2025-01-03T10:00:00+02:00", "2025-01-03T10:00:00Z"] * 4
    df.to_csv(path, index=False)
    data = load_engagement(tiny)
    assert data.tables["cx_survey"]["date"].notna().all()


def test_csv_glob_source(tiny):
    log = pd.DataFrame({"guest_id": ["C1"], "ts": ["2025-01-13 10:00:00"], "hotel": ["H1"]})
    for part in ("a", "b"):
        log.to_csv(tiny / "data" / f"inter_{part}.csv", index=False)
    _with_log(tiny, log, "unused.csv", path="data/inter_*.csv")
    data = load_engagement(tiny)
    assert data.reports["interactions"].rows_read == 2


def test_features_of_an_empty_log(tiny):
    log = pd.DataFrame({"guest_id": [], "ts": [], "hotel": []})
    _with_log(tiny, log, "log.csv")
    data = load_engagement(tiny)
    feats = features_frame(data.interactions, customers=data.tables["customers"])
    assert feats.empty and "frequency" in feats.columns


def test_quarantine_record_numbers_survive_multiline_comments(tiny):
    path = tiny / "data" / "survey.csv"
    df = pd.read_csv(path)
    df.loc[0, "comment"] = "first line\nsecond line\nthird line"
    df.to_csv(path, index=False)
    data = load_engagement(tiny)
    q = data.quarantine["cx_survey"].set_index("response_id")
    assert q.loc[pseudonym(tiny, "r3", "R-"), "source_record"] == 3  # r3 is the 3rd data row


def test_engagement_yml_path_is_accepted(tiny):
    assert load_engagement(tiny / "engagement.yml").root == tiny.resolve()


def test_notebook_error_without_message_and_data_outside_the_folder(tiny, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tiny / "data" / "units.csv").rename(outside / "units.csv")
    _edit(tiny, lambda c: c["data"]["units"].update(path=str(outside / "units.csv")))
    write_notebook(tmp_path / "98_assert.ipynb", "assert False")
    r = run_engagement(tiny, notebooks_dir=tmp_path, steps=(Step("98", "98_assert.ipynb", "x"),))
    assert r.status == "failed" and r.failures[0].ename == "AssertionError"
    manifest = json.loads(r.manifest.read_text())
    assert manifest["status"] == "failed"
    assert any(i["path"] == str(outside / "units.csv") for i in manifest["inputs"])


def test_empty_declared_table_is_flagged(tiny):
    (tiny / "data" / "units.csv").write_text("hotel,month\n")
    data = load_engagement(tiny)
    warn = [p for p in data.problems if p.table == "units" and p.rule == "declared table has data"]
    assert len(warn) == 1 and "no rows" in warn[0].message
    # the survey's units then cannot be found: quarantined with that reason, not lost
    assert data.reports["cx_survey"].reasons["unit_id: unknown id (not in units.unit_id)"] == 8


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_nan_and_infinite_numbers_are_quarantined_not_summed(tiny, kind):
    """A revenue of NaN or infinity (a float column's, or text such as 1e999, which DuckDB
    reads as infinity) is no number: the row is quarantined with the column and the rule.
    It once passed the range check (NaN compares above everything in DuckDB) and made the
    features' exact revenue sum fail with a conversion error, as a revenue beyond the
    exact sum's DECIMAL(38, 6) did (1e33): that is above the column's maximum now."""
    n = 7
    log = pd.DataFrame(
        {
            "guest_id": [f"C{i % 2 + 1}" for i in range(n)],
            "ts": pd.date_range("2025-01-10", periods=n, freq="D").astype(str),
            "hotel": ["H1"] * n,
        }
    )
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        _with_log(tiny, log, "log.parquet")
        # NaN as a value, not a null (pandas would write its NaN as null)
        revenue = pa.array([10.0, float("nan"), float("inf"), -float("inf"), 5.5, None, 1e33])
        table = pa.Table.from_pandas(log, preserve_index=False).append_column("revenue", revenue)
        pq.write_table(table, tiny / "data" / "log.parquet")
    else:
        log["revenue"] = ["10", "NaN", "inf", "1e999", "5,5", "", "1e33"]
        _with_log(tiny, log, "log.csv")
    data = load_engagement(tiny)
    assert data.reports["interactions"].reasons == {
        "revenue: is not a valid float": 3,
        "revenue: above 1e+12": 1,
    }
    clean = data.interactions.to_pandas()
    assert sorted(clean["revenue"].dropna()) == [5.5, 10.0] and clean["revenue"].isna().sum() == 1
    f = features_frame(data.interactions).set_index("customer_id")
    assert f["spend"].sum() == 15.5


def test_small_tables_read_infinity_as_no_number():
    """The small tables' numbers (units, employees, survey), as the log's: infinity, from a
    float column or from text, is a present value that is no number, so its row is
    quarantined; a NaN in a float column is missing, as pandas reads it."""
    import numpy as np

    from rox_helpers.schemas import ColumnSpec
    from rox_helpers.validate import coerce_column

    spec = ColumnSpec("revenue", "float")
    text = pd.Series(["3,5", "€ 12", "inf", "-inf", "1e999", "x", None, "7"], dtype="object")
    out, bad = coerce_column(text, spec)
    np.testing.assert_array_equal(out, [3.5, 12, np.nan, np.nan, np.nan, np.nan, np.nan, 7])
    assert bad.tolist() == [False, False, True, True, True, True, False, False]
    out, bad = coerce_column(pd.Series([1.0, np.inf, np.nan, -np.inf]), spec)
    assert bad.tolist() == [False, True, False, True]
    assert out.isna().tolist() == [False, True, True, True]
