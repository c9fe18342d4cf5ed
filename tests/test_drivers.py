"""Key driver analysis against independent references and known answers.

References: pingouin's ``linear_regression(relimp=True)`` (itself checked against R's
relaimpo), a brute-force Shapley value written here (every subset solved with numpy lstsq
or statsmodels WLS, weights from factorials), the R package ``rwa``'s published
relative weights for ``mtcars``, Higham's (2002) nearest-correlation example, pandas'
pairwise correlations, and statsmodels' logistic regression.
"""

from __future__ import annotations

import io
import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
import statsmodels.api as sm
from statsmodels.stats.correlation_tools import corr_nearest

from rox_helpers import drivers as drv
from rox_helpers.drivers import (
    DriverModel,
    DriverWarning,
    nearest_correlation,
    owen_r2,
    relative_weights,
    shapley_r2,
    subset_r2,
)
from rox_helpers.errors import DataValidationError

# mtcars (R datasets; Henderson & Velleman 1981), the columns rwa's examples use
MTCARS = """mpg,cyl,disp,hp,wt,gear
21,6,160,110,2.62,4
21,6,160,110,2.875,4
22.8,4,108,93,2.32,4
21.4,6,258,110,3.215,3
18.7,8,360,175,3.44,3
18.1,6,225,105,3.46,3
14.3,8,360,245,3.57,3
24.4,4,146.7,62,3.19,4
22.8,4,140.8,95,3.15,4
19.2,6,167.6,123,3.44,4
17.8,6,167.6,123,3.44,4
16.4,8,275.8,180,4.07,3
17.3,8,275.8,180,3.73,3
15.2,8,275.8,180,3.78,3
10.4,8,472,205,5.25,3
10.4,8,460,215,5.424,3
14.7,8,440,230,5.345,3
32.4,4,78.7,66,2.2,4
30.4,4,75.7,52,1.615,4
33.9,4,71.1,65,1.835,4
21.5,4,120.1,97,2.465,3
15.5,8,318,150,3.52,3
15.2,8,304,150,3.435,3
13.3,8,350,245,3.84,3
19.2,8,400,175,3.845,3
27.3,4,79,66,1.935,4
26,4,120.3,91,2.14,5
30.4,4,95.1,113,1.513,5
15.8,8,351,264,3.17,5
19.7,6,145,175,2.77,5
15,8,301,335,3.57,5
21.4,4,121,109,2.78,4
"""


def correlated_data(
    seed: int, p: int, n: int = 400, halo: float = 0.8, noise: float = 2.0
) -> pd.DataFrame:
    """Ratings sharing a halo factor, and an outcome depending on them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) + halo * rng.normal(size=(n, 1))
    y = x @ rng.normal(size=p) + noise * rng.normal(size=n)
    cols = [f"att_{i}" for i in range(p)]
    return pd.DataFrame(x, columns=cols).assign(y=y)


def brute_force_shapley(r2_of) -> np.ndarray:
    """Shapley value of R² by its definition: every subset, factorial weights."""
    p = r2_of.p
    phi = np.zeros(p)
    for j in range(p):
        others = [k for k in range(p) if k != j]
        for size in range(p):
            weight = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
            for s in itertools.combinations(others, size):
                phi[j] += weight * (r2_of((*s, j)) - r2_of(s))
    return phi


class LstsqR2:
    """R² of each subset of columns, each subset solved afresh (numpy lstsq, or WLS)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> None:
        self.x, self.y, self.w, self.p = x, y, w, x.shape[1]
        self.cache: dict[tuple[int, ...], float] = {}

    def __call__(self, s: tuple[int, ...]) -> float:
        key = tuple(sorted(s))
        if not key:
            return 0.0
        if key not in self.cache:
            xs = sm.add_constant(self.x[:, list(key)])
            if self.w is None:
                beta = np.linalg.lstsq(xs, self.y, rcond=None)[0]
                resid = self.y - xs @ beta
                self.cache[key] = 1 - resid @ resid / ((self.y - self.y.mean()) ** 2).sum()
            else:
                self.cache[key] = sm.WLS(self.y, xs, weights=self.w).fit().rsquared
        return self.cache[key]


def pingouin_relimp(df: pd.DataFrame, drivers: list[str], outcome: str = "y") -> np.ndarray:
    lm = pg.linear_regression(df[drivers], df[outcome], relimp=True)
    return lm.set_index("names").loc[drivers, "relimp"].to_numpy()


def corr_of(df: pd.DataFrame) -> pd.DataFrame:
    return df.corr()


# ------------------------------------------------------------------------------------------
# exact Shapley value (LMG)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "p"), [(1, 2), (2, 4), (3, 6), (4, 8), (5, 9), (6, 10)])
def test_exact_lmg_equals_pingouin_relimp(seed, p):
    df = correlated_data(seed, p)
    cols = [f"att_{i}" for i in range(p)]
    ours = shapley_r2(corr_of(df), outcome="y")
    assert list(ours["driver"]) == cols
    assert ours["method"].eq("shapley_exact").all()
    np.testing.assert_allclose(ours["raw_share"], pingouin_relimp(df, cols), atol=1e-10, rtol=0)


def test_driver_model_from_data_equals_pingouin_with_listwise_deletion():
    df = correlated_data(7, 8, n=600)
    rng = np.random.default_rng(0)
    cols = [f"att_{i}" for i in range(8)]
    arr = df[cols].to_numpy(copy=True)
    arr[rng.random(arr.shape) < 0.05] = np.nan
    df[cols] = arr
    model = DriverModel(missing="listwise", n_boot=0).fit(df, "y", cols)
    complete = df.dropna()
    assert model.n_ == len(complete) < len(df)
    assert model.importances_["n"].eq(len(complete)).all()
    np.testing.assert_allclose(
        model.importances_["raw_share"], pingouin_relimp(complete, cols), atol=1e-10
    )


@pytest.mark.parametrize(("seed", "p"), [(11, 3), (12, 5), (13, 7)])
def test_exact_lmg_equals_brute_force_lstsq(seed, p):
    df = correlated_data(seed, p, n=300)
    cols = [f"att_{i}" for i in range(p)]
    ref = brute_force_shapley(LstsqR2(df[cols].to_numpy(), df["y"].to_numpy()))
    ours = shapley_r2(corr_of(df), outcome="y")["raw_share"].to_numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-10, rtol=0)


def test_weighted_lmg_equals_brute_force_wls():
    df = correlated_data(21, 5, n=250)
    cols = [f"att_{i}" for i in range(5)]
    w = np.random.default_rng(3).uniform(0.3, 3.0, len(df))
    df["weight"] = w
    ref = brute_force_shapley(LstsqR2(df[cols].to_numpy(), df["y"].to_numpy(), w))
    model = DriverModel(n_boot=0).fit(df, "y", cols, weight="weight")
    np.testing.assert_allclose(model.importances_["raw_share"], ref, atol=1e-10)
    full = sm.WLS(df["y"], sm.add_constant(df[cols]), weights=w).fit().rsquared
    assert model.r2_ == pytest.approx(full, abs=1e-12)


def test_subset_r2_equals_each_subset_solved_afresh():
    df = correlated_data(31, 6, n=200)
    cols = [f"att_{i}" for i in range(6)]
    ref = LstsqR2(df[cols].to_numpy(), df["y"].to_numpy())
    r2 = subset_r2(corr_of(df), outcome="y")
    assert r2.shape == (64,)
    for mask in range(64):
        s = tuple(j for j in range(6) if mask >> j & 1)
        assert r2[mask] == pytest.approx(ref(s), abs=1e-12)


def test_streamed_blocks_give_the_same_answer(monkeypatch):
    """Above 14 drivers the subsets are streamed in blocks; force that path at p = 9."""
    df = correlated_data(41, 9)
    cols = [f"att_{i}" for i in range(9)]
    whole = shapley_r2(corr_of(df), outcome="y")["raw_share"].to_numpy()
    r2_whole = subset_r2(corr_of(df), outcome="y")
    monkeypatch.setattr(drv, "_LEVELS_PER_BLOCK", 4)
    monkeypatch.setattr(drv, "_BLOCK", 1 << 6)
    streamed = shapley_r2(corr_of(df), outcome="y")["raw_share"].to_numpy()
    np.testing.assert_allclose(streamed, pingouin_relimp(df, cols), atol=1e-10)
    np.testing.assert_allclose(streamed, whole, atol=1e-12)
    np.testing.assert_allclose(subset_r2(corr_of(df), outcome="y"), r2_whole, atol=1e-12)


def test_exact_at_18_drivers_block_orthogonal_equals_pingouin_per_block():
    """Two independent blocks of 9: the whole game is the sum of the blocks' games."""
    a, b = correlated_data(51, 9, n=500), correlated_data(52, 9, n=500)
    ca, cb = corr_of(a).to_numpy(), corr_of(b).to_numpy()
    # drivers: block a (9), block b (9); outcome = ya + yb with unit variances each, so
    # corr(x_a, y) = corr(x_a, ya) / sqrt(2) and the blocks are uncorrelated
    c = np.zeros((19, 19))
    c[:9, :9], c[9:18, 9:18] = ca[:9, :9], cb[:9, :9]
    c[:9, 18] = c[18, :9] = ca[:9, 9] / math.sqrt(2)
    c[9:18, 18] = c[18, 9:18] = cb[:9, 9] / math.sqrt(2)
    c[18, 18] = 1.0
    ref = np.concatenate(
        [
            pingouin_relimp(a, [f"att_{i}" for i in range(9)]) / 2,
            pingouin_relimp(b, [f"att_{i}" for i in range(9)]) / 2,
        ]
    )
    ours = shapley_r2(c)
    np.testing.assert_allclose(ours["raw_share"], ref, atol=1e-10)
    # and reordering the drivers reorders the shares (p > 14: the streamed path)
    perm = np.random.default_rng(0).permutation(18)
    order = [*perm, 18]
    shuffled = shapley_r2(c[np.ix_(order, order)])["raw_share"].to_numpy()
    np.testing.assert_allclose(shuffled, ours["raw_share"].to_numpy()[perm], atol=1e-12)


def test_shares_sum_to_r2_and_normalised_shares_to_one():
    df = correlated_data(61, 12, n=800)
    out = shapley_r2(corr_of(df), outcome="y")
    cols = [f"att_{i}" for i in range(12)]
    full = LstsqR2(df[cols].to_numpy(), df["y"].to_numpy())(tuple(range(12)))
    assert out["raw_share"].sum() == pytest.approx(full, abs=1e-12)
    assert out.attrs["r2"] == pytest.approx(full, abs=1e-12)
    assert out["share"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (out["raw_share"] >= 0).all()
    assert "not an effect" in out.attrs["note"]


def test_permutation_invariance():
    df = correlated_data(71, 10)
    base = shapley_r2(corr_of(df), outcome="y").set_index("driver")["raw_share"]
    cols = list(np.random.default_rng(5).permutation([f"att_{i}" for i in range(10)]))
    shuffled = shapley_r2(corr_of(df[["y", *cols]]), outcome="y").set_index("driver")
    assert list(shuffled.index) == cols
    np.testing.assert_allclose(shuffled["raw_share"], base.loc[cols], atol=1e-12)


def test_driver_uncorrelated_with_everything_gets_nothing():
    df = correlated_data(81, 6)
    c = corr_of(df).to_numpy()
    big = np.eye(8)
    idx = [0, 1, 2, 4, 5, 6, 7]  # position 3 is a driver correlated with nothing
    big[np.ix_(idx, idx)] = c
    out = shapley_r2(big)
    assert out["raw_share"].iloc[3] == pytest.approx(0.0, abs=1e-14)
    # in a sample, a pure-noise driver gets about nothing
    df["att_noise"] = np.random.default_rng(0).normal(size=len(df))
    noisy = shapley_r2(corr_of(df), outcome="y").set_index("driver")
    assert noisy.loc["att_noise", "raw_share"] < 0.005


def test_orthogonal_drivers_get_their_squared_correlation():
    r = np.array([0.5, -0.3, 0.2, 0.0, 0.4])
    c = np.eye(6)
    c[:5, 5] = c[5, :5] = r
    np.testing.assert_allclose(shapley_r2(c)["raw_share"], r**2, atol=1e-14)
    np.testing.assert_allclose(relative_weights(c)["raw_share"], r**2, atol=1e-14)


def test_covariance_matrix_gives_the_same_as_its_correlation_matrix():
    df = correlated_data(91, 5)
    a = shapley_r2(df.cov(), outcome="y")["raw_share"]
    b = shapley_r2(df.corr(), outcome="y")["raw_share"]
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_collinear_driver_does_not_break_the_solver():
    df = correlated_data(95, 4)
    df["att_copy"] = df["att_0"]
    cols = [*(f"att_{i}" for i in range(4)), "att_copy"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DriverWarning)
        out = shapley_r2(df[[*cols, "y"]].corr(), outcome="y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pingouin: "rank deficient", as meant
        ref = pingouin_relimp(df, cols)  # pingouin solves each subset with a pseudo-inverse
    np.testing.assert_allclose(out["raw_share"], ref, atol=1e-6)
    assert out["raw_share"].iloc[0] == pytest.approx(out["raw_share"].iloc[4], abs=1e-6)


# ------------------------------------------------------------------------------------------
# sampled Shapley value above the exact limit
# ------------------------------------------------------------------------------------------


def block_orthogonal_corr(seed: int, blocks: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlation matrix of ``blocks`` mutually uncorrelated blocks of correlated drivers,
    and its exact Shapley values (the game is the sum of the blocks' games)."""
    q = blocks * size
    c = np.zeros((q + 1, q + 1))
    exact = []
    for k in range(blocks):
        ck = correlated_data(seed + k, size, n=600).corr().to_numpy()
        sl = slice(k * size, (k + 1) * size)
        c[sl, sl] = ck[:size, :size]
        c[sl, q] = c[q, sl] = ck[:size, size] / math.sqrt(blocks)
        block_exact = shapley_r2(ck)["raw_share"].to_numpy() / blocks
        exact.append(block_exact)
    c[q, q] = 1.0
    return c, np.concatenate(exact)


def test_sampled_estimate_at_30_drivers_is_within_its_stated_error():
    c, exact = block_orthogonal_corr(100, 3, 10)
    out = shapley_r2(c, n_perm=4000, random_state=1)
    assert out["method"].eq("shapley_sampled").all()
    assert out["raw_share"].sum() == pytest.approx(exact.sum(), abs=1e-12)  # exact by design
    z = (out["raw_share"].to_numpy() - exact) / out["mc_se"].to_numpy()
    assert np.all(np.abs(z) < 4)
    assert 0.2 < np.mean(z**2) < 3  # the stated error is neither far too small nor too large
    again = shapley_r2(c, n_perm=4000, random_state=1)
    pd.testing.assert_frame_equal(out, again)


def test_exact_max_switches_to_sampling():
    df = correlated_data(110, 8)
    exact = shapley_r2(corr_of(df), outcome="y")
    sampled = shapley_r2(corr_of(df), outcome="y", exact_max=5, n_perm=6000)
    assert sampled["method"].eq("shapley_sampled").all()
    z = (sampled["raw_share"] - exact["raw_share"]) / sampled["mc_se"]
    assert np.all(np.abs(z) < 4)


# ------------------------------------------------------------------------------------------
# relative weights
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtcars() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(MTCARS))


@pytest.mark.parametrize(
    ("predictors", "published", "r2"),
    [
        # rwa (R) vignette "Introduction to RWA": rwa(mtcars, "mpg", c(cyl, disp, hp, gear))
        (["cyl", "disp", "hp", "gear"], [0.2284797, 0.2221469, 0.2321744, 0.0963886], 0.7791896),
        # same vignette, with wt
        (
            ["cyl", "disp", "hp", "gear", "wt"],
            [0.18833374, 0.16479802, 0.18809142, 0.07345304, 0.23642417],
            None,
        ),
        # rwa vignette "Regression methods": rwa_multiregress(mtcars, mpg ~ cyl, disp, hp, wt)
        (["cyl", "disp", "hp", "wt"], [0.2096904, 0.1883043, 0.1799590, 0.2706812], 0.8486),
    ],
)
def test_relative_weights_equal_published_rwa_values(mtcars, predictors, published, r2):
    out = relative_weights(mtcars[[*predictors, "mpg"]].corr(), outcome="mpg")
    np.testing.assert_allclose(out["raw_share"], published, atol=6e-8)
    if r2 is not None:
        assert out.attrs["r2"] == pytest.approx(r2, abs=1e-4)


def test_weighted_relative_weights_equal_published_rwa_values(mtcars):
    # rwa vignette: respondent_weight <- rep(c(0.8, 1.2, 1.5, 0.6), 8)
    df = mtcars.assign(respondent_weight=np.tile([0.8, 1.2, 1.5, 0.6], 8))
    model = DriverModel(method="relative_weights", n_boot=0, reliability_base=0).fit(
        df, "mpg", ["cyl", "disp", "hp"], weight="respondent_weight"
    )
    np.testing.assert_allclose(
        model.importances_["raw_share"], [0.2907136, 0.2889098, 0.2088641], atol=6e-8
    )
    assert model.n_eff_ == pytest.approx(28.67377, abs=1e-5)  # also published there


def test_relative_weights_sum_to_r2_and_are_close_to_lmg():
    df = correlated_data(120, 9, n=1000)
    rw = relative_weights(corr_of(df), outcome="y")
    lmg = shapley_r2(corr_of(df), outcome="y")
    assert rw["raw_share"].sum() == pytest.approx(lmg["raw_share"].sum(), abs=1e-12)
    assert np.abs(rw["share"] - lmg["share"]).max() < 0.05  # close, not equal


# ------------------------------------------------------------------------------------------
# binary outcomes
# ------------------------------------------------------------------------------------------


def binary_data(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    df = correlated_data(seed, 5, n=n, noise=1.0)
    rng = np.random.default_rng(seed)
    lin = df[[f"att_{i}" for i in range(5)]].to_numpy() @ np.array([0.8, 0.4, 0.0, -0.3, 0.2])
    df["retained"] = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
    return df


def test_binary_outcome_uses_logistic_relative_weights():
    df = binary_data()
    cols = [f"att_{i}" for i in range(5)]
    model = DriverModel(n_boot=0).fit(df, "retained", cols)
    assert model.outcome_type_ == "binary"
    assert model.method_ == "relative_weights_logistic"
    assert model.importances_["method"].eq("relative_weights_logistic").all()
    assert "pseudo-R²" in model.method_description_
    assert "listwise" in model.importances_["note"].iloc[0]
    # R²_O is the squared correlation of the outcome and statsmodels' fitted probabilities
    fit = sm.Logit(df["retained"], sm.add_constant(df[cols])).fit(disp=0)
    r2o = np.corrcoef(df["retained"], fit.predict())[0, 1] ** 2
    assert model.r2_ == pytest.approx(r2o, abs=1e-8)
    assert model.importances_["raw_share"].sum() == pytest.approx(r2o, abs=1e-10)
    assert model.importances_.set_index("driver")["share"].idxmax() == "att_0"
    grouped = DriverModel(n_boot=0, groups={"a": ["att_0", "att_1"]}).fit(df, "retained", cols)
    assert grouped.group_importances_ is None
    assert "rating outcomes only" in grouped.note_


def test_logistic_relative_weights_equal_an_independent_computation():
    """Tonidandel & LeBreton (2010), step by step with scipy and statsmodels."""
    from scipy.linalg import sqrtm

    df = binary_data(seed=3)
    cols = [f"att_{i}" for i in range(5)]
    x = df[cols].to_numpy()
    xs = (x - x.mean(0)) / x.std(0)
    rxx = np.corrcoef(x, rowvar=False)
    lam = np.real(sqrtm(rxx))
    z = xs @ np.linalg.inv(lam)
    fit = sm.GLM(df["retained"], sm.add_constant(z), family=sm.families.Binomial()).fit()
    b = fit.params[1:]
    logit_hat = z @ b
    r2o = np.corrcoef(df["retained"], fit.fittedvalues)[0, 1] ** 2
    beta = b * z.std(0) * math.sqrt(r2o) / logit_hat.std()
    ref = (lam**2) @ beta**2
    model = DriverModel(n_boot=0).fit(df, "retained", cols)
    np.testing.assert_allclose(model.importances_["raw_share"], ref, atol=1e-8)


def test_binary_outcome_is_never_treated_as_a_rating_scale():
    df = binary_data()
    with pytest.raises(DataValidationError, match="binary"):
        DriverModel(method="shapley", n_boot=0).fit(df, "retained", [f"att_{i}" for i in range(5)])
    # coded 1/2 instead of 0/1: still binary, and the coding is stated
    df["retained"] = df["retained"] + 1
    model = DriverModel(n_boot=0).fit(df, "retained", [f"att_{i}" for i in range(5)])
    assert model.outcome_type_ == "binary"
    assert "coded 2 = 1" in model.note_


def test_binary_bootstrap_runs_and_is_seeded():
    df = binary_data(n=800)
    cols = [f"att_{i}" for i in range(5)]
    a = DriverModel(n_boot=30, random_state=4).fit(df, "retained", cols).importances_
    b = DriverModel(n_boot=30, random_state=4).fit(df, "retained", cols).importances_
    pd.testing.assert_frame_equal(a, b)
    assert (a["ci_low"] <= a["share"]).all() and (a["share"] <= a["ci_high"]).all()


# ------------------------------------------------------------------------------------------
# missing ratings, repair
# ------------------------------------------------------------------------------------------


def test_pairwise_correlations_equal_pandas():
    df = correlated_data(130, 6, n=500)
    rng = np.random.default_rng(1)
    arr = df.to_numpy(copy=True)
    arr[rng.random(arr.shape) < 0.15] = np.nan
    df = pd.DataFrame(arr, columns=df.columns).dropna(subset=["y"])
    cols = [f"att_{i}" for i in range(6)]
    model = DriverModel(n_boot=0, missing="pairwise").fit(df, "y", cols)
    np.testing.assert_allclose(model.corr_.to_numpy(), df[[*cols, "y"]].corr(), atol=1e-12)
    assert model.missing_ == "pairwise"
    assert model.n_ == int(df[cols].notna().any(axis=1).sum())
    counts = df[[*cols, "y"]].notna().astype(int)
    assert model.n_min_pair_ == int((counts.T @ counts).to_numpy().min())
    assert model.importances_["missing"].eq("pairwise").all()
    listwise = DriverModel(n_boot=0, missing="listwise").fit(df, "y", cols)
    assert listwise.n_ == len(df.dropna()) < model.n_


def test_weighted_pairwise_correlation_equals_weighted_pearson_per_pair():
    df = correlated_data(135, 3, n=300)
    rng = np.random.default_rng(2)
    df.loc[rng.random(len(df)) < 0.2, "att_0"] = np.nan
    df.loc[rng.random(len(df)) < 0.2, "att_1"] = np.nan
    df["weight"] = rng.uniform(0.5, 2, len(df))
    model = DriverModel(n_boot=0).fit(df, "y", ["att_0", "att_1", "att_2"], weight="weight")
    both = df[["att_0", "att_1", "weight"]].dropna()
    ref = np.cov(both["att_0"], both["att_1"], aweights=both["weight"])
    r01 = ref[0, 1] / math.sqrt(ref[0, 0] * ref[1, 1])
    assert model.corr_.loc["att_0", "att_1"] == pytest.approx(r01, abs=1e-12)


def test_nearest_correlation_matches_higham_example():
    # Higham (2002), section 4: the nearest correlation matrix to [[1,1,0],[1,1,1],[0,1,1]]
    a = np.array([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]])
    x = nearest_correlation(a)
    np.testing.assert_allclose(
        x, [[1, 0.7607, 0.1573], [0.7607, 1, 0.7607], [0.1573, 0.7607, 1]], atol=5e-5
    )
    assert np.linalg.eigvalsh(x).min() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = corr_nearest(a, threshold=1e-15, n_fact=1000)
    assert np.linalg.norm(a - x) <= np.linalg.norm(a - ref) + 1e-6


def non_psd_data(seed: int = 0, n: int = 600) -> pd.DataFrame:
    """Three ratings seen two at a time: a~b and b~c strongly positive, a~c strongly negative
    (impossible together, so the pairwise matrix is not positive semi-definite)."""
    rng = np.random.default_rng(seed)
    third = n // 3
    z = rng.normal(size=(n, 2))
    e = 0.3 * rng.normal(size=(n, 1))
    a = np.full(n, np.nan)
    b = np.full(n, np.nan)
    c = np.full(n, np.nan)
    s1, s2, s3 = slice(0, third), slice(third, 2 * third), slice(2 * third, n)
    a[s1], b[s1] = z[s1, 0], z[s1, 0] + e[s1, 0]
    b[s2], c[s2] = z[s2, 0], z[s2, 0] + e[s2, 0]
    a[s3], c[s3] = z[s3, 0], -z[s3, 0] + e[s3, 0]
    y = np.nan_to_num(a) + np.nan_to_num(b) + rng.normal(size=n)
    return pd.DataFrame({"att_a": a, "att_b": b, "att_c": c, "y": y})


def test_non_psd_pairwise_matrix_is_repaired_and_flagged():
    df = non_psd_data()
    raw = df.corr().to_numpy()
    assert np.linalg.eigvalsh(raw).min() < -0.1  # the premise
    with pytest.warns(DriverWarning, match="nearest correlation"):
        model = DriverModel(n_boot=20).fit(df, "y", ["att_a", "att_b", "att_c"])
    assert model.repaired_
    assert "nearest correlation matrix" in model.importances_["note"].iloc[0]
    fixed = model.corr_.to_numpy()
    assert np.linalg.eigvalsh(fixed).min() > 0
    np.testing.assert_allclose(np.diag(fixed), 1.0)
    assert model.importances_["raw_share"].sum() == pytest.approx(model.r2_)
    assert 0 <= model.r2_ <= 1
    assert model.n_boot_repaired_ > 0
    # the low-level functions repair (and warn) too, and never return nonsense
    with pytest.warns(DriverWarning):
        out = shapley_r2(raw)
    assert (out["raw_share"] >= 0).all() and out["raw_share"].sum() <= 1


# ------------------------------------------------------------------------------------------
# bootstrap
# ------------------------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_leaves_the_point_estimate_alone():
    df = correlated_data(140, 6, n=500)
    cols = [f"att_{i}" for i in range(6)]
    point = DriverModel(n_boot=0).fit(df, "y", cols).importances_
    a = DriverModel(n_boot=60, random_state=9).fit(df, "y", cols)
    b = DriverModel(n_boot=60, random_state=9).fit(df, "y", cols)
    pd.testing.assert_frame_equal(a.importances_, b.importances_)
    np.testing.assert_array_equal(a.importances_["raw_share"], point["raw_share"])
    assert point["ci_low"].isna().all() and point["p_rank1"].isna().all()
    tab = a.importances_
    assert (tab["ci_low"] <= tab["ci_high"]).all()
    assert (tab["raw_ci_low"] <= tab["raw_ci_high"]).all()
    probs = a.rank_probabilities_
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0)
    np.testing.assert_allclose(tab["p_rank1"], probs[1].to_numpy())
    diffs = a.top_differences_
    first = tab.sort_values("rank")["driver"].tolist()
    assert diffs[["first", "second"]].values.tolist() == [first[:2], first[1:3]]
    assert (diffs["ci_low"] <= diffs["ci_high"]).all()
    assert a.boot_raw_.shape == (60, 6)


def test_bootstrap_intervals_cover_a_known_population_share():
    """Orthogonal drivers: the population share of driver k is r_k² / R²."""
    rng = np.random.default_rng(150)
    n = 2000
    x = rng.normal(size=(n, 3))
    y = x @ np.array([1.0, 0.6, 0.3]) + rng.normal(size=n)
    df = pd.DataFrame(x, columns=["att_0", "att_1", "att_2"]).assign(y=y)
    model = DriverModel(n_boot=300, random_state=2).fit(df, "y")
    truth = np.array([1.0, 0.36, 0.09]) / 1.45
    tab = model.importances_
    assert ((tab["ci_low"] < truth) & (truth < tab["ci_high"])).all()
    assert tab["p_rank1"].iloc[0] == 1.0


def test_sample_engagement_strongest_driver_by_trip_purpose(loaded, truth):
    survey = loaded.tables["cx_survey"]
    atts = [
        "att_checkin_speed",
        "att_cleanliness",
        "att_staff_friendliness",
        "att_room_comfort",
        "att_breakfast",
        "att_wifi",
        "att_value",
        "att_location",
        "att_booking_ease",
        "att_quietness",
    ]
    for purpose, strongest in truth["strongest_driver"].items():
        group = survey[survey["trip_purpose"] == purpose]
        model = DriverModel(n_boot=200, random_state=7).fit(group, "nps", atts, weight="weight")
        tab = model.importances_.set_index("driver")
        top = tab["rank"].idxmin()
        assert top == f"att_{strongest}", (purpose, tab)
        assert tab.loc[top, "p_rank1"] >= 0.9
        assert model.top_differences_["ci_low"].iloc[0] > 0  # #1 is really ahead of #2
        assert model.method_ == "shapley_exact" and model.missing_ == "pairwise"


# ------------------------------------------------------------------------------------------
# grouped Shapley (Owen values)
# ------------------------------------------------------------------------------------------


def test_owen_values_reduce_to_shapley_for_trivial_groups():
    df = correlated_data(160, 7)
    c = corr_of(df)
    cols = [f"att_{i}" for i in range(7)]
    shap = shapley_r2(c, outcome="y")["raw_share"].to_numpy()
    singletons = owen_r2(c, {}, outcome="y")
    np.testing.assert_allclose(singletons["raw_share"], shap, atol=1e-12)
    one_group = owen_r2(c, {"all": cols}, outcome="y")
    np.testing.assert_allclose(one_group["raw_share"], shap, atol=1e-12)


def test_owen_group_totals_are_the_shapley_values_of_the_groups():
    df = correlated_data(170, 7)
    c = corr_of(df)
    groups = {
        "arrival": ["att_0", "att_1"],
        "room": ["att_2", "att_3", "att_4"],
        "staff": ["att_5"],
    }
    out = owen_r2(c, groups, outcome="y")
    assert out.loc[out["driver"] == "att_6", "group"].item() == "att_6"  # unnamed: own group
    # the game between groups, by brute force: R² of each union of groups
    members = [[0, 1], [2, 3, 4], [5], [6]]
    r2 = subset_r2(c, outcome="y")

    class GroupGame:
        p = 4

        def __call__(self, s):
            return r2[sum(1 << j for g in s for j in members[g])]

    ref = brute_force_shapley(GroupGame())
    totals = out.groupby("group", sort=False)["group_raw_share"].first().to_numpy()
    np.testing.assert_allclose(totals, ref, atol=1e-12)
    np.testing.assert_allclose(out.groupby("group")["share_in_group"].sum(), 1.0)
    assert out["raw_share"].sum() == pytest.approx(r2[-1], abs=1e-12)


def test_owen_values_equal_brute_force_definition():
    df = correlated_data(175, 5)
    c = corr_of(df)
    members = [[0, 1], [2, 3], [4]]
    r2 = subset_r2(c, outcome="y")
    ref = np.zeros(5)
    for k, grp in enumerate(members):
        others = [g for g in range(3) if g != k]
        for qs in range(len(others) + 1):
            for q in itertools.combinations(others, qs):
                wq = math.factorial(qs) * math.factorial(3 - qs - 1) / math.factorial(3)
                base = sum(1 << j for g in q for j in members[g])
                for j in grp:
                    rest = [i for i in grp if i != j]
                    for ts in range(len(rest) + 1):
                        wt = math.factorial(ts) * math.factorial(len(grp) - ts - 1)
                        wt /= math.factorial(len(grp))
                        for t in itertools.combinations(rest, ts):
                            s = base | sum(1 << i for i in t)
                            ref[j] += wq * wt * (r2[s | 1 << j] - r2[s])
    groups = {"a": ["att_0", "att_1"], "b": ["att_2", "att_3"]}
    np.testing.assert_allclose(owen_r2(c, groups, outcome="y")["raw_share"], ref, atol=1e-12)
    sampled = owen_r2(c, groups, outcome="y", exact_max=3, n_perm=6000, random_state=3)
    assert sampled["method"].eq("owen_sampled").all()
    assert np.all(np.abs((sampled["raw_share"] - ref) / sampled["mc_se"]) < 4)


def test_driver_model_with_groups():
    df = correlated_data(180, 6)
    groups = {"arrival": ["att_0", "att_1"], "room": ["att_2", "att_3"]}
    model = DriverModel(n_boot=0, groups=groups).fit(df, "y")
    g = model.group_importances_
    assert set(g["group"]) == {"arrival", "room", "att_4", "att_5"}
    assert g["raw_share"].sum() == pytest.approx(model.r2_, abs=1e-12)


# ------------------------------------------------------------------------------------------
# input checks
# ------------------------------------------------------------------------------------------


def test_bad_inputs_are_named():
    df = correlated_data(190, 3)
    with pytest.raises(DataValidationError, match="att_9"):
        DriverModel(n_boot=0).fit(df, "y", ["att_0", "att_9"])
    with pytest.raises(DataValidationError, match="not numeric"):
        DriverModel(n_boot=0).fit(df.assign(att_0="x"), "y", ["att_0", "att_1"])
    with pytest.raises(DataValidationError, match="constant"):
        DriverModel(n_boot=0).fit(df.assign(att_0=3.0), "y", ["att_0", "att_1"])
    with pytest.raises(DataValidationError, match="weight"):
        DriverModel(n_boot=0).fit(df.assign(w=-1.0), "y", ["att_0"], weight="w")
    with pytest.raises(ValueError, match="missing"):
        DriverModel(missing="mean").fit(df, "y")
    with pytest.warns(DriverWarning, match="reliability base"):
        small = DriverModel(n_boot=0).fit(df.head(20), "y")
    assert not small.importances_["reliable"].any()


# ------------------------------------------------------------------------------------------
# cluster bootstrap
# ------------------------------------------------------------------------------------------


def clustered_data(seed: int = 0, n_clusters: int = 30, per: int = 80) -> pd.DataFrame:
    """Hotels whose guests weigh the drivers differently (random slopes by hotel)."""
    rng = np.random.default_rng(seed)
    n = n_clusters * per
    hotel = np.repeat(np.arange(n_clusters), per)
    x = rng.normal(size=(n, 3)) + 0.6 * rng.normal(size=(n, 1))
    slopes = np.array([1.0, 0.7, 0.4]) + 0.5 * rng.normal(size=(n_clusters, 3))
    y = (x * slopes[hotel]).sum(axis=1) + rng.normal(size=n)
    df = pd.DataFrame(x, columns=["att_0", "att_1", "att_2"]).assign(y=y)
    df["hotel"] = pd.array([f"H{h:02d}" for h in hotel], dtype="str")
    return df


def test_cluster_bootstrap_leaves_the_point_estimate_and_widens_the_intervals():
    df = clustered_data()
    by_resp = DriverModel(n_boot=300, random_state=1).fit(df, "y")
    by_hotel = DriverModel(n_boot=300, random_state=1).fit(df, "y", cluster="hotel")
    point = DriverModel(n_boot=0).fit(df, "y", cluster="hotel")
    np.testing.assert_array_equal(
        by_hotel.importances_["raw_share"], point.importances_["raw_share"]
    )
    np.testing.assert_array_equal(
        by_hotel.importances_["raw_share"], by_resp.importances_["raw_share"]
    )
    assert by_hotel.n_clusters_ == 30 and by_hotel.cluster_ == "hotel"
    assert by_resp.n_clusters_ is None
    assert "30 clusters ('hotel')" in by_hotel.note_
    width = lambda m: (m.importances_["ci_high"] - m.importances_["ci_low"]).to_numpy()  # noqa: E731
    # slopes vary by hotel: respondents are not independent, and only the cluster
    # bootstrap sees the hotel-to-hotel variation
    assert np.all(width(by_hotel) > 1.5 * width(by_resp))
    again = DriverModel(n_boot=300, random_state=1).fit(df, "y", cluster="hotel")
    pd.testing.assert_frame_equal(again.importances_, by_hotel.importances_)


def test_cluster_resampler_keeps_clusters_together():
    codes = np.repeat(np.arange(5), [3, 1, 4, 2, 2])
    draw = drv._resampler(np.random.default_rng(0), len(codes), codes, 5)
    for _ in range(20):
        counts = draw()
        for c in range(5):
            assert len(set(counts[codes == c])) == 1  # every guest of a hotel counted alike
        # the resample draws 5 hotels with replacement
        assert sum(counts[codes == c][0] for c in range(5)) == 5


def test_cluster_column_checked():
    df = clustered_data(n_clusters=8, per=40)
    with pytest.raises(DataValidationError, match="cluster column 'nope'"):
        DriverModel(n_boot=10).fit(df, "y", cluster="nope")
    holes = df.assign(hotel=df["hotel"].where(df.index % 50 != 0))
    with pytest.raises(DataValidationError, match="no value in the cluster column"):
        DriverModel(n_boot=10).fit(holes, "y", cluster="hotel")
    with pytest.warns(DriverWarning, match="only 8 clusters"):
        DriverModel(n_boot=10).fit(df, "y", cluster="hotel")


# ------------------------------------------------------------------------------------------
# per-segment drivers
# ------------------------------------------------------------------------------------------


def segment_data(seed: int, weights: dict[str, list[float]], n: int = 700) -> pd.DataFrame:
    """Respondents of each segment, ratings with a halo, the outcome on the segment's weights."""
    rng = np.random.default_rng(seed)
    parts = []
    for seg, beta in weights.items():
        x = rng.normal(size=(n, len(beta))) + 0.7 * rng.normal(size=(n, 1))
        y = x @ np.array(beta) + 1.2 * rng.normal(size=n)
        part = pd.DataFrame(x, columns=[f"att_{i}" for i in range(len(beta))]).assign(y=y)
        part["segment"] = seg
        part["hotel"] = rng.integers(0, 25, n)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_compare_segments_marks_a_planted_difference_only():
    df = segment_data(200, {"business": [1.0, 0.3, 0.3, 0.3], "leisure": [0.3, 1.0, 0.3, 0.3]})
    out = drv.compare_segments(df, "y", by="segment", n_boot=300, random_state=3)
    assert list(out.models) == ["business", "leisure"]
    d = out.differences.set_index("driver")
    assert d.loc["att_0", "significant"] and d.loc["att_0", "diff"] > 0
    assert d.loc["att_1", "significant"] and d.loc["att_1", "diff"] < 0
    assert not d.loc["att_2", "significant"] and not d.loc["att_3", "significant"]
    # the q-values are Benjamini-Hochberg of the p-values over the comparison
    from statsmodels.stats.multitest import multipletests

    q = multipletests(out.differences["p_value"], method="fdr_bh")[1]
    np.testing.assert_allclose(out.differences["q_value"], q)
    # the shares are each segment's own model, the differences theirs
    biz = out.models["business"].importances_.set_index("driver")["share"]
    np.testing.assert_allclose(d["estimate_a"], biz.loc[d.index])
    np.testing.assert_allclose(d["diff"], d["estimate_a"] - d["estimate_b"])
    assert (d["ci_low"] <= d["diff"]).all() and (d["diff"] <= d["ci_high"]).all()
    wide = out.side_by_side().set_index("driver")
    assert wide.loc["att_0", "differs"] == "business vs leisure"
    assert wide.loc["att_2", "differs"] == ""
    assert set(out.shares["segment"]) == {"business", "leisure"}
    assert "Benjamini-Hochberg" in out.note


def test_compare_segments_marks_nothing_between_identical_segments():
    same = [0.8, 0.5, 0.3, 0.2, 0.1]
    df = segment_data(210, {"a": same, "b": same, "c": same}, n=500)
    out = drv.compare_segments(df, "y", by="segment", n_boot=200, random_state=1)
    assert len(out.differences) == 3 * 5  # three pairs x five drivers
    assert not out.differences["significant"].any()
    assert out.side_by_side()["differs"].eq("").all()


def test_compare_segments_with_clusters_draws_the_same_hotels_in_each_segment():
    df = segment_data(220, {"a": [1.0, 0.3], "b": [0.3, 1.0]}, n=400)
    out = drv.compare_segments(df, "y", by="segment", cluster="hotel", n_boot=100)
    assert out.models["a"].n_clusters_ == out.models["b"].n_clusters_ == 25
    assert "same clusters for every segment" in out.note
    assert out.differences["significant"].all()
    # the same guests in two segments: with the same hotels drawn for both, every resample's
    # difference is exactly zero (independent draws would scatter it)
    a = df[df["segment"] == "a"]
    twins = pd.concat([a, a.assign(segment="b")], ignore_index=True)
    out = drv.compare_segments(twins, "y", by="segment", cluster="hotel", n_boot=100)
    np.testing.assert_array_equal(out.models["a"].boot_raw_, out.models["b"].boot_raw_)
    assert (out.differences[["ci_low", "ci_high"]] == 0).all().all()
    assert not out.differences["significant"].any()
    loose = drv.compare_segments(twins, "y", by="segment", n_boot=100)
    assert (loose.differences["ci_high"] - loose.differences["ci_low"] > 0).all()


def test_compare_segments_input_checks():
    df = segment_data(230, {"a": [1.0, 0.3], "b": [0.3, 1.0]}, n=100)
    with pytest.raises(DataValidationError, match="segment column"):
        drv.compare_segments(df, "y", by="nope")
    with pytest.raises(ValueError, match="n_boot"):
        drv.compare_segments(df, "y", by="segment", n_boot=10)
    small = pd.concat([df, df.head(5).assign(segment="tiny")], ignore_index=True)
    with pytest.warns(DriverWarning, match="tiny"):
        out = drv.compare_segments(small, "y", by="segment", n_boot=100)
    assert "tiny" not in out.models and "tiny (n = 5)" in out.note
    with pytest.raises(DataValidationError, match="fewer than two segments"):
        drv.compare_segments(df, "y", by="segment", segments=["a"], n_boot=100)


# ------------------------------------------------------------------------------------------
# non-linearity check
# ------------------------------------------------------------------------------------------


def threshold_data(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    """1-10 ratings with a halo; the outcome drops steeply below 4 on att_thr, flat above,
    and rises in a straight line with att_lin and att_lin2."""
    rng = np.random.default_rng(seed)
    lat = 6.5 + 1.2 * rng.normal(size=(n, 1)) + 1.5 * rng.normal(size=(n, 3))
    x = np.clip(np.round(lat), 1, 10)
    y = (
        7
        + 1.2 * np.minimum(x[:, 0] - 4, 0)
        + 0.4 * (x[:, 1] - 7)
        + 0.3 * (x[:, 2] - 7)
        + rng.normal(size=n)
    )
    return pd.DataFrame(x, columns=["att_thr", "att_lin", "att_lin2"]).assign(y=y)


@pytest.mark.parametrize("basis", ["step", "spline"])
def test_nonlinearity_flags_a_threshold_and_not_a_line(basis):
    df = threshold_data()
    out = drv.nonlinearity(df, "y", basis=basis, random_state=2)
    s = out.summary.set_index("driver")
    assert s.loc["att_thr", "nonlinear"]
    assert not s.loc["att_lin", "nonlinear"] and not s.loc["att_lin2", "nonlinear"]
    assert s.loc["att_thr", "cv_gain"] > 0.03
    assert s.loc["att_thr", "basis"] == basis
    np.testing.assert_allclose(s["r2_cv_flexible"] - s["r2_cv_linear"], s["cv_gain"], atol=1e-12)
    # the broken line finds the kink and the two slopes
    assert s.loc["att_thr", "kink"] == 4
    assert s.loc["att_thr", "slope_below"] == pytest.approx(1.2, abs=0.15)
    assert s.loc["att_thr", "slope_above"] == pytest.approx(0.0, abs=0.1)
    assert "up to 4" in s.loc["att_thr", "description"]
    assert "threshold" in s.loc["att_thr", "description"]
    assert s.loc["att_lin", "description"] == ""
    # a shape for the flagged driver only
    assert set(out.shapes["driver"]) == {"att_thr"}
    shape = out.shapes.set_index("level")
    assert shape.loc[1, "predicted"] < shape.loc[4, "predicted"] - 2.5
    assert abs(shape.loc[10, "predicted"] - shape.loc[5, "predicted"]) < 0.3
    assert (shape["ci_low"] < shape["predicted"]).all()
    assert (shape["predicted"] < shape["ci_high"]).all()


def test_nonlinearity_step_shape_is_the_level_means_of_the_partial_model():
    """Step partial dependence, checked against statsmodels with level dummies."""
    df = threshold_data(seed=5, n=2000)
    out = drv.nonlinearity(df, "y", all_shapes=True, min_level_n=1)
    shape = out.shapes[out.shapes["driver"] == "att_lin"].set_index("level")
    levels = sorted(df["att_lin"].unique())
    dummies = pd.get_dummies(df["att_lin"], prefix="lv", drop_first=True, dtype=float)
    xs = sm.add_constant(pd.concat([df[["att_thr", "att_lin2"]], dummies], axis=1))
    fit = sm.OLS(df["y"], xs).fit()
    base = (
        fit.params["const"]
        + fit.params[["att_thr", "att_lin2"]] @ df[["att_thr", "att_lin2"]].mean()
    )
    ref = [base + (fit.params.get(f"lv_{v}", 0.0)) for v in levels]
    np.testing.assert_allclose(shape.loc[levels, "predicted"], ref, atol=1e-8)
    assert set(out.shapes["driver"]) == {"att_thr", "att_lin", "att_lin2"}


def test_nonlinearity_is_seeded_and_refuses_binary_outcomes():
    df = threshold_data(seed=7, n=800)
    a = drv.nonlinearity(df, "y", random_state=4).summary
    b = drv.nonlinearity(df, "y", random_state=4).summary
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(DataValidationError, match="binary"):
        drv.nonlinearity(df.assign(y=(df["y"] > 7).astype(int)), "y")


def test_sparse_rating_levels_are_pooled():
    x = np.array([1] * 3 + [2] * 40 + [3] * 50 + [4] * 5 + [5] * 60)
    levels, group = drv._level_groups(x.astype(float), 30)
    assert list(levels) == [1, 2, 3, 4, 5]
    assert group[0] == group[1]  # 1 joins 2
    assert group[3] in (group[2], group[4])  # 4 joins a neighbour
    assert np.bincount(group, weights=np.bincount(x)[1:]).min() >= 30


# ------------------------------------------------------------------------------------------
# Kano-style classification
# ------------------------------------------------------------------------------------------


def kano_data(seed: int = 0, n: int = 6000) -> tuple[pd.DataFrame, dict[str, tuple]]:
    """1-10 ratings and an outcome with known penalties and rewards (low 1-5, middle 6-8,
    high 9-10): a basic attribute (penalty 1.5, no reward), a delighter (reward 1.2, no
    penalty), a performance one (a straight line, 0.3 a point) and one without effect.
    No halo here: the bands cannot render a straight line exactly, and with correlated
    ratings the rest would leak into the bands of the others."""
    rng = np.random.default_rng(seed)
    lat = 7 + 1.9 * rng.normal(size=(n, 4))
    x = np.clip(np.round(lat), 1, 10)
    low, high = x <= 5, x >= 9
    y = 6.5 - 1.5 * low[:, 0] + 1.2 * high[:, 1] + 0.3 * (x[:, 2] - 7) + rng.normal(size=n)
    cols = ["att_basic", "att_delight", "att_linear", "att_none"]
    truth = {"att_basic": (1.5, 0.0), "att_delight": (0.0, 1.2), "att_none": (0.0, 0.0)}
    return pd.DataFrame(x, columns=cols).assign(y=y), truth


def test_penalty_reward_recovers_planted_effects_and_classes():
    df, truth = kano_data()
    out = drv.penalty_reward(df, "y").set_index("driver")
    for d, (pen, rew) in truth.items():
        assert out.loc[d, "penalty_ci_low"] < pen < out.loc[d, "penalty_ci_high"], d
        assert out.loc[d, "reward_ci_low"] < rew < out.loc[d, "reward_ci_high"], d
    assert out["kano_class"].to_dict() == {
        "att_basic": "basic",
        "att_delight": "delighter",
        "att_linear": "performance",
        "att_none": "low impact",
    }
    assert out["magic_moment"].to_dict() == {
        "att_basic": False,
        "att_delight": True,
        "att_linear": False,
        "att_none": False,
    }
    # a straight line: equal effects per rating point, whatever the band widths
    assert out.loc["att_linear", "penalty_per_point"] == pytest.approx(0.3, abs=0.05)
    assert out.loc["att_linear", "reward_per_point"] == pytest.approx(0.3, abs=0.05)
    assert out.loc["att_basic", "impact_asymmetry"] < -0.8
    assert out.loc["att_delight", "impact_asymmetry"] > 0.8
    assert out.attrs["low_max"] == 5 and out.attrs["high_min"] == 9


def test_penalty_reward_equals_statsmodels_dummy_regression():
    df, _ = kano_data(seed=1, n=1500)
    cols = ["att_basic", "att_delight", "att_linear", "att_none"]
    df["w"] = np.random.default_rng(2).uniform(0.5, 2, len(df))
    df["hotel"] = np.random.default_rng(3).integers(0, 40, len(df))
    dummies = pd.concat(
        [(df[cols] <= 5).add_suffix("_low"), (df[cols] >= 9).add_suffix("_high")], axis=1
    ).astype(float)
    fit = sm.WLS(df["y"], sm.add_constant(dummies), weights=df["w"]).fit(cov_type="HC1")
    out = drv.penalty_reward(df, "y", cols, weight="w").set_index("driver")
    np.testing.assert_allclose(out["penalty"], -fit.params[[f"{c}_low" for c in cols]], atol=1e-10)
    np.testing.assert_allclose(out["reward"], fit.params[[f"{c}_high" for c in cols]], atol=1e-10)
    np.testing.assert_allclose(out["p_penalty"], fit.pvalues[[f"{c}_low" for c in cols]], rtol=1e-6)
    z = 1.959963984540054
    se = fit.bse[[f"{c}_high" for c in cols]].to_numpy()
    np.testing.assert_allclose(out["reward_ci_high"] - out["reward"], z * se, rtol=1e-8)
    assert out.attrs["r2"] == pytest.approx(fit.rsquared, abs=1e-10)
    clustered = sm.WLS(df["y"], sm.add_constant(dummies), weights=df["w"]).fit(
        cov_type="cluster", cov_kwds={"groups": df["hotel"]}
    )
    out_c = drv.penalty_reward(df, "y", cols, weight="w", cluster="hotel").set_index("driver")
    np.testing.assert_allclose(
        out_c["p_reward"], clustered.pvalues[[f"{c}_high" for c in cols]], rtol=1e-6
    )


def test_penalty_reward_cut_points_and_small_bases():
    assert drv._rating_cuts((1, 10), None, None) == (5, 9)
    assert drv._rating_cuts((1, 5), None, None) == (2, 5)
    assert drv._rating_cuts((0, 10), None, None) == (4, 9)
    with pytest.raises(ValueError, match="low_max < high_min"):
        drv._rating_cuts((1, 10), 9, 8)
    df, _ = kano_data(seed=4, n=1200)
    out = drv.penalty_reward(df, "y", high_min=10, min_group_n=200).set_index("driver")
    assert (out["n_high"] < 200).all()
    assert out["kano_class"].eq("insufficient base").all()


def brute_force_reach_noise_shapley(flags: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Shapley value of v(M) = reach(M) - noise(M) by its definition (every coalition)."""
    p = flags.shape[1]

    def v(s):
        if not s:
            return 0.0
        any_ = flags[:, list(s)].any(axis=1)
        return any_[target].mean() - any_[~target].mean()

    phi = np.zeros(p)
    for j in range(p):
        others = [k for k in range(p) if k != j]
        for size in range(p):
            wgt = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
            for s in itertools.combinations(others, size):
                phi[j] += wgt * (v((*s, j)) - v(s))
    return phi


def test_key_dissatisfiers_equal_the_shapley_definition_and_find_the_planted_one():
    df, _ = kano_data(seed=6, n=2000)
    cols = ["att_basic", "att_delight", "att_linear", "att_none"]
    df.loc[df.index % 17 == 0, "att_none"] = np.nan  # not rated: neither low nor high
    out = drv.dissatisfiers_enhancers(df, "y", cols, outcome_low_max=5.5, outcome_high_min=7.5)
    x = df[cols].to_numpy()
    low = np.nan_to_num(x, nan=7) <= 5
    high = np.nan_to_num(x, nan=7) >= 9
    ref_d = brute_force_reach_noise_shapley(low, df["y"].to_numpy() <= 5.5)
    ref_e = brute_force_reach_noise_shapley(high, df["y"].to_numpy() >= 7.5)
    np.testing.assert_allclose(out["dissatisfier_value"], ref_d, atol=1e-12)
    np.testing.assert_allclose(out["enhancer_value"], ref_e, atol=1e-12)
    t = out.set_index("driver")
    assert t["dissatisfier_value"].idxmax() == "att_basic"
    assert t["enhancer_value"].idxmax() == "att_delight"
    assert t.loc["att_basic", "key_dissatisfier"] and t.loc["att_delight", "key_enhancer"]
    # the key set is the prefix (by Shapley value) with the largest reach - noise
    order = t.sort_values("dissatisfier_rank")
    best = order["dissatisfier_success"].idxmax()
    expected = list(order.index[: order.index.get_loc(best) + 1])
    assert out.attrs["dissatisfier_key_set"] == [
        d for d in expected if t.loc[d, "dissatisfier_value"] > 0
    ]
    first = order.index[0]
    assert order.loc[first, "dissatisfier_success"] == pytest.approx(
        order.loc[first, "dissatisfier_reach"] - order.loc[first, "dissatisfier_noise"]
    )


def test_kano_classification_joins_both_analyses():
    df, _ = kano_data(seed=8, n=3000)
    out = drv.kano_classification(df, "y", outcome_low_max=5.5, outcome_high_min=7.5)
    assert out.set_index("driver").loc["att_delight", "magic_moment"]
    assert {"kano_class", "key_dissatisfier", "key_enhancer", "penalty", "reward"} <= set(
        out.columns
    )
    assert "Conklin" in out.attrs["note"] and "Penalty-reward" in out.attrs["note"]
    assert out.attrs["enhancer_key_set"][0] == "att_delight"


# ------------------------------------------------------------------------------------------
# importance-performance matrix
# ------------------------------------------------------------------------------------------


def test_importance_performance_quadrants():
    rng = np.random.default_rng(0)
    n = 400
    means = {"att_a": 5.0, "att_b": 8.5, "att_c": 8.0, "att_d": 6.0}
    df = pd.DataFrame(
        {d: np.clip(np.round(m + rng.normal(0, 1, n)), 1, 10) for d, m in means.items()}
    )
    df.loc[:9, "att_a"] = np.nan
    imp = pd.DataFrame(
        {"driver": list(means), "share": [0.4, 0.3, 0.2, 0.1], "ci_low": 0.0, "ci_high": 1.0}
    )
    out = drv.importance_performance(df, imp).set_index("driver")
    # cut-points: the mean importance (0.25) and the mean of the four mean ratings
    perf = df.mean()
    assert out["importance_cut"].iloc[0] == pytest.approx(0.25)
    assert out["performance_cut"].iloc[0] == pytest.approx(perf.mean())
    np.testing.assert_allclose(out["performance"], perf.loc[out.index])
    assert out["quadrant"].to_dict() == {
        "att_a": "fix first",  # important, rated low
        "att_b": "keep up",  # important, rated high
        "att_c": "possible overkill",  # less important, rated high
        "att_d": "low priority",
    }
    assert out.loc["att_a", "n"] == n - 10
    assert (out["performance_ci_low"] < out["performance"]).all()
    # top box, and cut-points given as numbers
    top = drv.importance_performance(
        df, imp, performance="top_box", importance_cut=0.35, performance_cut=0.5
    ).set_index("driver")
    np.testing.assert_allclose(top["performance"], (df >= 9).sum() / df.notna().sum())
    assert top.loc["att_a", "quadrant"] == "fix first"
    assert top.loc["att_b", "quadrant"] == "low priority"  # 0.3 < 0.35, top box < 0.5
    # a fitted DriverModel works as the importance input
    df["y"] = df[list(means)].fillna(6).to_numpy() @ np.array([1.0, 0.5, 0.3, 0.1]) + rng.normal(
        0, 1, n
    )
    model = DriverModel(n_boot=0).fit(df, "y", list(means))
    assert len(drv.importance_performance(df, model)) == 4


# ------------------------------------------------------------------------------------------
# what-if
# ------------------------------------------------------------------------------------------


def test_what_if_linear_change_is_coefficient_times_shift():
    df = correlated_data(300, 4, n=800)
    cols = [f"att_{i}" for i in range(4)]
    df["w"] = np.random.default_rng(1).uniform(0.5, 2, len(df))
    out = drv.what_if(
        df, "att_1", outcome="y", drivers=cols, shift=0.7, weight="w", scale=(-100, 100),
        promoter_min=None, detractor_max=None, n_boot=50,
    )  # fmt: skip
    fit = sm.WLS(df["y"], sm.add_constant(df[cols]), weights=df["w"]).fit()
    row = out.iloc[0]
    assert list(out["quantity"]) == ["mean_outcome"]
    assert row["coef"] == pytest.approx(fit.params["att_1"], rel=1e-10)
    assert row["change"] == pytest.approx(0.7 * fit.params["att_1"], rel=1e-10)
    assert row["mean_shift"] == pytest.approx(0.7)
    # nothing capped on this wide scale, but the best-rated move past the highest rating seen
    assert row["share_capped"] == 0 and row["extrapolation"]
    assert row["ci_low"] < row["change"] < row["ci_high"]
    assert row["baseline"] == pytest.approx(np.average(df["y"], weights=df["w"]))


def test_what_if_caps_at_the_scale_and_flags_extrapolation():
    rng = np.random.default_rng(2)
    n = 1500
    x = np.clip(np.round(7 + 1.5 * rng.normal(size=(n, 3)) + rng.normal(size=(n, 1))), 1, 10)
    y = np.clip(np.round(2 + x @ np.array([0.5, 0.2, 0.1]) + rng.normal(size=n)), 0, 10)
    df = pd.DataFrame(x, columns=["att_a", "att_b", "att_c"]).assign(nps=y)
    out = drv.what_if(df, ["att_a", "att_b"], shift=2, n_boot=0)
    a = out[out["driver"] == "att_a"].set_index("quantity")
    capped = (df["att_a"] + 2 > 10).mean()
    assert a["share_capped"].iloc[0] == pytest.approx(capped) and capped > 0.1
    assert a["extrapolation"].all()
    assert "capped at 10" in a["scenario"].iloc[0]
    mean_shift = (np.minimum(df["att_a"] + 2, 10) - df["att_a"]).mean()
    assert a.loc["mean_outcome", "mean_shift"] == pytest.approx(mean_shift)
    fit = sm.OLS(df["nps"], sm.add_constant(df[["att_a", "att_b", "att_c"]])).fit()
    assert a.loc["mean_outcome", "change"] == pytest.approx(fit.params["att_a"] * mean_shift)
    # promoters: a logistic model made for them, each respondent's change in probability
    logit = sm.Logit(
        (df["nps"] >= 9).astype(float), sm.add_constant(df[["att_a", "att_b", "att_c"]])
    ).fit(disp=0)
    moved = df.assign(att_a=np.minimum(df["att_a"] + 2, 10))
    ref = (
        logit.predict(sm.add_constant(moved[["att_a", "att_b", "att_c"]])) - logit.predict()
    ).mean()
    assert a.loc["promoter_share", "change"] == pytest.approx(ref, abs=1e-7)
    assert a.loc["promoter_share", "baseline"] == pytest.approx((df["nps"] >= 9).mean(), abs=1e-7)
    nps_change = 100 * (a.loc["promoter_share", "change"] - a.loc["detractor_share", "change"])
    assert a.loc["nps", "change"] == pytest.approx(nps_change)
    assert a.loc["detractor_share", "change"] < 0 < a.loc["nps", "change"]
    assert np.isnan(a["ci_low"]).all()


def test_what_if_moving_a_share_up_one_point():
    df = correlated_data(310, 3, n=600)
    df[["att_0", "att_1", "att_2"]] = np.clip(
        np.round(5 + 2 * df[["att_0", "att_1", "att_2"]]), 1, 10
    )
    cols = ["att_0", "att_1", "att_2"]
    out = drv.what_if(
        df, "att_0", outcome="y", drivers=cols, move_up=0.25, promoter_min=None,
        detractor_max=None, n_boot=30, cluster=None,
    )  # fmt: skip
    fit = sm.OLS(df["y"], sm.add_constant(df[cols])).fit()
    below = (df["att_0"] < 10).mean()
    row = out.iloc[0]
    assert row["mean_shift"] == pytest.approx(0.25 * below)
    assert row["change"] == pytest.approx(fit.params["att_0"] * 0.25 * below)
    assert not row["extrapolation"] and row["share_capped"] == 0
    assert "25% of those below 10" in row["scenario"]
    with pytest.raises(ValueError, match="not both"):
        drv.what_if(df, "att_0", outcome="y", drivers=cols, shift=1, move_up=0.1)
    with pytest.raises(ValueError, match="not among"):
        drv.what_if(df, "att_9", outcome="y", drivers=cols)


def test_what_if_cluster_bootstrap_intervals():
    df = clustered_data(seed=4, n_clusters=25, per=60)
    a = drv.what_if(df, "att_0", outcome="y", promoter_min=None, detractor_max=None,
                    scale=(-50, 50), n_boot=150, random_state=1)  # fmt: skip
    b = drv.what_if(df, "att_0", outcome="y", promoter_min=None, detractor_max=None,
                    scale=(-50, 50), n_boot=150, cluster="hotel", random_state=1)  # fmt: skip
    assert a["change"].iloc[0] == b["change"].iloc[0]
    width = lambda t: t["ci_high"].iloc[0] - t["ci_low"].iloc[0]  # noqa: E731
    assert width(b) > 1.5 * width(a)  # slopes vary by hotel
    assert "clusters ('hotel')" in b["note"].iloc[0]


# ------------------------------------------------------------------------------------------
# the sample engagement against its ground truth
# ------------------------------------------------------------------------------------------

SAMPLE_ATTS = [
    "att_checkin_speed",
    "att_cleanliness",
    "att_staff_friendliness",
    "att_room_comfort",
    "att_breakfast",
    "att_wifi",
    "att_value",
    "att_location",
    "att_booking_ease",
    "att_quietness",
]


def test_sample_engagement_segment_drivers_with_hotel_bootstrap(loaded, truth):
    """Check-in speed leads for business trips, cleanliness for leisure (the generator's
    DRIVER_WEIGHTS), each first in at least 90% of resamples of whole hotels, and the
    difference between the segments is marked for both."""
    survey = loaded.tables["cx_survey"]
    out = drv.compare_segments(
        survey, "nps", SAMPLE_ATTS, by="trip_purpose", weight="weight", cluster="unit_id",
        n_boot=300, random_state=11,
    )  # fmt: skip
    assert list(out.models) == ["business", "leisure"]
    for purpose, strongest in truth["strongest_driver"].items():
        tab = out.shares[out.shares["segment"] == purpose].set_index("driver")
        assert tab["rank"].idxmin() == f"att_{strongest}", (purpose, tab)
        assert tab.loc[f"att_{strongest}", "p_rank1"] >= 0.9
        assert out.models[purpose].n_clusters_ == survey["unit_id"].nunique()
    d = out.differences.set_index("driver")  # business - leisure
    assert d.loc["att_checkin_speed", "significant"] and d.loc["att_checkin_speed", "diff"] > 0
    assert d.loc["att_cleanliness", "significant"] and d.loc["att_cleanliness", "diff"] < 0
