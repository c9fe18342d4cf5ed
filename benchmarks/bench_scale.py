"""Benchmark ``rox run`` on a generated engagement of client size (issue 9, "Scale").

Usage::

    .venv/bin/python benchmarks/bench_scale.py              # 1M customers, 10M events, 200k answers
    .venv/bin/python benchmarks/bench_scale.py --customers 100000 --interactions 1000000 \
        --responses 20000 --out /tmp/rox-scale-100k

The engagement folder (``--out``, default ``/work/scale-bench/c<customers>``) gets the
sample engagement's ``engagement.yml`` and its data from the generator through
:func:`rox_helpers.sample.ensure_sample_data`, which keeps data already generated with the
same seed and size (a stamp file), so only the first call pays for the generation (timed
and printed, not part of the target). Then the whole ``rox run`` (every notebook through
:func:`rox_helpers.pipeline.run_engagement`, the report, deck, appendix and PDF) runs on it.

Printed: the wall time of the run, each step's wall seconds and the user+sys CPU seconds of
its kernel (and the kernel's children), the time of the render, the peak resident memory of
the whole process tree (this process, the kernels and everything they start; sampled every
0.2 s) as the peak of the sum of proportional set sizes (pages the forked kernels share with
their server counted once; the target's measure), the peak of the sum of resident sizes
(shared pages counted in every process) and the largest single process, the run's status with any
failed step and its error, and whether each target is met:

- the whole run in under 5 minutes of wall time;
- under 6 GiB peak memory of the process tree.

The machine may be shared: CPU seconds show what a step costs whatever the load.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = REPO / "engagements" / "sample" / "engagement.yml"
TARGET_SECONDS = 300.0
TARGET_BYTES = 6 * 1024**3
GIB = 1024**3


class TreeSampler:
    """Sample the RSS and CPU time of this process and all its descendants in a thread.

    Kernel processes are tied to the step that launched them (see :func:`_tag_kernels`),
    and every process below a kernel counts for that step.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.root = psutil.Process()
        self.peak_sum = 0
        # proportional set size: pages shared between processes (the kernels share the
        # libraries they were forked with) counted once, split between the sharers
        self.peak_pss = 0
        self.peak_single = 0
        self.peak_single_label = ""
        self.peak_sum_labels: list[str] = []
        self.kernel_step: dict[int, str] = {}  # kernel pid -> step id
        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (step, user+sys seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _step_of(self, proc: psutil.Process) -> str:
        p: psutil.Process | None = proc
        while p is not None and p.pid != self.root.pid:
            if p.pid in self.kernel_step:
                return self.kernel_step[p.pid]
            try:
                p = p.parent()
            except psutil.Error:
                return "?"
        return "main"

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        total = pss_total = 0
        labelled: list[tuple[int, str]] = []
        for proc in procs:
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    t = proc.cpu_times()
                    name = proc.name()
                try:
                    pss = proc.memory_full_info().pss
                except (psutil.Error, AttributeError):
                    pss = rss
            except psutil.Error:
                continue
            step = self._step_of(proc)
            total += rss
            pss_total += pss
            labelled.append((rss, f"{name}[{step}]"))
            if proc.pid != self.root.pid:
                self.cpu[proc.pid] = (step, t.user + t.system)
            if rss > self.peak_single:
                self.peak_single = rss
                self.peak_single_label = f"{name} (step {step})"
        self.peak_pss = max(self.peak_pss, pss_total)
        if total > self.peak_sum:
            self.peak_sum = total
            self.peak_sum_labels = [
                f"{lab} {rss / GIB:.2f}" for rss, lab in sorted(labelled, reverse=True)[:4]
            ]

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def cpu_by_step(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for step, secs in self.cpu.values():
            out[step] = out.get(step, 0.0) + secs
        return out


def _tag_kernels(sampler: TreeSampler) -> None:
    """Record which step each kernel belongs to: the runner executes a step in a worker
    thread, and the kernel is launched from that thread (jupyter_client's run_sync runs its
    event loop in the calling thread)."""
    import jupyter_client.provisioning.local_provisioner as lp

    from rox_helpers import kernels, pipeline

    current: dict[int, str] = {}
    run_step = pipeline._execute
    launch = lp.launch_kernel

    def execute(step, *args, **kwargs):
        current[threading.get_ident()] = step.id
        try:
            return run_step(step, *args, **kwargs)
        finally:
            current.pop(threading.get_ident(), None)

    def launch_kernel(*args, **kwargs):
        proc = launch(*args, **kwargs)
        sampler.kernel_step[proc.pid] = current.get(threading.get_ident(), "?")
        return proc

    # kernels forked from the warm server (rox_helpers.kernels) are the server's children:
    # tagged when their handle is made, in the thread of the step that asked for them
    forked_init = kernels.ForkedKernelProcess.__init__

    def forked(self, process):
        forked_init(self, process)
        sampler.kernel_step[self.pid] = current.get(threading.get_ident(), "?")

    pipeline._execute = execute
    lp.launch_kernel = launch_kernel
    kernels.ForkedKernelProcess.__init__ = forked


def prepare(out: Path, seed: int | None, size) -> tuple[float | None, int]:
    """The engagement folder with the sample's engagement.yml and generated data of this
    size; returns (seconds spent generating or None when cached, seed)."""
    from rox_helpers.config import load_engagement_config
    from rox_helpers.sample import ensure_sample_data

    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "engagement.yml"
    if not cfg_path.is_file() or cfg_path.read_bytes() != SAMPLE_CONFIG.read_bytes():
        shutil.copyfile(SAMPLE_CONFIG, cfg_path)
    seed = load_engagement_config(out).seed if seed is None else seed
    t0 = time.perf_counter()
    # in a child process: the generator's heap would otherwise stay in this process and
    # count towards the run's peak memory
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        _, made = pool.apply(ensure_sample_data, (out,), {"seed": seed, "size": size})
    return (time.perf_counter() - t0 if made else None), seed


def main(argv: list[str] | None = None) -> int:
    """Generate (once) and run the engagement; print the figures. Exit 1 unless all met."""
    from rox_helpers.synthetic import SampleSize

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--interactions", type=int, default=10_000_000)
    p.add_argument("--responses", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=None, help="default: engagement.yml's seed")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--max-memory",
        default="5G",
        help="rox run --max-memory: the kernels' budget (default 5G, leaving the run's own "
        "process and the kernels' server room under the 6 GiB target); steps use the peaks "
        "of the last run, so the first run on a new engagement is not held to it",
    )
    p.add_argument("--out", type=Path, default=None, help="engagement folder")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    size = SampleSize(
        n_customers=args.customers,
        n_interactions=args.interactions,
        n_responses=args.responses,
    )
    out = args.out or Path("/work/scale-bench") / f"c{args.customers}"
    print(f"engagement  : {out}")
    print(f"size        : {size}")
    gen, seed = prepare(out, args.seed, size)
    print(
        f"generation  : {gen:.1f} s (not part of the target)"
        if gen is not None
        else f"generation  : cached (seed {seed}, same size)"
    )

    from rox_helpers import pipeline

    sampler = TreeSampler()
    _tag_kernels(sampler)
    render: dict[str, float] = {}
    render_run = pipeline.render_run

    def timed_render(*a, **k):
        me = psutil.Process()
        c0 = me.cpu_times()
        t0 = time.perf_counter()
        try:
            return render_run(*a, **k)
        finally:
            c1 = me.cpu_times()
            render["wall"] = time.perf_counter() - t0
            render["cpu"] = sum(c1[:4]) - sum(c0[:4])  # user, system, children's

    pipeline.render_run = timed_render
    sampler.start()
    t0 = time.perf_counter()
    try:
        from rox_helpers.cli import parse_bytes

        budget = parse_bytes(args.max_memory) if args.max_memory else None
        result = pipeline.run_engagement(out, jobs=args.jobs, max_memory=budget)
    finally:
        wall = time.perf_counter() - t0
        sampler.stop()
        pipeline.render_run = render_run
    manifest = json.loads(result.manifest.read_text())
    cpu = sampler.cpu_by_step()
    print(f"run folder  : {result.run_dir}")
    print(f"status      : {result.status}")
    print(f"total wall  : {wall:.1f} s ({args.jobs} jobs on {psutil.cpu_count()} cores)")
    print("steps       :   wall s    cpu s  status")
    for sid, rec in sorted(manifest.get("steps", {}).items()):
        secs = rec.get("seconds")
        wall_s = f"{secs:8.1f}" if secs is not None else "       -"
        print(f"  {sid}        {wall_s} {cpu.get(sid, 0.0):8.1f}  {rec.get('status')}")
        if rec.get("status") != "ok":
            print(f"      {rec.get('error') or rec.get('reason')} (cell {rec.get('cell_index')})")
    if render:
        print(f"  render    {render['wall']:8.1f} {render['cpu']:8.1f}")
    for f in result.failures:
        print(f"failed      : {f.notebook} cell {f.cell_index}: {f.ename}: {f.evalue}")
    print(
        f"peak memory : {sampler.peak_pss / GIB:.2f} GiB whole tree, shared pages once (PSS); "
        f"{sampler.peak_sum / GIB:.2f} GiB as the sum of each process's RSS "
        f"(at the peak, GiB: {', '.join(sampler.peak_sum_labels)}); "
        f"largest single process {sampler.peak_single / GIB:.2f} GiB, {sampler.peak_single_label}"
    )
    ok_time = wall < TARGET_SECONDS and result.status == "ok"
    ok_mem = sampler.peak_pss < TARGET_BYTES
    print(f"target wall < {TARGET_SECONDS:.0f} s : {'met' if ok_time else 'NOT met'}")
    print(f"target peak < 6 GiB : {'met' if ok_mem else 'NOT met'}")
    return 0 if ok_time and ok_mem else 1


if __name__ == "__main__":
    sys.exit(main())
