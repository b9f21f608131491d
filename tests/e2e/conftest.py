"""Real-browser tests: Playwright drives Debian's chromium against ``streamlit run`` on a free port.

Skipped with a clear reason only when no browser is installed and CI is not set; in CI a missing browser is a
failure. Screenshots go to ``test-artifacts/`` (override with STUDIO_TEST_ARTIFACTS).
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
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", ROOT / "test-artifacts"))


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


@pytest.fixture(scope="module")
def app_server(tmp_path_factory) -> Iterator[AppServer]:
    proc, server = start_app(tmp_path_factory.mktemp("app"))
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
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
    if report.when == "call" and report.failed and "page" in item.funcargs:
        try:  # what the browser showed when the test failed: the first thing to look at
            screenshot(item.funcargs["page"], f"FAILED-{item.name}", wait=False)
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
    """Wait until Streamlit has finished the current script run (its running indicator is gone)."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)


def screenshot(page, name: str, *, wait: bool = True) -> Path:
    if wait:
        wait_idle(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
