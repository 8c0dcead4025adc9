"""Networks and their segments (provider attributes)."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy import update as sa_update

from stratus.db.base import new_id
from stratus.errors import BadRequest, Conflict
from stratus.network import models as m
from stratus.network.access import Caller, not_found
from stratus.network.store import Tx, bump, drop_tags, reserve, stamps, standard, tags_of
from stratus.settings import NetworkSettings

NETWORK_TYPES = ("flat", "vlan", "vxlan", "local")
OVERHEAD = {"vxlan": 50, "vlan": 0, "flat": 0, "local": 0}
VXLAN_MAX = (1 << 24) - 1
INFRA_OWNERS = ("network:dhcp",)
FIP_OWNER = "network:floatingip"


def view(row: Any, tags: dict[str, list[str]], subnet_ids: list[str]) -> dict[str, Any]:
    out = standard(row, tags)
    out.update({
        "admin_state_up": row.admin_state_up, "status": row.status, "shared": row.shared,
        "router:external": row.external, "is_default": row.is_default, "mtu": row.mtu,
        "port_security_enabled": row.port_security_enabled,
        "provider:network_type": row.network_type,
        "provider:physical_network": row.physical_network,
        "provider:segmentation_id": row.segmentation_id,
        "subnets": sorted(subnet_ids), "availability_zone_hints": [],
        "availability_zones": ["nova"], "ipv4_address_scope": None,
        "ipv6_address_scope": None, "l2_adjacency": True,
    })
    return out


def target(row: Any) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id, "shared": row.shared,
            "router:external": row.external}


async def visible_row(tx: Tx, caller: Caller, network_id: str) -> Any:
    row = (await tx.s.execute(select(m.networks).where(m.networks.c.id == network_id))).first()
    if row is None:
        raise not_found("network", network_id)
    caller.visible_or_404("network", target(row))
    return row


async def views(tx: Tx, rows: list[Any]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    subnets: dict[str, list[str]] = {}
    if ids:
        for chunk in range(0, len(ids), 500):
            res = await tx.s.execute(select(m.subnets.c.id, m.subnets.c.network_id).where(
                m.subnets.c.network_id.in_(ids[chunk:chunk + 500])))
            for sid, nid in res:
                subnets.setdefault(nid, []).append(sid)
    tags = await tags_of(tx, ids)
    return [view(r, tags, subnets.get(r.id, [])) for r in rows]


async def show(tx: Tx, caller: Caller, network_id: str) -> dict[str, Any]:
    return (await views(tx, [await visible_row(tx, caller, network_id)]))[0]


async def listing(tx: Tx, caller: Caller) -> list[dict[str, Any]]:
    stmt = select(m.networks)
    if not caller.is_admin:
        n = m.networks.c
        stmt = stmt.where(or_(n.project_id == caller.project_id, n.shared.is_(True),
                              n.external.is_(True)))
    rows = list(await tx.s.execute(stmt))
    return await views(tx, caller.visible("network", rows, target))


# --- segments ---------------------------------------------------------------

def _ranges(cfg: NetworkSettings, network_type: str) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    if network_type == "vxlan":
        for item in cfg.vni_ranges:
            lo, _, hi = item.partition(":")
            out.setdefault("", []).append((int(lo), int(hi or lo)))
    elif network_type == "vlan":
        for item in cfg.network_vlan_ranges:
            parts = item.split(":")
            ranges = out.setdefault(parts[0], [])
            if len(parts) == 3:
                ranges.append((int(parts[1]), int(parts[2])))
    return out


async def _taken(tx: Tx, network_type: str, physnet: str) -> set[int]:
    a = m.segment_allocations.c
    rows = await tx.s.execute(select(a.segmentation_id).where(
        a.network_type == network_type, a.physical_network == physnet))
    return {r[0] for r in rows}


async def _claim(tx: Tx, network_id: str, network_type: str, physnet: str, seg: int) -> None:
    await tx.s.execute(insert(m.segment_allocations).values(
        network_type=network_type, physical_network=physnet, segmentation_id=seg,
        network_id=network_id))


async def allocate_segment(tx: Tx, network_id: str, body: dict[str, Any]
                           ) -> tuple[str, str | None, int | None]:
    """Validate provider attributes (or pick a tenant type) and claim the segment."""
    cfg = tx.cfg
    ntype = body.get("provider:network_type")
    physnet = body.get("provider:physical_network")
    seg = body.get("provider:segmentation_id")
    if ntype is None:
        if physnet is not None or seg is not None:
            raise BadRequest("Invalid input for operation: provider:network_type required.",
                             kind="InvalidInput")
        for candidate in cfg.tenant_network_types:
            picked = await _allocate_any(tx, network_id, candidate)
            if picked is not None:
                return picked
        raise Conflict("Unable to create the network. No tenant network is available for "
                       "allocation.", kind="NoNetworkAvailable")
    if ntype not in NETWORK_TYPES:
        raise BadRequest(f"Invalid input for operation: network_type value '{ntype}' not "
                         "supported.", kind="InvalidInput")
    if ntype == "local":
        if physnet or seg is not None:
            raise BadRequest("Invalid input for operation: local networks take no "
                             "physical_network or segmentation_id.", kind="InvalidInput")
        return "local", None, None
    if ntype == "flat":
        if seg is not None:
            raise BadRequest("Invalid input for operation: segmentation_id specified for "
                             "flat network.", kind="InvalidInput")
        if not physnet:
            raise BadRequest("Invalid input for operation: physical_network required for "
                             "flat provider network.", kind="InvalidInput")
        if "*" not in cfg.flat_networks and physnet not in cfg.flat_networks:
            raise BadRequest(f"Invalid input for operation: physical_network '{physnet}' "
                             "unknown for flat provider network.", kind="InvalidInput")
        if 0 in await _taken(tx, "flat", physnet):
            raise Conflict(f"Unable to create the flat network. Physical network {physnet} "
                           "is in use.", kind="FlatNetworkInUse")
        await _claim(tx, network_id, "flat", physnet, 0)
        return "flat", physnet, None
    if ntype == "vlan":
        ranges = _ranges(cfg, "vlan")
        if physnet is None:
            if seg is not None or not ranges:
                raise BadRequest("Invalid input for operation: physical_network required "
                                 "for VLAN provider network.", kind="InvalidInput")
        elif physnet not in ranges:
            raise BadRequest(f"Invalid input for operation: physical_network '{physnet}' "
                             "unknown for VLAN provider network.", kind="InvalidInput")
        if seg is not None and not 1 <= seg <= 4094:
            raise BadRequest("Invalid input for operation: segmentation_id out of range "
                             "(1 through 4094).", kind="InvalidInput")
    if ntype == "vxlan":
        if physnet:
            raise BadRequest("Invalid input for operation: provider:physical_network specified "
                             "for vxlan network.", kind="InvalidInput")
        if seg is not None and not 1 <= seg <= VXLAN_MAX:
            raise BadRequest(f"Invalid input for operation: segmentation_id out of range "
                             f"(1 through {VXLAN_MAX}).", kind="InvalidInput")
    if seg is None:
        picked = await _allocate_any(tx, network_id, ntype, physnet)
        if picked is None:
            raise Conflict("Unable to create the network. No tenant network is available for "
                           "allocation.", kind="NoNetworkAvailable")
        return picked
    if seg in await _taken(tx, ntype, physnet or ""):
        raise Conflict(f"Unable to create the network. The {ntype} segmentation id {seg} "
                       f"on physical network {physnet} is in use.", kind="SegmentationIdInUse"
                       if ntype == "vlan" else "TunnelIdInUse")
    await _claim(tx, network_id, ntype, physnet or "", seg)
    return ntype, physnet, seg


async def _allocate_any(tx: Tx, network_id: str, ntype: str, physnet: str | None = None,
                        ) -> tuple[str, str | None, int | None] | None:
    if ntype == "local":
        return "local", None, None
    for net, ranges in _ranges(tx.cfg, ntype).items():
        if physnet is not None and net != physnet:
            continue
        taken = await _taken(tx, ntype, net)
        free: list[int] = []
        for lo, hi in ranges:
            seg = lo
            while seg <= hi and len(free) < 8:
                if seg not in taken:
                    free.append(seg)
                seg += 1
        if free:
            seg = random.choice(free)
            await _claim(tx, network_id, ntype, net, seg)
            return ntype, (net or None), seg
    return None


# --- create/update/delete ---------------------------------------------------

async def create(tx: Tx, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    project = body.get("project_id") or caller.project_id
    caller.enforce("create", "network", {"project_id": project})
    await reserve(tx, project, "network")
    network_id = new_id()
    # The row first: segment allocations refer to it.
    await tx.s.execute(insert(m.networks).values(
        id=network_id, project_id=project, name=body.get("name", ""),
        description=body.get("description", ""), admin_state_up=body.get("admin_state_up", True),
        status="ACTIVE", shared=body.get("shared", False),
        external=body.get("router:external", False), is_default=body.get("is_default", False),
        mtu=tx.cfg.global_physnet_mtu, port_security_enabled=body.get("port_security_enabled",
                                                                      True),
        network_type="local", **stamps()))
    ntype, physnet, seg = await allocate_segment(tx, network_id, body)
    max_mtu = tx.cfg.global_physnet_mtu - OVERHEAD[ntype]
    mtu = body.get("mtu", max_mtu)
    if not 68 <= mtu <= max_mtu:
        raise BadRequest(f"Invalid input for operation: Requested MTU is too big, maximum is "
                         f"{max_mtu}.", kind="InvalidInput")
    await tx.s.execute(sa_update(m.networks).where(m.networks.c.id == network_id).values(
        mtu=mtu, network_type=ntype, physical_network=physnet, segmentation_id=seg))
    item = await show(tx, caller, network_id)
    tx.emit("network_update", network=item)
    return item


async def update(tx: Tx, caller: Caller, network_id: str, body: dict[str, Any]
                 ) -> dict[str, Any]:
    row = await visible_row(tx, caller, network_id)
    caller.enforce("update", "network", target(row))
    values: dict[str, Any] = {}
    for key, col in (("name", "name"), ("description", "description"),
                     ("admin_state_up", "admin_state_up"), ("shared", "shared"),
                     ("router:external", "external"), ("is_default", "is_default"),
                     ("port_security_enabled", "port_security_enabled"), ("mtu", "mtu")):
        if key in body:
            values[col] = body[key]
    if "mtu" in values:
        max_mtu = tx.cfg.global_physnet_mtu - OVERHEAD[row.network_type]
        if not 68 <= values["mtu"] <= max_mtu:
            raise BadRequest(f"Invalid input for operation: Requested MTU is too big, maximum "
                             f"is {max_mtu}.", kind="InvalidInput")
    if values.get("shared") is False and row.shared:
        others = await tx.s.execute(select(m.ports.c.id).where(
            m.ports.c.network_id == network_id, m.ports.c.project_id != row.project_id).limit(1))
        if others.first() is not None:
            raise Conflict(f"Unable to reconfigure sharing settings for network {network_id}. "
                           "Multiple tenants are using it.", kind="InvalidSharedSetting")
    await bump(tx, m.networks, network_id, values)
    item = await show(tx, caller, network_id)
    tx.emit("network_update", network=item)
    return item


async def delete_(tx: Tx, caller: Caller, network_id: str) -> None:
    row = await visible_row(tx, caller, network_id)
    caller.enforce("delete", "network", target(row))
    p, f = m.ports.c, m.floatingips.c
    busy = await tx.s.execute(select(p.id).where(
        p.network_id == network_id, ~p.device_owner.in_(INFRA_OWNERS + (FIP_OWNER,))).limit(1))
    if busy.first() is not None:
        raise Conflict(f"Unable to complete operation on network {network_id}. There are one "
                       "or more ports still in use on the network.", kind="NetworkInUse")
    # An external network goes with its floating IPs (Neutron deletes them too).
    for fip_id, router_id in (await tx.s.execute(select(f.id, f.router_id).where(
            f.floating_network_id == network_id))).all():
        await drop_tags(tx, fip_id)
        if router_id:
            tx.emit("router_update", router_id=router_id)
    await tx.s.execute(delete(m.floatingips).where(f.floating_network_id == network_id))
    await tx.s.execute(delete(m.ip_allocations).where(
        m.ip_allocations.c.network_id == network_id))
    await tx.s.execute(delete(m.ports).where(p.network_id == network_id))
    subnet_ids = [r[0] for r in await tx.s.execute(
        select(m.subnets.c.id).where(m.subnets.c.network_id == network_id))]
    for sid in subnet_ids:
        await drop_tags(tx, sid)
    await tx.s.execute(delete(m.subnets).where(m.subnets.c.network_id == network_id))
    await tx.s.execute(delete(m.segment_allocations).where(
        m.segment_allocations.c.network_id == network_id))
    await drop_tags(tx, network_id)
    await tx.s.execute(delete(m.networks).where(m.networks.c.id == network_id))
    tx.emit("network_delete", network_id=network_id)


