"""Kernels forked from the warm server (rox_helpers.kernels) behave like fresh ones: their own
process group, the run's environment and thread limit, figures drawn into the notebook, their
output in the step's log, errors reported with the cell."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from conftest import write_notebook
from rox_helpers import kernels
from rox_helpers.pipeline import _kernel_env, execute_notebook

pytestmark = pytest.mark.skipif(not kernels.fork_enabled(), reason="no fork on this platform")

PROBE = """\
import json, os, sys, threadpoolctl
import matplotlib.pyplot as plt
info = {
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "pgid": os.getpgid(0),
    "marker": os.environ.get("ROX_TEST_MARKER"),
    "blas": max(p["num_threads"] for p in threadpoolctl.threadpool_info()),
    "preloaded": "sklearn.linear_model" in sys.modules,
    "cwd": os.getcwd(),
}
os.write(2, b"kernel-stderr-reaches-the-log\\n")
fig, ax = plt.subplots()
ax.plot([1, 2, 3])
plt.show()
print(json.dumps(info))
"""


def _run(tmp_path, name: str, fork: bool, threads: str = "1") -> tuple[dict, nbformat.NotebookNode]:
    nb = write_notebook(tmp_path / f"{name}.ipynb", PROBE)
    out, log = tmp_path / f"{name}.out.ipynb", tmp_path / f"{name}.log"
    env = {"ROX_TEST_MARKER": name, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    old = os.environ.get("ROX_KERNEL_FORK")
    os.environ["ROX_KERNEL_FORK"] = "1" if fork else "0"
    try:
        with _kernel_env(env):
            execute_notebook(nb, out, {}, "python3", log)
    finally:
        if old is None:
            os.environ.pop("ROX_KERNEL_FORK", None)
        else:
            os.environ["ROX_KERNEL_FORK"] = old
    done = nbformat.read(out, as_version=4)
    outputs = [o for c in done.cells for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    info = json.loads(text.strip().splitlines()[-1])
    info["images"] = sum("image/png" in o.get("data", {}) for o in outputs)
    info["log"] = log.read_text()
    return info, done


def test_a_forked_kernel_is_a_kernel_of_its_own(tmp_path):
    info, _ = _run(tmp_path, "forked", fork=True, threads="1")
    assert info["ppid"] != os.getpid()  # a child of the fork server, not of this process
    assert info["pgid"] == info["pid"]  # its own process group (signals reach only it)
    assert info["marker"] == "forked"  # the run's environment
    assert info["blas"] == 1  # the run's thread limit, though the server loaded BLAS
    assert info["preloaded"]  # the stack came from the server
    assert info["images"] == 1  # the inline backend draws into the notebook
    assert "kernel-stderr-reaches-the-log" in info["log"]


def test_forked_and_fresh_kernels_see_the_same_settings(tmp_path):
    fresh, _ = _run(tmp_path, "fresh", fork=False, threads="2")
    forked, _ = _run(tmp_path, "forked2", fork=True, threads="2")
    assert fresh["ppid"] == os.getpid()  # ROX_KERNEL_FORK=0: a new interpreter of ours
    assert (fresh["marker"], forked["marker"]) == ("fresh", "forked2")
    for key in ("images", "cwd", "blas"):
        assert fresh[key] == forked[key], key


def test_a_failing_cell_is_reported_from_a_forked_kernel(tmp_path):
    import papermill as pm

    nb = write_notebook(tmp_path / "bad.ipynb", "x = 1", "raise ValueError('planted')")
    with pytest.raises(pm.PapermillExecutionError) as err:
        execute_notebook(nb, tmp_path / "bad.out.ipynb", {}, "python3", tmp_path / "bad.log")
    assert err.value.ename == "ValueError" and "planted" in err.value.evalue
    assert "planted" in err.value.source  # the failing cell, named
    assert (tmp_path / "bad.out.ipynb").is_file()


def test_a_script_without_a_main_guard_is_not_run_again(tmp_path):
    """multiprocessing would re-run the parent's main script in each child; the kernels'
    server is not told about it, so a script calling run_engagement at top level (no
    ``if __name__ == "__main__"``) starts kernels without running itself again."""
    import subprocess
    import sys

    nb = write_notebook(tmp_path / "n.ipynb", "print('cell ran')")
    marker = tmp_path / "script-ran"
    script = tmp_path / "script.py"
    script.write_text(
        "from pathlib import Path\n"
        f"m = Path({str(marker)!r})\n"
        "m.write_text(m.read_text() + 'x' if m.exists() else 'x')\n"
        "from rox_helpers.pipeline import execute_notebook\n"
        f"execute_notebook(Path({str(nb)!r}), Path({str(tmp_path / 'o.ipynb')!r}), {{}}, "
        f"'python3', Path({str(tmp_path / 'o.log')!r}))\n"
    )
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert marker.read_text() == "x"
    out = nbformat.read(tmp_path / "o.ipynb", as_version=4)
    assert json.dumps([c.outputs for c in out.cells]).count("cell ran") == 1
