"""Key driver analysis: which experience attributes go with the outcome, and how surely.

Derived importance splits the part of the outcome that the attribute ratings explain
(the R² of a regression of the outcome on all of them) among the attributes, in a way that
does not depend on the order in which they are entered and that shares what correlated
attributes (the halo) explain jointly:

=====================  =================================================================
method                 what it is
=====================  =================================================================
``shapley``            Shapley value regression, also LMG (Lindeman, Merenda & Gold 1980)
                       or general dominance (Budescu 1993; Grömping 2007): each driver's
                       increase in R² averaged over every order of entering the drivers.
                       Exact over all 2^p subsets up to :data:`EXACT_MAX` drivers; above,
                       a permutation-sampling estimate with its Monte-Carlo error.
``relative_weights``   Johnson's relative weights (Johnson 2000; Johnson 1966 for the
                       orthogonal transform): R² of the outcome on the nearest orthogonal
                       version of the drivers, mapped back. Close to Shapley, much cheaper.
``relative_weights``   For a 0/1 outcome, relative weights for logistic regression
  (binary outcome)     (Tonidandel & LeBreton 2010): the pseudo-R² split is R²_O, the
                       squared correlation between the outcome and the predicted
                       probability. A 0/1 outcome is never treated as a rating scale.
=====================  =================================================================

Both give raw shares (summing to the R², or to R²_O) and normalised shares (summing to 1).
**These are associations, not effects**: a share says how much of the explained variation
goes with a driver, not what raising that rating would do to the outcome.

How the exact Shapley value is computed
---------------------------------------
Everything works on the (weighted) correlation matrix of drivers and outcome, itself a few
matrix products over the respondents. R² of every subset S of drivers is
``1 - s_yy|S``, the outcome's variance left after regressing it on S. Sweeping one more
driver out of the conditional covariance matrix of a subset gives the conditional
covariance matrix of that subset plus the driver (a rank-one update), so the subsets are
built level by level, each from its parent: sweeping driver k turns the 2^k subsets of the
first k drivers into 2^(k+1), without solving any subset afresh. The stack of matrices is
vectorised over subsets (numpy), and it is streamed in blocks of a few hundred thousand
subsets, so memory stays at a few MB whatever p is (the full 2^p vector of R² is only built
on request, see :func:`subset_r2`). The Shapley weights ``|S|! (p-|S|-1)! / p!`` are looked
up by the popcount of each subset's bit mask, and each driver's sum over the subsets that
contain it is a halving of the block along that driver's bit.

Missing ratings, weights, repair
--------------------------------
``missing="pairwise"`` correlates each pair of columns on the respondents who answered both
(the default, as in most CX tools); ``"listwise"`` keeps only complete respondents. Either
way the choice and the base are reported. A pairwise matrix need not be positive
semi-definite; such a matrix is replaced by the nearest correlation matrix (Higham 2002,
:func:`nearest_correlation`) and flagged, never given to the solver as it is. Survey
weights enter the correlations (the R² is then the weighted least squares R²).

Uncertainty
-----------
The point estimate is computed once, from all respondents. ``n_boot`` bootstrap resamples of
respondents (seeded) then give percentile intervals for each share, the probability of each
rank, and for the leading drivers the paired difference "is #1 really ahead of #2?". Guests
of the same hotel answer alike (same staff, same rooms), so ``fit(..., cluster="unit_id")``
resamples hotels instead, each with all its respondents (the cluster bootstrap; Field &
Welsh 2007); the resamples only reweight the respondents, so they cost no more.

Beyond the shares
-----------------
===============================  ==========================================================
function                         what a client gets
===============================  ==========================================================
:func:`compare_segments`         shares per segment (business vs leisure, behavioural
                                 segments) side by side; differences tested by the
                                 bootstrap, Benjamini-Hochberg within the comparison
:func:`nonlinearity`             per driver, a step (or spline) fit against the line, out
                                 of sample; shape and threshold ("up to 4 ...") if bent
:func:`penalty_reward`           penalty-reward contrasts and a Kano-style class (basic,
                                 performance, delighter, low impact); delighters are
                                 candidate "magic moments"
:func:`dissatisfiers_enhancers`  key dissatisfiers / key enhancers (Conklin, Powaga &
                                 Lipovetsky 2004), Shapley values of a reach game
:func:`kano_classification`      the two above in one table
:func:`importance_performance`   importance (share) against performance (mean or top box),
                                 with quadrant labels (fix first, keep up, ...)
:func:`what_if`                  a driver raised by some points (or a share of guests moved
                                 up one) -> predicted change in the mean outcome, promoters,
                                 detractors and NPS, with intervals and extrapolation flags
===============================  ==========================================================

The regressions behind the last five use the respondents who answered the outcome and every
driver (listwise) and report that base.

References
----------
Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. Journal of the
Royal Statistical Society B 57, 289-300.
Brandt, D. R. (1987). A procedure for identifying value-enhancing service components using
customer satisfaction survey data. In Add Value to Your Service, AMA, 61-65.
Budescu, D. V. (1993). Dominance analysis. Psychological Bulletin 114, 542-551.
Conklin, M., Powaga, K. & Lipovetsky, S. (2004). Customer satisfaction analysis:
identification of key drivers. European Journal of Operational Research 154, 819-827.
Field, C. A. & Welsh, A. H. (2007). Bootstrapping clustered data. Journal of the Royal
Statistical Society B 69, 369-390.
Grömping, U. (2007). Estimators of relative importance in linear regression based on
variance decomposition. The American Statistician 61, 139-147.
Higham, N. J. (2002). Computing the nearest correlation matrix -- a problem from finance.
IMA Journal of Numerical Analysis 22, 329-343.
Johnson, J. W. (2000). A heuristic method for estimating the relative weight of predictor
variables in multiple regression. Multivariate Behavioral Research 35, 1-19.
Kano, N., Seraku, N., Takahashi, F. & Tsuji, S. (1984). Attractive quality and must-be
quality. Journal of the Japanese Society for Quality Control 14, 39-48.
Martilla, J. A. & James, J. C. (1977). Importance-performance analysis. Journal of
Marketing 41, 77-79.
Mikulić, J. & Prebežac, D. (2008). Prioritizing improvement of service attributes using
impact range-performance analysis and impact-asymmetry analysis. Managing Service Quality
18, 559-576.
Mikulić, J. & Prebežac, D. (2011). A critical review of techniques for classifying quality
attributes in the Kano model. Managing Service Quality 21, 46-66.
Owen, G. (1977). Values of games with a priori unions. In Essays in Mathematical Economics
and Game Theory, 76-88.
Tonidandel, S. & LeBreton, J. M. (2010). Determining the relative importance of predictors
in logistic regression: an extension of relative weight analysis. Organizational Research
Methods 13, 767-781.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from rox_helpers.errors import DataValidationError
from rox_helpers.stats import bh_qvalues

_T = TypeVar("_T")

#: Largest number of drivers for which the Shapley value is computed exactly (2^24 subsets).
EXACT_MAX = 24

#: What every importance table says about itself.
NOTE = (
    "Derived importance: each share is the part of the outcome's explained variation that "
    "goes with a driver, given how the drivers move together. It is an association, not an "
    "effect: it does not say what raising a rating would do to the outcome."
)

METHODS = {
    "shapley_exact": "Shapley value regression (LMG) of the linear-regression R², exact over "
    "all subsets of drivers",
    "shapley_sampled": "Shapley value regression (LMG) of the linear-regression R², estimated "
    "from random orders of the drivers (antithetic permutation sampling); mc_se is the "
    "Monte-Carlo standard error of each raw share",
    "relative_weights": "Johnson's relative weights (2000) of the linear-regression R²",
    "relative_weights_logistic": "Relative weights for logistic regression (Tonidandel & "
    "LeBreton 2010) of the pseudo-R² R²_O, the squared correlation between the 0/1 outcome "
    "and the predicted probability",
    "owen_exact": "Owen values (Shapley value regression with driver groups) of the "
    "linear-regression R², exact over all subsets",
    "owen_sampled": "Owen values (Shapley value regression with driver groups) of the "
    "linear-regression R², estimated from random group-consistent orders of the drivers",
}

_PIVOT_TOL = 1e-12  # a driver whose variance left given the others is below this adds nothing
_BLOCK = 1 << 18  # subsets per streamed block of the exact computation
_LEVELS_PER_BLOCK = 14  # drivers swept inside a block (the rest before streaming)
_PSD_TOL = 1e-10  # eigenvalues above -this count as non-negative
_FEW_CLUSTERS = 20  # a cluster bootstrap with fewer clusters than this warns


_CONTROLLER: list[ThreadpoolController] = []


def _blas_controller() -> ThreadpoolController:
    """The BLAS thread pools, found once (finding them costs a few ms per call)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _one_blas_thread(func: Callable[..., _T]) -> Callable[..., _T]:
    """Run ``func`` on one BLAS thread: the tall-and-skinny products and least-squares
    solves here are fastest so, and several threads contending for busy cores can be 10x
    slower."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> _T:
        with _blas_controller().limit(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


class DriverWarning(UserWarning):
    """Something about a driver analysis the reader should know (a repaired matrix, a
    non-converged logistic fit, a base under the reliability threshold)."""


# ------------------------------------------------------------------------------------------
# correlation matrices
# ------------------------------------------------------------------------------------------


def nearest_correlation(
    a: np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 2000,
    eig_floor: float = 1e-8,
) -> np.ndarray:
    """The correlation matrix nearest to ``a`` in the Frobenius norm (Higham 2002).

    Alternating projections onto the positive semi-definite matrices and onto the matrices
    with a unit diagonal, with Dykstra's correction. The result's eigenvalues are then
    floored at ``eig_floor`` (and the unit diagonal restored), so that it is strictly
    positive definite and safe to solve with.

    Parameters
    ----------
    a : numpy.ndarray
        Symmetric matrix with a unit diagonal (e.g. a pairwise-complete correlation matrix).
    tol : float, default=1e-10
        Stop when the relative change of the iterates is below this.
    max_iter : int, default=2000
        Most iterations.
    eig_floor : float, default=1e-8
        Smallest eigenvalue of the result.

    Returns
    -------
    numpy.ndarray
        A correlation matrix (symmetric, unit diagonal, eigenvalues >= ``eig_floor``
        up to rounding).
    """
    a = np.asarray(a, dtype="float64")
    y = (a + a.T) / 2
    ds = np.zeros_like(y)
    for _ in range(max_iter):
        r = y - ds
        vals, vecs = np.linalg.eigh(r)
        x = (vecs * np.maximum(vals, 0.0)) @ vecs.T
        ds = x - r
        y_new = x.copy()
        np.fill_diagonal(y_new, 1.0)
        change = np.linalg.norm(y_new - y) / max(np.linalg.norm(y_new), 1.0)
        gap = np.linalg.norm(y_new - x) / max(np.linalg.norm(y_new), 1.0)
        y = y_new
        if change < tol and gap < tol:
            break
    vals, vecs = np.linalg.eigh((y + y.T) / 2)
    x = (vecs * np.maximum(vals, eig_floor)) @ vecs.T
    d = np.sqrt(np.diag(x))
    x = x / np.outer(d, d)
    x = (x + x.T) / 2
    np.fill_diagonal(x, 1.0)
    return x


def _repair(c: np.ndarray) -> tuple[np.ndarray, bool, float]:
    """``c`` itself if positive semi-definite, else its nearest correlation matrix."""
    min_eig = float(np.linalg.eigvalsh(c)[0])
    if min_eig >= -_PSD_TOL:
        return c, False, min_eig
    return nearest_correlation(c), True, min_eig


class _Moments:
    """Weighted correlations of the columns of ``x`` (NaN = missing) for any weight vector.

    Pairwise: each pair on the rows where both are present, with the means and variances of
    that pair's rows (what ``pandas.DataFrame.corr`` and R's
    ``cor(use="pairwise.complete.obs")`` do, with weights). The columns are centred once on
    their overall weighted means, which changes no correlation but keeps the sums of
    products well conditioned.
    """

    def __init__(self, x: np.ndarray, w: np.ndarray, pairwise: bool) -> None:
        present = ~np.isnan(x)
        self.pairwise = pairwise and not present.all()
        self.n, self.q = x.shape
        if self.pairwise:
            self.m = present.astype("float64")
            x0 = np.where(present, x, 0.0)
            mean = (w @ x0) / (w @ self.m)
            self.xc = x0 - mean * self.m
            # one product gives every pairwise sum: [xc, xc^2, m]' diag(w) [xc, m]
            self._left = np.concatenate([self.xc, self.xc**2, self.m], axis=1)
            self._right = np.concatenate([self.xc, self.m], axis=1)
        else:
            self.m = None
            mean = (w @ x) / w.sum()
            self.xc = x - mean
        self.scale = 1.0 + mean**2  # a variance below 1e-20 * scale is rounding: constant

    def corr_and_var(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correlation matrix under weights ``w`` (one per row; 0 leaves a row out), and each
        column's variance (NaN where undefined; checked by the caller)."""
        if not self.pairwise:
            xs = self.xc * np.sqrt(w)[:, None]
            # A'A: BLAS's symmetric product
            return self._finish((w.sum(), w @ self.xc, xs.T @ xs))
        return self._finish((self._left * w[:, None]).T @ self._right)

    def cluster_sums(self, w: np.ndarray, codes: np.ndarray, n_levels: int) -> None:
        """Precompute, for each cluster, the weighted sums that :meth:`corr_and_var` adds up
        over rows; :meth:`corr_and_var_clusters` then gives the correlations under cluster
        weights (a cluster bootstrap: every respondent of cluster ``h`` counted ``c[h]``
        times) from ``n_levels`` small matrices instead of a pass over every respondent."""
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(n_levels + 1))
        sums = []
        for h in range(n_levels):
            rows = order[bounds[h] : bounds[h + 1]]
            wh = w[rows]
            if not self.pairwise:
                xc = self.xc[rows]
                xs = xc * np.sqrt(wh)[:, None]
                sums.append(np.concatenate([[[wh.sum()]], [wh @ xc], xs.T @ xs], axis=None))
            else:
                sums.append(((self._left[rows] * wh[:, None]).T @ self._right[rows]).ravel())
        self._cluster_sums = np.stack(sums) if sums else np.zeros((0, 1))

    def corr_and_var_clusters(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`corr_and_var` for weights ``w * counts[codes]`` (see :meth:`cluster_sums`);
        the same sums, added up cluster by cluster (equal to rounding)."""
        total = counts.astype("float64") @ self._cluster_sums
        q = self.q
        if not self.pairwise:
            return self._finish((total[0], total[1 : q + 1], total[q + 1 :].reshape(q, q)))
        return self._finish(total.reshape(3 * q, 2 * q))

    def _finish(self, sums) -> tuple[np.ndarray, np.ndarray]:
        q = self.q
        with np.errstate(invalid="ignore", divide="ignore"):
            if not self.pairwise:
                sw, sx, cross = sums
                s = sx / sw
                cov = cross / sw - np.outer(s, s)
                var = np.diag(cov).copy()
                d = np.sqrt(var)
                out = cov / np.outer(d, d)
            else:
                g = sums
                n = g[2 * q :, q:]
                s = g[:q, q:] / n  # s[j, k]: mean of column j on the rows with j and k
                cov = g[:q, :q] / n - s * s.T
                v = g[q : 2 * q, q:] / n - s**2  # variance of column j on rows with j and k
                var = np.diag(v).copy()
                out = cov / np.sqrt(v * v.T)
        np.fill_diagonal(out, 1.0)
        return (out + out.T) / 2, var

    def corr(self, w: np.ndarray) -> np.ndarray:
        return self.corr_and_var(w)[0]

    def pair_counts(self) -> np.ndarray:
        """Respondents behind each correlation."""
        if self.m is None:
            return np.full((self.q, self.q), float(self.n))
        return self.m.T @ self.m


def _as_corr(
    corr: pd.DataFrame | np.ndarray, outcome: str | int | None
) -> tuple[np.ndarray, list[str], bool]:
    """A correlation (or covariance) matrix reordered with the outcome last, repaired if need be."""
    if isinstance(corr, pd.DataFrame):
        labels = [str(c) for c in corr.columns]
        c = corr.to_numpy(dtype="float64")
    else:
        c = np.asarray(corr, dtype="float64")
        labels = [f"x{i}" for i in range(c.shape[0])]
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 2:
        raise ValueError("corr must be a square matrix of at least two variables")
    if not np.all(np.isfinite(c)) or not np.allclose(c, c.T, atol=1e-10):
        raise ValueError("corr must be finite and symmetric")
    q = c.shape[0]
    if outcome is None:
        k = q - 1
    elif isinstance(outcome, (int, np.integer)):
        k = int(outcome)
    else:
        if outcome not in labels:
            raise ValueError(f"outcome {outcome!r} is not a column of corr")
        k = labels.index(outcome)
    order = [i for i in range(q) if i != k] + [k]
    c = c[np.ix_(order, order)]
    d = np.diag(c)
    if np.any(d <= 0):
        raise ValueError("corr has a variable with zero or negative variance")
    c = c / np.sqrt(np.outer(d, d))
    np.fill_diagonal(c, 1.0)
    c, repaired, min_eig = _repair(c)
    if repaired:
        warnings.warn(
            f"corr is not positive semi-definite (smallest eigenvalue {min_eig:.3g}); "
            "the nearest correlation matrix (Higham 2002) was used instead",
            DriverWarning,
            stacklevel=3,
        )
    return c, [labels[i] for i in order[:-1]], repaired


# ------------------------------------------------------------------------------------------
# exact Shapley value (LMG) over all subsets
# ------------------------------------------------------------------------------------------


def _sweep(m: np.ndarray, levels: int) -> np.ndarray:
    """Sweep the leading ``levels`` variables out of a stack of covariance matrices, both ways.

    ``m`` has shape ``(k, k, n)``: ``n`` independent matrices along the last axis. Returns
    shape ``(k - levels, k - levels, n * 2**levels)``: for every matrix and every subset U of
    the swept variables, the covariance of the remaining variables given U. Entry
    ``u * n + i`` holds subset ``u`` (bit l = the l-th swept variable) of matrix ``i``.
    A variable with (almost) no variance left given U is not swept: it adds nothing.
    """
    for _ in range(levels):
        k, n = m.shape[0], m.shape[2]
        piv = m[0, 0]
        f = np.divide(m[1:, 0], piv, out=np.zeros((k - 1, n)), where=piv > _PIVOT_TOL)
        out = np.empty((k - 1, k - 1, 2 * n))
        rest = m[1:, 1:]
        out[:, :, :n] = rest
        swept = out[:, :, n:]
        np.multiply(f[:, None, :], m[None, 0, 1:, :], out=swept)
        np.subtract(rest, swept, out=swept)
        m = out
    return m


def _r2_blocks(c: np.ndarray) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """Stream R² of every subset of drivers, in blocks.

    ``c`` is a correlation matrix with the outcome last. Yields ``(k1, start, stop, r2)``
    where ``r2`` has shape ``(2**(p - k1), stop - start)`` and ``r2[u, t - start]`` is the R²
    of the subset with bit mask ``t + (u << k1)`` (bit j = driver j).
    """
    p = c.shape[0] - 1
    inner = min(p, _LEVELS_PER_BLOCK)
    k1 = p - inner
    top = _sweep(c[:, :, None].copy(), k1)
    n_top = top.shape[2]
    step = max(1, _BLOCK >> inner)
    for start in range(0, n_top, step):
        stop = min(n_top, start + step)
        fin = _sweep(np.ascontiguousarray(top[:, :, start:stop]), inner)
        yield k1, start, stop, 1.0 - fin[0, 0].reshape(1 << inner, stop - start)


def _popcount(n_bits: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    stop = (1 << n_bits) if stop is None else stop
    return np.bitwise_count(np.arange(start, stop, dtype=np.uint64)).astype(np.intp)


def _shapley_coefficients(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights by subset size s = 0..p for ``phi_j = sum_S a(|S|) [j in S] v(S) - sum_S b(|S|) v(S)``.

    ``b(s) = s! (p - s - 1)! / p!`` (the Shapley weight of a coalition of size s that does not
    hold j; 0 for s = p) and ``a(s) = b(s - 1) + b(s)``, since
    ``phi_j = sum_{S not j} b(|S|) (v(S + j) - v(S))``.
    """
    b = np.zeros(p + 1)
    for s in range(p):
        b[s] = 1.0 / (p * math.comb(p - 1, s))
    a = b.copy()
    a[1:] += b[:-1]
    return a, b


def _bit_sums(a: np.ndarray) -> np.ndarray:
    """For ``a`` of shape ``(2**c, ...)``: ``out[j] = sum of a[u] over the u with bit j set``."""
    c = a.shape[0].bit_length() - 1
    out = np.empty((c, *a.shape[1:]))
    for j in reversed(range(c)):
        half = a.reshape((2, 1 << j, *a.shape[1:]))
        out[j] = half[1].sum(axis=0)
        a = half[0] + half[1]
    return out


def _shapley_from_values(v: np.ndarray) -> np.ndarray:
    """Shapley values of games given by their value on every coalition.

    ``v`` has shape ``(2**n, ...)`` (coalition bit masks along the first axis, independent
    games along the others); returns shape ``(n, ...)``.
    """
    n = v.shape[0].bit_length() - 1
    a, b = _shapley_coefficients(n)
    pc = _popcount(n)
    shape = (-1,) + (1,) * (v.ndim - 1)
    return _bit_sums(a[pc].reshape(shape) * v) - (b[pc].reshape(shape) * v).sum(axis=0)


def _shapley_exact(c: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact Shapley decomposition of R² (raw shares) and the full-model R²."""
    p = c.shape[0] - 1
    a, b = _shapley_coefficients(p)
    phi = np.zeros(p)
    total_b = 0.0
    full = 0.0
    for k1, start, stop, r2 in _r2_blocks(c):
        inner = p - k1
        pc = _popcount(inner)[:, None] + _popcount(k1, start, stop)[None, :]
        total_b += float((b[pc] * r2).sum())
        ar2 = a[pc] * r2
        if k1:
            t = np.arange(start, stop)
            bits = ((t[None, :] >> np.arange(k1)[:, None]) & 1).astype("float64")
            phi[:k1] += bits @ ar2.sum(axis=0)
        phi[k1:] += _bit_sums(ar2.sum(axis=1))
        full = float(r2[-1, -1])
    return phi - total_b, full


def _shapley_stack(cs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact Shapley raw shares for a stack of correlation matrices ``(B, q, q)``."""
    n_mat, q = cs.shape[0], cs.shape[1]
    p = q - 1
    if p > _LEVELS_PER_BLOCK:
        out = [_shapley_exact(ci) for ci in cs]
        return np.array([o[0] for o in out]), np.array([o[1] for o in out])
    a, b = _shapley_coefficients(p)
    pc = _popcount(p)
    phi = np.empty((n_mat, p))
    full = np.empty(n_mat)
    step = max(1, _BLOCK >> p)
    for start in range(0, n_mat, step):
        stop = min(n_mat, start + step)
        m = np.ascontiguousarray(cs[start:stop].transpose(1, 2, 0))
        r2 = 1.0 - _sweep(m, p)[0, 0].reshape(1 << p, stop - start)
        phi[start:stop] = (_bit_sums(a[pc][:, None] * r2) - (b[pc][:, None] * r2).sum(0)).T
        full[start:stop] = r2[-1]
    return phi, full


def subset_r2(corr: pd.DataFrame | np.ndarray, *, outcome: str | int | None = None) -> np.ndarray:
    """R² of the regression of the outcome on every subset of drivers.

    Parameters
    ----------
    corr : pandas.DataFrame or numpy.ndarray
        Correlation (or covariance) matrix of the drivers and the outcome.
    outcome : str or int, optional
        Label (or position) of the outcome in ``corr``; the last variable by default.

    Returns
    -------
    numpy.ndarray
        Shape ``(2**p,)``: entry ``s`` is the R² of the subset whose bit mask is ``s``
        (bit j = the j-th driver, in ``corr``'s order without the outcome).
    """
    c, _, _ = _as_corr(corr, outcome)
    p = c.shape[0] - 1
    if p > EXACT_MAX:
        raise ValueError(f"subset_r2 holds 2^p values; p = {p} is above {EXACT_MAX}")
    out = np.empty(1 << p)
    for k1, start, stop, r2 in _r2_blocks(c):
        out.reshape(1 << (p - k1), 1 << k1)[:, start:stop] = r2
    return out


# ------------------------------------------------------------------------------------------
# sampled Shapley / Owen values
# ------------------------------------------------------------------------------------------


def _order_contributions(c: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """Increase in R² of each driver when entered in each given order.

    ``orders`` has shape ``(B, p)``; returns shape ``(B, p)`` in driver order. The increments
    along an order are the squared last row of the Cholesky factor of the reordered matrix.
    """
    n_ord, p = orders.shape
    idx = np.concatenate([orders, np.full((n_ord, 1), p)], axis=1)
    s = c[idx[:, :, None], idx[:, None, :]]
    try:
        inc = np.linalg.cholesky(s)[:, p, :p] ** 2
    except np.linalg.LinAlgError:  # singular drivers: sweep with the pivot guard instead
        m = np.ascontiguousarray(s.transpose(1, 2, 0))
        inc = np.empty((n_ord, p))
        for k in range(p):
            piv = m[0, 0]
            f = np.divide(m[1:, 0], piv, out=np.zeros_like(m[1:, 0]), where=piv > _PIVOT_TOL)
            inc[:, k] = f[-1] * m[-1, 0]
            m = m[1:, 1:] - f[:, None, :] * m[None, 0, 1:, :]
    out = np.empty_like(inc)
    np.put_along_axis(out, orders, inc, axis=1)
    return out


def _random_orders(
    rng: np.random.Generator, n: int, p: int, groups: list[np.ndarray] | None
) -> np.ndarray:
    """``n`` random orders of the ``p`` drivers; with groups, each group's drivers stay together
    (a random order of the groups, and a random order inside each group)."""
    if groups is None:
        return rng.permuted(np.tile(np.arange(p), (n, 1)), axis=1)
    # canonical layout: group 0's drivers (shuffled), then group 1's, ...
    laid = np.concatenate([rng.permuted(np.tile(g, (n, 1)), axis=1) for g in groups], axis=1)
    group_of_col = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    group_rank = np.argsort(rng.permuted(np.tile(np.arange(len(groups)), (n, 1)), axis=1), axis=1)
    key = group_rank[:, group_of_col] * p + np.arange(p)[None, :]
    return np.take_along_axis(laid, np.argsort(key, axis=1), axis=1)


def _shapley_sampled(
    c: np.ndarray,
    n_perm: int,
    rng: np.random.Generator,
    groups: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Permutation-sampling estimate (antithetic pairs) and its Monte-Carlo standard error."""
    p = c.shape[0] - 1
    n_pairs = max(2, (n_perm + 1) // 2)
    means = np.empty((n_pairs, p))
    step = max(1, 200_000 // (p + 1) ** 2)
    for start in range(0, n_pairs, step):
        k = min(step, n_pairs - start)
        orders = _random_orders(rng, k, p, groups)
        both = _order_contributions(c, np.concatenate([orders, orders[:, ::-1]]))
        means[start : start + k] = (both[:k] + both[k:]) / 2
    return means.mean(axis=0), means.std(axis=0, ddof=1) / math.sqrt(n_pairs)


# ------------------------------------------------------------------------------------------
# Owen values (grouped Shapley), exact
# ------------------------------------------------------------------------------------------


def _owen_exact(c: np.ndarray, groups: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Owen values of R² for a partition of the drivers into groups.

    For a driver j in group k: the Shapley weight of each coalition Q of the *other groups*
    (as players of the game between groups) times j's Shapley value inside its group, in the
    game where the drivers of Q are already in the model.
    """
    p = c.shape[0] - 1
    r2 = np.empty(1 << p)
    for k1, start, stop, block in _r2_blocks(c):
        r2.reshape(1 << (p - k1), 1 << k1)[:, start:stop] = block
    g = len(groups)
    masks = np.array([sum(1 << int(i) for i in grp) for grp in groups], dtype=np.int64)
    _, b_groups = _shapley_coefficients(g)
    phi = np.zeros(p)
    for k, grp in enumerate(groups):
        others = np.delete(masks, k)
        q_bits = (np.arange(1 << (g - 1))[:, None] >> np.arange(g - 1)[None, :]) & 1
        base = q_bits @ others
        t_bits = (np.arange(1 << len(grp))[:, None] >> np.arange(len(grp))[None, :]) & 1
        inside = t_bits @ (np.int64(1) << grp.astype(np.int64))
        v = r2[inside[:, None] | base[None, :]]
        phi[grp] = _shapley_from_values(v) @ b_groups[q_bits.sum(axis=1)]
    return phi, float(r2[-1])


# ------------------------------------------------------------------------------------------
# relative weights
# ------------------------------------------------------------------------------------------


def _lambda(rxx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Johnson's Lambda = Rxx^(1/2) (stacked), and Rxx^(-1/2)."""
    vals, vecs = np.linalg.eigh(rxx)
    vals = np.maximum(vals, _PIVOT_TOL)
    root = np.sqrt(vals)[..., None, :]
    lam = (vecs * root) @ np.swapaxes(vecs, -1, -2)
    inv_root = (vecs / root) @ np.swapaxes(vecs, -1, -2)
    return lam, inv_root


def _relative_weights(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw relative weights for one ``(q, q)`` or a stack ``(B, q, q)`` of correlation matrices.

    Returns the raw weights (summing to R²) and R².
    """
    rxx, rxy = c[..., :-1, :-1], c[..., :-1, -1]
    lam, inv_root = _lambda(rxx)
    beta = (inv_root @ rxy[..., None])[..., 0]  # outcome on the orthogonal Z
    raw = ((lam**2) @ (beta**2)[..., None])[..., 0]
    return raw, raw.sum(axis=-1)


def _logistic_fit(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    max_iter: int = 100,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, bool]:
    """Weighted logistic regression with an intercept (Newton-Raphson with step halving).

    ``start`` (coefficients, intercept first) starts the iterations there instead of at the
    base rate: a bootstrap refit started from the full-sample fit needs fewer steps to the
    same maximum (the log-likelihood is concave)."""
    design = np.column_stack([np.ones(len(y)), x])
    if start is not None:
        beta = np.array(start, dtype="float64")
    else:
        beta = np.zeros(design.shape[1])
        ybar = float(w @ y / w.sum())
        beta[0] = math.log(ybar / (1 - ybar))

    def loglik(bt: np.ndarray) -> float:
        eta = design @ bt
        return float(w @ (y * eta - np.logaddexp(0.0, eta)))

    ll = loglik(beta)
    for _ in range(max_iter):
        mu = 1.0 / (1.0 + np.exp(-(design @ beta)))
        grad = design.T @ (w * (y - mu))
        hess = (design * (w * mu * (1 - mu))[:, None]).T @ design
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return beta, False
        t = 1.0
        while t > 1e-8:
            ll_new = loglik(beta + t * step)
            if ll_new >= ll - 1e-12 * abs(ll):
                break
            t /= 2
        beta = beta + t * step
        ll = ll_new
        if np.max(np.abs(t * step)) < 1e-10:
            return beta, bool(np.max(np.abs(design @ beta)) < 30)
    return beta, False


def _relative_weights_logistic(
    x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, float, bool]:
    """Tonidandel & LeBreton (2010): raw weights (summing to R²_O), R²_O, converged."""
    sw = w.sum()
    mean = w @ x / sw
    xc = x - mean
    cov = (xc * w[:, None]).T @ xc / sw
    sd = np.sqrt(np.diag(cov))
    rxx = cov / np.outer(sd, sd)
    lam, inv_root = _lambda(rxx)
    z = (xc / sd) @ inv_root  # uncorrelated, unit weighted variance
    beta, converged = _logistic_fit(z, y, w)
    b = beta[1:]
    eta = z @ b
    prob = 1.0 / (1.0 + np.exp(-(beta[0] + eta)))
    pc = prob - w @ prob / sw
    yc = y - w @ y / sw
    r2o = float((w @ (pc * yc)) ** 2 / ((w @ pc**2) * (w @ yc**2)))
    sd_eta = math.sqrt(float(w @ (eta - w @ eta / sw) ** 2 / sw))
    beta_std = b * math.sqrt(r2o) / sd_eta  # b * sd(Z_k) * R_O / sd(logit), sd(Z_k) = 1
    raw = (lam**2) @ beta_std**2
    return raw, r2o, converged


# ------------------------------------------------------------------------------------------
# public functions on a correlation matrix
# ------------------------------------------------------------------------------------------


def _share_frame(
    drivers: list[str], raw: np.ndarray, method: str, mc_se: np.ndarray | None = None
) -> pd.DataFrame:
    total = raw.sum()
    out = pd.DataFrame(
        {
            "driver": pd.array(drivers, dtype="str"),
            "raw_share": raw,
            "share": raw / total if total > 0 else np.full(len(raw), np.nan),
            "mc_se": np.zeros(len(raw)) if mc_se is None else mc_se,
            "method": method,
        }
    )
    out.attrs["r2"] = float(total)
    out.attrs["method_description"] = METHODS[method]
    out.attrs["note"] = NOTE
    return out


def shapley_r2(
    corr: pd.DataFrame | np.ndarray,
    *,
    outcome: str | int | None = None,
    exact_max: int = EXACT_MAX,
    n_perm: int = 10_000,
    random_state: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Shapley value regression (LMG) of R² from a correlation or covariance matrix.

    Exact over all ``2**p`` subsets of drivers up to ``exact_max`` drivers (each subset's R²
    built from its parent's by one sweep, see the module docstring); above, estimated from
    ``n_perm`` random orders of the drivers (antithetic pairs) with a Monte-Carlo standard
    error per driver. Importances are associations, not effects.

    Parameters
    ----------
    corr : pandas.DataFrame or numpy.ndarray
        Correlation (or covariance, e.g. weighted) matrix of the drivers and the outcome.
        A matrix that is not positive semi-definite is replaced by the nearest correlation
        matrix, with a :class:`DriverWarning`.
    outcome : str or int, optional
        Label (or position) of the outcome; the last variable by default.
    exact_max : int, default=24
        Most drivers for the exact computation (at most :data:`EXACT_MAX`).
    n_perm : int, default=10000
        Random orders for the sampled estimate.
    random_state : int or numpy.random.Generator, default=0
        Seed of the sampled estimate.

    Returns
    -------
    pandas.DataFrame
        One row per driver: ``driver``, ``raw_share`` (sums to the full-model R²),
        ``share`` (sums to 1), ``mc_se`` (Monte-Carlo standard error of ``raw_share``; 0
        when exact), ``method`` (``"shapley_exact"`` or ``"shapley_sampled"``). ``attrs``
        holds ``r2``, ``method_description`` and ``note``.
    """
    c, drivers, _ = _as_corr(corr, outcome)
    p = len(drivers)
    if p <= min(exact_max, EXACT_MAX):
        raw, _ = _shapley_exact(c)
        return _share_frame(drivers, raw, "shapley_exact")
    raw, se = _shapley_sampled(c, n_perm, np.random.default_rng(random_state))
    return _share_frame(drivers, raw, "shapley_sampled", se)


def owen_r2(
    corr: pd.DataFrame | np.ndarray,
    groups: Mapping[str, Sequence[str]],
    *,
    outcome: str | int | None = None,
    exact_max: int = EXACT_MAX,
    n_perm: int = 10_000,
    random_state: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Owen values of R²: Shapley value regression with the drivers in groups (themes).

    A group's total is its Shapley value in the game between groups (so a handful of themes
    such as arrival, room, staff and price can be read on their own), and it is split among
    the group's drivers by their Shapley values inside the group, with every combination of
    the other groups already in the model (Owen 1977). With one group, or one driver per
    group, the Owen values are the Shapley values.

    Parameters
    ----------
    corr : pandas.DataFrame or numpy.ndarray
        As in :func:`shapley_r2`; a DataFrame, so that drivers have names.
    groups : mapping of str to sequence of str
        Group name to its drivers. Drivers not named are put in a group of their own.
    outcome, exact_max, n_perm, random_state
        As in :func:`shapley_r2`.

    Returns
    -------
    pandas.DataFrame
        One row per driver: ``driver``, ``group``, ``raw_share``, ``share``, ``mc_se``,
        ``group_raw_share``, ``group_share`` (the group's totals), ``share_in_group``
        (the driver's part of its group, summing to 1 within each group), ``method``.
    """
    c, drivers, _ = _as_corr(corr, outcome)
    group_of = _group_map(drivers, groups)
    names = list(dict.fromkeys(group_of[d] for d in drivers))
    idx = [np.array([i for i, d in enumerate(drivers) if group_of[d] == g]) for g in names]
    p = len(drivers)
    if p <= min(exact_max, EXACT_MAX):
        raw, _ = _owen_exact(c, idx)
        out = _share_frame(drivers, raw, "owen_exact")
    else:
        raw, se = _shapley_sampled(c, n_perm, np.random.default_rng(random_state), idx)
        out = _share_frame(drivers, raw, "owen_sampled", se)
    out.insert(1, "group", pd.array([group_of[d] for d in drivers], dtype="str"))
    totals = out.groupby("group", sort=False)["raw_share"].transform("sum")
    out["group_raw_share"] = totals
    out["group_share"] = totals / out["raw_share"].sum()
    out["share_in_group"] = out["raw_share"] / totals
    return out


def _group_map(drivers: list[str], groups: Mapping[str, Sequence[str]]) -> dict[str, str]:
    group_of: dict[str, str] = {}
    for name, members in groups.items():
        for d in members:
            if d not in drivers:
                raise ValueError(f"group {name!r} names {d!r}, which is not a driver")
            if d in group_of:
                raise ValueError(f"driver {d!r} is in two groups ({group_of[d]!r}, {name!r})")
            group_of[d] = str(name)
    for d in drivers:
        group_of.setdefault(d, d)
    return group_of


def relative_weights(
    corr: pd.DataFrame | np.ndarray, *, outcome: str | int | None = None
) -> pd.DataFrame:
    """Johnson's relative weights (2000) from a correlation or covariance matrix.

    The drivers are replaced by their closest orthogonal counterparts Z (Johnson 1966),
    the outcome is regressed on Z, and each Z's part of R² is shared back among the drivers
    by their squared correlations with it. Importances are associations, not effects.

    Parameters
    ----------
    corr : pandas.DataFrame or numpy.ndarray
        Correlation (or covariance) matrix of the drivers and the outcome.
    outcome : str or int, optional
        Label (or position) of the outcome; the last variable by default.

    Returns
    -------
    pandas.DataFrame
        One row per driver: ``driver``, ``raw_share`` (sums to R²), ``share`` (sums to 1),
        ``mc_se`` (0), ``method`` (``"relative_weights"``).
    """
    c, drivers, _ = _as_corr(corr, outcome)
    raw, _ = _relative_weights(c)
    return _share_frame(drivers, raw, "relative_weights")


# ------------------------------------------------------------------------------------------
# from respondents' data
# ------------------------------------------------------------------------------------------


def _column(data: pd.DataFrame, col: str, role: str) -> np.ndarray:
    if col not in data.columns:
        raise DataValidationError(
            f"the {role} column {col!r} is not in the data",
            column=col,
            rule=f"{role} column present",
            fix=f"Name an existing column as the {role}, or map it in engagement.yml.",
        )
    s = data[col]
    if s.dtype == bool or str(s.dtype) == "boolean":
        s = s.astype("Float64")
    try:
        return s.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):
        raise DataValidationError(
            f"the {role} column {col!r} is not numeric (dtype {s.dtype})",
            column=col,
            rule=f"{role} is numeric",
            fix="Recode the answers as numbers (the codebook's scale) before the analysis.",
        ) from None


def _driver_list(data: pd.DataFrame, drivers: Sequence[str] | None, outcome: str) -> list[str]:
    """The driver columns: as given, or every ``att_*`` column."""
    if drivers is None:
        drivers = [c for c in data.columns if str(c).startswith("att_")]
    elif isinstance(drivers, str):
        drivers = [drivers]
    drivers = list(drivers)
    if not drivers:
        raise DataValidationError(
            "no driver columns given (and no att_* columns found)",
            rule="at least one driver",
            fix="Pass drivers=[...] naming the attribute rating columns.",
        )
    if outcome in drivers:
        raise ValueError(f"the outcome {outcome!r} is also listed as a driver")
    return drivers


def _weights(data: pd.DataFrame, weight: str | None) -> np.ndarray:
    """Survey weights (ones without a weight column); refused if missing or negative."""
    if weight is None:
        return np.ones(len(data))
    w = _column(data, weight, "weight")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise DataValidationError(
            f"the weight column {weight!r} has missing, infinite or negative values",
            column=weight,
            rule="weights are finite and >= 0",
            fix="Fix or drop those respondents' weights before the analysis.",
        )
    return w


def _cluster_codes(data: pd.DataFrame, cluster: str) -> tuple[np.ndarray, int | None]:
    """Integer codes of the cluster column (-1 = missing) and, for a categorical column,
    the number of its categories (else None: the clusters present are counted later)."""
    if cluster not in data.columns:
        raise DataValidationError(
            f"the cluster column {cluster!r} is not in the data",
            column=cluster,
            rule="cluster column present",
            fix="Name an existing column (e.g. 'unit_id') as the cluster, or leave it out.",
        )
    s = data[cluster]
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy(dtype=np.int64), len(s.cat.categories)
    codes, _ = pd.factorize(s, use_na_sentinel=True)
    return codes.astype(np.int64), None


def _check_clusters(
    codes: np.ndarray, n_levels: int | None, cluster: str
) -> tuple[np.ndarray, int]:
    """Refuse respondents without a cluster; renumber the clusters present unless the
    categories are fixed (categorical column)."""
    if np.any(codes < 0):
        raise DataValidationError(
            f"{int((codes < 0).sum())} respondents have no value in the cluster column {cluster!r}",
            column=cluster,
            rule="every respondent in a cluster",
            fix="Fill the cluster id (or drop those respondents) before the analysis.",
        )
    if n_levels is None:
        uniq, codes = np.unique(codes, return_inverse=True)
        n_levels = len(uniq)
    return codes, n_levels


class _Resampler:
    """Draws one bootstrap resample as a count per respondent (call it): respondents with
    replacement, or (with cluster codes) clusters with replacement, each drawn cluster
    bringing all its respondents. :meth:`clusters` draws the same resample (the same random
    numbers) as a count per cluster."""

    def __init__(
        self, rng: np.random.Generator, n: int, codes: np.ndarray | None, n_levels: int | None
    ) -> None:
        self.rng, self.n, self.codes = rng, n, codes
        self.n_levels = None if codes is None else int(n_levels)

    def clusters(self) -> np.ndarray:
        g = self.n_levels
        return np.bincount(self.rng.integers(0, g, g), minlength=g)

    def __call__(self) -> np.ndarray:
        if self.codes is None:
            return np.bincount(self.rng.integers(0, self.n, self.n), minlength=self.n)
        return self.clusters()[self.codes]


def _resampler(
    rng: np.random.Generator, n: int, codes: np.ndarray | None, n_levels: int | None
) -> _Resampler:
    """A :class:`_Resampler` over ``n`` respondents (in clusters ``codes`` when given)."""
    return _Resampler(rng, n, codes, n_levels)


def _binary_levels(y: np.ndarray) -> np.ndarray | None:
    """The two values of a binary outcome (low, high), or None if it has more or fewer."""
    seen = y[~np.isnan(y)]
    if len(seen) == 0:
        return None
    other = seen[seen != seen[0]]
    if len(other) == 0 or np.any(other != other[0]):
        return None
    return np.sort([seen[0], other[0]])


def _check_moments(
    corr: np.ndarray, var: np.ndarray, scale: np.ndarray, counts: np.ndarray, names: list[str]
) -> None:
    """Refuse a column that does not vary, or a pair without a defined correlation."""
    for j, name in enumerate(names):
        if counts[j, j] < 3 or not var[j] > 1e-20 * scale[j]:
            raise DataValidationError(
                f"the column {name!r} is constant (or nearly empty) among the respondents "
                "used; it cannot be correlated",
                column=name,
                rule="a driver varies",
                fix="Drop this driver from the analysis (or this group).",
            )
    bad = np.argwhere((counts < 3) | ~np.isfinite(corr))
    if len(bad):
        j, k = bad[0]
        raise DataValidationError(
            f"{names[j]!r} and {names[k]!r} were rated together by fewer than 3 "
            "respondents (or do not vary together); their correlation is undefined",
            column=f"{names[j]}, {names[k]}",
            rule="pairwise base of at least 3",
            fix="Drop one of them, or use a larger group of respondents.",
        )


class DriverModel:
    """Key driver analysis of an outcome on attribute ratings, scikit-learn style.

    ``fit`` computes the importances once from all respondents (the point estimate), then,
    if ``n_boot > 0``, resamples respondents (or, with ``cluster=``, whole clusters such as
    hotels) for intervals, rank probabilities and the "#1 vs #2" comparison. Importances are derived from correlations: they are
    **associations, not effects** (the table's ``note`` says so).

    Parameters
    ----------
    method : {"auto", "shapley", "relative_weights"}, default="auto"
        ``"shapley"``: Shapley value regression (exact up to ``exact_max`` drivers, sampled
        above). ``"relative_weights"``: Johnson's relative weights; for a 0/1 outcome, the
        logistic version of Tonidandel & LeBreton (2010). ``"auto"``: Shapley for a rating
        outcome, logistic relative weights for a binary one. Shapley is not offered for a
        binary outcome (it would treat 0/1 as a rating scale).
    missing : {"pairwise", "listwise"}, default="pairwise"
        Missing ratings: correlate each pair on the respondents who rated both, or keep
        complete respondents only. A binary outcome always uses complete respondents (the
        logistic fit needs them), and the output says so.
    n_boot : int, default=500
        Bootstrap resamples of respondents (of clusters with ``fit(..., cluster=...)``); 0
        for none (point estimate only).
    ci : float, default=0.95
        Level of the percentile intervals.
    exact_max : int, default=24
        Most drivers for the exact Shapley value.
    n_perm : int, default=10000
        Random orders for the sampled Shapley value (above ``exact_max`` drivers).
    top : int, default=3
        The "is #k really ahead of #k+1?" comparisons are made for the first ``top`` drivers.
    groups : mapping of str to sequence of str, optional
        Driver groups (themes); if given, ``group_importances_`` holds Owen values
        (linear outcomes only; point estimate).
    reliability_base : int, default=30
        A base below this is flagged ``reliable=False`` (with a warning).
    random_state : int or numpy.random.Generator, default=0
        Seed of the bootstrap and of the sampled Shapley value.

    Attributes
    ----------
    importances_ : pandas.DataFrame
        One row per driver, in the drivers' order: ``driver``, ``raw_share`` (sums to the
        R² or R²_O), ``share`` (sums to 1), ``ci_low``, ``ci_high`` (interval of ``share``),
        ``raw_ci_low``, ``raw_ci_high``, ``rank`` (1 = largest), ``p_rank1`` (bootstrap
        probability of being first), ``mc_se`` (Monte-Carlo error of ``raw_share`` when
        sampled, else 0), ``method``, ``n`` (respondents used), ``n_eff`` (Kish),
        ``missing``, ``reliable``, ``note``. Intervals and ``p_rank1`` are NaN without
        bootstrap.
    rank_probabilities_ : pandas.DataFrame or None
        Drivers x ranks 1..p: the share of resamples giving each driver each rank.
    top_differences_ : pandas.DataFrame or None
        ``first``, ``second``, ``diff`` (difference of their shares), ``ci_low``,
        ``ci_high``, ``p_ahead`` (share of resamples with ``first`` ahead) for consecutive
        pairs among the first ``top`` drivers.
    group_importances_ : pandas.DataFrame or None
        Owen values by driver and group (see :func:`owen_r2`).
    drivers_ : list of str
        The drivers, in the order of the rows of ``importances_``.
    r2_ : float
        Full-model R² (R²_O for a binary outcome).
    method_, method_description_ : str
        Key of the method used (e.g. ``"shapley_exact"``) and its description.
    outcome_type_ : {"rating", "binary"}
    missing_ : str
        Missing-value handling actually used.
    n_, n_eff_, n_min_pair_ : int, float, int
        Respondents used, Kish effective base, and the smallest pairwise base.
    corr_ : pandas.DataFrame or None
        Correlation matrix given to the solver (after any repair).
    repaired_ : bool
        Whether the pairwise matrix was not positive semi-definite and was repaired.
    n_boot_repaired_ : int
        Resamples whose matrix needed the same repair.
    boot_raw_ : numpy.ndarray or None
        Raw shares of each resample, shape ``(n_boot, p)``.
    cluster_ : str or None
        Cluster column of the bootstrap (None: respondents were resampled).
    n_clusters_ : int or None
        Clusters among the respondents used.
    note_ : str
    """

    def __init__(
        self,
        *,
        method: str = "auto",
        missing: str = "pairwise",
        n_boot: int = 500,
        ci: float = 0.95,
        exact_max: int = EXACT_MAX,
        n_perm: int = 10_000,
        top: int = 3,
        groups: Mapping[str, Sequence[str]] | None = None,
        reliability_base: int = 30,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        self.method = method
        self.missing = missing
        self.n_boot = n_boot
        self.ci = ci
        self.exact_max = exact_max
        self.n_perm = n_perm
        self.top = top
        self.groups = groups
        self.reliability_base = reliability_base
        self.random_state = random_state

    def _validate_params(self) -> None:
        checks = {
            "method": self.method in ("auto", "shapley", "relative_weights"),
            "missing": self.missing in ("pairwise", "listwise"),
            "n_boot": isinstance(self.n_boot, (int, np.integer)) and self.n_boot >= 0,
            "ci": isinstance(self.ci, float) and 0 < self.ci < 1,
            "exact_max": isinstance(self.exact_max, (int, np.integer))
            and 1 <= self.exact_max <= EXACT_MAX,
            "n_perm": isinstance(self.n_perm, (int, np.integer)) and self.n_perm >= 4,
            "top": isinstance(self.top, (int, np.integer)) and self.top >= 2,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"invalid parameter(s) {bad}: method in {{'auto', 'shapley', "
                "'relative_weights'}, missing in {'pairwise', 'listwise'}, n_boot >= 0, "
                f"0 < ci < 1, 1 <= exact_max <= {EXACT_MAX}, n_perm >= 4, top >= 2"
            )

    def fit(
        self,
        data: pd.DataFrame,
        outcome: str = "nps",
        drivers: Sequence[str] | None = None,
        *,
        weight: str | None = None,
        cluster: str | None = None,
    ) -> DriverModel:
        """Compute the importances (and, with ``n_boot``, their uncertainty).

        Parameters
        ----------
        data : pandas.DataFrame
            One row per respondent, e.g. the canonical ``cx_survey`` table.
        outcome : str, default="nps"
            Outcome column: a rating (NPS 0-10, likelihood to return, stays) or a 0/1
            outcome (satisfied, retained), which is detected and never treated as a rating.
        drivers : sequence of str, optional
            Attribute rating columns; all ``att_*`` columns by default. Missing = NaN.
        weight : str, optional
            Survey weight column (positive, finite).
        cluster : str, optional
            Cluster column (e.g. ``"unit_id"``, the hotel). The bootstrap then resamples
            whole clusters, keeping each cluster's respondents together, since responses
            within a hotel are correlated; the point estimate is unchanged. With a
            categorical column, every category counts as a cluster (used or not), so two
            fits with the same ``random_state`` and categories draw the same clusters
            (:func:`compare_segments` relies on this).

        Returns
        -------
        DriverModel
            ``self``, fitted.

        Raises
        ------
        DataValidationError
            A column is missing, not numeric, constant, or the weights are invalid; too few
            respondents; Shapley requested for a binary outcome.
        """
        self._validate_params()
        # Tall-and-skinny products (respondents x drivers) are fastest on one BLAS thread;
        # several threads contending for busy cores can be 100x slower.
        with _blas_controller().limit(limits=1, user_api="blas"):
            return self._fit(data, outcome, drivers, weight, cluster)

    def _fit(
        self,
        data: pd.DataFrame,
        outcome: str,
        drivers: Sequence[str] | None,
        weight: str | None,
        cluster: str | None = None,
    ) -> DriverModel:
        rng = np.random.default_rng(self.random_state)
        # the resamples get their own stream, drawn first: the same seed gives the same
        # resamples whatever the point estimate consumed
        boot_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
        drivers = _driver_list(data, drivers, outcome)
        xy = np.empty((len(data), len(drivers) + 1), order="F")  # filled column by column
        for j, d in enumerate(drivers):
            xy[:, j] = _column(data, d, "driver")
        xy[:, -1] = _column(data, outcome, "outcome")
        x, y = xy[:, :-1], xy[:, -1]
        w = _weights(data, weight)
        keep = ~np.isnan(y) & (w > 0)
        codes = n_levels = None
        if cluster is not None:
            codes, n_levels = _cluster_codes(data, cluster)
        levels = _binary_levels(y)
        self.outcome_type_ = "binary" if levels is not None else "rating"
        self.outcome_ = outcome
        notes = [NOTE]
        if self.outcome_type_ == "binary":
            if self.method == "shapley":
                raise DataValidationError(
                    f"the outcome {outcome!r} is binary (two values); Shapley value "
                    "regression of R² would treat it as a rating scale",
                    column=outcome,
                    rule="binary outcome, method made for it",
                    fix="Use method='relative_weights' (logistic, Tonidandel & LeBreton "
                    "2010) or method='auto'.",
                )
            xy[:, -1] = np.where(np.isnan(y), np.nan, y == levels[1])
            method = "relative_weights_logistic"
            missing = "listwise"
            if self.missing == "pairwise":
                notes.append(
                    "Binary outcome: logistic relative weights need complete respondents, "
                    "so missing ratings were handled listwise."
                )
            if not np.array_equal(levels, [0.0, 1.0]):
                notes.append(f"Outcome coded {levels[1]:g} = 1 and {levels[0]:g} = 0.")
            if self.groups:
                notes.append("Group (Owen) values are computed for rating outcomes only.")
        else:
            missing = self.missing
            exact = len(drivers) <= self.exact_max
            if self.method == "relative_weights":
                method = "relative_weights"
            else:
                method = "shapley_exact" if exact else "shapley_sampled"
        if missing == "listwise":
            keep &= ~np.isnan(x).any(axis=1)
        else:
            keep &= ~np.isnan(x).all(axis=1)
        if not keep.all():
            xy, w = xy[keep], w[keep]
            if codes is not None:
                codes = codes[keep]
        x, y = xy[:, :-1], xy[:, -1]
        n = len(y)
        p = len(drivers)
        self.cluster_ = cluster
        self.n_clusters_ = None
        if codes is not None:
            codes, n_levels = _check_clusters(codes, n_levels, cluster)
            self.n_clusters_ = len(np.unique(codes))
        if n < p + 2:
            raise DataValidationError(
                f"{n} usable respondents for {p} drivers: too few for a driver analysis",
                column=outcome,
                rule="more respondents than drivers + 1",
                fix="Use fewer drivers, a larger group, or missing='pairwise'.",
            )
        self.n_ = n
        self.n_eff_ = float(w.sum() ** 2 / (w**2).sum())
        self.missing_ = missing
        self.method_ = method
        self.method_description_ = METHODS[method]
        self.drivers_ = drivers
        self.repaired_ = False
        self.n_boot_repaired_ = 0
        self.corr_ = None
        self.group_importances_ = None

        if method == "relative_weights_logistic":
            moments = _Moments(xy, w, False)
            c, var = moments.corr_and_var(w)
            _check_moments(c, var, moments.scale, moments.pair_counts(), [*drivers, outcome])
            self.n_min_pair_ = n
            raw, self.r2_, converged = _relative_weights_logistic(x, y, w)
            if not converged:
                warnings.warn(
                    "the logistic fit did not converge (the outcome may be (quasi-)separated "
                    "by the drivers); the logistic relative weights are unreliable",
                    DriverWarning,
                    stacklevel=2,
                )
                notes.append("The logistic fit did not converge (possible separation).")
            mc_se = np.zeros(p)
        else:
            moments = _Moments(xy, w, missing == "pairwise")
            c, var = moments.corr_and_var(w)
            counts = moments.pair_counts()
            _check_moments(c, var, moments.scale, counts, [*drivers, outcome])
            self.n_min_pair_ = int(counts.min())
            c, self.repaired_, min_eig = _repair(c)
            if self.repaired_:
                warnings.warn(
                    f"the pairwise correlation matrix is not positive semi-definite "
                    f"(smallest eigenvalue {min_eig:.3g}); the nearest correlation matrix "
                    "(Higham 2002) was used",
                    DriverWarning,
                    stacklevel=2,
                )
                notes.append(
                    "The pairwise correlation matrix was not positive semi-definite and was "
                    "replaced by the nearest correlation matrix (Higham 2002)."
                )
            self.corr_ = pd.DataFrame(c, index=[*drivers, outcome], columns=[*drivers, outcome])
            raw, mc_se, self.r2_ = self._point(c, rng)
            if self.groups:
                self.group_importances_ = owen_r2(
                    self.corr_,
                    self.groups,
                    exact_max=self.exact_max,
                    n_perm=self.n_perm,
                    random_state=rng,
                )
        reliable = n >= self.reliability_base
        if not reliable:
            warnings.warn(
                f"only {n} respondents (reliability base {self.reliability_base}); the "
                "importances are flagged unreliable",
                DriverWarning,
                stacklevel=2,
            )
        self.note_ = " ".join(notes)

        boot = None
        if self.n_boot:
            if codes is not None:
                notes.append(
                    f"Intervals from {self.n_boot} bootstrap resamples of the "
                    f"{self.n_clusters_} clusters ({cluster!r}), each cluster's respondents "
                    "kept together."
                )
                if self.n_clusters_ < _FEW_CLUSTERS:
                    warnings.warn(
                        f"only {self.n_clusters_} clusters in {cluster!r}: a cluster "
                        "bootstrap with so few clusters gives unreliable intervals",
                        DriverWarning,
                        stacklevel=2,
                    )
            self.note_ = " ".join(notes)
            draw = _resampler(boot_rng, n, codes, n_levels)
            boot = self._bootstrap(x, y, w, method, boot_rng, draw)
        self.boot_raw_ = boot
        self.importances_ = self._table(raw, mc_se, boot, reliable)
        return self

    def _point(
        self, c: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, float]:
        p = c.shape[0] - 1
        if self.method_ == "relative_weights":
            raw, r2 = _relative_weights(c)
            return raw, np.zeros(p), float(r2)
        if self.method_ == "shapley_exact":
            raw, r2 = _shapley_exact(c)
            return raw, np.zeros(p), r2
        raw, se = _shapley_sampled(c, self.n_perm, rng)
        return raw, se, float(raw.sum())

    def _bootstrap(
        self,
        x: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        method: str,
        rng: np.random.Generator,
        draw: Callable[[], np.ndarray],
    ) -> np.ndarray:
        n, p = x.shape
        counts = np.empty(n)
        out = np.empty((self.n_boot, p))
        if method == "relative_weights_logistic":
            for b in range(self.n_boot):
                counts[:] = draw()
                sel = counts > 0
                raw, _, _ = _relative_weights_logistic(x[sel], y[sel], (w * counts)[sel])
                out[b] = raw
            return out
        moments = _Moments(np.column_stack([x, y]), w, self.missing_ == "pairwise")
        # a cluster bootstrap adds up per-cluster sums (computed once) instead of passing
        # over every respondent in every resample: the same numbers, to rounding
        by_cluster = isinstance(draw, _Resampler) and draw.codes is not None
        if by_cluster:
            moments.cluster_sums(w, draw.codes, draw.n_levels)
        stack = np.empty((self.n_boot, p + 1, p + 1))
        for b in range(self.n_boot):
            if by_cluster:
                c = moments.corr_and_var_clusters(draw.clusters())[0]
            else:
                counts[:] = draw()
                c = moments.corr(w * counts)
            if not np.all(np.isfinite(c)):
                raise DataValidationError(
                    "a bootstrap resample left a pair of ratings without a correlation "
                    "(too few respondents rated both)",
                    rule="pairwise base of at least 3 in every resample",
                    fix="Use missing='listwise', fewer drivers or a larger group.",
                )
            stack[b], repaired, _ = _repair(c)
            self.n_boot_repaired_ += int(repaired)
        if method == "relative_weights":
            return _relative_weights(stack)[0]
        if method == "shapley_exact":
            return _shapley_stack(stack)[0]
        for b in range(self.n_boot):
            out[b] = _shapley_sampled(stack[b], self.n_perm, rng)[0]
        return out

    def _table(
        self,
        raw: np.ndarray,
        mc_se: np.ndarray,
        boot: np.ndarray | None,
        reliable: bool,
    ) -> pd.DataFrame:
        p = len(raw)
        total = raw.sum()
        rank = 1 + (raw[None, :] > raw[:, None]).sum(axis=1)
        nan = np.full(p, np.nan)
        ci_low = ci_high = raw_lo = raw_hi = p1 = nan
        self.rank_probabilities_ = None
        self.top_differences_ = None
        if boot is not None:
            alpha = (1 - self.ci) / 2
            shares = boot / boot.sum(axis=1, keepdims=True)
            ci_low, ci_high = np.quantile(shares, [alpha, 1 - alpha], axis=0)
            raw_lo, raw_hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
            boot_rank = np.argsort(np.argsort(-boot, axis=1, kind="stable"), axis=1)
            probs = (boot_rank[:, :, None] == np.arange(p)[None, None, :]).mean(axis=0)
            self.rank_probabilities_ = pd.DataFrame(
                probs,
                index=pd.Index(self.drivers_, name="driver"),
                columns=pd.Index(range(1, p + 1), name="rank"),
            )
            p1 = probs[:, 0]
            order = np.argsort(-raw, kind="stable")
            rows = []
            for i in range(min(self.top, p) - 1):
                a, b = order[i], order[i + 1]
                d = shares[:, a] - shares[:, b]
                lo, hi = np.quantile(d, [alpha, 1 - alpha])
                rows.append(
                    {
                        "first": self.drivers_[a],
                        "second": self.drivers_[b],
                        "diff": (raw[a] - raw[b]) / total,
                        "ci_low": lo,
                        "ci_high": hi,
                        "p_ahead": float((d > 0).mean()),
                    }
                )
            self.top_differences_ = pd.DataFrame(rows)
        return pd.DataFrame(
            {
                "driver": pd.array(self.drivers_, dtype="str"),
                "raw_share": raw,
                "share": raw / total,
                "ci_low": ci_low,
                "ci_high": ci_high,
                "raw_ci_low": raw_lo,
                "raw_ci_high": raw_hi,
                "rank": rank,
                "p_rank1": p1,
                "mc_se": mc_se,
                "method": self.method_,
                "n": self.n_,
                "n_eff": self.n_eff_,
                "missing": self.missing_,
                "reliable": reliable,
                "note": self.note_,
            }
        )


# ------------------------------------------------------------------------------------------
# regression helpers for the analyses below (complete respondents, weighted least squares)
# ------------------------------------------------------------------------------------------


class _Complete:
    """The respondents who answered the outcome and every driver (listwise), as arrays."""

    def __init__(
        self,
        data: pd.DataFrame,
        outcome: str,
        drivers: list[str],
        weight: str | None,
        cluster: str | None = None,
    ) -> None:
        x = np.column_stack([_column(data, d, "driver") for d in drivers])
        y = _column(data, outcome, "outcome")
        w = _weights(data, weight)
        keep = ~np.isnan(y) & ~np.isnan(x).any(axis=1) & (w > 0)
        self.n_all = len(data)
        self.x, self.y, self.w = x[keep], y[keep], w[keep]
        self.n = int(keep.sum())
        self.codes: np.ndarray | None = None
        self.n_levels: int | None = None
        if cluster is not None:
            codes, n_levels = _cluster_codes(data, cluster)
            self.codes, self.n_levels = _check_clusters(codes[keep], n_levels, cluster)
        if self.n < len(drivers) + 2:
            raise DataValidationError(
                f"{self.n} respondents answered {outcome!r} and all {len(drivers)} drivers: "
                "too few for the analysis",
                column=outcome,
                rule="more complete respondents than drivers + 1",
                fix="Use fewer drivers or a larger group of respondents.",
            )
        for j, d in enumerate(drivers):
            if np.ptp(self.x[:, j]) == 0:
                raise DataValidationError(
                    f"the driver {d!r} is constant among the complete respondents",
                    column=d,
                    rule="a driver varies",
                    fix="Drop this driver from the analysis (or this group).",
                )


def _with_const(x: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(x)), x])


def _wls(design: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least squares coefficients (minimum-norm if the design is singular)."""
    sw = np.sqrt(w)
    return np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)[0]


def _sandwich(
    design: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    beta: np.ndarray,
    codes: np.ndarray | None = None,
) -> np.ndarray:
    """Heteroskedasticity-robust (HC1) covariance of WLS coefficients, or cluster-robust
    (CR1, statsmodels' ``cov_type="cluster"`` small-sample factor) with cluster codes."""
    n, k = design.shape
    resid = y - design @ beta
    bread = np.linalg.pinv((design * w[:, None]).T @ design)
    score = design * (w * resid)[:, None]
    if codes is None:
        meat = score.T @ score
        factor = n / (n - k)
    else:
        g = int(codes.max()) + 1
        sums = np.zeros((g, k))
        np.add.at(sums, codes, score)
        n_g = len(np.unique(codes))
        meat = sums.T @ sums
        factor = n_g / (n_g - 1) * (n - 1) / (n - k)
    return factor * bread @ meat @ bread


def _normal_p(z: np.ndarray | float) -> np.ndarray:
    """Two-sided normal p-value."""
    from scipy.stats import norm

    return 2 * norm.sf(np.abs(z))


def _upper_p(z: float) -> float:
    """One-sided normal p-value (the estimate is above 0)."""
    from scipy.stats import norm

    return float(norm.sf(z))


def _z_crit(ci: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + ci / 2))


def _bh(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg: (rejected, q-values); NaN p-values are left out."""
    q = bh_qvalues(p)
    return np.nan_to_num(q, nan=np.inf) <= alpha, q


# ------------------------------------------------------------------------------------------
# per-segment drivers
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentDrivers:
    """Driver importances per segment, side by side, with the significant differences marked.

    Attributes
    ----------
    shares : pandas.DataFrame
        One row per segment and driver: ``segment`` then the columns of
        :attr:`DriverModel.importances_` (``share``, ``ci_low``, ``ci_high``, ``rank``,
        ``p_rank1``, ``n``, ...) and ``r2``.
    differences : pandas.DataFrame
        One row per pair of segments and driver: ``segment_a``, ``segment_b``, ``driver``,
        ``measure`` (``"share"`` or ``"raw_share"``), ``estimate_a``, ``estimate_b``,
        ``diff`` (a - b), ``ci_low``, ``ci_high`` (bootstrap percentile interval of the
        difference), ``p_value`` (bootstrap), ``q_value`` (Benjamini-Hochberg over every
        row of this table), ``significant`` (``q_value < alpha``).
    models : dict of str to DriverModel
        The fitted model of each segment.
    note : str
    """

    shares: pd.DataFrame
    differences: pd.DataFrame
    models: dict[str, DriverModel]
    note: str

    def side_by_side(self) -> pd.DataFrame:
        """Drivers x segments: each segment's share, and ``differs`` naming the pairs of
        segments whose shares differ significantly (empty if none)."""
        wide = self.shares.pivot(index="driver", columns="segment", values="share")
        wide = wide.reindex(index=list(dict.fromkeys(self.shares["driver"])))
        wide = wide[list(self.models)]
        sig = self.differences[self.differences["significant"]]
        pairs = (sig["segment_a"] + " vs " + sig["segment_b"]).groupby(sig["driver"]).agg("; ".join)
        wide["differs"] = pairs.reindex(wide.index).fillna("").astype("str")
        wide.columns.name = None
        return wide.reset_index()


@_one_blas_thread
def compare_segments(
    data: pd.DataFrame,
    outcome: str = "nps",
    drivers: Sequence[str] | None = None,
    *,
    by: str,
    segments: Sequence[object] | None = None,
    weight: str | None = None,
    cluster: str | None = None,
    method: str = "auto",
    missing: str = "pairwise",
    n_boot: int = 500,
    ci: float = 0.95,
    alpha: float = 0.05,
    measure: str = "share",
    min_base: int = 30,
    random_state: int | None = 0,
) -> SegmentDrivers:
    """Key drivers per segment side by side, with the differences that are significant.

    A :class:`DriverModel` is fitted in each segment (business vs leisure travellers,
    behavioural segments, ...), each with its bootstrap. For every pair of segments and every
    driver, the difference of the shares is tested by the bootstrap: the resamples of the two
    segments are independent (respondents differ) or, with ``cluster``, the same clusters
    (hotels) are drawn for every segment, so that the difference keeps the hotels' common
    part. The p-value is the two-sided bootstrap percentile p-value,
    ``2 min(#(d <= 0) + 1, #(d >= 0) + 1) / (B + 1)``, capped at 1. The Benjamini-Hochberg
    false discovery rate is controlled over all the tests of the comparison (every pair of
    segments x every driver); ``significant`` marks ``q_value < alpha``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    outcome : str, default="nps"
        Outcome column.
    drivers : sequence of str, optional
        Attribute rating columns; all ``att_*`` columns by default.
    by : str
        Segment column, e.g. ``"trip_purpose"`` or a behavioural segment.
    segments : sequence, optional
        Segment values to compare, in this order; every value with at least ``min_base``
        respondents by default (sorted).
    weight : str, optional
        Survey weight column.
    cluster : str, optional
        Cluster column for a cluster bootstrap (e.g. ``"unit_id"``).
    method, missing, n_boot, ci
        As in :class:`DriverModel`; ``n_boot`` must be at least 100 (the test needs it).
    alpha : float, default=0.05
        False discovery rate.
    measure : {"share", "raw_share"}, default="share"
        Compare normalised shares (the driver's part of what the model explains) or raw
        shares (its part of the outcome's variance, which also moves with R²).
    min_base : int, default=30
        Segments with fewer respondents answering the outcome are left out (with a warning).
    random_state : int, default=0
        Seed.

    Returns
    -------
    SegmentDrivers
        ``shares`` (long), ``differences``, ``models``, ``note``; ``side_by_side()`` for
        the wide table.

    Raises
    ------
    DataValidationError
        The segment column is missing, or fewer than two segments reach ``min_base``.
    """
    if by not in data.columns:
        raise DataValidationError(
            f"the segment column {by!r} is not in the data",
            column=by,
            rule="segment column present",
            fix="Name an existing column as by=..., e.g. 'trip_purpose'.",
        )
    if measure not in ("share", "raw_share"):
        raise ValueError("measure must be 'share' or 'raw_share'")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 100:
        raise ValueError("compare_segments tests differences by the bootstrap: n_boot >= 100")
    drivers = _driver_list(data, drivers, outcome)
    d = data
    if cluster is not None:
        if cluster not in data.columns:
            _cluster_codes(data, cluster)  # raises, naming the column
        # one set of categories for every segment: the same seed then draws the same hotels
        d = data.assign(**{cluster: pd.Categorical(data[cluster])})
    key = d[by]
    if segments is None:
        segments = sorted(key.dropna().unique().tolist(), key=str)
    rng = np.random.default_rng(random_state)
    seeds = rng.integers(0, 2**63 - 1, size=len(segments))
    has_outcome = d[outcome].notna() if outcome in d.columns else pd.Series(True, d.index)
    models: dict[str, DriverModel] = {}
    skipped = []
    for seg, seed in zip(segments, seeds, strict=True):
        part = d[key == seg]
        base = int(has_outcome[part.index].sum())
        if base < min_base:
            skipped.append(f"{seg} (n = {base})")
            continue
        model = DriverModel(
            method=method,
            missing=missing,
            n_boot=n_boot,
            ci=ci,
            reliability_base=min_base,
            # with clusters: the same seed for every segment, so the same hotels are drawn
            random_state=int(seeds[0]) if cluster is not None else int(seed),
        )
        models[str(seg)] = model.fit(part, outcome, drivers, weight=weight, cluster=cluster)
    if skipped:
        warnings.warn(
            f"segments below the base of {min_base} left out: {', '.join(skipped)}",
            DriverWarning,
            stacklevel=2,
        )
    if len(models) < 2:
        raise DataValidationError(
            f"fewer than two segments of {by!r} have {min_base} respondents or more",
            column=by,
            rule=f"two segments with a base of {min_base}",
            fix="Merge small segments, lower min_base, or compare a larger sample.",
        )
    shares = pd.concat(
        [
            m.importances_.assign(r2=m.r2_).pipe(
                lambda t, s=seg: t.assign(segment=pd.array([s] * len(t), dtype="str"))
            )
            for seg, m in models.items()
        ],
        ignore_index=True,
    )
    shares = shares[["segment", *[c for c in shares.columns if c != "segment"]]]

    rows = []
    alpha_ci = (1 - ci) / 2
    names = list(models)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ma, mb = models[a], models[b]
            ta, tb = ma.boot_raw_, mb.boot_raw_
            ea = ma.importances_[measure].to_numpy()
            eb = mb.importances_[measure].to_numpy()
            if measure == "share":
                ta = ta / ta.sum(axis=1, keepdims=True)
                tb = tb / tb.sum(axis=1, keepdims=True)
            diff = ta - tb
            lo, hi = np.quantile(diff, [alpha_ci, 1 - alpha_ci], axis=0)
            below = 1 + (diff <= 0).sum(axis=0)
            above = 1 + (diff >= 0).sum(axis=0)
            p = np.minimum(1.0, 2 * np.minimum(below, above) / (len(diff) + 1))
            for j, drv in enumerate(drivers):
                rows.append(
                    {
                        "segment_a": a,
                        "segment_b": b,
                        "driver": drv,
                        "measure": measure,
                        "estimate_a": ea[j],
                        "estimate_b": eb[j],
                        "diff": ea[j] - eb[j],
                        "ci_low": lo[j],
                        "ci_high": hi[j],
                        "p_value": p[j],
                    }
                )
    diffs = pd.DataFrame(rows)
    reject, q = _bh(diffs["p_value"].to_numpy(), alpha)
    diffs["q_value"] = q
    diffs["significant"] = reject
    for col in ("segment_a", "segment_b", "driver", "measure"):
        diffs[col] = diffs[col].astype("str")
    boot = (
        f"{n_boot} bootstrap resamples of the clusters ({cluster!r}), the same clusters for "
        "every segment"
        if cluster is not None
        else f"{n_boot} bootstrap resamples of respondents, independently in each segment"
    )
    note = (
        f"Drivers of {outcome!r} by {by!r}: {len(models)} segments. Differences of "
        f"{'normalised shares' if measure == 'share' else 'raw shares'} tested with {boot}; "
        f"Benjamini-Hochberg over the {len(diffs)} tests of the comparison, significant "
        f"where q < {alpha:g}. " + NOTE
    )
    if skipped:
        note += f" Left out (base under {min_base}): {', '.join(skipped)}."
    return SegmentDrivers(shares=shares, differences=diffs, models=models, note=note)


# ------------------------------------------------------------------------------------------
# non-linearity check
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NonlinearityCheck:
    """Which drivers go with the outcome in a clearly non-linear way, and the shapes.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per driver: ``driver``, ``basis`` (``"step"`` or ``"spline"``), ``df``
        (extra parameters over the linear term), ``r2_cv_linear``, ``r2_cv_flexible``
        (K-fold out-of-sample R² of the all-linear model and of the model where only this
        driver is flexible), ``cv_gain`` (their difference), ``se``, ``p_value`` (one-sided,
        gain > 0), ``q_value`` (Benjamini-Hochberg over the drivers), ``nonlinear``,
        ``kink`` (rating at which the slope changes most, from a broken-line fit),
        ``slope_below`` and ``slope_above`` (outcome points per rating point up to and above
        the kink), ``kink_share`` (part of the flexible fit's in-sample gain over the line
        that one kink gives), ``description`` (a sentence for the flagged drivers), ``n``.
    shapes : pandas.DataFrame
        Partial dependence by rating level for the flagged drivers (all drivers with
        ``all_shapes=True``): ``driver``, ``level``, ``n`` (respondents at the level),
        ``predicted`` (mean predicted outcome with everybody's rating set to the level, the
        other drivers as they are), ``ci_low``, ``ci_high`` (robust, HC1), ``linear`` (the
        same from the all-linear model).
    note : str
    """

    summary: pd.DataFrame
    shapes: pd.DataFrame
    note: str


def _level_groups(x: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``x`` and the group of each: sparse levels (fewer than ``min_n``
    respondents) are pooled with a neighbour, the smaller group first."""
    levels, counts = np.unique(x, return_counts=True)
    groups = [[i] for i in range(len(levels))]
    sizes = list(counts)
    while len(groups) > 2 and min(sizes) < min_n:
        k = int(np.argmin(sizes))
        if k == 0:
            m = 1
        elif k == len(groups) - 1:
            m = k - 1
        else:
            m = k - 1 if sizes[k - 1] <= sizes[k + 1] else k + 1
        lo, hi = min(k, m), max(k, m)
        groups[lo : hi + 1] = [groups[lo] + groups[hi]]
        sizes[lo : hi + 1] = [sizes[lo] + sizes[hi]]
    group_of = np.empty(len(levels), dtype=np.intp)
    for g, members in enumerate(groups):
        group_of[members] = g
    return levels, group_of


class _Basis:
    """The flexible columns of one driver: a dummy per (pooled) rating level, or a spline."""

    def __init__(
        self, x: np.ndarray, basis: str, min_level_n: int, n_knots: int, degree: int
    ) -> None:
        levels = np.unique(x)
        self.kind = basis if len(levels) <= _MAX_STEP_LEVELS else "spline"
        if self.kind == "step":
            self.levels, self.group_of = _level_groups(x, min_level_n)
            self.n_groups = int(self.group_of.max()) + 1
        else:
            from sklearn.preprocessing import SplineTransformer

            knots = max(2, min(n_knots, len(levels) - degree + 1)) if len(levels) > 3 else 2
            self.spline = SplineTransformer(
                n_knots=knots, degree=min(degree, len(levels) - 1), knots="uniform",
                include_bias=False, extrapolation="linear",
            ).fit(x.reshape(-1, 1))  # fmt: skip

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "step":
            idx = np.searchsorted(self.levels, x)
            idx = np.clip(idx, 0, len(self.levels) - 1)
            g = self.group_of[idx]
            return (g[:, None] == np.arange(1, self.n_groups)[None, :]).astype("float64")
        return self.spline.transform(x.reshape(-1, 1))


_MAX_STEP_LEVELS = 15  # a driver with more distinct values gets a spline instead of steps


def _cv_predictions(
    design: np.ndarray, y: np.ndarray, w: np.ndarray, folds: list[np.ndarray]
) -> np.ndarray:
    out = np.empty(len(y))
    for test in folds:
        train = np.ones(len(y), dtype=bool)
        train[test] = False
        beta = _wls(design[train], y[train], w[train])
        out[test] = design[test] @ beta
    return out


def _kink(
    x: np.ndarray, others: np.ndarray, y: np.ndarray, w: np.ndarray, min_n: int
) -> tuple[float, float, float, float]:
    """Broken-line fit of one driver (others linear): the kink minimising the weighted SSE.

    Returns ``(kink, slope up to it, slope above it, SSE)``; NaNs when no kink has ``min_n``
    respondents on each side.
    """
    levels = np.unique(x)
    best = (np.nan, np.nan, np.nan, np.inf)
    for t in levels[1:-1]:
        if (x <= t).sum() < min_n or (x > t).sum() < min_n:
            continue
        design = np.column_stack([np.ones(len(x)), others, x, np.maximum(x - t, 0.0)])
        beta = _wls(design, y, w)
        sse = float(w @ (y - design @ beta) ** 2)
        if sse < best[3]:
            best = (float(t), float(beta[-2]), float(beta[-2] + beta[-1]), sse)
    return best


def _describe_kink(driver: str, outcome: str, t: float, below: float, above: float) -> str:
    steep_below = abs(below) >= 2 * abs(above)
    steep_above = abs(above) >= 2 * abs(below)
    head = (
        f"{driver}: up to {t:g}, each rating point goes with {below:+.2f} on {outcome}; "
        f"above {t:g}, {above:+.2f}."
    )
    if steep_below and below > 0:
        return head + f" Ratings of {t:g} or less cost {outcome} most (a threshold)."
    if steep_above and above > 0:
        return head + f" Gains come above {t:g} (a reward for excellence)."
    return head


@_one_blas_thread
def nonlinearity(
    data: pd.DataFrame,
    outcome: str = "nps",
    drivers: Sequence[str] | None = None,
    *,
    weight: str | None = None,
    basis: str = "step",
    n_splits: int = 5,
    alpha: float = 0.05,
    min_gain: float = 0.002,
    min_level_n: int = 30,
    n_knots: int = 4,
    degree: int = 3,
    all_shapes: bool = False,
    ci: float = 0.95,
    random_state: int | None = 0,
) -> NonlinearityCheck:
    """Is each driver's relation to the outcome clearly non-linear? Out of sample.

    For each driver, a model where only that driver enters flexibly (the other drivers
    linear) is compared with the all-linear model by K-fold cross-validation (seeded folds,
    the same for every model). Ratings are discrete, so the default flexible form is a step
    function, one coefficient per rating level (levels with fewer than ``min_level_n``
    respondents pooled with a neighbour): it nests the line and assumes no shape. A driver
    with more than 15 distinct values, or ``basis="spline"``, gets a B-spline
    (scikit-learn ``SplineTransformer``, uniform knots) instead.

    The gain is the increase in out-of-sample R². Its standard error comes from the
    respondents' paired differences in squared prediction error (a Diebold-Mariano-type
    test); the one-sided p-values are adjusted across drivers (Benjamini-Hochberg). A driver
    is flagged **non-linear** when ``q_value < alpha`` *and* the gain is at least ``min_gain``
    (default 0.002: 0.2 percentage points of the outcome's variance), so that a tiny but
    "significant" bend in a large sample is not flagged.

    For each flagged driver the shape is returned as partial dependence by rating level (the
    model is additive, so this is also the accumulated local effect up to a constant), and
    a broken line (two slopes, one kink at a rating level, chosen by least squares) gives
    the threshold sentence ("up to 4, each point goes with ...; above 4, ...") when one kink
    captures at least half of the flexible fit's gain (``kink_share >= 0.5``).

    The check uses complete respondents (listwise; ``n`` is reported). A flexible fit of one
    driver can partly stand in for another, correlated driver's bend: read a flag on a
    driver next to a flag on a strongly correlated one with care. Associations, not effects.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    outcome : str, default="nps"
        Rating outcome (not binary).
    drivers : sequence of str, optional
        Attribute rating columns; all ``att_*`` columns by default.
    weight : str, optional
        Survey weight column (weighted least squares and weighted errors).
    basis : {"step", "spline"}, default="step"
    n_splits : int, default=5
        Folds of the cross-validation.
    alpha : float, default=0.05
        False discovery rate of the flags.
    min_gain : float, default=0.002
        Smallest gain in out-of-sample R² that counts as clearly non-linear.
    min_level_n : int, default=30
        Respondents per rating level (sparser levels are pooled); also the least on each
        side of a kink.
    n_knots, degree : int, default=4, 3
        Spline knots (uniform over the range) and degree.
    all_shapes : bool, default=False
        Return the shape of every driver, not only the flagged ones.
    ci : float, default=0.95
        Level of the intervals of the shapes.
    random_state : int, default=0
        Seed of the folds.

    Returns
    -------
    NonlinearityCheck
        ``summary``, ``shapes``, ``note``.
    """
    if basis not in ("step", "spline"):
        raise ValueError("basis must be 'step' or 'spline'")
    drivers = _driver_list(data, drivers, outcome)
    cc = _Complete(data, outcome, drivers, weight)
    x, y, w = cc.x, cc.y, cc.w
    if _binary_levels(y) is not None:
        raise DataValidationError(
            f"the outcome {outcome!r} is binary; the non-linearity check is made for rating "
            "outcomes",
            column=outcome,
            rule="rating outcome",
            fix="Use a rating outcome (NPS 0-10, likelihood to return).",
        )
    from sklearn.model_selection import KFold

    n = len(y)
    folds = [t for _, t in KFold(n_splits, shuffle=True, random_state=random_state).split(x)]
    sst = float(w @ (y - w @ y / w.sum()) ** 2)
    lin_design = _with_const(x)
    err_lin = (y - _cv_predictions(lin_design, y, w, folds)) ** 2
    r2_lin = 1 - float(w @ err_lin) / sst
    beta_lin = _wls(lin_design, y, w)
    sse_lin = float(w @ (y - lin_design @ beta_lin) ** 2)
    z = _z_crit(ci)
    rows, shapes = [], []
    for j, name in enumerate(drivers):
        others = np.delete(x, j, axis=1)
        f = _Basis(x[:, j], basis, min_level_n, n_knots, degree)
        design = np.column_stack([np.ones(n), others, x[:, j], f(x[:, j])])
        err = (y - _cv_predictions(design, y, w, folds)) ** 2
        d = w * (err_lin - err)
        gain = float(d.sum()) / sst
        se = float(np.sqrt(n / (n - 1) * ((d - d.mean()) ** 2).sum())) / sst
        pval = _upper_p(gain / se) if se > 0 else float(gain <= 0)
        beta = _wls(design, y, w)
        sse_flex = float(w @ (y - design @ beta) ** 2)
        t, below, above, sse_kink = _kink(x[:, j], others, y, w, min_level_n)
        share = (sse_lin - sse_kink) / (sse_lin - sse_flex) if sse_lin > sse_flex else np.nan
        rows.append(
            {
                "driver": name,
                "basis": f.kind,
                "df": design.shape[1] - lin_design.shape[1],
                "r2_cv_linear": r2_lin,
                "r2_cv_flexible": r2_lin + gain,
                "cv_gain": gain,
                "se": se,
                "p_value": pval,
                "kink": t,
                "slope_below": below,
                "slope_above": above,
                "kink_share": float(np.clip(share, 0.0, 1.0)) if np.isfinite(share) else np.nan,
                "n": n,
                "_beta": beta,
                "_design": design,
            }
        )
    summary = pd.DataFrame(rows)
    reject, q = _bh(summary["p_value"].to_numpy(), alpha)
    summary.insert(summary.columns.get_loc("p_value") + 1, "q_value", q)
    flag = reject & (summary["cv_gain"].to_numpy() >= min_gain)
    summary.insert(summary.columns.get_loc("q_value") + 1, "nonlinear", flag)
    descriptions = []
    for j, row in summary.iterrows():
        text = ""
        if row["nonlinear"]:
            if np.isfinite(row["kink"]) and row["kink_share"] >= 0.5:
                text = _describe_kink(
                    row["driver"], outcome, row["kink"], row["slope_below"], row["slope_above"]
                )
            else:
                text = f"{row['driver']}: curved, without a single threshold; see the shape."
        descriptions.append(text)
        if not (row["nonlinear"] or all_shapes):
            continue
        xj = x[:, j]
        design, beta = row["_design"], row["_beta"]
        f = _Basis(xj, basis, min_level_n, n_knots, degree)
        cov = _sandwich(design, y, w, beta)
        mean_others = w @ np.delete(x, j, axis=1) / w.sum()
        lv, counts = np.unique(xj, return_counts=True)
        g = np.column_stack([np.ones(len(lv)), np.tile(mean_others, (len(lv), 1)), lv, f(lv)])
        pred = g @ beta
        se_pred = np.sqrt(np.einsum("ij,jk,ik->i", g, cov, g))
        linear = beta_lin[0] + np.delete(beta_lin[1:], j) @ mean_others + beta_lin[1 + j] * lv
        shapes.append(
            pd.DataFrame(
                {
                    "driver": pd.array([row["driver"]] * len(lv), dtype="str"),
                    "level": lv,
                    "n": counts,
                    "predicted": pred,
                    "ci_low": pred - z * se_pred,
                    "ci_high": pred + z * se_pred,
                    "linear": linear,
                }
            )
        )
    summary["description"] = pd.array(descriptions, dtype="str")
    summary = summary.drop(columns=["_beta", "_design"])
    summary["driver"] = summary["driver"].astype("str")
    summary["basis"] = summary["basis"].astype("str")
    shape_cols = ["driver", "level", "n", "predicted", "ci_low", "ci_high", "linear"]
    shapes_df = pd.concat(shapes, ignore_index=True) if shapes else pd.DataFrame(columns=shape_cols)
    note = (
        f"Each driver entered flexibly ({basis}) with the others linear, against the "
        f"all-linear model: {n_splits}-fold cross-validated R² on {n} complete respondents "
        f"(listwise, of {cc.n_all}). Flagged non-linear where the Benjamini-Hochberg q-value "
        f"is under {alpha:g} and the gain at least {min_gain:g}. " + NOTE
    )
    return NonlinearityCheck(summary=summary, shapes=shapes_df, note=note)


# ------------------------------------------------------------------------------------------
# Kano-style classification: penalty-reward contrasts, key dissatisfiers and enhancers
# ------------------------------------------------------------------------------------------

#: The classes of :func:`penalty_reward` and the rule giving each (see its docstring).
KANO_CLASSES = {
    "basic": "Basic (must-be, dissatisfier): low ratings cost clearly more than high ratings "
    "gain. Fix failures; excellence earns little.",
    "performance": "Performance (one-dimensional): low ratings cost and high ratings gain "
    "about alike. More is better all along.",
    "delighter": "Delighter (exciter, attractive): high ratings gain clearly more than low "
    "ratings cost. A candidate 'magic moment'.",
    "low impact": "Neither low nor high ratings go with a significant change in the outcome.",
    "insufficient base": "Too few respondents rated it low or high to classify it.",
}


def _rating_cuts(
    scale: tuple[float, float], low_max: float | None, high_min: float | None
) -> tuple[float, float]:
    """Default low / high cut-points of a rating scale: low is the lower 45% of the range,
    rounded down to a scale point (1-10: 1-5; 1-5: 1-2; 0-10: 0-4), high the top 15%
    (1-10 and 0-10: 9-10; 1-5: 5; 1-7: 7)."""
    lo, hi = scale
    if not hi > lo:
        raise ValueError("scale must be (lowest, highest) with highest > lowest")
    span = hi - lo
    low = lo + math.floor(0.45 * span) if low_max is None else low_max
    high = hi - math.floor(0.15 * span) if high_min is None else high_min
    if not lo <= low < high <= hi:
        raise ValueError(
            f"cut-points must satisfy {lo:g} <= low_max < high_min <= {hi:g}; got "
            f"low_max={low:g}, high_min={high:g}"
        )
    return float(low), float(high)


@_one_blas_thread
def penalty_reward(
    data: pd.DataFrame,
    outcome: str = "nps",
    drivers: Sequence[str] | None = None,
    *,
    weight: str | None = None,
    cluster: str | None = None,
    scale: tuple[float, float] = (1, 10),
    low_max: float | None = None,
    high_min: float | None = None,
    alpha: float = 0.05,
    asymmetry: float = 0.2,
    min_group_n: int = 30,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Penalty-reward contrast analysis (PRCA) and a Kano-style class for each attribute.

    Each rating is coded as two dummies, *low* (rating <= ``low_max``) and *high* (rating
    >= ``high_min``), the middle of the scale being the reference; the outcome is regressed
    on all the dummies together (weighted least squares, complete respondents). The
    **penalty** is the drop that goes with a low rating instead of a middle one
    (``-b_low``), the **reward** the rise that goes with a high one (``b_high``) (Brandt
    1987; Mikulić & Prebežac 2011 review the method). Intervals and p-values are robust
    (HC1), or cluster-robust with ``cluster``.

    The low and the high band are not equally far from the middle (on 1-10 the low band
    1-5 lies about 2.5 points under the middle's mean rating, the high band 9-10 about 2
    points over it), so raw contrasts look asymmetric even when the outcome rises in a
    straight line with the rating. The classification therefore compares the effects *per
    rating point*: ``penalty_per_point = penalty / (mean middle - mean low rating)`` and
    ``reward_per_point = reward / (mean high - mean middle rating)``, which are equal for a
    straight line. The impact-asymmetry index (Mikulić & Prebežac 2008),
    ``IA = (reward - penalty) / (reward + penalty)`` on these, negative effects counted as
    0, runs from -1 (only penalty) to +1 (only reward). The classes, in this order:

    - ``"insufficient base"``: fewer than ``min_group_n`` respondents rated it low, or high;
    - ``"low impact"``: neither penalty nor reward is positive with p < ``alpha``;
    - ``"basic"`` (must-be, dissatisfier): penalty significant, ``IA <= -asymmetry`` and
      the per-point penalty above the per-point reward significantly (Wald test,
      p < ``alpha``);
    - ``"delighter"`` (exciter): reward significant, ``IA >= asymmetry`` and the per-point
      reward above the per-point penalty significantly; flagged ``magic_moment``;
    - ``"performance"`` (one-dimensional): otherwise.

    ``asymmetry=0.2`` asks for one effect to be at least 1.5 times the other. These cut-offs
    are this module's convention (documented in :data:`KANO_CLASSES`), not a standard.
    Associations, not effects.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    outcome : str, default="nps"
        Rating outcome.
    drivers : sequence of str, optional
        Attribute rating columns; all ``att_*`` columns by default.
    weight, cluster : str, optional
        Survey weight column; cluster column for cluster-robust errors.
    scale : (float, float), default=(1, 10)
        Lowest and highest point of the attribute scale (the codebook's ``scale``).
    low_max, high_min : float, optional
        Highest *low* and lowest *high* rating; by default from ``scale`` (1-10: low 1-5,
        middle 6-8, high 9-10; 1-5: 1-2, 3-4, 5).
    alpha : float, default=0.05
    asymmetry : float, default=0.2
        Smallest ``|IA|`` for an asymmetric class.
    min_group_n : int, default=30
    ci : float, default=0.95

    Returns
    -------
    pandas.DataFrame
        One row per driver: ``driver``, ``n_low``, ``n_high``, ``penalty``,
        ``penalty_ci_low``, ``penalty_ci_high``, ``p_penalty``, ``reward``,
        ``reward_ci_low``, ``reward_ci_high``, ``p_reward``, ``penalty_per_point``,
        ``reward_per_point``, ``impact_asymmetry``, ``p_asymmetry`` (per-point penalty =
        reward), ``kano_class``, ``magic_moment``, ``n``. ``attrs`` holds the
        cut-points, ``r2`` and ``note``.
    """
    drivers = _driver_list(data, drivers, outcome)
    low, high = _rating_cuts(scale, low_max, high_min)
    cc = _Complete(data, outcome, drivers, weight, cluster)
    x, y, w = cc.x, cc.y, cc.w
    lows, highs = (x <= low).astype("float64"), (x >= high).astype("float64")
    n_low, n_high = lows.sum(axis=0).astype(int), highs.sum(axis=0).astype(int)
    dummies = np.column_stack([lows, highs])  # low_1..low_p, high_1..high_p
    present = dummies.any(axis=0)  # a level nobody used has no coefficient
    design = np.column_stack([np.ones(len(y)), dummies[:, present]])
    beta = _wls(design, y, w)
    cov = _sandwich(design, y, w, beta, cc.codes)
    b = np.full(2 * len(drivers), np.nan)
    b[present] = beta[1:]
    v = np.full((2 * len(drivers), 2 * len(drivers)), np.nan)
    idx = np.flatnonzero(present)
    v[np.ix_(idx, idx)] = cov[1:, 1:]
    p = len(drivers)
    penalty, reward = -b[:p], b[p:]
    se_pen = np.sqrt(np.diag(v)[:p])
    se_rew = np.sqrt(np.diag(v)[p:])
    # per rating point: the low and high bands are not equally far from the middle (on 1-10,
    # low 1-5 averages ~2.5 points under the middle's mean, high 9-10 ~2 over it), so raw
    # contrasts look asymmetric even when the outcome is linear in the rating
    mid = 1.0 - lows - highs
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_low = (w @ (lows * x)) / (w @ lows)
        mean_mid = (w @ (mid * x)) / (w @ mid)
        mean_high = (w @ (highs * x)) / (w @ highs)
        d_low, d_high = mean_mid - mean_low, mean_high - mean_mid
        pen_pt, rew_pt = penalty / d_low, reward / d_high
        cov_lh = v[np.arange(p), p + np.arange(p)]
        se_diff = np.sqrt(
            np.diag(v)[:p] / d_low**2 + np.diag(v)[p:] / d_high**2 + 2 * cov_lh / (d_low * d_high)
        )
    z = _z_crit(ci)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_pen = _normal_p(penalty / se_pen)
        p_rew = _normal_p(reward / se_rew)
        p_asym = _normal_p((pen_pt - rew_pt) / se_diff)
        pp, rr = np.maximum(pen_pt, 0), np.maximum(rew_pt, 0)
        ia = np.where(pp + rr > 0, (rr - pp) / (pp + rr), 0.0)
    classes = []
    for j in range(p):
        pen_sig = penalty[j] > 0 and p_pen[j] < alpha
        rew_sig = reward[j] > 0 and p_rew[j] < alpha
        asym_sig = p_asym[j] < alpha
        if n_low[j] < min_group_n or n_high[j] < min_group_n:
            classes.append("insufficient base")
        elif not (pen_sig or rew_sig):
            classes.append("low impact")
        elif pen_sig and ia[j] <= -asymmetry and asym_sig:
            classes.append("basic")
        elif rew_sig and ia[j] >= asymmetry and asym_sig:
            classes.append("delighter")
        else:
            classes.append("performance")
    out = pd.DataFrame(
        {
            "driver": pd.array(drivers, dtype="str"),
            "n_low": n_low,
            "n_high": n_high,
            "penalty": penalty,
            "penalty_ci_low": penalty - z * se_pen,
            "penalty_ci_high": penalty + z * se_pen,
            "p_penalty": p_pen,
            "reward": reward,
            "reward_ci_low": reward - z * se_rew,
            "reward_ci_high": reward + z * se_rew,
            "p_reward": p_rew,
            "penalty_per_point": pen_pt,
            "reward_per_point": rew_pt,
            "impact_asymmetry": ia,
            "p_asymmetry": p_asym,
            "kano_class": pd.array(classes, dtype="str"),
            "magic_moment": np.array(classes) == "delighter",
            "n": cc.n,
        }
    )
    resid = y - design @ beta
    ybar = w @ y / w.sum()
    out.attrs.update(
        low_max=low,
        high_min=high,
        r2=1 - float(w @ resid**2) / float(w @ (y - ybar) ** 2),
        note=(
            f"Penalty-reward contrasts: ratings <= {low:g} are low, >= {high:g} high, the "
            f"middle is the reference; {cc.n} complete respondents (listwise, of {cc.n_all}); "
            f"{'cluster-robust' if cluster else 'robust (HC1)'} errors. Classes: significant "
            f"at {alpha:g}, asymmetric when |IA| >= {asymmetry:g} and the penalty-reward "
            "difference is significant. " + NOTE
        ),
    )
    return out


def _coverage_shapley(fail: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Shapley values of the coverage game ``v(M) = weighted share of respondents failing at
    least one attribute of M``: each respondent's weight is split equally among the
    attributes they fail (the game is a sum of such per-respondent games)."""
    k = fail.sum(axis=1)
    per = np.divide(fail, k[:, None], out=np.zeros_like(fail), where=k[:, None] > 0)
    return (w @ per) / w.sum()


def _reach_noise_game(
    flags: np.ndarray, target: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values of ``v(M) = reach(M) - noise(M)`` and the order-wise key set.

    ``reach(M)``: weighted share of the target respondents (e.g. detractors) flagging at
    least one attribute of M (e.g. rating it low); ``noise(M)``: the same among the others.
    Returns the Shapley values and, for the attributes in decreasing order of value, the
    cumulative reach, noise and success (reach - noise) as rows ``(3, p)`` in driver order.
    """
    phi = _coverage_shapley(flags[target], w[target]) - _coverage_shapley(
        flags[~target], w[~target]
    )
    order = np.argsort(-phi, kind="stable")
    cum = np.cumsum(flags[:, order], axis=1) > 0
    reach = (w[target] @ cum[target]) / w[target].sum()
    noise = (w[~target] @ cum[~target]) / w[~target].sum()
    steps = np.empty((3, len(phi)))
    steps[:, order] = np.vstack([reach, noise, reach - noise])
    return phi, steps


def dissatisfiers_enhancers(
    data: pd.DataFrame,
    outcome: str = "nps",
    drivers: Sequence[str] | None = None,
    *,
    weight: str | None = None,
    scale: tuple[float, float] = (1, 10),
    low_max: float | None = None,
    high_min: float | None = None,
    outcome_low_max: float = 6,
    outcome_high_min: float = 9,
) -> pd.DataFrame:
    """Key dissatisfiers and key enhancers (Conklin, Powaga & Lipovetsky 2004).

    Dissatisfiers: the overall dissatisfied (outcome <= ``outcome_low_max``; detractors on
    NPS) and each attribute dummy-coded *low* (rating <= ``low_max``). A set of attributes M
    *reaches* a dissatisfied respondent who rated at least one attribute of M low; its
    *noise* is the share of the other respondents who did too; its value is
    ``reach - noise`` (the "success"). Each attribute's **Shapley value** in this game is its
    fair part of the success of all the attributes together; it is exact and cheap, since a
    reach game splits each respondent equally among the attributes they rated low. Adding
    attributes in decreasing order of value, the **key dissatisfiers** are the first ones up
    to the largest success. Enhancers: the same with the delighted (outcome >=
    ``outcome_high_min``; promoters) and *high* ratings (>= ``high_min``).

    A rating not given counts as neither low nor high; respondents without the outcome are
    left out. Associations, not effects.

    Parameters
    ----------
    data : pandas.DataFrame
    outcome : str, default="nps"
    drivers : sequence of str, optional
    weight : str, optional
    scale, low_max, high_min
        As in :func:`penalty_reward`.
    outcome_low_max, outcome_high_min : float, default=6, 9
        Dissatisfied and delighted on the outcome (NPS: detractors 0-6, promoters 9-10).

    Returns
    -------
    pandas.DataFrame
        One row per driver: ``driver``, ``share_low``, ``share_high`` (of the respondents),
        ``dissatisfier_value`` (Shapley value), ``dissatisfier_rank``,
        ``dissatisfier_reach``, ``dissatisfier_noise``, ``dissatisfier_success``
        (cumulative, with the attributes ranked above it), ``key_dissatisfier``, and the
        same six for ``enhancer``, and ``n``. ``attrs`` holds the cut-points, the key sets'
        reach, noise and success, and ``note``.
    """
    drivers = _driver_list(data, drivers, outcome)
    low, high = _rating_cuts(scale, low_max, high_min)
    if not outcome_low_max < outcome_high_min:
        raise ValueError("outcome_low_max must be below outcome_high_min")
    x = np.column_stack([_column(data, d, "driver") for d in drivers])
    y = _column(data, outcome, "outcome")
    w = _weights(data, weight)
    keep = ~np.isnan(y) & (w > 0)
    x, y, w = x[keep], y[keep], w[keep]
    with np.errstate(invalid="ignore"):
        lows = (x <= low).astype("float64")  # NaN compares False: not rated = not low
        highs = (x >= high).astype("float64")
    out = pd.DataFrame(
        {
            "driver": pd.array(drivers, dtype="str"),
            "share_low": (w @ lows) / w.sum(),
            "share_high": (w @ highs) / w.sum(),
        }
    )
    attrs: dict[str, object] = {"low_max": low, "high_min": high}
    for name, flags, target in (
        ("dissatisfier", lows, y <= outcome_low_max),
        ("enhancer", highs, y >= outcome_high_min),
    ):
        if target.all() or not target.any():
            raise DataValidationError(
                f"every respondent or none is {'dissatisfied' if name == 'dissatisfier' else 'delighted'} "
                f"on {outcome!r}; the {name} analysis needs both kinds",
                column=outcome,
                rule="both outcome groups present",
                fix="Check the outcome cut-points (outcome_low_max, outcome_high_min).",
            )
        phi, steps = _reach_noise_game(flags, target, w)
        rank = 1 + np.argsort(np.argsort(-phi, kind="stable"), kind="stable")
        best = int(rank[np.argmax(steps[2])])  # key set: ranks 1..best
        out[f"{name}_value"] = phi
        out[f"{name}_rank"] = rank
        out[f"{name}_reach"] = steps[0]
        out[f"{name}_noise"] = steps[1]
        out[f"{name}_success"] = steps[2]
        out[f"key_{name}"] = (rank <= best) & (phi > 0)
        at = int(np.flatnonzero(rank == best)[0])
        attrs[f"{name}_key_set"] = [
            drivers[j] for j in np.argsort(rank) if out[f"key_{name}"].iloc[j]
        ]
        attrs[f"{name}_reach"] = float(steps[0, at])
        attrs[f"{name}_noise"] = float(steps[1, at])
        attrs[f"{name}_success"] = float(steps[2, at])
    out["n"] = len(y)
    attrs["note"] = (
        f"Key dissatisfiers: detractor-like respondents ({outcome} <= {outcome_low_max:g}) "
        f"reached by low ratings (<= {low:g}); key enhancers: promoter-like ({outcome} >= "
        f"{outcome_high_min:g}) reached by high ratings (>= {high:g}); Shapley values of "
        "reach minus noise (Conklin, Powaga & Lipovetsky 2004); key sets up to the largest "
        "success. " + NOTE
    )
    out.attrs.update(attrs)
    return out


def kano_classification(
    data: pd.DataFrame,
    outcome: str = "nps",
    drivers: Sequence[str] | None = None,
    *,
    weight: str | None = None,
    cluster: str | None = None,
    scale: tuple[float, float] = (1, 10),
    low_max: float | None = None,
    high_min: float | None = None,
    outcome_low_max: float = 6,
    outcome_high_min: float = 9,
    alpha: float = 0.05,
    asymmetry: float = 0.2,
    min_group_n: int = 30,
) -> pd.DataFrame:
    """Kano-style classification: :func:`penalty_reward` and :func:`dissatisfiers_enhancers`
    side by side, one row per attribute.

    The class comes from the penalty-reward contrasts; the key dissatisfier / key enhancer
    flags from the Shapley analysis of Conklin, Powaga & Lipovetsky (2004) say which
    attributes, taken together, reach the most detractors (promoters) for the least noise.
    A delighter is a candidate "magic moment" (``magic_moment``). Parameters as in the two
    functions.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`penalty_reward`, then ``share_low``, ``share_high``,
        ``dissatisfier_value``, ``dissatisfier_rank``, ``key_dissatisfier``,
        ``enhancer_value``, ``enhancer_rank``, ``key_enhancer``. ``attrs``: both notes, the
        cut-points and the key sets.
    """
    prca = penalty_reward(
        data, outcome, drivers, weight=weight, cluster=cluster, scale=scale, low_max=low_max,
        high_min=high_min, alpha=alpha, asymmetry=asymmetry, min_group_n=min_group_n,
    )  # fmt: skip
    keys = dissatisfiers_enhancers(
        data, outcome, drivers, weight=weight, scale=scale, low_max=low_max,
        high_min=high_min, outcome_low_max=outcome_low_max, outcome_high_min=outcome_high_min,
    )  # fmt: skip
    cols = [
        "share_low",
        "share_high",
        "dissatisfier_value",
        "dissatisfier_rank",
        "key_dissatisfier",
        "enhancer_value",
        "enhancer_rank",
        "key_enhancer",
    ]
    out = prca.merge(keys[["driver", *cols]], on="driver", how="left", validate="1:1")
    out.attrs.update({k: v for k, v in keys.attrs.items() if k != "note"})
    out.attrs.update({k: v for k, v in prca.attrs.items() if k != "note"})
    out.attrs["note"] = prca.attrs["note"] + " " + keys.attrs["note"].replace(NOTE, "").strip()
    return out


# ------------------------------------------------------------------------------------------
# importance-performance matrix
# ------------------------------------------------------------------------------------------

#: Quadrants of the importance-performance matrix (importance high/low, performance low/high).
IPA_QUADRANTS = {
    (True, False): "fix first",
    (True, True): "keep up",
    (False, True): "possible overkill",
    (False, False): "low priority",
}


def _cut(values: np.ndarray, cut: str | float, what: str) -> float:
    if cut == "mean":
        return float(np.mean(values))
    if cut == "median":
        return float(np.median(values))
    if isinstance(cut, (int, float)) and not isinstance(cut, bool):
        return float(cut)
    raise ValueError(f"{what}_cut must be 'mean', 'median' or a number")


def importance_performance(
    data: pd.DataFrame,
    importances: pd.DataFrame | DriverModel,
    *,
    weight: str | None = None,
    performance: str = "mean",
    top_box_min: float = 9,
    importance_cut: str | float = "mean",
    performance_cut: str | float = "mean",
    ci: float = 0.95,
) -> pd.DataFrame:
    """Importance-performance matrix (Martilla & James 1977) with quadrant labels.

    Importance is each driver's normalised share (derived importance, from
    :class:`DriverModel` or :func:`shapley_r2`); performance is the (weighted) mean rating
    or the top-box share (rating >= ``top_box_min``) among the respondents who rated it.
    The cut-points are, by default, the means over the drivers (the "data-centred"
    matrix: importance 1/p for normalised shares, and the grand mean of the performances);
    ``"median"`` or a number can be given instead. A driver on a cut-point counts as high.

    ============  ===========  ===================  ================================
    importance    performance  quadrant             reading
    ============  ===========  ===================  ================================
    high          low          ``fix first``        goes with the outcome, rated low
    high          high         ``keep up``          goes with it, rated well
    low           high         ``possible overkill``  rated well, goes with it little
    low           low          ``low priority``
    ============  ===========  ===================  ================================

    Importance is an association, not an effect: "fix first" is where improvement is most
    likely to pay, to be confirmed (e.g. by :func:`what_if` or a test), not a promise.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent (for performance).
    importances : pandas.DataFrame or DriverModel
        A table with ``driver`` and ``share`` (and optionally ``ci_low``, ``ci_high``),
        e.g. ``DriverModel.importances_``, or a fitted :class:`DriverModel`.
    weight : str, optional
        Survey weight column for performance.
    performance : {"mean", "top_box"}, default="mean"
    top_box_min : float, default=9
        Lowest top-box rating (1-10 scale: 9-10).
    importance_cut, performance_cut : "mean", "median" or float, default="mean"
    ci : float, default=0.95
        Level of the performance interval (normal, Kish effective base).

    Returns
    -------
    pandas.DataFrame
        One row per driver: ``driver``, ``importance``, ``importance_ci_low``,
        ``importance_ci_high``, ``performance``, ``performance_ci_low``,
        ``performance_ci_high``, ``performance_measure``, ``n`` (raters),
        ``importance_cut``, ``performance_cut``, ``quadrant``; ready for a chart.
    """
    if isinstance(importances, DriverModel):
        importances = importances.importances_
    if not {"driver", "share"} <= set(importances.columns):
        raise ValueError("importances needs the columns 'driver' and 'share'")
    if performance not in ("mean", "top_box"):
        raise ValueError("performance must be 'mean' or 'top_box'")
    drivers = [str(d) for d in importances["driver"]]
    w_all = _weights(data, weight)
    z = _z_crit(ci)
    perf, lo, hi, n = [], [], [], []
    for d in drivers:
        r = _column(data, d, "driver")
        ok = ~np.isnan(r) & (w_all > 0)
        v = r[ok] if performance == "mean" else (r[ok] >= top_box_min).astype("float64")
        w = w_all[ok]
        # numpy's own sums, not BLAS's dot: a dot product of a long vector is split across
        # BLAS threads, and the order it is added in (so its last digit) follows their number
        m = float((w * v).sum() / w.sum())
        n_eff = w.sum() ** 2 / (w**2).sum()
        var = float((w * (v - m) ** 2).sum() / w.sum())
        se = math.sqrt(var / max(n_eff - 1, 1))
        perf.append(m)
        lo.append(m - z * se)
        hi.append(m + z * se)
        n.append(int(ok.sum()))
    imp = importances["share"].to_numpy(dtype="float64")
    perf_arr = np.array(perf)
    icut = _cut(imp, importance_cut, "importance")
    pcut = _cut(perf_arr, performance_cut, "performance")
    quadrant = [
        IPA_QUADRANTS[(bool(i >= icut), bool(q >= pcut))]
        for i, q in zip(imp, perf_arr, strict=True)
    ]
    nan = np.full(len(imp), np.nan)
    return pd.DataFrame(
        {
            "driver": pd.array(drivers, dtype="str"),
            "importance": imp,
            "importance_ci_low": importances["ci_low"].to_numpy()
            if "ci_low" in importances
            else nan,
            "importance_ci_high": importances["ci_high"].to_numpy()
            if "ci_high" in importances
            else nan,
            "performance": perf_arr,
            "performance_ci_low": lo,
            "performance_ci_high": hi,
            "performance_measure": performance
            if performance == "mean"
            else f"top_box (>= {top_box_min:g})",
            "n": n,
            "importance_cut": icut,
            "performance_cut": pcut,
            "quadrant": pd.array(quadrant, dtype="str"),
        }
    )


# ------------------------------------------------------------------------------------------
# what-if
# ------------------------------------------------------------------------------------------


def _logit_predict(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(beta[0] + x @ beta[1:])))


@_one_blas_thread
def what_if(
    data: pd.DataFrame,
    driver: str | Sequence[str],
    *,
    outcome: str = "nps",
    drivers: Sequence[str] | None = None,
    shift: float | None = None,
    move_up: float | None = None,
    weight: str | None = None,
    cluster: str | None = None,
    scale: tuple[float, float] = (1, 10),
    promoter_min: float | None = 9,
    detractor_max: float | None = 6,
    n_boot: int = 200,
    ci: float = 0.95,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """What if a driver's ratings were higher? The outcome the models predict.

    Two scenarios, one driver at a time (the others as they are):

    - ``shift=d``: every respondent's rating raised by ``d`` points, capped at the top of
      the scale (lowered and floored for a negative ``d``);
    - ``move_up=q``: a share ``q`` of the respondents below the top of the scale moves up
      one point (the expected change is computed, no one is drawn at random).

    The change in the mean outcome comes from the full linear model (least squares of the
    outcome on all the drivers, weighted), so with no capping it is exactly
    ``coefficient x shift``. The change in the share of promoters (outcome >=
    ``promoter_min``) comes from a logistic regression made for it, averaging each
    respondent's change in predicted probability; with ``detractor_max`` also the share of
    detractors and the NPS (promoters - detractors, x 100). A binary outcome gets its own
    logistic model and no promoter rows.

    Ratings pushed beyond the top of the scale are capped and counted (``share_capped``);
    a scenario that asks for that, or that leaves the range of ratings observed, is flagged
    ``extrapolation``. Intervals are bootstrap percentiles (respondents, or whole clusters
    with ``cluster``), refitting both models in each resample.

    The models are fitted to associations: a predicted change is what the outcome would
    do if the association were causal, which the survey alone cannot show.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    driver : str or sequence of str
        Driver(s) to raise, one scenario each.
    outcome : str, default="nps"
    drivers : sequence of str, optional
        All the drivers of the model; all ``att_*`` columns by default.
    shift : float, optional
        Points added to every rating (default 1 when ``move_up`` is not given).
    move_up : float, optional
        Share (0-1) of the respondents below the top who move up one point.
    weight, cluster : str, optional
    scale : (float, float), default=(1, 10)
        The attribute scale (ratings are capped to it).
    promoter_min, detractor_max : float or None, default=9, 6
        Promoter and detractor cut-points on the outcome; None to skip.
    n_boot : int, default=200
        Bootstrap resamples; 0 for point estimates only.
    ci : float, default=0.95
    random_state : int, default=0

    Returns
    -------
    pandas.DataFrame
        One row per driver and quantity (``mean_outcome``, ``promoter_share``,
        ``detractor_share``, ``nps``; ``outcome_share`` for a binary outcome): ``driver``,
        ``scenario``, ``quantity``, ``model``, ``baseline``, ``predicted``, ``change``,
        ``ci_low``, ``ci_high`` (of the change), ``coef`` (the driver's coefficient in that
        model), ``mean_shift`` (mean rating change after capping), ``share_capped``,
        ``extrapolation``, ``n`` (complete respondents), ``note``.
    """
    if shift is not None and move_up is not None:
        raise ValueError("give shift or move_up, not both")
    if shift is None and move_up is None:
        shift = 1.0
    if move_up is not None and not 0 <= move_up <= 1:
        raise ValueError("move_up is a share of respondents, between 0 and 1")
    targets = [driver] if isinstance(driver, str) else list(driver)
    drivers = _driver_list(data, drivers, outcome)
    unknown = [t for t in targets if t not in drivers]
    if unknown:
        raise ValueError(f"{unknown} are not among the model's drivers")
    lo_s, hi_s = scale
    cc = _Complete(data, outcome, drivers, weight, cluster)
    x, y, w = cc.x, cc.y, cc.w
    design = _with_const(x)
    levels = _binary_levels(y)
    # (quantity, 0/1 target of a logistic model, or None for the linear model of the mean)
    if levels is not None:
        models: list[tuple[str, np.ndarray | None]] = [
            ("outcome_share", (y == levels[1]).astype("float64"))
        ]
    else:
        models = [("mean_outcome", None)]
        if promoter_min is not None:
            models.append(("promoter_share", (y >= promoter_min).astype("float64")))
        if detractor_max is not None:
            models.append(("detractor_share", (y <= detractor_max).astype("float64")))

    # each scenario: the driver's new ratings and each respondent's chance of getting them
    plans = []
    for t in targets:
        j = drivers.index(t)
        xj = x[:, j]
        if move_up is not None:
            up = xj <= hi_s - 1
            new, prob = np.where(up, xj + 1, xj), np.where(up, move_up, 0.0)
            capped = np.zeros(len(xj), dtype=bool)
            label = f"{move_up:.0%} of those below {hi_s:g} up one point"
        else:
            new, prob = np.clip(xj + shift, lo_s, hi_s), np.ones(len(xj))
            capped = (xj + shift > hi_s) | (xj + shift < lo_s)
            label = f"{shift:+g} point(s)"
            if capped.any():
                label += f" (capped at {hi_s:g})" if shift > 0 else f" (floored at {lo_s:g})"
        moved = prob > 0
        outside = (new[moved] > xj.max()).any() or (new[moved] < xj.min()).any()
        plans.append(
            {
                "j": j,
                "new": new,
                "prob": prob,
                "scenario": label,
                "mean_shift": float(w @ (prob * (new - xj)) / w.sum()),
                "share_capped": float(w @ capped / w.sum()),
                "extrapolation": bool(capped.any() or outside),
            }
        )

    # a cluster bootstrap of the linear model: its sums of squares and cross-products,
    # baseline and shifts add up cluster by cluster, computed once (per-resample normal
    # equations from a few dozen small matrices instead of a least-squares pass over every
    # respondent; equal to rounding)
    lin = None
    if n_boot and cc.codes is not None and any(t is None for _, t in models):
        shifts = np.column_stack([p["prob"] * (p["new"] - x[:, p["j"]]) for p in plans])
        parts = np.column_stack([y, np.ones(len(y)), shifts])
        lin = [
            np.stack(
                [
                    (design[cc.codes == h] * w[cc.codes == h, None]).T @ design[cc.codes == h]
                    for h in range(cc.n_levels)
                ]
            ),
            np.stack(
                [
                    (design[cc.codes == h] * w[cc.codes == h, None]).T @ parts[cc.codes == h]
                    for h in range(cc.n_levels)
                ]
            ),
        ]

    def fit(
        weights: np.ndarray,
        starts: list[np.ndarray] | None = None,
        clusters: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray], list[float], bool]:
        """Changes (scenarios x models), each model's coefficients (intercept first) and
        baseline, converged.

        Rows without weight (respondents or clusters a resample left out) change nothing
        and are dropped first; ``starts`` are the logistic models' starting coefficients;
        ``clusters`` (a cluster resample's count per cluster, ``weights`` being ``w`` times
        it) fits the linear model from the cluster sums."""
        keep = weights > 0
        rows = None if keep.all() else np.flatnonzero(keep)
        sub = (lambda a: a) if rows is None else (lambda a: a[rows])
        xs, ws = sub(x), sub(weights)
        res = np.full((len(plans), len(models)), np.nan)
        coefs, baselines, converged = [], [], True
        sw = ws.sum()
        for k, (_, target) in enumerate(models):
            if target is None and clusters is not None and lin is not None:
                c = clusters.astype("float64")
                xtx, xtp = np.tensordot(c, lin[0], 1), np.tensordot(c, lin[1], 1)
                beta = np.linalg.lstsq(xtx, xtp[:, 0], rcond=None)[0]
                coefs.append(beta)
                # first row of X'W[y, 1, shifts]: the weighted sums (intercept column)
                swc = xtp[0, 1]
                baselines.append(float(xtp[0, 0] / swc))
                for i, plan in enumerate(plans):
                    res[i, k] = beta[1 + plan["j"]] * float(xtp[0, 2 + i]) / swc
                continue
            if target is None:
                beta = _wls(sub(design), sub(y), ws)
                coefs.append(beta)
                baselines.append(float(ws @ sub(y) / sw))
                for i, plan in enumerate(plans):
                    shift_i = sub(plan["prob"]) * (sub(plan["new"]) - xs[:, plan["j"]])
                    res[i, k] = beta[1 + plan["j"]] * float(ws @ shift_i) / sw
                continue
            start = None if starts is None else starts[k]
            beta, ok = _logistic_fit(xs, sub(target), ws, start=start)
            converged &= ok
            base = _logit_predict(beta, xs)
            coefs.append(beta)
            baselines.append(float(ws @ base / sw))
            for i, plan in enumerate(plans):
                x2 = xs.copy()
                x2[:, plan["j"]] = sub(plan["new"])
                gain = sub(plan["prob"]) * (_logit_predict(beta, x2) - base)
                res[i, k] = float(ws @ gain) / sw
        return res, coefs, baselines, converged

    for _, target in models:
        if target is not None and target.min() == target.max():
            raise DataValidationError(
                f"every complete respondent or none is a promoter (or detractor) on "
                f"{outcome!r}; that share cannot be modelled",
                column=outcome,
                rule="both outcome groups present",
                fix="Check promoter_min / detractor_max, or set them to None.",
            )
    point, betas, baselines, converged = fit(w)
    coefs = [b[1:] for b in betas]
    if not converged:
        warnings.warn(
            "a logistic model of the what-if did not converge (the outcome may be separated "
            "by the drivers); its predictions are unreliable",
            DriverWarning,
            stacklevel=2,
        )
    quantities = [q for q, _ in models]
    nps_pair = "promoter_share" in quantities and "detractor_share" in quantities
    if nps_pair:
        kp, kd = quantities.index("promoter_share"), quantities.index("detractor_share")
    boot = None
    if n_boot:
        draw = _resampler(np.random.default_rng(random_state), cc.n, cc.codes, cc.n_levels)
        # each resample's logistic fits start from the full sample's: fewer Newton steps
        reps = []
        for _ in range(n_boot):
            if cc.codes is None:
                reps.append(fit(w * draw(), betas)[0])
            else:
                counts = draw.clusters()
                reps.append(fit(w * counts[cc.codes], betas, counts)[0])
        boot = np.stack(reps)
    alpha = (1 - ci) / 2

    def interval(samples: np.ndarray | None) -> tuple[float, float]:
        if samples is None:
            return np.nan, np.nan
        lo, hi = np.nanquantile(samples, [alpha, 1 - alpha])
        return float(lo), float(hi)

    rows = []
    for i, plan in enumerate(plans):
        meta = {
            "driver": targets[i],
            "scenario": plan["scenario"],
            "mean_shift": plan["mean_shift"],
            "share_capped": plan["share_capped"],
            "extrapolation": plan["extrapolation"],
        }
        for k, quantity in enumerate(quantities):
            lo, hi = interval(None if boot is None else boot[:, i, k])
            rows.append(
                {
                    **meta,
                    "quantity": quantity,
                    "model": "linear regression (least squares)"
                    if quantity == "mean_outcome"
                    else "logistic regression",
                    "baseline": baselines[k],
                    "predicted": baselines[k] + point[i, k],
                    "change": point[i, k],
                    "ci_low": lo,
                    "ci_high": hi,
                    "coef": coefs[k][plan["j"]],
                }
            )
        if nps_pair:
            base = 100 * (baselines[kp] - baselines[kd])
            change = 100 * (point[i, kp] - point[i, kd])
            lo, hi = interval(None if boot is None else 100 * (boot[:, i, kp] - boot[:, i, kd]))
            rows.append(
                {
                    **meta,
                    "quantity": "nps",
                    "model": "logistic regressions (promoters, detractors)",
                    "baseline": base,
                    "predicted": base + change,
                    "change": change,
                    "ci_low": lo,
                    "ci_high": hi,
                    "coef": np.nan,
                }
            )
    cols = ["driver", "scenario", "quantity", "model", "baseline", "predicted", "change",
            "ci_low", "ci_high", "coef", "mean_shift", "share_capped", "extrapolation"]  # fmt: skip
    out = pd.DataFrame(rows)[cols]
    out["n"] = cc.n
    boot_text = (
        f"{n_boot} bootstrap resamples of "
        + (f"the clusters ({cluster!r})" if cluster else "respondents")
        if n_boot
        else "no resamples (no intervals)"
    )
    out["note"] = (
        f"Predictions of models fitted to {cc.n} complete respondents (listwise, of "
        f"{cc.n_all}); intervals from {boot_text}. The models describe associations: the "
        "change is what would follow if they were causal."
    )
    for col in ("driver", "scenario", "quantity", "model", "note"):
        out[col] = out[col].astype("str")
    return out


def what_ifs(data: pd.DataFrame, asks: Sequence, **kwargs) -> pd.DataFrame:
    """:func:`what_if` for several asks (objects with ``driver``, ``shift`` and ``move_up``,
    e.g. ``drivers.what_if`` of engagement.yml), their rows concatenated in the asks' order.

    Consecutive asks of the same kind (the same ``shift`` or ``move_up``) go to one
    :func:`what_if` call with their drivers: the models and their bootstrap resamples
    depend on neither, so they are fitted once for all of them (the rows are the same as
    one call per ask with the same ``random_state``). ``kwargs`` go to :func:`what_if`.
    """
    from itertools import groupby

    parts = [
        what_if(data, [a.driver for a in grp], shift=shift, move_up=move_up, **kwargs)
        for (shift, move_up), grp in (
            (key, list(g)) for key, g in groupby(asks, key=lambda a: (a.shift, a.move_up))
        )
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# ------------------------------------------------------------------------------------------
# Findings for the report
# ------------------------------------------------------------------------------------------
def driver_findings(
    model: DriverModel,
    *,
    labels: Mapping[str, str] | None = None,
    comparisons: Sequence[SegmentDrivers] = (),
    kano: pd.DataFrame | None = None,
    ipa: pd.DataFrame | None = None,
    what_ifs: pd.DataFrame | None = None,
    nonlinear: NonlinearityCheck | None = None,
    step: str = "03",
    charts: Mapping[str, str] | None = None,
) -> list:
    """The findings of the driver step, each with its base and interval.

    ``labels``: driver -> readable label (the codebook's); ``what_ifs``: rows of
    :func:`what_if` for several drivers (concatenated). ``charts``: the notebook's chart
    reference (:attr:`~rox_helpers.artifacts.Finding.chart`) for each kind of finding
    that has one, by kind: ``importance``, ``comparisons`` (one finding per comparison,
    ``{k}`` its position in ``comparisons``), ``kano``, ``ipa``, ``what_ifs`` (one per
    driver and scenario, ``{k}`` in the order of ``what_ifs``), ``nonlinear`` (see
    :func:`~rox_helpers.artifacts.chart_namer`)."""
    from rox_helpers.artifacts import Finding, chart_namer, interval_text

    chart = chart_namer(
        charts, ("importance", "comparisons", "kano", "ipa", "what_ifs", "nonlinear")
    )
    respondents = f"{model.n_:,} respondents"

    def pct_ci(r, of: str) -> str:
        return interval_text(r["ci_low"], r["ci_high"], "{:.1%}", of=of)

    def lab(d: str) -> str:
        return (labels or {}).get(d, d.removeprefix("att_").replace("_", " ").capitalize())

    out = []
    imp = model.importances_.sort_values("rank")
    top = imp.head(3)
    td = model.top_differences_
    ahead = ""
    if td is not None and len(td):
        r = td.iloc[0]
        clear = r["ci_low"] > 0
        ahead = (
            f"{lab(r['first'])} is {'clearly' if clear else 'not clearly'} ahead of "
            f"{lab(r['second'])} (difference {r['diff']:.1%}, 95% CI {r['ci_low']:.1%} to "
            f"{r['ci_high']:.1%})"
        )
    out.append(
        Finding(
            step=step,
            headline=f"{lab(top.iloc[0]['driver'])} goes with {lab(model.outcome_)} "
            f"more than any other attribute ({top.iloc[0]['share']:.0%} of what the ratings "
            "explain)",
            evidence=[
                f"#{int(r.rank)} {lab(r.driver)}: {r.share:.1%} (95% CI {r.ci_low:.1%} to "
                f"{r.ci_high:.1%}; first in {r.p_rank1:.0%} of resamples)"
                for r in top.itertuples()
            ]
            + ([ahead] if ahead else [])
            + [
                f"R² {model.r2_:.2f} on {model.n_:,} respondents ({model.method_description_}); "
                "derived importance: an association, not an effect"
            ],
            so_what="Money spent where the outcome moves with the ratings; the what-if "
            "below sizes it.",
            confidence="high" if model.n_ >= 1000 else "medium",
            chart=chart("importance"),
            evidence_kind="association",
            base=respondents,
            interval=pct_ci(top.iloc[0], f"{lab(top.iloc[0]['driver'])}'s share"),
        )
    )
    for k, cmp in enumerate(comparisons, start=1):
        d = cmp.differences
        sig = d[d["significant"]].assign(_abs=lambda x: x["diff"].abs())
        sig = sig.sort_values("_abs", ascending=False)
        firsts = cmp.shares.sort_values("rank").groupby("segment", sort=False).head(1)
        # the difference the headline rests on: the largest significant one, else the largest
        pool = sig if len(sig) else d.assign(_abs=d["diff"].abs()).sort_values("_abs")[::-1]
        lead = pool.iloc[0] if len(pool) else None
        out.append(
            Finding(
                step=step,
                headline="Different guests, different drivers: "
                + "; ".join(f"{r.segment}: {lab(r.driver)} first" for r in firsts.itertuples()),
                evidence=[
                    f"{lab(r.driver)}: {r.segment_a} {r.estimate_a:.1%} vs {r.segment_b} "
                    f"{r.estimate_b:.1%} (difference 95% CI {r.ci_low:+.1%} to {r.ci_high:+.1%}, "
                    f"q = {r.q_value:.3f})"
                    for r in sig.head(4).itertuples()
                ]
                or ["no difference between the segments is significant after BH"],
                so_what="One improvement plan does not fit all guests: target each segment's "
                "first driver.",
                confidence="medium",
                chart=chart("comparisons", k),
                evidence_kind="association",
                base=f"{int(firsts['n'].sum()):,} respondents in {len(firsts)} segments",
                interval=""
                if lead is None
                else interval_text(
                    lead["ci_low"],
                    lead["ci_high"],
                    "{:+.1%}",
                    of=f"difference in {lab(lead['driver'])}'s share, {lead['segment_a']} "
                    f"against {lead['segment_b']}",
                ),
            )
        )
    if kano is not None and len(kano):
        by = kano.groupby("kano_class")["driver"].apply(lambda s: ", ".join(lab(x) for x in s))
        magic = kano.loc[kano["magic_moment"].astype(bool), "driver"].map(lab).tolist()
        # the figure the headline rests on: the first magic moment's reward, else the first
        # basic's penalty, else the first attribute's penalty
        if magic:
            kr = kano[kano["magic_moment"].astype(bool)].iloc[0]
            k_ci = ("reward_ci_low", "reward_ci_high", "reward")
        else:
            basic = kano[kano["kano_class"] == "basic"]
            kr = (basic if len(basic) else kano).iloc[0]
            k_ci = ("penalty_ci_low", "penalty_ci_high", "penalty")
        out.append(
            Finding(
                step=step,
                headline=(
                    f"Candidate magic moments: {', '.join(magic)}"
                    if magic
                    else "No attribute is a delighter"
                    + (f"; basics that must not fail: {by['basic']}" if "basic" in by else "")
                ),
                evidence=[f"{k}: {v}" for k, v in by.items()],
                so_what="Basic attributes must not fail; performance attributes pay in "
                "proportion; delighters are where to surprise.",
                confidence="medium",
                chart=chart("kano"),
                evidence_kind="association",
                base=f"{int(kano['n'].max()):,} respondents",
                interval=interval_text(
                    kr[k_ci[0]],
                    kr[k_ci[1]],
                    "{:.2f}",
                    of=f"{lab(kr['driver'])}'s {k_ci[2]} in outcome points",
                ),
            )
        )
    if ipa is not None and len(ipa):
        fix = ipa.loc[ipa["quadrant"] == "fix first", "driver"].map(lab).tolist()
        ir = ipa.sort_values("importance", ascending=False)
        ir = ir[ir["quadrant"] == "fix first"].iloc[0] if fix else ir.iloc[0]
        out.append(
            Finding(
                step=step,
                headline=(
                    f"Fix first: {', '.join(fix)}"
                    if fix
                    else "No important attribute performs below average"
                ),
                evidence=[
                    f"{lab(r.driver)}: importance {r.importance:.1%}, performance "
                    f"{r.performance:.2f} ({r.quadrant})"
                    for r in ipa.itertuples()
                    if r.quadrant in ("fix first", "keep up")
                ],
                so_what="High importance with low performance is where improvement pays first.",
                confidence="medium",
                chart=chart("ipa"),
                evidence_kind="association",
                base=f"{int(ipa['n'].max()):,} respondents" if "n" in ipa else respondents,
                interval=interval_text(
                    ir.get("importance_ci_low"),
                    ir.get("importance_ci_high"),
                    "{:.1%}",
                    of=f"{lab(ir['driver'])}'s importance",
                ),
            )
        )
    if what_ifs is not None and len(what_ifs):
        groups = what_ifs.groupby(["driver", "scenario"], sort=False)
        for k, ((driver, scenario), g) in enumerate(groups, start=1):
            rows = g.set_index("quantity")
            q_lead = "nps" if "nps" in rows.index else rows.index[0]
            ev = [
                f"{q.replace('_', ' ')}: {r['change']:+.3g} (95% CI {r['ci_low']:+.3g} to "
                f"{r['ci_high']:+.3g})"
                for q, r in rows.iterrows()
            ]
            if rows["extrapolation"].any():
                ev.append("beyond the observed ratings for some respondents: extrapolation")
            out.append(
                Finding(
                    step=step,
                    headline=f"What if {lab(driver)}: {scenario}",
                    evidence=ev,
                    so_what="What the models predict if the association were causal; the "
                    "linkage step tests the chain within hotels.",
                    confidence="low" if rows["extrapolation"].any() else "medium",
                    chart=chart("what_ifs", k),
                    evidence_kind="scenario",
                    base=respondents,
                    interval=interval_text(
                        rows.loc[q_lead, "ci_low"],
                        rows.loc[q_lead, "ci_high"],
                        "{:+.3g}",
                        of=f"change in {str(q_lead).replace('_', ' ')}",
                    ),
                )
            )
    if nonlinear is not None:
        flagged = nonlinear.summary[nonlinear.summary["nonlinear"]]
        if len(flagged):
            out.append(
                Finding(
                    step=step,
                    headline="Thresholds: "
                    + ", ".join(lab(d) for d in flagged["driver"])
                    + " act non-linearly",
                    evidence=[str(r.description) for r in flagged.itertuples()],
                    so_what="Below the threshold a rating costs far more than above it: "
                    "lifting the worst experiences pays most.",
                    confidence="medium",
                    chart=chart("nonlinear"),
                    evidence_kind="association",
                    base=f"{int(flagged['n'].max()):,} respondents",
                    # the out-of-sample gain of a flexible shape over a straight line, +/- 1.96
                    # of its standard error across the folds
                    interval=interval_text(
                        flagged["cv_gain"].iloc[0] - 1.96 * flagged["se"].iloc[0],
                        flagged["cv_gain"].iloc[0] + 1.96 * flagged["se"].iloc[0],
                        "{:+.4f}",
                        of=f"out-of-sample R² gain of a non-linear "
                        f"{lab(flagged['driver'].iloc[0])}",
                    ),
                )
            )
    return out
