"""Metadata definitions catalog (metadefs) and per-project storage usage.

Revision ID: image_0002
Revises: image_0001
Create Date: 2025-06-01 00:00:00
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from stratus.db.base import UTCDateTime

revision = "image_0002"
down_revision = "image_0001"
branch_labels = None
depends_on = None

# The resource types Glance's stock definitions refer to; namespaces may
# associate with others, which are then created on first use.
RESOURCE_TYPES = ("OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor",
                  "OS::Nova::Aggregate", "OS::Nova::Server", "OS::Trove::Instance",
                  "OS::Glance::Snapshot")


def _child(name: str, *columns: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(
        name,
        sa.Column("namespace_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        *columns,
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("namespace_id", "name", name=f"pk_{name}"),
        sa.ForeignKeyConstraint(["namespace_id"], ["metadef_namespaces.id"],
                                ondelete="CASCADE",
                                name=f"fk_{name}_namespace"),  # MySQL: <= 64 chars
    )


def upgrade() -> None:
    op.create_table(
        "metadef_namespaces",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("namespace", sa.String(80), nullable=False),
        sa.Column("display_name", sa.String(80), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("visibility", sa.String(32), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metadef_namespaces"),
        sa.UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
    )
    types = op.create_table(
        "metadef_resource_types",
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_metadef_resource_types"),
    )
    _child("metadef_namespace_resource_types",
           sa.Column("prefix", sa.String(80), nullable=True),
           sa.Column("properties_target", sa.String(80), nullable=True))
    _child("metadef_objects", sa.Column("body", sa.Text, nullable=False))
    _child("metadef_properties", sa.Column("body", sa.Text, nullable=False))
    _child("metadef_tags")
    now = datetime.now(UTC)
    op.bulk_insert(types, [{"name": n, "protected": True, "created_at": now, "updated_at": now}
                           for n in RESOURCE_TYPES])

    op.create_table(
        "image_usage",
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("used_bytes", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("project_id", name="pk_image_usage"),
    )
    op.create_table(
        "image_reservations",
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("image_id", name="pk_image_reservations"),
    )
    # Start from what is stored now (uploads in flight during a migration
    # are undone by start-up recovery, so they hold nothing).
    op.execute("INSERT INTO image_usage (project_id, used_bytes) "
               "SELECT COALESCE(owner, ''), SUM(COALESCE(size, 0)) FROM images "
               "GROUP BY COALESCE(owner, '')")


def downgrade() -> None:
    for table in ("image_reservations", "image_usage", "metadef_tags", "metadef_properties",
                  "metadef_objects", "metadef_namespace_resource_types",
                  "metadef_resource_types", "metadef_namespaces"):
        op.drop_table(table)
