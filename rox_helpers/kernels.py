"""Warm kernels for ``rox run``: each notebook's kernel is forked from a process that has
already imported the scientific stack, instead of starting a new interpreter.

A fresh IPython kernel spends about 3.5 s of CPU importing pandas, scikit-learn,
statsmodels, seaborn, Ibis and the workbook before its first cell computes anything; a run
of the sample starts nine of them (one per step, and one per unit report), on a laptop's
two cores. Python's own fork server (:mod:`multiprocessing`'s ``forkserver`` start method
with ``set_forkserver_preload``) imports those modules once, in a clean single-threaded
process started for the purpose, and forks a child for every kernel; the child is an
ordinary ipykernel (``ipykernel.kernelapp.launch_new_instance``) on the connection file
jupyter_client wrote, so papermill and nbclient talk to it exactly as to any kernel.

What a forked kernel shares with the server is only imported code: no data, no open
connection, no random state that an analysis uses (every analysis seeds its own generator),
no figure (the server imports pyplot without drawing, with the inline backend named so that
the kernel draws into the notebook). Each kernel gets its own session and process group,
the run's environment, its own working directory and BLAS/OpenMP thread limit, and writes
its own output to the step's log.

Set ``ROX_KERNEL_FORK=0`` to start every kernel as a new interpreter instead (the results
are the same; the run is slower). Platforms without ``fork`` always do.

The server lives as long as the process that started it (the ``rox`` command): code of
``rox_helpers`` edited during a long-lived session (a test run, an interactive session
calling :func:`~rox_helpers.pipeline.run_engagement` twice) reaches kernels only when that
process restarts. JupyterLab's kernels are not affected; they are started by JupyterLab.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: what every step's kernel imports (the notebooks, the modules they use and what those
#: import inside functions); a module that fails to import is skipped by the server
PRELOAD: tuple[str, ...] = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "scipy.optimize",
    "scipy.special",
    "sklearn.linear_model",
    "sklearn.cluster",
    "sklearn.mixture",
    "sklearn.tree",
    "sklearn.metrics",
    "sklearn.preprocessing",
    "sklearn.decomposition",
    "sklearn.feature_extraction.text",
    "statsmodels.api",
    "statsmodels.formula.api",
    "networkx",
    "matplotlib",
    "matplotlib.pyplot",
    "seaborn",
    "ibis",
    "duckdb",
    "pydantic",
    "yaml",
    "IPython",
    "IPython.display",
    "ipywidgets",
    "ipykernel.kernelapp",
    "rox_helpers.artifacts",
    "rox_helpers.data",
    "rox_helpers.plotting",
    "rox_helpers.report",
    "rox_helpers.tables",
    "rox_helpers.framework",
    "rox_helpers.metrics",
    "rox_helpers.ex",
    "rox_helpers.weights",
    "rox_helpers.segmentation",
    "rox_helpers.drivers",
    "rox_helpers.linkage",
    "rox_helpers.influencers",
    "rox_helpers.loyalty",
    "rox_helpers.journey",
    "rox_helpers.actions",
    "rox_helpers.value",
    "rox_helpers.units",
)

#: the backend a Jupyter kernel draws with (ipykernel sets it too, but matplotlib reads it
#: when it is imported, which here is in the server)
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"

#: the thread-count variables the run sets for its kernels (pipeline._blas_env)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def fork_enabled() -> bool:
    """Whether kernels are forked from the warm server (``ROX_KERNEL_FORK=0`` turns it off)."""
    if os.environ.get("ROX_KERNEL_FORK", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return "forkserver" in multiprocessing.get_all_start_methods()


_CONTEXT: Any = None


def _context():
    """The fork-server context, its preload set once per process."""
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        # the server is started by the first kernel, with this process's environment: the
        # inline backend must be named before matplotlib is imported there
        os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
        ctx.set_forkserver_preload(list(PRELOAD))
        _CONTEXT = ctx
    return _CONTEXT


def warm_up() -> None:
    """Start the server now: it imports the stack in its own process while this one hashes
    the inputs and imports papermill, instead of when the first kernel is wanted."""
    if not fork_enabled():
        return
    from multiprocessing import forkserver

    _context()
    with _without_main():
        forkserver.ensure_running()


_MAIN_LOCK = threading.Lock()


@contextmanager
def _without_main():
    """Start a process without telling the server about ``__main__``.

    multiprocessing re-imports the parent's main script in every child (so that functions
    defined there can be unpickled); a kernel needs nothing from it, and a script without an
    ``if __name__ == "__main__"`` guard (or a console script, or stdin) would run again or
    fail there. The child's target lives in this module.
    """
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _kernel_main(argv: list[str], env: dict[str, str], cwd: str | None, log: str | None) -> None:
    """The forked child: become a kernel of its own session, with the run's environment,
    working directory, thread limits and log, then run ipykernel until it is shut down."""
    os.setsid()  # its own process group: jupyter_client signals the group
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    if cwd:
        os.chdir(cwd)
    # the libraries read the thread variables when they load, which was in the server
    threads = next((env[v] for v in THREAD_VARS if env.get(v, "").isdigit()), None)
    if threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(threads))
    if sys.path and sys.path[0] == "":
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=argv)
    if log:  # the kernel's peak resident memory (Linux counts ru_maxrss in KiB), for the run
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        Path(log).with_suffix(".peak_rss").write_text(f"{peak}\n")


def submit(fn, /, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a process forked from the warm server, beside this one: a
    :class:`concurrent.futures.Future` of its result (``fn`` and its arguments must pickle).
    ``rox run`` builds the Excel appendix so while it renders the report."""
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=1, mp_context=_context())
    with _without_main():
        future = pool.submit(fn, *args, **kwargs)
    pool.shutdown(wait=False)  # the worker ends when its one call is done
    return future


class ForkedKernelProcess:
    """What jupyter_client's local provisioner expects of a ``Popen``, for a forked kernel."""

    stdin = stdout = stderr = None

    def __init__(self, process) -> None:
        self._process = process
        self.pid = process.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self._process is not None:
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if self._process is not None:
            self._process.join(timeout)
            self.poll()
            if self.returncode is not None:
                self._process.close()  # its sentinel
                self._process = None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def forked_provisioner_class():
    """jupyter_client's local provisioner, launching the kernel by a fork of the warm server
    instead of a new interpreter."""
    from jupyter_client.provisioning import LocalProvisioner

    class ForkedProvisioner(LocalProvisioner):
        log_path: str | None = None

        async def launch_kernel(self, cmd: list[str], **kwargs: Any):
            # cmd is the kernelspec's argv: python -m ipykernel_launcher -f <connection file>
            try:
                at = cmd.index("-f")
            except ValueError:
                return await super().launch_kernel(cmd, **kwargs)
            env = {str(k): str(v) for k, v in (kwargs.get("env") or os.environ).items()}
            cwd = kwargs.get("cwd")
            proc = _context().Process(
                target=_kernel_main,
                args=(cmd[at:], env, str(cwd) if cwd else None, self.log_path),
                name="rox-kernel",
            )
            with _without_main():
                proc.start()
            self.process = ForkedKernelProcess(proc)
            self.pid = proc.pid
            # the child makes itself a group leader; never the server's (our own) group
            self.pgid = proc.pid
            self.cwd = cwd or Path.cwd()
            return self.connection_info

    return ForkedProvisioner
