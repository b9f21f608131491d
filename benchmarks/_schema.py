"""Shared by the benchmarks: a PostgreSQL schema of their own, so a run never touches the public one."""

from __future__ import annotations

from sqlalchemy import text

from studio_core.db import Database


def _admin(url: str, statement: str) -> None:
    admin = Database(url)
    try:
        with admin.engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


def schema_database(url: str, schema: str, *, fresh: bool) -> Database:
    """A Database whose every connection works in ``schema`` (created; emptied first when ``fresh``)."""
    if fresh:
        drop_schema(url, schema)
    _admin(url, f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return Database(url, schema=schema)


def drop_schema(url: str, schema: str) -> None:
    _admin(url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
