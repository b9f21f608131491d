"""Schema migrations: the app and the CLI upgrade to head on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from studio_core.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def head_revision(db: Database) -> str:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to this version of the app."""


def upgrade_to_head(db: Database) -> tuple[str | None, str]:
    """Upgrade the schema; returns (revision before, revision after). The upgrade runs in one transaction
    (PostgreSQL and SQLite both have transactional DDL), so a failure leaves the database as it was."""
    before = current_revision(db)
    script = ScriptDirectory.from_config(alembic_config(db))
    if before is not None and not _known(script, before):
        raise SchemaError(
            f"The database is at schema revision {before!r}, which this version of Studio does not know "
            f"(it knows up to {script.get_current_head()!r}). It was probably upgraded by a newer Studio: "
            "run that version, or restore a backup.")
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision(db)
