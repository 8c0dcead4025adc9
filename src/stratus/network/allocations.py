"""IPAM against the database: give a port its fixed IPs, once each.

Each address is one ``ip_allocations`` row keyed by (subnet_id, ip_address).
A worker reads the used set, proposes a free candidate and inserts it; if a
concurrent worker committed the same address first, the insert (or commit)
fails on the key and :meth:`stratus.network.store.Store.write` replays the
whole request, which then sees the address as used. No locks, no
over-allocation, on SQLite, MariaDB and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from stratus.errors import BadRequest, Conflict
from stratus.network import ipam
from stratus.network import models as m
from stratus.network.store import Tx


async def subnets_of(tx: Tx, network_id: str) -> list[Any]:
    rows = await tx.s.execute(select(m.subnets).where(m.subnets.c.network_id == network_id)
                              .order_by(m.subnets.c.created_at, m.subnets.c.id))
    return list(rows)


async def _used(tx: Tx, subnet_id: str) -> set[str]:
    # .all() fetches in one go; iterating the result fetches row by row (slow at 10k).
    rows = (await tx.s.execute(select(m.ip_allocations.c.ip_address).where(
        m.ip_allocations.c.subnet_id == subnet_id))).scalars().all()
    return set(rows)


async def _take(tx: Tx, subnet: Any, port_id: str, ip: str) -> dict[str, str]:
    await tx.s.execute(insert(m.ip_allocations).values(
        subnet_id=subnet.id, ip_address=ip, network_id=subnet.network_id, port_id=port_id))
    return {"subnet_id": subnet.id, "ip_address": ip}


async def _take_specific(tx: Tx, subnet: Any, port_id: str, ip: ipam.IPAddress
                         ) -> dict[str, str]:
    existing = await tx.s.execute(select(m.ip_allocations.c.port_id).where(
        m.ip_allocations.c.subnet_id == subnet.id,
        m.ip_allocations.c.ip_address == str(ip)))
    if existing.first() is not None:
        raise Conflict(f"IP address {ip} already allocated in subnet {subnet.id}",
                       kind="IpAddressAlreadyAllocated")
    return await _take(tx, subnet, port_id, str(ip))


async def _take_any(tx: Tx, subnet: Any, port_id: str) -> dict[str, str] | None:
    used = await _used(tx, subnet.id)
    for ip in ipam.candidates(ipam.pools_of(subnet.allocation_pools), used):
        return await _take(tx, subnet, port_id, str(ip))
    return None


def _auto_address(subnet: Any) -> bool:
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in ipam.AUTO_ADDRESS_MODES


async def allocate(tx: Tx, network_id: str, port_id: str, mac: str,
                   requested: list[dict[str, Any]] | None, *, device_owner: str = "",
                   implicit_auto: bool = False) -> list[dict[str, str]]:
    """Allocate the port's addresses; ``requested`` None means "pick for me".

    With ``implicit_auto`` (a new port), SLAAC/DHCPv6-stateless subnets add
    their EUI-64 address even when ``requested`` does not name them, as Neutron does.
    """
    subnets = await subnets_of(tx, network_id)
    if requested is None:
        return await _allocate_default(tx, network_id, subnets, port_id, mac, device_owner)
    by_id = {s.id: s for s in subnets}
    out: list[dict[str, str]] = []
    for item in requested:
        if not isinstance(item, dict) or not set(item) <= {"subnet_id", "ip_address"} \
                or not item:
            raise BadRequest(f"Invalid input for fixed_ips. Reason: '{item}' is not a valid "
                             "fixed IP request.", kind="InvalidInput")
        subnet_id, raw_ip = item.get("subnet_id"), item.get("ip_address")
        if subnet_id is None and raw_ip is None:
            raise BadRequest(f"Invalid input for fixed_ips. Reason: '{item}' names neither a "
                             "subnet_id nor an ip_address.", kind="InvalidInput")
        ip = ipam.parse_ip(raw_ip, "fixed_ips") if raw_ip is not None else None
        if subnet_id is not None:
            subnet = by_id.get(str(subnet_id))
            if subnet is None:
                raise BadRequest(f"Invalid input for operation: Failed to create port on "
                                 f"network {network_id}, because fixed_ips included invalid "
                                 f"subnet {subnet_id}.", kind="InvalidInput")
            if ip is not None and not ipam.contains(ipam.parse_cidr(subnet.cidr), ip):
                raise BadRequest(f"IP address {ip} is not a valid IP for the specified "
                                 "subnet.", kind="InvalidIpForSubnet")
        else:
            assert ip is not None
            matches = [s for s in subnets if ipam.contains(ipam.parse_cidr(s.cidr), ip)]
            if not matches:
                raise BadRequest(f"IP address {ip} is not a valid IP for any of the subnets on "
                                 "the specified network.", kind="InvalidIpForNetwork")
            subnet = matches[0]
        if any(o["subnet_id"] == subnet.id and (ip is None or o["ip_address"] == str(ip))
               for o in out):
            raise BadRequest("Duplicate IP address request for the same subnet.",
                             kind="InvalidInput")
        if ip is not None:
            out.append(await _take_specific(tx, subnet, port_id, ip))
        elif _auto_address(subnet):
            out.append(await _take_specific(tx, subnet, port_id,
                                            ipam.eui64(ipam.parse_cidr(subnet.cidr), mac)))
        else:
            got = await _take_any(tx, subnet, port_id)
            if got is None:
                raise _exhausted(network_id)
            out.append(got)
    if implicit_auto and not device_owner.startswith("network:router"):
        for subnet in subnets:
            if _auto_address(subnet) and all(o["subnet_id"] != subnet.id for o in out):
                ip = ipam.eui64(ipam.parse_cidr(subnet.cidr), mac)
                out.append(await _take_specific(tx, subnet, port_id, ip))
    return out


async def _allocate_default(tx: Tx, network_id: str, subnets: list[Any], port_id: str,
                            mac: str, device_owner: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    v4 = [s for s in subnets if s.ip_version == 4]
    v6_auto = [s for s in subnets if _auto_address(s)]
    v6_pool = [s for s in subnets if s.ip_version == 6 and not _auto_address(s)]
    for family in (v4, v6_pool):
        if not family:
            continue
        for subnet in family:
            got = await _take_any(tx, subnet, port_id)
            if got is not None:
                out.append(got)
                break
        else:
            raise _exhausted(network_id)
    if not device_owner.startswith("network:router"):
        for subnet in v6_auto:
            ip = ipam.eui64(ipam.parse_cidr(subnet.cidr), mac)
            out.append(await _take_specific(tx, subnet, port_id, ip))
    return out


def _exhausted(network_id: str) -> Conflict:
    return Conflict(f"No more IP addresses available on network {network_id}.",
                    kind="IpAddressGenerationFailure")


async def fixed_ips_of(tx: Tx, port_ids: list[str]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    a = m.ip_allocations.c
    for i in range(0, len(port_ids), 500):
        rows = (await tx.s.execute(select(a.port_id, a.subnet_id, a.ip_address).where(
            a.port_id.in_(port_ids[i:i + 500])))).all()
        for r in rows:
            out.setdefault(r.port_id, []).append({"subnet_id": r.subnet_id,
                                                  "ip_address": r.ip_address})
    return out


async def release(tx: Tx, port_id: str, keep: list[dict[str, str]] | None = None) -> None:
    a = m.ip_allocations.c
    stmt = delete(m.ip_allocations).where(a.port_id == port_id)
    for item in keep or []:
        stmt = stmt.where(~((a.subnet_id == item["subnet_id"])
                            & (a.ip_address == item["ip_address"])))
    await tx.s.execute(stmt)
