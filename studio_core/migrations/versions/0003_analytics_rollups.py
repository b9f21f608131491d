"""Analytics rollups: generated_images.latency_ms with a latency-ordered index; ended generations per day by
outcome (analytics_daily_generations) and by source (analytics_daily_generation_sources); counted events per
day (analytics_daily_events), all backfilled; covering indexes for credit flows and distinct active users

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# created -> finished in whole milliseconds, as services.analytics.generation_latency_ms computes it
LATENCY_BACKFILL = {
    'sqlite': "UPDATE generated_images SET latency_ms = MAX(0, CAST(ROUND((julianday(finished_at) - "
              "julianday(created_at)) * 86400000.0) AS INTEGER)) WHERE finished_at IS NOT NULL",
    'postgresql': "UPDATE generated_images SET latency_ms = GREATEST(0, ROUND(EXTRACT(EPOCH FROM "
                  "(finished_at - created_at)) * 1000)) WHERE finished_at IS NOT NULL",
}
# every ended job once, keyed as services.analytics.count_ended_generations keys it (a frozen copy)
ENDED = "WHERE status IN ('succeeded', 'failed', 'canceled')"
ROLLUP_BACKFILL = (
    "INSERT INTO analytics_daily_generations (day, tier, status, provider, error_code, n) "
    "SELECT date(created_at), tier, status, provider, COALESCE(error_code, ''), COUNT(*) "
    f"FROM generated_images {ENDED} GROUP BY 1, 2, 3, 4, 5",
    "INSERT INTO analytics_daily_generation_sources (day, template_id, status, enhanced, n) "
    "SELECT date(created_at), COALESCE(template_id, 0), status, enhanced_prompt IS NOT NULL, COUNT(*) "
    f"FROM generated_images {ENDED} GROUP BY 1, 2, 3, 4",
    # services.analytics.DAILY_COUNTED_EVENTS at this revision
    "INSERT INTO analytics_daily_events (day, name, n) SELECT date(created_at), name, COUNT(*) "
    "FROM analytics_events WHERE name IN ('enhance_requested', 'enhance_accepted', 'enhance_edited', "
    "'enhance_rejected', 'active_day', 'active_week', 'active_month') GROUP BY 1, 2",
)
# (name, old columns, new columns): existing indexes that gain a column, so queries read them alone
WIDENED = (('ix_analytics_events_name_created', 'analytics_events', ['name', 'created_at'],
            ['name', 'created_at', 'user_id']),
           ('ix_credit_ledger_kind_created', 'credit_ledger', ['kind', 'created_at'], ['kind', 'created_at', 'amount']))


def upgrade() -> None:
    # ADD COLUMN in place (no batch copy: generated_images carries full-text triggers)
    op.add_column('generated_images', sa.Column('latency_ms', sa.Integer(), nullable=True))
    op.execute(LATENCY_BACKFILL[op.get_bind().dialect.name])
    op.create_index('ix_generated_images_latency', 'generated_images',
                    ['status', 'provider', 'tier', 'latency_ms', 'created_at'], unique=False)
    op.create_table('analytics_daily_generations',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('tier', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('error_code', sa.String(length=40), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.CheckConstraint('n > 0', name=op.f('ck_analytics_daily_generations_n_positive')),
    sa.PrimaryKeyConstraint('day', 'tier', 'status', 'provider', 'error_code',
                            name=op.f('pk_analytics_daily_generations'))
    )
    op.create_table('analytics_daily_generation_sources',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('enhanced', sa.Boolean(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.CheckConstraint('n > 0', name=op.f('ck_analytics_daily_generation_sources_n_positive')),
    sa.PrimaryKeyConstraint('day', 'template_id', 'status', 'enhanced',
                            name=op.f('pk_analytics_daily_generation_sources'))
    )
    op.create_table('analytics_daily_events',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.CheckConstraint('n > 0', name=op.f('ck_analytics_daily_events_n_positive')),
    sa.PrimaryKeyConstraint('day', 'name', name=op.f('pk_analytics_daily_events'))
    )
    for statement in ROLLUP_BACKFILL:
        op.execute(statement)
    for name, table, _old, new in WIDENED:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, new, unique=False)


def downgrade() -> None:
    for name, table, old, _new in WIDENED:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, old, unique=False)
    op.drop_table('analytics_daily_events')
    op.drop_table('analytics_daily_generation_sources')
    op.drop_table('analytics_daily_generations')
    op.drop_index('ix_generated_images_latency', table_name='generated_images')
    # plain DROP COLUMN (SQLite >= 3.35 and PostgreSQL): a batch copy would lose the full-text triggers
    op.execute('ALTER TABLE generated_images DROP COLUMN latency_ms')
