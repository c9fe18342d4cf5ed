"""Community and app effects (step 06): time, and what the bootstrap leaves out.

Usage::

    .venv/bin/python benchmarks/bench_actions.py            # on the sample engagement
    .venv/bin/python benchmarks/bench_actions.py --draws 20

Prints, for each programme on the sample engagement:

* the wall and CPU seconds of :func:`rox_helpers.actions.adoption_effects` (200 replicates);
* the spread of the point estimate over ``--draws`` different draws of the non-joiners'
  index months (seeds), beside the bootstrap's standard error. The bootstrap's replicates
  rotate over ``index_draws`` (10) such draws, built once, so the interval carries this
  spread; the figure shows how much of it there is.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "engagements" / "sample"
PROGRAMMES = [
    ("community", "is_community_member", "community_join_date", ("app_user", "app_install_date")),
    ("app", "app_user", "app_install_date", ("is_community_member", "community_join_date")),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=10, help="draws of index months (seeds)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    import sklearn  # noqa: F401  (imported before timing)

    from rox_helpers import actions, artifacts
    from rox_helpers.config import load_engagement_config
    from rox_helpers.data import load_engagement
    from rox_helpers.sample import ensure_sample_data

    ensure_sample_data(SAMPLE)
    cfg = load_engagement_config(SAMPLE)
    run_dir = artifacts.new_run_dir(SAMPLE, label="bench-actions")
    artifacts.persist_engagement_data(run_dir, load_engagement(SAMPLE))
    customers = artifacts.load_table(run_dir, "customers")
    activity = actions.monthly_activity(
        artifacts.open_interactions(run_dir), digital_channels=cfg.journey.digital_channels
    )
    panel = actions.adoption_panel(customers, activity, artifacts.load_table(run_dir, "cx_survey"))
    opt = cfg.actions
    print(f"sample: {panel.n:,} customers x {len(panel.months)} months")
    for name, flag, date, other in PROGRAMMES:
        kw = {
            "treatment": name,
            "flag": flag,
            "date": date,
            "other": other,
            "static_covariates": opt.static_covariates,
            "min_pre_months": opt.min_pre_months,
            "min_post_months": opt.min_post_months,
            "trim": opt.trim,
        }
        c0, w0 = time.process_time(), time.perf_counter()
        res = actions.adoption_effects(panel, n_boot=opt.n_boot, seed=cfg.seed, **kw)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        h = res.headline()
        draws = res.draws["stays"]
        ratio = draws[:, 2] / (draws[:, 2] - draws[:, 0])
        se_boot = float(np.std(np.log(ratio[ratio > 0]), ddof=1))
        est = []
        for s in range(args.draws):
            r = actions.adoption_effects(panel, n_boot=0, seed=cfg.seed + 1 + s, **kw)
            est.append(r.headline()["estimate"])
        sd_draw = float(np.std(np.log(est), ddof=1))
        print(
            f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU for {opt.n_boot} replicates; "
            f"ratio {h['estimate']:.3f} [{h['ci_low']:.3f}, {h['ci_high']:.3f}]"
        )
        print(
            f"    log-ratio SE: bootstrap {se_boot:.4f}; spread over {args.draws} draws of "
            f"index months {sd_draw:.4f} ({sd_draw / se_boot:.0%} of the bootstrap SE; "
            f"in variance {sd_draw**2 / se_boot**2:.1%})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
