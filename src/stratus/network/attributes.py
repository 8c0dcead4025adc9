"""What each resource accepts: the attribute map of the API (Neutron's RESOURCE_ATTRIBUTE_MAP).

One table per resource says which attributes a POST or PUT may carry, how
they are converted and which only admins may set. The body checks in
:func:`check_body` read it; the domain modules receive clean values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stratus.api.context import RequestContext
from stratus.errors import BadRequest, Forbidden

Convert = Callable[[Any, str], Any]


def bad(name: str, reason: str) -> BadRequest:
    return BadRequest(f"Invalid input for {name}. Reason: {reason}", kind="InvalidInput")


def to_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise bad(name, f"'{value}' cannot be converted to boolean.")


def to_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise bad(name, f"'{value}' is not an integer.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(name, f"'{value}' is not an integer.") from None


def to_int_or_none(value: Any, name: str) -> int | None:
    return None if value is None else to_int(value, name)


def string(limit: int) -> Convert:
    def conv(value: Any, name: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise bad(name, f"'{value}' is not a valid string.")
        if len(value) > limit:
            raise bad(name, f"'{value}' exceeds maximum length of {limit}.")
        return value
    return conv


def string_or_none(limit: int) -> Convert:
    inner = string(limit)
    return lambda value, name: None if value is None else inner(value, name)


def any_json(value: Any, name: str) -> Any:
    return value


def list_of(kind: type) -> Convert:
    def conv(value: Any, name: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
            raise bad(name, f"'{value}' is not a list of {kind.__name__}.")
        return value
    return conv


def dict_or_empty(value: Any, name: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise bad(name, f"'{value}' is not a dictionary.")
    return value


def one_of(*choices: Any, nullable: bool = False) -> Convert:
    def conv(value: Any, name: str) -> Any:
        if value is None and nullable:
            return None
        if value not in choices:
            raise bad(name, f"'{value}' is not in {list(choices)}.")
        return value
    return conv


@dataclass(frozen=True)
class Attr:
    convert: Convert = any_json
    post: bool = True
    put: bool = True
    admin: bool = False  # only admins may set it


NAME, DESC = string(255), string(255)
PROJECT = Attr(string(255), put=False)
STD = {"name": Attr(NAME), "description": Attr(DESC), "project_id": PROJECT,
       "tenant_id": PROJECT}

NETWORK = {
    **STD,
    "admin_state_up": Attr(to_bool),
    "shared": Attr(to_bool, admin=True),
    "router:external": Attr(to_bool, admin=True),
    "is_default": Attr(to_bool, admin=True),
    "mtu": Attr(to_int),
    "port_security_enabled": Attr(to_bool),
    "provider:network_type": Attr(string(16), admin=True, put=False),
    "provider:physical_network": Attr(string_or_none(64), admin=True, put=False),
    "provider:segmentation_id": Attr(to_int_or_none, admin=True, put=False),
    "availability_zone_hints": Attr(list_of(str)),
    "dns_domain": Attr(string(255)),
    "qos_policy_id": Attr(string_or_none(36)),
}

SUBNET = {
    **STD,
    "network_id": Attr(string(36), put=False),
    "ip_version": Attr(one_of(4, 6), put=False),
    "cidr": Attr(string_or_none(64), put=False),
    "prefixlen": Attr(to_int, put=False),
    "subnetpool_id": Attr(string_or_none(36), put=False),
    "use_default_subnetpool": Attr(to_bool, put=False),
    "gateway_ip": Attr(string_or_none(64)),
    "allocation_pools": Attr(),
    "dns_nameservers": Attr(),
    "host_routes": Attr(),
    "enable_dhcp": Attr(to_bool),
    "ipv6_ra_mode": Attr(string_or_none(32), put=False),
    "ipv6_address_mode": Attr(string_or_none(32), put=False),
    "service_types": Attr(list_of(str)),
    "segment_id": Attr(string_or_none(36), put=False),
    "dns_publish_fixed_ip": Attr(to_bool),
}

SUBNETPOOL = {
    **STD,
    "prefixes": Attr(list_of(str)),
    "default_prefixlen": Attr(to_int),
    "min_prefixlen": Attr(to_int),
    "max_prefixlen": Attr(to_int),
    "shared": Attr(to_bool, admin=True, put=False),
    "is_default": Attr(to_bool, admin=True),
    "default_quota": Attr(to_int_or_none),
    "address_scope_id": Attr(one_of(None, nullable=True)),
}

PORT = {
    **STD,
    "network_id": Attr(string(36), put=False),
    "admin_state_up": Attr(to_bool),
    "mac_address": Attr(string(32)),
    "fixed_ips": Attr(),
    "device_id": Attr(string(255)),
    "device_owner": Attr(string(255)),
    "security_groups": Attr(),
    "port_security_enabled": Attr(to_bool),
    "allowed_address_pairs": Attr(),
    "binding:host_id": Attr(string(255), admin=True),
    "binding:profile": Attr(dict_or_empty, admin=True),
    "binding:vnic_type": Attr(one_of("normal", "direct", "macvtap", "baremetal",
                                     "direct-physical", "virtio-forwarder", "smart-nic",
                                     "remote-managed")),
    "dns_name": Attr(string(255)),
    "extra_dhcp_opts": Attr(),
    "qos_policy_id": Attr(string_or_none(36)),
    "propagate_uplink_status": Attr(to_bool),
}

ROUTER = {
    **STD,
    "admin_state_up": Attr(to_bool),
    "external_gateway_info": Attr(),
    "routes": Attr(),
    "distributed": Attr(to_bool, admin=True),
    "ha": Attr(to_bool, admin=True),
    "availability_zone_hints": Attr(list_of(str)),
    "flavor_id": Attr(string_or_none(36)),
}

FLOATINGIP = {
    "project_id": PROJECT, "tenant_id": PROJECT, "description": Attr(DESC),
    "floating_network_id": Attr(string(36), put=False),
    "floating_ip_address": Attr(string(64), put=False),
    "subnet_id": Attr(string_or_none(36), put=False),
    "port_id": Attr(string_or_none(36)),
    "fixed_ip_address": Attr(string_or_none(64)),
    "dns_name": Attr(string(255), put=False),
    "dns_domain": Attr(string(255), put=False),
    "qos_policy_id": Attr(string_or_none(36)),
}

SECURITY_GROUP = {**STD, "stateful": Attr(to_bool)}

SECURITY_GROUP_RULE = {
    "project_id": PROJECT, "tenant_id": PROJECT, "description": Attr(DESC, put=True),
    "security_group_id": Attr(string(36), put=False),
    "direction": Attr(one_of("ingress", "egress"), put=False),
    "ethertype": Attr(one_of("IPv4", "IPv6"), put=False),
    "protocol": Attr(any_json, put=False),
    "port_range_min": Attr(to_int_or_none, put=False),
    "port_range_max": Attr(to_int_or_none, put=False),
    "remote_ip_prefix": Attr(string_or_none(64), put=False),
    "remote_group_id": Attr(string_or_none(36), put=False),
    "remote_address_group_id": Attr(string_or_none(36), put=False),
}

# Agents are created by their own reports; the API may only change these two.
AGENT = {
    "admin_state_up": Attr(to_bool, post=False),
    "description": Attr(string_or_none(255), post=False),
    **{name: Attr(post=False, put=False) for name in (
        "id", "agent_type", "binary", "topic", "host", "availability_zone", "alive",
        "configurations", "created_at", "started_at", "heartbeat_timestamp",
        "resources_synced")},
}

# Attributes shown only to admins (Neutron's policy hides them from others).
ADMIN_VISIBLE = {
    "network": ("provider:network_type", "provider:physical_network",
                "provider:segmentation_id"),
    "port": ("binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details"),
}


def check_body(spec: Mapping[str, Attr], body: dict[str, Any], ctx: RequestContext, *,
               create: bool, resource: str) -> dict[str, Any]:
    """Convert ``body`` per ``spec``; 400 for unknown or read-only attributes, 403 for admin ones."""
    unknown = sorted(k for k in body if k not in spec)
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'",
                         kind="HTTPBadRequest")
    out: dict[str, Any] = {}
    for key, value in body.items():
        attr = spec[key]
        if not create and not attr.put:
            raise BadRequest(f"Cannot update read-only attribute {key}", kind="HTTPBadRequest")
        if attr.admin and not ctx.is_admin:
            raise Forbidden(f"(rule:{'create' if create else 'update'}_{resource}:{key}) "
                            "is disallowed by policy", kind="PolicyNotAuthorized")
        out[key] = attr.convert(value, key)
    if "tenant_id" in out:
        out.setdefault("project_id", out.pop("tenant_id"))
        out.pop("tenant_id", None)
    if create and out.get("project_id") not in (None, ctx.project_id) and not ctx.is_admin:
        raise BadRequest("Specifying 'project_id' or 'tenant_id' other than the authenticated "
                         "project in request requires admin privileges", kind="HTTPBadRequest")
    return out


def hide_for(resource: str, item: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    if ctx.is_admin:
        return item
    for key in ADMIN_VISIBLE.get(resource, ()):
        item.pop(key, None)
    return item
