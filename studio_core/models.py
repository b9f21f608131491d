"""SQLAlchemy 2.0 typed models. Constraints live in the schema, not only in services.

Money is integers (credits). Timestamps are UTC (stored naive-UTC, returned aware). Anything that money points
at is ``ON DELETE RESTRICT``. Enumerations are strings with CHECK constraints (portable, migration-friendly).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    func,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python; naive UTC in the database (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


ROLES = ("creator", "admin")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "canceled")
# "unpublished": taken down by its author; the row stays for its likes, reports and moderation history.
POST_STATUSES = ("visible", "hidden", "removed", "unpublished")
REPORT_REASONS = ("spam", "nsfw", "hateful", "copyright", "other")
REPORT_STATUSES = ("open", "actioned", "dismissed")
HOLD_STATUSES = ("pending", "posted", "voided", "expired")
BUCKETS = ("allowance", "paid")
LEDGER_KINDS = ("allowance_grant", "allowance_expiry", "purchase", "referral_bonus", "signup_bonus",
                "generation", "refund", "admin_adjustment")
PURCHASE_STATUSES = ("created", "paid", "failed", "canceled")
REFERRAL_STATUSES = ("pending", "rewarded", "refused")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),
                      CheckConstraint("password_hash IS NOT NULL OR oidc_subject IS NOT NULL",
                                      name="has_credential"))

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="creator")
    referral_code: Mapped[str] = mapped_column(String(16), unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginThrottle(Base):
    """Failed sign-ins per email, in the database so every replica sees the same count."""

    __tablename__ = "login_throttle"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    first_failure_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]


class ImageCategory(Base):
    __tablename__ = "image_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ImageTemplate(Base):
    __tablename__ = "image_templates"
    __table_args__ = (Index("ix_image_templates_category_active", "category_id", "active", "sort_order"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("image_categories.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(120))
    prompt_pattern: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    style_notes: Mapped[str] = mapped_column(Text, default="")
    default_tier: Mapped[str] = mapped_column(String(32), default="standard")
    example_image_id: Mapped[int | None] = mapped_column(
        ForeignKey("generated_images.id", ondelete="SET NULL", use_alter=True))
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    use_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GeneratedImage(Base):
    __tablename__ = "generated_images"
    __table_args__ = (
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        CheckConstraint("cost >= 0", name="cost_non_negative"),
        CheckConstraint("width > 0 AND height > 0", name="size_positive"),
        Index("ix_generated_images_owner_created", "owner_id", "created_at", "id"),
        # My Creations counts and pages a user's live images on every run (migration 0006)
        # (deleted_at, always NULL here, is in it so the count reads the index alone)
        Index("ix_generated_images_owner_live", "owner_id", "created_at", "id", "deleted_at",
              sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL")),
        Index("ix_generated_images_status_lease", "status", "lease_expires_at"),
        Index("ix_generated_images_created", "created_at"),
        # Latency percentiles per provider and tier walk this index in latency order (services/analytics.py).
        Index("ix_generated_images_latency", "status", "provider", "tier", "latency_ms", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    request_key: Mapped[str] = mapped_column(String(80), unique=True)
    prompt: Mapped[str] = mapped_column(Text)
    enhanced_prompt: Mapped[str | None] = mapped_column(Text)
    final_prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    template_id: Mapped[int | None] = mapped_column(ForeignKey("image_templates.id", ondelete="RESTRICT"),
                                                    index=True)
    remixed_from_id: Mapped[int | None] = mapped_column(ForeignKey("generated_images.id",
                                                                   ondelete="SET NULL"))
    tier: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    seed: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str] = mapped_column(String(200), default="")
    provider_job_id: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    image_key: Mapped[str | None] = mapped_column(String(300))
    thumbnail_key: Mapped[str | None] = mapped_column(String(300))
    bytes: Mapped[int | None]
    cost: Mapped[int] = mapped_column(default=0)
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("credit_holds.id", ondelete="RESTRICT"))
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    # created -> finished in milliseconds (what the user waited), written by the update that ends the job
    latency_ms: Mapped[int | None]


class AnalyticsDailyGenerations(Base):
    """Ended generations per UTC day of their request, tier, status, provider and error code ('' for none): a
    rollup kept by ``services.analytics.count_ended_generations`` in the transaction that ends each job."""

    __tablename__ = "analytics_daily_generations"
    __table_args__ = (CheckConstraint("n > 0", name="n_positive"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    error_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    n: Mapped[int]


class AnalyticsDailyGenerationSources(Base):
    """Ended generations per UTC day of their request, template (0 for none), status and whether the prompt was
    an enhanced one: the same rollup's other cut (template performance, the enhancement funnel), kept by the
    same function."""

    __tablename__ = "analytics_daily_generation_sources"
    __table_args__ = (CheckConstraint("n > 0", name="n_positive"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    template_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    enhanced: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int]


class CommunityPost(Base):
    __tablename__ = "community_posts"
    __table_args__ = (
        CheckConstraint(_in("status", POST_STATUSES), name="status"),
        CheckConstraint("like_count >= 0 AND report_count >= 0 AND remix_count >= 0", name="counts"),
        Index("ix_community_posts_feed_new", "status", "created_at", "id"),
        Index("ix_community_posts_feed_top", "status", "like_count", "id"),
        Index("ix_community_posts_feed_remix", "status", "remix_count", "id"),
        Index("ix_community_posts_category", "category_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("generated_images.id", ondelete="RESTRICT"), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("image_categories.id", ondelete="RESTRICT"))
    # The image's template, copied when the post is made (an image's template never changes): the catalog
    # counts publishes and likes per template from the posts alone, not one image look-up per post.
    template_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="visible")
    like_count: Mapped[int] = mapped_column(default=0)
    report_count: Mapped[int] = mapped_column(default=0)
    remix_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Top of a time window (day / week / month) merges one index range per UTC day, each already in like order, so a
# page costs O(days x page size) however many posts the window holds (see services/community.py).
Index("ix_community_posts_top_day", CommunityPost.status, func.date(CommunityPost.created_at),
      CommunityPost.like_count, CommunityPost.id)


# -- Full-text search ----------------------------------------------------------------------------------------
# Prompts and post titles are searched through side indexes named "<table>_fts", kept current by triggers, so
# every writer (the generation worker, publishing, retitling) updates them in its own transaction.
#   SQLite: FTS5 virtual tables whose rowid is the indexed row's id (owner is a token, "u42", so one user's
#           search intersects two posting lists instead of filtering everyone's matches).
#   PostgreSQL: one tsvector per row ('simple' configuration: lower-cased words, no stemming, like unicode61)
#           in a table with a GIN index; the foreign key cascades deletes and TRUNCATE ... CASCADE.
# Alembic can model neither, so they are raw DDL here (run after create_all) and, frozen, in the migration;
# the schema comparison in tests/integration/test_schema.py skips these names (``is_fulltext_object``).
FULLTEXT_TABLES = ("generated_images_fts", "community_posts_fts")

_SQLITE_FULLTEXT = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS generated_images_fts USING fts5("
    "owner, prompt, final_prompt, tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS generated_images_fts_insert AFTER INSERT ON generated_images BEGIN "
    "INSERT INTO generated_images_fts (rowid, owner, prompt, final_prompt) "
    "VALUES (new.id, 'u' || new.owner_id, new.prompt, new.final_prompt); END",
    "CREATE TRIGGER IF NOT EXISTS generated_images_fts_update AFTER UPDATE OF owner_id, prompt, final_prompt "
    "ON generated_images BEGIN "
    "UPDATE generated_images_fts SET owner = 'u' || new.owner_id, prompt = new.prompt, "
    "final_prompt = new.final_prompt WHERE rowid = new.id; END",
    "CREATE TRIGGER IF NOT EXISTS generated_images_fts_delete AFTER DELETE ON generated_images BEGIN "
    "DELETE FROM generated_images_fts WHERE rowid = old.id; END",
    "INSERT INTO generated_images_fts (rowid, owner, prompt, final_prompt) "
    "SELECT id, 'u' || owner_id, prompt, final_prompt FROM generated_images "
    "WHERE id NOT IN (SELECT rowid FROM generated_images_fts)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS community_posts_fts USING fts5("
    "title, prompt, tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS community_posts_fts_insert AFTER INSERT ON community_posts BEGIN "
    "INSERT INTO community_posts_fts (rowid, title, prompt) "
    "SELECT new.id, new.title, g.prompt || ' ' || g.final_prompt FROM generated_images g "
    "WHERE g.id = new.image_id; END",
    "CREATE TRIGGER IF NOT EXISTS community_posts_fts_update AFTER UPDATE OF title, image_id "
    "ON community_posts BEGIN "
    "UPDATE community_posts_fts SET title = new.title, prompt = (SELECT g.prompt || ' ' || g.final_prompt "
    "FROM generated_images g WHERE g.id = new.image_id) WHERE rowid = new.id; END",
    "CREATE TRIGGER IF NOT EXISTS community_posts_fts_delete AFTER DELETE ON community_posts BEGIN "
    "DELETE FROM community_posts_fts WHERE rowid = old.id; END",
    "INSERT INTO community_posts_fts (rowid, title, prompt) "
    "SELECT p.id, p.title, g.prompt || ' ' || g.final_prompt FROM community_posts p "
    "JOIN generated_images g ON g.id = p.image_id WHERE p.id NOT IN (SELECT rowid FROM community_posts_fts)",
)
_SQLITE_FULLTEXT_DROP = (
    "DROP TRIGGER IF EXISTS community_posts_fts_delete",
    "DROP TRIGGER IF EXISTS community_posts_fts_update",
    "DROP TRIGGER IF EXISTS community_posts_fts_insert",
    "DROP TABLE IF EXISTS community_posts_fts",
    "DROP TRIGGER IF EXISTS generated_images_fts_delete",
    "DROP TRIGGER IF EXISTS generated_images_fts_update",
    "DROP TRIGGER IF EXISTS generated_images_fts_insert",
    "DROP TABLE IF EXISTS generated_images_fts",
)
_PG_FULLTEXT = (
    "CREATE TABLE IF NOT EXISTS generated_images_fts ("
    "image_id INTEGER PRIMARY KEY REFERENCES generated_images (id) ON DELETE CASCADE, "
    "document TSVECTOR NOT NULL)",
    "CREATE INDEX IF NOT EXISTS generated_images_fts_document ON generated_images_fts USING gin (document)",
    "CREATE OR REPLACE FUNCTION generated_images_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO generated_images_fts (image_id, document) "
    "VALUES (NEW.id, to_tsvector('simple', NEW.prompt || ' ' || NEW.final_prompt)) "
    "ON CONFLICT (image_id) DO UPDATE SET document = EXCLUDED.document; RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER generated_images_fts_sync AFTER INSERT OR UPDATE OF prompt, final_prompt "
    "ON generated_images FOR EACH ROW EXECUTE FUNCTION generated_images_fts_sync()",
    "INSERT INTO generated_images_fts (image_id, document) "
    "SELECT id, to_tsvector('simple', prompt || ' ' || final_prompt) FROM generated_images "
    "ON CONFLICT (image_id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS community_posts_fts ("
    "post_id INTEGER PRIMARY KEY REFERENCES community_posts (id) ON DELETE CASCADE, "
    "document TSVECTOR NOT NULL)",
    "CREATE INDEX IF NOT EXISTS community_posts_fts_document ON community_posts_fts USING gin (document)",
    "CREATE OR REPLACE FUNCTION community_posts_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO community_posts_fts (post_id, document) "
    "SELECT NEW.id, to_tsvector('simple', NEW.title || ' ' || g.prompt || ' ' || g.final_prompt) "
    "FROM generated_images g WHERE g.id = NEW.image_id "
    "ON CONFLICT (post_id) DO UPDATE SET document = EXCLUDED.document; RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER community_posts_fts_sync AFTER INSERT OR UPDATE OF title, image_id "
    "ON community_posts FOR EACH ROW EXECUTE FUNCTION community_posts_fts_sync()",
    "INSERT INTO community_posts_fts (post_id, document) "
    "SELECT p.id, to_tsvector('simple', p.title || ' ' || g.prompt || ' ' || g.final_prompt) "
    "FROM community_posts p JOIN generated_images g ON g.id = p.image_id ON CONFLICT (post_id) DO NOTHING",
)
_PG_FULLTEXT_DROP = (
    "DROP TRIGGER IF EXISTS community_posts_fts_sync ON community_posts",
    "DROP FUNCTION IF EXISTS community_posts_fts_sync()",
    "DROP TABLE IF EXISTS community_posts_fts",
    "DROP TRIGGER IF EXISTS generated_images_fts_sync ON generated_images",
    "DROP FUNCTION IF EXISTS generated_images_fts_sync()",
    "DROP TABLE IF EXISTS generated_images_fts",
)


def fulltext_ddl(dialect: str, *, drop: bool = False) -> tuple[str, ...]:
    """The statements that create (idempotently, backfilling existing rows) or drop the search indexes."""
    if dialect == "sqlite":
        return _SQLITE_FULLTEXT_DROP if drop else _SQLITE_FULLTEXT
    if dialect == "postgresql":
        return _PG_FULLTEXT_DROP if drop else _PG_FULLTEXT
    return ()


def is_fulltext_object(name: str | None) -> bool:
    """True for the search tables, FTS5's shadow tables and their indexes (which the ORM does not model)."""
    return bool(name) and any(name == t or name.startswith(t + "_") for t in FULLTEXT_TABLES)


@event.listens_for(Base.metadata, "after_create")
def _create_fulltext(target, connection, **kw) -> None:
    if {"generated_images", "community_posts"} <= set(inspect(connection).get_table_names()):
        for statement in fulltext_ddl(connection.dialect.name):
            connection.exec_driver_sql(statement)


@event.listens_for(Base.metadata, "before_drop")
def _drop_fulltext(target, connection, **kw) -> None:
    for statement in fulltext_ddl(connection.dialect.name, drop=True):
        connection.exec_driver_sql(statement)


class PostLike(Base):
    __tablename__ = "post_likes"
    __table_args__ = (UniqueConstraint("post_id", "user_id"),
                      Index("ix_post_likes_user", "user_id"),
                      Index("ix_post_likes_created", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("community_posts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PostReport(Base):
    __tablename__ = "post_reports"
    __table_args__ = (
        UniqueConstraint("post_id", "reporter_id"),
        CheckConstraint(_in("reason", REPORT_REASONS), name="reason"),
        CheckConstraint(_in("status", REPORT_STATUSES), name="status"),
        Index("ix_post_reports_status_post", "status", "post_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("community_posts.id", ondelete="RESTRICT"))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    reason: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptReuseEvent(Base):
    __tablename__ = "prompt_reuse_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_image_id: Mapped[int] = mapped_column(ForeignKey("generated_images.id", ondelete="RESTRICT"),
                                                 index=True)
    source_post_id: Mapped[int | None] = mapped_column(ForeignKey("community_posts.id", ondelete="SET NULL"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    new_image_id: Mapped[int | None] = mapped_column(ForeignKey("generated_images.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CreditAccount(Base):
    __tablename__ = "credit_accounts"
    __table_args__ = (
        CheckConstraint("allowance_balance >= 0", name="allowance_non_negative"),
        CheckConstraint("paid_balance >= 0", name="paid_non_negative"),
        CheckConstraint("reserved_allowance >= 0 AND reserved_paid >= 0", name="reserved_non_negative"),
        CheckConstraint("reserved_allowance <= allowance_balance", name="reserved_allowance_covered"),
        CheckConstraint("reserved_paid <= paid_balance", name="reserved_paid_covered"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True)
    allowance_balance: Mapped[int] = mapped_column(default=0)
    paid_balance: Mapped[int] = mapped_column(default=0)
    # The reservation is kept per bucket so a hold knows exactly what it took from where.
    reserved_allowance: Mapped[int] = mapped_column(default=0)
    reserved_paid: Mapped[int] = mapped_column(default=0)
    allowance_month: Mapped[str | None] = mapped_column(String(7))  # YYYY-MM of the last allowance grant
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def reserved(self) -> int:
        return self.reserved_allowance + self.reserved_paid


class CreditHold(Base):
    __tablename__ = "credit_holds"
    __table_args__ = (
        CheckConstraint(_in("status", HOLD_STATUSES), name="status"),
        CheckConstraint("amount_allowance >= 0 AND amount_paid >= 0 AND amount_allowance + amount_paid > 0",
                        name="amounts"),
        # the sweeper's question, "which pending holds are due?"; posted and voided ones stay out of it
        Index("ix_credit_holds_pending_expires", "expires_at", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("credit_accounts.user_id", ondelete="RESTRICT"),
                                         index=True)
    amount_allowance: Mapped[int] = mapped_column(default=0)
    amount_paid: Mapped[int] = mapped_column(default=0)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reference: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class CreditLedgerEntry(Base):
    __tablename__ = "credit_ledger"
    __table_args__ = (
        CheckConstraint(_in("bucket", BUCKETS), name="bucket"),
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind"),
        CheckConstraint("amount <> 0", name="amount_non_zero"),
        Index("ix_credit_ledger_user_created", "user_id", "created_at", "id"),
        # amount too: the analytics dashboard's credit flows are read from this index alone
        Index("ix_credit_ledger_kind_created", "kind", "created_at", "amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("credit_accounts.user_id", ondelete="RESTRICT"))
    bucket: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int]
    kind: Mapped[str] = mapped_column(String(24))
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    # not indexed: nothing looks entries up by their hold (the invariant checks scan), and every post would pay
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("credit_holds.id", ondelete="RESTRICT"))
    refund_of_id: Mapped[int | None] = mapped_column(ForeignKey("credit_ledger.id", ondelete="RESTRICT"))
    reference: Mapped[str] = mapped_column(String(200), default="")
    memo: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Purchase(Base):
    __tablename__ = "purchases"
    __table_args__ = (CheckConstraint(_in("status", PURCHASE_STATUSES), name="status"),
                      CheckConstraint("credits > 0 AND price_cents > 0", name="positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    pack_id: Mapped[str] = mapped_column(String(40))
    credits: Mapped[int]
    price_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    gateway: Mapped[str] = mapped_column(String(20))
    gateway_session_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="created")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    credited_entry_id: Mapped[int | None] = mapped_column(ForeignKey("credit_ledger.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]


class ReferralEvent(Base):
    __tablename__ = "referral_events"
    __table_args__ = (CheckConstraint(_in("status", REFERRAL_STATUSES), name="status"),
                      CheckConstraint("referrer_id <> referred_id", name="not_self"))

    id: Mapped[int] = mapped_column(primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    referred_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), unique=True)
    kind: Mapped[str] = mapped_column(String(24), default="signup")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    signup_bonus_entry_id: Mapped[int | None] = mapped_column(ForeignKey("credit_ledger.id",
                                                                         ondelete="RESTRICT"))
    referrer_bonus_entry_id: Mapped[int | None] = mapped_column(ForeignKey("credit_ledger.id",
                                                                           ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rewarded_at: Mapped[datetime | None]


class AnalyticsEvent(Base):
    __tablename__ = "analytics_events"
    # user_id too: distinct active users are counted from the activity markers in this index alone
    __table_args__ = (Index("ix_analytics_events_name_created", "name", "created_at", "user_id"),
                      Index("ix_analytics_events_created", "created_at"),
                      Index("ix_analytics_events_user_created", "user_id", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    session_id: Mapped[str | None] = mapped_column(String(64))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnalyticsDailyEvents(Base):
    """Events per UTC day and name, for the names the dashboard counts per day (the enhancement funnel, the
    activity markers): a rollup kept by ``services.analytics.count_events`` in the transaction that records
    them."""

    __tablename__ = "analytics_daily_events"
    __table_args__ = (CheckConstraint("n > 0", name="n_positive"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    n: Mapped[int]


class ModerationAction(Base):
    __tablename__ = "moderation_actions"
    __table_args__ = (Index("ix_moderation_actions_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(32))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("community_posts.id", ondelete="RESTRICT"),
                                                index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("post_reports.id", ondelete="RESTRICT"))
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- Prompt Lab ------------------------------------------------------------------------------------------------
EXPERIMENT_STATUSES = ("draft", "running", "finished")
EXPERIMENT_AXES = ("prompt", "version", "tier", "seed")
OVER_BUDGET = ("refuse", "trim")
CELL_STATUSES = ("waiting", "submitted", "reused", "skipped")
PROMPT_VERSIONS = ("raw", "enhanced")


class Experiment(Base):
    """A costed prompt experiment: a dynamicprompts template and the axes it varies. Its cells are the plan,
    frozen when it runs."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(_in("status", EXPERIMENT_STATUSES), name="status"),
        CheckConstraint(_in("column_axis", EXPERIMENT_AXES), name="column_axis"),
        CheckConstraint(_in("over_budget", OVER_BUDGET), name="over_budget"),
        CheckConstraint("budget_cap IS NULL OR budget_cap > 0", name="budget_cap_positive"),
        CheckConstraint("quoted_cost >= 0", name="quoted_cost_non_negative"),
        Index("ix_experiments_owner_created", "owner_id", "created_at", "id"),
        Index("ix_experiments_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(120))
    template: Mapped[str] = mapped_column(Text)
    literal: Mapped[bool] = mapped_column(Boolean, default=False)  # one prompt as written, no variant syntax
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    axes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"versions": [...], "seeds": [...], "tiers": [...]}
    aspect_ratio: Mapped[str] = mapped_column(String(8), default="1:1")
    column_axis: Mapped[str] = mapped_column(String(16), default="prompt")
    budget_cap: Mapped[int | None]
    over_budget: Mapped[str] = mapped_column(String(8), default="refuse")
    source_image_id: Mapped[int | None] = mapped_column(ForeignKey("generated_images.id", ondelete="RESTRICT"),
                                                        index=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    quoted_cost: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ExperimentCell(Base):
    """One image of an experiment's grid: its recipe, the request key it was submitted under, its image."""

    __tablename__ = "experiment_cells"
    __table_args__ = (
        UniqueConstraint("experiment_id", "grid_row", "grid_col"),
        UniqueConstraint("experiment_id", "id"),  # the target of the votes' (experiment, cell) key
        CheckConstraint(_in("status", CELL_STATUSES), name="status"),
        CheckConstraint(_in("version", PROMPT_VERSIONS), name="version"),
        CheckConstraint("grid_row >= 0 AND grid_col >= 0", name="position"),
        CheckConstraint("cost >= 0", name="cost_non_negative"),
        CheckConstraint("status NOT IN ('submitted', 'reused') OR image_id IS NOT NULL", name="image_when_sent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="RESTRICT"))
    grid_row: Mapped[int]
    grid_col: Mapped[int]
    row_label: Mapped[str] = mapped_column(String(300))
    col_label: Mapped[str] = mapped_column(String(300))
    prompt: Mapped[str] = mapped_column(Text)
    enhanced_prompt: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str] = mapped_column(String(8))
    seed: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(32))
    cost: Mapped[int] = mapped_column(default=0)  # quoted credits for this image (0 when reused)
    request_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("generated_images.id", ondelete="RESTRICT"),
                                                 index=True)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    note: Mapped[str | None] = mapped_column(Text)  # why a cell was skipped (never charged)


class ExperimentVote(Base):
    """One vote per user per experiment, for a cell of that same experiment (a composite key ensures it)."""

    __tablename__ = "experiment_votes"
    __table_args__ = (
        UniqueConstraint("experiment_id", "user_id"),
        ForeignKeyConstraint(["experiment_id", "cell_id"],
                             ["experiment_cells.experiment_id", "experiment_cells.id"], ondelete="CASCADE"),
        Index("ix_experiment_votes_cell", "cell_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    cell_id: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
