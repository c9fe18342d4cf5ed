"""The shared small statistics (:mod:`rox_helpers.stats`)."""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control, norm

from rox_helpers.stats import bh_qvalues, wilson_interval


def test_bh_matches_scipy_and_leaves_nan_out():
    p = np.array([0.001, np.nan, 0.04, 0.03, 0.5])
    q = bh_qvalues(p)
    assert np.isnan(q[1])
    ok = ~np.isnan(p)
    np.testing.assert_allclose(q[ok], false_discovery_control(p[ok], method="bh"))


def test_wilson_closed_forms():
    z = norm.ppf(0.975)
    lo, hi = wilson_interval([0, 10, 3], [10, 10, 0])
    assert lo[0] == 0 and np.isclose(hi[0], z * z / (10 + z * z))  # no successes: upper z^2/(n+z^2)
    assert np.isclose(hi[1], 1) and np.isclose(lo[1], 10 / (10 + z * z))
    assert np.isnan(lo[2]) and np.isnan(hi[2])  # no base
