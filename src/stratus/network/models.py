"""The network service's tables. Only this service reads or writes them.

Concurrency guarantees live in constraints, not in Python:

* ``ip_allocations`` has the primary key (subnet_id, ip_address): two
  transactions that pick the same address cannot both commit; the loser
  retries with another address (:mod:`stratus.network.store`).
* ``ports`` has a unique (network_id, mac_address).
* ``segment_allocations`` makes each segmentation id usable by one network.
* ``default_security_groups`` has one row per project: concurrent first
  uses create exactly one ``default`` group.
* ``project_locks`` is the row a quota-checked create updates first, so the
  count it then reads cannot be raced by another worker.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from stratus.db.base import UTCDateTime, new_metadata

metadata = new_metadata()

ID = String(36)
PROJECT = String(64)


def _standard() -> list[Column[object]]:
    return [
        Column("project_id", PROJECT, nullable=False, index=True),
        Column("name", String(255), nullable=False, default=""),
        Column("description", String(255), nullable=False, default=""),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Column("revision_number", Integer, nullable=False, default=0),
    ]


networks = Table(
    "networks", metadata,
    Column("id", ID, primary_key=True),
    *_standard(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False),
    Column("shared", Boolean, nullable=False, default=False),
    Column("external", Boolean, nullable=False, default=False),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("mtu", Integer, nullable=False),
    Column("port_security_enabled", Boolean, nullable=False, default=True),
    Column("network_type", String(16), nullable=False),
    Column("physical_network", String(64), nullable=True),
    Column("segmentation_id", Integer, nullable=True),
)

segment_allocations = Table(
    "segment_allocations", metadata,
    Column("network_type", String(16), primary_key=True),
    Column("physical_network", String(64), primary_key=True),  # "" when none
    Column("segmentation_id", Integer, primary_key=True),
    Column("network_id", ID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
)

subnets = Table(
    "subnets", metadata,
    Column("id", ID, primary_key=True),
    *_standard(),
    Column("network_id", ID, ForeignKey("networks.id"), nullable=False, index=True),
    Column("ip_version", Integer, nullable=False),
    Column("cidr", String(64), nullable=False),
    Column("gateway_ip", String(64), nullable=True),
    Column("enable_dhcp", Boolean, nullable=False, default=True),
    Column("ipv6_ra_mode", String(32), nullable=True),
    Column("ipv6_address_mode", String(32), nullable=True),
    Column("allocation_pools", JSON, nullable=False),
    Column("dns_nameservers", JSON, nullable=False),
    Column("host_routes", JSON, nullable=False),
    Column("subnetpool_id", ID, nullable=True, index=True),
)

subnetpools = Table(
    "subnetpools", metadata,
    Column("id", ID, primary_key=True),
    *_standard(),
    Column("ip_version", Integer, nullable=False),
    Column("prefixes", JSON, nullable=False),
    Column("default_prefixlen", Integer, nullable=False),
    Column("min_prefixlen", Integer, nullable=False),
    Column("max_prefixlen", Integer, nullable=False),
    Column("shared", Boolean, nullable=False, default=False),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("default_quota", Integer, nullable=True),
)

ports = Table(
    "ports", metadata,
    Column("id", ID, primary_key=True),
    *_standard(),
    Column("network_id", ID, ForeignKey("networks.id"), nullable=False, index=True),
    Column("mac_address", String(32), nullable=False),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False),
    Column("device_id", String(255), nullable=False, default="", index=True),
    Column("device_owner", String(255), nullable=False, default=""),
    Column("binding_host_id", String(255), nullable=False, default=""),
    Column("binding_vnic_type", String(32), nullable=False, default="normal"),
    Column("binding_vif_type", String(32), nullable=False, default="unbound"),
    Column("binding_vif_details", JSON, nullable=False),
    Column("binding_profile", JSON, nullable=False),
    Column("port_security_enabled", Boolean, nullable=False, default=True),
    Column("allowed_address_pairs", JSON, nullable=False),
    UniqueConstraint("network_id", "mac_address", name="uq_ports_network_id_mac_address"),
)

ip_allocations = Table(
    "ip_allocations", metadata,
    Column("subnet_id", ID, ForeignKey("subnets.id"), primary_key=True),
    Column("ip_address", String(64), primary_key=True),
    Column("network_id", ID, nullable=False, index=True),
    Column("port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), nullable=False,
           index=True),
)

security_groups = Table(
    "security_groups", metadata,
    Column("id", ID, primary_key=True),
    *_standard(),
    Column("stateful", Boolean, nullable=False, default=True),
)

default_security_groups = Table(
    "default_security_groups", metadata,
    Column("project_id", PROJECT, primary_key=True),
    Column("security_group_id", ID, ForeignKey("security_groups.id", ondelete="CASCADE"),
           nullable=False),
)

security_group_rules = Table(
    "security_group_rules", metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", PROJECT, nullable=False, index=True),
    Column("security_group_id", ID, ForeignKey("security_groups.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("remote_group_id", ID, ForeignKey("security_groups.id", ondelete="CASCADE"),
           nullable=True),
    Column("direction", String(16), nullable=False),
    Column("ethertype", String(8), nullable=False),
    Column("protocol", String(40), nullable=True),
    Column("port_range_min", Integer, nullable=True),
    Column("port_range_max", Integer, nullable=True),
    Column("remote_ip_prefix", String(64), nullable=True),
    Column("description", String(255), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("revision_number", Integer, nullable=False, default=0),
)

port_security_groups = Table(
    "port_security_groups", metadata,
    Column("port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("security_group_id", ID, ForeignKey("security_groups.id"), primary_key=True,
           index=True),
)

routers = Table(
    "routers", metadata,
    Column("id", ID, primary_key=True),
    *_standard(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False),
    Column("gw_port_id", ID, nullable=True),
    Column("external_network_id", ID, nullable=True),
    Column("enable_snat", Boolean, nullable=False, default=True),
    Column("routes", JSON, nullable=False),
)

floatingips = Table(
    "floatingips", metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", PROJECT, nullable=False, index=True),
    Column("description", String(255), nullable=False, default=""),
    Column("floating_network_id", ID, nullable=False),
    Column("floating_ip_address", String(64), nullable=False),
    Column("floating_port_id", ID, ForeignKey("ports.id"), nullable=False),
    Column("port_id", ID, ForeignKey("ports.id"), nullable=True, index=True),
    Column("fixed_ip_address", String(64), nullable=True),
    Column("router_id", ID, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("revision_number", Integer, nullable=False, default=0),
    UniqueConstraint("port_id", "fixed_ip_address", name="uq_floatingips_port_id_fixed_ip"),
)

tags = Table(
    "network_tags", metadata,
    Column("resource_id", ID, primary_key=True),
    Column("tag", String(255), primary_key=True),
    Index("ix_network_tags_tag", "tag"),
)

quotas = Table(
    "network_quotas", metadata,
    Column("project_id", PROJECT, primary_key=True),
    Column("resource", String(64), primary_key=True),
    Column("hard_limit", Integer, nullable=False),
)

project_locks = Table(
    "network_project_locks", metadata,
    Column("project_id", PROJECT, primary_key=True),
    Column("generation", Integer, nullable=False, default=0),
)

# One get-me-a-network topology per project; the primary key makes concurrent
# first requests create exactly one (the loser's transaction retries and finds it).
auto_allocated_topologies = Table(
    "auto_allocated_topologies", metadata,
    Column("project_id", PROJECT, primary_key=True),
    Column("network_id", ID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
    Column("router_id", ID, nullable=True),
)

# The agents that report to this service, one row per (agent_type, host), as
# Neutron's ``agents``. The unique key makes two first reports of one agent
# create one row (the loser's transaction retries and updates it).
agents = Table(
    "network_agents", metadata,
    Column("id", ID, primary_key=True),
    Column("agent_type", String(255), nullable=False),
    Column("binary", String(255), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("availability_zone", String(255), nullable=True),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("description", String(255), nullable=True),
    Column("configurations", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_timestamp", UTCDateTime, nullable=False),
    UniqueConstraint("agent_type", "host", name="uq_network_agents_agent_type_host"),
)
