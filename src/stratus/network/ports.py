"""Ports: fixed IPs, MAC, device ownership, bindings, port security and status."""

from __future__ import annotations

import ipaddress
import random
import re
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy import update as sa_update

from stratus.db.base import new_id, utcnow
from stratus.errors import BadRequest, Conflict
from stratus.network import allocations, networks
from stratus.network import models as m
from stratus.network import security_groups as sgs
from stratus.network.access import Caller, not_found
from stratus.network.query import SqlPage
from stratus.network.store import Tx, bump, drop_tags, reserve, stamps, standard, tags_of

MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
L3_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip",
             "network:router_interface_distributed", "network:ha_router_replicated_interface")
VIF_TYPE = "bridge"


def view(row: Any, tags: dict[str, list[str]], ips: dict[str, list[dict[str, str]]],
         groups: dict[str, list[str]]) -> dict[str, Any]:
    out = standard(row, tags)
    out.update({
        "network_id": row.network_id, "mac_address": row.mac_address,
        "admin_state_up": row.admin_state_up, "status": row.status,
        "device_id": row.device_id, "device_owner": row.device_owner,
        "fixed_ips": ips.get(row.id, []), "security_groups": sorted(groups.get(row.id, [])),
        "port_security_enabled": row.port_security_enabled,
        "allowed_address_pairs": row.allowed_address_pairs,
        "binding:host_id": row.binding_host_id, "binding:vnic_type": row.binding_vnic_type,
        "binding:vif_type": row.binding_vif_type, "binding:vif_details": row.binding_vif_details,
        "binding:profile": row.binding_profile, "extra_dhcp_opts": [],
        "ip_allocation": "immediate", "propagate_uplink_status": False,
    })
    return out


async def views(tx: Tx, rows: list[Any]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    ips = await allocations.fixed_ips_of(tx, ids)
    groups: dict[str, list[str]] = {}
    psg = m.port_security_groups.c
    for i in range(0, len(ids), 500):
        for r in (await tx.s.execute(select(psg.port_id, psg.security_group_id).where(
                psg.port_id.in_(ids[i:i + 500])))).all():
            groups.setdefault(r.port_id, []).append(r.security_group_id)
    tags = await tags_of(tx, ids)
    return [view(r, tags, ips, groups) for r in rows]


def _target(row: Any) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id, "network_owner": row.net_project}


async def _row(tx: Tx, port_id: str) -> Any:
    stmt = select(m.ports, m.networks.c.project_id.label("net_project")).join(
        m.networks, m.networks.c.id == m.ports.c.network_id).where(m.ports.c.id == port_id)
    return (await tx.s.execute(stmt)).first()


async def visible_row(tx: Tx, caller: Caller, port_id: str) -> Any:
    row = await _row(tx, port_id)
    if row is None:
        raise not_found("port", port_id)
    caller.visible_or_404("port", _target(row))
    return row


async def show(tx: Tx, caller: Caller, port_id: str) -> dict[str, Any]:
    return (await views(tx, [await visible_row(tx, caller, port_id)]))[0]


async def show_internal(tx: Tx, port_id: str) -> dict[str, Any]:
    row = await _row(tx, port_id)
    if row is None:
        raise not_found("port", port_id)
    return (await views(tx, [row]))[0]


PUSHED = ("network_id", "device_id", "device_owner", "id", "mac_address", "status",
          "project_id", "tenant_id")


async def listing(tx: Tx, caller: Caller, filters: dict[str, list[str]],
                  page: SqlPage | None = None) -> list[dict[str, Any]]:
    """Ports the caller sees; the filters clients use most (:data:`PUSHED`) go to SQL,
    the rest are applied on the views. With ``page``, SQL also orders and cuts."""
    p = m.ports.c
    stmt = select(m.ports, m.networks.c.project_id.label("net_project")).join(
        m.networks, m.networks.c.id == p.network_id)
    for key in PUSHED:
        if key in filters:
            column = p.project_id if key == "tenant_id" else p[key]
            stmt = stmt.where(column.in_(filters[key]))
    if not caller.is_admin:
        stmt = stmt.where(or_(p.project_id == caller.project_id,
                              m.networks.c.project_id == caller.project_id))
    if page is not None:
        if page.marker is not None:
            if (await tx.s.execute(select(p.id).where(p.id == page.marker))).first() is None:
                raise BadRequest(f"Marker {page.marker} could not be found.",
                                 kind="BadRequest")
            stmt = stmt.where(p.id < page.marker if page.descending else p.id > page.marker)
        stmt = stmt.order_by(p.id.desc() if page.descending else p.id.asc()
                             ).limit(page.limit + 1)
    rows = caller.visible("port", (await tx.s.execute(stmt)).all(), _target)
    return await views(tx, rows)


def _mac(value: str | None, cfg_base: str) -> str:
    if value is not None:
        mac = value.lower().replace("-", ":")
        if not MAC_RE.match(mac) or mac == "00:00:00:00:00:00" or int(mac[:2], 16) & 1:
            raise BadRequest(f"Invalid input for mac_address. Reason: '{value}' is not a valid "
                             "MAC address.", kind="InvalidInput")
        return mac
    base = cfg_base.split(":")[:3]
    return ":".join(base + [f"{random.randrange(256):02x}" for _ in range(3)])


def _pairs(raw: Any) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for allowed_address_pairs.", kind="InvalidInput")
    out: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or "ip_address" not in item or \
                not set(item) <= {"ip_address", "mac_address"}:
            raise BadRequest("AllowedAddressPair must contain ip_address.",
                             kind="AllowedAddressPairsMissingIP")
        try:
            ip = str(item["ip_address"])
            ipaddress.ip_network(ip, strict=False)
        except ValueError:
            raise BadRequest(f"Invalid input for allowed_address_pairs: '{item['ip_address']}' "
                             "is not a valid IP address.", kind="InvalidInput") from None
        pair = {"ip_address": ip}
        if item.get("mac_address") is not None:
            pair["mac_address"] = _mac(str(item["mac_address"]), "")
        if pair in out:
            raise BadRequest("Request contains duplicate address pair: "
                             f"mac_address {pair.get('mac_address')} ip_address {ip}.",
                             kind="DuplicateAddressPairInRequest")
        out.append(pair)
    return out


async def _check_groups(tx: Tx, caller: Caller, ids: Any, project: str) -> list[str]:
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadRequest("Invalid input for security_groups.", kind="InvalidInput")
    for sg_id in ids:
        row = (await tx.s.execute(select(m.security_groups.c.project_id).where(
            m.security_groups.c.id == sg_id))).first()
        if row is None or (row[0] != project and not caller.is_admin):
            raise not_found("security_group", sg_id)
    return list(dict.fromkeys(ids))


async def _set_groups(tx: Tx, port_id: str, ids: list[str]) -> None:
    await tx.s.execute(delete(m.port_security_groups).where(
        m.port_security_groups.c.port_id == port_id))
    for sg_id in ids:
        await tx.s.execute(insert(m.port_security_groups).values(port_id=port_id,
                                                                 security_group_id=sg_id))


def _binding(host: str, vnic: str) -> dict[str, Any]:
    if not host:
        return {"binding_vif_type": "unbound", "binding_vif_details": {}}
    return {"binding_vif_type": VIF_TYPE,
            "binding_vif_details": {"port_filter": True, "connectivity": "l2",
                                    "bridge_name": None} if vnic == "normal" else {}}


async def create(tx: Tx, caller: Caller, body: dict[str, Any], *, internal: bool = False
                 ) -> dict[str, Any]:
    if "network_id" not in body:
        raise BadRequest("Failed to parse request. Required attribute 'network_id' not "
                         "specified", kind="HTTPBadRequest")
    net = await networks.visible_row(tx, caller, body["network_id"]) if not internal else \
        await networks.visible_row(tx, _ADMIN(caller), body["network_id"])
    project = body.get("project_id") or caller.project_id
    owner = body.get("device_owner", "")
    if not internal:
        caller.enforce("create", "port", {"project_id": project})
        if not caller.can("use_network", networks.target(net)):
            raise not_found("network", net.id)
        if owner.startswith("network:") and not caller.is_admin and owner in L3_OWNERS[1:3]:
            raise BadRequest(f"Device owner {owner} is reserved.", kind="InvalidInput")
        await reserve(tx, project, "port")
    port_id = new_id()
    mac = _mac(body.get("mac_address"), tx.cfg.base_mac)
    if body.get("mac_address") is not None:
        taken = (await tx.s.execute(select(m.ports.c.id).where(
            m.ports.c.network_id == net.id, m.ports.c.mac_address == mac))).first()
        if taken is not None:
            raise Conflict(f"Unable to complete operation for network {net.id}. The mac address "
                           f"{mac} is in use.", kind="MacAddressInUse")
    security = body.get("port_security_enabled", net.port_security_enabled)
    pairs = _pairs(body.get("allowed_address_pairs"))
    if pairs and not security:
        raise Conflict("Port Security must be enabled in order to have allowed address pairs "
                       "on a port.", kind="AddressPairAndPortSecurityRequired")
    groups: list[str] = []
    if "security_groups" in body and body["security_groups"] is not None:
        groups = await _check_groups(tx, caller, body["security_groups"], project)
        if groups and not security:
            raise Conflict("Port security must be enabled and port must have an IP address in "
                           "order to use security groups.",
                           kind="PortSecurityAndIPRequiredForSecurityGroups")
    elif security and not owner.startswith("network:"):
        groups = [await sgs.ensure_default(tx, project)]
    host = body.get("binding:host_id", "")
    vnic = body.get("binding:vnic_type", "normal")
    await tx.s.execute(insert(m.ports).values(
        id=port_id, project_id=project, name=body.get("name", ""),
        description=body.get("description", ""), network_id=net.id, mac_address=mac,
        admin_state_up=body.get("admin_state_up", True), status="DOWN",
        device_id=body.get("device_id", ""), device_owner=owner, binding_host_id=host,
        binding_vnic_type=vnic, binding_profile=body.get("binding:profile", {}),
        port_security_enabled=security, allowed_address_pairs=pairs,
        **_binding(host, vnic), **stamps()))
    requested = body.get("fixed_ips")
    if requested is not None and not isinstance(requested, list):
        raise BadRequest("Invalid input for fixed_ips. Reason: must be a list.",
                         kind="InvalidInput")
    await allocations.allocate(tx, net.id, port_id, mac, requested, device_owner=owner,
                               implicit_auto=True)
    await _set_groups(tx, port_id, groups)
    item = await show_internal(tx, port_id)
    _notify(tx, item)
    return item


def _ADMIN(caller: Caller) -> Caller:  # reads like a constant
    from dataclasses import replace

    ctx = replace(caller.ctx, roles=tuple(caller.ctx.roles) + ("admin",))
    return Caller(ctx, caller.policy)


def _notify(tx: Tx, item: dict[str, Any], old_host: str = "") -> None:
    if old_host and old_host != item["binding:host_id"]:
        tx.emit("port_delete", port_id=item["id"], host=old_host)
    if item["binding:host_id"]:
        tx.emit("port_update", port=item)


async def update(tx: Tx, caller: Caller, port_id: str, body: dict[str, Any], *,
                 internal: bool = False) -> dict[str, Any]:
    row = await visible_row(tx, _ADMIN(caller) if internal else caller, port_id)
    if not internal:
        caller.enforce("update", "port", _target(row))
    values: dict[str, Any] = {}
    for key, col in (("name", "name"), ("description", "description"),
                     ("admin_state_up", "admin_state_up"), ("device_id", "device_id"),
                     ("device_owner", "device_owner"), ("binding:host_id", "binding_host_id"),
                     ("binding:vnic_type", "binding_vnic_type"),
                     ("binding:profile", "binding_profile"),
                     ("port_security_enabled", "port_security_enabled")):
        if key in body:
            values[col] = body[key]
    if "mac_address" in body:
        mac = _mac(body["mac_address"], tx.cfg.base_mac)
        if mac != row.mac_address:
            if row.binding_host_id:
                raise Conflict(f"Port {port_id} is bound; its MAC address cannot change.",
                               kind="PortBound")
            taken = (await tx.s.execute(select(m.ports.c.id).where(
                m.ports.c.network_id == row.network_id, m.ports.c.mac_address == mac))).first()
            if taken is not None:
                raise Conflict(f"Unable to complete operation for network {row.network_id}. "
                               f"The mac address {mac} is in use.", kind="MacAddressInUse")
            values["mac_address"] = mac
    security = values.get("port_security_enabled", row.port_security_enabled)
    current = (await show_internal(tx, port_id))
    groups = current["security_groups"]
    if "security_groups" in body:
        groups = await _check_groups(tx, caller, body["security_groups"] or [], row.project_id)
    elif "port_security_enabled" in body and security and not groups \
            and not row.device_owner.startswith("network:"):
        groups = [await sgs.ensure_default(tx, row.project_id)]
    pairs = _pairs(body["allowed_address_pairs"]) if "allowed_address_pairs" in body \
        else row.allowed_address_pairs
    if not security and groups:
        raise Conflict("Port has security group associated. Cannot disable port security or "
                       "ip address until security group is removed.",
                       kind="PortSecurityPortHasSecurityGroup")
    if not security and pairs:
        raise Conflict("Port Security must be enabled in order to have allowed address pairs "
                       "on a port.", kind="AddressPairAndPortSecurityRequired")
    values["allowed_address_pairs"] = pairs
    if "binding_host_id" in values or "binding_vnic_type" in values:
        host = values.get("binding_host_id", row.binding_host_id)
        values.update(_binding(host, values.get("binding_vnic_type", row.binding_vnic_type)))
        if host != row.binding_host_id:
            values["status"] = "DOWN"
    if "fixed_ips" in body:
        requested = body["fixed_ips"] or []
        if not isinstance(requested, list):
            raise BadRequest("Invalid input for fixed_ips.", kind="InvalidInput")
        keep = [ip for ip in current["fixed_ips"]
                if any(r.get("ip_address") == ip["ip_address"] and
                       r.get("subnet_id", ip["subnet_id"]) == ip["subnet_id"]
                       for r in requested if isinstance(r, dict))]
        fresh = [r for r in requested if not (isinstance(r, dict) and any(
            r.get("ip_address") == k["ip_address"] for k in keep))]
        await allocations.release(tx, port_id, keep)
        await allocations.allocate(tx, row.network_id, port_id,
                                   values.get("mac_address", row.mac_address), fresh,
                                   device_owner=row.device_owner)
    await _set_groups(tx, port_id, groups)
    await bump(tx, m.ports, port_id, values)
    item = await show_internal(tx, port_id)
    _notify(tx, item, row.binding_host_id)
    return item


async def delete_(tx: Tx, caller: Caller, port_id: str, *, internal: bool = False) -> None:
    row = await visible_row(tx, _ADMIN(caller) if internal else caller, port_id)
    if not internal:
        caller.enforce("delete", "port", _target(row))
        if row.device_owner in L3_OWNERS:
            raise Conflict(f"Port {port_id} cannot be deleted directly via the port API: has "
                           f"device owner {row.device_owner}.", kind="L3PortInUse")
    await tx.s.execute(sa_update(m.floatingips).where(m.floatingips.c.port_id == port_id).values(
        port_id=None, fixed_ip_address=None, router_id=None, status="DOWN",
        updated_at=utcnow()))
    await allocations.release(tx, port_id)
    await tx.s.execute(delete(m.port_security_groups).where(
        m.port_security_groups.c.port_id == port_id))
    await drop_tags(tx, port_id)
    await tx.s.execute(delete(m.ports).where(m.ports.c.id == port_id))
    if row.binding_host_id:
        tx.emit("port_delete", port_id=port_id, host=row.binding_host_id)


async def set_status(tx: Tx, port_id: str, status: str) -> dict[str, Any] | None:
    """An agent's report: the port is up (ACTIVE) or down (DOWN) on its host."""
    result = await tx.s.execute(sa_update(m.ports).where(
        m.ports.c.id == port_id, m.ports.c.status != status).values(
        status=status, updated_at=utcnow(), revision_number=m.ports.c.revision_number + 1))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        return None
    return await show_internal(tx, port_id)
