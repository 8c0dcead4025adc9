"""host aggregates; live migration progress on migration records

Revision ID: compute_0003
Revises: compute_0002
Create Date: 2026-11-21

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import stratus.db.base

revision: str = 'compute_0003'
down_revision: str | Sequence[str] | None = 'compute_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROGRESS = ('memory_total', 'memory_processed', 'memory_remaining', 'disk_total',
             'disk_processed', 'disk_remaining', 'downtime_ms')


def upgrade() -> None:
    op.create_table(
        'aggregates',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uuid', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('created_at', stratus.db.base.UTCDateTime(), nullable=False),
        sa.Column('updated_at', stratus.db.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_aggregates')),
        sa.UniqueConstraint('name', name=op.f('uq_aggregates_name')),
        sa.UniqueConstraint('uuid', name=op.f('uq_aggregates_uuid')),
    )
    op.create_table(
        'aggregate_hosts',
        sa.Column('aggregate_id', sa.Integer(), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['aggregate_id'], ['aggregates.id'],
                                name=op.f('fk_aggregate_hosts_aggregate_id_aggregates'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('aggregate_id', 'host', name=op.f('pk_aggregate_hosts')),
    )
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        for name in _PROGRESS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        for name in _PROGRESS:
            batch_op.drop_column(name)
    op.drop_table('aggregate_hosts')
    op.drop_table('aggregates')
