"""The ROX framework: the client's measures mapped onto the five elements, and
which analyses the engagement's data can support.

Only what the data supports runs.  :func:`analysis_availability` says, for
every analysis of the notebook sequence, whether it can run and, if not, the
plain reason (the table or column it lacks) that the report shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rox_helpers.config import ELEMENTS
from rox_helpers.data import EngagementData


def element_coverage(data: EngagementData) -> pd.DataFrame:
    """One row per configured measure: its element, source, and whether the data has it.

    Returns
    -------
    pandas.DataFrame
        ``element, measure, label, table, column, higher_is_better, available,
        n, reason`` (``n`` = non-missing values; ``reason`` when unavailable).
    """
    rows = []
    for element, m in data.config.measures():
        available, n, reason = False, 0, ""
        if m.table not in data.declared:
            reason = f"table {m.table} not declared"
        elif m.table == "interactions":
            available = data.has("interactions", m.column)
            reason = "" if available else f"column {m.column} not in interactions"
            if available:
                t = data.interactions
                n = int(t[m.column].count().to_pyarrow().as_py())
        else:
            df = data.tables.get(m.table)
            if df is None:
                reason = f"table {m.table} could not be loaded"
            elif m.column not in df.columns:
                reason = f"column {m.column} not in {m.table} (map it in engagement.yml)"
            else:
                n = int(df[m.column].notna().sum())
                available = n > 0
                reason = "" if available else f"column {m.column} has no values"
        rows.append(
            {
                "element": element,
                "measure": m.name,
                "label": m.label or m.name,
                "table": m.table,
                "column": m.column,
                "higher_is_better": m.higher_is_better,
                "available": available,
                "n": n,
                "reason": reason,
            }
        )
    out = pd.DataFrame(
        rows,
        columns=[
            "element",
            "measure",
            "label",
            "table",
            "column",
            "higher_is_better",
            "available",
            "n",
            "reason",
        ],
    )
    return out


def element_summary(coverage: pd.DataFrame) -> pd.DataFrame:
    """Measures configured and available per element, in framework order (all five shown)."""
    g = coverage.groupby("element", observed=False).agg(
        configured=("measure", "size"), available=("available", "sum")
    )
    g = g.reindex(list(ELEMENTS), fill_value=0).reset_index()
    g["available"] = g["available"].astype("int64")
    g["status"] = [
        "no measure" if c == 0 else ("covered" if a == c else ("partial" if a else "missing"))
        for c, a in zip(g["configured"], g["available"], strict=True)
    ]
    return g


@dataclass(frozen=True)
class Requirement:
    step: str
    analysis: str
    needs: tuple[tuple[str, tuple[str, ...]], ...]  # (table, columns); any-of groups below
    any_of: tuple[tuple[str, tuple[str, ...]], ...] = ()


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("01", "CX metrics (NPS, CSAT, CES)", (), (("cx_survey", ("nps",)), ("cx_survey", ("csat",)), ("cx_survey", ("ces",)))),
    Requirement("01", "EX metrics (pride, eNPS, turnover)", (("employees", ("employee_id",)),)),
    Requirement("02", "Behavioural segmentation", (("interactions", ("customer_id", "timestamp")),)),
    Requirement("03", "Key driver analysis", (("cx_survey", ()),)),
    Requirement("04", "ROX linkage (unit x period panel)", (("units", ("unit_id", "period")), ("employees", ("unit_id", "period")), ("cx_survey", ("unit_id", "date")))),
    Requirement("04", "Informal influencers (network)", (("network", ("source", "target")),)),
    Requirement("05", "Journey funnel", (("interactions", ("journey_stage",)),)),
    Requirement("05", "Comment themes", (("cx_survey", ("comment",)),)),
    Requirement("07", "Business case scenarios", ()),
)  # fmt: skip


def analysis_availability(data: EngagementData) -> pd.DataFrame:
    """Each analysis of the sequence: ``step, analysis, runs, reason``."""
    rows = []
    for req in REQUIREMENTS:
        missing = [
            f"{t}" if t not in data.declared else f"{t}.{c}"
            for t, cols in req.needs
            for c in (cols or ("",))
            if not data.has(t, *([c] if c else []))
        ]
        if req.any_of and not any(data.has(t, *cols) for t, cols in req.any_of):
            missing.append(" or ".join(f"{t}.{cols[0]}" for t, cols in req.any_of))
        if req.step == "03":
            df = data.tables.get("cx_survey")
            outcome = data.config.outcome.column
            attrs = [c for c in data.config.codebook if df is not None and c in df.columns]
            if df is None or outcome not in df.columns:
                missing.append(f"cx_survey.{outcome} (the outcome)")
            if len(attrs) < 2:
                missing.append("at least two rated attributes in the codebook")
        if req.step == "07" and not data.config.scenarios:
            missing.append("investment scenarios in engagement.yml")
        # the segmentation reads per-customer summaries step 00 computes in the engine
        if (
            getattr(data, "extract", "log") == "features"
            and req.step != "02"
            and any(t == "interactions" for t, _ in req.needs)
        ):
            # the log stayed in the client's engine: only features and aggregates came back
            missing.append(
                "the row-level interaction log (set data.interactions.extract: log; with "
                "extract: features only customer features, the segmentation's per-customer "
                "summaries and unit x month aggregates leave the client's engine)"
            )
        runs = not missing
        reason = "" if runs else "needs " + ", ".join(dict.fromkeys(missing))
        rows.append({"step": req.step, "analysis": req.analysis, "runs": runs, "reason": reason})
    return pd.DataFrame(rows, columns=["step", "analysis", "runs", "reason"])


def _key_kind(source: str) -> str:
    """Where the key lives, without paths (the report does not show the server's folders)."""
    if not source:
        return "not needed"
    if source.startswith("environment"):
        return "from an environment variable"
    return "key file kept outside the engagement folder"


def privacy_summary(data: EngagementData) -> pd.DataFrame:
    """What was done to protect personal data on load: ``check, result``."""
    p = data.privacy
    rows = [
        ("Pseudonymisation key", _key_kind(p.key_source)),
        ("Key fingerprint (not the key)", p.key_fingerprint or "-"),
        ("Direct identifiers found", str(len(p.identifiers))),
    ]
    for ident in p.identifiers:
        rows.append(
            (
                f"  {ident['table']}.{ident['column']}",
                f"{'hashed' if ident['action'] == 'hash' else 'dropped'} ({ident['reason']})",
            )
        )
    for kind in ("email", "phone", "name"):
        rows.append((f"Free text: {kind}s masked", str(p.text_masks.get(kind, 0))))
    if p.customers_total:
        if p.consent_column:
            share = 1 - p.customers_without_consent / p.customers_total
            rows.append(
                ("Customers with analytics consent", f"{share:.1%} of {p.customers_total:,}")
            )
        else:
            rows.append(("Customers with analytics consent", "not recorded"))
        rows.append(("Customers excluded (no consent)", f"{p.customers_without_consent:,}"))
        rows.append(("Survey responses unlinked (no consent)", f"{p.survey_responses_unlinked:,}"))
        rows.append(("Interactions excluded (no consent)", f"{p.interactions_excluded:,}"))
    floor = data.config.privacy
    rows.append(("Reliability base (responses)", str(floor.reliability_base)))
    rows.append(("Anonymity floor (people)", str(floor.anonymity_floor)))
    return pd.DataFrame(rows, columns=["check", "result"])


def setup_findings(
    data: EngagementData,
    coverage: pd.DataFrame,
    summary: pd.DataFrame,
    availability: pd.DataFrame,
    quality: pd.DataFrame,
    *,
    charts: Mapping[str, str] | None = None,
) -> list:
    """The findings of the setup step: element coverage, what can run, data quality, privacy.

    ``charts``: the notebook's chart reference (:attr:`~rox_helpers.artifacts.Finding.chart`)
    for each kind of finding that has one, by kind: ``coverage``, ``analyses``,
    ``quality``, ``privacy`` (see :func:`~rox_helpers.artifacts.chart_namer`).
    """
    from rox_helpers.artifacts import Finding, chart_namer

    chart = chart_namer(charts, ("coverage", "analyses", "quality", "privacy"))

    covered = summary[summary["available"] > 0]["element"].tolist()
    gaps = [e for e in ELEMENTS if e not in covered]
    out = [
        Finding(
            step="00",
            headline=f"{len(covered)} of 5 ROX elements have measures in the data"
            + (f"; no measure yet for {', '.join(gaps)}" if gaps else ""),
            evidence=[
                f"{r.element}: {int(r.available)} of {int(r.configured)} configured measure(s) "
                "available"
                for r in summary.itertuples()
            ],
            so_what="The linkage model can only trace the chain through elements that are "
            "measured; close the gaps with the client before the next wave."
            if gaps
            else "Every element of the chain is measured, so the full chain can be modelled.",
            confidence="high",
            chart=chart("coverage"),
            evidence_kind="count",
            base=f"{int(summary['configured'].sum()):,} configured measures",
            no_interval="a count of the measures found in the client's data",
        )
    ]
    runs = availability[availability["runs"]]
    skipped = availability[~availability["runs"]]
    out.append(
        Finding(
            step="00",
            headline=f"{len(runs)} of {len(availability)} analyses can run on this data",
            evidence=[f"skipped: {r.analysis} ({r.reason})" for r in skipped.itertuples()]
            or ["nothing skipped"],
            so_what="Skipped analyses appear in the report with their reason; adding the "
            "missing table or column to engagement.yml enables them.",
            confidence="high",
            chart=chart("analyses"),
            evidence_kind="count",
            base=f"{len(availability):,} analyses",
            no_interval="a check of the tables and columns the data holds",
        )
    )
    read = int(quality["rows_read"].sum()) if len(quality) else 0
    bad = int(quality["rows_quarantined"].sum()) if len(quality) else 0
    share = bad / read if read else 0.0
    worst = quality.sort_values("rows_quarantined", ascending=False).head(3)
    out.append(
        Finding(
            step="00",
            headline=f"{share:.2%} of {read:,} rows were quarantined for failing validation",
            evidence=[
                f"{r.table}: {int(r.rows_quarantined):,} of {int(r.rows_read):,} rows"
                for r in worst.itertuples()
                if r.rows_quarantined
            ]
            or ["no rows failed validation"],
            so_what="Quarantined rows are listed with their reasons for the client's data team; "
            "at this share they do not change the results materially."
            if share < 0.02
            else "A material share of rows failed validation: review the quarantine with the "
            "client before relying on the results.",
            confidence="high" if share < 0.02 else "medium",
            chart=chart("quality"),
            evidence_kind="count",
            base=f"{read:,} rows read",
            no_interval="an exact count of every row read",
        )
    )
    p = data.privacy
    consent = (
        f"{1 - p.customers_without_consent / p.customers_total:.1%} of customers gave analytics "
        "consent; the rest are excluded from customer-level analyses"
        if p.customers_total and p.consent_column
        else "analytics consent is not recorded in the data"
    )
    masked = sum(p.text_masks.values())
    out.append(
        Finding(
            step="00",
            headline=f"{len(p.identifiers)} direct identifier column(s) pseudonymised or dropped "
            "on load",
            evidence=[consent, f"{masked:,} personal details masked in free-text comments"],
            so_what="No raw personal data reaches the artifacts or this report.",
            confidence="high",
            chart=chart("privacy"),
            evidence_kind="count",
            base=f"{len(data.reports):,} tables loaded",
            no_interval="an exact count of the columns handled on load",
        )
    )
    return out


# --------------------------------------------------------------------------------------
# The ROX scorecard
# --------------------------------------------------------------------------------------

TIME_COLUMN = {"cx_survey": "date", "employees": "period", "units": "period"}
VALUE_COLUMNS = (
    "element",
    "measure",
    "label",
    "higher_is_better",
    "unit_id",
    "period",
    "value",
    "n",
)


def period_label(when: pd.Series, grain: str = "quarter") -> pd.Series:
    """``2025Q1`` (quarter), ``2025-01`` (month) or ``2025`` (year) for each timestamp."""
    when = pd.to_datetime(when)
    freq = {"quarter": "Q", "month": "M", "year": "Y"}[grain]
    return when.dt.to_period(freq).astype("str")


def _scale_max(config, m) -> float | None:
    entry = config.codebook.get(m.column)
    if entry is not None:
        return float(entry.scale[1])
    return 5.0 if m.column == "csat" else None


def measure_rows(
    tables: dict[str, pd.DataFrame], config, m, *, grain: str = "quarter"
) -> tuple[pd.DataFrame | None, str]:
    """The row-level values behind one measure: ``unit_id, period, month, person, x``.

    ``x`` is what the cell aggregate averages: 100 / 0 / -100 for a promoter, passive and
    detractor (``nps``), 1/0 for the top-2 box (cut from the declared scale, else the
    column's own maximum -- never a group's), the value itself otherwise. ``person`` is the
    employee (employees table) so the anonymity floor can count people. Rows outside the
    measure's ``where`` filter are dropped. Returns ``(None, reason)`` when the measure has no
    unit and period grain.
    """
    df = tables.get(m.table)
    time_col = TIME_COLUMN.get(m.table)
    if df is None:
        return None, f"table {m.table} not available"
    if m.column not in df.columns:
        return None, f"column {m.column} not in {m.table}"
    if time_col is None or "unit_id" not in df.columns or time_col not in df.columns:
        return None, f"{m.table} has no unit and period: reported for the chain only"
    missing = [c for c in m.where if c not in df.columns]
    if missing:
        return None, f"filter column {missing[0]} not in {m.table}"
    keep = df["unit_id"].notna() & df[time_col].notna()
    for col in m.where:
        keep &= df[col].astype("string").isin(m.allowed(col)).fillna(False)
    d = df.loc[keep]
    when = pd.to_datetime(d[time_col])
    x = pd.to_numeric(d[m.column].astype("Float64"), errors="coerce").astype("float64")
    if m.aggregate == "nps":
        x = 100.0 * ((x >= 9).astype(float) - (x <= 6).astype(float)).where(x.notna())
    elif m.aggregate == "top2":
        top = _scale_max(config, m)
        top = float(x.max()) if top is None else top
        x = (x >= top - 1).astype(float).where(x.notna())
    out = pd.DataFrame(
        {
            "unit_id": d["unit_id"].astype("string"),
            "period": period_label(when, grain),
            "month": when.dt.to_period("M").astype("str"),
            "person": d["employee_id"] if "employee_id" in d.columns else pd.NA,
            "x": x,
        }
    )
    return out.dropna(subset=["x"]), ""


def aggregate_rows(rows: pd.DataFrame, how: str) -> pd.DataFrame:
    """Cell values from :func:`measure_rows`: ``unit_id, period, value, n, people``.

    Sums and counts are per month observed in the period, so a partial first or last period
    compares with full ones; means, shares and NPS need no such care.
    """
    g = rows.groupby(["unit_id", "period"], observed=True, sort=True)
    out = g.agg(
        mean=("x", "mean"),
        total=("x", "sum"),
        n=("x", "size"),
        months=("month", "nunique"),
        people=("person", "nunique"),
    ).reset_index()
    if how in ("sum", "count"):
        base = out["total"] if how == "sum" else out["n"].astype(float)
        out["value"] = base / out["months"]
    else:
        out["value"] = out["mean"]
    return out[["unit_id", "period", "value", "n", "people"]]


def unit_period_values(
    tables: dict[str, pd.DataFrame],
    config,
    *,
    grain: str = "quarter",
    anonymity_floor: int = 5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each configured measure per unit and period, and the measures that have no unit grain.

    A cell of an employee measure with fewer than ``anonymity_floor`` people is left out.

    Returns
    -------
    (values, skipped)
        ``values``: ``element, measure, label, higher_is_better, unit_id, period, value, n``.
        ``skipped``: ``element, measure, reason`` (no unit or time column, not loaded).
    """
    parts, skipped = [], []
    for element, m in config.measures():
        rows, reason = measure_rows(tables, config, m, grain=grain)
        if rows is None:
            skipped.append({"element": element, "measure": m.name, "reason": reason})
            continue
        cells = aggregate_rows(rows, m.aggregate)
        if m.table == "employees":
            cells = cells[cells["people"] >= anonymity_floor]
        parts.append(
            cells.assign(
                element=element,
                measure=m.name,
                label=m.label or m.name,
                higher_is_better=m.higher_is_better,
            )
        )
    values = (
        pd.concat(parts, ignore_index=True)[list(VALUE_COLUMNS)]
        if parts
        else pd.DataFrame(columns=list(VALUE_COLUMNS))
    )
    values["n"] = values["n"].astype("int64")
    return values, pd.DataFrame(skipped, columns=["element", "measure", "reason"])


def scorecard(
    values: pd.DataFrame, *, baseline_period: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """0-100 indices per measure and per element, for each unit and period.

    Each measure is standardised against the spread of units in the baseline period
    (``index = 50 + 10 z``, clipped to 0-100; ``z`` reversed when lower is better), so a
    unit at the baseline chain average scores 50 and later periods are comparable with
    the baseline. The element index is the mean of its measures' indices.

    Returns
    -------
    (measures, elements)
        ``measures`` adds ``baseline_mean``, ``baseline_sd``, ``index`` to ``values``;
        ``elements``: ``element, unit_id, period, index, n_measures``.
    """
    if values.empty:
        return values.assign(index=pd.Series(dtype="float64")), pd.DataFrame(
            columns=["element", "unit_id", "period", "index", "n_measures"]
        )
    periods = sorted(values["period"].unique())
    wanted = baseline_period or periods[0]
    rows = []
    for measure, g in values.groupby("measure", sort=False):
        # the frozen baseline where at least two units report the measure; otherwise the
        # measure's own first such period (said in ``baseline_period``)
        units_per = g.dropna(subset=["value"]).groupby("period")["unit_id"].nunique()
        usable = [p for p in periods if units_per.get(p, 0) >= 2]
        chosen = wanted if wanted in usable else (usable[0] if usable else None)
        ref = g[g["period"] == chosen]["value"]
        rows.append(
            {
                "measure": measure,
                "baseline_period": chosen,
                "baseline_mean": ref.mean() if chosen else np.nan,
                "baseline_sd": ref.std() if chosen else np.nan,
            }
        )
    out = values.merge(pd.DataFrame(rows), on="measure", how="left")
    z = (out["value"] - out["baseline_mean"]) / out["baseline_sd"].where(out["baseline_sd"] > 0)
    z = z.where(out["higher_is_better"], -z)
    out["index"] = (50 + 10 * z).clip(0, 100)
    elements = (
        out.dropna(subset=["index"])
        .groupby(["element", "unit_id", "period"], observed=True)
        .agg(index=("index", "mean"), n_measures=("measure", "nunique"))
        .reset_index()
    )
    return out, elements


def _league_interval(r) -> str:
    """A hotel's shrunk NPS with its 95% interval (the shrunk score plus or minus 1.96 of
    its standard error)."""
    from rox_helpers.artifacts import interval_text

    half = 1.96 * float(r["shrunk_se"])
    return interval_text(
        r["shrunk"] - half, r["shrunk"] + half, "{:+.0f}", label=f"{r['unit_id']}: 95% interval"
    )


def measurement_findings(
    overall: pd.DataFrame,
    *,
    weights_note: str = "",
    nonresponse: pd.DataFrame | None = None,
    league: pd.DataFrame | None = None,
    turnover=None,
    elements: pd.DataFrame | None = None,
    charts: Mapping[str, str] | None = None,
) -> list:
    """Findings of the measurement step, each with its base and interval.

    ``charts``: the notebook's chart reference (:attr:`~rox_helpers.artifacts.Finding.chart`)
    for each kind of finding that has one, by kind: ``nps``, ``nonresponse``, ``league``,
    ``turnover``, ``scorecard`` (see :func:`~rox_helpers.artifacts.chart_namer`).
    """
    from rox_helpers.artifacts import Finding, chart_namer, interval_text

    chart = chart_namer(charts, ("nps", "nonresponse", "league", "turnover", "scorecard"))

    out = []
    nps_row = overall[overall["metric"] == "nps"]
    if len(nps_row):
        r = nps_row.iloc[0]
        others = [
            f"{m.metric}: {m.estimate:.3g} (95% CI {m.ci_low:.3g} to {m.ci_high:.3g}, n = {m.n:,})"
            for m in overall.itertuples()
            if m.metric != "nps"
        ]
        out.append(
            Finding(
                step="01",
                headline=f"NPS is {r.estimate:+.1f} (95% CI {r.ci_low:+.1f} to {r.ci_high:+.1f})",
                evidence=[
                    f"base {int(r.n):,} responses, effective base {r.n_eff:,.0f} after weighting "
                    f"(design effect {r.deff:.2f})",
                    *others,
                    *([weights_note] if weights_note else []),
                ],
                so_what="Every later comparison is read against this interval: differences "
                "inside it are noise.",
                confidence="high" if r.n >= 400 else "medium",
                chart=chart("nps"),
                evidence_kind="survey_estimate",
                base=f"{int(r.n):,} responses (effective base {r.n_eff:,.0f} after weighting)",
                interval=interval_text(r.ci_low, r.ci_high, "{:+.1f}"),
            )
        )
    if nonresponse is not None and len(nonresponse):
        sig = nonresponse[nonresponse["reading"] != "no material difference"]
        out.append(
            Finding(
                step="01",
                headline=(
                    f"Respondents differ from non-respondents on {len(sig)} of "
                    f"{len(nonresponse)} behaviours (largest shown)"
                    if len(sig)
                    else "Respondents behave like non-respondents on every behaviour checked"
                ),
                evidence=list(sig["reading"].head(4)) or ["no material difference"],
                so_what="Weights correct only what the margins capture; read results for "
                "under-represented customers with care."
                if len(sig)
                else "No sign that the survey misrepresents the customer base.",
                confidence="medium",
                chart=chart("nonresponse"),
                evidence_kind="count",
                base=f"{int(nonresponse['n_respondents'].max()):,} respondents against "
                f"{int(nonresponse['n_nonrespondents'].max()):,} non-respondents",
                no_interval="every customer compared, not a sample",
            )
        )
    if league is not None and len(league):
        reliable = league[league["reliable"] & ~league["suppressed"]]
        top, bottom = reliable.head(1), reliable.tail(1)
        status = league["status"].value_counts().to_dict() if "status" in league else {}
        if len(top) and len(bottom):
            out.append(
                Finding(
                    step="01",
                    headline=f"Hotel NPS ranges from {bottom['shrunk'].iloc[0]:+.0f} "
                    f"({bottom['unit_id'].iloc[0]}) to {top['shrunk'].iloc[0]:+.0f} "
                    f"({top['unit_id'].iloc[0]}) after allowing for base size",
                    evidence=[
                        f"{len(league)} hotels; scores shrunk towards the chain "
                        f"({league['chain'].iloc[0]:+.1f}) by their base",
                        *(
                            [", ".join(f"{v} {k}" for k, v in sorted(status.items()))]
                            if status
                            else []
                        ),
                    ],
                    so_what="Rank hotels on shrunk scores: a small hotel's raw score is "
                    "mostly noise.",
                    confidence="medium",
                    chart=chart("league"),
                    evidence_kind="survey_estimate",
                    base=f"{len(league)} hotels, {int(league['n'].sum()):,} responses",
                    interval="; ".join(
                        x for x in map(_league_interval, (bottom.iloc[0], top.iloc[0])) if x
                    ),
                )
            )
    if turnover is not None:
        out.append(
            Finding(
                step="01",
                headline=turnover.headline(),
                evidence=[
                    "Cox model with monthly pride (time-varying), stratified by team",
                    "association within people over time, not yet a causal effect: "
                    "see the linkage step",
                ],
                so_what="Pride is a lever on staff turnover worth testing in the linkage model.",
                confidence="medium",
                chart=chart("turnover"),
                evidence_kind="association",
                base=f"{turnover.n_people:,} people ({turnover.n_events:,} leavers)",
                interval=interval_text(*turnover.pride_ci, "{:.2f}", of="hazard ratio"),
            )
        )
    if elements is not None and len(elements):
        latest = sorted(elements["period"].unique())[-1]
        chain = elements[elements["period"] == latest].groupby("element")["index"].mean()
        out.append(
            Finding(
                step="01",
                headline=f"ROX scorecard {latest}: "
                + ", ".join(f"{e} {chain[e]:.0f}" for e in ELEMENTS if e in chain.index),
                evidence=[
                    "0-100 index, 50 = the chain average in the baseline period; the spread "
                    "of hotels in the baseline is 10 points"
                ],
                so_what="Elements below 50 have slipped since the baseline.",
                confidence="medium",
                chart=chart("scorecard"),
                evidence_kind="score",
                base=f"{elements.loc[elements['period'] == latest, 'unit_id'].nunique():,} "
                f"hotels in {latest}",
                no_interval="an index of several measures against the baseline period; no "
                "interval is computed for the index itself",
            )
        )
    return out
