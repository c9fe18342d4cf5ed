"""Benchmark :func:`rox_helpers.synthetic.generate_sample` at a large size.

Usage::

    .venv/bin/python benchmarks/bench_generate.py                 # 1M customers, 10M events
    .venv/bin/python benchmarks/bench_generate.py --customers 100000 --interactions 1000000 \
        --responses 20000 --out /tmp/rox_bench

Prints the wall time, the peak resident set size (``resource.getrusage``) and the size of
every file written. Without ``--out`` the files go to a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from rox_helpers.synthetic import SampleSize, generate_sample


def _peak_rss_mib() -> float:
    """Peak RSS of this process in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--interactions", type=int, default=10_000_000)
    p.add_argument("--responses", type=int, default=200_000)
    p.add_argument("--employees", type=int, default=SampleSize().n_employees)
    p.add_argument("--units", type=int, default=SampleSize().n_units)
    p.add_argument("--months", type=int, default=SampleSize().n_months)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--feedback", action="store_true")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: temp dir)")
    args = p.parse_args(argv)

    size = SampleSize(
        n_units=args.units,
        n_months=args.months,
        n_customers=args.customers,
        n_interactions=args.interactions,
        n_responses=args.responses,
        n_employees=args.employees,
    )
    with tempfile.TemporaryDirectory(prefix="rox_bench_") as tmp:
        out = args.out if args.out is not None else Path(tmp)
        t0 = time.perf_counter()
        truth = generate_sample(out, seed=args.seed, size=size, feedback=args.feedback)
        wall = time.perf_counter() - t0
        print(f"size        : {size}")
        print(f"wall time   : {wall:.1f} s")
        print(f"peak RSS    : {_peak_rss_mib():.0f} MiB")
        for name, n in sorted(truth["row_counts"].items()):
            mib = (out / name).stat().st_size / 1024**2
            print(f"  {name:<28} {n:>12,} rows {mib:>9.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
