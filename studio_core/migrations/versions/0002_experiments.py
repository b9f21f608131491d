"""Prompt Lab: experiments, their cells (one image each) and one vote per user per experiment

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

import studio_core.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('template', sa.Text(), nullable=False),
    sa.Column('literal', sa.Boolean(), nullable=False),
    sa.Column('negative_prompt', sa.Text(), nullable=False),
    sa.Column('axes', sa.JSON(), nullable=False),
    sa.Column('aspect_ratio', sa.String(length=8), nullable=False),
    sa.Column('column_axis', sa.String(length=16), nullable=False),
    sa.Column('budget_cap', sa.Integer(), nullable=True),
    sa.Column('over_budget', sa.String(length=8), nullable=False),
    sa.Column('source_image_id', sa.Integer(), nullable=True),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('quoted_cost', sa.Integer(), nullable=False),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.Column('started_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.Column('finished_at', studio_core.models.UTCDateTime(), nullable=True),
    sa.CheckConstraint("column_axis IN ('prompt', 'version', 'tier', 'seed')", name=op.f('ck_experiments_column_axis')),
    sa.CheckConstraint("over_budget IN ('refuse', 'trim')", name=op.f('ck_experiments_over_budget')),
    sa.CheckConstraint("status IN ('draft', 'running', 'finished')", name=op.f('ck_experiments_status')),
    sa.CheckConstraint('budget_cap IS NULL OR budget_cap > 0', name=op.f('ck_experiments_budget_cap_positive')),
    sa.CheckConstraint('quoted_cost >= 0', name=op.f('ck_experiments_quoted_cost_non_negative')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_experiments_owner_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['source_image_id'], ['generated_images.id'], name=op.f('fk_experiments_source_image_id_generated_images'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments'))
    )
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.create_index('ix_experiments_owner_created', ['owner_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_experiments_source_image_id'), ['source_image_id'], unique=False)
        batch_op.create_index('ix_experiments_status', ['status'], unique=False)

    op.create_table('experiment_cells',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('grid_row', sa.Integer(), nullable=False),
    sa.Column('grid_col', sa.Integer(), nullable=False),
    sa.Column('row_label', sa.String(length=300), nullable=False),
    sa.Column('col_label', sa.String(length=300), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('enhanced_prompt', sa.Text(), nullable=True),
    sa.Column('version', sa.String(length=8), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('tier', sa.String(length=32), nullable=False),
    sa.Column('cost', sa.Integer(), nullable=False),
    sa.Column('request_key', sa.String(length=80), nullable=True),
    sa.Column('image_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('waiting', 'submitted', 'reused', 'skipped')", name=op.f('ck_experiment_cells_status')),
    sa.CheckConstraint("status NOT IN ('submitted', 'reused') OR image_id IS NOT NULL", name=op.f('ck_experiment_cells_image_when_sent')),
    sa.CheckConstraint("version IN ('raw', 'enhanced')", name=op.f('ck_experiment_cells_version')),
    sa.CheckConstraint('cost >= 0', name=op.f('ck_experiment_cells_cost_non_negative')),
    sa.CheckConstraint('grid_row >= 0 AND grid_col >= 0', name=op.f('ck_experiment_cells_position')),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_experiment_cells_experiment_id_experiments'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['image_id'], ['generated_images.id'], name=op.f('fk_experiment_cells_image_id_generated_images'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiment_cells')),
    sa.UniqueConstraint('experiment_id', 'grid_row', 'grid_col', name=op.f('uq_experiment_cells_experiment_id_grid_row_grid_col')),
    sa.UniqueConstraint('experiment_id', 'id', name=op.f('uq_experiment_cells_experiment_id_id')),
    sa.UniqueConstraint('request_key', name=op.f('uq_experiment_cells_request_key'))
    )
    with op.batch_alter_table('experiment_cells', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiment_cells_image_id'), ['image_id'], unique=False)

    op.create_table('experiment_votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('cell_id', sa.Integer(), nullable=False),
    sa.Column('created_at', studio_core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id', 'cell_id'], ['experiment_cells.experiment_id', 'experiment_cells.id'], name=op.f('fk_experiment_votes_experiment_id_experiment_cells'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_experiment_votes_experiment_id_experiments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_experiment_votes_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiment_votes')),
    sa.UniqueConstraint('experiment_id', 'user_id', name=op.f('uq_experiment_votes_experiment_id_user_id'))
    )
    with op.batch_alter_table('experiment_votes', schema=None) as batch_op:
        batch_op.create_index('ix_experiment_votes_cell', ['cell_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('experiment_votes', schema=None) as batch_op:
        batch_op.drop_index('ix_experiment_votes_cell')

    op.drop_table('experiment_votes')
    with op.batch_alter_table('experiment_cells', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiment_cells_image_id'))

    op.drop_table('experiment_cells')
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_index('ix_experiments_status')
        batch_op.drop_index(batch_op.f('ix_experiments_source_image_id'))
        batch_op.drop_index('ix_experiments_owner_created')

    op.drop_table('experiments')
