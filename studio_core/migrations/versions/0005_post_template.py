"""Each community post keeps its image's template (copied at publish; an image's template never changes), so the
catalog counts publishes and likes per template from the posts alone instead of looking up every post's image.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('community_posts', sa.Column('template_id', sa.Integer(), nullable=True))
    op.execute("UPDATE community_posts SET template_id = (SELECT generated_images.template_id FROM generated_images "
               "WHERE generated_images.id = community_posts.image_id)")


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on both (SQLite 3.35+): a batch copy of the table would lose its search triggers
    op.drop_column('community_posts', 'template_id')
