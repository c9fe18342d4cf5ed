"""The client report in a real browser: headless Chromium (Debian's, through Playwright,
never a downloaded one) loads it with no console errors, no failed requests and no broken
images; a hostile client name is shown as text and never runs."""

from __future__ import annotations

import html.parser
import shutil
from pathlib import Path

import pytest

from conftest import make_tiny
from rox_helpers.pipeline import run_engagement

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<script>alert(1)</script>"


def _chromium_skip_reason() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is not installed (Debian: apt-get install chromium; .ci/run does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (dev extra)"
    return None


needs_browser = pytest.mark.skipif(
    _chromium_skip_reason() is not None, reason=str(_chromium_skip_reason())
)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory) -> Path:
    """report.html of a run of the tiny engagement (the setup step: tables, charts, the
    quarantine), as `rox run` renders it."""
    r = run_engagement(make_tiny(tmp_path_factory.mktemp("browser") / "tiny"), only=["00"])
    assert r.report is not None and r.report.is_file()
    return r.report


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


def _open(browser, path: Path) -> dict:
    """Load a file in a fresh page and collect what went wrong while it loaded."""
    page = browser.new_page()
    seen: dict = {"console": [], "failed": [], "http": [], "dialogs": [], "errors": []}
    page.on("console", lambda m: m.type == "error" and seen["console"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("requestfailed", lambda r: seen["failed"].append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and seen["http"].append(f"{r.status} {r.url}"))

    def _dialog(d):
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", _dialog)
    page.goto(path.resolve().as_uri(), wait_until="load")
    seen["page"] = page
    return seen


@needs_browser
def test_report_loads_cleanly_in_chromium(tiny_report, browser):
    seen = _open(browser, tiny_report)
    page = seen.pop("page")
    try:
        assert seen["console"] == [] and seen["errors"] == [], seen
        assert seen["failed"] == [] and seen["http"] == [], seen
        imgs = page.eval_on_selector_all(
            "img",
            "els => els.map(e => ({src: e.src.slice(0, 40), ok: e.complete && e.naturalWidth > 0}))",
        )
        assert imgs, "the report has no images (the setup step draws charts)"
        broken = [i["src"] for i in imgs if not i["ok"]]
        assert broken == [], broken
        assert all(i["src"].startswith("data:image/") for i in imgs)  # embedded, offline
        assert "Tiny Hotels" in page.inner_text("body")
    finally:
        page.close()


def _scripts_with(text: str, document: str) -> list[str]:
    """The contents of every <script> element of an HTML document that contain ``text``."""

    class P(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.found = False, []

        def handle_starttag(self, tag, attrs):
            self.inside = tag == "script"
            if self.inside:
                self.found.append("")

        def handle_endtag(self, tag):
            self.inside = False if tag == "script" else self.inside

        def handle_data(self, data):
            if self.inside:
                self.found[-1] += data

    p = P()
    p.feed(document)
    return [s for s in p.found if text in s]


@pytest.fixture(scope="module")
def hostile_report(tiny_report, tmp_path_factory) -> Path:
    """The tiny run's report rendered again for a client named ``<script>alert(1)</script>``
    (the engagement copied, so the shared run is untouched)."""
    from rox_helpers.config import load_engagement_config
    from rox_helpers.pipeline import render_run

    run_dir = tiny_report.parent
    root = tmp_path_factory.mktemp("hostile") / "tiny"
    shutil.copytree(run_dir.parent.parent, root)
    cfg = load_engagement_config(root)
    cfg.client.name = HOSTILE
    return render_run(root / "runs" / run_dir.name, root, config=cfg)


def test_hostile_client_name_is_escaped_in_the_html(hostile_report):
    text = hostile_report.read_text()
    assert _scripts_with("alert(1)", text) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


@needs_browser
def test_hostile_client_name_renders_as_text_and_never_runs(hostile_report, browser):
    seen = _open(browser, hostile_report)
    page = seen.pop("page")
    try:
        assert seen["dialogs"] == [], "a script from the client name ran"
        scripts = page.eval_on_selector_all("script", "els => els.map(e => e.textContent)")
        assert not [s for s in scripts if "alert(1)" in s]
        assert HOSTILE in page.inner_text("header")  # shown to the reader, as typed
        assert HOSTILE in page.title()
        assert seen["console"] == [] and seen["errors"] == [], seen
    finally:
        page.close()
