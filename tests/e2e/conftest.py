"""Real-browser tests: Playwright drives Debian's chromium against ``streamlit run`` on a free port.

Skipped with a clear reason only when no browser is installed and CI is not set; in CI a missing browser is a
failure. Screenshots go to ``test-artifacts/`` (override with STUDIO_TEST_ARTIFACTS).

The helpers at the bottom are the steps every journey shares: sign up / sign in, go to a page, click a control
once a rerun has settled, read the sidebar's balance.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", ROOT / "test-artifacts"))
PASSWORD = "Analytical-Engine-1843"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    url: str
    data_dir: Path
    env: dict[str, str]
    log: Path


def start_app(tmp: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, AppServer]:
    port = _free_port()
    data_dir = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update({"STUDIO_DATA_DIR": str(data_dir), "STUDIO_APP_URL": f"http://127.0.0.1:{port}",
                "STUDIO_ENHANCER": "local", "STUDIO_GENERATOR": "local", "STUDIO_STORAGE": "local",
                "STUDIO_PAYMENTS": "sandbox"})
    env.update(extra_env or {})
    log = tmp / "streamlit.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=tmp, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError(f"streamlit did not become healthy:\n{log.read_text()}")
    return proc, AppServer(url=url, data_dir=data_dir, env=env, log=log)


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def running_app(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[AppServer]:
    """``start_app`` for the length of a with block."""
    proc, server = start_app(tmp, extra_env)
    try:
        yield server
    finally:
        stop_app(proc)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory) -> Iterator[AppServer]:
    with running_app(tmp_path_factory.mktemp("app")) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect

    # Two shared cores: a rerun can take several seconds while other work runs, so wait longer than 5 s.
    expect.set_options(timeout=15_000)
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a browser at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        # what the browser showed when the test failed: the first thing to look at (any page fixture)
        pages = [v for v in item.funcargs.values() if type(v).__name__ == "Page"]
        for i, pg in enumerate(pages):
            try:
                screenshot(pg, f"FAILED-{item.name}" + (f"-{i}" if i else ""), wait=False)
            except Exception:  # noqa: BLE001 - a failed screenshot must not hide the real failure
                pass
    return report


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()


def wait_idle(page) -> None:
    """Wait until Streamlit has finished the current script run: the app says it is not running (set as soon as
    a click asks for a rerun, unlike the running indicator, which shows only after half a second), no element is
    left over from the previous run, and the running indicator is gone."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    expect(page.locator('[data-testid="stElementContainer"][data-stale="true"]')).to_have_count(0)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)


def screenshot(page, name: str, *, wait: bool = True) -> Path:
    if wait:
        wait_idle(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# -- shared steps ----------------------------------------------------------------------------------------------
def new_page(browser, *, width: int = 1400, height: int = 1100):
    """A fresh browser context (its own cookies, so its own Streamlit session) and its page: one person."""
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    return context, pg


def click_once(locator) -> None:
    """Click once the element is unique: during a rerun Streamlit briefly shows the old and the new copy."""
    from playwright.sync_api import expect

    expect(locator).to_have_count(1)
    locator.click()


def card(scope, text: str, *, button: str = "View"):
    """The grid card (bordered container) that shows ``text`` and has a ``button``: the innermost such block,
    which comes last in document order because a block precedes the blocks inside it."""
    root = getattr(scope, "page", scope)  # a filter's inner locator is relative: build it from the page
    return (scope.get_by_test_id("stVerticalBlock").filter(has_text=text)
            .filter(has=root.get_by_role("button", name=button)).last)


def sidebar(page):
    return page.get_by_test_id("stSidebar")


def expect_available(page, credits: int) -> None:
    """The wallet bar in the sidebar (on every page) shows this many credits available."""
    from playwright.sync_api import expect

    expect(sidebar(page).get_by_text(f"{credits:,} available", exact=True)).to_be_visible()


def _sign_up_form(page):
    return page.get_by_test_id("stForm").filter(has=page.get_by_role("textbox", name="Display name"))


def open_sign_up(page, url: str):
    """The sign-up tab of the sign-in screen at ``url`` (which may carry ``?ref=CODE``); returns its form."""
    page.goto(url)
    page.get_by_role("tab", name="Create account").click()
    form = _sign_up_form(page)
    from playwright.sync_api import expect

    expect(form).to_be_visible()
    return form


def sign_up(page, url: str, email: str, name: str, *, password: str = PASSWORD) -> None:
    """Create an account through the sign-up form and wait until the app shell is there."""
    from playwright.sync_api import expect

    form = open_sign_up(page, url)
    form.get_by_role("textbox", name="Email").fill(email)
    form.get_by_role("textbox", name="Display name").fill(name)
    form.get_by_role("textbox", name="Password", exact=True).fill(password)
    form.get_by_role("textbox", name="Repeat password").fill(password)
    form.get_by_role("button", name="Create account").click()
    expect(page.get_by_text(f"Welcome to Studio, {name}!")).to_be_visible()
    wait_idle(page)


def sign_in(page, url: str, email: str, *, password: str = PASSWORD) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Sign in"))
    form.get_by_role("textbox", name="Email").fill(email)
    form.get_by_role("textbox", name="Password", exact=True).fill(password)
    form.get_by_role("button", name="Sign in").click()
    expect(sidebar(page).get_by_role("button", name="Sign out")).to_be_visible()
    wait_idle(page)


def go(page, link: str, heading: str | None = None) -> None:
    """Open a page from the sidebar's navigation and wait for its title."""
    import re

    from playwright.sync_api import expect

    nav = sidebar(page)
    more = nav.get_by_role("button", name=re.compile(r"View \d+ more"))
    if more.count():  # a long page list is folded after the first few entries
        more.click()
    # "Moderation" also finds "Moderation (3)": the count of open reports is part of the link's name
    nav.get_by_role("link", name=re.compile(rf"^{re.escape(link)}( \(\d+\))?$")).click()
    expect(page.get_by_role("heading", name=heading or link, exact=True)).to_be_visible()
    wait_idle(page)
