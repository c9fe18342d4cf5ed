"""Loading and validation: each bad-input case, quarantine, missing codes, consent."""

from __future__ import annotations

import shutil

import pandas as pd
import pyreadstat
import pytest

from conftest import pseudonym, write_yaml
from rox_helpers.data import load_engagement
from rox_helpers.errors import DataValidationError
from rox_helpers.io import detect_delimiter, detect_encoding, read_table


def test_reads_cp1252_semicolon_csv(tiny):
    path = tiny / "data" / "customers.csv"
    assert detect_encoding(path) == "cp1252"
    assert detect_delimiter(path, "cp1252") == ";"
    raw = read_table(path)
    assert "Renée Dubois" in set(raw.frame["full_name"])


def test_reads_utf8_bom(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes("\ufeffid,name\n1,Zoë\n".encode())
    assert detect_encoding(p) == "utf-8-sig"
    assert list(read_table(p).frame.columns) == ["id", "name"]


def test_quarantine_has_each_planted_problem_with_reason(tiny):
    data = load_engagement(tiny)
    cq = data.quarantine["customers"]
    assert len(cq) == 2
    reasons = " | ".join(cq["reason"])
    assert "duplicate customer_id" in reasons
    assert "signup_date: does not parse as a date (value 31/02/2024)" in reasons
    assert list(cq["source_record"]) == [3, 4]  # n-th data row of the client's file

    sq = data.quarantine["cx_survey"].set_index("response_id")
    r = {i: pseudonym(tiny, i, "R-") for i in ("r3", "r4", "r5")}
    assert set(sq.index) == set(r.values())
    assert "nps: outside 0-10" in sq.loc[r["r3"], "reason"]
    assert "unit_id: unknown id" in sq.loc[r["r4"], "reason"]
    assert "customer_id: unknown id" in sq.loc[r["r5"], "reason"]
    # nothing silently dropped: every row read is valid, quarantined or excluded for consent
    for r in data.reports.values():
        assert r.rows_read == r.rows_valid + r.rows_quarantined + r.rows_excluded_consent


def test_missing_codes_become_missing_and_are_counted(tiny):
    data = load_engagement(tiny)
    s = data.tables["cx_survey"].set_index("response_id")
    r6, r1 = pseudonym(tiny, "r6", "R-"), pseudonym(tiny, "r1", "R-")
    assert pd.isna(s.loc[r6, "att_clean"])  # 99 = don't know
    assert s.loc[r1, "att_clean"] == 8
    assert data.reports["cx_survey"].missing_codes["att_clean"] == 1
    assert pd.isna(s.loc[r6, "comment"])  # "n/a"


def test_consent_excludes_customers_and_unlinks_responses(tiny):
    data = load_engagement(tiny)
    assert len(data.tables["customers"]) == 2  # C1, C2 (C3 quarantined, C4 no consent)
    assert data.privacy.customers_without_consent == 1
    s = data.tables["cx_survey"].set_index("response_id")
    assert pd.isna(s.loc[pseudonym(tiny, "r8", "R-"), "customer_id"])  # C4's, kept, unlinked
    assert data.privacy.survey_responses_unlinked == 1


def test_types_are_canonical(tiny):
    data = load_engagement(tiny)
    c = data.tables["customers"]
    assert str(c["consent_analytics"].dtype) == "boolean"
    assert pd.api.types.is_datetime64_any_dtype(c["signup_date"])
    assert c.loc[0, "signup_date"] == pd.Timestamp("2024-02-01")  # day-first as configured
    u = data.tables["units"]
    assert u["period"].iloc[0] == pd.Timestamp("2025-01-01")


def test_missing_file_and_missing_column_are_hard_errors_listed_together(tiny):
    (tiny / "data" / "units.csv").unlink()
    text = (tiny / "engagement.yml").read_text().replace("nps: recommend", "nps: recomend")
    (tiny / "engagement.yml").write_text(text)
    with pytest.raises(DataValidationError) as exc:
        load_engagement(tiny)
    problems = exc.value.problems
    assert len(problems) == 2
    missing_file = next(p for p in problems if p.table == "units")
    assert "not found" in missing_file.message and missing_file.file.endswith("units.csv")
    assert "path" in missing_file.fix
    bad_col = next(p for p in problems if p.table == "cx_survey")
    assert bad_col.column == "nps <- recomend"
    assert "recommend" in bad_col.fix  # lists the file's columns
    assert "survey.csv" in bad_col.file


def test_missing_required_column(tiny):
    text = (tiny / "engagement.yml").read_text().replace("customer_id: guest_id, ", "")
    (tiny / "engagement.yml").write_text(text)
    with pytest.raises(DataValidationError) as exc:
        load_engagement(tiny)
    p = exc.value.problems[0]
    assert p.rule == "required column" and p.column.startswith("customer_id")
    assert "data.customers.columns" in p.fix


def test_survey_only_engagement_loads_and_says_what_is_skipped(tmp_path):
    from rox_helpers import framework

    root = tmp_path / "survey-only"
    (root / "data").mkdir(parents=True)
    df = pd.DataFrame(
        {
            "ResponseId": [f"R{i}" for i in range(60)],
            "Q1": [i % 11 for i in range(60)],
            "Q2": [(i % 10) + 1 for i in range(60)],
            "Q3": [((i * 7) % 10) + 1 for i in range(60)],
            "Q4": [None if i % 9 == 0 else "Fine stay" for i in range(60)],
        }
    )
    pyreadstat.write_sav(
        df,
        str(root / "data" / "export.sav"),
        column_labels=["Response ID", "Recommend", "Clean", "Speed", "Comments"],
    )
    write_yaml(
        root / "engagement.yml",
        """
        client: {name: Survey Only Ltd}
        data:
          cx_survey:
            path: data/export.sav
            columns: {response_id: ResponseId, nps: Q1, att_clean: Q2, att_speed: Q3, comment: Q4}
        codebook:
          att_clean: {label: Cleanliness, scale: [1, 10]}
          att_speed: {label: Speed, scale: [1, 10]}
        """,
    )
    data = load_engagement(root)
    assert len(data.tables["cx_survey"]) == 60
    avail = framework.analysis_availability(data).set_index("analysis")
    assert avail.loc["CX metrics (NPS, CSAT, CES)", "runs"]
    assert avail.loc["Key driver analysis", "runs"]
    seg = avail.loc["Behavioural segmentation"]
    assert not seg["runs"] and "interactions" in seg["reason"]
    assert "employees" in avail.loc["EX metrics (pride, eNPS, turnover)", "reason"]


def test_spss_declared_missing_values_are_counted(tmp_path):
    df = pd.DataFrame({"id": ["a", "b", "c"], "rate": [5.0, 99.0, 7.0]})
    path = tmp_path / "s.sav"
    pyreadstat.write_sav(
        df, str(path), missing_ranges={"rate": [99]}, variable_value_labels={"rate": {99: "DK"}}
    )
    raw = read_table(path)
    assert raw.missing_by_column == {"rate": 1}
    assert raw.frame["rate"].isna().sum() == 1
    assert raw.value_labels["rate"] == {99.0: "DK"}


def test_user_files_are_never_modified(tiny):
    before = {p: p.read_bytes() for p in (tiny / "data").iterdir()}
    load_engagement(tiny)
    assert {p: p.read_bytes() for p in (tiny / "data").iterdir()} == before


def test_excel_source(tiny, tmp_path):
    u = pd.read_csv(tiny / "data" / "units.csv")
    u.to_excel(tiny / "data" / "units.xlsx", index=False)
    text = (tiny / "engagement.yml").read_text().replace("units.csv", "units.xlsx")
    (tiny / "engagement.yml").write_text(text)
    data = load_engagement(tiny)
    assert list(data.tables["units"]["unit_id"]) == ["H1", "H2"]
    shutil.rmtree(tmp_path / "tiny" / "data", ignore_errors=True)
