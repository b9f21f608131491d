"""The full-text side indexes and the Top-of-window index: the migration builds exactly what the models'
create_all builds (alembic cannot compare these), and the triggers keep the indexes in step with the rows."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text

from studio_core.db import Database
from studio_core.migrate import upgrade_to_head
from studio_core.models import Base, CommunityPost, is_fulltext_object
from studio_core.services.community import FeedQuery
from tests.conftest import DB_PARAMS, PG_URL, reset_pg_schema_flag

_SQLITE_OBJECTS = "SELECT type, name, sql FROM sqlite_master WHERE name LIKE '%fts%' OR name LIKE '%top_day%'"
_PG_OBJECTS = """
    SELECT 'table', tablename, '' FROM pg_tables
        WHERE schemaname = current_schema() AND tablename LIKE '%%fts%%'
    UNION ALL SELECT 'index', indexname, indexdef FROM pg_indexes
        WHERE schemaname = current_schema() AND (indexname LIKE '%%fts%%' OR indexname LIKE '%%top_day%%')
    UNION ALL SELECT 'trigger', t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = current_schema()::regnamespace AND t.tgname LIKE '%%fts%%'
    UNION ALL SELECT 'function', proname, prosrc FROM pg_proc
        WHERE pronamespace = current_schema()::regnamespace AND proname LIKE '%%fts%%'
"""


def _objects(db: Database) -> set[tuple[str, str, str]]:
    query = _SQLITE_OBJECTS if db.is_sqlite else _PG_OBJECTS
    with db.engine.connect() as conn:
        # normalise the whitespace alembic's op.execute and SQLAlchemy's DDL may differ in
        return {(t, n, " ".join((sql or "").split())) for t, n, sql in conn.exec_driver_sql(query)}


def _empty(kind: str, tmp_path, name: str) -> Database:
    if kind == "sqlite":
        return Database(f"sqlite:///{tmp_path / name}")
    db = Database(PG_URL)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    reset_pg_schema_flag()
    return db


@pytest.mark.parametrize("kind", DB_PARAMS)
def test_the_migration_builds_the_same_search_objects_as_the_models(kind, tmp_path):
    migrated = _empty(kind, tmp_path, "migrated.db")
    upgrade_to_head(migrated)
    from_migration = _objects(migrated)
    migrated.dispose()
    created = _empty(kind, tmp_path, "created.db")
    Base.metadata.create_all(created.engine)
    from_models = _objects(created)
    names = {n for _, n, _ in from_models}
    assert {"generated_images_fts", "community_posts_fts", "ix_community_posts_top_day"} <= names
    assert all(is_fulltext_object(n) or n == "ix_community_posts_top_day" for n in names)
    assert from_migration == from_models
    Base.metadata.drop_all(created.engine)  # drop_all takes the search objects too
    assert _objects(created) == set()
    created.dispose()


def test_search_follows_titles_and_deleted_rows(world):
    post = world.post(world.ada, "Lantern", prompt="paper lantern festival")
    search = lambda words: [p.id for p in world.community.feed(world.bob.id, FeedQuery(text=words)).items]  # noqa: E731
    assert search("lantern festival") == [post.id]
    world.community.publish(world.ada.id, post.image_id, "Lights")
    assert search("lights") == [post.id] and search("festival") == [post.id]
    with world.db.write() as s:  # a hard delete (no service does one; the index must not keep a ghost)
        s.execute(delete(CommunityPost).where(CommunityPost.id == post.id))
    with world.db.read() as s:
        table, key = ("community_posts_fts", "rowid") if world.db.is_sqlite else ("community_posts_fts", "post_id")
        assert s.execute(text(f"SELECT count(*) FROM {table} WHERE {key} = :id"), {"id": post.id}).scalar() == 0
