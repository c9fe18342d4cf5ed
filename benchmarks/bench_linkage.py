"""Benchmark: coverage and bias of the ROX linkage model on simulated panels with known effects.

Target (issue 6): over at least 100 simulated panels the 95% intervals cover the true
effects 90-98% of the time and the bias is under 10% of the effect (scenario ``a``).

The simulator is a small linear panel SEM, seeded per replicate. Units x quarters, each
measure with a unit fixed effect and a period shock; pride follows a persistent AR(1)
within each unit; every equation has its own AR(1) disturbance (so the cluster bootstrap
over units has serial correlation to handle). The chain, with known direct effects::

    pride -> greeting          same quarter   (employees measure on employees measure)
    pride -> service           same quarter   (guest survey attribute on pride)
    greeting -> service        same quarter
    service -> occupancy       one quarter later (administrative result)

Pride and greeting are employee-survey means of ``n`` people per cell, service a guest-survey
mean of ``n`` answers per cell: each cell mean is the true unit-quarter value plus the mean of
``n`` individual answers' noise (variance sigma^2 / n, bases vary between cells, so the
regression's weighting by the child's base matters); occupancy is a unit-table measure with
no sampling noise. The panel is handed to :func:`rox_helpers.linkage.fit_linkage` as a
:class:`~rox_helpers.linkage.Panel` built here (cells, measure table, reliability computed by
:func:`~rox_helpers.linkage.reliability` from the simulated answers).

Scenarios: ``a`` well measured, 40 units (pairs cluster bootstrap; the targets apply);
``b`` 20 units (below ``WILD_BELOW``: wild cluster bootstrap); ``c`` the guest survey with
small bases (service's within-unit reliability under 0.5): links *out of* service are
attenuated -- a known limitation the model flags; ``d`` the employee survey with small bases
(pride and greeting noisy and correlated): the noise flag on employee-survey parents, and
with ``--correct-noise`` whether the measurement-error correction's guard holds (it must
leave two correlated noisy parents uncorrected rather than blow up). ``c`` and ``d`` are
reported for information. The intervals are the model's: the percentile intervals widened
by its few-clusters factor (``model.small_sample_factor``).

``--correct-noise none|guest_survey|all`` chooses which sampled parents the model's
measurement-error correction may correct (``guest_survey`` by default, as in the model). The
simulator is the world that correction assumes: each cell's answers are a
sample around a latent unit-quarter value, and the latent value (not the respondents' own
answers) drives the child; the noise of different measures is independent.

    .venv/bin/python benchmarks/bench_linkage.py
    .venv/bin/python benchmarks/bench_linkage.py --scenario a --reps 100 --n-boot 99
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from rox_helpers import linkage
from rox_helpers.config import parse_engagement_config

CONFIG = """
client: {name: Linkage coverage study}
seed: 1
data:
  employees: {path: employees.csv}
  cx_survey: {path: cx_survey.csv}
  units: {path: units.csv}
elements:
  pride: [{name: pride, table: employees, column: pride, label: "Pride (1-7)"}]
  behaviours: [{name: greeting, table: employees, column: greet, label: "Greeting (share)"}]
  values: [{name: service, table: cx_survey, column: att_service, label: "Service (0-10)"}]
  results: [{name: occupancy, table: units, column: occupancy, label: "Occupancy"}]
linkage:
  grain: quarter
  lead_grain: null
  paths:
    greeting: [pride]
    service: [pride, greeting]
    occupancy: [service]
  lags: {greeting: 0, service: 0, occupancy: 1}
"""

NAMES = ["pride", "greeting", "service", "occupancy"]
#: true direct effects (child, parent) -> value, in raw units
TRUE_B = {
    ("greeting", "pride"): 0.08,
    ("service", "pride"): 0.40,
    ("service", "greeting"): 3.0,
    ("occupancy", "service"): 0.03,
}
MEAN = {"pride": 5.0, "greeting": 0.6, "service": 7.5, "occupancy": 0.7}
#: sd of the unit fixed effect, of the period shock, and of the (stationary AR(1))
#: disturbance of each measure; rho: AR(1) coefficient (pride's own, the others' disturbance)
UNIT_SD = {"pride": 0.5, "greeting": 0.08, "service": 0.5, "occupancy": 0.05}
PERIOD_SD = {"pride": 0.15, "greeting": 0.02, "service": 0.15, "occupancy": 0.02}
SHOCK_SD = {"pride": 0.6, "greeting": 0.05, "service": 0.4, "occupancy": 0.012}
RHO = {"pride": 0.6, "greeting": 0.3, "service": 0.3, "occupancy": 0.3}
#: the table each measure comes from ("units": administrative, no sampling noise)
TABLE = {
    "pride": "employees",
    "greeting": "employees",
    "service": "cx_survey",
    "occupancy": "units",
}


def true_matrices() -> tuple[np.ndarray, np.ndarray]:
    """B (direct effects, child x parent) and the total effects (I - B)^-1 - I."""
    m = len(NAMES)
    B = np.zeros((m, m))
    for (c, p), v in TRUE_B.items():
        B[NAMES.index(c), NAMES.index(p)] = v
    return B, np.linalg.inv(np.eye(m) - B) - np.eye(m)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    units: int
    periods: int = 8
    #: people per cell (employees: pride and greeting) and answers per cell (guest survey)
    staff_base: tuple[int, int] = (80, 320)
    guest_base: tuple[int, int] = (150, 600)
    #: individual-level sd of an answer around the cell's true value
    answer_sd: tuple[tuple[str, float], ...] = (
        ("pride", 0.9),
        ("greeting", 0.12),
        ("service", 1.5),
    )
    missing: float = 0.05  # share of surveyed cells not reported
    targets: bool = False


def scenarios(units: int, periods: int) -> dict[str, Scenario]:
    return {
        "a": Scenario("a", "well measured", units, periods, targets=True),
        "b": Scenario(
            "b", f"few units ({units // 2}: wild cluster bootstrap)", units // 2, periods
        ),
        "c": Scenario("c", "noisy guest survey (small bases)", units, periods, guest_base=(3, 12)),
        # a noisy *employee* survey parent (pride, greeting: two correlated noisy parents)
        "d": Scenario("d", "noisy staff survey (small bases)", units, periods, staff_base=(2, 4)),
    }


def _ar1(rng: np.random.Generator, shape: tuple[int, int], rho: float, sd: float) -> np.ndarray:
    """Stationary AR(1) along axis 1 with marginal sd ``sd``."""
    x = np.empty(shape)
    x[:, 0] = rng.normal(0, sd, shape[0])
    innov = sd * np.sqrt(1 - rho**2)
    for t in range(1, shape[1]):
        x[:, t] = rho * x[:, t - 1] + rng.normal(0, innov, shape[0])
    return x


def simulate(sc: Scenario, rng: np.random.Generator) -> linkage.Panel:
    """One panel: true unit-quarter values from the SEM, then sampled cell means."""
    U, T = sc.units, sc.periods

    def base(name: str) -> np.ndarray:
        return rng.normal(0, UNIT_SD[name], (U, 1)) + rng.normal(0, PERIOD_SD[name], (1, T))

    def shock(name: str) -> np.ndarray:
        return _ar1(rng, (U, T), RHO[name], SHOCK_SD[name])

    true = {"pride": MEAN["pride"] + base("pride") + shock("pride")}
    true["greeting"] = (
        MEAN["greeting"]
        + base("greeting")
        + TRUE_B[("greeting", "pride")] * (true["pride"] - MEAN["pride"])
        + shock("greeting")
    )
    true["service"] = (
        MEAN["service"]
        + base("service")
        + TRUE_B[("service", "pride")] * (true["pride"] - MEAN["pride"])
        + TRUE_B[("service", "greeting")] * (true["greeting"] - MEAN["greeting"])
        + shock("service")
    )
    lagged = np.full((U, T), MEAN["service"])  # before the panel: service at its mean
    lagged[:, 1:] = true["service"][:, :-1]
    true["occupancy"] = (
        MEAN["occupancy"]
        + base("occupancy")
        + TRUE_B[("occupancy", "service")] * (lagged - MEAN["service"])
        + shock("occupancy")
    )

    unit_ids = np.array([f"U{u:03d}" for u in range(U)])
    periods = [f"{2023 + t // 4}Q{t % 4 + 1}" for t in range(T)]
    unit = np.repeat(np.arange(U), T)
    tt = np.tile(np.arange(T), U)
    cells = pd.DataFrame({"unit_id": unit_ids[unit], "period": np.array(periods)[tt], "t": tt})
    staff_n = rng.integers(sc.staff_base[0], sc.staff_base[1] + 1, U * T)
    guest_n = rng.integers(sc.guest_base[0], sc.guest_base[1] + 1, U * T)
    staff_seen = rng.random(U * T) >= sc.missing
    guest_seen = rng.random(U * T) >= sc.missing
    sd = dict(sc.answer_sd)
    rel_rows = []
    for name in NAMES:
        value = true[name].ravel()
        if TABLE[name] == "units":  # administrative: three monthly figures, no sampling
            cells[name], cells[f"n__{name}"] = value, 3.0
            rel_rows.append(
                {"measure": name, "icc1": np.nan, "icc2": np.nan, "within_reliability": np.nan}
                | {"mean_base": 3.0, "kind": "administrative (no sampling)"}
            )
            continue
        n, seen = (staff_n, staff_seen) if TABLE[name] == "employees" else (guest_n, guest_seen)
        # the individual answers: the cell's true value plus each person's own noise
        cell_of = np.repeat(np.arange(U * T), n)
        x = value[cell_of] + rng.normal(0, sd[name], len(cell_of))
        means = np.bincount(cell_of, x, U * T) / n
        rows = pd.DataFrame({"unit_id": unit_ids[unit][cell_of], "period": tt[cell_of], "x": x})
        rel = linkage.reliability(rows[seen[cell_of]])
        rel_rows.append({"measure": name, **rel, "kind": "sampled"})
        cells[name] = np.where(seen, means, np.nan)
        cells[f"n__{name}"] = np.where(seen, n.astype(float), np.nan)
        # the cell mean's sampling variance as build_panel estimates it: msw / n
        cells[f"v__{name}"] = np.where(seen, rel["msw"] / n, np.nan)
    return linkage.Panel(
        cells=cells,
        respondents=None,
        measures=MEASURES,
        reliability=pd.DataFrame(rel_rows),
        grain="quarter",
        periods=periods,
    )


CFG = parse_engagement_config(CONFIG)
MEASURES = linkage.measure_table(CFG, list(NAMES))
NOISE_FLAG = "mostly noise"


def effects() -> list[tuple[str, str, str, float]]:
    """(kind, from, to, true value): every direct link, then every total effect that is not
    a single link's (pride -> occupancy runs through service; pride -> service also through
    greeting)."""
    B, total = true_matrices()
    out = [("link", p, c, v) for (c, p), v in TRUE_B.items()]
    for a in NAMES:
        for b in NAMES:
            i, j = NAMES.index(b), NAMES.index(a)
            if total[i, j] != 0 and not np.isclose(total[i, j], B[i, j]):
                out.append(("total", a, b, float(total[i, j])))
    return out


def run(
    sc: Scenario, reps: int, n_boot: int, seed: int, correct_noise: str = "guest_survey"
) -> dict:
    """Fit ``reps`` simulated panels; collect each link's and total effect's results."""
    eff = effects()
    cols = ("est", "lo", "hi", "se", "jlo", "jhi", "noise", "feedback", "corrected")
    got = {c: np.full((reps, len(eff)), np.nan) for c in cols}
    rel = {n: np.full(reps, np.nan) for n in NAMES if TABLE[n] != "units"}
    boot, widen = set(), set()
    t0 = time.perf_counter()
    for r in range(reps):
        sim_seed, fit_seed = np.random.SeedSequence([seed, ord(sc.key), r]).spawn(2)
        panel = simulate(sc, np.random.default_rng(sim_seed))
        model = linkage.fit_linkage(
            panel,
            CFG,
            n_boot=n_boot,
            seed=int(fit_seed.generate_state(1)[0]),
            correct_noise=correct_noise,
        )
        widen.add(round(model.small_sample_factor, 4))
        boot.add(model.bootstrap)
        edges = model.edges.set_index(["parent", "child"])
        totals = model.effects.set_index(["from", "to"])
        for i, (kind, a, b, _) in enumerate(eff):
            if kind == "link":
                e = edges.loc[(a, b)]
                values = (e["estimate"], e["ci_low"], e["ci_high"], e["se"], e["joint_low"])
                values += (e["joint_high"], NOISE_FLAG in e["flags"], e["feedback_flag"])
                values += (e["noise_corrected"],)
            else:
                e = totals.loc[(a, b)]
                values = (e["total"], e["total_ci_low"], e["total_ci_high"], e["total_se"])
            for c, v in zip(cols, values, strict=False):
                got[c][r, i] = float(v)
        within = panel.reliability.set_index("measure")["within_reliability"]
        for n in rel:
            rel[n][r] = within[n]
    wall = time.perf_counter() - t0

    rows = []
    for i, (kind, a, b, v) in enumerate(eff):
        x, lo, hi = got["est"][:, i], got["lo"][:, i], got["hi"][:, i]
        cov = (lo <= v) & (v <= hi)
        rows.append(
            {
                "kind": kind,
                "effect": f"{a} -> {b}",
                "true": v,
                "mean_est": x.mean(),
                "bias_pct": 100 * (x.mean() - v) / v,
                "bias_mcse_pct": 100 * x.std(ddof=1) / np.sqrt(reps) / abs(v),
                "coverage": 100 * cov.mean(),
                "cov_mcse": 100 * np.sqrt(cov.mean() * (1 - cov.mean()) / reps),
                "miss_low": 100 * (v < lo).mean(),  # the true value below the interval
                "miss_high": 100 * (v > hi).mean(),
                "width": (hi - lo).mean(),
                "sd_est": x.std(ddof=1),
                "mean_se": got["se"][:, i].mean(),
                "noise_flag": 100 * got["noise"][:, i].mean(),
                "corrected": 100 * got["corrected"][:, i].mean(),
                "feedback_flag": 100 * got["feedback"][:, i].mean(),
            }
        )
    link = np.array([k == "link" for k, *_ in eff])
    true = np.array([v for *_, v in eff])
    inside = ((got["jlo"] <= true) & (true <= got["jhi"]))[:, link].all(axis=1)
    return {
        "table": pd.DataFrame(rows),
        "joint": 100 * inside.mean(),
        "joint_mcse": 100 * np.sqrt(inside.mean() * (1 - inside.mean()) / reps),
        "reliability": {n: float(np.nanmean(v)) for n, v in rel.items()},
        "bootstrap": ", ".join(sorted(boot)),
        "widen": ", ".join(f"{w:.3f}" for w in sorted(widen)),
        "correct_noise": correct_noise,
        "wall": wall,
        "reps": reps,
    }


def report(sc: Scenario, res: dict, n_boot: int) -> bool:
    tab = res["table"]
    print(
        f"\nscenario {sc.key}: {sc.title}. {sc.units} units x {sc.periods} quarters, "
        f"{res['reps']} panels, {n_boot} bootstrap draws each ({res['bootstrap']}; "
        f"intervals widened x{res['widen']} for few units; noise correction "
        f"{res['correct_noise']}); "
        f"{res['wall']:.1f} s ({res['wall'] / res['reps']:.2f} s per panel)"
    )
    rel = ", ".join(f"{n} {v:.2f}" for n, v in res["reliability"].items())
    print(f"mean within-unit (two-way) reliability of the surveyed means: {rel}")
    head = (
        f"{'':5} {'effect':<22} {'true':>8} {'mean est':>9} {'bias %':>13} "
        f"{'cover 95% CI':>13} {'low/high miss':>13} {'width':>8} {'SE/SD':>6} {'noise flag':>10}"
        f" {'corrected':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in tab.itertuples():
        flag = "" if np.isnan(r.noise_flag) else f"{r.noise_flag:.0f}%"
        corr = "" if np.isnan(r.corrected) else f"{r.corrected:.0f}%"
        print(
            f"{r.kind:5} {r.effect:<22} {r.true:>8.4f} {r.mean_est:>9.4f} "
            f"{r.bias_pct:>+6.1f} ± {r.bias_mcse_pct:>4.1f} "
            f"{r.coverage:>6.1f} ± {r.cov_mcse:>4.1f} "
            f"{r.miss_low:>6.1f}/{r.miss_high:<6.1f} {r.width:>8.4f} "
            f"{r.mean_se / r.sd_est:>6.2f} {flag:>10} {corr:>9}"
        )
    print(
        f"joint band (every link inside its band at once): {res['joint']:.1f}% "
        f"± {res['joint_mcse']:.1f} (target 95%); lead-test feedback flags (none simulated): "
        + ", ".join(
            f"{r.effect} {r.feedback_flag:.1f}%" for r in tab.itertuples() if r.kind == "link"
        )
    )
    links = tab[tab["kind"] == "link"]
    print(
        "attenuation check, mean estimate / true beside the parent's within-unit reliability: "
        + ", ".join(
            f"{r.effect} {r.mean_est / r.true:.2f} vs {res['reliability'][r.effect.split()[0]]:.2f}"
            for r in links.itertuples()
        )
    )
    cov_ok = tab["coverage"].between(90, 98).all()
    bias_ok = (tab["bias_pct"].abs() < 10).all()
    verdict = (
        f"coverage {tab['coverage'].min():.1f}-{tab['coverage'].max():.1f}% "
        f"(target 90-98%: {'met' if cov_ok else 'MISSED'}); largest |bias| "
        f"{tab['bias_pct'].abs().max():.1f}% (target < 10%: {'met' if bias_ok else 'MISSED'})"
    )
    print(("VERDICT " if sc.targets else "for information: ") + verdict)
    return cov_ok and bias_ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", choices=["a", "b", "c", "d", "all"], default="all")
    ap.add_argument("--reps", type=int, default=200, help="panels in scenario a")
    ap.add_argument(
        "--reps-other", type=int, default=100, help="panels in scenarios b, c and d (with all)"
    )
    ap.add_argument(
        "--correct-noise",
        choices=("none", "guest_survey", "all"),
        default="guest_survey",
        help="which sampled parents the measurement-error correction may correct (the "
        "model's default: guest_survey)",
    )
    ap.add_argument("--n-boot", type=int, default=199)
    ap.add_argument("--units", type=int, default=40)
    ap.add_argument("--periods", type=int, default=8)
    ap.add_argument("--seed", type=int, default=20261123)
    args = ap.parse_args()
    print(
        f"cores available: {len(os.sched_getaffinity(0))}; numpy {np.__version__}; "
        f"WILD_BELOW = {linkage.WILD_BELOW}"
    )
    _, total = true_matrices()
    print(
        "true direct effects: "
        + ", ".join(f"{p} -> {c} {v:g}" for (c, p), v in TRUE_B.items())
        + f"; true total pride -> occupancy {total[3, 0]:.4g}"
    )
    keys = ["a", "b", "c", "d"] if args.scenario == "all" else [args.scenario]
    all_sc = scenarios(args.units, args.periods)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for k in keys:
            reps = args.reps if (k == "a" or args.scenario != "all") else args.reps_other
            res = run(all_sc[k], reps, args.n_boot, args.seed, args.correct_noise)
            report(all_sc[k], res, args.n_boot)
    print(f"\ntotal wall time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
