"""The whole sample engagement with its interaction log where it lives (issue 10, done
when): on PostgreSQL and on Spark with ``extract: log``, against one DuckDB run of the same
data, and in a client's database with the default ``extract: features``.

A file of its own, apart from tests/test_sources.py: these are the suite's longest tests
(three full runs), and ``make test`` (pytest-xdist, ``--dist loadfile``) gives each file to
one worker, so the two halves run side by side.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from test_sources import _copy_sample, _point_at

from rox_helpers import engines
from rox_helpers.pipeline import STEPS

# --------------------------------------------------------------------------------------
# End to end: the whole sample engagement with its log on PostgreSQL and on Spark
# --------------------------------------------------------------------------------------

#: tables the engines must write identically (the log, its features and the segments made
#: from them); every other table is compared to :data:`RTOL`
EXACT_TABLES = ("interactions", "customer_features", "customer_segments", "segment_profiles")
#: each engine returns the log's rows in its own order, so later sums over them (the CLV
#: models' inputs) add up in another order: measured differences are below 1.3e-6 relative
#: (a Gamma-Gamma standard error), 1e-7 for the ROX ratios; a wrong row would move a figure
#: far more
RTOL = 1e-5


def _artifacts(run_dir: Path) -> dict[str, pd.DataFrame | dict]:
    """Every artifact table (rows in a canonical order) and findings file of a run."""
    out: dict[str, pd.DataFrame | dict] = {}
    for p in sorted((run_dir / "artifacts").rglob("*")):
        key = str(p.relative_to(run_dir))
        if p.suffix == ".parquet":
            df = pd.read_parquet(p)
            if p.stem == "data_quality":
                df = df.drop(columns="file")  # a file name here, backend and table there
            for col in df.columns:  # time stamps compared in microseconds (Spark: us,
                if pd.api.types.is_datetime64_any_dtype(df[col]):  # DuckDB: ns or us)
                    df[col] = df[col].astype("datetime64[us]")
            if p.stem == "interactions":  # an engine returns rows in its own order
                df = df.sort_values(list(df.columns)).reset_index(drop=True)
            out[key] = df
        elif p.suffix == ".json":
            payload = json.loads(p.read_text())
            if p.name == "load_privacy.json":
                payload.pop("key_source")  # names each copy's key file (same key inside)
            out[key] = payload
    return out


def _same_json(got, want, where: str) -> None:
    """The same findings: every text (headlines, evidence, the figures as the report prints
    them) identical; unrounded numbers kept beside them equal to :data:`RTOL`."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for k in want:
            _same_json(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same_json(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert got == pytest.approx(want, rel=RTOL, nan_ok=True), where
    else:
        assert got == want, where


def _same_run_results(a: Path, b: Path, engine: str) -> list[str]:
    """Every findings file the same (:func:`_same_json`), the engine's own tables
    identical, every other table equal to :data:`RTOL`."""
    fa, fb = _artifacts(a), _artifacts(b)
    assert fa.keys() == fb.keys(), engine
    for k, want in fa.items():
        got = fb[k]
        if isinstance(want, pd.DataFrame):
            exact = Path(k).stem in EXACT_TABLES
            pd.testing.assert_frame_equal(
                got, want, obj=f"{engine} {k}", check_exact=exact, rtol=RTOL
            )
        else:
            _same_json(got, want, f"{engine} {k}")
    return list(fa)


def _same_headline_figures(a: Path, b: Path, engine: str) -> pd.DataFrame:
    """The headline figures of ``rox diff`` (every step's) in both runs: the same figures,
    estimates, standard errors and bases."""
    from rox_helpers.rundiff import headline_figures

    ha, hb = headline_figures(a), headline_figures(b)
    assert list(ha["figure"]) == list(hb["figure"]), engine
    assert set(ha["step"]) == {"01", "02", "03", "04", "07"}, engine  # each step's figures
    for col in ("estimate", "se", "n"):
        np.testing.assert_allclose(hb[col], ha[col], rtol=RTOL, err_msg=f"{engine} {col}")
    return ha.assign(**{engine: hb["estimate"].to_numpy()})


NUMBER = re.compile(r"^[-+−]?[0-9][0-9,]*(\.[0-9]+)?%?$")


def _report_words(run_dir: Path, source: str) -> list[str]:
    """The report's visible text as words, the engagement's name and the log's source
    (a file name in one run, an engine and table in the other) replaced by placeholders."""
    html = (run_dir / "report.html").read_text()
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<img\b[^>]*>", " ", html)
    text = re.sub(r"<[^>]+>", " ", html)
    text = text.replace(run_dir.name, "<run>").replace(source, "<source>")
    text = text.replace(f"engagement {run_dir.parent.parent.name}.", "engagement <name>.")
    return text.split()


def _same_report(a: Path, b: Path, engine: str, source_b: str) -> int:
    """The two reports read the same, word for word; numbers equal to :data:`RTOL` (the
    business case prints euro totals to the unit: 603,282,850 against 603,282,868)."""
    wa, wb = _report_words(a, "interactions.parquet"), _report_words(b, source_b)
    assert len(wa) == len(wb), engine
    numbers = 0
    for x, y in zip(wa, wb, strict=True):
        if x != y and NUMBER.match(x) and NUMBER.match(y):
            fx, fy = (float(v.replace(",", "").rstrip("%").replace("−", "-")) for v in (x, y))
            assert fy == pytest.approx(fx, rel=RTOL), f"{engine}: {x} against {y}"
            numbers += 1
        else:
            assert x == y, f"{engine}: {x!r} against {y!r}"
    return numbers


def _assert_same_as_duckdb(duck: Path, run, engine: str, source: str) -> pd.DataFrame:
    assert run.status == "ok", engine
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    statuses = {step: r["status"] for step, r in manifest["steps"].items()}
    assert statuses == {s.id: "ok" for s in STEPS}, engine
    compared = _same_run_results(duck, run.run_dir, engine)
    assert {
        "artifacts/tables/interactions.parquet",
        "artifacts/tables/customer_features.parquet",
        "artifacts/tables/customer_segments.parquet",
        "artifacts/tables/value_scenarios.parquet",
    } | {f"artifacts/findings/{s.id}.json" for s in STEPS} <= set(compared)
    _same_report(duck, run.run_dir, engine, source)
    return _same_headline_figures(duck, run.run_dir, engine)


@pytest.fixture(scope="module")
def duck_run(sample, tmp_path_factory):
    """The whole sample engagement as it is (its log a Parquet file), run once for the
    engines to compare with."""
    import shutil

    from rox_helpers.pipeline import run_engagement

    root = _copy_sample(sample, tmp_path_factory.mktemp("e2e") / "duck")
    shutil.copy(sample / "data" / "interactions.parquet", root / "data" / "interactions.parquet")
    res = run_engagement(root, jobs=2)
    assert res.status == "ok"
    return res.run_dir


@pytest.mark.slow
def test_sample_runs_with_its_log_on_postgres_with_the_same_results(
    sample, pg, pg_url, duck_run, tmp_path
):
    """The sample's log as a PostgreSQL table (extract: log): every step runs, with the
    same findings, tables, headline figures and report as with the Parquet file (the
    data-quality table names the source), and the manifest names the backend and table."""
    from rox_helpers.pipeline import run_engagement

    root = _copy_sample(sample, tmp_path / "pg")
    _point_at(root, f"connection: {pg_url}\ntable: src_interactions\nextract: log\n")
    res = run_engagement(root, jobs=2)
    _assert_same_as_duckdb(duck_run, res, "postgres", engines.describe(pg_url, "src_interactions"))
    segments = pd.read_parquet(res.run_dir / "artifacts/tables/segment_profiles.parquet")
    assert len(segments) >= 2  # the segmentation ran on the log, not skipped
    quality = pd.read_parquet(res.run_dir / "artifacts/tables/data_quality.parquet")
    assert quality.set_index("table").loc["interactions", "file"].endswith("src_interactions")
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    (entry,) = [e for e in manifest["inputs"] if e["table"] == "interactions"]
    assert entry["backend"] == "postgres" and entry["rows"] == len(
        pd.read_parquet(sample / "data" / "interactions.parquet")
    )


@pytest.mark.slow
def test_sample_runs_with_its_log_on_spark_with_the_same_results(sample, spark, duck_run, tmp_path):
    """The sample's log as a Parquet folder on a Spark "lake" (source spark:local[2], the
    table a path: the notebooks run in their own kernel, hence their own Spark session, so
    a temporary view of this process would not reach them): every step runs, with the same
    findings, tables, headline figures and report as with DuckDB."""
    import shutil

    from rox_helpers.pipeline import run_engagement

    root = _copy_sample(sample, tmp_path / "spark")
    lake = tmp_path / "lake" / "interactions"
    lake.mkdir(parents=True)
    shutil.copy(sample / "data" / "interactions.parquet", lake / "part-0.parquet")
    _point_at(root, f"connection: spark:local[2]\ntable: {lake}\nextract: log\n")
    res = run_engagement(root, jobs=2)
    figures = _assert_same_as_duckdb(
        duck_run, res, "spark", engines.describe("spark:local[2]", str(lake))
    )
    assert len(figures) >= 20
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    (entry,) = [e for e in manifest["inputs"] if e["table"] == "interactions"]
    assert entry["backend"] == "pyspark" and entry["source_table"] == str(lake)


@pytest.mark.slow
def test_with_the_log_withheld_the_sample_segments_the_same_and_says_where_the_log_is(
    sample, raw_log, duck_run, tmp_path
):
    """The sample's log in a client's database (a DuckDB file) with the default extract:
    features: no row of it reaches the run, step 02 segments from the per-customer
    summaries step 00 brought back (the same segments, profiles and findings as from the
    log), step 06a estimates the programmes' effects from the monthly activity the engine
    aggregated (the same as from the log), and the skip texts of step 05 and of the
    regions' reports name the source and the fix."""
    from rox_helpers.pipeline import run_engagement

    root = _copy_sample(sample, tmp_path / "withheld")
    con = ibis.duckdb.connect(str(root / "data" / "client.duckdb"))
    con.create_table("visits", raw_log)
    con.disconnect()
    _point_at(root, "connection: data/client.duckdb\ntable: visits\n")
    res = run_engagement(root, only=["02", "05", "06a"], jobs=2)
    assert res.status == "ok"
    tables = res.run_dir / "artifacts" / "tables"
    assert not (tables / "interactions.parquet").exists()
    for name in (
        "customer_features",
        "customer_segments",
        "segment_profiles",
        "segment_outcomes",
        "segments_vs_demographics",
    ):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tables / f"{name}.parquet"),
            pd.read_parquet(duck_run / "artifacts" / "tables" / f"{name}.parquet"),
            obj=name,
        )
    findings = "artifacts/findings/02.json"
    assert (res.run_dir / findings).read_text() == (duck_run / findings).read_text()
    # step 06a's programme effects from the monthly activity the engine aggregated
    effects = "artifacts/tables/actions_community_effects.parquet"
    pd.testing.assert_frame_equal(
        pd.read_parquet(res.run_dir / effects), pd.read_parquet(duck_run / effects), rtol=1e-9
    )
    executed = (res.run_dir / "notebooks" / "05_journey_and_moments.ipynb").read_text()
    assert (
        "stayed in the client" in executed and "duckdb data/client.duckdb, table visits" in executed
    )
    assert "extract: log" in executed
    # the regions' reports: the funnel and the segment mix say the same, not "needs a log"
    import html

    from rox_helpers.unit_reports import render_per

    per = render_per(res.run_dir, "region", jobs=2)
    assert {r.status for r in per.reports} == {"ok"}
    page = html.unescape((per.folder / per.reports[0].report).read_text())
    assert page.count("stayed in the client's engine (duckdb data/client.duckdb") == 2
