"""AppTest helpers: the real entry script on a fresh SQLite data directory per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from studio_core.db import Database

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 60


@pytest.fixture
def app_env(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "data"
    for name in ("STUDIO_DATABASE_URL", "STUDIO_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(data))
    for port, value in (("ENHANCER", "local"), ("GENERATOR", "local"), ("STORAGE", "local"),
                        ("PAYMENTS", "sandbox")):
        monkeypatch.setenv(f"STUDIO_{port}", value)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return data


def new_app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=RUN_TIMEOUT)


def run(at: AppTest) -> AppTest:
    at.run(timeout=RUN_TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def sign_up(at: AppTest, email: str, name: str, password: str = "Correct-Horse-42", referral: str = ""
            ) -> AppTest:
    at.text_input(key="sign_up_email").input(email)
    at.text_input(key="sign_up_name").input(name)
    at.text_input(key="sign_up_password").input(password)
    at.text_input(key="sign_up_confirm").input(password)
    at.text_input(key="sign_up_referral").input(referral)
    at.button(key="sign_up_submit").click()
    return run(at)


def sign_in(at: AppTest, email: str, password: str = "Correct-Horse-42") -> AppTest:
    at.text_input(key="sign_in_email").input(email)
    at.text_input(key="sign_in_password").input(password)
    at.button(key="sign_in_submit").click()
    return run(at)


def texts(at: AppTest) -> str:
    """Everything the page shows as text, for 'the user sees X' assertions."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "error", "success", "warning",
                 "info", "code"):
        parts += [str(el.value) for el in getattr(at, kind)]
    for el in at.sidebar.text:
        parts.append(str(el.value))
    return "\n".join(parts)


@contextmanager
def app_on_postgresql(monkeypatch, url: str) -> Iterator[list]:
    """Point the app under test at PostgreSQL ``url`` (the test database, or a proxy in front of it) with an
    empty schema that the app migrates itself, as on a first start. Yields the Studio objects built meanwhile
    (by the app and by tests/app/_community.backend) and disposes of them afterwards."""
    from studio_core import bootstrap
    from studio_core.ui import session as ui_session
    from tests.app import _community
    from tests.conftest import PG_URL, reset_pg_schema_flag

    built: list[bootstrap.Studio] = []

    def tracked(settings, **kwargs):
        built.append(bootstrap.build_studio(settings, **kwargs))
        return built[-1]

    monkeypatch.setattr(ui_session, "build_studio", tracked)
    monkeypatch.setattr(_community, "build_studio", tracked)
    db = Database(PG_URL)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.dispose()
    reset_pg_schema_flag()  # the shared schema of tests/conftest.py is gone
    monkeypatch.setenv("STUDIO_DATABASE_URL", url)
    ui_session._build.clear()  # maybe the same URL as an earlier test: build (and migrate) anew
    try:
        yield built
        assert built and {s.db.engine.dialect.name for s in built} == {"postgresql"}
    finally:
        ui_session._build.clear()
        for studio in built:
            if "jobs" in studio.__dict__:
                studio.jobs.shutdown(wait=False)
            studio.db.dispose()


def use_replicate(monkeypatch, replicate, **settings) -> None:
    """The app under test generates through the real replicate client against ``replicate`` (a FakeReplicate);
    ``settings`` are further STUDIO_* values by their lower-case names."""
    monkeypatch.setenv("STUDIO_GENERATOR", "replicate")
    monkeypatch.setenv("STUDIO_REPLICATE_API_TOKEN", replicate.api_token)
    monkeypatch.setenv("STUDIO_REPLICATE_BASE_URL", replicate.url)
    for name, value in settings.items():
        monkeypatch.setenv(f"STUDIO_{name.upper()}", str(value))


@pytest.fixture
def deferred_downloads(monkeypatch) -> Iterator[list[Callable[[], object]]]:
    """The data callables the page hands to deferred st.download_button (what a click would download)."""
    seen: list[Callable[[], object]] = []
    original = MediaFileManager.add_deferred

    def spy(self, data_callable, *args, **kwargs):
        seen.append(data_callable)
        return original(self, data_callable, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    yield seen
