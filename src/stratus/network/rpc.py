"""The server side of the agent conversation: build desired state, send it, take reports."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from stratus.bus import Bus
from stratus.bus.base import Target
from stratus.network import agents, nova, ports
from stratus.network import messages as msg
from stratus.network import models as m
from stratus.network.store import Event, Store, Tx

log = logging.getLogger("stratus.network.rpc")


def _ips(items: list[dict[str, str]]) -> tuple[msg.FixedIP, ...]:
    return tuple(msg.FixedIP(i["subnet_id"], i["ip_address"]) for i in items)


async def port_state(tx: Tx, item: dict[str, Any]) -> msg.PortState:
    net = (await tx.s.execute(select(m.networks).where(
        m.networks.c.id == item["network_id"]))).one()
    return msg.PortState(
        id=item["id"], network_id=item["network_id"], mac_address=item["mac_address"],
        host=item["binding:host_id"], admin_state_up=item["admin_state_up"],
        device_owner=item["device_owner"], device_id=item["device_id"],
        network_type=net.network_type, physical_network=net.physical_network,
        segmentation_id=net.segmentation_id, mtu=net.mtu, fixed_ips=_ips(item["fixed_ips"]),
        port_security_enabled=item["port_security_enabled"],
        security_group_ids=tuple(item["security_groups"]),
        allowed_address_pairs=tuple(item["allowed_address_pairs"]))


async def dhcp_state(tx: Tx, item: dict[str, Any]) -> msg.DhcpState:
    p, a = m.ports.c, m.ip_allocations.c
    hosts = await tx.s.execute(select(p.mac_address, a.ip_address).join(
        m.ip_allocations, a.port_id == p.id).where(a.subnet_id == item["id"]))
    return msg.DhcpState(
        subnet_id=item["id"], network_id=item["network_id"], cidr=item["cidr"],
        ip_version=item["ip_version"], gateway_ip=item["gateway_ip"],
        enable_dhcp=item["enable_dhcp"], dns_nameservers=tuple(item["dns_nameservers"]),
        host_routes=tuple(item["host_routes"]), allocation_pools=tuple(item["allocation_pools"]),
        ipv6_address_mode=item["ipv6_address_mode"], ipv6_ra_mode=item["ipv6_ra_mode"],
        hosts=tuple((h[0], h[1]) for h in hosts))


async def _interface(tx: Tx, port_id: str) -> msg.RouterInterface:
    port = await ports.show_internal(tx, port_id)
    sids = [ip["subnet_id"] for ip in port["fixed_ips"]]
    cidrs = [r[0] for r in await tx.s.execute(select(m.subnets.c.cidr).where(
        m.subnets.c.id.in_(sids)))] if sids else []
    return msg.RouterInterface(port_id=port_id, mac_address=port["mac_address"],
                               network_id=port["network_id"], fixed_ips=_ips(port["fixed_ips"]),
                               cidrs=tuple(cidrs))


async def router_state(tx: Tx, router_id: str) -> msg.RouterState | None:
    row = (await tx.s.execute(select(m.routers).where(m.routers.c.id == router_id))).first()
    if row is None:
        return None
    p = m.ports.c
    iface_ids = [r[0] for r in await tx.s.execute(select(p.id).where(
        p.device_id == router_id, p.device_owner == "network:router_interface"))]
    f = m.floatingips.c
    fips = await tx.s.execute(select(f.floating_ip_address, f.fixed_ip_address, f.port_id)
                              .where(f.router_id == router_id, f.port_id.is_not(None)))
    return msg.RouterState(
        id=row.id, admin_state_up=row.admin_state_up,
        gateway=await _interface(tx, row.gw_port_id) if row.gw_port_id else None,
        enable_snat=row.enable_snat,
        interfaces=tuple([await _interface(tx, i) for i in iface_ids]),
        routes=tuple(row.routes),
        floating_ips=tuple(msg.FloatingIPMapping(x[0], x[1], x[2]) for x in fips))


async def group_state(tx: Tx, sg_id: str) -> msg.SecurityGroupState:
    r = m.security_group_rules.c
    rules = await tx.s.execute(select(m.security_group_rules).where(r.security_group_id == sg_id))
    psg, a = m.port_security_groups.c, m.ip_allocations.c
    members = await tx.s.execute(select(a.ip_address).join(
        m.port_security_groups, psg.port_id == a.port_id).where(psg.security_group_id == sg_id))
    return msg.SecurityGroupState(
        id=sg_id,
        rules=tuple(msg.SecurityGroupRule(x.direction, x.ethertype, x.protocol,
                                          x.port_range_min, x.port_range_max,
                                          x.remote_ip_prefix, x.remote_group_id)
                    for x in rules),
        member_ips=tuple(sorted(x[0] for x in members)))


class Notifier:
    """Turns the events a transaction queued into agent messages, after commit."""

    def __init__(self, bus: Bus, store_ref: list[Store],
                 compute: nova.ComputeNotifier | None = None) -> None:
        self.bus = bus
        self.store_ref = store_ref
        self.compute = compute

    async def __call__(self, events: list[Event]) -> None:
        store = self.store_ref[0]
        for method, payload in events:
            await self._send(store, method, payload)

    async def _send(self, store: Store, method: str, payload: dict[str, Any]) -> None:
        topic = msg.AGENT_TOPIC
        if method == "port_update":
            item = payload["port"]
            state = await store.read(lambda tx: port_state(tx, item))
            await self.bus.cast(Target(topic, item["binding:host_id"]), "port_update",
                                port=msg.to_json(state))
        elif method == "port_delete":
            await self.bus.cast(Target(topic, payload["host"]), "port_delete",
                                port_id=payload["port_id"], host=payload["host"])
        elif method == "subnet_update":
            state = await store.read(lambda tx: dhcp_state(tx, payload["subnet"]))
            await self.bus.fanout(topic, "subnet_update", subnet=msg.to_json(state))
        elif method == "router_update":
            rstate = await store.read(lambda tx: router_state(tx, payload["router_id"]))
            if rstate is not None:
                await self.bus.fanout(topic, "router_update", router=msg.to_json(rstate))
        elif method == "security_group_update":
            gstate = await store.read(lambda tx: group_state(tx, payload["security_group_id"]))
            await self.bus.fanout(topic, "security_group_update", group=msg.to_json(gstate))
        elif method == "network_update":
            return  # networks are realised when a port or DHCP needs them
        elif method == "port_changed":  # addresses or floating IPs of a port changed
            if self.compute is not None:
                port = await store.read(lambda tx: _port_or_none(tx, payload["port_id"]))
                if port is not None:
                    await self.compute.send([nova.event_for(port, nova.CHANGED)])
            return
        else:
            await self.bus.fanout(topic, method, **payload)
        await self.bus.notify(f"network.{method}", payload, publisher="network")


async def _port_or_none(tx: Tx, port_id: str) -> dict[str, Any] | None:
    try:
        return await ports.show_internal(tx, port_id)
    except Exception:  # noqa: BLE001 - deleted meanwhile
        return None


class ServerEndpoint:
    """What agents call on topic ``network-server``."""

    def __init__(self, store: Store, bus: Bus,
                 compute: nova.ComputeNotifier | None = None) -> None:
        self.store = store
        self.bus = bus
        self.compute = compute

    async def report_port_status(self, port_id: str, status: str, host: str = "") -> bool:
        if status not in ("ACTIVE", "DOWN", "ERROR", "BUILD"):
            return False
        item = await self.store.write(lambda tx: ports.set_status(tx, port_id, status))
        if item is not None:
            await self.bus.notify(f"port.status.{status.lower()}", {
                "port_id": port_id, "device_id": item["device_id"], "status": status,
                "host": host, "device_owner": item["device_owner"]}, publisher="network")
            if self.compute is not None and status in ("ACTIVE", "DOWN"):
                name = nova.PLUGGED if status == "ACTIVE" else nova.UNPLUGGED
                await self.compute.send([nova.event_for(item, name)])
        return item is not None

    async def report_state(self, agent: dict[str, Any]) -> str:
        known = {k: v for k, v in agent.items() if k in msg.AgentState.__dataclass_fields__}
        state = msg.AgentState(**known)
        return await self.store.write(lambda tx: agents.report(tx, state))

    async def sync(self, host: str) -> dict[str, Any]:
        async def build(tx: Tx) -> dict[str, Any]:
            ids = [r[0] for r in await tx.s.execute(select(m.ports.c.id).where(
                m.ports.c.binding_host_id == host))]
            out = msg.SyncState()
            for pid in ids:
                out.ports.append(msg.to_json(await port_state(
                    tx, await ports.show_internal(tx, pid))))
            for rid in [r[0] for r in await tx.s.execute(select(m.routers.c.id))]:
                state = await router_state(tx, rid)
                if state is not None:
                    out.routers.append(msg.to_json(state))
            return {"ports": out.ports, "routers": out.routers, "subnets": out.subnets,
                    "security_groups": out.security_groups}
        return await self.store.read(build)


__all__ = ["Notifier", "ServerEndpoint"]
