"""The ROX framework: the client's measures mapped onto the five elements, and
which analyses the engagement's data can support.

Only what the data supports runs.  :func:`analysis_availability` says, for
every analysis of the notebook sequence, whether it can run and, if not, the
plain reason (the table or column it lacks) that the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass

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
) -> list:
    """The findings of the setup step: element coverage, what can run, data quality, privacy."""
    from rox_helpers.artifacts import Finding

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
        )
    )
    return out
