"""instance info caches (the ports of each server)

Revision ID: compute_0002
Revises: compute_0001
Create Date: 2026-11-24

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import stratus.db.base

revision: str = 'compute_0002'
down_revision: str | Sequence[str] | None = 'compute_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('instance_info_caches',
    sa.Column('instance_uuid', sa.String(length=64), nullable=False),
    sa.Column('network_info', sa.JSON(), nullable=False),
    sa.Column('updated_at', stratus.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('instance_uuid', name=op.f('pk_instance_info_caches'))
    )


def downgrade() -> None:
    op.drop_table('instance_info_caches')
