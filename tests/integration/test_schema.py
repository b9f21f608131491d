"""The schema enforces its own rules (on SQLite and PostgreSQL), and migrations build exactly the models."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from studio_core.db import Database
from studio_core.migrate import SchemaError, alembic_config, current_revision, head_revision, upgrade_to_head
from studio_core.models import (
    Base,
    CommunityPost,
    CreditAccount,
    CreditHold,
    CreditLedgerEntry,
    GeneratedImage,
    ImageCategory,
    ImageTemplate,
    PostLike,
    PostReport,
    User,
    is_fulltext_object,
    utcnow,
)
from tests.conftest import DB_PARAMS, PG_URL, reset_pg_schema_flag


def _user(s, n: int, **kw) -> User:
    u = User(email=f"u{n}@example.com", display_name=f"U{n}", password_hash="x", referral_code=f"CODE{n}",
             **kw)
    s.add(u)
    s.flush()
    return u


def _image(s, owner: User, key: str) -> GeneratedImage:
    img = GeneratedImage(owner_id=owner.id, request_key=key, prompt="p", final_prompt="p", tier="standard",
                         width=512, height=512, seed=1, provider="local")
    s.add(img)
    s.flush()
    return img


def _violates(database: Database, build) -> None:
    with pytest.raises(IntegrityError), database.write() as s:
        build(s)


def test_unique_email_and_referral_code(database):
    with database.write() as s:
        _user(s, 1)
    _violates(database, lambda s: s.add(User(email="u1@example.com", display_name="x", password_hash="x",
                                             referral_code="OTHER")) or s.flush())
    _violates(database, lambda s: s.add(User(email="new@example.com", display_name="x", password_hash="x",
                                             referral_code="CODE1")) or s.flush())


def test_role_and_credential_checks(database):
    _violates(database, lambda s: _user(s, 2, role="superuser"))
    _violates(database, lambda s: s.add(User(email="a@b.co", display_name="x", referral_code="Z",
                                             password_hash=None, oidc_subject=None)) or s.flush())


def test_balances_never_negative_and_reserved_covered(database):
    with database.write() as s:
        u = _user(s, 1)
        s.add(CreditAccount(user_id=u.id, allowance_balance=5, paid_balance=3))
    for values in ({"allowance_balance": -1}, {"paid_balance": -1}, {"reserved_allowance": 6},
                   {"reserved_paid": 4}, {"reserved_paid": -1}):
        with pytest.raises(IntegrityError), database.write() as s:
            acct = s.get(CreditAccount, u.id)
            for k, v in values.items():
                setattr(acct, k, v)
            s.flush()
    with database.read() as s:
        acct = s.get(CreditAccount, u.id)
        assert (acct.allowance_balance, acct.paid_balance, acct.reserved) == (5, 3, 0)


def test_ledger_entries_are_non_zero_and_keys_unique(database):
    with database.write() as s:
        u = _user(s, 1)
        s.add(CreditAccount(user_id=u.id))
        s.flush()
        s.add(CreditLedgerEntry(user_id=u.id, bucket="paid", amount=10, kind="purchase", idempotency_key="k1"))
    _violates(database, lambda s: s.add(CreditLedgerEntry(user_id=u.id, bucket="paid", amount=0,
                                                          kind="purchase", idempotency_key="k2")) or s.flush())
    _violates(database, lambda s: s.add(CreditLedgerEntry(user_id=u.id, bucket="paid", amount=1,
                                                          kind="purchase", idempotency_key="k1")) or s.flush())
    _violates(database, lambda s: s.add(CreditLedgerEntry(user_id=u.id, bucket="gold", amount=1,
                                                          kind="purchase", idempotency_key="k3")) or s.flush())
    _violates(database, lambda s: s.add(CreditHold(user_id=u.id, amount_allowance=0, amount_paid=0,
                                                   idempotency_key="h", request_hash="x",
                                                   expires_at=utcnow() + timedelta(minutes=5))) or s.flush())


def test_money_rows_restrict_deleting_their_user(database):
    with database.write() as s:
        u = _user(s, 1)
        s.add(CreditAccount(user_id=u.id))
    with pytest.raises(IntegrityError), database.write() as s:
        s.execute(text("DELETE FROM users WHERE id = :id"), {"id": u.id})


def test_one_like_and_one_report_per_user_and_post(database):
    with database.write() as s:
        a, b = _user(s, 1), _user(s, 2)
        post = CommunityPost(image_id=_image(s, a, "r1").id, author_id=a.id, title="t")
        s.add(post)
        s.flush()
        s.add(PostLike(post_id=post.id, user_id=b.id))
        s.add(PostReport(post_id=post.id, reporter_id=b.id, reason="spam"))
    _violates(database, lambda s: s.add(PostLike(post_id=post.id, user_id=b.id)) or s.flush())
    _violates(database, lambda s: s.add(PostReport(post_id=post.id, reporter_id=b.id, reason="nsfw"))
              or s.flush())
    _violates(database, lambda s: s.add(PostReport(post_id=post.id, reporter_id=a.id, reason="boring"))
              or s.flush())


def test_request_key_unique_and_job_status_checked(database):
    with database.write() as s:
        a = _user(s, 1)
        _image(s, a, "req-1")
    _violates(database, lambda s: _image(s, a, "req-1"))
    _violates(database, lambda s: setattr(_image(s, a, "req-2"), "status", "exploded") or s.flush())


def test_timestamps_come_back_as_aware_utc(database):
    with database.write() as s:
        u = _user(s, 1)
    with database.read() as s:
        created = s.get(User, u.id).created_at
    assert created.utcoffset() == timedelta(0)


def test_sqlite_pragmas_and_immediate_writes(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    Base.metadata.create_all(db.engine)
    # A write session holds the write lock from BEGIN on (IMMEDIATE), before it has written anything:
    # a second IMMEDIATE writer with no busy wait is refused at once.
    import sqlite3

    with db.write() as s:
        s.execute(text("SELECT 1"))
        other = sqlite3.connect(tmp_path / "p.db", timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    # A read session does not take the write lock.
    with db.read() as s:
        s.execute(text("SELECT 1"))
        other = sqlite3.connect(tmp_path / "p.db", timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()


# -- migrations -----------------------------------------------------------------------------------------------
@pytest.fixture(params=DB_PARAMS)
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    else:
        db = Database(PG_URL)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        reset_pg_schema_flag()  # the shared schema of the `database` fixture is gone now
    yield db
    db.dispose()


def test_migrations_from_empty_to_head_equal_the_models(empty_database):
    before, after = upgrade_to_head(empty_database)
    assert (before, after) == (None, head_revision(empty_database))
    with empty_database.engine.connect() as conn:
        # The full-text side indexes are raw DDL the ORM does not model (see models.fulltext_ddl).
        opts = {"compare_type": True, "include_name": lambda name, *_: not is_fulltext_object(name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert diff == []
    assert upgrade_to_head(empty_database) == (after, after)  # idempotent


def test_migrations_downgrade_to_base_and_up_again(empty_database):
    upgrade_to_head(empty_database)
    cfg = alembic_config(empty_database)
    with empty_database.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert current_revision(empty_database) is None
    upgrade_to_head(empty_database)
    assert current_revision(empty_database) == head_revision(empty_database)


def test_database_from_a_newer_studio_is_refused_clearly(empty_database):
    upgrade_to_head(empty_database)
    with empty_database.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed9999'"))
    with pytest.raises(SchemaError, match="f00dfeed9999.*newer Studio"):
        upgrade_to_head(empty_database)


def test_migration_0005_gives_existing_posts_their_images_template(empty_database):
    cfg = alembic_config(empty_database)
    with empty_database.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        s = Session(bind=conn)  # the tables 0005 leaves alone, through the models
        owner = _user(s, 1)
        category = ImageCategory(name="C", slug="c")
        s.add(category)
        s.flush()
        template = ImageTemplate(category_id=category.id, title="T", prompt_pattern="{subject}")
        s.add(template)
        s.flush()
        with_template, without = _image(s, owner, "k1"), _image(s, owner, "k2")
        with_template.template_id = template.id
        s.flush()
        for image in (with_template, without):  # a post as 0004 had them: no template column yet
            conn.execute(text("INSERT INTO community_posts (image_id, author_id, title, status, like_count, "
                              "report_count, remix_count, created_at) VALUES (:image, :author, 't', 'visible', 0, "
                              "0, 0, CURRENT_TIMESTAMP)"), {"image": image.id, "author": owner.id})
        expected = [(with_template.id, template.id), (without.id, None)]
        s.close()
    upgrade_to_head(empty_database)
    with empty_database.read() as s:
        assert s.execute(text("SELECT image_id, template_id FROM community_posts ORDER BY image_id")).all() == expected
