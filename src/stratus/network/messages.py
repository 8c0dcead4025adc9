"""What the network service tells agents, and what agents report back.

The network API owns the model; an agent on each host makes it real. Every
message carries the *desired state* of one object in full, so an agent can
apply it idempotently (reconcile, don't patch) and can rebuild everything
after a restart from :data:`SYNC` alone. All messages are plain JSON on the
bus (``dataclasses.asdict``); readers ignore fields they do not know.

Server → agent (topic :data:`AGENT_TOPIC`):

* ``port_update(port=PortState)`` — cast to ``network-agent.<host>``: wire
  the port (tap, bridge, security-group rules) and report its status.
* ``port_delete(port_id, host)`` — cast to the host that had it.
* ``network_delete(network_id)`` — fanout: drop bridges and DHCP.
* ``subnet_update(subnet=DhcpState)`` / ``subnet_delete(subnet_id, network_id)``
  — fanout: (re)configure the DHCP server for the subnet's network.
* ``router_update(router=RouterState)`` / ``router_delete(router_id)`` —
  fanout: the agent hosting routers builds the namespace, SNAT and floating
  IP NAT.
* ``security_group_update(group=SecurityGroupState)`` — fanout: rewrite the
  rules of every local port in the group.

Agent → server (topic :data:`SERVER_TOPIC`, ``call``):

* ``report_port_status(port_id, status, host)`` — ``ACTIVE`` when wired,
  ``DOWN`` when not; the server updates the port and notifies
  ``port.status.<status>`` (compute waits on that for ``network-vif-plugged``).
* ``sync(host)`` — the full desired state for the host:
  ``{"ports": [...], "subnets": [...], "routers": [...], "security_groups": [...]}``.
* ``report_state(agent=AgentState)`` — every ``network.report_interval``
  seconds (Neutron's report_state): the server records the agent and its
  heartbeat (``GET /v2.0/agents``) and answers :data:`AGENT_NEW`,
  :data:`AGENT_ALIVE` or :data:`AGENT_REVIVED`; a revived agent resyncs, as
  it may have missed casts while the server thought it dead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

AGENT_TOPIC = "network-agent"
SERVER_TOPIC = "network-server"
VERSION = 1

AGENT_NEW, AGENT_ALIVE, AGENT_REVIVED = "new", "alive", "revived"


@dataclass(frozen=True)
class FixedIP:
    subnet_id: str
    ip_address: str


@dataclass(frozen=True)
class SecurityGroupRule:
    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


@dataclass(frozen=True)
class SecurityGroupState:
    id: str
    rules: tuple[SecurityGroupRule, ...] = ()
    # Addresses of the group's member ports, for rules with remote_group_id.
    member_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortState:
    id: str
    network_id: str
    mac_address: str
    host: str
    admin_state_up: bool
    device_owner: str
    device_id: str
    network_type: str
    physical_network: str | None
    segmentation_id: int | None
    mtu: int
    fixed_ips: tuple[FixedIP, ...] = ()
    port_security_enabled: bool = True
    security_group_ids: tuple[str, ...] = ()
    allowed_address_pairs: tuple[dict[str, str], ...] = ()
    v: int = VERSION


@dataclass(frozen=True)
class DhcpState:
    subnet_id: str
    network_id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None
    enable_dhcp: bool
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[dict[str, str], ...] = ()
    allocation_pools: tuple[dict[str, str], ...] = ()
    ipv6_address_mode: str | None = None
    ipv6_ra_mode: str | None = None
    # (mac, ip) of every port on the network, for static leases.
    hosts: tuple[tuple[str, str], ...] = ()
    v: int = VERSION


@dataclass(frozen=True)
class RouterInterface:
    port_id: str
    mac_address: str
    network_id: str
    fixed_ips: tuple[FixedIP, ...]
    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class FloatingIPMapping:
    floating_ip_address: str
    fixed_ip_address: str
    port_id: str


@dataclass(frozen=True)
class RouterState:
    id: str
    admin_state_up: bool
    gateway: RouterInterface | None
    enable_snat: bool
    interfaces: tuple[RouterInterface, ...] = ()
    routes: tuple[dict[str, str], ...] = ()
    floating_ips: tuple[FloatingIPMapping, ...] = ()
    v: int = VERSION


@dataclass(frozen=True)
class AgentState:
    """What an agent says about itself; the server adds the times."""

    agent_type: str
    binary: str
    host: str
    topic: str
    configurations: dict[str, Any] = field(default_factory=dict)
    availability_zone: str | None = None
    # True on the first report after the agent (re)started: the server sets started_at.
    start_flag: bool = False
    v: int = VERSION


def to_json(message: Any) -> dict[str, Any]:
    """A message as the plain JSON the bus carries."""
    return asdict(message)


@dataclass
class SyncState:
    ports: list[dict[str, Any]] = field(default_factory=list)
    subnets: list[dict[str, Any]] = field(default_factory=list)
    routers: list[dict[str, Any]] = field(default_factory=list)
    security_groups: list[dict[str, Any]] = field(default_factory=list)
