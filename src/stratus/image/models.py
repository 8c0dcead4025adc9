"""The image service's tables. Only this service reads or writes them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from stratus.db.base import UTCDateTime, new_metadata

metadata = new_metadata()

images = Table(
    "images",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=True),
    Column("status", String(30), nullable=False),
    Column("visibility", String(20), nullable=False),
    Column("protected", Boolean, nullable=False, default=False),
    Column("os_hidden", Boolean, nullable=False, default=False),
    Column("owner", String(255), nullable=True),
    Column("disk_format", String(32), nullable=True),
    Column("container_format", String(32), nullable=True),
    Column("min_disk", Integer, nullable=False, default=0),
    Column("min_ram", Integer, nullable=False, default=0),
    Column("size", BigInteger, nullable=True),
    Column("virtual_size", BigInteger, nullable=True),
    Column("checksum", String(32), nullable=True),
    Column("os_hash_algo", String(64), nullable=True),
    Column("os_hash_value", String(128), nullable=True),
    # Where the store keeps the data ("file://..."); never shown to users.
    Column("location", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_images_owner", "owner"),
    Index("ix_images_visibility_status", "visibility", "status"),
    Index("ix_images_created_at", "created_at"),
)

image_properties = Table(
    "image_properties",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"),
           primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_image_properties_name_value", "name"),
)

image_tags = Table(
    "image_tags",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"),
           primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("position", Integer, nullable=False, default=0),
    Index("ix_image_tags_value", "value"),
)

image_members = Table(
    "image_members",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"),
           primary_key=True),
    Column("member", String(255), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_image_members_member", "member"),
)

# Asynchronous work on an image (glance-direct import), shown at
# GET /v2/images/{id}/tasks.
image_tasks = Table(
    "image_tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("image_id", String(36), nullable=False),
    Column("type", String(30), nullable=False),
    Column("status", String(30), nullable=False),
    Column("owner", String(255), nullable=True),
    Column("user_id", String(255), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("input", Text, nullable=False),
    Column("result", Text, nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Index("ix_image_tasks_image_id", "image_id"),
)

# -- metadata definitions catalog (metadefs) ----------------------------------
# Children hang off the namespace's surrogate id, so renaming a namespace
# touches one row. Property and object definitions are JSON schema fragments
# kept as text: nothing queries inside them.

metadef_namespaces = Table(
    "metadef_namespaces",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("namespace", String(80), nullable=False, unique=True),
    Column("display_name", String(80), nullable=True),
    Column("description", Text, nullable=True),
    Column("visibility", String(32), nullable=False),
    Column("protected", Boolean, nullable=False, default=False),
    Column("owner", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

metadef_resource_types = Table(
    "metadef_resource_types",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("protected", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


def _child(name: str, *columns: Column) -> Table:  # type: ignore[type-arg]
    return Table(
        name,
        metadata,
        Column("namespace_id", String(36),
               ForeignKey("metadef_namespaces.id", ondelete="CASCADE",
                          name=f"fk_{name}_namespace"), primary_key=True),
        Column("name", String(80), primary_key=True),
        *columns,
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )


metadef_associations = _child("metadef_namespace_resource_types",
                              Column("prefix", String(80), nullable=True),
                              Column("properties_target", String(80), nullable=True))
metadef_objects = _child("metadef_objects", Column("body", Text, nullable=False))
metadef_properties = _child("metadef_properties", Column("body", Text, nullable=False))
metadef_tags = _child("metadef_tags")

# -- storage quota ---------------------------------------------------------
# Bytes each project stores or is uploading. Uploads reserve bytes here as
# they stream with a conditional UPDATE (used + n <= limit), so concurrent
# uploads cannot overshoot the quota together; ``image_reservations`` says
# how much each in-flight upload holds, so a crashed upload can give it back.

image_usage = Table(
    "image_usage",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("used_bytes", BigInteger, nullable=False, default=0),
)

image_reservations = Table(
    "image_reservations",
    metadata,
    Column("image_id", String(36), primary_key=True),
    Column("project_id", String(255), nullable=False),
    Column("bytes", BigInteger, nullable=False, default=0),
)
