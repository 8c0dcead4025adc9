"""Subnets: CIDR, gateway, allocation pools, DNS, host routes, IPv6 modes, overlap rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, or_, select

from stratus.db.base import new_id
from stratus.errors import BadRequest, Conflict, Forbidden
from stratus.network import ipam, networks, subnetpools
from stratus.network import models as m
from stratus.network.access import Caller, not_found
from stratus.network.store import Tx, bump, drop_tags, reserve, stamps, standard, tags_of

INFRA_OWNERS = ("network:dhcp",)


def view(row: Any, tags: dict[str, list[str]]) -> dict[str, Any]:
    out = standard(row, tags)
    out.update({
        "network_id": row.network_id, "ip_version": row.ip_version, "cidr": row.cidr,
        "gateway_ip": row.gateway_ip, "allocation_pools": row.allocation_pools,
        "dns_nameservers": row.dns_nameservers, "host_routes": row.host_routes,
        "enable_dhcp": row.enable_dhcp, "ipv6_ra_mode": row.ipv6_ra_mode,
        "ipv6_address_mode": row.ipv6_address_mode, "subnetpool_id": row.subnetpool_id,
        "service_types": [], "segment_id": None, "router:external": row.external,
    })
    return out


def _net_target(net: Any) -> dict[str, Any]:
    return networks.target(net)


async def _joined(tx: Tx, where: Any = None) -> list[tuple[Any, Any]]:
    stmt = select(m.subnets, m.networks.c.shared, m.networks.c.external,
                  m.networks.c.project_id.label("net_project")).join(
        m.networks, m.networks.c.id == m.subnets.c.network_id)
    if where is not None:
        stmt = stmt.where(where)
    return list(await tx.s.execute(stmt))


def _target(row: Any) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id, "shared": row.shared,
            "router:external": row.external}


async def visible_row(tx: Tx, caller: Caller, subnet_id: str) -> Any:
    rows = await _joined(tx, m.subnets.c.id == subnet_id)
    if not rows:
        raise not_found("subnet", subnet_id)
    caller.visible_or_404("subnet", _target(rows[0]))
    return rows[0]


async def show(tx: Tx, caller: Caller, subnet_id: str) -> dict[str, Any]:
    row = await visible_row(tx, caller, subnet_id)
    return view(row, await tags_of(tx, [row.id]))


async def listing(tx: Tx, caller: Caller) -> list[dict[str, Any]]:
    where = None
    if not caller.is_admin:
        where = or_(m.subnets.c.project_id == caller.project_id, m.networks.c.shared.is_(True),
                    m.networks.c.external.is_(True))
    rows = caller.visible("subnet", await _joined(tx, where), _target)
    tags = await tags_of(tx, [r.id for r in rows])
    return [view(r, tags) for r in rows]


async def create(tx: Tx, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    if "network_id" not in body:
        raise BadRequest("Failed to parse request. Required attribute 'network_id' not "
                         "specified", kind="HTTPBadRequest")
    net = await networks.visible_row(tx, caller, body["network_id"])
    project = body.get("project_id") or caller.project_id
    caller.enforce("create", "subnet", {"project_id": project})
    if not caller.is_admin and net.project_id != caller.project_id:
        raise Forbidden(f"Tenant {caller.project_id} not allowed to create subnet on this "
                        "network", kind="PolicyNotAuthorized")
    pool = await subnetpools.pool_for(tx, caller, body)
    if pool is None and body.get("cidr") is None:
        raise BadRequest("Bad subnets request: a subnetpool must be specified in the absence "
                         "of a cidr.", kind="BadRequest")
    version = body.get("ip_version", pool.ip_version if pool is not None else 4)
    net_cidr = ipam.parse_cidr(body["cidr"]) if pool is None else \
        await subnetpools.allocate_cidr(tx, pool, body)
    if net_cidr.version != version:
        raise ipam.invalid(f"Cidr {body['cidr']} does not match ip_version {version}.")
    if version == 4 and net_cidr.prefixlen > 32 or net_cidr.prefixlen == 0:
        raise ipam.invalid(f"'{body['cidr']}' is not a valid subnet cidr.")
    await reserve(tx, project, "subnet")
    ra, addr = body.get("ipv6_ra_mode"), body.get("ipv6_address_mode")
    ipam.check_ipv6_modes(version, ra, addr, net_cidr)
    gateway = _gateway(body, net_cidr)
    if "allocation_pools" in body and body["allocation_pools"] is not None:
        pools = ipam.parse_pools(body["allocation_pools"], net_cidr)
    else:
        pools = ipam.default_pools(net_cidr, gateway)
    if gateway is not None:
        ipam.check_gateway(gateway, net_cidr, pools)
    others = [r[0] for r in await tx.s.execute(
        select(m.subnets.c.cidr).where(m.subnets.c.network_id == net.id))]
    ipam.check_overlap(net_cidr, others, net.id)
    subnet_id = new_id()
    await tx.s.execute(insert(m.subnets).values(
        id=subnet_id, project_id=project, name=body.get("name", ""),
        description=body.get("description", ""), network_id=net.id, ip_version=version,
        cidr=str(net_cidr), gateway_ip=str(gateway) if gateway else None,
        enable_dhcp=body.get("enable_dhcp", True), ipv6_ra_mode=ra, ipv6_address_mode=addr,
        allocation_pools=[p.as_dict() for p in pools],
        dns_nameservers=ipam.check_dns(body.get("dns_nameservers") or []),
        host_routes=ipam.check_host_routes(body.get("host_routes") or [], version),
        subnetpool_id=pool.id if pool is not None else None, **stamps()))
    await bump(tx, m.networks, net.id)
    item = await show(tx, caller, subnet_id)
    tx.emit("subnet_update", subnet=item)
    return item


def _gateway(body: dict[str, Any], net: ipam.IPNetwork) -> ipam.IPAddress | None:
    if "gateway_ip" not in body:
        first, _ = ipam.host_bounds(net)
        return first
    if body["gateway_ip"] is None:
        return None
    return ipam.parse_ip(body["gateway_ip"], "gateway_ip")


async def update(tx: Tx, caller: Caller, subnet_id: str, body: dict[str, Any]
                 ) -> dict[str, Any]:
    row = await visible_row(tx, caller, subnet_id)
    caller.enforce("update", "subnet", _target(row))
    net_cidr = ipam.parse_cidr(row.cidr)
    values: dict[str, Any] = {k: body[k] for k in ("name", "description", "enable_dhcp")
                              if k in body}
    pools = ipam.pools_of(row.allocation_pools)
    if "allocation_pools" in body:
        pools = ipam.parse_pools(body["allocation_pools"] or [], net_cidr)
        values["allocation_pools"] = [p.as_dict() for p in pools]
    gateway = ipam.parse_ip(row.gateway_ip) if row.gateway_ip else None
    if "gateway_ip" in body:
        gateway = None if body["gateway_ip"] is None else ipam.parse_ip(body["gateway_ip"])
        values["gateway_ip"] = str(gateway) if gateway else None
    if gateway is not None and ("gateway_ip" in body or "allocation_pools" in body):
        ipam.check_gateway(gateway, net_cidr, pools)
    if "dns_nameservers" in body:
        values["dns_nameservers"] = ipam.check_dns(body["dns_nameservers"] or [])
    if "host_routes" in body:
        values["host_routes"] = ipam.check_host_routes(body["host_routes"] or [],
                                                       row.ip_version)
    await bump(tx, m.subnets, subnet_id, values)
    item = await show(tx, caller, subnet_id)
    tx.emit("subnet_update", subnet=item)
    return item


async def delete_(tx: Tx, caller: Caller, subnet_id: str) -> None:
    row = await visible_row(tx, caller, subnet_id)
    caller.enforce("delete", "subnet", _target(row))
    a, p = m.ip_allocations.c, m.ports.c
    stmt = select(a.port_id).join(m.ports, p.id == a.port_id).where(
        a.subnet_id == subnet_id, ~p.device_owner.in_(INFRA_OWNERS)).limit(1)
    if row.ip_version == 6 and row.ipv6_address_mode in ipam.AUTO_ADDRESS_MODES:
        # SLAAC addresses are derived, not handed out: ports just lose them (as in
        # Neutron); only a router interface on the subnet keeps it in use.
        stmt = stmt.where(p.device_owner == "network:router_interface")
    busy = await tx.s.execute(stmt)
    if busy.first() is not None:
        raise Conflict(f"Unable to complete operation on subnet {subnet_id}: One or more "
                       "ports have an IP allocation from this subnet.", kind="SubnetInUse")
    await tx.s.execute(delete(m.ip_allocations).where(a.subnet_id == subnet_id))
    await drop_tags(tx, subnet_id)
    await tx.s.execute(delete(m.subnets).where(m.subnets.c.id == subnet_id))
    await bump(tx, m.networks, row.network_id)
    tx.emit("subnet_delete", subnet_id=subnet_id, network_id=row.network_id)
