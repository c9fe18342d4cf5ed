"""Benchmark :mod:`rox_helpers.segmentation`: recovery across generator seeds, and scale.

Usage::

    .venv/bin/python benchmarks/bench_segmentation.py               # both parts
    .venv/bin/python benchmarks/bench_segmentation.py --part recovery --seeds 20
    .venv/bin/python benchmarks/bench_segmentation.py --part scale --customers 1000000

Part (a), recovery: for each of ``--seeds`` generator seeds, a small engagement is generated
(:func:`rox_helpers.synthetic.generate_sample`), loaded like a client's (pseudonymised,
validated), its customers segmented with the default :class:`BehaviouralSegmenter`, and the
segments compared with the generator's true behavioural groups (``customer_segments.parquet``).
Prints per seed the chosen k, the adjusted Rand index (ARI) with the truth, the ARI of a
supervised classifier on the same features (cross-validated: a ceiling no unsupervised method
can be expected to beat), and the share of seeds with the true k chosen and ARI >= 0.8.

Part (b), scale: a feature matrix of ``--customers`` customers drawn from the generator's
segment model (:func:`simulate_features`: the segments' frequency, spend, trip purpose and
channel mix of :data:`rox_helpers.synthetic.SEGMENTS`, trip by trip) is segmented end to end
(preprocessing, choice of k in 2..8, stability, final MiniBatchKMeans); prints wall time and
peak memory. Target: 1 million customers in under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from rox_helpers.synthetic import SEGMENTS

REPO = Path(__file__).resolve().parent.parent


def _peak_rss_mib() -> float:
    """Peak RSS of this process in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


# --------------------------------------------------------------------------------------
# A feature matrix from the generator's segment model
# --------------------------------------------------------------------------------------


def simulate_features(
    n_customers: int,
    *,
    mean_trips: float = 1.6,
    months: float = 24.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Behavioural features of customers drawn from the generator's segment model.

    Follows :mod:`rox_helpers.synthetic` trip by trip, without hotels, surveys or staff:
    a customer's segment (``SEGMENTS`` shares), monthly trip rate (segment base rate x
    log-normal, SD 0.7 on the log scale), spend multiplier (x log-normal, SD 0.2) and app
    adoption; per trip the purpose (segment business share), booking channel (segment channel
    mix; app only for app users), lead time (exponential, 7 days business / 35 leisure, times
    the segment's lead factor), nights (1 + Poisson 0.7 / 1.8 times its nights factor), price per night (EUR 100 x spend x 1.1 for business x
    log-normal noise) and the journey's digital contacts (booking channel, pre-arrival,
    mobile check-in and check-out for app users, review). ``mean_trips`` scales every rate so
    that the average customer makes that many trips (the sample engagement: about 1.6 per
    customer with interactions); customers without a trip are dropped, as they have no
    interactions.

    Parameters
    ----------
    n_customers : int
        Customers drawn (before dropping those without a trip).
    mean_trips : float, default=1.6
        Average trips per customer over ``months``.
    months : float, default=24.0
        Months observed.
    seed : int, default=0

    Returns
    -------
    features : pandas.DataFrame
        Columns as :func:`rox_helpers.segmentation.behavioural_features` names them:
        ``visit_rate``, ``spend_per_night``, ``booking_lead_days``, ``nights_per_stay``,
        ``book_share_<web|app|phone|front_desk>``, ``digital_share``, ``app_user``.
    segment : ndarray of int
        True segment (index into ``SEGMENTS``) of each row.
    """
    rng = np.random.default_rng(seed)
    p = np.array([s.share for s in SEGMENTS])
    seg = rng.choice(len(SEGMENTS), n_customers, p=p / p.sum())
    base = np.array([s.base_rate for s in SEGMENTS])[seg] * np.exp(
        rng.normal(-0.5 * 0.7**2, 0.7, n_customers)
    )
    base *= mean_trips / (months * base.mean())
    spend = np.array([s.spend for s in SEGMENTS])[seg] * np.exp(rng.normal(0, 0.2, n_customers))
    z = (np.log(base) - np.log(base).mean()) / np.log(base).std()
    app_logit = np.array([s.app_logit for s in SEGMENTS])[seg]
    app = rng.random(n_customers) < 1 / (1 + np.exp(-(app_logit + 0.6 * z)))
    trips = rng.poisson(base * months)
    keep = trips > 0
    seg, spend, app, trips = seg[keep], spend[keep], app[keep], trips[keep]
    n = len(seg)
    cust = np.repeat(np.arange(n), trips)
    m = len(cust)
    bshare = np.array([s.business_share for s in SEGMENTS])[seg]
    business = rng.random(m) < bshare[cust]
    mix = np.cumsum(np.array([s.channel_mix for s in SEGMENTS]), 1)
    mix /= mix[:, -1:]
    chan = np.minimum((rng.random(m)[:, None] > mix[seg[cust]]).sum(1), 3)
    chan = np.where((chan == 1) & ~app[cust], 0, chan)  # app bookings need the app
    lead_f = np.array([s.lead_factor for s in SEGMENTS])[seg[cust]]
    nights_f = np.array([s.nights_factor for s in SEGMENTS])[seg[cust]]
    lead = rng.exponential(np.where(business, 7.0, 35.0) * lead_f)
    nights = 1 + rng.poisson(np.where(business, 0.7, 1.8) * nights_f)
    price = 100.0 * spend[cust] * np.where(business, 1.1, 1.0) * np.exp(rng.normal(0, 0.15, m))
    mobile = app[cust] & (rng.random(m) < np.where(business, 0.8, 0.6))
    n_disc = 1 + rng.poisson(0.6, m)
    digital_rows = (chan <= 1) * (n_disc + 1) + 1 + 2 * mobile + (rng.random(m) < 0.6)
    rows = n_disc + 1 + 1 + 3 + rng.poisson(0.5 * nights, m) + 1

    def per_customer(v: np.ndarray) -> np.ndarray:
        return np.bincount(cust, weights=v, minlength=n)

    out = pd.DataFrame(
        {
            "visit_rate": trips / months,
            "spend_per_night": per_customer(price) / trips,
            "booking_lead_days": per_customer(lead) / trips,
            "nights_per_stay": per_customer(nights) / trips,
            "digital_share": per_customer(digital_rows) / per_customer(rows),
            "app_user": app.astype("float64"),
        }
    )
    for j, name in enumerate(("web", "app", "phone", "front_desk")):
        out[f"book_share_{name}"] = per_customer(chan == j) / trips
    out.index = pd.Index([f"S{i:08d}" for i in range(n)], name="customer_id", dtype="str")
    return out, seg


# --------------------------------------------------------------------------------------
# (a) recovery across generator seeds
# --------------------------------------------------------------------------------------


def recovery_one(seed: int, size, work: Path) -> dict:
    """Generate, load and segment one engagement; compare with the true groups."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import cross_val_predict
    from threadpoolctl import threadpool_limits

    from rox_helpers.data import load_engagement
    from rox_helpers.privacy import load_or_create_key, pseudonymise
    from rox_helpers.segmentation import (
        BehaviouralSegmenter,
        behavioural_features,
        observed_enough,
    )
    from rox_helpers.synthetic import generate_sample

    root = work / f"seed{seed}"
    root.mkdir(parents=True)
    shutil.copy(REPO / "engagements" / "sample" / "engagement.yml", root / "engagement.yml")
    generate_sample(root / "data", seed=seed, size=size)
    data = load_engagement(root)
    X = behavioural_features(data.interactions, customers=data.tables["customers"])
    X = X.loc[observed_enough(X)]
    seg_file = pd.read_parquet(root / "data" / "customer_segments.parquet")
    ids = pseudonymise(seg_file["guest_id"].astype("str"), load_or_create_key(root), prefix="C-")
    truth = pd.Series(seg_file["true_segment"].to_numpy(), index=ids.astype("str").to_numpy())
    truth = truth.reindex(X.index)
    known = truth.notna().to_numpy()
    t0 = time.perf_counter()
    seg = BehaviouralSegmenter(random_state=seed).fit(X)
    fit_s = time.perf_counter() - t0
    four = BehaviouralSegmenter(n_clusters=4, random_state=seed, n_bootstrap=0).fit(X)
    clf = HistGradientBoostingClassifier(max_iter=60, random_state=0)
    with threadpool_limits(limits=1):
        pred = cross_val_predict(clf, X.loc[known, seg.features_], truth[known], cv=3)
    shutil.rmtree(root, ignore_errors=True)
    return {
        "seed": seed,
        "customers": len(X),
        "k": int(seg.n_clusters_),
        "ari": adjusted_rand_score(truth[known], seg.labels_[known]),
        "ari_k4": adjusted_rand_score(truth[known], four.labels_[known]),
        "ceiling": adjusted_rand_score(truth[known], pred),
        "stability": seg.stability_["ari"],
        "fit_s": fit_s,
    }


def recovery_simulated(seeds: list[int], n: int, mean_trips: float) -> pd.DataFrame:
    """The same check on feature matrices drawn from the segment model."""
    from sklearn.metrics import adjusted_rand_score

    from rox_helpers.segmentation import BehaviouralSegmenter

    rows = []
    for seed in seeds:
        X, truth = simulate_features(n, mean_trips=mean_trips, seed=seed)
        seg = BehaviouralSegmenter(random_state=seed).fit(X)
        rows.append(
            {
                "seed": seed,
                "k": seg.n_clusters_,
                "ari": adjusted_rand_score(truth, seg.labels_),
                "stability": seg.stability_["ari"],
            }
        )
    return pd.DataFrame(rows)


def _share(df: pd.DataFrame) -> str:
    ok = (df["k"] == 4) & (df["ari"] >= 0.8)
    return f"{int(ok.sum())}/{len(df)} = {ok.mean():.0%}"


def run_recovery(n_seeds: int, customers: int, interactions: int, first_seed: int) -> None:
    from rox_helpers.synthetic import SampleSize

    size = SampleSize(
        n_units=8,
        n_months=24,
        n_customers=customers,
        n_interactions=interactions,
        n_responses=1_000,
        n_employees=400,
    )
    # one pseudonym key for every run: the same customer ids, so the same figures each time
    # (the ids order the customers, and the order decides the seeded subsamples)
    os.environ.setdefault("ROX_PSEUDONYM_KEY", "bench-segmentation-key-2026")
    print(
        f"(a) recovery on {n_seeds} generator seeds: {customers:,} customers, "
        f"{interactions:,} interactions, 24 months (the sample's density)"
    )
    work = Path(tempfile.mkdtemp(prefix="rox_bench_seg_"))
    rows = []
    try:
        for seed in range(first_seed, first_seed + n_seeds):
            r = recovery_one(seed, size, work)
            rows.append(r)
            print(
                f"  seed {seed:>4}: {r['customers']:>5} customers with interactions, "
                f"k={r['k']}, ARI {r['ari']:.3f} (k=4: {r['ari_k4']:.3f}; supervised ceiling "
                f"{r['ceiling']:.3f}), stability {r['stability']:.3f}, fit {r['fit_s']:.1f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    df = pd.DataFrame(rows)
    print(f"  true k (4) chosen and ARI >= 0.8: {_share(df)}")
    print(
        f"  true k chosen: {(df['k'] == 4).mean():.0%}; k chosen: "
        f"{df['k'].value_counts().sort_index().to_dict()}"
    )
    print(
        f"  ARI median {df['ari'].median():.3f} (range {df['ari'].min():.3f}-"
        f"{df['ari'].max():.3f}); with k=4 fixed {df['ari_k4'].median():.3f}; supervised "
        f"ceiling median {df['ceiling'].median():.3f} (max {df['ceiling'].max():.3f})"
    )
    seeds = list(range(first_seed, first_seed + n_seeds))
    for mt in (1.6, 60.0):
        sim = recovery_simulated(seeds, 4000, mt)
        print(
            f"  segment model, {mt:g} trips per customer on average: true k and ARI >= 0.8 on "
            f"{_share(sim)}; ARI median {sim['ari'].median():.3f}; k chosen "
            f"{sim['k'].value_counts().sort_index().to_dict()}",
            flush=True,
        )


# --------------------------------------------------------------------------------------
# (b) scale
# --------------------------------------------------------------------------------------


def run_scale(customers: int, seed: int) -> None:
    from sklearn.metrics import adjusted_rand_score

    from rox_helpers.segmentation import BehaviouralSegmenter

    # draw a few more (customers without a trip drop out), keep exactly `customers`
    X, truth = simulate_features(int(customers * 1.1) + 100, mean_trips=12.0, seed=seed)
    X, truth = X.iloc[:customers].copy(), truth[:customers]
    mib = X.memory_usage(deep=True).sum() / 1024**2
    t0 = time.perf_counter()
    seg = BehaviouralSegmenter(random_state=seed).fit(X)
    fit_s = time.perf_counter() - t0
    # memory in a second fit (tracing allocations slows it down)
    tracemalloc.start()
    BehaviouralSegmenter(random_state=seed).fit(X)
    fit_peak = tracemalloc.get_traced_memory()[1] / 1024**2
    tracemalloc.stop()
    t1 = time.perf_counter()
    labels = seg.predict(X)
    pred_s = time.perf_counter() - t1
    print(
        f"(b) scale: {len(X):,} customers x {len(seg.features_)} features, {mib:,.0f} MiB "
        f"(segment model, 12 trips per customer on average)"
    )
    print(
        f"  fit {fit_s:.1f} s (k in 2..8 chosen on a {seg.selection_sample:,}-customer "
        f"subsample with {seg.n_bootstrap} bootstrap resamples per k; final "
        f"{type(seg.model_).__name__} on all customers), predict {pred_s:.1f} s"
    )
    print(
        f"  memory: peak allocated during fit {fit_peak:,.0f} MiB (tracemalloc); peak RSS of "
        f"the process {_peak_rss_mib():,.0f} MiB (includes drawing the data)"
    )
    print(
        f"  k={seg.n_clusters_} ({seg.k_rule_}); ARI with the true groups "
        f"{adjusted_rand_score(truth, seg.labels_):.3f}; predict = fit labels: "
        f"{bool((labels == seg.labels_).all())}"
    )
    print(f"  target: under 60 s -> {'met' if fit_s < 60 else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns
    -------
    int
        Process exit code.
    """
    warnings.filterwarnings("ignore", category=FutureWarning)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["recovery", "scale", "both"], default="both")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--seed-customers", type=int, default=3_000)
    p.add_argument("--seed-interactions", type=int, default=30_000)
    p.add_argument("--customers", type=int, default=1_000_000)
    args = p.parse_args(argv)
    if args.part in ("recovery", "both"):
        run_recovery(args.seeds, args.seed_customers, args.seed_interactions, args.first_seed)
    if args.part in ("scale", "both"):
        run_scale(args.customers, seed=args.first_seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
