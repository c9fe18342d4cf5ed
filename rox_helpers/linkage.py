"""The ROX linkage model: how a change in one element moves the others, and how far to trust it.

The chain runs pride -> influencers -> behaviours -> values -> results. Each measure named in
``linkage.paths`` is regressed on all of its hypothesised parents; the direct effects form a
linear path model whose indirect and total effects are sums of products along the paths.

Where each link is estimated
----------------------------
* **Unit x period panel** (quarter by default): the cell mean of each measure, weighted by
  the child's base, with unit and period fixed effects, parents lagged ``lag`` periods. The
  evidence is *within-unit change*: a hotel's pride rising against its own average, not a
  comparison of good and bad hotels.
* **Respondent level**, when a survey measure is explained by other measures of the same
  survey (NPS on the rated attributes): cell means of a few dozen answers are mostly noise,
  and the answers' shared halo would bias a regression of one mean on another; the link is
  fitted on the answers themselves, with unit and period fixed effects and every other rated
  attribute held constant (so the halo does not flow through the attributes left out).

Uncertainty
-----------
One joint cluster bootstrap over units (units resampled whole, each copy with its own id
and fixed effect; lags are built within a unit, so a copy keeps its own history),
re-estimating every equation in each replicate, so the intervals of indirect and total
effects carry the covariance of their links. With fewer than ``WILD_BELOW`` units a wild
cluster bootstrap (Webb's six-point weights, one draw per unit shared by all equations)
replaces it; its residuals are first scaled by ``sqrt(n / (n - k))``, ``k`` the rank of the
two-way fixed-effects design (main equation and lead regression alike), since fitted
residuals are too small by the degrees of freedom the unit and period effects use up.

Few units: the percentile intervals of a cluster bootstrap are too narrow with a few dozen
units (a normal approximation where a t with ``G - 1`` degrees of freedom is due, and no
CR1 small-sample scale). Every bootstrap quantity is therefore computed from draws stretched
around their point estimate by ``c = sqrt(G / (G - 1)) * t_{q, G-1} / z_q`` (``G`` units,
``q = (1 + level) / 2``; :func:`small_sample_factor`: 1.05 at 40 units, 1.10 at 20): a
CR1-style correction with t critical values. The per-link, between, lead, indirect, total
and what-if intervals are ``c`` times as wide as the raw percentile intervals, the standard
errors ``c`` times the draws' SD, and the joint band too (its sup-t critical value is
scale-free, so the band widens with the standard errors). The two-sided bootstrap p-values
(links, totals, the lead test and its Benjamini-Hochberg q-values) are read off the same
stretched draws, so a p-value under 0.05 goes with a 95% interval that excludes zero.
``model.draws["B"]`` keeps the raw draws; ``model.small_sample_factor`` is ``c``.

Measurement error
-----------------
A sampled parent's cell mean is its unit-period level plus sampling noise of variance
``msw / n`` (employee measures: between persons, weighted by their rows), which attenuates a
within-unit slope by the parent's two-way within reliability. ``fit_linkage(...,
correct_noise=True)`` corrects it (errors-in-variables): each unit's expected noise sum of
squares after weighted within-unit demeaning, ``sum w v (1 - w / W_unit)``, is subtracted
from the parents' diagonal of the within cross-products. The terms are kept per unit, so a
bootstrap replicate sums its drawn units' terms exactly as it sums their cross-products.
Guard: an equation is corrected only if the noise is at most ``NOISE_SHARE_MAX`` (0.3) of
the parents' within variation net of the period effects and of each other (the largest
generalized eigenvalue of the noise on the cross-products), which keeps the corrected
matrix positive definite, its condition number at most 1 / 0.7 times the uncorrected one;
otherwise the link stays uncorrected (and flagged if its parent's reliability is under
``min_reliability``). A replicate whose corrected matrix is not positive definite is
dropped. Off by default: it assumes the respondents' own deviations from their unit's level
do not drive the child -- true of a guest survey's few answers, not of a staff measure whose
respondents are the people whose behaviour the child measures (then the mean of their own
values is the cause and the correction overshoots). Only the within estimate is corrected,
not the between (Mundlak) estimate or the lead regression.

Checks that guard the claim
---------------------------
* reliability of each unit-period mean (ICC(1), ICC(2), and the within-unit reliability that
  matters under unit and period fixed effects); a panel link whose parent (guest or employee
  survey) has a within-unit reliability under ``linkage.min_reliability`` is flagged, its
  effect attenuated (or corrected, see above);
* a lead test per panel link: does next period's parent "predict" this period's child?
  (a feedback from the child to the parent, or anticipation), Benjamini-Hochberg across links;
* the Mundlak variant: the between-unit association beside the within-unit effect;
* no lagged outcome among the regressors (Nickell bias; refused in the configuration).

Effects are linear approximations in raw units (NPS points per minute of check-in time) and
hold for changes within the range the data has seen; :func:`what_if` says when a request
leaves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np
import pandas as pd

from rox_helpers.config import DERIVED_MEASURES, ELEMENTS, EngagementConfig
from rox_helpers.errors import RoxError
from rox_helpers.framework import aggregate_rows, measure_rows, period_label
from rox_helpers.stats import bh_qvalues

__all__ = [
    "NOISE_SHARE_MAX",
    "WILD_BELOW",
    "LinkageModel",
    "Panel",
    "build_panel",
    "default_paths",
    "derived_measures",
    "fit_linkage",
    "measure_table",
    "reliability",
    "small_sample_factor",
    "test_hypotheses",
    "what_if",
]

#: below this many units the pairs cluster bootstrap is unreliable: wild cluster bootstrap
WILD_BELOW = 30
#: the measurement-error correction applies only while the sampling noise is at most this
#: share of the parents' two-way within variation (a joint partial reliability of 0.7+)
NOISE_SHARE_MAX = 0.3
RESPONDENT_TABLES = ("cx_survey",)
_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


# --------------------------------------------------------------------------------------
# The panel
# --------------------------------------------------------------------------------------
@dataclass
class Panel:
    """Unit x period cells and, for survey measures, the answers behind them.

    ``cells``: ``unit_id, period, t`` and per measure its value and its base ``n__<measure>``.
    ``respondents``: one row per survey answer (``unit_id, period, t, weight`` and the
    row-level value of each survey measure and control), or None.
    """

    cells: pd.DataFrame
    respondents: pd.DataFrame | None
    measures: pd.DataFrame  # name, element, label, table, level, higher_is_better
    reliability: pd.DataFrame
    grain: str
    periods: list[str]
    controls: list[str] = field(default_factory=list)
    #: unit-level measures at the finer grain of the lead test (None: the panel's grain)
    lead_cells: pd.DataFrame | None = None
    lead_grain: str | None = None

    def info(self, name: str) -> pd.Series:
        return self.measures.set_index("name").loc[name]


def default_paths(config: EngagementConfig) -> dict[str, list[str]]:
    """Each element's measures on the first measure of every earlier element."""
    heads, paths = [], {}
    for element in ELEMENTS:
        ms = [m.name for m in config.elements.get(element, [])]
        if not ms:
            continue
        for name in ms:
            if heads:
                paths[name] = list(heads)
        heads.append(ms[0])
    return paths


def reliability(rows: pd.DataFrame) -> dict[str, float]:
    """ICC(1), ICC(2) and within-unit reliability of cell means from row-level values.

    ``rows``: ``unit_id, period, x`` (one row per answer or per person). ICC(2) is the
    reliability of a cell mean (one-way ANOVA across cells: (MSB - MSW) / MSB); the
    within-unit reliability is the share of the variance of cell means around their unit's
    and their period's average (two-way, as the model's unit and period fixed effects see
    them) that is not sampling noise. ``msw``: the pooled within-cell variance of one row
    (a cell mean of ``n`` rows carries sampling noise of variance ``msw / n``).
    """
    cell = rows.groupby(["unit_id", "period"], observed=True)["x"]
    n = cell.size().to_numpy(float)
    means = cell.mean()
    k, big_n = len(n), n.sum()
    out = {
        "icc1": np.nan,
        "icc2": np.nan,
        "within_reliability": np.nan,
        "mean_base": np.nan,
        "msw": np.nan,
    }
    if k < 3 or big_n <= k:
        return out
    grand = rows["x"].mean()
    ssw = ((rows["x"] - cell.transform("mean")) ** 2).sum()
    msw = ssw / (big_n - k)
    msb = (n * (means.to_numpy() - grand) ** 2).sum() / (k - 1)
    n0 = (big_n - (n**2).sum() / big_n) / (k - 1)
    out["icc1"] = float((msb - msw) / (msb + (n0 - 1) * msw)) if msb > 0 else np.nan
    out["icc2"] = float(max(0.0, (msb - msw) / msb)) if msb > 0 else 0.0
    out["msw"] = float(msw)
    resid, leverage = _two_way_residuals(
        means.to_numpy(float),
        pd.factorize(means.index.get_level_values("unit_id"))[0],
        pd.factorize(means.index.get_level_values("period"), sort=True)[0],
    )
    var_within = float((resid**2).sum())
    # the sampling noise left after removing unit and period means: each cell's msw / n
    # times the share of it the two-way demeaning keeps (1 - its leverage)
    noise = float((msw / n * (1 - leverage)).sum())
    if (1 - leverage).sum() > 2 and var_within > 0:
        out["within_reliability"] = float(np.clip(1 - noise / var_within, 0, 1))
    out["mean_base"] = float(n.mean())
    return out


def _two_way_residuals(y: np.ndarray, unit: np.ndarray, t: np.ndarray):
    """Residuals of ``y`` on unit and period dummies (unweighted) and each row's leverage.

    A row has two dummies (its unit's and, past the first period, its period's), so the
    hat matrix's diagonal is read off the inverse of the small ``D'D``."""
    nu, nt = int(unit.max()) + 1, int(t.max()) + 1
    DtD = np.zeros((nu + nt - 1, nu + nt - 1))
    np.add.at(DtD, (unit, unit), 1.0)
    p = t > 0
    q = nu + t[p] - 1
    np.add.at(DtD, (q, q), 1.0)
    np.add.at(DtD, (unit[p], q), 1.0)
    np.add.at(DtD, (q, unit[p]), 1.0)
    Dty = np.concatenate([np.bincount(unit, y, nu), np.bincount(t, y, nt)[1:]])
    G = np.linalg.pinv(DtD)
    beta = G @ Dty
    fitted = beta[unit].copy()
    fitted[p] += beta[q]
    leverage = G[unit, unit].copy()
    leverage[p] += G[q, q] + 2 * G[unit[p], q]
    return y - fitted, np.clip(leverage, 0.0, 1.0)


def measure_table(config: EngagementConfig, names: list[str]) -> pd.DataFrame:
    """``name, element, label, table, higher_is_better, level`` of each measure in ``names``
    (derived measures included); ``level`` is ``respondent`` for survey answers."""
    rows = []
    for name in names:
        found = config.measure(name)
        if found is None:
            rows.append(
                {
                    "name": name,
                    "element": DERIVED_MEASURES[name],
                    "label": name.replace("_", " ").capitalize(),
                    "table": "network",
                    "higher_is_better": True,
                }
            )
            continue
        element, m = found
        rows.append(
            {
                "name": name,
                "element": element,
                "label": m.label or name,
                "table": m.table,
                "higher_is_better": m.higher_is_better,
            }
        )
    out = pd.DataFrame(rows)
    out["level"] = np.where(out["table"].isin(RESPONDENT_TABLES), "respondent", "unit")
    return out


def build_panel(
    tables: dict[str, pd.DataFrame],
    config: EngagementConfig,
    *,
    measures: list[str] | None = None,
    grain: str | None = None,
    derived: dict[str, pd.DataFrame] | None = None,
) -> Panel:
    """The unit x period panel of the measures the linkage model uses.

    ``derived``: cell tables (``unit_id, period, value, n``) of measures the workbook
    computes itself, e.g. ``influencer_pride`` from :mod:`rox_helpers.influencers`.
    """
    grain = grain or config.linkage.grain
    paths = config.linkage.paths or default_paths(config)
    if measures is None:
        measures = sorted({m for c, ps in paths.items() for m in (c, *ps)})
    given = derived or {}
    derived = {
        **derived_measures(tables, config, [m for m in measures if m not in given], grain),
        **given,
    }
    info = measure_table(config, measures)
    cells: pd.DataFrame | None = None
    rel_rows = []
    for name in measures:
        c, rel = _measure_cells(tables, config, name, grain, derived)
        rel_rows.append({"measure": name, **rel})
        cells = c if cells is None else cells.merge(c, on=["unit_id", "period"], how="outer")
    assert cells is not None
    cells, periods = _index_periods(cells)
    rel = pd.DataFrame(rel_rows)
    rel["kind"] = np.where(
        info.set_index("name").loc[rel["measure"], "table"].isin(["units"]).to_numpy(),
        "administrative (no sampling)",
        "sampled",
    )
    respondents, controls = _respondent_frame(tables, config, info, grain, periods)
    lead_grain = config.linkage.lead_grain
    lead_cells = None
    if lead_grain is not None and _GRAINS.index(lead_grain) < _GRAINS.index(grain):
        fine = None
        for name in measures:
            if name in derived:
                continue  # computed by the workbook at the model's grain only
            c, _ = _measure_cells(tables, config, name, lead_grain, {})
            fine = c if fine is None else fine.merge(c, on=["unit_id", "period"], how="outer")
        if fine is not None:
            lead_cells = _index_periods(fine)[0]
    return Panel(
        cells=cells,
        respondents=respondents,
        measures=info,
        reliability=rel,
        grain=grain,
        periods=periods,
        controls=controls,
        lead_cells=lead_cells,
        lead_grain=lead_grain if lead_cells is not None else None,
    )


_GRAINS = ("month", "quarter", "year")


def derived_measures(
    tables: dict[str, pd.DataFrame],
    config: EngagementConfig,
    names: list[str],
    grain: str,
) -> dict[str, pd.DataFrame]:
    """Cells (``unit_id, period, value, n``) of the measures among ``names`` that the
    workbook derives itself (:data:`~rox_helpers.config.DERIVED_MEASURES`).

    ``influencer_pride``: the pride of the people colleagues turn to, per unit and period
    (nominations-weighted, see :func:`rox_helpers.influencers.unit_influencer_pride`); it
    needs the ``network`` table.
    """
    from rox_helpers import influencers

    out = {}
    for name in [n for n in names if n in DERIVED_MEASURES and config.measure(n) is None]:
        network, employees = tables.get("network"), tables.get("employees")
        if network is None or employees is None:
            raise RoxError(
                f"The linkage model needs {name!r}, which is computed from the peer "
                "network, and the engagement has no network (or no employees) table.",
                file="engagement.yml",
                column=f"linkage.paths ({name})",
                rule="influencer measures need data.network and data.employees",
                fix="Declare the network table under data:, or remove the measure from "
                "linkage.paths.",
            )
        cent = influencers.network_centrality(network, employees, seed=config.seed)
        out[name] = influencers.unit_influencer_pride(
            employees, cent, grain=grain, anonymity_floor=config.privacy.anonymity_floor
        )
    return out


def _index_periods(cells: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    periods = sorted(cells["period"].unique())
    cells = cells.assign(t=cells["period"].map({p: i for i, p in enumerate(periods)}))
    return cells.sort_values(["unit_id", "t"]).reset_index(drop=True), periods


def _measure_cells(
    tables: dict[str, pd.DataFrame],
    config: EngagementConfig,
    name: str,
    grain: str,
    derived: dict[str, pd.DataFrame],
) -> tuple[pd.DataFrame, dict[str, float]]:
    """One measure's cells (``unit_id, period, <name>, n__<name>``, and for a surveyed
    measure ``v__<name>``, the sampling variance of the cell mean) and its reliability."""
    no_rel = {"icc1": np.nan, "icc2": np.nan, "within_reliability": np.nan, "msw": np.nan}
    if name in derived:
        c, rel = derived[name][["unit_id", "period", "value", "n"]], no_rel
    else:
        found = config.measure(name)
        if found is None:
            raise RoxError(
                f"The linkage model needs the measure {name!r}, which was not computed.",
                file="engagement.yml",
                column=f"linkage.paths ({name})",
                rule="derived measures are computed by the workbook before the model",
                fix="Declare the network table so influencer measures can be computed, "
                "or remove the measure from linkage.paths.",
            )
        _, m = found
        rows, reason = measure_rows(tables, config, m, grain=grain)
        if rows is None:
            raise RoxError(
                f"The measure {name!r} has no unit and period grain: {reason}.",
                file="engagement.yml",
                column=f"linkage.paths ({name})",
                rule="every measure in the linkage model needs unit_id and a date",
                fix="Map unit_id and the date for its table, or remove it from the paths.",
            )
        c = aggregate_rows(rows, m.aggregate)
        rel = no_rel
        if m.table == "employees":
            c = c[c["people"] >= config.privacy.anonymity_floor]
            # people repeat across the months of a period: reliability over persons
            person = rows.groupby(["unit_id", "period", "person"], observed=True)["x"]
            rel = reliability(person.mean().reset_index())
            if m.aggregate not in ("sum", "count"):  # a mean of the rows
                # the cell mean weights each person by their rows: its sampling variance is
                # msw (between persons) x sum(rows^2) / rows^2
                per = person.size().rename("m").reset_index()
                per["m2"] = per["m"] ** 2
                s = per.groupby(["unit_id", "period"], observed=True)[["m", "m2"]].sum()
                share = (s["m2"] / s["m"] ** 2).rename("share").reset_index()
                c = c.merge(share, on=["unit_id", "period"], how="left")
                c["v"] = rel["msw"] * c["share"]
        elif m.table in RESPONDENT_TABLES:
            rel = reliability(rows)
            if m.aggregate not in ("sum", "count"):  # a mean of the rows
                c["v"] = rel["msw"] / c["n"]
        c = c.reindex(columns=["unit_id", "period", "value", "n", "v"])
    return c.rename(columns={"value": name, "n": f"n__{name}", "v": f"v__{name}"}), rel


def _respondent_frame(tables, config, info, grain, periods):
    survey_measures = info.loc[info["level"] == "respondent", "name"].tolist()
    df = tables.get("cx_survey")
    if not survey_measures or df is None:
        return None, []
    ok = df["unit_id"].notna() & df["date"].notna()
    d = df.loc[ok]
    out = pd.DataFrame(
        {
            "unit_id": d["unit_id"].astype("string").to_numpy(),
            "period": period_label(d["date"], grain).to_numpy(),
            "weight": (
                pd.to_numeric(d["weight"], errors="coerce").fillna(1.0).to_numpy(float)
                if "weight" in d.columns
                else np.ones(len(d))
            ),
        },
        index=d.index,
    )
    for name in survey_measures:
        _, m = config.measure(name)
        rows, _ = measure_rows({"cx_survey": d}, config, m, grain=grain)
        out[name] = rows["x"].reindex(out.index)
    controls = config.linkage.respondent_controls
    if controls is None:
        controls = [c for c in config.codebook if c in d.columns]
    used_cols = {config.measure(n)[1].column for n in survey_measures}
    controls = [c for c in controls if c in d.columns and c not in used_cols]
    for c in controls:
        out[f"ctl__{c}"] = pd.to_numeric(d[c], errors="coerce").astype(float)
    out["t"] = out["period"].map({p: i for i, p in enumerate(periods)})
    out = out.dropna(subset=["t"]).astype({"t": int})
    return out.reset_index(drop=True), controls


# --------------------------------------------------------------------------------------
# Estimation
# --------------------------------------------------------------------------------------
@dataclass
class Equation:
    child: str
    parents: list[str]
    level: str  # "unit" (panel) or "respondent"
    lag: int


def _with_lags(cells: pd.DataFrame, columns: list[str], shift: int) -> pd.DataFrame:
    """Values of ``columns`` ``shift`` periods earlier (negative: later) within each unit."""
    key = cells[["unit_id", "t"]].assign(t=cells["t"] - shift)
    src = cells[["unit_id", "t", *columns]]
    return key.merge(src, on=["unit_id", "t"], how="left")[columns].set_axis(cells.index)


def _design(X: np.ndarray, unit: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Regressors plus unit and period dummies (two-way fixed effects) and an intercept.

    ``unit`` and ``t`` are integer codes starting at 0."""
    nu, nt = int(unit.max()) + 1, int(t.max()) + 1
    k = X.shape[1]
    D = np.zeros((len(X), k + (nu - 1) + (nt - 1) + 1))
    D[:, :k] = X
    rows = np.arange(len(X))
    m = unit > 0
    D[rows[m], k + unit[m] - 1] = 1.0
    m = t > 0
    D[rows[m], k + nu - 1 + t[m] - 1] = 1.0
    D[:, -1] = 1.0
    return D


def _unit_crossproducts(
    Z: np.ndarray, w: np.ndarray, unit: np.ndarray, nu: int, demean: bool
) -> np.ndarray:
    """Per-unit weighted cross-product matrices of ``Z`` (demeaned within the unit if asked).

    A unit's matrix does not depend on its id, so a bootstrap replicate is the sum of its
    drawn units' matrices (a unit drawn twice counts twice, each copy with its own fixed
    effect); demeaning within the unit absorbs the unit fixed effect (Frisch-Waugh)."""
    out = np.zeros((nu, Z.shape[1], Z.shape[1]))
    order = np.argsort(unit, kind="stable")
    bounds = np.searchsorted(unit[order], np.arange(nu + 1))
    for u in range(nu):
        r = order[bounds[u] : bounds[u + 1]]
        if len(r) == 0:
            continue
        zu, wu = Z[r], w[r]
        if demean:
            zu = zu - (wu @ zu) / wu.sum()
        out[u] = (zu * wu[:, None]).T @ zu
    return out


def _period_dummies(t: np.ndarray) -> np.ndarray:
    t = np.unique(t, return_inverse=True)[1]
    return (t[:, None] == np.arange(1, t.max() + 1)[None, :]).astype(float)


@dataclass
class _Lead:
    """The lead regression's data: child on its parents now (and before) and one period on."""

    y: np.ndarray
    w: np.ndarray
    X: np.ndarray  # the parents' current (and earlier) values
    L: np.ndarray  # the parents one period later
    unit: np.ndarray
    t: np.ndarray
    grain: str


@dataclass
class _Prepared:
    """One equation's data as arrays, ready to fit (rows with every value present)."""

    eq: Equation
    y: np.ndarray
    w: np.ndarray
    X: np.ndarray  # parents (lagged), then controls
    unit: np.ndarray  # unit codes (into the sorted unit list)
    t: np.ndarray
    lead: _Lead | None
    n_units: int
    #: per row, the sampling variance of each parent's cell mean (0: not sampled), or None
    noise: np.ndarray | None = None
    #: subtract the parents' expected sampling noise from the within regression
    #: (errors-in-variables; decided by :func:`fit_linkage`, see ``noise_share``)
    correct: bool = False
    stats: dict[str, np.ndarray] = field(init=False)  # per unit cross-products

    def __post_init__(self) -> None:
        # Every regression is solved from per-unit cross-product matrices (a bootstrap
        # replicate sums its drawn units' matrices); period effects enter as dummies.
        nu = self.n_units
        if len(self.y) <= self.X.shape[1] + 2:
            raise RoxError(
                f"Too few complete observations ({len(self.y)}) to estimate "
                f"{self.eq.child} on {', '.join(self.eq.parents)}.",
                file="engagement.yml",
                column=f"linkage.paths.{self.eq.child}",
                rule="each equation needs more unit-periods (with the parents' lags) than "
                "parameters",
                fix="Add periods or units, use a coarser grain, a lag of 0, or fewer parents.",
            )
        T = _period_dummies(self.t)
        self.stats = {
            "within": _unit_crossproducts(
                np.column_stack([self.X, T, self.y]), self.w, self.unit, nu, True
            )
        }
        if self.noise is not None and (self.noise > 0).any():
            # the expected sampling-noise sum of squares each unit adds to each parent's
            # diagonal after weighted demeaning within the unit: sum w v (1 - w / W), per
            # unit, so a replicate sums its drawn units' terms like the cross-products
            share = self.w / np.bincount(self.unit, self.w, nu)[self.unit]
            contrib = self.noise * (self.w * (1 - share))[:, None]
            self.stats["noise"] = np.column_stack(
                [np.bincount(self.unit, contrib[:, j], nu) for j in range(contrib.shape[1])]
            )
        if self.lead is not None:
            k = self.k
            X = self.X[:, :k]
            means = np.column_stack(
                [np.bincount(self.unit, self.w * X[:, j], nu) for j in range(k)]
            ) / np.bincount(self.unit, self.w, nu)[:, None].clip(min=1e-12)
            ones = np.ones((len(X), 1))
            self.stats["mundlak"] = _unit_crossproducts(
                np.column_stack([X, means[self.unit], T, ones, self.y]),
                self.w,
                self.unit,
                nu,
                False,
            )
            ld = self.lead
            if len(ld.y) > ld.X.shape[1] + self.k + 5:
                self.stats["lead"] = _unit_crossproducts(
                    np.column_stack([ld.X, ld.L, _period_dummies(ld.t), ld.y]),
                    ld.w,
                    ld.unit,
                    nu,
                    True,
                )

    @property
    def k(self) -> int:
        return len(self.eq.parents)

    def _summed(self, which: str, draw: np.ndarray | None) -> tuple:
        S = self.stats[which]
        S = S.sum(axis=0) if draw is None else S[draw].sum(axis=0)
        A, c = S[:-1, :-1], S[:-1, -1]
        # drop columns with no variation in this draw (a period no drawn unit reports)
        live = np.diag(A) > 1e-12 * max(1.0, np.abs(np.diag(A)).max())
        return A, c, live

    def _noise(self, draw: np.ndarray | None) -> np.ndarray:
        N = self.stats["noise"]
        return N.sum(axis=0) if draw is None else N[draw].sum(axis=0)

    def noise_share(self, draw: np.ndarray | None = None) -> float:
        """The largest share of the parents' within variation that is sampling noise.

        The parents' cross-products net of the period effects (their Schur complement) are
        ``S``; their expected noise ``N`` (diagonal). The largest generalized eigenvalue of
        ``(N, S)`` is one minus the parents' joint partial reliability: with one parent, the
        share of its two-way within variance that is noise; with correlated parents, the
        noise share of the worst-measured direction, which decides how unstable the
        corrected solve ``(S - N)^-1`` is (its condition number is at most that of ``S``
        divided by one minus the share). 0 without sampled parents, inf if undefined."""
        if "noise" not in self.stats:
            return 0.0
        A, _, live = self._summed("within", draw)
        k = self.k
        if not live[:k].all():
            return np.inf
        rest = np.flatnonzero(live[k:]) + k
        S = A[:k, :k] - A[:k, rest] @ np.linalg.pinv(A[np.ix_(rest, rest)]) @ A[rest, :k]
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            return np.inf
        Li = np.linalg.inv(L)
        M = Li @ np.diag(self._noise(draw)) @ Li.T
        return float(np.linalg.eigvalsh((M + M.T) / 2).max())

    def solve(self, which: str, draw: np.ndarray | None = None) -> np.ndarray:
        """Coefficients of a regression from the summed cross-products of ``draw``'s units."""
        A, c, live = self._summed(which, draw)
        if which == "within" and self.correct:
            # errors-in-variables: the parents' expected noise off their diagonal; a draw
            # in which the corrected matrix is not positive definite has no estimate
            if not self.noise_share(draw) < 1:
                raise np.linalg.LinAlgError("noise correction: matrix not positive definite")
            A = A.copy()
            A[np.arange(self.k), np.arange(self.k)] -= self._noise(draw)
        beta = np.zeros(len(c))
        beta[live] = np.linalg.lstsq(A[np.ix_(live, live)], c[live], rcond=None)[0]
        return beta

    def coefficients(self, draw: np.ndarray | None = None) -> dict[str, np.ndarray]:
        k = self.k
        out = {"beta": self.solve("within", draw)[:k]}
        if self.lead is not None:
            bm = self.solve("mundlak", draw)
            out["between"] = bm[:k] + bm[k : 2 * k]
            ld = self.lead
            width = ld.X.shape[1] + k
            out["lead"] = (
                self.solve("lead", draw)[ld.X.shape[1] : width]
                if "lead" in self.stats
                else np.full(k, np.nan)
            )
        return out


def _lead_data(
    cells: pd.DataFrame, eq: Equation, unit_index: dict[str, int], grain: str, fine: bool
) -> _Lead:
    """The lead test's rows: the child on its parents now and one period on (and, at the
    finer grain or for a lagged link, one period before), within units."""
    now = cells[eq.parents]
    before = [_with_lags(cells, eq.parents, 1)] if (fine or eq.lag >= 1) else []
    if eq.lag >= 1 and not fine:
        before = [_with_lags(cells, eq.parents, eq.lag)]
    X = pd.concat([*before, now], axis=1)
    L = _with_lags(cells, eq.parents, -1)
    ok = (
        cells[eq.child].notna()
        & cells[f"n__{eq.child}"].notna()
        & cells["unit_id"].isin(list(unit_index))
        & X.notna().all(axis=1)
        & L.notna().all(axis=1)
    ).to_numpy()
    return _Lead(
        y=cells[eq.child].to_numpy(float)[ok],
        w=cells[f"n__{eq.child}"].to_numpy(float)[ok],
        X=X.to_numpy(float)[ok],
        L=L.to_numpy(float)[ok],
        unit=cells["unit_id"].map(unit_index).to_numpy()[ok].astype(int),
        t=cells["t"].to_numpy(int)[ok],
        grain=grain,
    )


def _prepare(panel: Panel, eq: Equation, unit_index: dict[str, int]) -> _Prepared:
    nu = len(unit_index)
    if eq.level == "respondent":
        r = panel.respondents
        ctl = [f"ctl__{c}" for c in panel.controls]
        # parents from other tables enter as the context of the answer's unit and period
        own = [p for p in eq.parents if p in r.columns]
        ctx = [p for p in eq.parents if p not in r.columns]
        frame = r[["unit_id", "t", "weight", eq.child, *own, *ctl]]
        if ctx:
            frame = frame.merge(panel.cells[["unit_id", "t", *ctx]], on=["unit_id", "t"])
        frame = frame.dropna()
        return _Prepared(
            eq,
            y=frame[eq.child].to_numpy(float),
            w=frame["weight"].to_numpy(float),
            X=frame[[*eq.parents, *ctl]].to_numpy(float),
            unit=frame["unit_id"].map(unit_index).to_numpy(int),
            t=frame["t"].to_numpy(int),
            lead=None,
            n_units=nu,
        )
    cells = panel.cells
    lagged = _with_lags(cells, eq.parents, eq.lag)
    ok = (
        cells[eq.child].notna() & cells[f"n__{eq.child}"].notna() & lagged.notna().all(axis=1)
    ).to_numpy()
    fine = panel.lead_cells is not None and all(
        c in panel.lead_cells.columns for c in (eq.child, *eq.parents)
    )
    lead = (
        _lead_data(panel.lead_cells, eq, unit_index, panel.lead_grain, True)
        if fine
        else _lead_data(cells, eq, unit_index, panel.grain, False)
    )
    # the sampling variance of each (lagged) parent's cell mean, 0 where not sampled
    var_cols = [f"v__{p}" for p in eq.parents]
    noise = (
        _with_lags(cells.reindex(columns=["unit_id", "t", *var_cols]), var_cols, eq.lag)
        .to_numpy(float)[ok]
        .clip(min=0)
    )
    return _Prepared(
        eq,
        y=cells[eq.child].to_numpy(float)[ok],
        w=cells[f"n__{eq.child}"].to_numpy(float)[ok],
        X=lagged.to_numpy(float)[ok],
        unit=cells["unit_id"].map(unit_index).to_numpy(int)[ok],
        t=cells["t"].to_numpy(int)[ok],
        lead=lead,
        n_units=nu,
        noise=np.nan_to_num(noise, nan=0.0),
    )


def _fitted_values(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, unit, t
) -> tuple[np.ndarray, float]:
    """Fitted values of a two-way fixed-effects regression and the small-sample scale of
    its residuals, ``sqrt(n / (n - k))`` with ``k`` the rank of the design (regressors, unit
    and period dummies, intercept): for the wild bootstrap, whose residuals are otherwise
    too small by the degrees of freedom the fixed effects use up."""
    t = np.unique(t, return_inverse=True)[1]
    D = _design(X, unit, t)
    sw = np.sqrt(w)
    beta, _, rank, _ = np.linalg.lstsq(D * sw[:, None], y * sw, rcond=None)
    n = len(y)
    return D @ beta, float(np.sqrt(n / (n - rank))) if n > rank else 1.0


def _wild_replicate(p: _Prepared, fitted: tuple, v: np.ndarray) -> _Prepared:
    """The equation with residuals (scaled by ``sqrt(n / (n - k))``) flipped by each unit's
    wild weight ``v[unit]``."""
    (f, s), lead_fit = fitted
    lead = p.lead
    if lead is not None and lead_fit is not None:
        f_lead, s_lead = lead_fit
        lead = replace(lead, y=f_lead + (lead.y - f_lead) * s_lead * v[lead.unit])
    return replace(p, y=f + (p.y - f) * s * v[p.unit], lead=lead)


@dataclass
class LinkageModel:
    """A fitted linkage model; see :func:`fit_linkage`."""

    panel: Panel
    equations: list[Equation]
    edges: pd.DataFrame
    effects: pd.DataFrame
    draws: dict[str, np.ndarray]  # bootstrap draws: "B" (reps x m x m)
    names: list[str]
    B: np.ndarray
    bootstrap: str
    n_boot: int
    seed: int
    #: every bootstrap interval is stretched around its estimate by this factor (few units)
    small_sample_factor: float = 1.0

    def total_matrix(self, B: np.ndarray | None = None) -> np.ndarray:
        B = self.B if B is None else B
        return np.linalg.inv(np.eye(len(self.names)) - B) - np.eye(len(self.names))

    def parents_of(self, name: str) -> list[str]:
        return next((e.parents for e in self.equations if e.child == name), [])


def _evidence(eq: Equation) -> str:
    if eq.level == "respondent":
        return "respondent-level association within units"
    if eq.lag >= 1:
        return "lagged within-unit change"
    return "same-period within-unit change"


def _horizon(lags: list[int], grain: str) -> str:
    lo, hi = min(lags), max(lags)
    unit = {"quarter": "quarter", "month": "month", "year": "year"}[grain]

    def one(k: int) -> str:
        return "same " + unit if k == 0 else f"after {k} {unit}{'s' if k > 1 else ''}"

    return one(lo) if lo == hi else f"{one(lo)} to {one(hi)}"


def small_sample_factor(n_units: int, level: float = 0.95) -> float:
    """The few-clusters widening of a bootstrap interval over ``n_units`` units.

    ``sqrt(G / (G - 1)) * t_{q, G-1} / z_q`` with ``q = (1 + level) / 2``: the CR1
    small-sample scale of a cluster-robust variance times the ratio of the t critical
    value with ``G - 1`` degrees of freedom to the normal one (about 1.05 at 40 units, 1.10
    at 20, 1.22 at 10)."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    g = int(n_units)
    if g < 2:
        return np.nan
    q = (1 + level) / 2
    return float(np.sqrt(g / (g - 1)) * student_t.ppf(q, g - 1) / norm.ppf(q))


def _stretch(draws: np.ndarray, estimate, factor: float) -> np.ndarray:
    """Bootstrap draws stretched around their point estimate by ``factor``: every interval,
    standard error and p-value computed from them is widened by it (the one place the
    small-sample factor is applied)."""
    est = np.asarray(estimate, float)
    return est + factor * (np.asarray(draws, float) - est)


def _p_boot(draws: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value of zero (share of draws on the other side, doubled)."""
    d = draws[np.isfinite(draws).all(axis=1)] if draws.ndim == 2 else draws
    n = len(d)
    if n == 0:
        return np.full(draws.shape[1:], np.nan)
    lo = (d <= 0).mean(axis=0)
    hi = (d >= 0).mean(axis=0)
    return np.clip(2 * np.minimum(lo, hi), 1 / (n + 1), 1.0)


def fit_linkage(
    panel: Panel,
    config: EngagementConfig,
    *,
    paths: dict[str, list[str]] | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
    level: float = 0.95,
    correct_noise: str | bool | None = None,
) -> LinkageModel:
    """Fit every declared path and bootstrap the direct, indirect and total effects.

    ``correct_noise``: which sampled parents' cell means are corrected for their sampling
    noise (errors-in-variables, see the module notes) where the guard allows it:
    ``"guest_survey"`` (the default of ``linkage.correct_noise``: parents from the guest
    survey, whose few answers per cell are pure sampling noise around the unit's level),
    ``"all"`` (staff measures too), ``"none"``; True / False mean "all" / "none". Staff
    measures are left alone by default: their respondents are the people whose behaviour the
    child measures, so their own deviations from the unit's level are signal, not noise.
    """
    lk = config.linkage
    paths = paths or lk.paths or default_paths(config)
    n_boot = lk.n_boot if n_boot is None else n_boot
    seed = config.seed if seed is None else seed
    names = list(nx.topological_sort(nx.DiGraph((p, c) for c, ps in paths.items() for p in ps)))
    idx = {n: i for i, n in enumerate(names)}
    info = panel.measures.set_index("name")
    n_periods = len(panel.periods)
    equations = []
    for child, parents in paths.items():
        same_survey = info.loc[child, "level"] == "respondent" and any(
            info.loc[p, "level"] == "respondent" for p in parents
        )
        lag = 0 if same_survey else lk.lags.get(child, lk.default_lag if n_periods >= 3 else 0)
        equations.append(
            Equation(child, list(parents), "respondent" if same_survey else "unit", lag)
        )
    units = np.array(sorted(panel.cells["unit_id"].dropna().unique()))
    unit_index = {u: i for i, u in enumerate(units)}
    if len(units) < 3 or n_periods < 2:
        raise RoxError(
            f"The panel has {len(units)} unit(s) and {n_periods} period(s): too few to compare "
            "each unit with itself over time.",
            file="engagement.yml",
            column="linkage.grain",
            rule="the linkage model needs at least 3 units and 2 periods",
            fix="Provide more periods of data, or a finer grain (linkage.grain: month).",
        )
    prepared = [_prepare(panel, eq, unit_index) for eq in equations]
    m = len(names)

    def collect(results) -> np.ndarray:
        B = np.zeros((m, m))
        for p, r in zip(prepared, results, strict=True):
            for j, par in enumerate(p.eq.parents):
                B[idx[p.eq.child], idx[par]] = r["beta"][j]
        return B

    mode = lk.correct_noise if correct_noise is None else correct_noise
    mode = {True: "all", False: "none"}.get(mode, mode)
    if mode not in ("none", "guest_survey", "all"):
        raise ValueError("correct_noise must be 'none', 'guest_survey' or 'all'")
    if mode != "none":
        for p in prepared:
            if mode == "guest_survey" and p.noise is not None and "noise" in p.stats:
                guest = info.loc[p.eq.parents, "table"].isin(RESPONDENT_TABLES).to_numpy()
                # mask the noise itself (not only its sums): a wild replicate is rebuilt
                # from the fields, and the "corrected" label reads them too
                p.noise = p.noise * guest[None, :]
                p.__post_init__()
            p.correct = p.eq.level == "unit" and 0 < p.noise_share() <= NOISE_SHARE_MAX
    fits = [p.coefficients() for p in prepared]
    B = collect(fits)

    rng = np.random.default_rng(seed)
    wild = len(units) < WILD_BELOW
    boot_B = np.full((n_boot, m, m), np.nan)
    boot_between = [np.full((n_boot, p.k), np.nan) for p in prepared]
    boot_lead = [np.full((n_boot, p.k), np.nan) for p in prepared]
    fitted = (
        [
            (
                _fitted_values(p.X, p.y, p.w, p.unit, p.t),
                None
                if p.lead is None or "lead" not in p.stats
                else _fitted_values(
                    np.column_stack([p.lead.X, p.lead.L]), p.lead.y, p.lead.w, p.lead.unit, p.lead.t
                ),
            )
            for p in prepared
        ]
        if wild
        else []
    )
    for b in range(n_boot):
        results = []
        if wild:
            v = rng.choice(_WEBB, len(units))
            for p, f in zip(prepared, fitted, strict=True):
                try:
                    results.append(_wild_replicate(p, f, v).coefficients())
                except np.linalg.LinAlgError:
                    results.append({"beta": np.full(p.k, np.nan)})
        else:
            draw = rng.integers(0, len(units), len(units))
            for p in prepared:
                try:
                    results.append(p.coefficients(draw))
                except np.linalg.LinAlgError:
                    results.append({"beta": np.full(p.k, np.nan)})
        boot_B[b] = collect(results)
        for j, r in enumerate(results):
            if "between" in r:
                boot_between[j][b] = r["between"]
                boot_lead[j][b] = r["lead"]

    alpha = (1 - level) / 2
    ok = np.isfinite(boot_B).all(axis=(1, 2))
    draws_B = boot_B[ok]
    widen = small_sample_factor(len(units), level)
    rel = panel.reliability.set_index("measure")
    edge_rows = []
    for i_eq, (p, fit) in enumerate(zip(prepared, fits, strict=True)):
        eq = p.eq
        c = idx[eq.child]
        for j, par in enumerate(eq.parents):
            d = _stretch(draws_B[:, c, idx[par]], B[c, idx[par]], widen)
            row = {
                "child": eq.child,
                "parent": par,
                "child_label": info.loc[eq.child, "label"],
                "parent_label": info.loc[par, "label"],
                "level": eq.level,
                "lag": eq.lag,
                "estimate": B[c, idx[par]],
                "ci_low": np.quantile(d, alpha) if len(d) else np.nan,
                "ci_high": np.quantile(d, 1 - alpha) if len(d) else np.nan,
                "se": d.std(ddof=1) if len(d) > 1 else np.nan,
                "p": float(_p_boot(d[:, None])[0]) if len(d) else np.nan,
                "n_obs": len(p.y),
                "n_units": int(np.unique(p.unit).size),
                "evidence": _evidence(eq),
                "horizon": _horizon([eq.lag], panel.grain),
                "parent_reliability": rel.loc[par, "within_reliability"]
                if par in rel.index
                else np.nan,
                "noise_corrected": bool(p.correct and p.noise[:, j].any()),
            }
            if eq.level == "unit":
                bw = _stretch(boot_between[i_eq][ok, j], fit["between"][j], widen)
                ld = _stretch(boot_lead[i_eq][ok, j], fit["lead"][j], widen)
                row.update(
                    between=fit["between"][j],
                    between_ci_low=np.nanquantile(bw, alpha) if len(bw) else np.nan,
                    between_ci_high=np.nanquantile(bw, 1 - alpha) if len(bw) else np.nan,
                    lead=fit["lead"][j],
                    lead_grain=p.lead.grain,
                    lead_ci_low=np.nanquantile(ld, alpha) if np.isfinite(ld).any() else np.nan,
                    lead_ci_high=np.nanquantile(ld, 1 - alpha) if np.isfinite(ld).any() else np.nan,
                    lead_p=float(_p_boot(ld[np.isfinite(ld)][:, None])[0])
                    if np.isfinite(ld).any()
                    else np.nan,
                )
            edge_rows.append(row)
    edges = pd.DataFrame(edge_rows)
    # a joint (simultaneous) band over all links: the sup-t band from the same draws, for a
    # claim about the whole chain at once ("every link inside its band"); the draws are
    # stretched like the per-link ones, so the band is widened by the same factor
    cols = [(idx[e.child], idx[e.parent]) for e in edges.itertuples()]
    D = (
        np.stack([_stretch(draws_B[:, i, j], B[i, j], widen) for i, j in cols], axis=1)
        if len(draws_B)
        else None
    )
    if D is not None and len(D) > 10:
        est = edges["estimate"].to_numpy(float)
        se = edges["se"].to_numpy(float)
        se = np.where(se > 0, se, np.nan)
        crit = float(np.quantile(np.nanmax(np.abs(D - est) / se, axis=1), level))
        edges["joint_low"], edges["joint_high"] = est - crit * se, est + crit * se
        edges.attrs["joint_critical_value"] = crit  # in (widened) standard errors
    else:
        edges["joint_low"] = edges["joint_high"] = np.nan
    edges.attrs["small_sample_factor"] = widen
    if "lead_p" in edges:
        edges["lead_q"] = bh_qvalues(edges["lead_p"].to_numpy())
        edges["feedback_flag"] = edges["lead_q"] < 0.05
    else:
        edges["lead_q"], edges["feedback_flag"] = np.nan, False
    flags = []
    for r in edges.itertuples():
        f = []
        # a sampled parent's cell mean (guest survey answers, or employees: reliability over
        # persons) stands in for its unit-period value: noise attenuates the panel link
        noisy = np.isfinite(r.parent_reliability) and r.parent_reliability < lk.min_reliability
        if r.level == "unit" and noisy:
            if r.noise_corrected:
                consequence = "corrected for the noise"
            elif info.loc[r.parent, "table"] == "employees":
                # the people answering may be the people whose behaviour is the child: then
                # their own values, not a noisy reading of the unit's level, are the cause
                consequence = (
                    "effect attenuated (unless the respondents' own values, not their unit's "
                    "level, drive the child)"
                )
            else:
                consequence = "effect attenuated"
            f.append(
                f"parent means mostly noise (within-unit reliability {r.parent_reliability:.2f})"
                f": {consequence}"
            )
        if bool(getattr(r, "feedback_flag", False)):
            f.append(
                "lead test: the next period's parent predicts the child beyond its current "
                "value (a feedback from the child, or anticipation)"
            )
        flags.append("; ".join(f))
    edges["flags"] = flags
    model = LinkageModel(
        panel=panel,
        equations=equations,
        edges=edges,
        effects=pd.DataFrame(),
        draws={"B": draws_B},
        names=names,
        B=B,
        bootstrap="wild cluster (Webb weights)" if wild else "pairs cluster over units",
        n_boot=int(ok.sum()),
        seed=seed,
        small_sample_factor=widen,
    )
    model.effects = _effects_table(model, alpha)
    return model


def _effects_table(model: LinkageModel, alpha: float) -> pd.DataFrame:
    names = model.names
    T = model.total_matrix()
    draws_T = (
        np.stack([model.total_matrix(b) for b in model.draws["B"]])
        if len(model.draws["B"])
        else np.empty((0, len(names), len(names)))
    )
    draws_B = model.draws["B"]
    g = nx.DiGraph()
    lag_of = {(e.child, p): e.lag for e in model.equations for p in e.parents}
    g.add_edges_from((p, c) for c, p in lag_of)
    info = model.panel.measures.set_index("name")
    rows = []
    for a in names:
        for b in names:
            if a == b or not nx.has_path(g, a, b):
                continue
            i, j = names.index(b), names.index(a)
            lags = [
                sum(lag_of[(path[k + 1], path[k])] for k in range(len(path) - 1))
                for path in nx.all_simple_paths(g, a, b)
            ]
            c = model.small_sample_factor
            tot = _stretch(draws_T[:, i, j], T[i, j], c)
            ind = _stretch(draws_T[:, i, j] - draws_B[:, i, j], T[i, j] - model.B[i, j], c)

            def q(d, pr):
                return float(np.quantile(d, pr)) if len(d) else np.nan

            rows.append(
                {
                    "from": a,
                    "to": b,
                    "from_label": info.loc[a, "label"],
                    "to_label": info.loc[b, "label"],
                    "direct": model.B[i, j],
                    "indirect": T[i, j] - model.B[i, j],
                    "total": T[i, j],
                    "total_ci_low": q(tot, alpha),
                    "total_ci_high": q(tot, 1 - alpha),
                    "indirect_ci_low": q(ind, alpha),
                    "indirect_ci_high": q(ind, 1 - alpha),
                    "total_se": float(tot.std(ddof=1)) if len(tot) > 1 else np.nan,
                    "total_p": float(_p_boot(tot[:, None])[0]) if len(tot) else np.nan,
                    "n_paths": len(lags),
                    "horizon": _horizon(lags, model.panel.grain),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# What-if and hypotheses
# --------------------------------------------------------------------------------------
def what_if(
    model: LinkageModel,
    changes: dict[str, float],
    *,
    units: list[str] | None = None,
    level: float = 0.95,
    strict: bool = False,
) -> pd.DataFrame:
    """The predicted change in every downstream measure for a change in raw units.

    ``changes``: ``{"checkin_minutes": -2}`` (two minutes faster), ``{"pride": 0.3}``.
    ``units``: the units the change is made in (default: all); the range check compares
    their latest values plus the change with the range the panel has seen.

    A change that takes a unit outside the observed range, or that is larger than any
    within-unit change the panel has seen, is flagged as extrapolation (``strict=True``
    refuses it with a RoxError).
    """
    names = model.names
    unknown = [k for k in changes if k not in names]
    if unknown:
        raise RoxError(
            f"{unknown[0]!r} is not in the linkage model.",
            column="changes",
            rule=f"a what-if changes measures of the model: {', '.join(names)}",
            fix="Use one of the model's measure names.",
        )
    cells = model.panel.cells
    sel = cells if units is None else cells[cells["unit_id"].isin(units)]
    notes = []
    for k, delta in changes.items():
        col = cells[k].dropna()
        lo, hi = col.min(), col.max()
        latest = sel.dropna(subset=[k]).sort_values("t").groupby("unit_id")[k].last()
        new = latest + delta
        within = cells.dropna(subset=[k]).groupby("unit_id")[k].agg(lambda s: s.max() - s.min())
        outside = int(((new < lo) | (new > hi)).sum())
        if outside:
            notes.append(
                f"{k}: {outside} of {len(latest)} units would leave the observed range "
                f"{lo:.3g} to {hi:.3g}"
            )
        if abs(delta) > within.max():
            notes.append(
                f"{k}: a change of {delta:+.3g} is larger than any within-unit change seen "
                f"({within.max():.3g})"
            )
    if notes and strict:
        raise RoxError(
            "The what-if leaves the range of the data: " + "; ".join(notes) + ".",
            column=", ".join(changes),
            rule="predictions hold within the range the model was estimated on",
            fix="Ask for a smaller change, or accept the extrapolation with strict=False.",
        )
    vec = np.zeros(len(names))
    for k, v in changes.items():
        vec[names.index(k)] = v
    T = model.total_matrix()
    point = T @ vec
    draws = (
        _stretch(
            np.stack([model.total_matrix(b) @ vec for b in model.draws["B"]]),
            point,
            model.small_sample_factor,
        )
        if len(model.draws["B"])
        else np.full((1, len(names)), np.nan)
    )
    alpha = (1 - level) / 2
    info = model.panel.measures.set_index("name")
    rows = []
    g = nx.DiGraph((p, e.child) for e in model.equations for p in e.parents)
    reached = set().union(*(nx.descendants(g, k) for k in changes))
    for i, n in enumerate(names):
        if n in changes or n not in reached:
            continue
        rows.append(
            {
                "measure": n,
                "label": info.loc[n, "label"],
                "element": info.loc[n, "element"],
                "change": point[i],
                "ci_low": np.quantile(draws[:, i], alpha),
                "ci_high": np.quantile(draws[:, i], 1 - alpha),
                "extrapolation": bool(notes),
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["notes"] = notes
    out.attrs["changes"] = dict(changes)
    return out


def test_hypotheses(
    model: LinkageModel,
    hypotheses,
    *,
    config: EngagementConfig | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Each hypothesis tested as the effect of its first measure on its last.

    Supported when the interval excludes zero in the claimed direction, contradicted when it
    excludes zero in the other, inconclusive otherwise -- with the smallest effect the data
    could have detected (80% power, two-sided 5%: 2.8 bootstrap standard errors).
    """
    eff = model.effects.set_index(["from", "to"]) if len(model.effects) else None
    rows = []
    for h in hypotheses:
        a, b = h.measures[0], h.measures[-1]
        row = {"id": h.id, "statement": h.statement, "from": a, "to": b}
        if eff is None or (a, b) not in eff.index:
            row.update(
                verdict="not testable",
                detail=f"the model has no path from {a} to {b}; add one to linkage.paths",
            )
            rows.append(row)
            continue
        e = eff.loc[(a, b)]
        lo, hi, est = e["total_ci_low"], e["total_ci_high"], e["total"]
        mde = 2.8 * e["total_se"]
        sign = h.expected_sign
        if lo > 0 or hi < 0:
            found = "+" if lo > 0 else "-"
            if sign is None:
                verdict = "supported"
            else:
                verdict = "supported" if found == sign else "contradicted"
        else:
            verdict = "inconclusive"
        row.update(
            effect=est,
            ci_low=lo,
            ci_high=hi,
            p=e["total_p"],
            horizon=e["horizon"],
            expected_sign=sign or "",
            verdict=verdict,
            min_detectable=mde,
            detail=(
                f"smallest effect detectable with these data: {mde:.3g}"
                if verdict == "inconclusive"
                else ""
            ),
        )
        rows.append(row)
    cols = ["id", "statement", "from", "to", "effect", "ci_low", "ci_high", "p", "horizon"]
    cols += ["expected_sign", "verdict", "min_detectable", "detail"]
    return pd.DataFrame(rows).reindex(columns=cols)


# --------------------------------------------------------------------------------------
# For the notebook and the report
# --------------------------------------------------------------------------------------
def scenario_what_ifs(model: LinkageModel, config: EngagementConfig) -> pd.DataFrame:
    """The what-ifs of ``linkage.what_if`` (or, when none are declared, the first measure of
    the chain raised by its median within-unit range), one block of rows per scenario.

    Columns: ``scenario``, then those of :func:`what_if`, and ``note`` (extrapolation notes).
    """
    scenarios = dict(config.linkage.what_if)
    if not scenarios:
        root = model.names[0]
        col = model.panel.cells.dropna(subset=[root]).groupby("unit_id")[root]
        step = float((col.max() - col.min()).median()) / 2
        if step > 0:
            label = model.panel.info(root)["label"]
            scenarios = {f"{label} up {step:.2g}": {root: step}}
    parts = []
    skipped = []
    for name, changes in scenarios.items():
        outside = [m for m in changes if m not in model.names]
        if outside:  # declared measures the model's paths do not include
            skipped.append(f"{name}: {', '.join(outside)} not in the linkage paths")
            continue
        w = what_if(model, changes)
        if len(w):
            parts.append(w.assign(scenario=name, note="; ".join(w.attrs["notes"])))
    cols = ["scenario", "measure", "label", "element", "change", "ci_low", "ci_high"]
    out = (
        pd.concat(parts, ignore_index=True)[[*cols, "extrapolation", "note"]]
        if parts
        else pd.DataFrame(columns=[*cols, "extrapolation", "note"])
    )
    out.attrs["skipped"] = skipped
    return out


def unit_profile(panel: Panel, measures: list[str]) -> pd.DataFrame:
    """Each unit's average of ``measures`` over the panel's periods (weighted by base), with
    its total base per measure: one row per unit, for the EX -> CX scatter views."""
    cells = panel.cells
    out = pd.DataFrame(index=pd.Index(sorted(cells["unit_id"].unique()), name="unit_id"))
    for m in measures:
        d = cells.dropna(subset=[m, f"n__{m}"])
        w = d[f"n__{m}"].astype(float)
        g = d.assign(_wx=d[m] * w, _w=w).groupby("unit_id")
        out[m] = g["_wx"].sum() / g["_w"].sum()
        out[f"n__{m}"] = g["_w"].sum()
    return out.reset_index()


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def linkage_findings(
    model: LinkageModel,
    hypotheses: pd.DataFrame,
    what_ifs: pd.DataFrame,
    *,
    influencers=None,
    loyalty: pd.DataFrame | None = None,
    step: str = "04",
    charts: Mapping[str, str] | None = None,
) -> list:
    """Findings of the linkage step: the chain's strongest total effects on the results,
    the what-ifs, the hypotheses, the influencers (an
    :class:`~rox_helpers.influencers.InfluencerSummary`), the loyalty economics (from
    :func:`rox_helpers.loyalty.value_per_point`) and the caveats (feedback, noisy
    measures).

    ``charts``: the notebook's chart reference (:attr:`~rox_helpers.artifacts.Finding.chart`)
    for each kind of finding that has one, by kind: ``chain``, ``what_ifs`` (one finding
    per scenario, ``{k}`` its position in ``what_ifs``), ``hypotheses``, ``influencers``,
    ``loyalty``, ``caveats`` (see :func:`~rox_helpers.artifacts.chart_namer`)."""
    from rox_helpers.artifacts import Finding, chart_namer, interval_fields, interval_text

    chart = chart_namer(
        charts, ("chain", "what_ifs", "hypotheses", "influencers", "loyalty", "caveats")
    )
    cells = model.panel.cells
    panel_base = (
        f"{cells['unit_id'].nunique():,} hotels over {len(model.panel.periods):,} "
        f"periods ({model.panel.grain}), {len(cells):,} hotel-periods"
    )

    out = []
    eff = model.effects
    info = model.panel.measures.set_index("name")
    results = set(info.index[info["element"] == "results"])
    roots = [n for n in model.names if not model.parents_of(n)]
    chain = eff[eff["from"].isin(roots) & eff["to"].isin(results)]
    sig = chain[(chain["total_ci_low"] > 0) | (chain["total_ci_high"] < 0)]
    if len(chain):
        lead = (sig if len(sig) else chain).iloc[0]
        out.append(
            Finding(
                step=step,
                headline=(
                    f"{len(sig)} of {len(chain)} links from the start of the chain to the "
                    "results are clear of zero"
                ),
                evidence=[
                    f"{r.from_label} -> {r.to_label}: {_fmt(r.total)} per unit of "
                    f"{r.from_label} (95% CI {_fmt(r.total_ci_low)} to {_fmt(r.total_ci_high)}; "
                    f"{r.horizon})"
                    for r in chain.itertuples()
                ],
                so_what="These totals run through every hypothesised path; they are what the "
                "business case may quote, with the horizon stated.",
                confidence="high" if len(sig) == len(chain) else "medium",
                chart=chart("chain"),
                evidence_kind="within_unit",
                base=panel_base,
                interval=interval_text(
                    lead["total_ci_low"],
                    lead["total_ci_high"],
                    _fmt,
                    of=f"{lead['from_label']} -> {lead['to_label']}",
                ),
            )
        )
    for k, (name, g) in enumerate(what_ifs.groupby("scenario", sort=False), start=1):
        res = g[g["element"] == "results"]
        show = res if len(res) else g
        first = show.iloc[0]
        out.append(
            Finding(
                step=step,
                headline=f"What if: {name}",
                evidence=[
                    f"{r.label}: {_fmt(r.change)} (95% CI {_fmt(r.ci_low)} to {_fmt(r.ci_high)})"
                    for r in show.itertuples()
                ]
                + ([f"extrapolation: {g['note'].iloc[0]}"] if g["extrapolation"].any() else []),
                so_what="A linear prediction within the range the hotels have seen; "
                "outside it, treat it as indicative.",
                confidence="low" if g["extrapolation"].any() else "medium",
                chart=chart("what_ifs", k),
                evidence_kind="scenario",
                base=panel_base,
                interval=interval_text(
                    first["ci_low"], first["ci_high"], _fmt, of=f"change in {first['label']}"
                ),
            )
        )
    if len(hypotheses):
        counts = hypotheses["verdict"].value_counts()
        with_ci = hypotheses.dropna(subset=["ci_low", "ci_high"]) if "ci_low" in hypotheses else []
        top = with_ci.iloc[0] if len(with_ci) else pd.Series(dtype=object)
        out.append(
            Finding(
                step=step,
                headline=", ".join(f"{n} {v}" for v, n in counts.items())
                + f" of {len(hypotheses)} hypotheses",
                evidence=[
                    f"{r.id} {r.statement.rstrip('.')}: {r.verdict}"
                    + (
                        f" ({_fmt(r.effect)}, 95% CI {_fmt(r.ci_low)} to {_fmt(r.ci_high)})"
                        if pd.notna(getattr(r, "effect", np.nan))
                        else ""
                    )
                    + (f"; {r.detail}" if getattr(r, "detail", "") else "")
                    for r in hypotheses.itertuples()
                ],
                so_what="Inconclusive is not 'no effect': the detail gives the smallest "
                "effect these data could have detected.",
                confidence="medium",
                chart=chart("hypotheses"),
                evidence_kind="within_unit",
                base=panel_base,
                **interval_fields(
                    top.get("ci_low"),
                    top.get("ci_high"),
                    _fmt,
                    of=f"{top.get('id')}, the first hypothesis with an estimate",
                    otherwise="no hypothesis could be estimated on these data",
                ),
            )
        )
    if influencers is not None:
        out.append(
            Finding(
                step=step,
                headline=influencers.headline(),
                evidence=[influencers.rule, *influencers.notes],
                so_what="Change travels through these people: involve them in any pride or "
                "service programme, whatever their grade.",
                confidence="medium",
                chart=chart("influencers"),
                evidence_kind="count",
                base=f"{int(influencers.by_group.set_index('group').loc['all', 'n_staff']):,} "
                "staff",
                no_interval="every nomination of the staff network counted, not a sample; who "
                "counts as an influencer follows the stated rule",
            )
        )
    if loyalty is not None and len(loyalty):
        shown = loyalty[~loyalty["suppressed"].astype(bool)]
        n_ans, n_people = loyalty.attrs.get("n"), loyalty.attrs.get("n_people")
        lead = shown.dropna(subset=["ci_low", "ci_high"])
        top = lead.iloc[0] if len(lead) else pd.Series(dtype=object)
        out.append(
            Finding(
                step=step,
                headline="What guests did after answering puts a value on the experience",
                evidence=[
                    f"{r.description}, {r.outcome}: {_fmt(r.per_customer)} per guest over "
                    f"{r.horizon_months} months (95% CI {_fmt(r.ci_low)} to {_fmt(r.ci_high)})"
                    for r in shown.itertuples()
                ],
                so_what="These per-guest values, adjusted for earlier behaviour, feed the "
                "business case; they are observational, not randomised.",
                confidence="medium",
                chart=chart("loyalty"),
                evidence_kind="association",
                base=(
                    f"{n_people:,} guests ({n_ans:,} answers) followed up for "
                    f"{int(loyalty['horizon_months'].iloc[0])} months"
                    if n_people and n_ans
                    else f"{len(shown):,} changes valued"
                ),
                **interval_fields(
                    top.get("ci_low"),
                    top.get("ci_high"),
                    _fmt,
                    of=f"{top.get('description')}, {top.get('outcome')} per guest",
                    otherwise="every value is suppressed: the base is too small",
                ),
            )
        )
    e = model.edges
    caveats = [f"{r.child_label} <- {r.parent_label}: {r.flags}" for r in e.itertuples() if r.flags]
    out.append(
        Finding(
            step=step,
            headline=(
                f"Every link is estimated within hotels over time ({model.n_boot} bootstrap "
                f"replicates, {model.bootstrap})"
                + (f"; {len(caveats)} carry a caveat" if caveats else "; no link is flagged")
            ),
            evidence=[f"{n} links on {ev}" for ev, n in e["evidence"].value_counts().items()]
            + caveats,
            so_what="Within-unit evidence rules out fixed differences between hotels, not "
            "every confounder: these are well-founded associations, not experiments.",
            confidence="medium",
            chart=chart("caveats"),
            evidence_kind="count",
            base=f"{len(e):,} links, {model.n_boot:,} bootstrap replicates",
            no_interval="a count of the model's links and of the checks they fail; each "
            "link's interval is in its own finding and table",
        )
    )
    return out
