"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

import studio_core.models

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


# Full-text search side indexes (a frozen copy of studio_core.models.fulltext_ddl at this revision; alembic
# cannot model FTS5 virtual tables, tsvector tables or triggers).
FULLTEXT_SQLITE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS generated_images_fts USING fts5(owner, prompt, final_prompt, tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS generated_images_fts_insert AFTER INSERT ON generated_images BEGIN INSERT INTO generated_images_fts (rowid, owner, prompt, final_prompt) VALUES (new.id, 'u' || new.owner_id, new.prompt, new.final_prompt); END",
    "CREATE TRIGGER IF NOT EXISTS generated_images_fts_update AFTER UPDATE OF owner_id, prompt, final_prompt ON generated_images BEGIN UPDATE generated_images_fts SET owner = 'u' || new.owner_id, prompt = new.prompt, final_prompt = new.final_prompt WHERE rowid = new.id; END",
    'CREATE TRIGGER IF NOT EXISTS generated_images_fts_delete AFTER DELETE ON generated_images BEGIN DELETE FROM generated_images_fts WHERE rowid = old.id; END',
    "INSERT INTO generated_images_fts (rowid, owner, prompt, final_prompt) SELECT id, 'u' || owner_id, prompt, final_prompt FROM generated_images WHERE id NOT IN (SELECT rowid FROM generated_images_fts)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS community_posts_fts USING fts5(title, prompt, tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS community_posts_fts_insert AFTER INSERT ON community_posts BEGIN INSERT INTO community_posts_fts (rowid, title, prompt) SELECT new.id, new.title, g.prompt || ' ' || g.final_prompt FROM generated_images g WHERE g.id = new.image_id; END",
    "CREATE TRIGGER IF NOT EXISTS community_posts_fts_update AFTER UPDATE OF title, image_id ON community_posts BEGIN UPDATE community_posts_fts SET title = new.title, prompt = (SELECT g.prompt || ' ' || g.final_prompt FROM generated_images g WHERE g.id = new.image_id) WHERE rowid = new.id; END",
    'CREATE TRIGGER IF NOT EXISTS community_posts_fts_delete AFTER DELETE ON community_posts BEGIN DELETE FROM community_posts_fts WHERE rowid = old.id; END',
    "INSERT INTO community_posts_fts (rowid, title, prompt) SELECT p.id, p.title, g.prompt || ' ' || g.final_prompt FROM community_posts p JOIN generated_images g ON g.id = p.image_id WHERE p.id NOT IN (SELECT rowid FROM community_posts_fts)",
)
FULLTEXT_SQLITE_DROP = (
    'DROP TRIGGER IF EXISTS community_posts_fts_delete',
    'DROP TRIGGER IF EXISTS community_posts_fts_update',
    'DROP TRIGGER IF EXISTS community_posts_fts_insert',
    'DROP TABLE IF EXISTS community_posts_fts',
    'DROP TRIGGER IF EXISTS generated_images_fts_delete',
    'DROP TRIGGER IF EXISTS generated_images_fts_update',
    'DROP TRIGGER IF EXISTS generated_images_fts_insert',
    'DROP TABLE IF EXISTS generated_images_fts',
)
FULLTEXT_POSTGRESQL = (
    'CREATE TABLE IF NOT EXISTS generated_images_fts (image_id INTEGER PRIMARY KEY REFERENCES generated_images (id) ON DELETE CASCADE, document TSVECTOR NOT NULL)',
    'CREATE INDEX IF NOT EXISTS generated_images_fts_document ON generated_images_fts USING gin (document)',
    "CREATE OR REPLACE FUNCTION generated_images_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO generated_images_fts (image_id, document) VALUES (NEW.id, to_tsvector('simple', NEW.prompt || ' ' || NEW.final_prompt)) ON CONFLICT (image_id) DO UPDATE SET document = EXCLUDED.document; RETURN NULL; END $$",
    'CREATE OR REPLACE TRIGGER generated_images_fts_sync AFTER INSERT OR UPDATE OF prompt, final_prompt ON generated_images FOR EACH ROW EXECUTE FUNCTION generated_images_fts_sync()',
    "INSERT INTO generated_images_fts (image_id, document) SELECT id, to_tsvector('simple', prompt || ' ' || final_prompt) FROM generated_images ON CONFLICT (image_id) DO NOTHING",
    'CREATE TABLE IF NOT EXISTS community_posts_fts (post_id INTEGER PRIMARY KEY REFERENCES community_posts (id) ON DELETE CASCADE, document TSVECTOR NOT NULL)',
    'CREATE INDEX IF NOT EXISTS community_posts_fts_document ON community_posts_fts USING gin (document)',
    "CREATE OR REPLACE FUNCTION community_posts_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO community_posts_fts (post_id, document) SELECT NEW.id, to_tsvector('simple', NEW.title || ' ' || g.prompt || ' ' || g.final_prompt) FROM generated_images g WHERE g.id = NEW.image_id ON CONFLICT (post_id) DO UPDATE SET document = EXCLUDED.document; RETURN NULL; END $$",
    'CREATE OR REPLACE TRIGGER community_posts_fts_sync AFTER INSERT OR UPDATE OF title, image_id ON community_posts FOR EACH ROW EXECUTE FUNCTION community_posts_fts_sync()',
    "INSERT INTO community_posts_fts (post_id, document) SELECT p.id, to_tsvector('simple', p.title || ' ' || g.prompt || ' ' || g.final_prompt) FROM community_posts p JOIN generated_images g ON g.id = p.image_id ON CONFLICT (post_id) DO NOTHING",
)
FULLTEXT_POSTGRESQL_DROP = (
    'DROP TRIGGER IF EXISTS community_posts_fts_sync ON community_posts',
    'DROP FUNCTION IF EXISTS community_posts_fts_sync()',
    'DROP TABLE IF EXISTS community_posts_fts',
    'DROP TRIGGER IF EXISTS generated_images_fts_sync ON generated_images',
    'DROP FUNCTION IF EXISTS generated_images_fts_sync()',
    'DROP TABLE IF EXISTS generated_images_fts',
)


def _fulltext(drop: bool) -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": (FULLTEXT_SQLITE_DROP if drop else FULLTEXT_SQLITE),
                  "postgresql": (FULLTEXT_POSTGRESQL_DROP if drop else FULLTEXT_POSTGRESQL)}.get(dialect, ())
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.create_table('image_categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_categories')),
    sa.UniqueConstraint('slug', name=op.f('uq_image_categories_slug'))
    )
    op.create_table('login_throttle',
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('first_failure_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.Column('locked_until', studio_core.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('email', name=op.f('pk_login_throttle'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('display_name', sa.String(length=80), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('oidc_subject', sa.String(length=255), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('referral_code', sa.String(length=16), nullable=False),
    sa.Column('referred_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.Column('last_login_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.CheckConstraint("role IN ('creator', 'admin')", name=op.f('ck_users_role')),
    sa.CheckConstraint('password_hash IS NOT NULL OR oidc_subject IS NOT NULL', name=op.f('ck_users_has_credential')),
    sa.ForeignKeyConstraint(['referred_by_id'], ['users.id'], name=op.f('fk_users_referred_by_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sa.UniqueConstraint('oidc_subject', name=op.f('uq_users_oidc_subject')),
    sa.UniqueConstraint('referral_code', name=op.f('uq_users_referral_code'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_referred_by_id'), ['referred_by_id'], unique=False)

    op.create_table('analytics_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('session_id', sa.String(length=64), nullable=True),
    sa.Column('properties', sa.JSON(), nullable=False),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_analytics_events_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_events'))
    )
    with op.batch_alter_table('analytics_events', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_events_created', ['created_at'], unique=False)
        batch_op.create_index('ix_analytics_events_name_created', ['name', 'created_at'], unique=False)
        batch_op.create_index('ix_analytics_events_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('credit_accounts',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('allowance_balance', sa.Integer(), nullable=False),
    sa.Column('paid_balance', sa.Integer(), nullable=False),
    sa.Column('reserved_allowance', sa.Integer(), nullable=False),
    sa.Column('reserved_paid', sa.Integer(), nullable=False),
    sa.Column('allowance_month', sa.String(length=7), nullable=True),
    sa.Column('updated_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.CheckConstraint('allowance_balance >= 0', name=op.f('ck_credit_accounts_allowance_non_negative')),
    sa.CheckConstraint('paid_balance >= 0', name=op.f('ck_credit_accounts_paid_non_negative')),
    sa.CheckConstraint('reserved_allowance <= allowance_balance', name=op.f('ck_credit_accounts_reserved_allowance_covered')),
    sa.CheckConstraint('reserved_allowance >= 0 AND reserved_paid >= 0', name=op.f('ck_credit_accounts_reserved_non_negative')),
    sa.CheckConstraint('reserved_paid <= paid_balance', name=op.f('ck_credit_accounts_reserved_paid_covered')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_credit_accounts_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_credit_accounts'))
    )
    op.create_table('image_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('prompt_pattern', sa.Text(), nullable=False),
    sa.Column('negative_prompt', sa.Text(), nullable=False),
    sa.Column('style_notes', sa.Text(), nullable=False),
    sa.Column('default_tier', sa.String(length=32), nullable=False),
    sa.Column('example_image_id', sa.Integer(), nullable=True),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('use_count', sa.Integer(), nullable=False),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['image_categories.id'], name=op.f('fk_image_templates_category_id_image_categories'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_templates'))
    )
    with op.batch_alter_table('image_templates', schema=None) as batch_op:
        batch_op.create_index('ix_image_templates_category_active', ['category_id', 'active', 'sort_order'], unique=False)

    op.create_table('credit_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('amount_allowance', sa.Integer(), nullable=False),
    sa.Column('amount_paid', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.Column('expires_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')", name=op.f('ck_credit_holds_status')),
    sa.CheckConstraint('amount_allowance >= 0 AND amount_paid >= 0 AND amount_allowance + amount_paid > 0', name=op.f('ck_credit_holds_amounts')),
    sa.ForeignKeyConstraint(['user_id'], ['credit_accounts.user_id'], name=op.f('fk_credit_holds_user_id_credit_accounts'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_holds')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_credit_holds_idempotency_key'))
    )
    with op.batch_alter_table('credit_holds', schema=None) as batch_op:
        batch_op.create_index('ix_credit_holds_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_holds_user_id'), ['user_id'], unique=False)

    op.create_table('credit_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('idempotency_key', sa.String(length=160), nullable=False),
    sa.Column('hold_id', sa.Integer(), nullable=True),
    sa.Column('refund_of_id', sa.Integer(), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('memo', sa.Text(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.CheckConstraint("bucket IN ('allowance', 'paid')", name=op.f('ck_credit_ledger_bucket')),
    sa.CheckConstraint("kind IN ('allowance_grant', 'allowance_expiry', 'purchase', 'referral_bonus', 'signup_bonus', 'generation', 'refund', 'admin_adjustment')", name=op.f('ck_credit_ledger_kind')),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_credit_ledger_amount_non_zero')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_credit_ledger_actor_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['hold_id'], ['credit_holds.id'], name=op.f('fk_credit_ledger_hold_id_credit_holds'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['refund_of_id'], ['credit_ledger.id'], name=op.f('fk_credit_ledger_refund_of_id_credit_ledger'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['credit_accounts.user_id'], name=op.f('fk_credit_ledger_user_id_credit_accounts'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_ledger')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_credit_ledger_idempotency_key'))
    )
    with op.batch_alter_table('credit_ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_ledger_hold_id'), ['hold_id'], unique=False)
        batch_op.create_index('ix_credit_ledger_kind_created', ['kind', 'created_at'], unique=False)
        batch_op.create_index('ix_credit_ledger_user_created', ['user_id', 'created_at', 'id'], unique=False)

    op.create_table('generated_images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('request_key', sa.String(length=80), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('enhanced_prompt', sa.Text(), nullable=True),
    sa.Column('final_prompt', sa.Text(), nullable=False),
    sa.Column('negative_prompt', sa.Text(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('remixed_from_id', sa.Integer(), nullable=True),
    sa.Column('tier', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model_version', sa.String(length=200), nullable=False),
    sa.Column('provider_job_id', sa.String(length=120), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Double(), nullable=False),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('image_key', sa.String(length=300), nullable=True),
    sa.Column('thumbnail_key', sa.String(length=300), nullable=True),
    sa.Column('bytes', sa.Integer(), nullable=True),
    sa.Column('cost', sa.Integer(), nullable=False),
    sa.Column('hold_id', sa.Integer(), nullable=True),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_expires_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.Column('queued_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.Column('started_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.Column('finished_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.Column('deleted_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')", name=op.f('ck_generated_images_status')),
    sa.CheckConstraint('cost >= 0', name=op.f('ck_generated_images_cost_non_negative')),
    sa.CheckConstraint('width > 0 AND height > 0', name=op.f('ck_generated_images_size_positive')),
    sa.ForeignKeyConstraint(['hold_id'], ['credit_holds.id'], name=op.f('fk_generated_images_hold_id_credit_holds'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_generated_images_owner_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['remixed_from_id'], ['generated_images.id'], name=op.f('fk_generated_images_remixed_from_id_generated_images'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['template_id'], ['image_templates.id'], name=op.f('fk_generated_images_template_id_image_templates'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generated_images')),
    sa.UniqueConstraint('request_key', name=op.f('uq_generated_images_request_key'))
    )
    with op.batch_alter_table('generated_images', schema=None) as batch_op:
        batch_op.create_index('ix_generated_images_created', ['created_at'], unique=False)
        batch_op.create_index('ix_generated_images_owner_created', ['owner_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_generated_images_status_lease', ['status', 'lease_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_generated_images_template_id'), ['template_id'], unique=False)

    # image_templates and generated_images point at each other: the second foreign key comes after both tables.
    with op.batch_alter_table('image_templates', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_image_templates_example_image_id_generated_images'),
                                    'generated_images', ['example_image_id'], ['id'], ondelete='SET NULL')

    op.create_table('community_posts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('like_count', sa.Integer(), nullable=False),
    sa.Column('report_count', sa.Integer(), nullable=False),
    sa.Column('remix_count', sa.Integer(), nullable=False),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('visible', 'hidden', 'removed', 'unpublished')", name=op.f('ck_community_posts_status')),
    sa.CheckConstraint('like_count >= 0 AND report_count >= 0 AND remix_count >= 0', name=op.f('ck_community_posts_counts')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_community_posts_author_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['category_id'], ['image_categories.id'], name=op.f('fk_community_posts_category_id_image_categories'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['image_id'], ['generated_images.id'], name=op.f('fk_community_posts_image_id_generated_images'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_community_posts')),
    sa.UniqueConstraint('image_id', name=op.f('uq_community_posts_image_id'))
    )
    with op.batch_alter_table('community_posts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_community_posts_author_id'), ['author_id'], unique=False)
        batch_op.create_index('ix_community_posts_category', ['category_id', 'status', 'created_at'], unique=False)
        batch_op.create_index('ix_community_posts_feed_new', ['status', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_community_posts_feed_remix', ['status', 'remix_count', 'id'], unique=False)
        batch_op.create_index('ix_community_posts_feed_top', ['status', 'like_count', 'id'], unique=False)
    op.create_index('ix_community_posts_top_day', 'community_posts',
                    ['status', sa.text('date(created_at)'), 'like_count', 'id'], unique=False)

    op.create_table('purchases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('pack_id', sa.String(length=40), nullable=False),
    sa.Column('credits', sa.Integer(), nullable=False),
    sa.Column('price_cents', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('gateway_session_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('credited_entry_id', sa.Integer(), nullable=True),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.Column('completed_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('created', 'paid', 'failed', 'canceled')", name=op.f('ck_purchases_status')),
    sa.CheckConstraint('credits > 0 AND price_cents > 0', name=op.f('ck_purchases_positive')),
    sa.ForeignKeyConstraint(['credited_entry_id'], ['credit_ledger.id'], name=op.f('fk_purchases_credited_entry_id_credit_ledger'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_purchases_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchases')),
    sa.UniqueConstraint('gateway_session_id', name=op.f('uq_purchases_gateway_session_id'))
    )
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchases_user_id'), ['user_id'], unique=False)

    op.create_table('referral_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referrer_id', sa.Integer(), nullable=False),
    sa.Column('referred_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('signup_bonus_entry_id', sa.Integer(), nullable=True),
    sa.Column('referrer_bonus_entry_id', sa.Integer(), nullable=True),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.Column('rewarded_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'rewarded', 'refused')", name=op.f('ck_referral_events_status')),
    sa.CheckConstraint('referrer_id <> referred_id', name=op.f('ck_referral_events_not_self')),
    sa.ForeignKeyConstraint(['referred_id'], ['users.id'], name=op.f('fk_referral_events_referred_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['referrer_bonus_entry_id'], ['credit_ledger.id'], name=op.f('fk_referral_events_referrer_bonus_entry_id_credit_ledger'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['referrer_id'], ['users.id'], name=op.f('fk_referral_events_referrer_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['signup_bonus_entry_id'], ['credit_ledger.id'], name=op.f('fk_referral_events_signup_bonus_entry_id_credit_ledger'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_events')),
    sa.UniqueConstraint('referred_id', name=op.f('uq_referral_events_referred_id'))
    )
    with op.batch_alter_table('referral_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_events_referrer_id'), ['referrer_id'], unique=False)

    op.create_table('post_likes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['community_posts.id'], name=op.f('fk_post_likes_post_id_community_posts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_post_likes_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_post_likes')),
    sa.UniqueConstraint('post_id', 'user_id', name=op.f('uq_post_likes_post_id_user_id'))
    )
    with op.batch_alter_table('post_likes', schema=None) as batch_op:
        batch_op.create_index('ix_post_likes_created', ['created_at'], unique=False)
        batch_op.create_index('ix_post_likes_user', ['user_id'], unique=False)

    op.create_table('post_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.CheckConstraint("reason IN ('spam', 'nsfw', 'hateful', 'copyright', 'other')", name=op.f('ck_post_reports_reason')),
    sa.CheckConstraint("status IN ('open', 'actioned', 'dismissed')", name=op.f('ck_post_reports_status')),
    sa.ForeignKeyConstraint(['post_id'], ['community_posts.id'], name=op.f('fk_post_reports_post_id_community_posts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], name=op.f('fk_post_reports_reporter_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_post_reports_resolved_by_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_post_reports')),
    sa.UniqueConstraint('post_id', 'reporter_id', name=op.f('uq_post_reports_post_id_reporter_id'))
    )
    with op.batch_alter_table('post_reports', schema=None) as batch_op:
        batch_op.create_index('ix_post_reports_status_post', ['status', 'post_id'], unique=False)

    op.create_table('prompt_reuse_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_image_id', sa.Integer(), nullable=False),
    sa.Column('source_post_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('new_image_id', sa.Integer(), nullable=True),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['new_image_id'], ['generated_images.id'], name=op.f('fk_prompt_reuse_events_new_image_id_generated_images'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_image_id'], ['generated_images.id'], name=op.f('fk_prompt_reuse_events_source_image_id_generated_images'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['source_post_id'], ['community_posts.id'], name=op.f('fk_prompt_reuse_events_source_post_id_community_posts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_prompt_reuse_events_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt_reuse_events'))
    )
    with op.batch_alter_table('prompt_reuse_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prompt_reuse_events_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_prompt_reuse_events_source_image_id'), ['source_image_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_prompt_reuse_events_user_id'), ['user_id'], unique=False)

    op.create_table('moderation_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=True),
    sa.Column('report_id', sa.Integer(), nullable=True),
    sa.Column('target_user_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_moderation_actions_actor_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['post_id'], ['community_posts.id'], name=op.f('fk_moderation_actions_post_id_community_posts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['report_id'], ['post_reports.id'], name=op.f('fk_moderation_actions_report_id_post_reports'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['target_user_id'], ['users.id'], name=op.f('fk_moderation_actions_target_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_actions'))
    )
    with op.batch_alter_table('moderation_actions', schema=None) as batch_op:
        batch_op.create_index('ix_moderation_actions_created', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_moderation_actions_post_id'), ['post_id'], unique=False)

    _fulltext(drop=False)



def downgrade() -> None:
    _fulltext(drop=True)
    with op.batch_alter_table('image_templates', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_image_templates_example_image_id_generated_images'),
                                 type_='foreignkey')
    with op.batch_alter_table('moderation_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_moderation_actions_post_id'))
        batch_op.drop_index('ix_moderation_actions_created')

    op.drop_table('moderation_actions')
    with op.batch_alter_table('prompt_reuse_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prompt_reuse_events_user_id'))
        batch_op.drop_index(batch_op.f('ix_prompt_reuse_events_source_image_id'))
        batch_op.drop_index(batch_op.f('ix_prompt_reuse_events_created_at'))

    op.drop_table('prompt_reuse_events')
    with op.batch_alter_table('post_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_post_reports_status_post')

    op.drop_table('post_reports')
    with op.batch_alter_table('post_likes', schema=None) as batch_op:
        batch_op.drop_index('ix_post_likes_user')
        batch_op.drop_index('ix_post_likes_created')

    op.drop_table('post_likes')
    with op.batch_alter_table('referral_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_events_referrer_id'))

    op.drop_table('referral_events')
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchases_user_id'))

    op.drop_table('purchases')
    with op.batch_alter_table('community_posts', schema=None) as batch_op:
        batch_op.drop_index('ix_community_posts_top_day')
        batch_op.drop_index('ix_community_posts_feed_top')
        batch_op.drop_index('ix_community_posts_feed_remix')
        batch_op.drop_index('ix_community_posts_feed_new')
        batch_op.drop_index('ix_community_posts_category')
        batch_op.drop_index(batch_op.f('ix_community_posts_author_id'))

    op.drop_table('community_posts')
    with op.batch_alter_table('generated_images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_generated_images_template_id'))
        batch_op.drop_index('ix_generated_images_status_lease')
        batch_op.drop_index('ix_generated_images_owner_created')
        batch_op.drop_index('ix_generated_images_created')

    op.drop_table('generated_images')
    with op.batch_alter_table('credit_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_ledger_user_created')
        batch_op.drop_index('ix_credit_ledger_kind_created')
        batch_op.drop_index(batch_op.f('ix_credit_ledger_hold_id'))

    op.drop_table('credit_ledger')
    with op.batch_alter_table('credit_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_holds_user_id'))
        batch_op.drop_index('ix_credit_holds_status_expires')

    op.drop_table('credit_holds')
    with op.batch_alter_table('image_templates', schema=None) as batch_op:
        batch_op.drop_index('ix_image_templates_category_active')

    op.drop_table('image_templates')
    op.drop_table('credit_accounts')
    with op.batch_alter_table('analytics_events', schema=None) as batch_op:
        batch_op.drop_index('ix_analytics_events_user_created')
        batch_op.drop_index('ix_analytics_events_name_created')
        batch_op.drop_index('ix_analytics_events_created')

    op.drop_table('analytics_events')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_referred_by_id'))

    op.drop_table('users')
    op.drop_table('login_throttle')
    op.drop_table('image_categories')
