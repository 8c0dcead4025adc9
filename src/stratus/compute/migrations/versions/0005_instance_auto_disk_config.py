"""instances.auto_disk_config (OS-DCF:diskConfig)

Revision ID: compute_0005
Revises: compute_0004
Create Date: 2026-11-21

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'compute_0005'
down_revision: str | Sequence[str] | None = 'compute_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('instances') as batch:
        batch.add_column(sa.Column('auto_disk_config', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('instances') as batch:
        batch.drop_column('auto_disk_config')
