"""One unit beside the chain: the figures of a unit report, from a finished run's artifacts.

A chain's general managers each get a report on their own hotel (or a regional director
on a region): the ROX scorecard measures for the unit with base and 95% interval, beside
the chain's, the unit's rank among units, the difference to the chain with an interval on
the difference itself, the trend by period, the unit's journey funnel and the behavioural
segments of its guests.

Everything is read from the run folder (the setup step's canonical tables and what the
measurement, segmentation and journey steps saved); client data is never loaded again.
The metrics are :mod:`rox_helpers.metrics` and :mod:`rox_helpers.tables` (the weights of
the measurement step, :func:`rox_helpers.weights.survey_weights`), so the chain figures
are the main report's.

Thresholds (engagement.yml ``privacy``): a figure on fewer than ``reliability_base``
responses is flagged as indicative; a group of fewer than ``anonymity_floor`` people is
not shown at all. Because every unit gets a report and the chain total is in each of
them, suppression is decided over *all* units at once, with complementary suppression
(:func:`rox_helpers.tables.apply_thresholds`): when one hotel's team is hidden, enough other
cells are hidden with it that the chain total minus the published units does not give it
away. A unit's report shows a figure only where that table publishes it.

The figures for every unit are computed once per run (:func:`prepare`, saved under
``per_<column>/_figures/``) and each unit's report picks its own rows (:func:`unit_view`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rox_helpers import artifacts
from rox_helpers.artifacts import Finding, chart_namer, interval_fields, interval_text
from rox_helpers.config import ELEMENTS, EngagementConfig, load_engagement_config
from rox_helpers.errors import RoxError

# The metrics (scipy, statsmodels) are imported where the figures are computed, once per
# run: a unit's notebook only reads them, and starts faster without.

#: the chain's row (as :data:`rox_helpers.tables.ALL`)
ALL = "All"

#: what ``--per unit`` means: the units table's id column
UNIT = "unit"
SUPPRESSED = "suppressed"
FIGURES_VERSION = 2
#: the columns of a measure's table (one row per group, the chain's row has ``is_chain``)
CARD_COLUMNS = (
    "element",
    "measure",
    "label",
    "kind",
    "higher_is_better",
    "basis",
    "group",
    "is_chain",
    "n",
    "n_people",
    "estimate",
    "ci_low",
    "ci_high",
    "reliable",
    "suppressed",
    "note",
    "difference",
    "diff_ci_low",
    "diff_ci_high",
    "significant",
    "rank",
    "of",
    "percentile",
)


# --------------------------------------------------------------------------------------
# Which column, which values
# --------------------------------------------------------------------------------------


def grouping_columns(units: pd.DataFrame) -> list[str]:
    """Columns of the units table a report can be made per: ``unit`` and every column that
    holds labels (not the period, not numbers)."""
    out = [UNIT]
    for c in units.columns:
        if c in ("unit_id", "period"):
            continue
        kind = units[c].dtype.kind
        if kind in "fcmM" or (kind in "iu" and units[c].nunique() > 50):
            continue
        out.append(str(c))
    return out


def per_column(units: pd.DataFrame, per: str) -> str:
    """The units-table column behind ``--per`` (``unit`` is ``unit_id``).

    Raises
    ------
    RoxError
        Naming the column asked for and the columns available.
    """
    if per in (UNIT, "unit_id"):
        return "unit_id"
    available = grouping_columns(units)
    if per not in units.columns:
        why = f"the units table has no column {per!r}"
    elif per not in available:
        why = f"the units table's column {per!r} holds numbers or dates, not groups"
    else:
        return per
    raise RoxError(
        f"cannot report per {per!r}: {why}",
        column=per,
        rule="--per names the unit or a column of the units table",
        fix=f"Use one of: {', '.join(available)}.",
    )


def unit_groups(units: pd.DataFrame, column: str) -> pd.Series:
    """Each unit's value of ``column`` (its latest period's, should a hotel change region),
    indexed by ``unit_id``."""
    u = units.dropna(subset=["unit_id"])
    if "period" in u.columns:
        u = u.sort_values("period", kind="stable")
    last = u.drop_duplicates("unit_id", keep="last").set_index("unit_id")
    out = last.index.to_series() if column == "unit_id" else last[column]
    return out.dropna().astype("str").rename("group")


def slugify(text: object, taken: set[str] | None = None) -> str:
    """A folder name for a value: lower-case letters, digits and dashes, unique in ``taken``."""
    base = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:60] or "value"
    slug, i = base, 2
    while taken is not None and slug in taken:
        slug, i = f"{base}-{i}", i + 1
    if taken is not None:
        taken.add(slug)
    return slug


def group_table(units: pd.DataFrame, column: str) -> pd.DataFrame:
    """``value, label, slug, n_units`` per value of ``column``, in order of value.

    A hotel's label is its name with its id when the units table has names."""
    g = unit_groups(units, column)
    counts = g.value_counts()
    values = sorted(counts.index)
    names = {}
    if column == "unit_id" and "name" in units.columns:
        names = unit_groups(units, "name").to_dict()
    taken: set[str] = set()
    rows = []
    for v in values:
        label = f"{names[v]} ({v})" if v in names and names[v] != v else v
        rows.append(
            {"value": v, "label": label, "slug": slugify(v, taken), "n_units": int(counts[v])}
        )
    return pd.DataFrame(rows, columns=["value", "label", "slug", "n_units"])


# --------------------------------------------------------------------------------------
# The run folder
# --------------------------------------------------------------------------------------


def latest_run(engagement: str | Path) -> Path | None:
    """The newest finished run of an engagement that holds the setup step's tables."""
    runs = Path(engagement) / "runs"
    if not runs.is_dir():
        return None
    for d in sorted((p for p in runs.iterdir() if p.is_dir()), reverse=True):
        m = d / "manifest.json"
        if not m.is_file() or not artifacts.has_table(d, "units"):
            continue
        try:
            status = json.loads(m.read_text()).get("status")
        except (OSError, ValueError):
            continue
        if status in ("ok", "failed"):
            return d
    return None


def resolve_run(engagement: str | Path, run_dir: str | Path | None) -> Path:
    """The run a unit report reads: ``run_dir`` (or ``ROX_RUN_DIR``) when given, else the
    engagement's latest finished run, else a new interactive run loaded from the data (a
    notebook opened on its own, before any ``rox run``)."""
    import os

    if not (run_dir or os.environ.get("ROX_RUN_DIR")):
        found = latest_run(engagement)
        if found is not None:
            return found
    path = artifacts.resolve_run_dir(engagement, run_dir)
    artifacts.ensure_tables(engagement, path)
    return path


def per_name(column: str) -> str:
    """What the reports per ``column`` are called: ``unit`` for the units' id column."""
    return UNIT if column == "unit_id" else column


def per_dir(run_dir: str | Path, column: str) -> Path:
    """``runs/<ts>/per_<column>/`` (``per_unit/`` for hotels): where the reports go."""
    return Path(run_dir) / f"per_{per_name(column)}"


# --------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Measure:
    element: str
    name: str
    label: str
    table: str
    column: str
    aggregate: str
    higher_is_better: bool = True
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()


#: the scorecard's core measures, added when the engagement's elements do not list them
_DEFAULTS = (
    _Measure("results", "nps", "NPS", "cx_survey", "nps", "nps"),
    _Measure("values", "csat", "CSAT (top-2 box)", "cx_survey", "csat", "top2"),
    _Measure("values", "ces", "Customer effort (mean)", "cx_survey", "ces", "mean", False),
    _Measure("pride", "pride", "Pride", "employees", "pride", "mean"),
    _Measure("pride", "enps", "eNPS", "employees", "enps", "nps"),
    _Measure("pride", "staff_leaving", "Staff leaving (monthly)", "employees", "left", "share",
             False),
)  # fmt: skip


def scorecard_measures(cfg: EngagementConfig, tables: dict[str, pd.DataFrame]) -> list[_Measure]:
    """The engagement's ROX measures, then the core CX and EX measures it does not list
    (NPS, CSAT, effort, pride, eNPS, staff leaving) where the data has them."""
    out: list[_Measure] = []
    for element, m in cfg.measures():
        where = tuple((c, tuple(m.allowed(c))) for c in m.where)
        out.append(
            _Measure(
                element,
                m.name,
                m.label or m.name,
                m.table,
                m.column,
                m.aggregate,
                m.higher_is_better,
                where,
            )
        )
    have = {(m.table, m.column, m.aggregate) for m in out if not m.where}
    for d in _DEFAULTS:
        df = tables.get(d.table)
        if df is None or d.column not in df.columns or (d.table, d.column, d.aggregate) in have:
            continue
        if d.name in {m.name for m in out}:
            continue
        out.append(d)
    order = {e: i for i, e in enumerate(ELEMENTS)}
    return sorted(out, key=lambda m: order.get(m.element, len(order)))


def _top2(config, m: _Measure, x: pd.Series) -> pd.Series:
    entry = config.codebook.get(m.column)
    top = float(entry.scale[1]) if entry is not None else (5.0 if m.column == "csat" else None)
    top = float(x.max()) if top is None else top
    return (x >= top - 1).astype("float64").where(x.notna())


def _prepare_rows(m: _Measure, df: pd.DataFrame, config) -> tuple[pd.DataFrame, str, str, str]:
    """The rows behind a measure, the metric to compute on column ``_x`` and the basis."""
    d = df
    for col, allowed in m.where:
        if col not in d.columns:
            raise KeyError(f"filter column {col} not in {m.table}")
        d = d[d[col].astype("string").isin(list(allowed)).fillna(False)]
    raw = d[m.column]
    if raw.dtype == bool or str(raw.dtype) == "boolean":
        raw = raw.astype("Float64")
    x = pd.to_numeric(raw, errors="coerce").astype("float64")
    if m.aggregate == "nps":
        name = "nps" if m.table == "cx_survey" else "enps"
    elif m.aggregate == "top2":
        x, name = _top2(config, m, x), "share"
    elif m.aggregate == "share":
        name = "share" if x.dropna().isin([0.0, 1.0]).all() else "mean"
    elif m.aggregate in ("mean", "sum", "rate"):
        name = "mean"
    else:
        raise KeyError(f"a {m.aggregate} per unit has no interval")
    d = d.assign(_x=x)
    basis = {
        "cx_survey": "responses, weighted",
        "employees": "people, latest pulse",
        "units": "hotel-months",
    }[m.table]
    if m.table == "employees" and m.column == "left":
        basis = "person-months"
    from rox_helpers.metrics import METRICS

    return d, name, METRICS[name].kind, basis


# --------------------------------------------------------------------------------------
# The figures of every group, once per run
# --------------------------------------------------------------------------------------


@dataclass
class PerFigures:
    """What the unit reports of one run show, for every value of the column at once."""

    per: str
    column: str
    run_id: str
    reliability_base: int
    anonymity_floor: int
    groups: pd.DataFrame
    #: one row per measure and group (and the chain), see :data:`CARD_COLUMNS`
    scorecard: pd.DataFrame
    #: the outcome (NPS) per group and period, suppression decided over groups x periods
    trend: pd.DataFrame
    #: EX per group and team (latest pulse), suppression over groups x teams
    teams: pd.DataFrame
    #: behavioural segment mix of each group's guests, suppression over groups x segments
    segments: pd.DataFrame
    #: the ROX scorecard's element indices (step 01) per group and period
    elements: pd.DataFrame
    #: measures not shown per unit, and why
    skipped: pd.DataFrame
    #: the measurement step's NPS league (shrunk for base size): ``group, rank, of, shrunk``
    league: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    _TABLES = ("groups", "scorecard", "trend", "teams", "segments", "elements", "skipped",
               "league")  # fmt: skip

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in self._TABLES:
            getattr(self, name).to_parquet(folder / f"{name}.parquet", index=False)
        meta = {
            "version": FIGURES_VERSION,
            "per": self.per,
            "column": self.column,
            "run_id": self.run_id,
            "reliability_base": self.reliability_base,
            "anonymity_floor": self.anonymity_floor,
            "notes": self.notes,
        }
        (folder / "figures.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> PerFigures | None:
        folder = Path(folder)
        meta_path = folder / "figures.json"
        if not meta_path.is_file():
            return None
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != FIGURES_VERSION:
            return None
        frames = {n: pd.read_parquet(folder / f"{n}.parquet") for n in cls._TABLES}
        meta.pop("version")
        return cls(**meta, **frames)


def _weighted_survey(cfg: EngagementConfig, tables: dict) -> tuple[pd.DataFrame, list[str], str]:
    """The survey with the measurement step's weights (``weight_final``)."""
    from rox_helpers.weights import survey_weights

    w = cfg.measurement.weighting
    s, sw = survey_weights(
        tables["cx_survey"],
        tables.get("customers"),
        use_client_weight=w.use_client_weight,
        rake_to_customers=w.rake_to_customers,
        trim=w.trim,
    )
    # the raking margins as integer codes: the same groups, and the standard errors'
    # residualisation on them runs several times faster than on strings
    s = s.assign(**{c: pd.factorize(s[c])[0] for c in sw.calibration})
    return s, list(sw.calibration), sw.method


#: each unit's region (or other parent) in the tables, for suppression within the parent
PARENT = "_parent"


def parent_column(units: pd.DataFrame, column: str) -> str | None:
    """The column above the units when reporting per unit: ``region``, when the units table
    has one that groups them. Hotels are then also hidden within their region, so that the
    region's own report (``--per region``) minus its published hotels gives no hidden one."""
    if column != "unit_id" or "region" not in units.columns:
        return None
    if "region" not in grouping_columns(units):
        return None
    n = unit_groups(units, "region").nunique()
    return "region" if 1 < n < units["unit_id"].nunique() else None


def _group_rows(
    df: pd.DataFrame, groups: pd.Series, column: str, parents: pd.Series | None = None
) -> pd.DataFrame:
    unit = df["unit_id"].astype("string")
    g = unit.map(groups)
    extra = {column: g}
    if parents is not None:
        extra[PARENT] = unit.map(parents).fillna("(none)")
    return df.assign(**extra).loc[g.notna()]


def _differences_to_chain(
    d: pd.DataFrame, name: str, column: str, weight: str | None
) -> pd.DataFrame:
    """Each group minus the chain, with a 95% interval on the difference itself.

    The group is part of the chain, so the two estimates are not independent: the
    standard error is the linearisation (Taylor) error of the contrast of the two domain
    means in one design, with influence values ``1[g] (y - m_g) / W_g - (y - m_c) / W_c``,
    the contrast R's ``survey::svycontrast`` forms (one stage, the given weights; the
    raking margins are not residualised, which leaves the interval slightly wide).

    Returns ``group, difference, diff_ci_low, diff_ci_high`` (NPS-style metrics x 100).
    """
    from scipy import stats

    from rox_helpers.metrics import METRICS

    spec = METRICS[name]
    y = spec.score(d["_x"]).to_numpy(dtype="float64")
    w = np.ones(len(d)) if weight is None else d[weight].to_numpy(dtype="float64")
    ok = np.isfinite(y) & np.isfinite(w) & (w > 0)
    n = int((np.isfinite(w) & (w > 0)).sum())  # the design's n (as metrics.estimate)
    y, w = y[ok], w[ok]
    g = d[column].to_numpy()[ok]
    wc = w.sum()
    if n < 2 or wc <= 0:
        return pd.DataFrame(columns=["group", "difference", "diff_ci_low", "diff_ci_high"])
    mc = float((w * y).sum() / wc)
    e = (y - mc) / wc  # the chain's influence values
    frame = pd.DataFrame({"g": g, "w": w, "wy": w * y, "w2e2": (w * e) ** 2})
    sums = frame.groupby("g", observed=True).agg(W=("w", "sum"), WY=("wy", "sum"))
    mg = sums["WY"] / sums["W"]
    # inside the group: w (y - m_g) / W_g - w e; outside it: -w e
    inside = (w * ((y - mg.reindex(g).to_numpy()) / sums["W"].reindex(g).to_numpy() - e)) ** 2
    frame["inside"] = inside
    per = frame.groupby("g", observed=True)[["inside", "w2e2"]].sum()
    total_out = float(frame["w2e2"].sum())
    ss = per["inside"] + (total_out - per["w2e2"])
    se = np.sqrt(n / (n - 1) * ss)
    factor = 100.0 if spec.kind == "difference" else 1.0
    z = stats.norm.ppf(0.975)
    diff = (mg - mc) * factor
    return pd.DataFrame(
        {
            "group": mg.index.astype("str"),
            "difference": diff.to_numpy(),
            "diff_ci_low": (diff - z * se * factor).to_numpy(),
            "diff_ci_high": (diff + z * se * factor).to_numpy(),
        }
    )


def _measure_table(
    m: _Measure,
    d: pd.DataFrame,
    name: str,
    kind: str,
    basis: str,
    column: str,
    *,
    weight: str | None,
    calibration: list[str],
    people: str | None,
    floor: int,
    base: int,
) -> pd.DataFrame:
    from rox_helpers.tables import metric_table

    t = metric_table(
        d,
        name,
        by=[PARENT, column] if PARENT in d.columns else [column],
        column="_x",
        weight=weight,
        calibration=calibration,
        people=people,
        reliability_base=base,
        anonymity_floor=floor,
    )
    t = t.drop(columns=[PARENT], errors="ignore").rename(columns={column: "group"})
    t["is_chain"] = t["group"] == ALL
    if m.table == "units":  # operational figures, not answers: the reliability base is moot
        t.loc[~t["suppressed"], ["reliable", "note"]] = [True, ""]
    # differences and ranks only for what is published (never for a hidden unit)
    shown = ~t["suppressed"] & ~t["is_chain"]
    diffs = _differences_to_chain(d, name, column, weight).set_index("group")
    for c in ("difference", "diff_ci_low", "diff_ci_high"):
        t[c] = t["group"].map(diffs[c]).where(shown).astype("float64")
    t["significant"] = (t["diff_ci_low"] > 0) | (t["diff_ci_high"] < 0)
    _rank(t, m.higher_is_better)
    t = t.assign(
        element=m.element,
        measure=m.name,
        label=m.label,
        kind=kind,
        higher_is_better=m.higher_is_better,
        basis=basis,
    )
    return t[list(CARD_COLUMNS)]


def _rank(t: pd.DataFrame, higher_is_better: bool) -> None:
    """Rank (best first), how many are ranked, and percentile (100 = best) of the groups
    whose figure is published; nothing for hidden groups or the chain."""
    shown = ~t["suppressed"].astype(bool) & ~t["is_chain"].astype(bool)
    est = t.loc[shown, "estimate"] * (1 if higher_is_better else -1)
    t["rank"] = est.rank(ascending=False, method="min")
    t["of"] = float(shown.sum())
    worse = est.rank(ascending=True, method="min") - 1
    t["percentile"] = (100 * worse / max(int(shown.sum()) - 1, 1)).round(0)


_HIDE = ("n", "n_people", "estimate", "ci_low", "ci_high", "difference", "diff_ci_low",
         "diff_ci_high", "rank", "percentile")  # fmt: skip


@dataclass
class _People:
    """Who answered a measure, per group (for the subset guard)."""

    name: str
    table: str
    column: str
    filtered: bool
    higher_is_better: bool
    people: pd.Series


def _guard_subsets(
    card: pd.DataFrame, info: list[_People], floor: int, parents: pd.Series | None = None
) -> pd.DataFrame:
    """A measure on some of a unit's people (the front desk) beside the same measure on all
    of them: all minus the subset is a group too, and its figure follows by subtraction.
    Where that rest holds fewer than ``floor`` people (but some), the subset's figure is
    hidden; and then enough other units' (smallest first) that the hidden ones together
    hold ``floor`` people, in the chain and in each parent (region) holding a hidden one,
    so neither the chain's total nor the region's gives it back."""
    from rox_helpers.tables import NOTE_SECONDARY

    card = card.copy()
    full = {(i.table, i.column): i for i in info if not i.filtered}

    def hide(idx) -> None:
        card.loc[idx, list(_HIDE)] = np.nan
        card.loc[idx, ["suppressed", "reliable", "significant"]] = [True, False, False]
        card.loc[idx, "note"] = NOTE_SECONDARY

    for i in info:
        whole = full.get((i.table, i.column))
        if not i.filtered or whole is None:
            continue
        rest = whole.people.sub(i.people, fill_value=0)
        small = rest.index[(rest > 0) & (rest < floor)]
        mine = card["measure"] == i.name
        rows = card.index[mine & card["group"].isin(small) & ~card["suppressed"]]
        if not len(rows):
            continue
        hide(rows)
        cells = mine & ~card["is_chain"]
        lines = [cells]
        if parents is not None:
            parent = card["group"].map(parents)
            lines += [cells & (parent == p) for p in parents.dropna().unique()]
        changed = True
        while changed:
            changed = False
            for line in lines:
                hidden = card.loc[line & card["suppressed"], "group"]
                if hidden.empty or (
                    len(hidden) >= 2 and i.people.reindex(hidden).fillna(0).sum() >= floor
                ):
                    continue
                cand = card[line & ~card["suppressed"]]
                if cand.empty:  # nothing left to hide among: the chain's total goes
                    if line is cells and not card.loc[mine & card["is_chain"], "suppressed"].all():
                        hide(card.index[mine & card["is_chain"]])
                        changed = True
                    continue
                people = i.people.reindex(cand["group"]).fillna(0).to_numpy()
                hide([cand.index[int(np.argmin(people))]])
                changed = True
        sub = card[mine].copy()
        _rank(sub, i.higher_is_better)
        card.loc[sub.index, ["rank", "of", "percentile"]] = sub[["rank", "of", "percentile"]]
    return card


def _latest_pulse(emp: pd.DataFrame) -> pd.DataFrame:
    if "period" in emp.columns and emp["period"].notna().any():
        return emp[emp["period"] == emp["period"].max()]
    return emp


def _segment_mix(
    run_dir: Path, groups: pd.Series, column: str, floor: int, base: int
) -> pd.DataFrame:
    """Share of each behavioural segment among each group's guests (customers with a contact
    at one of its units, segmented by step 02), and the chain's, thresholds applied over
    groups x segments."""
    from rox_helpers.stats import wilson_interval
    from rox_helpers.tables import apply_thresholds

    inter = artifacts.open_interactions(run_dir)
    if inter is None or not artifacts.has_table(run_dir, "customer_segments"):
        return pd.DataFrame()
    if "unit_id" not in inter.columns:
        return pd.DataFrame()
    seg = artifacts.load_table(run_dir, "customer_segments")
    guests = inter.select("customer_id", "unit_id").distinct().to_pandas()
    guests[column] = guests["unit_id"].astype("string").map(groups)
    guests = guests.dropna(subset=[column]).drop_duplicates(["customer_id", column])
    label = "name" if "name" in seg.columns else "segment"
    seg = seg[["customer_id", label]].rename(columns={label: "segment"})
    guests = guests.merge(seg.astype({"segment": "string"}), on="customer_id")
    counts = guests.groupby([column, "segment"], observed=True).size().rename("n").reset_index()
    totals = guests.groupby(column, observed=True).size()
    counts["total"] = counts[column].map(totals).astype("float64")
    chain = (
        guests.drop_duplicates("customer_id").groupby("segment", observed=True).size().rename("n")
    )
    chain_rows = chain.reset_index().assign(**{column: ALL, "total": float(chain.sum())})
    t = pd.concat([counts, chain_rows], ignore_index=True)
    lo, hi = wilson_interval(t["n"], t["total"])
    t = t.assign(
        metric="share",
        n_people=t["n"].astype("float64"),
        n_eff=t["total"],
        deff=1.0,
        estimate=t["n"] / t["total"],
        se=np.sqrt((t["n"] / t["total"]) * (1 - t["n"] / t["total"]) / t["total"]),
        ci_low=lo,
        ci_high=hi,
    )
    # the grand total's row for the thresholds (every segment of every group)
    grand = pd.DataFrame(
        [{column: ALL, "segment": ALL, "n": float(len(guests)), "n_people": float(len(guests))}]
    )
    full = pd.concat(
        [t[t[column] != ALL], grand],
        ignore_index=True,
    )
    full = apply_thresholds(full, by=[column, "segment"], reliability_base=0, anonymity_floor=floor)
    full = full[full["segment"] != ALL]
    chain_t = t[t[column] == ALL].assign(
        reliable=True, suppressed=t.loc[t[column] == ALL, "n"] < floor, note=""
    )
    out = pd.concat([full, chain_t], ignore_index=True).rename(columns={column: "group"})
    out["guests"] = out["total"].where(~out["suppressed"])
    keep = ["group", "segment", "guests", "n", "estimate", "ci_low", "ci_high", "suppressed"]
    out = out[[*keep, "note"]].rename(columns={"n": "n_guests", "estimate": "share"})
    out.loc[out["suppressed"], ["n_guests", "share", "ci_low", "ci_high"]] = np.nan
    return out.reset_index(drop=True)


def prepare(
    run_dir: str | Path, per: str = UNIT, *, config: EngagementConfig | None = None
) -> PerFigures:
    """Every group's figures beside the chain's, from the run's artifacts.

    Parameters
    ----------
    run_dir : str or Path
        A run folder with at least the setup step's tables (``units``, and ``cx_survey``
        and/or ``employees``).
    per : str
        ``unit`` or a column of the units table (``region``).
    config : EngagementConfig, optional
        The engagement's configuration (read from the run's engagement otherwise).

    Raises
    ------
    RoxError
        When the run has no units table, or ``per`` is not one of its columns.
    """
    from rox_helpers.framework import period_label
    from rox_helpers.tables import metric_table

    run_dir = Path(run_dir)
    cfg = config or load_engagement_config(run_dir.parent.parent)
    if not artifacts.has_table(run_dir, "units"):
        raise RoxError(
            f"the run {run_dir.name} has no units table",
            file=str(run_dir),
            rule="reports per unit need the units table",
            fix="Declare data.units in engagement.yml and run again.",
        )
    tables = {
        n: artifacts.load_table(run_dir, n)
        for n in ("units", "cx_survey", "employees", "customers")
        if artifacts.has_table(run_dir, n)
    }
    units = tables["units"]
    column = per_column(units, per)
    groups = unit_groups(units, column)
    parent = parent_column(units, column)
    parents = unit_groups(units, parent) if parent else None
    floor, base = cfg.privacy.anonymity_floor, cfg.privacy.reliability_base
    notes: list[str] = []
    data: dict[str, pd.DataFrame] = {}
    calibration: list[str] = []
    if "cx_survey" in tables and "unit_id" in tables["cx_survey"].columns:
        survey, calibration, method = _weighted_survey(cfg, tables)
        data["cx_survey"] = _group_rows(survey, groups, column, parents)
        notes.append(
            {"raked": "survey weights raked to " + ", ".join(calibration), "client": "the "
             "client's survey weights", "none": "survey unweighted"}[method]
        )  # fmt: skip
    if "employees" in tables and "unit_id" in tables["employees"].columns:
        data["employees"] = _group_rows(tables["employees"], groups, column, parents)
    data["units"] = _group_rows(units, groups, column, parents)
    par = [PARENT] if parents is not None else []

    cards, skipped = [], []
    people: list[_People] = []
    for m in scorecard_measures(cfg, tables):
        d = data.get(m.table)
        if d is None:
            why = (
                f"{m.table} has no hotel: reported for the chain only"
                if m.table in ("customers", "interactions", "network")
                else f"table {m.table} not available"
            )
            skipped.append({"measure": m.label, "reason": why})
            continue
        if m.column not in d.columns:
            skipped.append({"measure": m.label, "reason": f"column {m.column} not in {m.table}"})
            continue
        if m.table == "employees" and m.column != "left":
            d = _latest_pulse(d)
        try:
            rows, name, kind, basis = _prepare_rows(m, d, cfg)
        except KeyError as exc:
            skipped.append({"measure": m.label, "reason": str(exc.args[0])})
            continue
        if rows["_x"].notna().sum() == 0:
            skipped.append({"measure": m.label, "reason": "no answers"})
            continue
        cx = m.table == "cx_survey"
        if m.table == "employees":
            answered = rows[rows["_x"].notna()]
            counts = answered.groupby(column, observed=True)["employee_id"].nunique()
            people.append(
                _People(m.name, m.table, m.column, bool(m.where), m.higher_is_better, counts)
            )
        cards.append(
            _measure_table(
                m,
                rows,
                name,
                kind,
                basis,
                column,
                weight="weight_final" if cx else None,
                calibration=calibration if cx else [],
                people="employee_id" if m.table == "employees" else None,
                floor=floor,
                base=base,
            )
        )
    card = (
        pd.concat(cards, ignore_index=True) if cards else pd.DataFrame(columns=list(CARD_COLUMNS))
    )
    card = _guard_subsets(card, people, floor, parents)

    # the outcome by period, suppression over groups x periods
    trend = pd.DataFrame()
    survey = data.get("cx_survey")
    if survey is not None and "nps" in survey.columns and "date" in survey.columns:
        s = survey.assign(period=period_label(survey["date"], cfg.measurement.period))
        kw = {"weight": "weight_final", "reliability_base": base, "anonymity_floor": floor}
        per_period = metric_table(s, "nps", by=[*par, column, "period"], total=False, **kw)
        per_period = per_period.drop(columns=par)
        chain = metric_table(s, "nps", by=["period"], total=False, **kw).assign(**{column: ALL})
        trend = pd.concat([per_period, chain], ignore_index=True).rename(columns={column: "group"})
        trend = trend[["group", "period", "n", "estimate", "ci_low", "ci_high", "reliable",
                       "suppressed", "note"]]  # fmt: skip

    # EX by team within each group (latest pulse), suppression over groups x teams
    teams = pd.DataFrame()
    emp = data.get("employees")
    if emp is not None and "team" in emp.columns:
        latest = _latest_pulse(emp)
        parts = []
        for col, name, label in (("pride", "mean", "Pride"), ("enps", "enps", "eNPS")):
            if col not in latest.columns:
                continue
            t = metric_table(
                latest,
                name,
                column=col,
                by=[*par, column, "team"],
                people="employee_id",
                reliability_base=base,
                anonymity_floor=floor,
            )
            parts.append(t.drop(columns=par).assign(measure=label))
        if parts:
            teams = pd.concat(parts, ignore_index=True).rename(columns={column: "group"})
            teams = teams[teams["group"] != ALL][
                ["measure", "group", "team", "n_people", "estimate", "ci_low", "ci_high",
                 "reliable", "suppressed", "note"]
            ]  # fmt: skip

    segments = _segment_mix(run_dir, groups, column, floor, base)

    # the scorecard's element indices (step 01): a group's is the mean of its units'
    elements = pd.DataFrame()
    if artifacts.has_table(run_dir, "scorecard_elements"):
        el = artifacts.load_table(run_dir, "scorecard_elements")
        el = el.assign(group=el["unit_id"].astype("string").map(groups)).dropna(subset=["group"])
        by_group = (
            el.groupby(["group", "element", "period"], observed=True)["index"].mean().reset_index()
        )
        chain = el.groupby(["element", "period"], observed=True)["index"].mean().reset_index()
        elements = pd.concat([by_group, chain.assign(group=ALL)], ignore_index=True)

    # hotels ranked as in the chain's report: the measurement step's league table
    league = pd.DataFrame(columns=["group", "rank", "of", "shrunk"])
    if column == "unit_id" and artifacts.has_table(run_dir, "nps_league"):
        lg = artifacts.load_table(run_dir, "nps_league")
        lg = lg[~lg["suppressed"].astype(bool)]
        league = pd.DataFrame(
            {
                "group": lg["unit_id"].astype("str"),
                "rank": lg["rank"].astype("float64"),
                "of": float(len(lg)),
                "shrunk": lg["shrunk"].astype("float64"),
            }
        )

    return PerFigures(
        per=per,
        column=column,
        run_id=run_dir.name,
        reliability_base=base,
        anonymity_floor=floor,
        groups=group_table(units, column),
        scorecard=card,
        trend=trend,
        teams=teams,
        segments=segments,
        elements=elements,
        skipped=pd.DataFrame(skipped, columns=["measure", "reason"]),
        league=league,
        notes=notes,
    )


def figures(
    run_dir: str | Path, per: str = UNIT, *, config: EngagementConfig | None = None
) -> PerFigures:
    """The run's figures per ``per``: those :func:`prepare` saved for this run's reports
    (``per_<column>/_figures/``), or computed now."""
    run_dir = Path(run_dir)
    column = "unit_id" if per in (UNIT, "unit_id") else per
    saved = PerFigures.load(per_dir(run_dir, column) / "_figures")
    if saved is not None and saved.run_id == run_dir.name:
        return saved
    return prepare(run_dir, per, config=config)


# --------------------------------------------------------------------------------------
# One unit
# --------------------------------------------------------------------------------------


@dataclass
class UnitView:
    """One group's rows of :class:`PerFigures`, beside the chain's."""

    value: str
    label: str
    slug: str
    column: str
    per: str
    n_units: int
    reliability_base: int
    anonymity_floor: int
    #: one row per measure: the unit's figure and the chain's side by side
    scorecard: pd.DataFrame
    trend: pd.DataFrame
    teams: pd.DataFrame
    segments: pd.DataFrame
    elements: pd.DataFrame
    skipped: pd.DataFrame
    notes: list[str]
    #: (rank, of, shrunk NPS) in the chain report's league table, when it has one
    league: tuple[int, int, float] | None = None

    @property
    def n_suppressed(self) -> int:
        return int(self.scorecard["suppressed"].sum()) + (
            int(self.teams["suppressed"].sum()) if len(self.teams) else 0
        )


def unit_view(fig: PerFigures, value: object = None) -> UnitView:
    """The figures of one value (``None``: the first) beside the chain's.

    Raises
    ------
    RoxError
        When ``value`` is not a value of the column (naming some that are).
    """
    if fig.groups.empty:
        raise RoxError(
            "the units table holds no units",
            rule="reports per unit need units",
            fix="Check the units table.",
        )
    if value is None or (isinstance(value, str) and not value):
        row = fig.groups.iloc[0]
    else:
        hit = fig.groups[fig.groups["value"] == str(value)]
        if hit.empty:
            shown = ", ".join(fig.groups["value"].astype(str).head(10))
            raise RoxError(
                f"{value!r} is not a {fig.per} of this run",
                column=fig.column,
                rule=f"VALUE names a {fig.per}",
                fix=f"Use one of: {shown}{', ...' if len(fig.groups) > 10 else ''}.",
            )
        row = hit.iloc[0]
    v = str(row["value"])
    c = fig.scorecard
    mine = c[c["group"] == v].set_index("measure")
    chain = c[c["is_chain"]].set_index("measure")
    order = list(dict.fromkeys(c["measure"]))
    card = pd.DataFrame({"measure": order})
    card = card[card["measure"].isin(mine.index) | card["measure"].isin(chain.index)]
    meta = ["element", "label", "kind", "higher_is_better", "basis"]
    src = pd.concat([mine[meta], chain[meta]])
    src = src[~src.index.duplicated()]
    card = card.join(src, on="measure")
    unit_cols = ["n", "n_people", "estimate", "ci_low", "ci_high", "reliable", "suppressed",
                 "note", "difference", "diff_ci_low", "diff_ci_high", "significant", "rank",
                 "of", "percentile"]  # fmt: skip
    card = card.join(mine[unit_cols], on="measure")
    # a unit with no answers at all for a measure: nothing to show, said as such
    card["suppressed"] = card["suppressed"].astype("boolean").fillna(False).astype(bool)
    card["note"] = card["note"].fillna("no answers")
    chain_cols = ["n", "n_people", "estimate", "ci_low", "ci_high", "suppressed"]
    card = card.join(chain[chain_cols].add_prefix("chain_"), on="measure")
    trend = fig.trend
    if len(trend):
        trend = trend[trend["group"].isin([v, ALL])].reset_index(drop=True)
    teams = fig.teams[fig.teams["group"] == v].reset_index(drop=True) if len(fig.teams) else None
    segs = fig.segments
    if len(segs):
        u = segs[segs["group"] == v].set_index("segment")
        ch = segs[segs["group"] == ALL].set_index("segment")
        segs = u[["guests", "n_guests", "share", "ci_low", "ci_high", "suppressed", "note"]].join(
            ch[["share", "ci_low", "ci_high"]].add_prefix("chain_"), how="outer"
        )
        segs = segs.reset_index()
    el = fig.elements
    if len(el):
        el = el[el["group"].isin([v, ALL])].reset_index(drop=True)
    lg = fig.league[fig.league["group"] == v] if len(fig.league) else fig.league
    league = None
    if len(lg) and np.isfinite(lg["rank"].iloc[0]):
        league = (int(lg["rank"].iloc[0]), int(lg["of"].iloc[0]), float(lg["shrunk"].iloc[0]))
    return UnitView(
        value=v,
        label=str(row["label"]),
        slug=str(row["slug"]),
        column=fig.column,
        per=fig.per,
        n_units=int(row["n_units"]),
        reliability_base=fig.reliability_base,
        anonymity_floor=fig.anonymity_floor,
        scorecard=card.reset_index(drop=True),
        trend=trend,
        teams=teams if teams is not None else pd.DataFrame(),
        segments=segs,
        elements=el,
        skipped=fig.skipped,
        notes=list(fig.notes),
        league=league,
    )


def unit_funnel(
    run_dir: str | Path, view: UnitView, config: EngagementConfig | None = None
) -> pd.DataFrame:
    """The journey funnel of the unit's guests (journeys rebuilt from the run's log, as the
    journey step does, keeping the unit's contacts) beside the chain's (the journey step's
    ``journey_funnel``). Stages reached by fewer journeys than the anonymity floor show no
    figures. Empty when the run has no interaction log or no journey stages."""
    from rox_helpers import journey

    run_dir = Path(run_dir)
    cfg = config or load_engagement_config(run_dir.parent.parent)
    jc = cfg.journey
    inter = artifacts.open_interactions(run_dir)
    if inter is None or "unit_id" not in inter.columns or len(jc.stages) < 2:
        return pd.DataFrame()
    units = artifacts.load_table(run_dir, "units")
    mine = unit_groups(units, view.column)
    mine = sorted(mine.index[mine == view.value].astype(str))
    kw = {"goal_stage": jc.goal_stage, "session_gap_days": jc.session_gap_days}
    kw["open_days"] = jc.open_days
    jr = journey.build_journeys(inter.filter(inter.unit_id.isin(mine)), jc.stages, **kw)
    f = journey.funnel(jr, reliability_base=view.reliability_base)
    if f.empty:
        return f
    chain = None
    if artifacts.has_table(run_dir, "journey_funnel"):
        jf = artifacts.load_table(run_dir, "journey_funnel")
        chain = jf[jf["by"] == "overall"]
    if chain is None or chain.empty:
        chain = journey.funnel(
            journey.build_journeys(inter, jc.stages, **kw), reliability_base=view.reliability_base
        )
    f = f.merge(
        chain[["stage", "reached", "drop_rate", "ci_low", "ci_high", "share_reaching"]].add_prefix(
            "chain_"
        ),
        left_on="stage",
        right_on="chain_stage",
        how="left",
    ).drop(columns="chain_stage")
    hide = f["reached"] < view.anonymity_floor
    nums = ["reached", "continued", "stopped", "open", "drop_rate", "ci_low", "ci_high"]
    f.loc[hide, nums] = np.nan
    f["suppressed"] = hide
    return f


# --------------------------------------------------------------------------------------
# What a report shows
# --------------------------------------------------------------------------------------


def _fmt(v: float, kind: str) -> str:
    if v is None or not np.isfinite(v):
        return ""
    if kind == "share":
        return f"{v:.0%}"
    if kind == "difference":
        return f"{v:+.0f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


def _fmt_diff(v: float, kind: str) -> str:
    if v is None or not np.isfinite(v):
        return ""
    if kind == "share":
        return f"{100 * v:+.0f} pts"
    if kind == "difference":
        return f"{v:+.0f}"
    return f"{v:+,.0f}" if abs(v) >= 100 else f"{v:+.2f}"


def _stated(est: float, lo: float, hi: float, kind: str) -> str:
    """``-14 (95% CI -23 to -5)``: a figure as a finding states it."""
    ci = f" (95% CI {_fmt(lo, kind)} to {_fmt(hi, kind)})" if np.isfinite(lo) else ""
    return _fmt(est, kind) + ci


def _with_ci(est: float, lo: float, hi: float, kind: str) -> str:
    if est is None or not np.isfinite(est):
        return ""
    ci = f" ({_fmt(lo, kind)} to {_fmt(hi, kind)})" if np.isfinite(lo) and np.isfinite(hi) else ""
    return _fmt(est, kind) + ci


def scorecard_display(view: UnitView) -> pd.DataFrame:
    """The scorecard as text for the report: each figure with its interval and base; a
    hidden figure reads ``suppressed`` (its base is not shown either)."""
    rows = []
    for r in view.scorecard.itertuples(index=False):
        k = r.kind
        hidden = bool(r.suppressed)
        base_n = r.n_people if r.basis.startswith("people") else r.n
        chain_n = r.chain_n_people if r.basis.startswith("people") else r.chain_n
        diff = ""
        if not hidden and np.isfinite(r.difference):
            diff = (
                f"{_fmt_diff(r.difference, k)} ({_fmt_diff(r.diff_ci_low, k)} to "
                f"{_fmt_diff(r.diff_ci_high, k)})"
            )
        rank = ""
        if not hidden and np.isfinite(r.rank):
            rank = f"{int(r.rank)} of {int(r.of)}"
        rows.append(
            {
                "Element": str(r.element).capitalize(),
                "Measure": r.label,
                view.label: SUPPRESSED if hidden else _with_ci(r.estimate, r.ci_low, r.ci_high, k),
                "Base": "" if hidden or not np.isfinite(base_n) else f"{int(base_n):,}",
                "Chain": SUPPRESSED
                if r.chain_suppressed
                else _with_ci(r.chain_estimate, r.chain_ci_low, r.chain_ci_high, k),
                "Chain base": "" if not np.isfinite(chain_n) else f"{int(chain_n):,}",
                "Difference (95% CI)": diff + (" *" if not hidden and r.significant else ""),
                "Rank": rank,
                "Basis": r.basis,
                "Note": r.note,
            }
        )
    return pd.DataFrame(rows)


def teams_display(view: UnitView) -> pd.DataFrame:
    """EX by team in the unit (latest pulse), hidden teams marked."""
    if view.teams.empty:
        return pd.DataFrame()
    rows = []
    for r in view.teams.itertuples(index=False):
        kind = "difference" if r.measure == "eNPS" else "mean"
        rows.append(
            {
                "Measure": r.measure,
                "Team": str(r.team).replace("_", " "),
                "Estimate (95% CI)": SUPPRESSED
                if r.suppressed
                else _with_ci(r.estimate, r.ci_low, r.ci_high, kind),
                "People": "" if r.suppressed else f"{int(r.n_people):,}",
                "Note": r.note,
            }
        )
    return pd.DataFrame(rows)


def segments_display(view: UnitView) -> pd.DataFrame:
    if view.segments.empty:
        return pd.DataFrame()
    rows = []
    for r in view.segments.itertuples(index=False):
        hidden = bool(r.suppressed) if r.suppressed == r.suppressed else True
        rows.append(
            {
                "Segment": r.segment,
                view.label: SUPPRESSED
                if hidden
                else _with_ci(r.share, r.ci_low, r.ci_high, "share"),
                "Guests": "" if hidden else f"{int(r.n_guests):,} of {int(r.guests):,}",
                "Chain": _with_ci(r.chain_share, r.chain_ci_low, r.chain_ci_high, "share"),
                "Note": "" if r.note != r.note else r.note,
            }
        )
    return pd.DataFrame(rows)


def funnel_display(funnel: pd.DataFrame) -> pd.DataFrame:
    if funnel.empty:
        return pd.DataFrame()
    rows = []
    for r in funnel.itertuples(index=False):
        rows.append(
            {
                "Stage": str(r.stage).replace("_", " "),
                "Journeys reaching it": SUPPRESSED if r.suppressed else f"{int(r.reached):,}",
                "Stop here (95% CI)": SUPPRESSED
                if r.suppressed
                else _with_ci(r.drop_rate, r.ci_low, r.ci_high, "share"),
                "Chain: stop here (95% CI)": _with_ci(
                    r.chain_drop_rate, r.chain_ci_low, r.chain_ci_high, "share"
                ),
            }
        )
    return pd.DataFrame(rows)


def _evidence_kind(basis: str) -> str:
    """Survey answers and staff pulses are samples; the units table's operational figures
    are the client's full records (their interval is over the months)."""
    return "count" if basis == "hotel-months" else "survey_estimate"


def unit_findings(view: UnitView, *, charts: Mapping[str, str] | None = None) -> list[Finding]:
    """What a general manager reads first: the headline figure against the chain, where the
    unit differs from the chain (95% interval on the difference clear of zero), and what is
    hidden.

    ``charts``: the notebook's chart reference (:attr:`~rox_helpers.artifacts.Finding.chart`)
    for each kind of finding that has one, by kind: ``nps`` (the headline figure when it is
    NPS), ``headline`` (when it is another measure), ``ahead``, ``behind``, ``hidden`` (see
    :func:`~rox_helpers.artifacts.chart_namer`)."""
    chart = chart_namer(charts, ("nps", "headline", "ahead", "behind", "hidden"))
    out: list[Finding] = []
    card = view.scorecard
    shown = card[~card["suppressed"] & card["estimate"].notna()]
    head = shown[shown["measure"] == "nps"]
    if head.empty:
        head = shown.head(1)
    for r in head.itertuples(index=False):
        k = r.kind
        rank = f"; rank {int(r.rank)} of {int(r.of)}" if np.isfinite(r.rank) else ""
        base_n = r.n_people if r.basis.startswith("people") else r.n
        out.append(
            Finding(
                step="unit",
                headline=f"{r.label} at {view.label}: {_fmt(r.estimate, k)} against the "
                f"chain's {_fmt(r.chain_estimate, k)}{rank}",
                evidence=[
                    f"{view.label}: {_stated(r.estimate, r.ci_low, r.ci_high, k)}, "
                    f"base {int(base_n):,} ({r.basis})",
                    f"chain: {_stated(r.chain_estimate, r.chain_ci_low, r.chain_ci_high, k)}, "
                    f"base {int(r.chain_n):,}",
                    f"difference to the chain {_fmt_diff(r.difference, k)} (95% CI "
                    f"{_fmt_diff(r.diff_ci_low, k)} to {_fmt_diff(r.diff_ci_high, k)})",
                ]
                + (
                    [
                        f"rank {view.league[0]} of {view.league[1]} in the chain report's "
                        f"league table (scores shrunk for base size: {view.league[2]:+.0f})"
                    ]
                    if view.league and r.measure == "nps"
                    else []
                ),
                so_what="A difference whose interval includes zero is not a difference yet.",
                confidence="high" if r.reliable else "low",
                chart=chart("nps" if r.measure == "nps" else "headline"),
                evidence_kind=_evidence_kind(r.basis),
                base=f"{int(base_n):,} {r.basis}",
                **interval_fields(
                    r.ci_low,
                    r.ci_high,
                    lambda v, k=k: _fmt(v, k),
                    otherwise="the base is too small for an interval",
                ),
            )
        )
    sig = shown[shown["significant"].fillna(False).astype(bool)]
    better = sig[(sig["difference"] > 0) == sig["higher_is_better"].astype(bool)]
    worse = sig.drop(better.index)
    for part, word, so, kind in (
        (better, "ahead of", "Strengths to keep and to share with other hotels.", "ahead"),
        (
            worse,
            "behind",
            "Where to look first: the interval on the difference excludes zero.",
            "behind",
        ),
    ):
        # one 95% interval per measure: among twenty, about one excludes zero by chance
        so = f"{so} With {len(shown)} measures compared, one such difference may be chance."
        if part.empty:
            continue
        p0 = part.iloc[0]
        out.append(
            Finding(
                step="unit",
                headline=f"{view.label} is {word} the chain on {len(part)} measure(s): "
                + ", ".join(part["label"].head(4)),
                evidence=[
                    f"{r.label}: {_fmt(r.estimate, r.kind)} vs {_fmt(r.chain_estimate, r.kind)}"
                    f", difference {_fmt_diff(r.difference, r.kind)} (95% CI "
                    f"{_fmt_diff(r.diff_ci_low, r.kind)} to {_fmt_diff(r.diff_ci_high, r.kind)})"
                    f", base {int(r.n_people if r.basis.startswith('people') else r.n):,} "
                    f"({r.basis})"
                    for r in part.itertuples(index=False)
                ],
                so_what=so,
                confidence="medium",
                chart=chart(kind),
                evidence_kind=_evidence_kind(p0["basis"]),
                base=f"{len(shown):,} measures compared; {p0['label']}: "
                f"{int(p0['n_people'] if p0['basis'].startswith('people') else p0['n']):,} "
                f"{p0['basis']}",
                interval=interval_text(
                    p0["diff_ci_low"],
                    p0["diff_ci_high"],
                    lambda v, k=p0["kind"]: _fmt_diff(v, k),
                    of=f"{p0['label']}: difference to the chain"
                    + (", over the months" if p0["basis"] == "hotel-months" else ""),
                ),
            )
        )
    hidden = view.n_suppressed
    if hidden:
        out.append(
            Finding(
                step="unit",
                headline=f"{hidden} figure(s) for {view.label} are not shown to protect anonymity",
                evidence=[
                    f"groups of fewer than {view.anonymity_floor} people are hidden, with "
                    "enough other cells that none can be recomputed from the chain's totals"
                ],
                so_what="Small teams are never reported on their own.",
                confidence="high",
                chart=chart("hidden"),
                evidence_kind="count",
                base=f"{len(card) + len(view.teams):,} figures of the unit's scorecard and teams",
                no_interval="a count of the figures hidden, not an estimate",
            )
        )
    return out


def findings_records(findings: list[Finding], slug: str) -> list[dict]:
    """Findings as the report renders them (with an id each)."""
    from dataclasses import asdict

    return [{**asdict(f), "id": f"{slug}.{i}"} for i, f in enumerate(findings, 1)]


def save_unit_findings(out_dir: str | Path, findings: list[Finding], slug: str) -> Path:
    """``findings.json`` beside the unit's report (never among the run's own findings)."""
    path = Path(out_dir) / "findings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"step": "unit", "findings": findings_records(findings, slug)}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


def check_per(engagement: str | Path, per: str, config: EngagementConfig | None = None) -> None:
    """Check ``--per`` before a run, on the units file's header (what the run would load), so
    a wrong column fails in a second, not after the notebooks. Sources that cannot be read
    here (a database, a glob) are checked after the run, on its units table.

    Raises
    ------
    RoxError
        No units table declared, or ``per`` names no grouping column of it.
    """
    from rox_helpers.data import plan_columns
    from rox_helpers.io import read_table

    root = Path(engagement)
    cfg = config or load_engagement_config(root)
    src = cfg.data.declared().get("units")
    if src is None:
        raise RoxError(
            f"cannot report per {per!r}: the engagement declares no units table",
            file=str(root / "engagement.yml"),
            rule="reports per unit need data.units",
            fix="Declare data.units (unit_id, period, name, region ...) in engagement.yml.",
        )
    if per in (UNIT, "unit_id"):
        return
    path = Path(src.path) if getattr(src, "path", None) else None
    if path is None or any(c in str(path) for c in "*?["):
        return
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        return
    try:
        raw = read_table(path, format=src.format, nrows=500).frame
        mapping, _ = plan_columns(cfg, "units", src, [str(c) for c in raw.columns])
        frame = pd.DataFrame({canon: raw[client] for canon, client in mapping.items()})
        for c in frame.columns:  # files are read as text here: numbers are numbers
            num = pd.to_numeric(frame[c], errors="coerce")
            if frame[c].notna().any() and num.notna().sum() == frame[c].notna().sum():
                frame[c] = num
    except Exception:
        return
    per_column(frame, per)
