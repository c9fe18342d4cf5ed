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
rank, and for the leading drivers the paired difference "is #1 really ahead of #2?".

References
----------
Budescu, D. V. (1993). Dominance analysis. Psychological Bulletin 114, 542-551.
Grömping, U. (2007). Estimators of relative importance in linear regression based on
variance decomposition. The American Statistician 61, 139-147.
Higham, N. J. (2002). Computing the nearest correlation matrix -- a problem from finance.
IMA Journal of Numerical Analysis 22, 329-343.
Johnson, J. W. (2000). A heuristic method for estimating the relative weight of predictor
variables in multiple regression. Multivariate Behavioral Research 35, 1-19.
Owen, G. (1977). Values of games with a priori unions. In Essays in Mathematical Economics
and Game Theory, 76-88.
Tonidandel, S. & LeBreton, J. M. (2010). Determining the relative importance of predictors
in logistic regression: an extension of relative weight analysis. Organizational Research
Methods 13, 767-781.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from rox_helpers.errors import DataValidationError

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


_CONTROLLER: list[ThreadpoolController] = []


def _blas_controller() -> ThreadpoolController:
    """The BLAS thread pools, found once (finding them costs a few ms per call)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


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
        q = self.q
        with np.errstate(invalid="ignore", divide="ignore"):
            if not self.pairwise:
                sw = w.sum()
                s = (w @ self.xc) / sw
                xs = self.xc * np.sqrt(w)[:, None]
                cov = (xs.T @ xs) / sw - np.outer(s, s)  # A'A: BLAS's symmetric product
                var = np.diag(cov).copy()
                d = np.sqrt(var)
                out = cov / np.outer(d, d)
            else:
                g = (self._left * w[:, None]).T @ self._right
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
    x: np.ndarray, y: np.ndarray, w: np.ndarray, max_iter: int = 100
) -> tuple[np.ndarray, bool]:
    """Weighted logistic regression with an intercept (Newton-Raphson with step halving)."""
    design = np.column_stack([np.ones(len(y)), x])
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
    if ``n_boot > 0``, resamples respondents for intervals, rank probabilities and the
    "#1 vs #2" comparison. Importances are derived from correlations: they are
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
        Bootstrap resamples of respondents; 0 for none (point estimate only).
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
            return self._fit(data, outcome, drivers, weight)

    def _fit(
        self,
        data: pd.DataFrame,
        outcome: str,
        drivers: Sequence[str] | None,
        weight: str | None,
    ) -> DriverModel:
        rng = np.random.default_rng(self.random_state)
        if drivers is None:
            drivers = [c for c in data.columns if str(c).startswith("att_")]
        drivers = list(drivers)
        if not drivers:
            raise DataValidationError(
                "no driver columns given (and no att_* columns found)",
                rule="at least one driver",
                fix="Pass drivers=[...] naming the attribute rating columns.",
            )
        if outcome in drivers:
            raise ValueError(f"the outcome {outcome!r} is also listed as a driver")
        xy = np.empty((len(data), len(drivers) + 1), order="F")  # filled column by column
        for j, d in enumerate(drivers):
            xy[:, j] = _column(data, d, "driver")
        xy[:, -1] = _column(data, outcome, "outcome")
        x, y = xy[:, :-1], xy[:, -1]
        if weight is None:
            w = np.ones(len(y))
        else:
            w = _column(data, weight, "weight")
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise DataValidationError(
                    f"the weight column {weight!r} has missing, infinite or negative values",
                    column=weight,
                    rule="weights are finite and >= 0",
                    fix="Fix or drop those respondents' weights before the analysis.",
                )
        keep = ~np.isnan(y) & (w > 0)
        levels = _binary_levels(y)
        self.outcome_type_ = "binary" if levels is not None else "rating"
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
        x, y = xy[:, :-1], xy[:, -1]
        n = len(y)
        p = len(drivers)
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
            boot = self._bootstrap(x, y, w, method, rng)
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
    ) -> np.ndarray:
        n, p = x.shape
        counts = np.empty(n)
        out = np.empty((self.n_boot, p))
        if method == "relative_weights_logistic":
            for b in range(self.n_boot):
                counts[:] = np.bincount(rng.integers(0, n, n), minlength=n)
                sel = counts > 0
                raw, _, _ = _relative_weights_logistic(x[sel], y[sel], (w * counts)[sel])
                out[b] = raw
            return out
        moments = _Moments(np.column_stack([x, y]), w, self.missing_ == "pairwise")
        stack = np.empty((self.n_boot, p + 1, p + 1))
        for b in range(self.n_boot):
            counts[:] = np.bincount(rng.integers(0, n, n), minlength=n)
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
