"""The shortcuts that make a million-customer engagement fit the run's time and memory give
the same numbers as the plain computations they replace (or, where a subsample is used,
say so): cluster sums in the drivers' bootstraps, grouped what-ifs, the BG/NBD likelihood
and monthly stays on distinct values, blocked resamples, step 00's features reused, the
log moments' guest subsample."""

from __future__ import annotations

from types import SimpleNamespace

import ibis
import numpy as np
import pandas as pd
import pytest

from rox_helpers import drivers as drv
from rox_helpers import journey, segmentation, value
from rox_helpers.features import features_frame


def _ratings(seed: int = 0, n: int = 1200, hotels: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 11, size=(n, 4)).astype(float)
    y = np.clip(np.round(2 + 0.4 * x[:, 0] + 0.3 * x[:, 1] + rng.normal(0, 1.5, n)), 0, 10)
    df = pd.DataFrame(x, columns=[f"att_{i}" for i in range(4)]).assign(nps=y)
    df["hotel"] = rng.integers(0, hotels, n).astype(str)
    df["weight"] = rng.uniform(0.5, 2.0, n)
    df.loc[rng.random(n) < 0.05, "att_2"] = np.nan  # pairwise gaps
    return df


@pytest.mark.parametrize("pairwise", [True, False])
def test_cluster_sums_give_the_row_level_correlations(pairwise):
    df = _ratings()
    xy = df[["att_0", "att_1", "att_2", "att_3", "nps"]].to_numpy()
    if not pairwise:
        xy = xy[~np.isnan(xy).any(axis=1)]
    codes = np.random.default_rng(1).integers(0, 7, len(xy))
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(xy))
    m = drv._Moments(xy, w, pairwise)
    m.cluster_sums(w, codes, 7)
    for seed in range(5):
        counts = np.bincount(np.random.default_rng(seed).integers(0, 7, 7), minlength=7)
        a = m.corr_and_var(w * counts[codes])
        b = m.corr_and_var_clusters(counts)
        np.testing.assert_allclose(b[0], a[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b[1], a[1], rtol=1e-12)


def test_cluster_resampler_draws_the_same_resample_per_cluster():
    codes = np.repeat(np.arange(4), [3, 2, 4, 1])
    a = drv._resampler(np.random.default_rng(3), len(codes), codes, 4)
    b = drv._resampler(np.random.default_rng(3), len(codes), codes, 4)
    for _ in range(5):
        np.testing.assert_array_equal(a(), b.clusters()[codes])


def test_driver_model_and_what_ifs_match_the_plain_computation():
    df = _ratings()
    atts = [f"att_{i}" for i in range(4)]
    kw = {"weight": "weight", "cluster": "hotel"}
    m = drv.DriverModel(n_boot=60, random_state=4).fit(df, "nps", atts, **kw)
    # the same resamples, each correlation matrix computed over every respondent
    ref = drv.DriverModel(n_boot=60, random_state=4)
    ref._bootstrap = lambda x, y, w, method, rng, draw: drv.DriverModel._bootstrap(
        ref, x, y, w, method, rng, lambda: draw()
    )
    ref.fit(df, "nps", atts, **kw)
    pd.testing.assert_frame_equal(m.importances_, ref.importances_, rtol=1e-10)

    asks = [
        SimpleNamespace(driver="att_0", shift=None, move_up=0.2),
        SimpleNamespace(driver="att_1", shift=None, move_up=0.2),
        SimpleNamespace(driver="att_0", shift=1.0, move_up=None),
    ]
    common = {"outcome": "nps", "drivers": atts, "n_boot": 40, "random_state": 5, **kw}
    grouped = drv.what_ifs(df, asks, **common)
    one_by_one = pd.concat(
        [drv.what_if(df, a.driver, shift=a.shift, move_up=a.move_up, **common) for a in asks],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(grouped, one_by_one)
    assert drv.what_ifs(df, [], **common).empty


def test_what_if_cluster_bootstrap_matches_refits_on_every_row():
    df = _ratings(seed=6)
    atts = [f"att_{i}" for i in range(4)]
    kw = {"outcome": "nps", "drivers": atts, "weight": "weight", "n_boot": 30}
    got = drv.what_if(df, "att_0", shift=1.0, cluster="hotel", random_state=7, **kw)
    row = got[got["quantity"] == "mean_outcome"].iloc[0]
    # the same cluster resamples, each a weighted least-squares fit over every row
    cc = drv._Complete(df, "nps", atts, "weight", "hotel")
    draw = drv._resampler(np.random.default_rng(7), cc.n, cc.codes, cc.n_levels)
    design = np.column_stack([np.ones(cc.n), cc.x])
    shift = np.clip(cc.x[:, 0] + 1.0, 1, 10) - cc.x[:, 0]
    changes = []
    for _ in range(30):
        w = cc.w * draw()
        sw = np.sqrt(w)
        beta = np.linalg.lstsq(design * sw[:, None], cc.y * sw, rcond=None)[0]
        changes.append(beta[1] * (w @ shift) / w.sum())
    lo, hi = np.nanquantile(changes, [0.025, 0.975])
    assert row["ci_low"] == pytest.approx(lo, rel=1e-9)
    assert row["ci_high"] == pytest.approx(hi, rel=1e-9)


def _bgnbd_data(seed: int = 8, n: int = 3000):
    rng = np.random.default_rng(seed)
    T = rng.integers(30, 730, n) / value.DAYS_PER_MONTH
    x = rng.poisson(1.5, n).astype(float)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    t_x = np.round(t_x * value.DAYS_PER_MONTH) / value.DAYS_PER_MONTH
    return x, np.minimum(t_x, T), T


def test_bgnbd_likelihood_on_distinct_values_is_the_formula():
    x, t_x, T = _bgnbd_data()
    fast = value._BGNBDLoglik(x, t_x, T)
    for params in [(0.5, 3.0, 0.8, 2.5), (1.2, 10.0, 0.3, 4.0)]:
        np.testing.assert_allclose(fast(params), value.bgnbd_loglik(params, x, t_x, T), rtol=1e-13)


def test_monthly_stays_on_distinct_pairs_are_the_conditional_expectation():
    x, t_x, T = _bgnbd_data(seed=9, n=500)
    model = value.BetaGeoModel().fit(x, t_x, T)
    summ = pd.DataFrame({"x": x, "t_x": t_x, "T": T})
    t = np.arange(0, 25, dtype="float64")[None, :]
    cum = model.conditional_expected_transactions(t, x[:, None], t_x[:, None], T[:, None])
    np.testing.assert_allclose(value._monthly_stays(model, summ, 24), np.diff(cum, axis=1))


def test_feature_reuse_and_log_moment_subsample():
    rng = np.random.default_rng(10)
    n = 400
    rows = []
    for c in range(n):
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 60)))
        for _ in range(int(rng.integers(1, 4))):
            for k, (stage, tp) in enumerate(
                [("book", "web_booking"), ("check_in", "desk_checkin"), ("check_out", "checkout")]
            ):
                rows.append(
                    {
                        "customer_id": f"C-{c:05d}",
                        "timestamp": day + pd.Timedelta(days=3 * k, hours=int(rng.integers(8))),
                        "journey_stage": stage,
                        "touchpoint": tp,
                        "channel": "web" if stage == "book" else "front_desk",
                        "completed": bool(rng.random() > 0.05),
                        "revenue": float(rng.integers(0, 300)) if stage == "book" else 0.0,
                        "duration_min": float(rng.lognormal(1.5, 0.4)),
                        "unit_id": f"H{c % 3}",
                    }
                )
            day += pd.Timedelta(days=int(rng.integers(40, 200)))
    log = ibis.memtable(pd.DataFrame(rows))
    # step 00's table of the same log gives the same behavioural features
    pre = features_frame(log)
    pd.testing.assert_frame_equal(
        segmentation.behavioural_features(log, precomputed=pre),
        segmentation.behavioural_features(log),
    )
    # a table of other columns is not taken for them
    other = pre.drop(columns=["digital_share"])
    pd.testing.assert_frame_equal(
        segmentation.behavioural_features(log, precomputed=other),
        segmentation.behavioural_features(log),
    )
    stages = ["book", "check_in", "check_out"]
    full = journey.log_moment_frame(log, stages, horizon=3)
    assert full.attrs["sample_note"] == ""
    pd.testing.assert_frame_equal(
        full, journey.log_moment_frame(log, stages, horizon=3, max_customers=None)
    )
    sub = journey.log_moment_frame(log, stages, horizon=3, max_customers=100, seed=11)
    assert sub["customer_id"].nunique() <= 100 < full["customer_id"].nunique()
    assert "100 of the log's 400 guests" in sub.attrs["sample_note"]
    again = journey.log_moment_frame(log, stages, horizon=3, max_customers=100, seed=11)
    pd.testing.assert_frame_equal(sub, again)  # seeded
    # each sampled guest keeps every contact of the full frame
    keep = full[full["customer_id"].isin(set(sub["customer_id"]))]
    assert len(keep) == len(sub)
    eff = journey.log_moment_effects(sub, horizon=3, min_base=5)
    assert eff["note"].str.contains("subsample").all()
    assert eff.attrs["sample_note"] == sub.attrs["sample_note"]


def test_detect_language_scores_each_distinct_comment_once_with_the_same_result():
    texts = pd.Series(
        ["The room was very clean", None, "la chambre était sale", "OK!", "The room was very clean"]
    )
    got = journey.detect_language(texts)
    assert got.tolist() == ["en", "", "fr", "", "en"]
    assert str(got.dtype) == "str"


def test_blocked_clv_bootstrap_draws_the_same_resamples():
    rng = np.random.default_rng(12)
    v = rng.gamma(2.0, 100.0, 5000)
    a = np.random.default_rng(13).integers(0, len(v), size=(500, len(v)))
    ref = v[a].mean(axis=1)
    r = np.random.default_rng(13)
    step = 37
    got = np.concatenate(
        [
            v[r.integers(0, len(v), size=(min(step, 500 - lo), len(v)))].mean(axis=1)
            for lo in range(0, 500, step)
        ]
    )
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("in_engine", [True, False])
@pytest.mark.parametrize("kind", ["text", "float"])
def test_log_ids_tokenised_once_per_raw_value_equal_the_per_row_normalisation(
    kind, in_engine, monkeypatch
):
    """Step 00 hashes the client's distinct raw ids and joins the tokens on the raw column;
    the plain computation normalises every row's id first and joins on that."""
    from rox_helpers import engines, interactions, privacy

    key = privacy.PseudonymKey.from_bytes(b"0123456789abcdef-scale-paths-test")
    if kind == "text":
        raw = ["C1", "123", "123.0", " 123 ", "42.0", "  padded ", "padded", "o'brien", "",
               "   ", None, "Renée", "Rene\u0301e", "ÅSA-7", "C1", "x" * 80]  # fmt: skip
    else:
        raw = [1.0, 2.0, 2.0, None, 123.0, 7.5, 1.0]
    if not in_engine:  # a backend without the hash functions: tokens made in Python
        monkeypatch.setattr(engines, "hmac_token", lambda *a, **k: None)
    con = ibis.duckdb.connect()
    log = con.create_table("log", pd.DataFrame({"gid": raw, "row": range(len(raw))}))
    id_map = interactions._raw_id_map(con, log.gid, key, "duckdb")
    j = log.left_join(id_map, log.gid == id_map._src_key)
    got = j.select("row", "_pid").to_pandas().sort_values("row", ignore_index=True)

    norm = log.select("row", customer_id=interactions._id(log.gid, "duckdb"))
    ref_map = interactions._pseudonymised_ids(norm, key, "duckdb")
    r = norm.left_join(ref_map, norm.customer_id == ref_map._raw_id)
    want = r.select("row", "_pid").to_pandas().sort_values("row", ignore_index=True)
    pd.testing.assert_frame_equal(got, want)
    # blanks and missing ids have no token; the spellings of one id share one
    assert got["_pid"].isna().sum() == (3 if kind == "text" else 1)
    same = [1, 2, 3] if kind == "text" else [1, 2]
    assert got["_pid"].iloc[same].nunique() == 1


def _plain_adoption_arrays(customers, activity, survey, months):
    """The adoption panel's arrays as first written: np.add.at into zeros, and the active
    shares broadcast over customers x months at once."""
    from rox_helpers import actions

    T = len(months)
    ids = pd.Index(customers["customer_id"].astype(object))
    ri = ids.get_indexer(activity["customer_id"].astype(object))
    mi = actions._month_number(activity["month"]) - actions._month_number(months[:1])[0]
    ok = (ri >= 0) & (mi >= 0) & (mi < T)
    out = {}
    for k in ("stays", "revenue"):
        a = np.zeros((len(ids), T))
        np.add.at(a, (ri[ok], mi[ok]), activity[k].to_numpy(float)[ok])
        out[k] = a
    starts = months.to_timestamp().to_numpy()
    ends = (months + 1).to_timestamp().to_numpy()
    days = (ends - starts) / np.timedelta64(1, "D")
    su = pd.to_datetime(customers["signup_date"]).fillna(pd.Timestamp(starts[0])).to_numpy()
    lo = np.maximum(su[:, None], starts[None, :])
    out["active"] = np.clip((ends[None, :] - lo) / np.timedelta64(1, "D") / days[None, :], 0, 1)
    s = survey.dropna(subset=["customer_id", "date", "nps"])
    sri = ids.get_indexer(s["customer_id"].astype(object))
    smi = actions._month_number(pd.to_datetime(s["date"])) - actions._month_number(months[:1])[0]
    ok = (sri >= 0) & (smi >= 0) & (smi < T)
    out["nps_sum"], out["nps_n"] = np.zeros((len(ids), T)), np.zeros((len(ids), T))
    np.add.at(out["nps_sum"], (sri[ok], smi[ok]), s["nps"].to_numpy(float)[ok])
    np.add.at(out["nps_n"], (sri[ok], smi[ok]), 1.0)
    return out


def _adoption_inputs(seed: int = 14, n: int = 600):
    rng = np.random.default_rng(seed)
    ids = [f"C{i}" for i in range(n)]
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": pd.Timestamp("2024-03-01")
            + pd.to_timedelta(rng.integers(0, 500, n), unit="D"),
            "region": rng.choice(["N", "S", "E"], n),
            "is_community_member": rng.random(n) < 0.3,
        }
    )
    customers.loc[rng.random(n) < 0.05, "signup_date"] = pd.NaT
    join = customers["signup_date"].fillna(pd.Timestamp("2024-03-01")) + pd.to_timedelta(
        rng.integers(0, 400, n), unit="D"
    )
    customers["community_join_date"] = join.where(customers["is_community_member"])
    m = 4 * n
    activity = pd.DataFrame(
        {
            "customer_id": rng.choice([*ids, "stranger"], m),
            "month": pd.PeriodIndex(
                pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 760, m), unit="D"),
                freq="M",
            ),
            "stays": rng.poisson(0.4, m),
            "revenue": rng.gamma(2.0, 77.7, m) * (rng.random(m) < 0.5),
        }
    )
    activity = activity.groupby(["customer_id", "month"], as_index=False).sum()
    for k in ("interactions", "digital"):
        activity[k] = rng.poisson(2.0, len(activity))
    activity.attrs.update(first=pd.Timestamp("2024-01-01"), last=pd.Timestamp("2026-01-31 23:00"))
    survey = pd.DataFrame(
        {
            "customer_id": rng.choice(ids, n // 2),
            "date": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 760, n // 2), unit="D"),
            "nps": rng.integers(0, 11, n // 2).astype(float),
        }
    )
    return customers, activity, survey


def test_adoption_panel_equals_add_at_and_broadcast():
    from rox_helpers import actions

    customers, activity, survey = _adoption_inputs()
    panel = actions.adoption_panel(customers, activity, survey)
    want = _plain_adoption_arrays(customers, activity, survey, panel.months)
    for k, a in want.items():
        np.testing.assert_array_equal(getattr(panel, k), a, err_msg=k)
    # np.bincount adds repeated cells in turn, as np.add.at does
    cell = np.array([3, 1, 3, 3, 0, 5])
    v = np.array([0.1, 2.0, 0.2, 0.3, -0.0, 1e-17])
    ref = np.zeros(6)
    np.add.at(ref, cell, v)
    np.testing.assert_array_equal(actions._cell_sums(cell, v, 2, 3).ravel(), ref)


def test_adoption_design_shortcuts_equal_the_plain_running_sums():
    from rox_helpers import actions

    customers, activity, survey = _adoption_inputs(seed=15)
    panel = actions.adoption_panel(customers, activity, survey)
    rows = np.array([5, 2, 2, 400, 7])
    for name in ("stays", "revenue", "any_stay", "active"):
        full = actions.AdoptionPanel.cumsum(panel, name)
        np.testing.assert_array_equal(panel.cumsum(name, rows), full[rows])
    # months first: the same running sums, added in the same order
    rng = np.random.default_rng(16)
    active = rng.uniform(0, 1, (50, panel.active.shape[1]))
    season = rng.uniform(0.5, 1.5, active.shape[1])
    T = active.shape[1]
    first = rng.integers(0, 6, 50)
    k = rng.integers(8, T - 1, 50)
    mid = first + (k - first) // 2
    a = actions._adjusted(active, season, first, mid, k)
    b = actions._adjusted(np.ascontiguousarray(active.T), season, first, mid, k, months_first=True)
    for w in a:
        np.testing.assert_array_equal(a[w], b[w])
    # the shared running sums of one estimate give each design the numbers of its own
    treated, k_all, valid = actions._index_months(
        panel, "is_community_member", "community_join_date"
    )
    base = np.flatnonzero(valid)
    kw = {
        "min_pre_months": 3,
        "min_post_months": 2,
        "control_draws": 3,
        "static": actions._static_dummies(panel.customers, ["region"]),
    }
    t_all, c_all = base[treated[base]], base[~treated[base]]
    ok = actions._eligible(k_all[t_all], panel.first_active[t_all], T, 3, 2)
    sums = actions._RowSums(panel, np.union1d(t_all[ok], c_all), c_all)
    for j in range(3):
        plain = actions._design(panel, base, treated, k_all, None, np.random.default_rng(j), **kw)
        fast = actions._design(
            panel, base, treated, k_all, None, np.random.default_rng(j), sums=sums, **kw
        )
        assert plain.treated.sum() > 20 and (~plain.treated).sum() > 100
        np.testing.assert_array_equal(fast.rows, plain.rows)
        pd.testing.assert_frame_equal(fast.X, plain.X, check_exact=True)
        for o in plain.values:
            for w in ("base", "post"):
                np.testing.assert_array_equal(fast.values[o][w], plain.values[o][w])
        season = actions._season(panel, c_all, rng.exponential(size=len(c_all)))
        r1, r2 = plain.reseason(panel, season), fast.reseason(panel, season)
        np.testing.assert_array_equal(r1.matrix(), r2.matrix())
        for o in ("stays", "revenue"):
            np.testing.assert_array_equal(r1.values[o]["post"], r2.values[o]["post"])
    np.testing.assert_array_equal(
        actions._season_of(*sums.controls(), np.arange(len(c_all)) % 3 + 0.5),
        actions._season(panel, c_all, np.arange(len(c_all)) % 3 + 0.5),
    )


def test_shared_ids_of_two_runs_equal_the_set_intersection(tmp_path):
    from rox_helpers import rundiff

    cases = {
        "text": (["a", "b", None, "c", "b"], ["b", "c", "d", None]),
        "int": ([1, 2, 3, 3], [3, 4, 1]),
        "mixed": ([1, 2, 3], ["1", "3", "x"]),
        "category": (
            pd.Categorical(["u1", "u2", "u2", None]),
            pd.Categorical(["u2", "u3", "u1"]),
        ),
        "float": ([1.0, np.nan, 2.5], [2.5, np.nan, 7.0]),
    }
    for name, (a, b) in cases.items():
        runs = []
        for i, values in enumerate((a, b)):
            run = tmp_path / f"{name}{i}"
            (run / "artifacts" / "tables").mkdir(parents=True)
            pd.DataFrame({"customer_id": values}).to_parquet(
                run / "artifacts" / "tables" / "customers.parquet"
            )
            runs.append(run)
        sets = [
            set(pd.read_parquet(r / "artifacts/tables/customers.parquet")["customer_id"]
                .dropna().astype(str))
            for r in runs
        ]  # fmt: skip
        ia, ib = (rundiff._ids(r, "customers") for r in runs)
        assert rundiff._n_shared(ia, ib) == len(sets[0] & sets[1]), name
