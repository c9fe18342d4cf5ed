"""Every chart of the workbook: one function per chart, taking a result and ``ax=None``,
returning the matplotlib ``Axes``, in the client's palette."""

from __future__ import annotations

import matplotlib.pyplot as plt
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
