"""Every chart of the workbook: one function per chart, taking a result and ``ax=None``,
returning the matplotlib ``Axes``, in the client's palette."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from rox_helpers.config import ELEMENTS, Colours


def palette(colours: Colours | None = None) -> list[str]:
    c = colours or Colours()
    return [c.primary, c.secondary, c.accent, c.neutral]


def _ax(ax, size=(7, 3.2)):
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def element_coverage(summary: pd.DataFrame, *, colours: Colours | None = None, ax=None):
    """Measures configured vs available per ROX element (from ``framework.element_summary``)."""
    ax = _ax(ax)
    pal = palette(colours)
    d = summary.set_index("element").reindex(list(ELEMENTS)).fillna(0)
    y = range(len(d))
    ax.barh(list(y), d["configured"], color="#dddddd", label="configured")
    ax.barh(list(y), d["available"], color=pal[0], label="available in the data")
    ax.set_yticks(list(y), [e.capitalize() for e in d.index])
    ax.invert_yaxis()
    ax.set_xlabel("measures")
    ax.set_title("ROX elements: measures configured and available")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)
    sns.despine(ax=ax)
    return ax


def quarantine_reasons(reasons: pd.DataFrame, *, colours: Colours | None = None, ax=None, top=12):
    """Rows quarantined by table and rule (from ``EngagementData.quarantine_reasons``)."""
    ax = _ax(ax, size=(7, 0.4 * min(top, max(len(reasons), 1)) + 1.2))
    if reasons.empty:
        ax.text(0.5, 0.5, "No rows quarantined", ha="center", va="center")
        ax.set_axis_off()
        return ax
    d = reasons.sort_values("rows", ascending=False).head(top)
    labels = d["table"] + ": " + d["reason"].str.slice(0, 60)
    ax.barh(labels, d["rows"], color=palette(colours)[1])
    ax.invert_yaxis()
    ax.set_xlabel("rows quarantined")
    ax.set_title("Data quality: rows set aside, by rule")
    sns.despine(ax=ax)
    return ax


def metric_by_group(
    table: pd.DataFrame, group: str, *, colours=None, ax=None, title="", chronological=False
):
    """A metric per group with its interval (from ``tables.metric_table``); hidden groups
    are left out, indicative ones drawn hollow. Periods keep their order
    (``chronological=True``); other groups are sorted by score."""
    shown = table[~table["suppressed"] & (table[group] != "All")]
    shown = shown.sort_values(group if chronological else "estimate")
    ax = _ax(ax, size=(7, 0.35 * max(len(shown), 3) + 1.2))
    pal = palette(colours)
    y = np.arange(len(shown))
    err = [shown["estimate"] - shown["ci_low"], shown["ci_high"] - shown["estimate"]]
    ax.errorbar(shown["estimate"], y, xerr=err, fmt="none", ecolor="#999999", capsize=3)
    reliable = shown["reliable"].to_numpy(bool)
    ax.scatter(shown["estimate"][reliable], y[reliable], color=pal[0])
    ax.scatter(
        shown["estimate"][~reliable],
        y[~reliable],
        facecolors="white",
        edgecolors=pal[0],
        label="indicative (low base)",
    )
    total = table[table[group] == "All"]
    if len(total) and not bool(total["suppressed"].iloc[0]):
        ax.axvline(float(total["estimate"].iloc[0]), color=pal[2], ls="--", lw=1, label="all")
    labels = shown[group].astype("str")
    if "significant" in shown:  # different from the rest after BH: marked with a star
        labels = labels + np.where(shown["significant"].fillna(False).astype(bool), " *", "")
        title = f"{title}  (* differs from the rest, BH-adjusted)" if title else title
    ax.set_yticks(y, labels)
    ax.set_title(title)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    sns.despine(ax=ax)
    return ax


def league(table: pd.DataFrame, *, unit: str = "unit_id", colours=None, ax=None, title=""):
    """Units ranked on their shrunk score, raw score beside it, target line if any (units
    under the anonymity floor are not drawn)."""
    d = table[~table.get("suppressed", False)].sort_values("shrunk")
    ax = _ax(ax, size=(7, 0.22 * len(d) + 1.2))
    pal = palette(colours)
    y = np.arange(len(d))
    status_colour = {"green": "#2e8b57", "amber": "#e0a100", "red": "#c0392b"}
    colours_ = [status_colour.get(s, pal[0]) for s in d.get("status", [None] * len(d))]
    ax.barh(y, d["shrunk"], color=colours_, alpha=0.85, label="score (shrunk to chain)")
    ax.scatter(d["estimate"], y, color="black", s=10, zorder=3, label="raw score")
    if "target" in d:
        ax.axvline(float(d["target"].iloc[0]), color="black", ls=":", lw=1, label="target")
    ax.set_yticks(y, d[unit].astype("str"), fontsize=7)
    ax.set_title(title)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    sns.despine(ax=ax)
    return ax


def survival(curves: pd.DataFrame, *, colours=None, ax=None, title=""):
    """Kaplan-Meier share still employed by month, one line per group."""
    ax = _ax(ax)
    for group, g in curves.groupby("group"):
        ax.step(g["month"], g["staying"], where="post", label=str(group))
        ax.fill_between(g["month"], g["ci_low"], g["ci_high"], step="post", alpha=0.15)
    ax.set_xlabel("months since first observed")
    ax.set_ylabel("share still employed")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    sns.despine(ax=ax)
    return ax


def scorecard_heatmap(elements: pd.DataFrame, period: str, *, ax=None, title=""):
    """Units x elements, 0-100 index for one period (50 = baseline chain average)."""
    d = elements[elements["period"] == period].pivot(
        index="unit_id", columns="element", values="index"
    )
    d = d[[c for c in ELEMENTS if c in d.columns]]
    ax = _ax(ax, size=(7, 0.22 * len(d) + 1.5))
    sns.heatmap(d, ax=ax, cmap="RdYlGn", vmin=20, vmax=80, center=50, cbar_kws={"label": "index"})
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(title or f"ROX scorecard, {period} (50 = baseline chain average)")
    return ax


def scorecard_trend(elements: pd.DataFrame, *, ax=None, title=""):
    """Chain average index per element over periods."""
    d = elements.groupby(["period", "element"])["index"].mean().unstack()
    d = d[[c for c in ELEMENTS if c in d.columns]]
    ax = _ax(ax)
    for col in d.columns:
        ax.plot(d.index, d[col], marker="o", label=col)
    ax.axhline(50, color="#999999", lw=1, ls=":")
    ax.set_ylabel("index (chain average)")
    ax.tick_params(axis="x", rotation=45)
    ax.set_title(title or "ROX elements over time")
    ax.legend(frameon=False, fontsize=8)
    sns.despine(ax=ax)
    return ax


def turnover_vs_pride(units: pd.DataFrame, *, colours=None, ax=None, title=""):
    """Each unit's monthly leaving rate against its mean pride (from ``ex.turnover_by_unit``),
    with a least-squares line."""
    ax = _ax(ax, size=(6, 4))
    pal = palette(colours)
    x, y = units["pride"].to_numpy(float), 100 * units["monthly_leaving_rate"].to_numpy(float)
    ax.scatter(x, y, color=pal[0], s=18 + units["n_people"] / 4, alpha=0.8)
    if len(units) >= 3:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.linspace(x.min(), x.max(), 20)
        ax.plot(xs, intercept + slope * xs, color=pal[2], lw=1.5)
    ax.set_xlabel("mean pride (1-7)")
    ax.set_ylabel("monthly leaving rate, %")
    ax.set_title(title)
    sns.despine(ax=ax)
    return ax


def _short(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 1000 else f"{x:,.0f}"


def _chain_layout(edges: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Layers by longest path from the start of the chain; within a layer, measures ordered
    by the mean height of their parents (a barycentre pass), to keep crossings few."""
    parents: dict[str, list[str]] = {}
    for r in edges.itertuples():
        parents.setdefault(r.child, []).append(r.parent)
        parents.setdefault(r.parent, [])
    depth: dict[str, int] = {}

    def level(n: str) -> int:
        if n not in depth:
            depth[n] = 1 + max((level(p) for p in parents[n]), default=-1)
        return depth[n]

    layers: dict[int, list[str]] = {}
    for n in sorted(parents):
        layers.setdefault(level(n), []).append(n)
    y: dict[str, float] = {}
    for d in sorted(layers):
        names = layers[d]
        if d > 0:
            names = sorted(names, key=lambda n: -np.mean([y[p] for p in parents[n]]))
        for k, n in enumerate(names):
            y[n] = (len(names) - 1) / 2 - k
    return {n: (float(depth[n]), y[n]) for n in parents}


def linkage_chain(edges: pd.DataFrame, measures: pd.DataFrame, *, colours=None, ax=None, title=""):
    """The linkage model as a diagram: measures from the start of the chain (left) to the
    results (right), coloured by ROX element, an arrow per link labelled with its effect and
    95% interval (grey when the interval spans zero).

    ``edges``: :attr:`LinkageModel.edges`; ``measures``: ``panel.measures``."""
    c = colours or Colours()
    pos = _chain_layout(edges)
    info = measures.set_index("name")
    n_layers = int(max(x for x, _ in pos.values())) + 1
    height = max(sum(1 for x, _ in pos.values() if x == k) for k in range(n_layers))
    ax = _ax(ax, size=(2.4 * n_layers + 1, 0.85 * height + 1.8))
    el_colour = dict(zip(ELEMENTS, sns.color_palette("pastel", len(ELEMENTS)), strict=True))
    for r in edges.itertuples():
        (x0, y0), (x1, y1) = pos[r.parent], pos[r.child]
        clear = r.ci_low > 0 or r.ci_high < 0
        colour = (c.primary if r.estimate > 0 else c.accent) if clear else "#b0b0b0"
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "lw": 1.8 if clear else 1.0,
                "shrinkA": 24,
                "shrinkB": 24,
            },
        )
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            f"{_short(r.estimate)} [{_short(r.ci_low)}, {_short(r.ci_high)}]",
            fontsize=6.5,
            color=colour if clear else "#707070",
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9},
        )
    for n, (x, y) in pos.items():
        el = info.loc[n, "element"] if n in info.index else None
        ax.text(
            x,
            y,
            "\n".join(_wrap(str(info.loc[n, "label"]) if n in info.index else n, 18)),
            fontsize=7.5,
            ha="center",
            va="center",
            bbox={
                "boxstyle": "round,pad=0.35",
                "fc": el_colour.get(el, "#f4f4f4"),
                "ec": c.neutral,
            },
        )
    used = [e for e in ELEMENTS if e in set(info.loc[info.index.isin(list(pos)), "element"])]
    handles = [plt.Rectangle((0, 0), 1, 1, fc=el_colour[e], ec=c.neutral) for e in used]
    ax.legend(
        handles,
        [e.capitalize() for e in used],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(used),
        frameon=False,
        fontsize=8,
    )
    ax.set_xlim(-0.6, n_layers - 0.4)
    ax.set_ylim(-height / 2, height / 2)
    ax.axis("off")
    ax.set_title(title)
    return ax


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [text]


def ex_cx_scatter(
    profile: pd.DataFrame,
    x: str,
    y: str,
    hue: str,
    *,
    labels: dict[str, str] | None = None,
    ax=None,
    title="",
):
    """Units as points: one EX measure against another, coloured by a CX or results measure
    (from :func:`rox_helpers.linkage.unit_profile`), with a least-squares line."""
    labels = labels or {}
    d = profile.dropna(subset=[x, y, hue])
    ax = _ax(ax, size=(6.2, 4.2))
    pts = ax.scatter(d[x], d[y], c=d[hue], cmap="viridis", s=40, edgecolor="white", lw=0.5)
    if len(d) >= 3:
        slope, intercept = np.polyfit(d[x].to_numpy(float), d[y].to_numpy(float), 1)
        xs = np.linspace(d[x].min(), d[x].max(), 20)
        ax.plot(xs, intercept + slope * xs, color="#707070", lw=1, ls="--")
    ax.figure.colorbar(pts, ax=ax, label=labels.get(hue, hue))
    ax.set_xlabel(labels.get(x, x))
    ax.set_ylabel(labels.get(y, y))
    ax.set_title(title)
    sns.despine(ax=ax)
    return ax


def what_if_results(what_ifs: pd.DataFrame, scenario: str, *, colours=None, title=""):
    """One scenario's predicted change in each downstream measure with its 95% interval, one
    small panel per measure (each in its own units)."""
    c = colours or Colours()
    d = what_ifs[what_ifs["scenario"] == scenario].reset_index(drop=True)
    fig, axes = plt.subplots(
        1, max(len(d), 1), figsize=(max(2.2 * len(d), 3), 2.4), layout="constrained"
    )
    axes = np.atleast_1d(axes)
    for a, r in zip(axes, d.itertuples(), strict=False):
        a.errorbar(
            [r.change],
            [0],
            xerr=[[max(r.change - r.ci_low, 0)], [max(r.ci_high - r.change, 0)]],
            fmt="o",
            color=c.accent if r.extrapolation else c.primary,
            capsize=3,
        )
        a.axvline(0, color="#b0b0b0", lw=0.8)
        a.set_yticks([])
        lim = np.nanmax([abs(r.ci_low), abs(r.ci_high), abs(r.change)]) * 1.3
        lim = lim if np.isfinite(lim) and lim > 0 else 1.0
        a.set_xlim(-lim, lim)
        a.set_title(f"{r.label}\n{_short(r.change)}", fontsize=8)
        a.tick_params(axis="x", labelsize=7)
        sns.despine(ax=a, left=True)
    fig.suptitle(title or scenario, fontsize=10)
    return axes


def loyalty_by_group(table: pd.DataFrame, outcome: str = "stays", *, colours=None, ax=None):
    """Adjusted later stays (or revenue, retention) per NPS group with 95% intervals (from
    :func:`rox_helpers.loyalty.loyalty_by_nps_group`)."""
    pal = palette(colours)
    groups = ["detractor", "passive", "promoter"]
    d = table[(table["outcome"] == outcome) & table["nps_group"].isin(groups)]
    d = d.set_index("nps_group").reindex(groups).dropna(subset=["adjusted"])
    ax = _ax(ax, size=(5, 3))
    ax.bar(d.index, d["adjusted"], color=[pal[2], pal[3], pal[0]][: len(d)], alpha=0.9)
    ax.errorbar(
        d.index,
        d["adjusted"],
        yerr=np.vstack([d["adjusted"] - d["ci_low"], d["ci_high"] - d["adjusted"]]).clip(min=0),
        fmt="none",
        color="black",
        capsize=3,
    )
    h = int(d["horizon_months"].iloc[0]) if len(d) else 0
    ax.set_ylabel(f"{outcome} in the next {h} months")
    ax.set_title(f"What guests did after answering: {outcome} (adjusted for prior behaviour)")
    sns.despine(ax=ax)
    return ax


def _att_label(driver: str, labels: dict[str, str] | None) -> str:
    if labels and driver in labels:
        return labels[driver]
    return driver.removeprefix("att_").replace("_", " ").capitalize()


def importance_performance_matrix(
    ipa: pd.DataFrame, *, labels=None, colours=None, ax=None, title=""
):
    """Importance-performance matrix (from ``drivers.importance_performance``): one point per
    driver with its intervals, the cut-points as lines, the four quadrants named."""
    c = colours or Colours()
    ax = _ax(ax, size=(7, 5))
    quad_colour = {
        "fix first": c.accent,
        "keep up": c.primary,
        "possible overkill": c.secondary,
        "low priority": c.neutral,
    }
    for r in ipa.itertuples():
        col = quad_colour[r.quadrant]
        if np.isfinite(r.importance_ci_low):
            ax.plot([r.importance_ci_low, r.importance_ci_high], [r.performance] * 2,
                    color=col, lw=0.8, alpha=0.6)  # fmt: skip
        ax.plot([r.importance] * 2, [r.performance_ci_low, r.performance_ci_high],
                color=col, lw=0.8, alpha=0.6)  # fmt: skip
        ax.scatter(r.importance, r.performance, color=col, s=40, zorder=3)
        ax.annotate(_att_label(r.driver, labels), (r.importance, r.performance),
                    xytext=(4, 4), textcoords="offset points", fontsize=8)  # fmt: skip
    icut, pcut = ipa["importance_cut"].iloc[0], ipa["performance_cut"].iloc[0]
    ax.axvline(icut, color="#999999", lw=0.8, ls="--")
    ax.axhline(pcut, color="#999999", lw=0.8, ls="--")
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    corners = {
        "fix first": (x1, y0, "right", "bottom"),
        "keep up": (x1, y1, "right", "top"),
        "possible overkill": (x0, y1, "left", "top"),
        "low priority": (x0, y0, "left", "bottom"),
    }
    for name, (x, y, ha, va) in corners.items():
        ax.text(x, y, name.upper(), ha=ha, va=va, fontsize=8, color=quad_colour[name],
                fontweight="bold", alpha=0.8)  # fmt: skip
    ax.set_xlabel("importance (share of explained variation)")
    measure = ipa["performance_measure"].iloc[0]
    ax.set_ylabel("performance (mean rating)" if measure == "mean" else f"performance ({measure})")
    ax.set_title(title or "Importance and performance")
    sns.despine(ax=ax)
    return ax


def kano_chart(kano: pd.DataFrame, *, labels=None, colours=None, ax=None, title=""):
    """Penalty against reward per rating point (from ``drivers.penalty_reward`` or
    ``kano_classification``), coloured by Kano class; the diagonal is symmetry."""
    c = colours or Colours()
    ax = _ax(ax, size=(6, 5))
    cls_colour = {
        "basic": c.accent,
        "performance": c.primary,
        "delighter": c.secondary,
        "low impact": c.neutral,
        "insufficient base": "#cccccc",
    }
    for cls, part in kano.groupby("kano_class", sort=False):
        ax.scatter(part["penalty_per_point"], part["reward_per_point"], s=40,
                   color=cls_colour.get(cls, c.neutral), label=cls, zorder=3)  # fmt: skip
        for r in part.itertuples():
            text = _att_label(r.driver, labels) + (
                " *" if getattr(r, "magic_moment", False) else ""
            )
            ax.annotate(text, (r.penalty_per_point, r.reward_per_point), xytext=(4, 4),
                        textcoords="offset points", fontsize=8)  # fmt: skip
    hi = float(np.nanmax(kano[["penalty_per_point", "reward_per_point"]].to_numpy())) * 1.1
    lo = min(0.0, float(np.nanmin(kano[["penalty_per_point", "reward_per_point"]].to_numpy())))
    ax.plot([lo, hi], [lo, hi], color="#999999", lw=0.8, ls="--")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("penalty per rating point (low ratings)")
    ax.set_ylabel("reward per rating point (high ratings)")
    ax.set_title(title or "Kano classes: penalty and reward per rating point")
    ax.legend(frameon=False, fontsize=8, loc="upper left", title="* magic moment", title_fontsize=8)
    sns.despine(ax=ax)
    return ax


def segment_drivers(comparison, *, labels=None, colours=None, ax=None, title=""):
    """Driver shares per segment side by side (from ``drivers.compare_segments``): a bar per
    segment with its interval; drivers whose shares differ significantly marked with *."""
    shares = comparison.shares
    segments = list(comparison.models)
    order = shares.groupby("driver", sort=False)["share"].mean().sort_values(ascending=True).index
    ax = _ax(ax, size=(7, 0.45 * len(order) * max(1, len(segments) / 2) + 1.2))
    pal = palette(colours)
    height = 0.8 / len(segments)
    sig = set(comparison.differences.loc[comparison.differences["significant"], "driver"])
    for k, seg in enumerate(segments):
        part = shares[shares["segment"] == seg].set_index("driver").loc[order]
        y = np.arange(len(order)) - (k - (len(segments) - 1) / 2) * height  # first on top
        err = np.vstack([part["share"] - part["ci_low"], part["ci_high"] - part["share"]])
        err = err.clip(min=0)  # a percentile interval may exclude the point estimate
        ax.barh(y, part["share"], height=height, color=pal[k % len(pal)], label=seg,
                xerr=err, error_kw={"lw": 0.8, "ecolor": "#555555"})  # fmt: skip
    ax.set_yticks(np.arange(len(order)),
                  [_att_label(d, labels) + (" *" if d in sig else "") for d in order])  # fmt: skip
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("share of explained variation (* differs significantly, BH)")
    ax.set_title(title or "Key drivers by segment")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    sns.despine(ax=ax)
    return ax


def driver_shape(shapes: pd.DataFrame, driver: str, *, outcome="NPS", labels=None,
                 colours=None, ax=None, title=""):  # fmt: skip
    """Shape of one driver (from ``drivers.nonlinearity(...).shapes``): the predicted outcome
    by rating level with its interval, against the straight line of the linear model."""
    c = colours or Colours()
    ax = _ax(ax, size=(6, 3.5))
    d = shapes[shapes["driver"] == driver].sort_values("level")
    ax.fill_between(d["level"], d["ci_low"], d["ci_high"], color=c.secondary, alpha=0.25, lw=0)
    ax.plot(d["level"], d["predicted"], marker="o", color=c.primary, label="by rating level")
    ax.plot(d["level"], d["linear"], color=c.neutral, ls="--", label="straight line")
    ax.set_xticks(d["level"])
    ax.set_xlabel(f"{_att_label(driver, labels)} rating")
    ax.set_ylabel(f"predicted {outcome}")
    ax.set_title(title or f"{_att_label(driver, labels)}: shape of the relation")
    ax.legend(frameon=False, fontsize=8)
    sns.despine(ax=ax)
    return ax


def driver_importance(importances: pd.DataFrame, *, labels=None, colours=None, ax=None, title=""):
    """Normalised driver shares with their 95% intervals, largest on top (from
    ``DriverModel.importances_``)."""
    c = colours or Colours()
    d = importances.sort_values("share")
    ax = _ax(ax, size=(7, 0.35 * len(d) + 1.2))
    err = None
    if d["ci_low"].notna().all():
        err = np.vstack([d["share"] - d["ci_low"], d["ci_high"] - d["share"]]).clip(min=0)
    ax.barh(
        [_att_label(x, labels) for x in d["driver"]],
        d["share"],
        color=c.primary,
        xerr=err,
        error_kw={"lw": 0.8, "ecolor": "#555555"},
    )
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("share of what the ratings explain (derived importance, not an effect)")
    ax.set_title(title or "Key drivers")
    sns.despine(ax=ax)
    return ax


def segment_map(projection: pd.DataFrame, names: dict[int, str] | None = None, *, ax=None):
    """Customers on the first two principal components, coloured by segment, with the segment
    centres marked (from ``BehaviouralSegmenter.projection``)."""
    names = names or {}
    ax = _ax(ax, size=(7, 5))
    pts = projection[~projection["is_centre"].astype(bool)]
    cen = projection[projection["is_centre"].astype(bool)]
    segs = sorted(projection["segment"].unique())
    pal = dict(zip(segs, sns.color_palette("tab10", len(segs)), strict=True))
    for s in segs:
        d = pts[pts["segment"] == s]
        ax.scatter(d["pc1"], d["pc2"], s=6, alpha=0.35, color=pal[s], label=names.get(s, s))
    ax.scatter(cen["pc1"], cen["pc2"], s=120, marker="X", color="black")
    ev = projection.attrs.get("explained_variance_ratio")
    if ev is not None and len(ev) >= 2:
        ax.set_xlabel(f"first component ({ev[0]:.0%} of the variation)")
        ax.set_ylabel(f"second component ({ev[1]:.0%})")
    ax.legend(frameon=False, fontsize=7, markerscale=3, loc="best")
    ax.set_title("Customers by behaviour: segments on the two main axes")
    sns.despine(ax=ax)
    return ax


def segment_heatmap(index: pd.DataFrame, *, ax=None, title=""):
    """Each segment's mean of each feature as an index (100 = the overall mean), from
    ``SegmentProfiles.heatmap()`` (segments as rows, features as columns)."""
    d = index.astype(float)
    ax = _ax(ax, size=(max(6, 0.55 * d.shape[1] + 2), 0.5 * d.shape[0] + 1.8))
    sns.heatmap(
        np.log2(d.clip(lower=1) / 100),
        ax=ax,
        cmap="RdBu_r",
        center=0,
        vmin=-2,
        vmax=2,
        annot=d.round(0),
        fmt=".0f",
        annot_kws={"fontsize": 7},
        cbar_kws={"label": "index (log scale; 100 = average)"},
    )
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.set_title(title or "Segment profiles: index against the average customer")
    return ax


# --- Journey (step 05) ---


def _label(text: object) -> str:
    return str(text).replace("_", " ")


def journey_map(jmap: pd.DataFrame, stages: list[str] | None = None, *, ax=None, title: str = ""):
    """Stages x channels (from ``journey.journey_map``): colour = the survey score there
    (grey where the base is too small), text = contacts and score."""
    stages = stages or list(dict.fromkeys(jmap["stage"]))
    chans = sorted(jmap["channel"].unique())
    contacts = jmap.pivot_table(index="channel", columns="stage", values="contacts", aggfunc="sum")
    contacts = contacts.reindex(index=chans, columns=stages)
    score = jmap.pivot_table(index="channel", columns="stage", values="score", aggfunc="mean")
    score = score.reindex(index=chans, columns=stages)
    name = str(jmap["score_name"].iloc[0]) if len(jmap) else "score"
    ax = _ax(ax, size=(max(7, 1.2 * len(stages) + 1.5), 0.7 * len(chans) + 1.6))
    cmap = plt.get_cmap("RdYlGn").copy()
    cmap.set_bad("#eeeeee")
    lim = np.nanmax(np.abs(score.to_numpy())) if np.isfinite(score.to_numpy()).any() else 1
    im = ax.imshow(
        np.ma.masked_invalid(score.to_numpy(dtype=float)),
        cmap=cmap,
        vmin=-lim if name == "nps" else None,
        vmax=lim if name == "nps" else None,
        aspect="auto",
    )
    for i in range(len(chans)):
        for j in range(len(stages)):
            n = contacts.iat[i, j]
            if not np.isfinite(n) or n == 0:
                continue
            s = score.iat[i, j]
            txt = f"{int(n):,}" + (f"\n{name.upper()} {s:.0f}" if np.isfinite(s) else "")
            ax.text(j, i, txt, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(stages)), [_label(s) for s in stages], rotation=30, ha="right")
    ax.set_yticks(range(len(chans)), [_label(c) for c in chans])
    plt.colorbar(im, ax=ax, label=f"{name.upper()} of responses at these touchpoints")
    ax.set_title(title or "Journey map: contacts by stage and channel, and how guests rate them")
    return ax


def journey_funnel(funnel: pd.DataFrame, *, colours=None, ax=None, title: str = ""):
    """The funnel (from ``journey.funnel`` for one group): share of entrants still in at each
    stage, with the drop-off and its 95% interval written beside each stage."""
    pal = palette(colours)
    f = funnel.reset_index(drop=True)
    ax = _ax(ax, size=(7.5, 0.45 * len(f) + 1.4))
    y = np.arange(len(f))
    colour = np.where(f["is_leak_stage"], pal[0], pal[3])
    ax.barh(y, f["share_reaching"], color=colour)
    for i, r in f.iterrows():
        if np.isfinite(r["drop_rate"]) and r["stopped"] > 0:
            ax.text(
                r["share_reaching"] + 0.01,
                i,
                f"{r['drop_rate']:.1%} stop here ({r['ci_low']:.1%}-{r['ci_high']:.1%}); "
                f"n = {int(r['reached']):,}",
                va="center",
                fontsize=7,
            )
    ax.set_yticks(y, [_label(s) for s in f["stage"]])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.6)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("share of journeys still in the funnel (grey: after the goal)")
    ax.set_title(title or "Journey funnel: where guests drop out")
    sns.despine(ax=ax)
    return ax


_CONTRAST_LABEL = {
    "very_good": "very good",
    "bad": "bad",
    "slow": "slowest tenth",
    "fast": "fastest tenth",
    "failed": "dead end",
    "channel_switch": "switched channel",
}


def journey_moments(
    moments: pd.DataFrame, *, colours=None, ax=None, title: str = "", max_rows: int = 30
):
    """Magic moments and pain points (from ``journey.moment_effects`` and, with ``source``,
    ``journey.log_moment_effects``): the adjusted difference in the return rate after a
    very good or a bad experience at each touchpoint, with 95% intervals; coloured when
    significant after Benjamini-Hochberg; squares are signals read from the log. Beyond
    ``max_rows`` tested contrasts, the significant ones and the smallest p-values are shown."""
    pal = palette(colours)
    m = moments[moments["effect"].notna()].copy()
    src = m["source"] if "source" in m else pd.Series("survey", index=m.index)
    m["name"] = [
        f"{_label(t)}: {_CONTRAST_LABEL.get(c, _label(c))}" + (" (log)" if s != "survey" else "")
        for t, c, s in zip(m["touchpoint"], m["contrast"], src, strict=True)
    ]
    m["log"] = src != "survey"
    shown = len(m)
    if len(m) > max_rows:
        m = m.assign(_sig=m["kind"] != "none").sort_values(
            ["_sig", "p_value"], ascending=[False, True]
        )
        m = m.head(max_rows)
        title = title or (
            f"Magic moments (gold) and pain points (red): the {max_rows} clearest of {shown}"
        )
    m = m.sort_values("effect")
    ax = _ax(ax, size=(7.5, 0.32 * max(len(m), 1) + 1.5))
    if m.empty:
        ax.text(0.5, 0.5, "No touchpoint had a large enough base", ha="center", va="center")
        ax.set_axis_off()
        return ax
    colour = {"magic": pal[2], "pain": "#C0392B", "none": "#bbbbbb"}
    y = np.arange(len(m))
    ax.errorbar(
        100 * m["effect"],
        y,
        xerr=[100 * (m["effect"] - m["ci_low"]), 100 * (m["ci_high"] - m["effect"])],
        fmt="none",
        ecolor="#888888",
        elinewidth=1,
    )
    for is_log, marker in ((False, "o"), (True, "s")):
        k = (m["log"] == is_log).to_numpy()
        ax.scatter(
            100 * m["effect"][k],
            y[k],
            c=[colour[v] for v in m["kind"][k]],
            s=40,
            marker=marker,
            zorder=3,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, m["name"], fontsize=7)
    ax.set_xlabel("difference in the return rate vs the middle (points), adjusted")
    ax.set_title(title or "Magic moments (gold) and pain points (red)")
    sns.despine(ax=ax)
    return ax


def journey_themes(themes: pd.DataFrame, *, colours=None, ax=None, title: str = ""):
    """Comment themes (from ``journey.comment_themes``): NPS of those who raise each theme
    minus the rest, with 95% intervals; bar width is not volume, the label gives it."""
    pal = palette(colours)
    t = themes[themes["reliable"] & themes["nps_difference"].notna()].sort_values("nps_difference")
    ax = _ax(ax, size=(7.5, 0.35 * max(len(t), 1) + 1.5))
    if t.empty:
        ax.text(0.5, 0.5, "No theme with a large enough base", ha="center", va="center")
        ax.set_axis_off()
        return ax
    y = np.arange(len(t))
    colour = {"pain": "#C0392B", "magic": pal[2], "neutral": "#bbbbbb"}
    ax.barh(y, t["nps_difference"], color=[colour[k] for k in t["tone"]])
    ax.errorbar(
        t["nps_difference"],
        y,
        xerr=[t["nps_difference"] - t["ci_low"], t["ci_high"] - t["nps_difference"]],
        fmt="none",
        ecolor="#555555",
        elinewidth=1,
    )
    ax.set_yticks(
        y, [f"{th} (n = {n:,})" for th, n in zip(t["theme"], t["n"], strict=True)], fontsize=7
    )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("NPS of guests raising the theme minus the rest (points)")
    ax.set_title(title or "What guests say: themes and the NPS that goes with them")
    sns.despine(ax=ax)
    return ax


# --- Business case (step 07) ---
def _money_axis(ax, axis: str = "x", currency: str = "") -> None:
    def fmt(v, _):
        a = abs(v)
        s = f"{a / 1e6:.1f}M" if a >= 1e6 else f"{a / 1e3:.0f}k" if a >= 1e3 else f"{a:.0f}"
        return f"{'-' if v < 0 else ''}{s}"

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(plt.FuncFormatter(fmt))
    if currency:
        (ax.set_xlabel if axis == "x" else ax.set_ylabel)(currency)


def clv_by_segment(table: pd.DataFrame, *, colours=None, currency: str = "EUR", ax=None, title=""):
    """Customer lifetime value per guest by segment with 95% intervals, and each segment's
    share of the total value (from :func:`rox_helpers.value.clv_by_segment`)."""
    c = colours or Colours()
    d = table[(table["segment"] != "All customers") & ~table["suppressed"].astype(bool)]
    d = d.sort_values("clv")
    ax = _ax(ax, size=(7, 0.45 * max(len(d), 1) + 1.4))
    err = np.vstack([d["clv"] - d["ci_low"], d["ci_high"] - d["clv"]]).clip(min=0)
    ax.barh(d["segment"], d["clv"], color=c.primary, xerr=err,
            error_kw={"lw": 0.8, "ecolor": "#555555"})  # fmt: skip
    for y, r in enumerate(d.itertuples()):
        ax.text(r.ci_high, y, f"  {r.share_of_value:.0%} of value, n={r.n:,}", va="center",
                fontsize=7, color=c.neutral)  # fmt: skip
    tot = table[table["segment"] == "All customers"]
    if len(tot):
        ax.axvline(tot["clv"].iloc[0], color=c.accent, lw=1, ls="--", label="all customers")
        ax.legend(frameon=False, fontsize=7, loc="lower right")
    _money_axis(ax, "x", f"value per guest over the horizon ({currency}, discounted margin)")
    ax.set_title(title or "Customer lifetime value by segment")
    ax.margins(x=0.25)
    sns.despine(ax=ax)
    return ax


def clv_holdout(check_table: pd.DataFrame, *, colours=None, ax=None, title=""):
    """The CLV model's holdout check: predicted against actual stays per guest in the
    holdout months, by the guests' repeat stays in the calibration period (from
    ``rox_helpers.value.holdout_check(...).table``)."""
    pal = palette(colours)
    d = check_table[check_table["by"] == "calibration stays"].reset_index(drop=True)
    ax = _ax(ax, size=(7, 3.2))
    x = np.arange(len(d))
    ax.bar(x - 0.2, d["actual"], width=0.4, color=pal[3], label="actual")
    ax.bar(x + 0.2, d["predicted"], width=0.4, color=pal[0], label="predicted (BG/NBD)")
    ax.set_xticks(x, d["group"])
    ax.set_xlabel("repeat stays in the calibration period")
    ax.set_ylabel("stays per guest in the holdout")
    tot = check_table[check_table["by"] == "all"]
    ratio = f" (total predicted / actual: {tot['ratio'].iloc[0]:.2f})" if len(tot) else ""
    ax.set_title(title or f"Holdout check of the customer value model{ratio}", fontsize=10)  # fmt: skip
    ax.legend(frameon=False, fontsize=8)
    sns.despine(ax=ax)
    return ax


def rox_by_scenario(scenarios: pd.DataFrame, *, colours=None, ax=None, title=""):
    """Each scenario's ROX ratio (value / investment) with its 95% Monte Carlo interval,
    side by side, against break-even at 1 (from :func:`rox_helpers.value.scenario_table`)."""
    c = colours or Colours()
    d = scenarios[scenarios["quantity"] == "rox"].reset_index(drop=True)
    ax = _ax(ax, size=(7, 0.6 * max(len(d), 1) + 1.4))
    y = np.arange(len(d))
    colour = [c.primary if lo > 1 else c.accent if hi > 1 else c.neutral
              for lo, hi in zip(d["ci_low"], d["ci_high"], strict=True)]  # fmt: skip
    ax.barh(y, d["estimate"], color=colour, alpha=0.85)
    err = np.vstack([d["estimate"] - d["ci_low"], d["ci_high"] - d["estimate"]]).clip(min=0)
    ax.errorbar(d["estimate"], y, xerr=err, fmt="none", ecolor="#333333", capsize=3, lw=1)
    ax.axvline(1, color="black", lw=0.9, ls="--")
    ax.text(1, len(d) - 0.45, " break-even", fontsize=7, va="bottom")
    ax.set_yticks(y, d["scenario"])
    ax.invert_yaxis()
    ax.set_xlabel("ROX ratio: present value of extra margin per unit invested (95% interval)")
    ax.set_title(title or "Investment scenarios side by side")
    sns.despine(ax=ax)
    return ax


def rox_tornado(tornado: pd.DataFrame, *, colours=None, ax=None, title="", label="ROX ratio"):
    """Which assumptions matter most: the figure with each assumption at its low and high
    value, the others held (from :func:`rox_helpers.value.tornado`)."""
    pal = palette(colours)
    d = tornado.sort_values("swing", ascending=True).reset_index(drop=True)
    base = float(d["base"].iloc[0]) if len(d) else 0.0
    ax = _ax(ax, size=(7, 0.38 * max(len(d), 1) + 1.4))
    y = np.arange(len(d))
    ax.barh(y, d["at_low"] - base, left=base, color=pal[1], label="assumption low")
    ax.barh(y, d["at_high"] - base, left=base, color=pal[2], label="assumption high")
    ax.axvline(base, color="black", lw=0.8)
    ax.set_yticks(y, d["assumption"], fontsize=8)
    ax.set_xlabel(f"{label} (centre line: the central case, {base:.2f})")
    ax.set_title(title or "What the business case hangs on", fontsize=10)
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    sns.despine(ax=ax)
    return ax


# --- Six actions (step 06) ---
def maturity_radar(actions: pd.DataFrame, *, colours: Colours | None = None, ax=None, title=""):
    """Maturity (1-5) of each of the six actions on a radar, from
    ``actions.score_maturity`` (``title``, ``maturity``); unmeasured actions sit at 0 and
    are marked "(not measured)"."""
    pal = palette(colours)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5.5), subplot_kw={"projection": "polar"})
    labels = [
        t if np.isfinite(m) else f"{t}\n(not measured)"
        for t, m in zip(actions["title"], actions["maturity"], strict=True)
    ]
    vals = actions["maturity"].fillna(0).to_numpy(float)
    ang = np.linspace(0, 2 * np.pi, len(vals), endpoint=False)
    ax.plot(np.r_[ang, ang[:1]], np.r_[vals, vals[:1]], color=pal[0], lw=2)
    ax.fill(np.r_[ang, ang[:1]], np.r_[vals, vals[:1]], color=pal[1], alpha=0.25)
    ax.set_xticks(ang, labels, fontsize=8)
    ax.set_ylim(0, 5)
    ax.set_yticks([1, 2, 3, 4, 5], ["1", "2", "3", "4", "5"], fontsize=7, color=pal[3])
    ax.set_title(title or "Maturity on the six actions (1-5)", fontsize=10, pad=18)
    return ax


def impact_effort(plan: pd.DataFrame, *, colours: Colours | None = None, ax=None, title=""):
    """Actions and initiatives on impact x effort (1-5), from ``actions.action_plan``;
    quick wins are the upper-left quadrant."""
    pal = palette(colours)
    ax = _ax(ax, size=(7, 5))
    ax.axhline(3, color=pal[3], lw=0.8, ls="--")
    ax.axvline(3, color=pal[3], lw=0.8, ls="--")
    kinds = {"action": (pal[0], "o", 90), "initiative": (pal[2], "D", 60)}
    for kind, (col, mark, size) in kinds.items():
        d = plan[plan["kind"] == kind]
        if len(d):
            ax.scatter(
                d["effort"], d["impact"], color=col, marker=mark, s=size, label=kind, zorder=3
            )
    for i, (_, r) in enumerate(plan.iterrows()):
        ax.annotate(
            r["name"],
            (r["effort"], r["impact"]),
            xytext=(6, 4 - 9 * (i % 3)),
            textcoords="offset points",
            fontsize=7,
        )
    for x, y, text in (
        (1.1, 5.3, "quick wins"),
        (3.1, 5.3, "major projects"),
        (1.1, 0.7, "fill-ins"),
        (3.1, 0.7, "deprioritise"),
    ):
        ax.text(x, y, text, fontsize=8, color=pal[3], style="italic")
    ax.set_xlim(0.8, 5.6)
    ax.set_ylim(0.5, 5.6)
    ax.set_xlabel("effort (1 = days, 5 = a multi-year programme)")
    ax.set_ylabel("impact (1-5)")
    ax.set_title(title or "The action plan: impact against effort", fontsize=10)
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    sns.despine(ax=ax)
    return ax


def adoption_effects_chart(
    effects: pd.DataFrame, *, outcome: str = "stays", colours: Colours | None = None, ax=None
):
    """Naive against adjusted effect of each programme on one outcome, with 95% intervals
    (``AdoptionEffects.effects`` rows, concatenated over programmes)."""
    pal = palette(colours)
    d = effects[(effects["outcome"] == outcome) & effects["estimate"].notna()]
    names = {
        "naive": "naive (ever vs never)",
        "aipw_level": "adjusted, level",
        "dr_did": "adjusted, DR-DiD",
    }
    d = d[d["method"].isin(list(names))]
    ax = _ax(ax, size=(7, 0.45 * max(len(d), 1) + 1.4))
    y = np.arange(len(d))
    col = d["method"].map({"naive": pal[3], "aipw_level": pal[1], "dr_did": pal[0]}).tolist()
    lo = (d["estimate"] - d["ci_low"]).clip(lower=0).fillna(0)
    hi = (d["ci_high"] - d["estimate"]).clip(lower=0).fillna(0)
    ax.errorbar(d["estimate"], y, xerr=[lo, hi], fmt="none", ecolor=pal[3], capsize=3)
    ax.scatter(d["estimate"], y, color=col, zorder=3, s=40)
    ax.set_yticks(y, (d["treatment"] + ": " + d["method"].map(names)).tolist(), fontsize=8)
    ratio = d["scale"].eq("ratio").all()
    ax.axvline(1 if ratio else 0, color="black", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel(("rate ratio" if ratio else "difference") + f" ({outcome})")
    ax.set_title("Joining and what follows: raw against adjusted", fontsize=10)
    sns.despine(ax=ax)
    return ax


def balance_chart(balance: pd.DataFrame, *, colours: Colours | None = None, ax=None):
    """Standardised mean differences before and after weighting, per covariate (a "love
    plot"); the dashed lines mark the 0.1 target."""
    pal = palette(colours)
    ax = _ax(ax, size=(7, 0.25 * max(len(balance), 1) + 1.4))
    y = np.arange(len(balance))
    ax.scatter(balance["smd_before"].abs(), y, color=pal[3], label="before weighting", s=20)
    ax.scatter(balance["smd_after"].abs(), y, color=pal[0], label="after weighting", s=20)
    ax.axvline(0.1, color=pal[2], ls="--", lw=1)
    ax.set_yticks(y, balance["covariate"].tolist(), fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("|standardised mean difference|")
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    ax.set_title("Covariate balance, joiners against weighted non-joiners", fontsize=10)
    sns.despine(ax=ax)
    return ax


def unit_standing(
    card: pd.DataFrame,
    unit: str,
    *,
    among: str = "units",
    colours: Colours | None = None,
    ax=None,
    title: str = "",
):
    """Where one unit stands among units on each measure (from ``units.unit_view``'s
    scorecard): its percentile (100 = best, direction-aware; 50 = the middle unit), drawn
    from the middle, dark where the 95% interval on its difference to the chain excludes
    zero (and starred). Hidden figures are left out."""
    pal = palette(colours)
    d = card[~card["suppressed"].astype(bool) & card["percentile"].notna()].reset_index(drop=True)
    ax = _ax(ax, size=(7, 0.3 * max(len(d), 3) + 1.2))
    if d.empty:
        ax.text(0.5, 0.5, "No figure to rank", ha="center", va="center")
        ax.set_axis_off()
        return ax
    y = np.arange(len(d))
    sig = d["significant"].fillna(False).astype(bool).to_numpy()
    colour = np.where(sig, pal[0], pal[1])
    ax.hlines(y, 50, d["percentile"], color=colour, lw=2)
    ax.scatter(d["percentile"], y, color=colour, zorder=3, s=40)
    ax.axvline(50, color=pal[2], ls="--", lw=1)
    labels = d["label"].astype(str) + np.where(sig, " *", "")
    ax.set_yticks(y, labels.tolist(), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(-3, 103)
    ax.set_xticks([0, 25, 50, 75, 100], ["worst", "25", "middle", "75", "best"])
    ax.set_xlabel(f"percentile among {among} (* differs from the chain, 95% interval)")
    ax.set_title(title or f"{unit}: where it stands among {among}")
    sns.despine(ax=ax)
    return ax


def unit_trend(
    trend: pd.DataFrame,
    unit_value: str,
    unit_label: str,
    *,
    colours: Colours | None = None,
    ax=None,
    title: str = "",
    measure: str = "NPS",
):
    """One unit's measure by period beside the chain's (``group`` ``All``), with 95%
    intervals; hidden periods are left out, indicative ones drawn hollow."""
    pal = palette(colours)
    ax = _ax(ax)
    for group, name, colour in ((unit_value, unit_label, pal[0]), ("All", "chain", pal[2])):
        d = trend[(trend["group"] == group) & ~trend["suppressed"].astype(bool)]
        d = d.sort_values("period")
        if d.empty:
            continue
        x = d["period"].astype(str).tolist()
        ax.plot(x, d["estimate"], color=colour, label=name, marker="o")
        ax.fill_between(x, d["ci_low"], d["ci_high"], color=colour, alpha=0.15)
        low = ~d["reliable"].astype(bool).to_numpy()
        if low.any():
            ax.scatter(
                np.array(x)[low], d["estimate"][low], facecolors="white", edgecolors=colour,
                zorder=3, label="indicative (low base)" if group != "All" else None,
            )  # fmt: skip
    ax.set_ylabel(measure)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.set_title(title or f"{measure} by period: {unit_label} and the chain")
    ax.legend(frameon=False, fontsize=8)
    sns.despine(ax=ax)
    return ax
