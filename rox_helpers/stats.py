"""Small statistics shared by the analysis modules, as thin NaN-aware wrappers of
statsmodels (so every module adjusts p-values and bounds proportions the same way)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bh_qvalues", "wilson_interval"]


def bh_qvalues(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q); NaN p-values stay NaN and are not counted
    among the tests."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype="float64")
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q


def wilson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for proportions ``successes / n`` (NaN where ``n`` is 0)."""
    from statsmodels.stats.proportion import proportion_confint

    k = np.atleast_1d(np.asarray(successes, dtype="float64"))
    m = np.atleast_1d(np.asarray(n, dtype="float64"))
    lo = np.full(k.shape, np.nan)
    hi = np.full(k.shape, np.nan)
    ok = m > 0
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(k[ok], m[ok], alpha=1 - level, method="wilson")
    return lo, hi
