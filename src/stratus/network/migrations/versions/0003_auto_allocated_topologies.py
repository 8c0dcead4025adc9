"""auto-allocated topologies (get-me-a-network)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('auto_allocated_topologies',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'],
                            name=op.f('fk_auto_allocated_topologies_network_id_networks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_auto_allocated_topologies'))
    )


def downgrade() -> None:
    op.drop_table('auto_allocated_topologies')
