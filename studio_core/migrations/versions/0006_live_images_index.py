"""A user's live (not deleted) images by time: a partial index that My Creations counts and pages on every run
without reading the table (before, each of the user's images was looked up to check ``deleted_at``). The
column ``deleted_at`` (NULL in every entry) is in it so that SQLite sees the count covered by the index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_index('ix_generated_images_owner_live', 'generated_images', ['owner_id', 'created_at', 'id', 'deleted_at'],
                    unique=False, sqlite_where=LIVE, postgresql_where=LIVE)


def downgrade() -> None:
    op.drop_index('ix_generated_images_owner_live', table_name='generated_images')
