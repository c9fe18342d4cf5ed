"""Benchmark: interaction log -> customer features (target: 10M rows in < 60 s, < 4 GiB peak).

Generates a scaled copy of the sample engagement (in a subprocess, so its memory is not
counted), then in this process loads every table (mapping, privacy, validation, quarantine)
and computes the behavioural features with DuckDB through Ibis. Prints wall times and the
peak resident memory of this process.

    .venv/bin/python benchmarks/bench_ingest.py                      # 1M customers, 10M interactions
    .venv/bin/python benchmarks/bench_ingest.py --interactions 2e6 --customers 2e5
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=float, default=1e6)
    ap.add_argument("--interactions", type=float, default=1e7)
    ap.add_argument("--responses", type=float, default=2e5)
    ap.add_argument("--dir", type=Path, default=None, help="reuse/keep the generated engagement")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="rox-bench-")) / "bench"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "engagements" / "sample" / "engagement.yml", root / "engagement.yml")
    if not (root / "data" / "interactions.parquet").is_file():
        code = (
            "from rox_helpers.synthetic import SampleSize, generate_sample; "
            f"generate_sample({str(root / 'data')!r}, seed=7, size=SampleSize("
            f"n_customers={int(args.customers)}, n_interactions={int(args.interactions)}, "
            f"n_responses={int(args.responses)}))"
        )
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        print(f"generated data in {time.perf_counter() - t0:.1f} s (not part of the target)")
    os.environ.setdefault("ROX_KEY_DIR", str(root.parent / "keys"))

    from rox_helpers.data import load_engagement
    from rox_helpers.features import features_frame

    t0 = time.perf_counter()
    data = load_engagement(root)
    t_load = time.perf_counter() - t0
    rep = data.reports["interactions"]
    t1 = time.perf_counter()
    feats = features_frame(data.interactions, customers=data.tables.get("customers"))
    t_feat = time.perf_counter() - t1
    total = time.perf_counter() - t0
    print(f"interaction rows read:      {rep.rows_read:,}")
    print(f"  quarantined / no consent: {rep.rows_quarantined:,} / {rep.rows_excluded_consent:,}")
    print(f"customers with features:    {len(feats):,} ({feats.shape[1]} columns)")
    print(f"load + validate all tables: {t_load:.1f} s")
    for name, r in data.reports.items():
        print(f"  {name:<13} {r.rows_read:>11,} rows  {r.seconds:6.1f} s")
    print(f"customer features:          {t_feat:.1f} s")
    print(
        f"interactions -> features:   {rep.seconds + t_feat:.1f} s   (the log's load, checks, "
        "pseudonymisation and aggregation)"
    )
    print(f"TOTAL wall:                 {total:.1f} s   (target < 60 s, every table included)")
    print(f"peak RSS:                   {peak_rss_gib():.2f} GiB (target < 4 GiB)")
    print(f"cores:                      {os.cpu_count()}")
    if args.dir is None:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
