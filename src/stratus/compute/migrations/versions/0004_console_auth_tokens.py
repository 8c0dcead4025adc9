"""console auth tokens (hashed) for remote consoles

Revision ID: compute_0004
Revises: compute_0003
Create Date: 2026-11-25

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import stratus.db.base

revision: str = 'compute_0004'
down_revision: str | Sequence[str] | None = 'compute_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'console_auth_tokens',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('console_type', sa.String(length=32), nullable=False),
        sa.Column('instance_uuid', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('internal_access_path', sa.String(length=255), nullable=True),
        sa.Column('access_url_base', sa.String(length=255), nullable=False),
        sa.Column('expires', sa.BigInteger(), nullable=False),
        sa.Column('created_at', stratus.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_auth_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_console_auth_tokens_token_hash')),
    )
    op.create_index(op.f('ix_console_auth_tokens_instance_uuid'), 'console_auth_tokens',
                    ['instance_uuid'], unique=False)
    op.create_index(op.f('ix_console_auth_tokens_expires'), 'console_auth_tokens',
                    ['expires'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_console_auth_tokens_expires'), table_name='console_auth_tokens')
    op.drop_index(op.f('ix_console_auth_tokens_instance_uuid'),
                  table_name='console_auth_tokens')
    op.drop_table('console_auth_tokens')
