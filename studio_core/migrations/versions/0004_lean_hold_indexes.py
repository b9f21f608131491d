"""Leaner indexes on the money path: pending holds by expiry (a partial index, what the sweeper reads) instead of
every hold by status and expiry, and no index on credit_ledger.hold_id (nothing looks entries up by it; the
invariant checks scan). Each reserve + post cycle writes two index pages fewer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.drop_index('ix_credit_holds_status_expires', table_name='credit_holds')
    op.create_index('ix_credit_holds_pending_expires', 'credit_holds', ['expires_at'], unique=False,
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.drop_index('ix_credit_ledger_hold_id', table_name='credit_ledger')


def downgrade() -> None:
    op.create_index('ix_credit_ledger_hold_id', 'credit_ledger', ['hold_id'], unique=False)
    op.drop_index('ix_credit_holds_pending_expires', table_name='credit_holds')
    op.create_index('ix_credit_holds_status_expires', 'credit_holds', ['status', 'expires_at'], unique=False)
