"""subnet pools

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 17:05:00
"""
import sqlalchemy as sa
from alembic import op

import stratus.db.base

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subnetpools',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', stratus.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', stratus.db.base.UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('prefixes', sa.JSON(), nullable=False),
    sa.Column('default_prefixlen', sa.Integer(), nullable=False),
    sa.Column('min_prefixlen', sa.Integer(), nullable=False),
    sa.Column('max_prefixlen', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('default_quota', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subnetpools'))
    )
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnetpools_project_id'), ['project_id'],
                              unique=False)
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnets_subnetpool_id'), ['subnetpool_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subnets_subnetpool_id'))
    with op.batch_alter_table('subnetpools', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subnetpools_project_id'))
    op.drop_table('subnetpools')
