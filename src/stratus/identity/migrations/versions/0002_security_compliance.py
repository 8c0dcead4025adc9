"""Password history and failed-login counters (security compliance).

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stratus.db.base

revision = "identity_0002"
down_revision = "identity_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_password_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", stratus.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["identity_users.id"],
                                name=op.f("fk_identity_password_history_user_id_identity_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_password_history")),
    )
    op.create_index("ix_identity_password_history_user", "identity_password_history",
                    ["user_id"], unique=False)
    op.create_table(
        "identity_login_failures",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", stratus.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["identity_users.id"],
                                name=op.f("fk_identity_login_failures_user_id_identity_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_identity_login_failures")),
    )


def downgrade() -> None:
    op.drop_table("identity_login_failures")
    op.drop_index("ix_identity_password_history_user", table_name="identity_password_history")
    op.drop_table("identity_password_history")
