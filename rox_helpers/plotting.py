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
