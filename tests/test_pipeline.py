"""`rox run` and `rox validate` end to end on a small engagement (fast), plus failure paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_tiny, write_notebook
from rox_helpers.cli import app
from rox_helpers.errors import NotebookRunError, RoxError
from rox_helpers.pipeline import Step, raise_for_failures, run_engagement

runner = CliRunner()


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """Rich wraps at the terminal width; a wide console keeps messages on one line."""
    from rox_helpers import cli

    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(cli.err_console, "width", 250)


RAW_PERSONAL = ("Renée", "Dubois", "renee@example.com", "John Smith", "07700 900123", "Müller")


def _all_text(folder: Path) -> str:
    chunks = []
    for p in folder.rglob("*"):
        if p.is_file():
            chunks.append(p.read_bytes().decode("utf-8", errors="ignore"))
            if p.suffix == ".parquet":
                import pandas as pd

                chunks.append(pd.read_parquet(p).to_csv())
    return "\n".join(chunks)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One run shared by the read-only tests (each notebook run costs a kernel start)."""
    return run_engagement(make_tiny(tmp_path_factory.mktemp("run") / "tiny"))


def test_run_writes_report_manifest_artifacts_quarantine(tiny_run):
    r = tiny_run
    assert r.status == "ok" and not r.failures
    assert r.run_dir.parent.name == "runs"
    manifest = json.loads(r.manifest.read_text())
    assert manifest["status"] == "ok"
    assert manifest["steps"]["00"]["status"] == "ok"
    inputs = {i["path"]: i for i in manifest["inputs"]}
    assert re.fullmatch(r"[0-9a-f]{64}", inputs["data/customers.csv"]["sha256"])
    assert "engagement.yml" in inputs
    assert manifest["versions"]["pandas"].startswith("3.")
    assert (r.run_dir / "quarantine" / "customers.csv").is_file()
    assert (r.run_dir / "artifacts" / "findings" / "00.json").is_file()
    assert (r.run_dir / "notebooks" / "00_engagement_setup.ipynb").is_file()
    findings = json.loads((r.run_dir / "artifacts" / "findings" / "00.json").read_text())
    assert any("quarantined" in f["headline"] for f in findings["findings"])


def test_report_is_self_contained_and_hides_code(tiny_run):
    html = tiny_run.report.read_text()
    assert "Tiny Hotels" in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html), "network reference in report"
    assert "<script src" not in html
    for leak in ("load_engagement(", "import ", "Traceback", "ENGAGEMENT ="):
        assert leak not in html, leak
    assert "data:image/png;base64" in html  # charts embedded


def test_no_raw_personal_data_anywhere_in_the_run(tiny_run):
    text = _all_text(tiny_run.run_dir)
    for raw in RAW_PERSONAL:
        assert raw not in text, raw


def test_each_run_gets_a_new_folder(tiny_run):
    a = tiny_run
    b = run_engagement(a.run_dir.parent.parent)
    assert a.run_dir != b.run_dir and a.report.is_file() and b.report.is_file()
    # the findings are the same for the same inputs
    fa = (a.run_dir / "artifacts" / "findings" / "00.json").read_text()
    fb = (b.run_dir / "artifacts" / "findings" / "00.json").read_text()
    assert fa == fb


def test_failing_notebook_names_notebook_and_cell_and_keeps_it(tiny, tmp_path):
    write_notebook(tmp_path / "99_broken.ipynb", "x = 1", "raise ValueError('planted failure')")
    r = run_engagement(
        tiny, notebooks_dir=tmp_path, steps=(Step("99", "99_broken.ipynb", "Broken step"),)
    )
    assert r.status == "failed"
    f = r.failures[0]
    assert f.notebook == "99_broken.ipynb" and f.ename == "ValueError"
    assert "planted failure" in f.evalue
    assert f.cell_index is not None
    assert Path(f.output_path).is_file()  # kept for debugging
    html = r.report.read_text()
    assert "could not be produced" in html and "planted failure" in html
    assert json.loads(r.manifest.read_text())["status"] == "failed"
    with pytest.raises(NotebookRunError) as exc:  # what `rox run` turns into exit code 1
        raise_for_failures(r)
    assert "99_broken.ipynb" in exc.value.message and f"cell {f.cell_index}" in exc.value.message
    assert exc.value.file == f.output_path


def test_cli_validate_ok_and_exit_1_on_hard_errors(tiny):
    ok = runner.invoke(app, ["validate", str(tiny)])
    assert ok.exit_code == 0, ok.output
    assert "quarantined" in ok.output and "customers" in ok.output
    (tiny / "data" / "units.csv").unlink()
    bad = runner.invoke(app, ["validate", str(tiny)])
    assert bad.exit_code == 1
    assert "units.csv" in bad.output and "not found" in bad.output
    assert "Traceback" not in bad.output


def test_cli_config_error_is_a_clear_message(tiny):
    cfg = tiny / "engagement.yml"
    cfg.write_text(cfg.read_text().replace("privacy:", "privcy:"))
    res = runner.invoke(app, ["validate", str(tiny)])
    assert res.exit_code == 1
    assert "did you mean 'privacy'" in res.output and "Traceback" not in res.output


def _public_survey_export(folder: Path) -> None:
    """A survey export as downloaded from a public portal: long questions as headers, an
    unnamed index column, blank cells, a "Don't know" code, US dates, a stray totals row."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(11)
    n = 120
    df = pd.DataFrame(
        {
            "Respondent ID": [f"{1000 + i}" for i in range(n)],
            "Date submitted": pd.date_range("2026-01-03", periods=n, freq="D").strftime("%m/%d/%Y"),
            "On a scale from 0 to 10, how likely is it that you would recommend Contoso "
            "Resorts to a friend or colleague?": rng.integers(0, 11, n).astype(float),
            "Overall, how satisfied were you with your most recent stay? (1 = very "
            "dissatisfied, 5 = very satisfied)": rng.integers(1, 6, n).astype(float),
            "Please rate: cleanliness of the room": rng.integers(1, 11, n).astype(float),
            "Please rate: speed of check-in": rng.integers(1, 11, n).astype(float),
            "Is there anything else you would like to tell us?": ["Great pool"] * n,
        }
    )
    df.iloc[::7, 2] = np.nan  # blank cells
    df.iloc[::11, 4] = 99  # "don't know"
    df.iloc[3, 6] = "Ask for Maria at maria.garcia@contoso.example"
    df.to_csv(folder / "survey_results_2026.csv")  # writes an unnamed index column


def test_cli_new_from_data_then_validate_on_unseen_files(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    _public_survey_export(drop)
    (drop / "notes.txt").write_text("not a data file\n")
    res = runner.invoke(
        app, ["new", "contoso-2026", "--from-data", str(drop), "--root", str(tmp_path / "eng")]
    )
    assert res.exit_code == 0, res.output
    assert "Proposed column mapping" in res.output and "nps" in res.output
    cfg = (tmp_path / "eng" / "contoso-2026" / "engagement.yml").read_text()
    assert "# REVIEW" in cfg
    val = runner.invoke(app, ["validate", str(tmp_path / "eng" / "contoso-2026")])
    assert val.exception is None or isinstance(val.exception, SystemExit), val.exception
    assert val.exit_code in (0, 1)
    assert "Traceback" not in val.output
    assert "cx_survey" in val.output
    assert "survey_results_2026.csv" in val.output


# ------------------------------------------------------------------ the dependency graph
def _dag(folder: Path, *, broken: bool) -> tuple[Step, ...]:
    """A -> (B, D); B -> C. Each step writes a line to its own artifact file."""
    folder.mkdir(exist_ok=True)
    mark = "from pathlib import Path\nPath(RUN_DIR, 'artifacts', '{}.txt').write_text('{}')"
    write_notebook(folder / "a.ipynb", mark.format("a", "a"))
    body = "raise ValueError('planted failure in B')" if broken else mark.format("b", "b")
    write_notebook(folder / "b.ipynb", body)
    write_notebook(
        folder / "c.ipynb",
        "from pathlib import Path\nb = Path(RUN_DIR, 'artifacts', 'b.txt').read_text()\n"
        + mark.format("c", "c"),
    )
    write_notebook(folder / "d.ipynb", mark.format("d", "d"))
    return (
        Step("A", "a.ipynb", "Step A"),
        Step("B", "b.ipynb", "Step B", needs=("A",)),
        Step("C", "c.ipynb", "Step C", needs=("B",)),
        Step("D", "d.ipynb", "Step D", needs=("A",)),
    )


def _events():
    log: list[tuple[str, str]] = []
    return log, lambda event, step, secs: log.append((event, step.id))


def test_independent_steps_run_in_parallel_and_the_report_keeps_the_order(tiny, tmp_path):
    steps = _dag(tmp_path / "nb", broken=False)
    log, on_event = _events()
    r = run_engagement(tiny, notebooks_dir=tmp_path / "nb", steps=steps, jobs=2, on_event=on_event)
    assert r.status == "ok"
    # B and D both depend only on A: both start before either finishes
    starts = [i for i, e in enumerate(log) if e in (("start", "B"), ("start", "D"))]
    first_done = min(i for i, e in enumerate(log) if e in (("done", "B"), ("done", "D")))
    assert len(starts) == 2 and max(starts) < first_done
    assert log.index(("done", "A")) < min(starts)
    assert log.index(("done", "B")) < log.index(("start", "C"))
    manifest = json.loads(r.manifest.read_text())
    assert manifest["jobs"] == 2 and list(manifest["steps"]) == ["A", "B", "C", "D"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", s["fingerprint"]) for s in manifest["steps"].values())
    html = r.report.read_text()
    assert html.index("Step A") < html.index("Step B") < html.index("Step C") < html.index("Step D")
    assert (r.run_dir / "logs" / "C.log").is_file()


def test_a_failure_blocks_only_what_needs_it_and_resume_completes_the_run(tiny, tmp_path):
    steps = _dag(tmp_path / "nb", broken=True)
    _log, on_event = _events()
    r = run_engagement(tiny, notebooks_dir=tmp_path / "nb", steps=steps, jobs=2, on_event=on_event)
    assert r.status == "failed" and [f.notebook for f in r.failures] == ["b.ipynb"]
    st = {k: v["status"] for k, v in json.loads(r.manifest.read_text())["steps"].items()}
    assert st == {"A": "ok", "B": "failed", "C": "skipped", "D": "ok"}
    html = r.report.read_text()
    assert "planted failure in B" in html and "needs failed step(s) B" in html
    # fix B, resume the same run: A and D are kept, B and C are executed
    _dag(tmp_path / "nb", broken=False)
    log2, on_event2 = _events()
    r2 = run_engagement(
        tiny, notebooks_dir=tmp_path / "nb", steps=steps, resume=r.run_dir, on_event=on_event2
    )
    assert r2.run_dir == r.run_dir and r2.status == "ok"
    assert sorted(log2) == sorted(
        [("kept", "A"), ("kept", "D"), ("start", "B"), ("done", "B"), ("start", "C"), ("done", "C")]
    )
    assert (r.run_dir / "artifacts" / "c.txt").read_text() == "c"
    # a changed notebook re-runs itself and everything downstream of it, nothing else
    write_notebook(tmp_path / "nb" / "b.ipynb", "x = 2  # edited")
    (tmp_path / "nb" / "c.ipynb").write_text((tmp_path / "nb" / "c.ipynb").read_text())
    log3, on_event3 = _events()
    r3 = run_engagement(
        tiny, notebooks_dir=tmp_path / "nb", steps=steps, resume=r.run_dir, on_event=on_event3
    )
    assert {s for e, s in log3 if e == "kept"} == {"A", "D"}
    assert {s for e, s in log3 if e == "done"} == {"B", "C"}
    assert r3.status == "ok"


def test_only_runs_a_step_and_what_it_needs(tiny, tmp_path):
    steps = _dag(tmp_path / "nb", broken=False)
    log, on_event = _events()
    r = run_engagement(tiny, notebooks_dir=tmp_path / "nb", steps=steps, only=["C"], jobs=1,
                       on_event=on_event)  # fmt: skip
    assert [s for e, s in log if e == "done"] == ["A", "B", "C"]
    assert list(json.loads(r.manifest.read_text())["steps"]) == ["A", "B", "C"]
    with pytest.raises(RoxError, match="no step 'Z'"):
        run_engagement(tiny, notebooks_dir=tmp_path / "nb", steps=steps, only=["Z"])


def test_resume_needs_a_run_folder(tiny, tmp_path):
    steps = _dag(tmp_path / "nb", broken=False)
    with pytest.raises(RoxError, match="not a run"):
        run_engagement(tiny, notebooks_dir=tmp_path / "nb", steps=steps, resume=tmp_path)


def test_cli_run_only_and_jobs(tiny):
    res = runner.invoke(app, ["run", str(tiny), "--only", "00", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert "00" in res.output and "(1/1)" in res.output
    bad = runner.invoke(app, ["run", str(tiny), "--only", "42"])
    assert bad.exit_code != 0 and "no step '42'" in bad.output


def _run_fingerprint(run_dir: Path) -> dict[str, str]:
    """Every artifact table (as CSV), every findings file, and the report's text with the
    run's own name and time taken out."""
    import pandas as pd

    out = {}
    for p in sorted((run_dir / "artifacts").rglob("*")):
        if p.suffix == ".parquet":
            out[str(p.relative_to(run_dir))] = pd.read_parquet(p).to_csv()
        elif p.suffix == ".json":
            out[str(p.relative_to(run_dir))] = p.read_text()
    html = (run_dir / "report.html").read_text()
    out["report.html"] = html.replace(run_dir.name, "<run>")
    return out


@pytest.mark.slow
def test_same_inputs_same_results_whatever_the_jobs_and_blas_threads(tmp_path, monkeypatch):
    """One step at a time with one BLAS thread in fresh interpreters, and two at a time with
    two in kernels forked from the warm server (rox_helpers.kernels): the same tables,
    findings and report text."""
    root = make_tiny(tmp_path / "tiny")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("ROX_KERNEL_FORK", "0")
    a = run_engagement(root, jobs=1)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.setenv("ROX_KERNEL_FORK", "1")
    b = run_engagement(root, jobs=2)
    assert a.status == b.status == "ok"
    fa, fb = _run_fingerprint(a.run_dir), _run_fingerprint(b.run_dir)
    assert fa.keys() == fb.keys() and len(fa) > 10
    for k in fa:
        assert fa[k] == fb[k], k


def test_the_longest_chain_of_work_starts_first():
    """After setup, segmentation starts before measurement: drivers, the journey, the six
    actions and the business case wait on it, nothing waits on measurement but the six
    actions. Known step times weigh the chains."""
    from rox_helpers.pipeline import STEPS, critical_path

    rank = critical_path(STEPS, {})
    assert rank["00"] == max(rank.values())
    assert rank["02"] > rank["01"] and rank["02"] > rank["04"]
    # 04 much slower than everything else: its chain (04 -> 06) outranks 02's
    timed = critical_path(STEPS, {"04": 60.0})
    assert timed["04"] > timed["02"]
    assert timed["00"] == pytest.approx(1 + 60 + 1)


def test_each_step_records_its_peak_memory_and_a_budget_keeps_big_steps_apart(tiny, tmp_path):
    """A run records each step's peak memory (its kernel's high-water mark); the next run
    with --max-memory starts a step beside others only while their recorded peaks fit the
    budget: B and D, each near the budget, run one after the other instead of together."""
    from rox_helpers import kernels

    steps = _dag(tmp_path / "nb", broken=False)
    first = run_engagement(tiny, notebooks_dir=tmp_path / "nb", steps=steps, jobs=2)
    recs = json.loads(first.manifest.read_text())["steps"]
    if kernels.fork_enabled():  # the forked kernels report it
        peaks = {k: v["peak_rss"] for k, v in recs.items()}
        assert all(50 * 2**20 < p < 4 * 2**30 for p in peaks.values()), peaks
    # a budget under two kernels' peaks: B and D (both ready after A) take turns
    budget = int(1.5 * max(v.get("peak_rss", 2**30) for v in recs.values()))
    if not kernels.fork_enabled():  # record peaks by hand for fresh interpreters
        m = json.loads(first.manifest.read_text())
        for v in m["steps"].values():
            v["peak_rss"] = 2**30
        first.manifest.write_text(json.dumps(m))
    log, on_event = _events()
    run_engagement(
        tiny, notebooks_dir=tmp_path / "nb", steps=steps, jobs=2, on_event=on_event,
        max_memory=budget,
    )  # fmt: skip
    started = [s for e, s in log if e == "start"]
    assert set(started) == {"A", "B", "C", "D"}
    for x, y in (("B", "D"), ("D", "B")):
        if log.index(("start", x)) < log.index(("start", y)):
            assert log.index(("done", x)) < log.index(("start", y))
    # without the budget, B and D run side by side (see the test of parallel steps)
