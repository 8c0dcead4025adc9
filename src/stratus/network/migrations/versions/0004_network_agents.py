"""network agents (the agent extension)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00
"""
import sqlalchemy as sa
from alembic import op

import stratus.db.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_agents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('agent_type', sa.String(length=255), nullable=False),
    sa.Column('binary', sa.String(length=255), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('configurations', sa.JSON(), nullable=False),
    sa.Column('created_at', stratus.db.base.UTCDateTime(), nullable=False),
    sa.Column('started_at', stratus.db.base.UTCDateTime(), nullable=False),
    sa.Column('heartbeat_timestamp', stratus.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_agents')),
    sa.UniqueConstraint('agent_type', 'host', name='uq_network_agents_agent_type_host')
    )


def downgrade() -> None:
    op.drop_table('network_agents')
