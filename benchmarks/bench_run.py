"""Benchmark ``rox run`` on the sample engagement against the same analyses in one process.

Usage::

    .venv/bin/python benchmarks/bench_run.py            # both figures, --jobs = cores
    .venv/bin/python benchmarks/bench_run.py --jobs 2

(a) ``rox run``: the whole pipeline (papermill, one kernel per notebook, independent steps
    in parallel, the report and the deliverables), wall time and the time of each step.
(b) plain Python: the code cells of the same notebooks, in the pipeline's order, executed
    one after another in this one process (no kernels, no papermill, no report), with the
    same parameters, into a fresh run folder.

Targets (issue 9): (a) under 40 s on 2 cores, and (a) no more than 1.5 times (b).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import threading
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "engagements" / "sample"


def plain_python(engagement: Path) -> tuple[float, dict[str, float]]:
    """Run every notebook's code cells in this process; return (total, per step) seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import nbformat

    from rox_helpers.artifacts import new_run_dir
    from rox_helpers.pipeline import NOTEBOOKS_DIR, STEPS

    run_dir = new_run_dir(engagement, label="bench-plain")
    times: dict[str, float] = {}
    t_all, cpu_all = time.perf_counter(), time.process_time()
    for step in STEPS:
        nb = nbformat.read(NOTEBOOKS_DIR / step.notebook, as_version=4)
        ns: dict[str, object] = {"__name__": f"step_{step.id}"}
        t0 = time.perf_counter()
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            src = cell.source
            if "parameters" in cell.metadata.get("tags", []):
                src += f"\nENGAGEMENT = {str(engagement)!r}\nRUN_DIR = {str(run_dir)!r}"
            # IPython magics are not Python; the notebooks use none, but be safe
            src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith("%"))
            # display() outside a kernel prints a repr per table and chart: not the figures'
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(src, f"{step.notebook}", "exec"), ns)
        times[step.id] = time.perf_counter() - t0
        import matplotlib.pyplot as plt

        plt.close("all")
    times["cpu"] = time.process_time() - cpu_all
    return time.perf_counter() - t_all, times


class CpuSampler:
    """User+sys CPU seconds of this process and every process below it (kernels, the
    kernels' fork server, Chromium), sampled every 0.1 s: on a shared machine the wall time
    says little, the CPU a run costs says what it would take on a quiet one."""

    def __init__(self) -> None:
        import psutil

        self.root = psutil.Process()
        self.start_self = sum(self.root.cpu_times()[:2])
        self.children: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = self.root.children(recursive=True)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    t = p.cpu_times()
                except psutil.Error:
                    continue
                self.children[p.pid] = max(self.children.get(p.pid, 0.0), t.user + t.system)
            self._stop.wait(0.1)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.main = sum(self.root.cpu_times()[:2]) - self.start_self
        self.seconds = self.main + sum(self.children.values())


def rox_run(engagement: Path, jobs: int | None) -> tuple[float, dict, float]:
    from rox_helpers.pipeline import run_engagement

    t0 = time.perf_counter()
    with CpuSampler() as cpu:
        result = run_engagement(engagement, jobs=jobs)
    wall = time.perf_counter() - t0
    manifest = json.loads(result.manifest.read_text())
    if result.status != "ok":
        print(f"  run status: {result.status}: {[f.notebook for f in result.failures]}")
    print(f"    CPU of this process (papermill, nbclient, the report): {cpu.main:.1f} s")
    return wall, manifest, cpu.seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=None, help="parallel steps (default: cores)")
    p.add_argument("--skip-plain", action="store_true", help="only time rox run")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    from rox_helpers.sample import ensure_sample_data

    ensure_sample_data(SAMPLE)
    cores = os.cpu_count()
    wall, manifest, cpu = rox_run(SAMPLE, args.jobs)
    steps = {k: v.get("seconds") for k, v in manifest["steps"].items()}
    print(f"(a) rox run on the sample, {manifest['jobs']} jobs on {cores} cores: {wall:.1f} s wall")
    print(
        f"    CPU of the whole process tree (user+sys): {cpu:.1f} s; load {os.getloadavg()[0]:.1f}"
    )
    print("    steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(steps.items())))
    print(
        f"    report, deck, appendix and PDF: {manifest.get('render_seconds', float('nan')):.1f} s"
    )
    print(f"    target under 40 s: {'met' if wall < 40 else 'NOT met'}")
    if args.skip_plain:
        return 0
    plain, per = plain_python(SAMPLE)
    print(f"(b) the same notebooks' code in one plain Python process: {plain:.1f} s")
    print(f"    CPU (user+sys): {per.pop('cpu'):.1f} s; load {os.getloadavg()[0]:.1f}")
    print("    steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    ratio = wall / plain
    print(
        f"    rox run / plain = {ratio:.2f} (target <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
