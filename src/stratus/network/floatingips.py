"""Floating IPs: allocated from an external network, associated through a router."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, insert, select

from stratus.db.base import new_id
from stratus.errors import BadRequest, Conflict, NotFound
from stratus.network import models as m
from stratus.network import networks, ports
from stratus.network.access import Caller, not_found
from stratus.network.store import Tx, bump, drop_tags, iso, reserve, stamps, tags_of

OWNER = "network:floatingip"


def view(row: Any, tags: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "id": row.id, "project_id": row.project_id, "tenant_id": row.project_id,
        "description": row.description, "floating_network_id": row.floating_network_id,
        "floating_ip_address": row.floating_ip_address, "router_id": row.router_id,
        "port_id": row.port_id, "fixed_ip_address": row.fixed_ip_address,
        "status": row.status, "tags": sorted(tags.get(row.id, [])),
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
        "revision_number": row.revision_number, "port_details": None,
        "qos_policy_id": None, "port_forwardings": [],
    }


def _target(row: Any) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id}


async def visible_row(tx: Tx, caller: Caller, fip_id: str) -> Any:
    row = (await tx.s.execute(select(m.floatingips).where(m.floatingips.c.id == fip_id))).first()
    if row is None:
        raise not_found("floatingip", fip_id)
    caller.visible_or_404("floatingip", _target(row))
    return row


async def show(tx: Tx, caller: Caller, fip_id: str) -> dict[str, Any]:
    return view(await visible_row(tx, caller, fip_id), await tags_of(tx, [fip_id]))


async def listing(tx: Tx, caller: Caller) -> list[dict[str, Any]]:
    stmt = select(m.floatingips)
    if not caller.is_admin:
        stmt = stmt.where(m.floatingips.c.project_id == caller.project_id)
    rows = caller.visible("floatingip", await tx.s.execute(stmt), _target)
    tags = await tags_of(tx, [r.id for r in rows])
    return [view(r, tags) for r in rows]


async def _association(tx: Tx, caller: Caller, fip: Any, port_id: str,
                       fixed_ip: str | None) -> dict[str, Any]:
    """Where the floating IP should point: the port's IPv4, through a router on the external net."""
    prow = await ports.visible_row(tx, caller, port_id)
    if prow.project_id != fip.project_id and not caller.is_admin:
        raise not_found("port", port_id)
    port = await ports.show_internal(tx, port_id)
    v4 = [ip for ip in port["fixed_ips"] if ipaddress.ip_address(ip["ip_address"]).version == 4]
    if fixed_ip is not None:
        chosen = [ip for ip in v4 if ip["ip_address"] == fixed_ip]
        if not chosen:
            raise BadRequest(f"Bad floatingip request: Port {port_id} does not have fixed ip "
                             f"{fixed_ip}.", kind="BadRequest")
    elif not v4:
        raise BadRequest(f"Bad floatingip request: Port {port_id} does not have any IPv4 "
                         "address.", kind="BadRequest")
    elif len(v4) > 1:
        raise BadRequest(f"Bad floatingip request: Port {port_id} has multiple fixed IPv4 "
                         "addresses. Must provide a specific IPv4 address when assigning a "
                         "floating IP.", kind="BadRequest")
    else:
        chosen = v4
    ip, subnet_id = chosen[0]["ip_address"], chosen[0]["subnet_id"]
    r, p, a = m.routers.c, m.ports.c, m.ip_allocations.c
    router = (await tx.s.execute(select(r.id).join(m.ports, p.device_id == r.id).join(
        m.ip_allocations, a.port_id == p.id).where(
        r.external_network_id == fip.floating_network_id,
        p.device_owner == "network:router_interface", a.subnet_id == subnet_id))).first()
    if router is None:
        raise NotFound(f"External network {fip.floating_network_id} is not reachable from "
                       f"subnet {subnet_id}. Therefore, cannot associate Port {port_id} with a "
                       "Floating IP.", kind="ExternalGatewayForFloatingIPNotFound")
    taken = (await tx.s.execute(select(m.floatingips.c.id).where(
        m.floatingips.c.port_id == port_id, m.floatingips.c.fixed_ip_address == ip,
        m.floatingips.c.id != fip.id))).first()
    if taken is not None:
        raise Conflict(f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) "
                       f"with port {port_id} using fixed IP {ip}, as that fixed IP already has "
                       f"a floating IP on external network {fip.floating_network_id}.",
                       kind="FloatingIPPortAlreadyAssociated")
    return {"port_id": port_id, "fixed_ip_address": ip, "router_id": router[0],
            "status": "ACTIVE"}


DISASSOCIATED = {"port_id": None, "fixed_ip_address": None, "router_id": None,
                 "status": "DOWN"}


async def create(tx: Tx, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    if "floating_network_id" not in body:
        raise BadRequest("Failed to parse request. Required attribute 'floating_network_id' "
                         "not specified", kind="HTTPBadRequest")
    project = body.get("project_id") or caller.project_id
    caller.enforce("create", "floatingip", {"project_id": project})
    net = await networks.visible_row(tx, caller, body["floating_network_id"])
    if not net.external:
        raise BadRequest(f"Bad floatingip request: Network {net.id} is not a valid external "
                         "network.", kind="BadRequest")
    await reserve(tx, project, "floatingip")
    fip_id = new_id()
    fixed: list[dict[str, Any]] | None = None
    if body.get("floating_ip_address") or body.get("subnet_id"):
        item = {k: body[k] for k in ("subnet_id",) if body.get(k)}
        if body.get("floating_ip_address"):
            item["ip_address"] = body["floating_ip_address"]
        fixed = [item]
    port = await ports.create(tx, caller, {
        "network_id": net.id, "project_id": project, "device_owner": OWNER,
        "device_id": fip_id, "fixed_ips": fixed, "port_security_enabled": False},
        internal=True)
    v4 = [ip for ip in port["fixed_ips"] if ":" not in ip["ip_address"]]
    if not v4:
        raise Conflict(f"No more IP addresses available on network {net.id}.",
                       kind="IpAddressGenerationFailure")
    await tx.s.execute(insert(m.floatingips).values(
        id=fip_id, project_id=project, description=body.get("description", ""),
        floating_network_id=net.id, floating_ip_address=v4[0]["ip_address"],
        floating_port_id=port["id"], **DISASSOCIATED, **stamps()))
    if body.get("port_id"):
        fip = await visible_row(tx, caller, fip_id)
        assoc = await _association(tx, caller, fip, body["port_id"],
                                   body.get("fixed_ip_address"))
        await bump(tx, m.floatingips, fip_id, assoc)
        tx.emit("router_update", router_id=assoc["router_id"])
        tx.emit("port_changed", port_id=body["port_id"])
    return await show(tx, caller, fip_id)


async def update(tx: Tx, caller: Caller, fip_id: str, body: dict[str, Any]) -> dict[str, Any]:
    fip = await visible_row(tx, caller, fip_id)
    caller.enforce("update", "floatingip", _target(fip))
    values: dict[str, Any] = {k: body[k] for k in ("description",) if k in body}
    if "port_id" in body or "fixed_ip_address" in body:
        port_id = body.get("port_id", fip.port_id)
        if port_id is None:
            values.update(DISASSOCIATED)
        else:
            values.update(await _association(tx, caller, fip, port_id,
                                             body.get("fixed_ip_address")))
    await bump(tx, m.floatingips, fip_id, values)
    for router_id in {fip.router_id, values.get("router_id")} - {None}:
        tx.emit("router_update", router_id=router_id)
    if "port_id" in values:
        for changed in {fip.port_id, values["port_id"]} - {None}:
            tx.emit("port_changed", port_id=changed)
    return await show(tx, caller, fip_id)


async def delete_(tx: Tx, caller: Caller, fip_id: str) -> None:
    fip = await visible_row(tx, caller, fip_id)
    caller.enforce("delete", "floatingip", _target(fip))
    await drop_tags(tx, fip_id)
    await tx.s.execute(delete(m.floatingips).where(m.floatingips.c.id == fip_id))
    await ports.delete_(tx, caller, fip.floating_port_id, internal=True)
    if fip.router_id:
        tx.emit("router_update", router_id=fip.router_id)
    if fip.port_id:
        tx.emit("port_changed", port_id=fip.port_id)
