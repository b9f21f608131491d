"""Shared fixtures.

``database`` runs a test on a fresh SQLite file and, when ``STUDIO_TEST_DATABASE_URL`` is set (CI always sets
it), again on PostgreSQL. PostgreSQL tests share one schema built once per session and emptied before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from studio_core.config import Settings, load_settings
from studio_core.db import Database
from studio_core.models import Base

PG_URL = os.environ.get("STUDIO_TEST_DATABASE_URL")
IN_CI = bool(os.environ.get("CI"))

DB_PARAMS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres: runs against STUDIO_TEST_DATABASE_URL")


def pytest_collection_modifyitems(config, items):
    if PG_URL:
        return
    reason = "STUDIO_TEST_DATABASE_URL is not set (CI sets it; see README)"
    if IN_CI:
        raise pytest.UsageError("CI must set STUDIO_TEST_DATABASE_URL so the PostgreSQL tests run")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_sessionfinish(session, exitstatus):
    """In CI a run can never pass vacuously: no tests, or skipped ones (a missing browser or PostgreSQL), fail."""
    if not IN_CI or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter else {}
    passed, skipped = len(stats.get("passed", [])), len(stats.get("skipped", []))
    if passed == 0 or skipped:
        reasons = sorted({str(r.longrepr[-1]) for r in stats.get("skipped", []) if r.longrepr})
        print(f"\nCI: {passed} passed, {skipped} skipped; a CI run must run every test. {reasons}")
        session.exitstatus = 1


_pg_ready = False


def _fresh_pg() -> Database:
    global _pg_ready
    db = Database(PG_URL)
    if not _pg_ready:
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        Base.metadata.create_all(db.engine)
        _pg_ready = True
    else:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return db


def reset_pg_schema_flag() -> None:
    """For tests that drop the shared PostgreSQL schema (migration tests)."""
    global _pg_ready
    _pg_ready = False


@pytest.fixture(params=DB_PARAMS)
def database(request, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'test.db'}")
        Base.metadata.create_all(db.engine)
    else:
        db = _fresh_pg()
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Development settings on local providers, isolated from the developer's env and .env."""
    return load_settings(_env_file=None, data_dir=tmp_path / "data", environment="development",
                         enhancer="local", generator="local", storage="local", payments="sandbox")
