"""The analyst's path in a real browser: JupyterLab on a loopback port, a notebook opened in
headless Chromium (Debian's, through Playwright, never a downloaded one), Run All Cells, no
error output, and in the business case (notebook 07) controls that recompute the ROX figure.

Everything runs on temporary copies (the notebooks folder beside a copy of the sample
engagement, so the notebooks' relative ``../engagements/sample`` resolves), with Jupyter's
config, data and runtime folders in tmp: nothing is written into the repository or ~/.jupyter.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT = 90  # s for JupyterLab to answer its API
RUN_TIMEOUT = 150  # s for Run All Cells of one notebook (07 loads the engagement itself)
UI_TIMEOUT = 60  # s for the page, the kernel and a widget recompute


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is not installed (Debian: apt-get install chromium; .ci/run does it)"
    for module, why in (
        ("playwright.sync_api", "the playwright Python package is not installed (dev extra)"),
        ("jupyterlab", "JupyterLab is not installed (dev extra)"),
        ("ipywidgets", "ipywidgets is not installed (dev extra)"),
    ):
        try:
            __import__(module)
        except ImportError:
            return why
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def tree(self, notebook: str) -> str:
        """The notebook in a workspace of its own: a shared one would reopen the notebooks
        of earlier tests (and start their kernels) next to it."""
        space = f"test-{secrets.token_hex(4)}"
        return f"{self.url}/lab/workspaces/{space}/tree/{notebook}?reset&token={self.token}"

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.url}/api/{path}?token={self.token}", method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End the sessions a test opened (closing the page leaves its kernel running)."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(config_dir: Path) -> None:
    """User settings for this server only: every cell kept in the page (no windowing, so
    off-screen outputs can be inspected) and no news or update checks over the network."""
    user = config_dir / "lab" / "user-settings" / "@jupyterlab"
    settings = {
        "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "apputils-extension/notification.jupyterlab-settings": {
            "checkForUpdates": False,
            "fetchNews": "false",
        },
    }
    for rel, value in settings.items():
        path = user / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def _wait_ready(proc: subprocess.Popen, url: str, token: str, log: Path) -> None:
    """Poll the server's API until it answers, the process dies, or the deadline passes."""
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    json.load(r)
                    return
        except (urllib.error.URLError, OSError, ValueError) as err:
            last = err
        # wait on the process, not a fixed sleep: returns at once if it exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, min(0.25, deadline - time.monotonic())))
    raise TimeoutError(
        f"JupyterLab did not answer in {START_TIMEOUT}s ({last}):\n{log.read_text()[-4000:]}"
    )


@pytest.fixture(scope="module")
def lab(sample, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    skip = shutil.ignore_patterns(".ipynb_checkpoints", "runs", "__pycache__")
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=skip)
    shutil.copytree(sample, root / "engagements" / "sample", ignore=skip)
    jupyter = root / "jupyter"
    env = {
        k: v
        for k, v in os.environ.items()
        # the kernel must decide for itself: a new interactive run folder, the inline
        # backend, and live controls because *this* server started it
        if k not in {"ROX_RUN_DIR", "MPLBACKEND", "JPY_SESSION_NAME", "JUPYTER_PATH"}
    }
    env.update(
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_DATA_DIR=str(jupyter / "data"),  # the venv's share/jupyter stays on the path
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
        IPYTHONDIR=str(jupyter / "ipython"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONUNBUFFERED="1",
    )
    env.pop("JUPYTERLAB_SETTINGS_DIR", None)
    _write_settings(jupyter / "config")
    token, port = secrets.token_hex(16), _free_port()
    log = root / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        f"--ServerApp.token={token}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={root / 'notebooks'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=root / "notebooks", env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, token, log)
        yield Lab(url=url, token=token, root=root, log=log)
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            yield b
        finally:
            b.close()


# The notebook's state, read in the page: the kernel's status, the prompts, errors.
_STATE_JS = """
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const prompts = panel
    ? [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent)
    : [];
  const ind = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const status = ind ? ind.getAttribute('data-status') : null;
  const kn = panel && panel.querySelector('.jp-Toolbar-kernelName, .jp-KernelName');
  const kernel = kn ? kn.textContent.trim() : '';
  const errors = panel
    ? panel.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"]').length
    : 0;
  const numbered = prompts.filter(p => /\\[\\d+\\]/.test(p)).length;
  const pending = prompts.filter(p => p.includes('*')).length;
"""
# the notebook's own kernel started and idle (before it connects the page shows "No Kernel"
# and an idle indicator; Run All then would ask which kernel to start)
_IDLE = "status === 'idle' && kernel !== '' && !/no kernel/i.test(kernel) && prompts.length > 1"
_STARTED = "pending > 0 || numbered > 0"
# finished: idle, nothing pending, and every cell run (or one failed, which stops Run All)
_FINISHED = "status === 'idle' && pending === 0 && (numbered === prompts.length || errors > 0)"


def _wait_for(page, condition: str, timeout: float, what: str) -> None:
    """Wait until ``condition`` holds in the page (polled by the browser, with a deadline)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"() => {{ {_STATE_JS} return {condition}; }}", timeout=timeout * 1000, polling=250
        )
    except PlaywrightTimeout:
        state = page.evaluate(
            f"() => {{ {_STATE_JS} return {{status, kernel, prompts, errors}}; }}"
        )
        raise TimeoutError(f"{what}: not reached in {timeout}s; last state: {state}") from None


def _open_notebook(browser, lab: Lab, notebook: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(UI_TIMEOUT * 1000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(lab.tree(notebook), wait_until="domcontentloaded")
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for()
    _wait_for(page, _IDLE, UI_TIMEOUT, f"{notebook}: kernel idle")
    return page, problems


def _run_all(page, notebook: str) -> None:
    """Run > Run All Cells, then wait until the kernel is idle and no cell is pending."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
    page.locator(".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Run All Cells'))").click()
    _wait_for(page, _STARTED, UI_TIMEOUT, f"{notebook}: execution started")
    _wait_for(page, _FINISHED, RUN_TIMEOUT, f"{notebook}: all cells run")


def _prompts(page) -> list[str]:
    return page.evaluate(f"() => {{ {_STATE_JS} return prompts; }}")


def _assert_no_errors(page, lab: Lab, notebook: str) -> None:
    errors = page.locator('.jp-NotebookPanel [data-mime-type="application/vnd.jupyter.error"]')
    stderr = page.locator('.jp-NotebookPanel [data-mime-type="application/vnd.jupyter.stderr"]')
    tracebacks = [t for t in stderr.all_inner_texts() if "Traceback" in t]
    assert errors.count() == 0 and not tracebacks, (
        f"{notebook}: error output in JupyterLab:\n"
        + "\n---\n".join([*errors.all_inner_texts(), *tracebacks])[:6000]
        + f"\n--- server log ---\n{lab.tail()}"
    )


_ROX = re.compile(r"ROX (-?[\d.]+) \(95% interval")


def _rox(out) -> float:
    m = _ROX.search(out.inner_text())
    assert m, f"no ROX figure in the controls' output: {out.inner_text()!r}"
    return float(m.group(1))


def test_business_case_runs_and_its_controls_work_in_jupyterlab(lab, browser):
    page, problems = _open_notebook(browser, lab, "07_rox_business_case.ipynb")
    try:
        _run_all(page, "07")
        _assert_no_errors(page, lab, "07")
        prompts = _prompts(page)
        assert all(re.search(r"\[\d+\]", p) for p in prompts), prompts
        assert problems == [], problems

        # the controls: rendered by the widget manager (not "Loading widget..." or a repr)
        nb = page.locator(".jp-NotebookPanel")
        sliders = nb.locator(".jupyter-widgets.widget-slider")
        sliders.first.wait_for()
        assert sliders.count() == 2, sliders.count()
        assert nb.locator(".jupyter-widgets.widget-dropdown select").count() == 1
        cost = nb.locator(".widget-text", has=page.locator(".widget-label", has_text="Cost"))
        cost_input = cost.locator("input")
        assert cost_input.count() == 1
        out = nb.locator(".widget-output", has_text="ROX")
        out.first.wait_for()
        before = _rox(out.first)

        # double the investment: the figure is recomputed with it
        base_cost = float(cost_input.input_value())
        assert base_cost > 0
        cost_input.fill(f"{2 * base_cost:g}")
        cost_input.press("Enter")
        page.wait_for_function(
            """([sel, before]) => {
                const el = document.querySelector(sel);
                const m = el && el.innerText.match(/ROX (-?[\\d.]+) \\(95% interval/);
                return m && parseFloat(m[1]) !== before;
            }""",
            arg=[".jp-NotebookPanel .widget-output", before],
            timeout=UI_TIMEOUT * 1000,
        )
        after = _rox(out.first)
        assert after < before, (before, after)
        assert after == pytest.approx(before / 2, rel=0.1, abs=0.02), (before, after)
        _assert_no_errors(page, lab, "07 after the change")
        assert problems == [], problems
    finally:
        page.close()
        lab.shutdown_kernels()


@pytest.mark.parametrize("notebook", ["02_behavioural_segmentation.ipynb"])
def test_a_lighter_step_runs_without_errors_in_jupyterlab(lab, browser, notebook):
    page, problems = _open_notebook(browser, lab, notebook)
    try:
        _run_all(page, notebook)
        _assert_no_errors(page, lab, notebook)
        prompts = _prompts(page)
        assert all(re.search(r"\[\d+\]", p) for p in prompts), prompts
        assert problems == [], problems
    finally:
        page.close()
        lab.shutdown_kernels()
