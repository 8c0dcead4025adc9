"""Routers: external gateway (with SNAT flag), interfaces by subnet or port, static routes."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import insert, select

from stratus.db.base import new_id
from stratus.errors import BadRequest, Conflict, NotFound
from stratus.network import allocations, ipam, networks, ports, subnets
from stratus.network import models as m
from stratus.network.access import Caller, not_found
from stratus.network.store import Tx, bump, drop_tags, reserve, stamps, standard, tags_of

INTERFACE = "network:router_interface"
GATEWAY = "network:router_gateway"


async def _gateway_info(tx: Tx, row: Any) -> dict[str, Any] | None:
    if row.gw_port_id is None:
        return None
    ips = (await allocations.fixed_ips_of(tx, [row.gw_port_id])).get(row.gw_port_id, [])
    return {"network_id": row.external_network_id, "enable_snat": row.enable_snat,
            "external_fixed_ips": ips}


async def view(tx: Tx, row: Any) -> dict[str, Any]:
    out = standard(row, await tags_of(tx, [row.id]))
    out.update({
        "admin_state_up": row.admin_state_up, "status": row.status,
        "external_gateway_info": await _gateway_info(tx, row), "routes": row.routes,
        "distributed": False, "ha": False, "availability_zone_hints": [],
        "availability_zones": ["nova"], "flavor_id": None,
    })
    return out


def _target(row: Any) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id}


async def visible_row(tx: Tx, caller: Caller, router_id: str) -> Any:
    row = (await tx.s.execute(select(m.routers).where(m.routers.c.id == router_id))).first()
    if row is None:
        raise not_found("router", router_id)
    caller.visible_or_404("router", _target(row))
    return row


async def show(tx: Tx, caller: Caller, router_id: str) -> dict[str, Any]:
    return await view(tx, await visible_row(tx, caller, router_id))


async def listing(tx: Tx, caller: Caller) -> list[dict[str, Any]]:
    stmt = select(m.routers)
    if not caller.is_admin:
        stmt = stmt.where(m.routers.c.project_id == caller.project_id)
    return [await view(tx, r) for r in caller.visible("router", await tx.s.execute(stmt),
                                                      _target)]


async def _set_gateway(tx: Tx, caller: Caller, row: Any, info: Any) -> None:
    """Replace the router's gateway with ``info`` (None clears it)."""
    if info is not None and not isinstance(info, dict):
        raise BadRequest("Invalid input for external_gateway_info.", kind="InvalidInput")
    if info is not None and not set(info) <= {"network_id", "enable_snat",
                                              "external_fixed_ips"}:
        raise BadRequest("Invalid input for external_gateway_info: unknown keys.",
                         kind="InvalidInput")
    same_net = info is not None and info.get("network_id") == row.external_network_id
    if row.gw_port_id is not None and (info is None or not same_net
                                       or "external_fixed_ips" in info):
        fip = (await tx.s.execute(select(m.floatingips.c.id).where(
            m.floatingips.c.router_id == row.id).limit(1))).first()
        if fip is not None and not same_net:
            raise Conflict(f"Gateway cannot be updated for router {row.id}, since a gateway to "
                           "external network is required by one or more floating IPs.",
                           kind="RouterExternalGatewayInUseByFloatingIp")
        await ports.delete_(tx, caller, row.gw_port_id, internal=True)
        await bump(tx, m.routers, row.id, {"gw_port_id": None, "external_network_id": None})
    if info is None or not info:
        return
    if not isinstance(info.get("network_id"), str):
        raise BadRequest("Invalid input for external_gateway_info: network_id is required.",
                         kind="InvalidInput")
    if not isinstance(info.get("external_fixed_ips", []), list):
        raise BadRequest("Invalid input for external_fixed_ips: a list is required.",
                         kind="InvalidInput")
    snat = info.get("enable_snat", True)
    if not isinstance(snat, bool):
        raise BadRequest("Invalid input for enable_snat.", kind="InvalidInput")
    if same_net and row.gw_port_id is not None and "external_fixed_ips" not in info:
        await bump(tx, m.routers, row.id, {"enable_snat": snat})
        return
    net = await networks.visible_row(tx, caller, info["network_id"])
    if not net.external:
        raise BadRequest(f"Bad router request: Network {net.id} is not an external network.",
                         kind="BadRequest")
    fixed = info.get("external_fixed_ips")
    port = await ports.create(tx, caller, {
        "network_id": net.id, "project_id": "", "device_owner": GATEWAY, "device_id": row.id,
        "fixed_ips": fixed, "port_security_enabled": False}, internal=True)
    if not port["fixed_ips"]:
        raise BadRequest(f"Bad router request: No IPs available on external network {net.id}.",
                         kind="BadRequest")
    await bump(tx, m.routers, row.id, {"gw_port_id": port["id"],
                                       "external_network_id": net.id, "enable_snat": snat})


async def _interface_nets(tx: Tx, router_id: str) -> list[tuple[str, str, str]]:
    """(port_id, subnet_id, cidr) of each interface of the router."""
    p, a, s = m.ports.c, m.ip_allocations.c, m.subnets.c
    rows = await tx.s.execute(select(p.id, a.subnet_id, s.cidr).join(
        m.ip_allocations, a.port_id == p.id).join(m.subnets, s.id == a.subnet_id).where(
        p.device_id == router_id, p.device_owner == INTERFACE))
    return [(r[0], r[1], r[2]) for r in rows]


async def _check_routes(tx: Tx, router_id: str, raw: Any) -> list[dict[str, str]]:
    routes = ipam.check_host_routes(raw)
    cidrs = [ipaddress.ip_network(c) for _, _, c in await _interface_nets(tx, router_id)]
    for route in routes:
        hop = ipaddress.ip_address(route["nexthop"])
        if not any(hop.version == c.version and hop in c for c in cidrs):
            raise BadRequest(f"Invalid format for routes: {route}, the nexthop is not "
                             "connected with router.", kind="InvalidRoutes")
    return routes


async def create(tx: Tx, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    project = body.get("project_id") or caller.project_id
    caller.enforce("create", "router", {"project_id": project})
    await reserve(tx, project, "router")
    router_id = new_id()
    await tx.s.execute(insert(m.routers).values(
        id=router_id, project_id=project, name=body.get("name", ""),
        description=body.get("description", ""), admin_state_up=body.get("admin_state_up", True),
        status="ACTIVE", enable_snat=True, routes=[], **stamps()))
    if body.get("external_gateway_info"):
        await _set_gateway(tx, caller, await visible_row(tx, caller, router_id),
                           body["external_gateway_info"])
    tx.emit("router_update", router_id=router_id)
    return await show(tx, caller, router_id)


async def update(tx: Tx, caller: Caller, router_id: str, body: dict[str, Any]
                 ) -> dict[str, Any]:
    row = await visible_row(tx, caller, router_id)
    caller.enforce("update", "router", _target(row))
    if "external_gateway_info" in body:
        await _set_gateway(tx, caller, row, body["external_gateway_info"])
    values = {k: body[k] for k in ("name", "description", "admin_state_up") if k in body}
    if "routes" in body:
        values["routes"] = await _check_routes(tx, router_id, body["routes"] or [])
    await bump(tx, m.routers, router_id, values)
    tx.emit("router_update", router_id=router_id)
    return await show(tx, caller, router_id)


async def delete_(tx: Tx, caller: Caller, router_id: str) -> None:
    row = await visible_row(tx, caller, router_id)
    caller.enforce("delete", "router", _target(row))
    if await _interface_nets(tx, router_id):
        raise Conflict(f"Router {router_id} still has ports", kind="RouterInUse")
    fip = (await tx.s.execute(select(m.floatingips.c.id).where(
        m.floatingips.c.router_id == router_id).limit(1))).first()
    if fip is not None:
        raise Conflict(f"Router {router_id} still has floating IPs associated",
                       kind="RouterInUse")
    if row.gw_port_id:
        await ports.delete_(tx, caller, row.gw_port_id, internal=True)
    await drop_tags(tx, router_id)
    from sqlalchemy import delete

    await tx.s.execute(delete(m.routers).where(m.routers.c.id == router_id))
    tx.emit("router_delete", router_id=router_id)


def _one_of(body: dict[str, Any]) -> tuple[str | None, str | None]:
    if not isinstance(body, dict):
        raise BadRequest("Bad router request: the body must be an object.", kind="BadRequest")
    subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
    for name, value in (("subnet_id", subnet_id), ("port_id", port_id)):
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"Invalid input for {name}. Reason: '{value}' is not a valid "
                             "UUID.", kind="InvalidInput")
    if (subnet_id is None) == (port_id is None):
        raise BadRequest("Bad router request: Either subnet_id or port_id must be specified.",
                         kind="BadRequest")
    return subnet_id, port_id


def _interface_info(row: Any, port: dict[str, Any]) -> dict[str, Any]:
    sids = [ip["subnet_id"] for ip in port["fixed_ips"]]
    return {"id": row.id, "tenant_id": row.project_id, "project_id": row.project_id,
            "port_id": port["id"], "network_id": port["network_id"],
            "subnet_id": sids[0] if sids else None, "subnet_ids": sids, "tags": []}


async def add_interface(tx: Tx, caller: Caller, router_id: str, body: dict[str, Any]
                        ) -> dict[str, Any]:
    row = await visible_row(tx, caller, router_id)
    caller.enforce("update", "router", _target(row))
    subnet_id, port_id = _one_of(body)
    existing = await _interface_nets(tx, router_id)
    if subnet_id is not None:
        subnet = await subnets.visible_row(tx, caller, subnet_id)
        if subnet.gateway_ip is None:
            raise BadRequest(f"Bad router request: Subnet {subnet_id} does not have a gateway "
                             "IP.", kind="BadRequest")
        wanted = [{"subnet_id": subnet_id, "ip_address": subnet.gateway_ip}]
        new_cidrs = [(subnet_id, subnet.cidr)]
    else:
        assert port_id is not None
        prow = await ports.visible_row(tx, caller, port_id)
        if prow.device_id or prow.device_owner:
            raise Conflict(f"Unable to complete operation on port {port_id} for network "
                           f"{prow.network_id}. Port already has an attached device "
                           f"{prow.device_id}.", kind="PortInUse")
        ips = (await allocations.fixed_ips_of(tx, [port_id])).get(port_id, [])
        if not ips:
            raise BadRequest("Bad router request: Router port must have at least one fixed "
                             "IP.", kind="BadRequest")
        new_cidrs = []
        for ip in ips:
            s_row = await subnets.visible_row(tx, caller, ip["subnet_id"])
            new_cidrs.append((s_row.id, s_row.cidr))
    for sid, cidr in new_cidrs:
        for _, other_sid, other in existing:
            if other_sid == sid:
                raise BadRequest(f"Bad router request: Router already has a port on subnet "
                                 f"{sid}.", kind="BadRequest")
            if ipaddress.ip_network(cidr).overlaps(ipaddress.ip_network(other)):
                raise BadRequest(f"Bad router request: Cidr {cidr} of subnet {sid} overlaps "
                                 f"with cidr {other} of subnet {other_sid}.", kind="BadRequest")
    if subnet_id is not None:
        port = await ports.create(tx, caller, {
            "network_id": subnet.network_id, "project_id": row.project_id,
            "device_owner": INTERFACE, "device_id": router_id, "fixed_ips": wanted,
            "port_security_enabled": False}, internal=True)
    else:
        port = await ports.update(tx, caller, port_id or "", {
            "device_owner": INTERFACE, "device_id": router_id}, internal=True)
    await bump(tx, m.routers, router_id)
    tx.emit("router_update", router_id=router_id)
    return _interface_info(row, port)


async def remove_interface(tx: Tx, caller: Caller, router_id: str, body: dict[str, Any]
                           ) -> dict[str, Any]:
    row = await visible_row(tx, caller, router_id)
    caller.enforce("update", "router", _target(row))
    subnet_id, port_id = _one_of(body)
    interfaces = await _interface_nets(tx, router_id)
    if port_id is not None:
        match = [i for i in interfaces if i[0] == port_id]
        if not match:
            raise NotFound(f"Router {router_id} does not have an interface with id {port_id}",
                           kind="RouterInterfaceNotFound")
    else:
        match = [i for i in interfaces if i[1] == subnet_id]
        if not match:
            raise NotFound(f"Router {router_id} has no interface on subnet {subnet_id}",
                           kind="RouterInterfaceNotFoundForSubnet")
    port = await ports.show_internal(tx, match[0][0])
    for _, sid, cidr in match:
        net = ipaddress.ip_network(cidr)
        fips = await tx.s.execute(select(m.floatingips.c.fixed_ip_address).where(
            m.floatingips.c.router_id == router_id,
            m.floatingips.c.fixed_ip_address.is_not(None)))
        if any(ipaddress.ip_address(f[0]) in net for f in fips
               if ipaddress.ip_address(f[0]).version == net.version):
            raise Conflict(f"Cannot remove router interface for subnet {sid}: a floating IP "
                           "uses it.", kind="RouterInterfaceInUseByFloatingIP")
        for route in row.routes:
            if ipaddress.ip_address(route["nexthop"]) in net:
                raise Conflict(f"Router interface for subnet {sid} on router {router_id} "
                               f"cannot be deleted, as it is required by one or more routes.",
                               kind="RouterInterfaceInUseByRoute")
    await ports.delete_(tx, caller, port["id"], internal=True)
    await bump(tx, m.routers, router_id)
    tx.emit("router_update", router_id=router_id)
    return _interface_info(row, port)


async def change_routes(tx: Tx, caller: Caller, router_id: str, body: dict[str, Any],
                        *, add: bool) -> dict[str, Any]:
    row = await visible_row(tx, caller, router_id)
    caller.enforce("update", "router", _target(row))
    given = body.get("routes") if isinstance(body, dict) else None
    if given is None:
        raise BadRequest("Invalid input: routes are required.", kind="InvalidInput")
    changes = ipam.check_host_routes(given)
    if add:
        await _check_routes(tx, router_id, changes)
        routes = list(row.routes) + [r for r in changes if r not in row.routes]
    else:
        routes = [r for r in row.routes if r not in changes]
    await bump(tx, m.routers, router_id, {"routes": routes})
    tx.emit("router_update", router_id=router_id)
    return await show(tx, caller, router_id)
