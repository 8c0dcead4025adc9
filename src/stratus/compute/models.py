"""Compute's tables. Only the compute services read or write them.

Soft delete is used where the API shows deleted rows (instances, for
``deleted=True`` lists, actions and faults of deleted servers); everything
else is deleted outright.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stratus.db.base import ID, UTCDateTime, new_id, new_metadata, utcnow

metadata = new_metadata()

_PK = {"primary_key": True, "autoincrement": True}


class Base(DeclarativeBase):
    metadata = metadata


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_project_deleted", "project_id", "deleted"),
                      Index("ix_instances_host", "host"))

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    uuid: Mapped[str] = mapped_column(ID, unique=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255), default=None)
    hostname: Mapped[str] = mapped_column(String(255), default="")
    vm_state: Mapped[str] = mapped_column(String(32))
    task_state: Mapped[str | None] = mapped_column(String(48), default=None)
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    prior_vm_state: Mapped[str | None] = mapped_column(String(32), default=None)
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    node: Mapped[str | None] = mapped_column(String(255), default=None)
    availability_zone: Mapped[str | None] = mapped_column(String(255), default=None)
    pinned_availability_zone: Mapped[str | None] = mapped_column(String(255), default=None)
    flavor: Mapped[dict[str, Any]] = mapped_column(JSON)
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    new_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    image_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    rescue_image_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    shelved_image_id: Mapped[str | None] = mapped_column(String(64), default=None)
    key_name: Mapped[str | None] = mapped_column(String(255), default=None)
    key_data: Mapped[str | None] = mapped_column(Text, default=None)
    user_data: Mapped[str | None] = mapped_column(Text, default=None)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    config_drive: Mapped[str] = mapped_column(String(8), default="")
    access_ip_v4: Mapped[str] = mapped_column(String(64), default="")
    access_ip_v6: Mapped[str] = mapped_column(String(64), default="")
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(16), default=None)
    locked_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    reservation_id: Mapped[str] = mapped_column(String(32), default="")
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    # OS-DCF:diskConfig: AUTO (True) or MANUAL (False).
    auto_disk_config: Mapped[bool] = mapped_column(Boolean, default=False)
    request_spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class InstanceTag(Base):
    __tablename__ = "instance_tags"

    instance_uuid: Mapped[str] = mapped_column(
        ID, ForeignKey("instances.uuid", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(80), primary_key=True)


class InstanceFault(Base):
    __tablename__ = "instance_faults"

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    instance_uuid: Mapped[str] = mapped_column(ID, index=True)
    code: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(255))
    details: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InstanceAction(Base):
    __tablename__ = "instance_actions"

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    instance_uuid: Mapped[str] = mapped_column(ID, index=True)
    action: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str] = mapped_column(ID)
    message: Mapped[str | None] = mapped_column(String(255), default=None)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class InstanceActionEvent(Base):
    __tablename__ = "instance_action_events"

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    action_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("instance_actions.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    result: Mapped[str | None] = mapped_column(String(32), default=None)
    traceback: Mapped[str | None] = mapped_column(Text, default=None)
    details: Mapped[str | None] = mapped_column(Text, default=None)
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Flavor(Base):
    __tablename__ = "flavors"

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    extra_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FlavorProject(Base):
    __tablename__ = "flavor_projects"

    flavor_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class KeyPair(Base):
    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    user_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16), default="ssh")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Quota(Base):
    """Per-project limits that differ from the defaults in the settings."""

    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(BigInteger)


class QuotaUsage(Base):
    """What a project uses now; changed only by conditional updates (see quotas.py)."""

    __tablename__ = "quota_usages"

    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    in_use: Mapped[int] = mapped_column(BigInteger, default=0)


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary"),)

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    uuid: Mapped[str] = mapped_column(ID, unique=True, default=new_id)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(255), default="internal")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_up: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ComputeNode(Base):
    """One host's resources; ``*_used`` change only through claims (scheduler/claims.py)."""

    __tablename__ = "compute_nodes"

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    uuid: Mapped[str] = mapped_column(ID, unique=True, default=new_id)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255))
    hypervisor_type: Mapped[str] = mapped_column(String(64))
    hypervisor_version: Mapped[int] = mapped_column(Integer)
    host_ip: Mapped[str] = mapped_column(String(64), default="127.0.0.1")
    cpu_info: Mapped[str] = mapped_column(Text, default="{}")
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    local_gb: Mapped[int] = mapped_column(Integer)
    vcpus_used: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb_used: Mapped[int] = mapped_column(Integer, default=0)
    local_gb_used: Mapped[int] = mapped_column(Integer, default=0)
    running_vms: Mapped[int] = mapped_column(Integer, default=0)
    cpu_allocation_ratio: Mapped[float] = mapped_column(Float, default=4.0)
    ram_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    disk_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    reserved_host_memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    reserved_host_disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    reserved_host_cpus: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Allocation(Base):
    """Resources held on a node by a consumer (an instance, or a migration's source side)."""

    __tablename__ = "allocations"

    consumer_uuid: Mapped[str] = mapped_column(ID, primary_key=True)
    node_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("compute_nodes.id", ondelete="CASCADE"), primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(ID, index=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)


class Migration(Base):
    __tablename__ = "migrations"

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    uuid: Mapped[str] = mapped_column(ID, unique=True, default=new_id)
    instance_uuid: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str] = mapped_column(ID)
    migration_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    source_compute: Mapped[str | None] = mapped_column(String(255), default=None)
    source_node: Mapped[str | None] = mapped_column(String(255), default=None)
    dest_compute: Mapped[str | None] = mapped_column(String(255), default=None)
    dest_node: Mapped[str | None] = mapped_column(String(255), default=None)
    dest_host: Mapped[str | None] = mapped_column(String(255), default=None)
    old_flavor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    new_flavor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # Progress of a live migration as the source driver reports it (Nova's fields).
    memory_total: Mapped[int | None] = mapped_column(BigInteger, default=None)
    memory_processed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    memory_remaining: Mapped[int | None] = mapped_column(BigInteger, default=None)
    disk_total: Mapped[int | None] = mapped_column(BigInteger, default=None)
    disk_processed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    disk_remaining: Mapped[int | None] = mapped_column(BigInteger, default=None)
    downtime_ms: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Aggregate(Base):
    """A host aggregate; its ``availability_zone`` metadata key makes it a zone."""

    __tablename__ = "aggregates"

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    uuid: Mapped[str] = mapped_column(ID, unique=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AggregateHost(Base):
    __tablename__ = "aggregate_hosts"

    aggregate_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("aggregates.id", ondelete="CASCADE"), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)


class ServerGroup(Base):
    __tablename__ = "server_groups"

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    uuid: Mapped[str] = mapped_column(ID, unique=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    policy: Mapped[str] = mapped_column(String(32))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    project_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServerGroupMember(Base):
    __tablename__ = "server_group_members"

    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("server_groups.id", ondelete="CASCADE"), primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(ID, primary_key=True)


class InstanceInfoCache(Base):
    """An instance's ports as last read from the network service (Nova's info cache):
    the server views read addresses here instead of calling the network service."""

    __tablename__ = "instance_info_caches"

    instance_uuid: Mapped[str] = mapped_column(ID, primary_key=True)
    network_info: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsoleAuthToken(Base):
    """A remote console's token (Nova's console_auth_tokens): only its sha256 is kept,
    with where the console is; the proxy finds the row by hashing what it is shown."""

    __tablename__ = "console_auth_tokens"

    id: Mapped[int] = mapped_column(Integer, **_PK)  # type: ignore[arg-type]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    console_type: Mapped[str] = mapped_column(String(32))
    instance_uuid: Mapped[str] = mapped_column(ID, index=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    internal_access_path: Mapped[str | None] = mapped_column(String(255), default=None)
    access_url_base: Mapped[str] = mapped_column(String(255), default="")
    expires: Mapped[int] = mapped_column(BigInteger, index=True)  # unix time, as Nova
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
