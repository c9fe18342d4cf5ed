"""Run to run: which headline figures moved between two runs, by how much, and how sure.

``rox diff <run-a> <run-b>`` and the report's "Since the last run" section answer the
question a consultant has when the client sends refreshed data next quarter. Three frames:

- ``figures``: every headline figure of the registry (:data:`HEADLINE_FIGURES`) in both runs,
  the change ``b - a`` and an interval **on the change itself** (never two intervals side by
  side). How the interval is made depends on whether the two runs' samples are independent:

  * survey metrics (NPS, CSAT, CES) are recomputed from each run's ``cx_survey`` table with
    the run's survey weights. When the two tables share respondents (the same
    ``response_id`` in both, e.g. a refreshed export that adds a quarter) the two figures
    are correlated, and ``sqrt(se_a**2 + se_b**2)`` is wrong. The change is then
    bootstrapped over the union of respondents: resample respondents, recompute the
    figure in both runs' data (a respondent present in one run only counts in that run),
    take the difference; a percentile interval. Without shared respondents the
    independent formula is exact (``method="independent"``).
  * the other figures are read from the artifact tables with their standard errors (or
    95% intervals, read as normal). Their change gets the independent formula; when the
    runs share people or units that formula overstates the uncertainty of the change
    (the estimates are positively correlated), so the row says it is conservative.
  * figures without a sampling interval (the scorecard indices) get the change only.

- ``inputs``: every input file of either manifest by sha256: ``changed``, ``added``,
  ``removed`` or ``same``.
- ``parameters``: the run parameters, the workbook version and the git commit of each run.
- ``steps``: each step's status in both runs and whether its fingerprint changed.

The survey weights are made again from each run's tables with the engagement's
``measurement.weighting`` as it is now (the runs keep the tables, not the weights); if that
reproduces a run's reported NPS the figure is the report's, otherwise the row says so.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rox_helpers import metrics
from rox_helpers.artifacts import has_table, load_table, read_manifest
from rox_helpers.errors import RoxError

__all__ = [
    "HEADLINE_FIGURES",
    "RunDiff",
    "SinceLast",
    "diff_runs",
    "headline_figures",
    "previous_run",
    "since_last_run",
    "survey_metric_change",
]

#: survey metrics recomputed from ``cx_survey`` (metric, answer column)
SURVEY_METRICS = (("nps", "nps"), ("csat", "csat"), ("ces", "ces"))
#: driver shares and linkage effects: the top few of either run are compared
TOP_DRIVERS = 3
TOP_LINKS = 5
#: the id column that says whether two runs share the people behind a sample
SAMPLE_IDS = {
    "cx_survey": "response_id",
    "employees": "employee_id",
    "customers": "customer_id",
    "units": "unit_id",
}
#: one run's figure (see :func:`headline_figures`)
ROW_COLUMNS = ["figure", "label", "step", "unit", "estimate", "se", "n", "sample", "note", "top"]
FIGURE_COLUMNS = [
    "figure",
    "label",
    "step",
    "unit",
    "a",
    "b",
    "change",
    "se_change",
    "ci_low",
    "ci_high",
    "significant",
    "method",
    "n_a",
    "n_b",
    "n_shared",
    "note",
]


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


# ------------------------------------------------------------------ one run's figures
def _row(key, label, step, unit, estimate, se=np.nan, n=np.nan, sample="", note="", top=np.nan):
    return {
        "figure": key,
        "label": label,
        "step": step,
        "unit": unit,
        "estimate": float(estimate),
        "se": float(se),
        "n": float(n),
        "sample": sample,
        "note": note,
        "top": float(top),
    }


def _se_from_ci(lo, hi, level: float = 0.95) -> float:
    lo, hi = float(lo), float(hi)
    return (hi - lo) / (2 * _z(level)) if np.isfinite(lo) and np.isfinite(hi) else np.nan


def _ex_figures(run_dir: Path) -> list[dict]:
    if not has_table(run_dir, "ex_by_team"):
        return []
    t = load_table(run_dir, "ex_by_team")
    out = []
    rows = t[(t["team"] == "All") & ~t["suppressed"].fillna(False).astype(bool)]
    for _, r in rows.iterrows():
        name = {"pride": "Pride (mean)", "enps": "eNPS", "engagement": "Engagement (mean)"}
        unit = "points" if r["measure"] == "enps" else "mean"
        out.append(
            _row(
                f"ex.{r['measure']}",
                name.get(r["measure"], str(r["measure"])),
                "01",
                unit,
                r["estimate"],
                r["se"],
                r["n"],
                "employees",
            )
        )
    return out


def _scorecard_figures(run_dir: Path) -> list[dict]:
    if not has_table(run_dir, "scorecard_elements"):
        return []
    t = load_table(run_dir, "scorecard_elements")
    if t.empty:
        return []
    latest = sorted(t["period"].astype(str).unique())[-1]
    now = t[t["period"].astype(str) == latest].groupby("element", sort=False)["index"]
    return [
        _row(
            f"scorecard.{el}",
            f"{str(el).capitalize()} index (chain mean, latest period)",
            "01",
            "index",
            s.mean(),
            n=s.count(),
            sample="units",
            note=f"period {latest}",
        )
        for el, s in now
    ]


def _segment_figures(run_dir: Path) -> list[dict]:
    if not has_table(run_dir, "segment_profiles"):
        return []
    t = load_table(run_dir, "segment_profiles")
    total = float(t["n"].sum())
    out = []
    for _, r in t.iterrows():
        p = float(r["share"])
        se = np.sqrt(p * (1 - p) / total) if total > 0 else np.nan
        out.append(
            _row(
                f"segment.{r['name']}",
                f"Segment size: {r['name']}",
                "02",
                "share",
                p,
                se,
                r["n"],
                "customers",
                note="share of segmented customers; binomial error only (the segments are refitted)",
            )
        )
    return out


def _driver_figures(run_dir: Path) -> list[dict]:
    if not has_table(run_dir, "driver_importances"):
        return []
    t = load_table(run_dir, "driver_importances")
    return [
        _row(
            f"driver.{r['driver']}",
            f"Driver share: {r['driver']}",
            "03",
            "share",
            r["share"],
            _se_from_ci(r["ci_low"], r["ci_high"]),
            r["n"],
            "cx_survey",
            note="SE read from the bootstrap interval",
            top=r["rank"],
        )
        for _, r in t.iterrows()
    ]


def _linkage_figures(run_dir: Path) -> list[dict]:
    if not has_table(run_dir, "linkage_effects"):
        return []
    t = load_table(run_dir, "linkage_effects")
    t = t[t["to"] == "nps"] if (t["to"] == "nps").any() else t.iloc[0:0]
    z = (t["total"] / t["total_se"]).abs().rank(ascending=False, method="first")
    return [
        _row(
            f"linkage.{r['from']}->{r['to']}",
            f"Total effect of {r['from_label']} on {r['to_label']}",
            "04",
            "effect",
            r["total"],
            r["total_se"],
            sample="units",
            top=z[i],
        )
        for i, r in t.iterrows()
    ]


def _rox_figures(run_dir: Path) -> list[dict]:
    if not has_table(run_dir, "value_scenarios"):
        return []
    t = load_table(run_dir, "value_scenarios")
    t = t[t["quantity"] == "rox"]
    return [
        _row(
            f"rox.{r['scenario']}",
            f"ROX ratio: {r['scenario']}",
            "07",
            "ratio",
            r["estimate"],
            _se_from_ci(r["ci_low"], r["ci_high"]),
            r["n_customers"],
            "customers",
            note="SE read from the simulation interval",
        )
        for _, r in t.iterrows()
    ]


#: headline figures read from a run's artifact tables (the survey metrics come first, made
#: by :func:`survey_figures`); each reader takes a run folder and returns rows
HEADLINE_FIGURES: dict[str, Callable[[Path], list[dict]]] = {
    "ex": _ex_figures,
    "scorecard": _scorecard_figures,
    "segments": _segment_figures,
    "drivers": _driver_figures,
    "linkage": _linkage_figures,
    "rox": _rox_figures,
}


def _engagement_of(run_dir: Path) -> Path:
    return run_dir.parent.parent


@functools.lru_cache(maxsize=8)
def _weighting_of(engagement: Path, stamp: int) -> dict[str, object]:
    from rox_helpers.config import load_engagement_config

    try:
        w = load_engagement_config(engagement).measurement.weighting
    except (RoxError, OSError, ValueError):
        return {"use_client_weight": True, "rake_to_customers": ()}
    return {
        "use_client_weight": w.use_client_weight,
        "rake_to_customers": tuple(w.rake_to_customers),
        "trim": w.trim,
    }


def _weighting(engagement: Path) -> dict[str, object]:
    """The engagement's ``measurement.weighting`` (read once per version of the file); the
    client's weight alone when there is no readable engagement.yml."""
    cfg = engagement / "engagement.yml"
    stamp = cfg.stat().st_mtime_ns if cfg.is_file() else 0
    return _weighting_of(engagement.resolve(), stamp)


def _weighted_survey(run_dir: Path) -> pd.DataFrame | None:
    """The run's ``cx_survey`` with ``weight_final``, made as step 01 makes it (the
    engagement's weighting, the run's customers); the client's weight, or none, when the
    engagement's config cannot be read."""
    if not has_table(run_dir, "cx_survey"):
        return None
    survey = load_table(run_dir, "cx_survey")
    from rox_helpers import weights

    opts = _weighting(_engagement_of(run_dir))
    customers = load_table(run_dir, "customers") if has_table(run_dir, "customers") else None
    out, _ = weights.survey_weights(survey, customers, **opts)
    return out


def _reported_nps(run_dir: Path) -> float | None:
    for dim in ("trip_purpose", "channel", "touchpoint", "quarter"):
        if has_table(run_dir, f"nps_by_{dim}"):
            t = load_table(run_dir, f"nps_by_{dim}")
            row = t[t[dim].astype(str) == "All"]
            if len(row):
                return float(row["estimate"].iloc[0])
    return None


def _scores(survey: pd.DataFrame, name: str, column: str) -> pd.Series | None:
    if column not in survey.columns or survey[column].notna().sum() == 0:
        return None
    return metrics.METRICS[name].score(pd.to_numeric(survey[column], errors="coerce"))


def survey_figures(run_dir: str | Path, survey: pd.DataFrame | None = None) -> list[dict]:
    """NPS, CSAT and CES of a run, recomputed from its ``cx_survey`` with its weights."""
    run_dir = Path(run_dir)
    survey = _weighted_survey(run_dir) if survey is None else survey
    if survey is None:
        return []
    out = []
    for name, col in SURVEY_METRICS:
        y = _scores(survey, name, col)
        if y is None:
            continue
        spec = metrics.METRICS[name]
        res = metrics.estimate(y, spec, survey.get("weight_final"))
        note = ""
        if name == "nps":
            reported = _reported_nps(run_dir)
            if reported is not None and abs(reported - res["estimate"]) > 1e-6:
                note = (
                    f"the run reported {reported:.1f}; recomputed with today's weighting "
                    "(engagement.yml changed since)"
                )
        unit = {"difference": "points", "share": "share", "mean": "mean"}[spec.kind]
        out.append(
            _row(
                f"survey.{name}",
                spec.label,
                "01",
                unit,
                res["estimate"],
                res["se"],
                res["n"],
                "cx_survey",
                note,
            )
        )
    return out


def _read_figures(run_dir: Path, notes: list[str]) -> list[dict]:
    """The registry's figures of a run; a table in an older layout is left out with a note
    (a run made by an earlier version of the workbook stays comparable)."""
    rows: list[dict] = []
    for name, reader in HEADLINE_FIGURES.items():
        try:
            rows += reader(run_dir)
        except (KeyError, ValueError, TypeError) as exc:
            notes.append(
                f"{name} figures of run {run_dir.name} not read ({type(exc).__name__}: {exc})"
            )
    return rows


def headline_figures(run_dir: str | Path) -> pd.DataFrame:
    """Every headline figure of one run: ``figure`` (key), ``label``, ``step``, ``unit``,
    ``estimate``, ``se`` (NaN when the figure has none), ``n``, ``sample`` (the table whose
    people or units it rests on), ``note``, ``top`` (rank, for drivers and links)."""
    run_dir = Path(run_dir)
    rows = survey_figures(run_dir)
    rows += _read_figures(run_dir, [])
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


# ------------------------------------------------------------ the change and its interval
def _unit_sums(
    survey: pd.DataFrame, y: pd.Series, weight: str | None, id_col: str, tag: str
) -> pd.DataFrame:
    """Per respondent: sum of w*y and of w over their usable answers (w = 0 when absent)."""
    w = (
        pd.Series(1.0, index=survey.index)
        if weight is None or weight not in survey.columns
        else pd.to_numeric(survey[weight], errors="coerce").astype("float64")
    )
    ok = y.notna() & w.notna() & (w > 0)
    ids = survey[id_col].astype("object") if id_col in survey.columns else None
    if ids is None:
        ids = pd.Series([None] * len(survey), index=survey.index, dtype="object")
    # a response without an id cannot be matched: it is its own respondent, in this run only
    ids = ids.where(ids.notna(), pd.Series([f"\0{tag}{i}" for i in range(len(ids))], ids.index))
    frame = pd.DataFrame(
        {"id": ids.astype(str), "wy": (w * y).where(ok, 0.0), "w": w.where(ok, 0.0)}
    )
    return frame.groupby("id", sort=True).sum()


def survey_metric_change(
    survey_a: pd.DataFrame,
    survey_b: pd.DataFrame,
    metric: str = "nps",
    *,
    column: str | None = None,
    weight_a: str | None = None,
    weight_b: str | None = None,
    id_col: str = "response_id",
    method: str = "auto",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, object]:
    """The change of a survey metric from run A to run B, with an interval on the change.

    Parameters
    ----------
    survey_a, survey_b : pandas.DataFrame
        The two runs' ``cx_survey`` tables.
    metric : {"nps", "csat", "ces", ...}
        A metric of :data:`rox_helpers.metrics.METRICS`.
    column : str, optional
        The answer column (the metric's canonical column by default).
    weight_a, weight_b : str, optional
        Weight columns (unweighted when omitted); held fixed in the bootstrap.
    id_col : str, default="response_id"
        Identifies respondents across the two tables.
    method : {"auto", "bootstrap", "independent"}
        ``auto`` bootstraps when the tables share respondents, else uses the independent
        formula ``sqrt(se_a**2 + se_b**2)`` (correct only for independent samples).
    n_boot, seed, level
        Bootstrap resamples, seed, confidence level.

    Returns
    -------
    dict
        ``a``, ``b``, ``change`` (``b - a``), ``se_change``, ``ci_low``, ``ci_high``,
        ``method``, ``n_a``, ``n_b``, ``n_shared`` (respondents in both), ``n_union``.
    """
    col = column or {"ces_low": "ces"}.get(metric, metric)
    return survey_changes(
        survey_a,
        survey_b,
        [(metric, col)],
        weight_a=weight_a,
        weight_b=weight_b,
        id_col=id_col,
        method=method,
        n_boot=n_boot,
        seed=seed,
        level=level,
    )[metric]


def survey_changes(
    survey_a: pd.DataFrame,
    survey_b: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    *,
    weight_a: str | None = None,
    weight_b: str | None = None,
    id_col: str = "response_id",
    method: str = "auto",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, object]]:
    """:func:`survey_metric_change` for several ``(metric, column)`` pairs at once, the
    bootstrap resampling the same respondents for all of them. Returns ``{metric: dict}``."""
    if method not in ("auto", "bootstrap", "independent"):
        raise ValueError(f"method must be 'auto', 'bootstrap' or 'independent', got {method!r}")
    wa = None if weight_a is None else survey_a[weight_a]
    wb = None if weight_b is None else survey_b[weight_b]
    out: dict[str, dict[str, object]] = {}
    sums: list[pd.DataFrame] = []
    factors = []
    for metric, col in pairs:
        spec = metrics.METRICS[metric]
        ya = spec.score(pd.to_numeric(survey_a[col], errors="coerce"))
        yb = spec.score(pd.to_numeric(survey_b[col], errors="coerce"))
        ea, eb = metrics.estimate(ya, spec, wa), metrics.estimate(yb, spec, wb)
        ua = _unit_sums(survey_a, ya, weight_a, id_col, "a")
        ub = _unit_sums(survey_b, yb, weight_b, id_col, "b")
        shared = len(ua.index.intersection(ub.index))
        chosen = method if method != "auto" else ("bootstrap" if shared else "independent")
        change = eb["estimate"] - ea["estimate"]
        res: dict[str, object] = {
            "a": ea["estimate"],
            "b": eb["estimate"],
            "change": change,
            "n_a": ea["n"],
            "n_b": eb["n"],
            "n_shared": shared,
            "n_union": len(ua.index.union(ub.index)),
            "method": chosen,
        }
        if chosen == "independent":
            se = float(np.hypot(ea["se"], eb["se"]))
            z = _z(level)
            res.update(se_change=se, ci_low=change - z * se, ci_high=change + z * se)
        else:
            sums.append(
                ua.merge(
                    ub, how="outer", left_index=True, right_index=True, suffixes=("_a", "_b")
                ).fillna(0.0)
            )
            factors.append((metric, 100.0 if spec.kind == "difference" else 1.0))
        out[metric] = res
    if not sums or n_boot <= 0:  # no resamples: the change without an interval
        for metric, _ in factors:
            out[metric].update(se_change=np.nan, ci_low=np.nan, ci_high=np.nan)
        return out
    # one matrix, four columns per metric (w*y and w in A, then in B), one draw of respondents
    # for all metrics; every metric's union holds the same respondents (all rows count)
    m = np.hstack([f[["wy_a", "w_a", "wy_b", "w_b"]].to_numpy(dtype="float64") for f in sums])
    n = len(m)
    rng = np.random.default_rng(seed)
    chunks = []
    size = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_boot:
        k = min(size, n_boot - done)
        # how often each respondent is drawn in each of k resamples, then one product
        idx = rng.integers(0, n, size=(k, n)) + (np.arange(k) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=k * n).reshape(k, n)
        chunks.append(counts.astype("float64") @ m)
        done += k
    tot = np.vstack(chunks)
    for j, (metric, factor) in enumerate(factors):
        c = tot[:, 4 * j : 4 * j + 4]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = (c[:, 2] / c[:, 3] - c[:, 0] / c[:, 1]) * factor
        d = d[np.isfinite(d)]
        lo, hi = np.quantile(d, [0.5 - level / 2, 0.5 + level / 2])
        out[metric].update(se_change=float(np.std(d, ddof=1)), ci_low=float(lo), ci_high=float(hi))
    return out


def _ids(run_dir: Path, table: str):
    """The distinct ids of a sample (a pyarrow array, nulls dropped), or None."""
    col = SAMPLE_IDS.get(table)
    if not col or not has_table(run_dir, table):
        return None
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = run_dir / "artifacts" / "tables" / f"{table}.parquet"
    if col not in pq.read_schema(path).names:
        return None
    ids = pq.read_table(path, columns=[col]).column(col)
    if pa.types.is_dictionary(ids.type):  # a categorical column: its values
        ids = ids.cast(ids.type.value_type)
    return pc.unique(ids.drop_null())


def _n_shared(ia, ib) -> int:
    """How many distinct ids two samples share: set intersection of the ids as text
    (tested), by an Arrow hash lookup rather than Python sets of a million strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if ia.type != ib.type:  # compare as text, as the sets of strings did
        ia = pa.array(pd.Series(ia.to_pandas()).astype(str).unique())
        ib = pa.array(pd.Series(ib.to_pandas()).astype(str).unique())
    return int(pc.sum(pc.is_in(ia, value_set=ib)).as_py() or 0)


def _table_changes(fa: pd.DataFrame, fb: pd.DataFrame, run_a, run_b, level) -> list[dict]:
    """Changes of the figures read from tables: the independent formula, marked conservative
    when the runs share the people or units behind the figure."""
    z = _z(level)
    both = fa.merge(fb, on="figure", how="outer", suffixes=("_a", "_b"), sort=False)
    overlap: dict[str, int] = {}
    rows = []
    for _, r in both.iterrows():
        side = "_b" if pd.notna(r.get("label_b")) else "_a"  # describe it as the newer run does
        sample = r["sample" + side]
        if sample not in overlap:
            ia, ib = _ids(run_a, sample), _ids(run_b, sample)
            overlap[sample] = _n_shared(ia, ib) if ia is not None and ib is not None else -1
        a, b = r["estimate_a"], r["estimate_b"]
        change = b - a
        se = float(np.hypot(r["se_a"], r["se_b"]))
        has_ci = np.isfinite(se) and np.isfinite(change)
        if not (np.isfinite(a) and np.isfinite(b)):
            method = "in one run only"
        elif not np.isfinite(se):
            method = "no interval (a descriptive figure)"
        elif overlap[sample] > 0:
            method = "independent formula (conservative: the runs share data)"
        else:
            method = "independent formula"
        notes = [str(n) for n in (r.get("note_a"), r.get("note_b")) if isinstance(n, str) and n]
        rows.append(
            {
                "figure": r["figure"],
                "label": r["label" + side],
                "step": r["step" + side],
                "unit": r["unit" + side],
                "a": a,
                "b": b,
                "change": change,
                "se_change": se if has_ci else np.nan,
                "ci_low": change - z * se if has_ci else np.nan,
                "ci_high": change + z * se if has_ci else np.nan,
                "method": method,
                "n_a": r["n_a"],
                "n_b": r["n_b"],
                "n_shared": overlap[sample] if overlap[sample] >= 0 else np.nan,
                "note": " / ".join(dict.fromkeys(notes)),
            }
        )
    return rows


def _inputs_frame(ma: dict, mb: dict) -> pd.DataFrame:
    def by_path(m):
        return {str(e.get("path")): e for e in m.get("inputs", [])}

    a, b = by_path(ma), by_path(mb)
    rows = []
    for path in sorted(set(a) | set(b)):
        ea, eb = a.get(path, {}), b.get(path, {})
        sa, sb = ea.get("sha256"), eb.get("sha256")
        if path not in a:
            status = "added"
        elif path not in b:
            status = "removed"
        else:
            status = "same" if sa == sb and sa is not None else "changed"
        rows.append(
            {
                "table": eb.get("table", ea.get("table")),
                "path": path,
                "status": status,
                "sha256_a": sa,
                "sha256_b": sb,
                "bytes_a": ea.get("bytes"),
                "bytes_b": eb.get("bytes"),
            }
        )
    cols = ["table", "path", "status", "sha256_a", "sha256_b", "bytes_a", "bytes_b"]
    return pd.DataFrame(rows, columns=cols)


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True) if isinstance(v, list) else v
    return out


def _parameters_frame(ma: dict, mb: dict) -> pd.DataFrame:
    def params(m):
        p = {("parameter", k): v for k, v in _flat(m.get("parameters", {})).items()}
        p[("code", "rox-workbook")] = m.get("versions", {}).get("rox-workbook")
        p[("code", "git_commit")] = m.get("git_commit")
        return p

    a, b = params(ma), params(mb)
    rows = [
        {
            "kind": k[0],
            "parameter": k[1],
            "a": a.get(k),
            "b": b.get(k),
            "changed": a.get(k) != b.get(k),
        }
        for k in sorted(set(a) | set(b))
    ]
    return pd.DataFrame(rows, columns=["kind", "parameter", "a", "b", "changed"])


def _steps_frame(ma: dict, mb: dict) -> pd.DataFrame:
    sa, sb = ma.get("steps", {}), mb.get("steps", {})
    rows = []
    for s in sorted(set(sa) | set(sb)):
        fa, fb = sa.get(s, {}).get("fingerprint"), sb.get(s, {}).get("fingerprint")
        rows.append(
            {
                "step": s,
                "status_a": sa.get(s, {}).get("status"),
                "status_b": sb.get(s, {}).get("status"),
                "fingerprint_changed": fa != fb,
            }
        )
    return pd.DataFrame(rows, columns=["step", "status_a", "status_b", "fingerprint_changed"])


@dataclass
class RunDiff:
    """What changed from run ``a`` to run ``b`` (see the module's docstring)."""

    run_a: Path
    run_b: Path
    figures: pd.DataFrame
    inputs: pd.DataFrame
    parameters: pd.DataFrame
    steps: pd.DataFrame
    level: float = 0.95
    notes: list[str] = field(default_factory=list)

    def frames(self) -> dict[str, pd.DataFrame]:
        """The four frames by name."""
        return {
            "figures": self.figures,
            "inputs": self.inputs,
            "parameters": self.parameters,
            "steps": self.steps,
        }

    @property
    def inputs_changed(self) -> bool:
        return bool((self.inputs["status"] != "same").any())

    @property
    def parameters_changed(self) -> bool:
        p = self.parameters
        # the step plan and the code version are not parameters of the analysis
        return bool((p["changed"] & (p["kind"] == "parameter") & (p["parameter"] != "steps")).any())

    @property
    def figures_moved(self) -> bool:
        c = self.figures["change"]
        return bool((c.notna() & (c.abs() > 1e-9)).any())

    def html(self, *, max_rows: int = 12) -> str:
        """The report's "Since the last run" block: escaped HTML."""
        return since_last_html(self, max_rows=max_rows)


def diff_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> RunDiff:
    """Compare two run folders: the headline figures with an interval on each change, the
    inputs by sha256, the parameters and the steps.

    Parameters
    ----------
    run_a, run_b : str or Path
        Run folders (with ``manifest.json``); the change is ``b - a``.
    n_boot, seed : int
        Bootstrap resamples and seed for survey metrics of runs that share respondents
        (``n_boot=0``: their change without an interval, a quick look).
    level : float, default=0.95
        Confidence level of the intervals.

    Returns
    -------
    RunDiff
        ``figures`` columns: ``figure``, ``label``, ``step``, ``unit``, ``a``, ``b``,
        ``change``, ``se_change``, ``ci_low``, ``ci_high``, ``significant`` (the interval
        excludes zero), ``method``, ``n_a``, ``n_b``, ``n_shared``, ``note``.

    Raises
    ------
    RoxError
        When a folder is not a run folder.
    """
    run_a, run_b = Path(run_a), Path(run_b)
    manifests = []
    for run in (run_a, run_b):
        manifests.append(
            read_manifest(
                run,
                rule="rox diff compares two run folders",
                fix="Pass two folders under <engagement>/runs/, e.g. the ones `rox run` printed.",
            )
        )
    ma, mb = manifests
    notes = []
    if ma.get("engagement") and mb.get("engagement") and ma["engagement"] != mb["engagement"]:
        notes.append(
            f"the runs belong to different engagements ({ma['engagement']}, {mb['engagement']})"
        )
    rows: list[dict] = []
    sa, sb = _weighted_survey(run_a), _weighted_survey(run_b)
    if sa is not None and sb is not None:
        fa = {r["figure"]: r for r in survey_figures(run_a, sa)}
        fb = {r["figure"]: r for r in survey_figures(run_b, sb)}
        pairs = [(n, c) for n, c in SURVEY_METRICS if f"survey.{n}" in fa and f"survey.{n}" in fb]
        changes = survey_changes(
            sa, sb, pairs, weight_a="weight_final", weight_b="weight_final",
            n_boot=n_boot, seed=seed, level=level,
        )  # fmt: skip
        for name, res in changes.items():
            key = f"survey.{name}"
            method = (
                f"bootstrap over the {res['n_union']:,} respondents of either run "
                f"({res['n_shared']:,} in both)"
                if res["method"] == "bootstrap"
                else "independent formula (no respondent in both runs)"
            )
            note = " / ".join(dict.fromkeys(x for x in (fa[key]["note"], fb[key]["note"]) if x))
            rows.append(
                {
                    "figure": key,
                    "label": fb[key]["label"],
                    "step": "01",
                    "unit": fb[key]["unit"],
                    **{k: res[k] for k in ("a", "b", "change", "se_change", "ci_low")},
                    "ci_high": res["ci_high"],
                    "method": method,
                    "n_a": res["n_a"],
                    "n_b": res["n_b"],
                    "n_shared": res["n_shared"],
                    "note": note,
                }
            )
    table_a = pd.DataFrame(_read_figures(run_a, notes))
    table_b = pd.DataFrame(_read_figures(run_b, notes))
    if len(table_a) or len(table_b):
        table_a = table_a.reindex(columns=ROW_COLUMNS)
        table_b = table_b.reindex(columns=ROW_COLUMNS)
        keep = _top_keys(table_a) | _top_keys(table_b)
        table_a = table_a[table_a["figure"].isin(keep)]
        table_b = table_b[table_b["figure"].isin(keep)]
        rows += _table_changes(table_a, table_b, run_a, run_b, level)
    figures = pd.DataFrame(rows, columns=[c for c in FIGURE_COLUMNS if c != "significant"])
    figures.insert(
        FIGURE_COLUMNS.index("significant"),
        "significant",
        (figures["ci_low"] > 0) | (figures["ci_high"] < 0),
    )
    return RunDiff(
        run_a,
        run_b,
        figures,
        _inputs_frame(ma, mb),
        _parameters_frame(ma, mb),
        _steps_frame(ma, mb),
        level,
        notes,
    )


def _top_keys(t: pd.DataFrame) -> set[str]:
    """Figures to compare: all but drivers and links, of which the top few."""
    if t.empty:
        return set()
    group = t["figure"].str.split(".", n=1).str[0]
    limit = group.map({"driver": TOP_DRIVERS, "linkage": TOP_LINKS})
    keep = limit.isna() | (t["top"] <= limit)
    return set(t.loc[keep, "figure"])


# ------------------------------------------------------------------------ presentation
def format_value(value: float, unit: str, *, signed: bool = False) -> str:
    """A figure (or a change, ``signed``) for a table: NPS points to one decimal, shares
    as percentages (changes in percentage points), ratios to two decimals."""
    if value is None or not np.isfinite(value):
        return ""
    sign = "+" if signed else ""
    if unit == "share":
        return f"{value * 100:{sign}.1f} pp" if signed else f"{value * 100:.1f}%"
    if unit == "ratio":
        return f"{value:{sign}.2f}"
    if unit in ("points", "index"):
        return f"{value:{sign}.1f}"
    return f"{value:{sign}.3g}"


def format_change(row: pd.Series | dict) -> str:
    """``+2.9 (+1.1 to +4.7)``: the change with its interval, or the change alone."""
    ch = format_value(row["change"], row["unit"], signed=True)
    if not ch:
        return ""
    lo = format_value(row["ci_low"], row["unit"], signed=True)
    hi = format_value(row["ci_high"], row["unit"], signed=True)
    return f"{ch} ({lo} to {hi})" if lo and hi else ch


def _with_base(value: float, unit: str, n: float) -> str:
    text = format_value(value, unit)
    return f"{text} (n = {int(n):,})" if text and pd.notna(n) and n > 0 else text


def since_last_html(diff: RunDiff, *, max_rows: int = 12) -> str:
    """The "Since the last run" block: what changed in the inputs and parameters, and the
    headline figures that are in both runs (survey metrics first, then the changes whose
    interval excludes zero), each with its change and interval. Everything escaped."""
    e = html.escape
    parts = [
        f"<p>Compared with run <code>{e(diff.run_a.name)}</code>, the last complete run of "
        "this engagement. Each change is this run minus that one, with a 95% interval on "
        "the change itself.</p>"
    ]
    changed = diff.inputs[diff.inputs["status"] != "same"]
    if len(changed):
        items = ", ".join(
            f"{e(str(r.path))} ({e(str(r.status))}, sha256 "
            f"{e(str(r.sha256_a or '-')[:12])} &rarr; {e(str(r.sha256_b or '-')[:12])})"
            for r in changed.itertuples()
        )
        same = int((diff.inputs["status"] == "same").sum())
        parts.append(f"<p><strong>Inputs changed:</strong> {items}; {same} unchanged.</p>")
    else:
        parts.append("<p><strong>Inputs:</strong> the same files (by sha256).</p>")
    p = diff.parameters[diff.parameters["changed"] & (diff.parameters["parameter"] != "steps")]
    p = p[p["kind"] == "parameter"]
    if len(p):
        items = ", ".join(
            f"{e(str(r.parameter))} {e(str(r.a))} &rarr; {e(str(r.b))}" for r in p.itertuples()
        )
        parts.append(f"<p><strong>Parameters changed:</strong> {items}.</p>")
    f = diff.figures[diff.figures["a"].notna() & diff.figures["b"].notna()].copy()
    f["_order"] = np.where(
        f["figure"].str.startswith("survey."), 0, np.where(f["significant"], 1, 2)
    )
    f = f.sort_values("_order", kind="stable")
    shown = f.head(max_rows)
    if len(shown):
        rows = []
        for _, r in shown.iterrows():
            strong = ("<strong>", "</strong>") if r["significant"] else ("", "")
            rows.append(
                "<tr>"
                f"<td>{e(str(r['label']))}</td>"
                f"<td>{e(_with_base(r['a'], r['unit'], r['n_a']))}</td>"
                f"<td>{e(_with_base(r['b'], r['unit'], r['n_b']))}</td>"
                f"<td>{strong[0]}{e(format_change(r))}{strong[1]}</td>"
                f"<td>{e(str(r['method']))}</td>"
                "</tr>"
            )
        parts.append(
            '<table class="rox-table"><thead><tr><th>Figure</th><th>Last run</th>'
            "<th>This run</th><th>Change (95% interval)</th><th>Basis of the interval</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
        more = len(f) - len(shown)
        parts.append(
            "<p><em>Changes whose interval excludes zero are in bold. Where the two runs "
            "share respondents the interval comes from resampling them, since two overlapping "
            "samples are not independent."
            + (f" {more} more figure(s): <code>rox diff</code> lists them." if more > 0 else "")
            + "</em></p>"
        )
    return "\n".join(parts)


# ----------------------------------------------------------------- the previous run
def previous_run(run_dir: str | Path) -> Path | None:
    """The latest earlier run of the same engagement that finished ``ok`` and ran at least
    the steps ``run_dir`` ran (a full report is compared with the last full run)."""
    run_dir = Path(run_dir)
    try:
        mine = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    want = set(mine.get("parameters", {}).get("steps", []))
    best = None
    for cand in sorted(p for p in run_dir.parent.iterdir() if p.is_dir()):
        if cand.name >= run_dir.name:
            continue
        try:
            m = json.loads((cand / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if m.get("status") != "ok" or m.get("engagement") != mine.get("engagement"):
            continue
        if want <= set(m.get("parameters", {}).get("steps", [])):
            best = cand
    return best


@dataclass
class SinceLast:
    """The report's comparison with the previous run: ``html`` is the block (None when
    nothing changed), ``error`` why the comparison could not be made."""

    previous: str
    html: str | None = None
    error: str = ""

    def record(self) -> dict[str, object]:
        """For the manifest."""
        out: dict[str, object] = {"previous": self.previous, "shown": self.html is not None}
        if self.error:
            out["error"] = self.error
        return out


def since_last_run(run_dir: str | Path, *, n_boot: int = 1000) -> SinceLast | None:
    """The comparison with :func:`previous_run` for the report, or None without one.

    The block is made only when something changed (the inputs, a parameter, or a headline
    figure): same inputs and parameters give the same figures, so a re-run of unchanged data
    adds no section and the report text stays the same. A comparison that fails never fails
    the report: the block then says so, and the manifest keeps the error.
    """
    prev = previous_run(run_dir)
    if prev is None:
        return None
    try:
        # first without resampling (a re-run of unchanged data is the common case) ...
        diff = diff_runs(prev, run_dir, n_boot=0)
        if not (diff.inputs_changed or diff.parameters_changed or diff.figures_moved):
            return SinceLast(prev.name)
        # ... then the intervals, for the report
        diff = diff_runs(prev, run_dir, n_boot=n_boot)
    except Exception as exc:  # the report must render whatever the old run holds
        msg = f"{type(exc).__name__}: {exc}"[:300]
        block = (
            f"<p>Could not compare with run <code>{html.escape(prev.name)}</code>: "
            f"{html.escape(msg)}. <code>rox diff</code> shows the details.</p>"
        )
        return SinceLast(prev.name, block, msg)
    return SinceLast(prev.name, diff.html())
