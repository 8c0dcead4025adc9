"""Subnet pools: address space that subnets take their CIDR from (``subnet_allocation``).

A subnet created with ``subnetpool_id`` (or ``use_default_subnetpool``) and no
``cidr`` gets the first free block of its prefix length inside the pool's
prefixes. Two concurrent allocations of the same block are caught by the
project lock of the pool's owner (:func:`stratus.network.store.lock_project`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, or_, select

from stratus.db.base import new_id
from stratus.errors import BadRequest, Conflict
from stratus.network import ipam
from stratus.network import models as m
from stratus.network.access import Caller, not_found
from stratus.network.store import Tx, bump, drop_tags, lock_project, stamps, standard, tags_of

LIMITS = {4: (8, 32), 6: (64, 128)}  # Neutron's default min_prefixlen, max_prefixlen


def view(row: Any, tags: dict[str, list[str]]) -> dict[str, Any]:
    out = standard(row, tags)
    out.update({
        "ip_version": row.ip_version, "prefixes": row.prefixes,
        "default_prefixlen": row.default_prefixlen, "min_prefixlen": row.min_prefixlen,
        "max_prefixlen": row.max_prefixlen, "shared": row.shared, "is_default": row.is_default,
        "default_quota": row.default_quota, "address_scope_id": None,
    })
    return out


def _target(row: Any) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id, "shared": row.shared}


async def visible_row(tx: Tx, caller: Caller, pool_id: str) -> Any:
    row = (await tx.s.execute(select(m.subnetpools).where(m.subnetpools.c.id == pool_id))
           ).first()
    if row is None:
        raise not_found("subnetpool", pool_id)
    caller.visible_or_404("subnetpool", _target(row))
    return row


async def show(tx: Tx, caller: Caller, pool_id: str) -> dict[str, Any]:
    return view(await visible_row(tx, caller, pool_id), await tags_of(tx, [pool_id]))


async def listing(tx: Tx, caller: Caller) -> list[dict[str, Any]]:
    stmt = select(m.subnetpools)
    if not caller.is_admin:
        c = m.subnetpools.c
        stmt = stmt.where(or_(c.project_id == caller.project_id, c.shared.is_(True)))
    rows = caller.visible("subnetpool", await tx.s.execute(stmt), _target)
    tags = await tags_of(tx, [r.id for r in rows])
    return [view(r, tags) for r in rows]


def _prefixes(raw: Any) -> list[ipam.IPNetwork]:
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
        raise BadRequest("Invalid input for prefixes: a non-empty list of CIDRs is required.",
                         kind="InvalidInput")
    nets = [ipam.parse_cidr(p, "prefixes") for p in raw]
    if len({n.version for n in nets}) != 1:
        raise BadRequest("Illegal subnetpool prefix: all prefixes must be of one IP version.",
                         kind="PrefixVersionMismatch")
    return list(ipaddress.collapse_addresses(nets))  # type: ignore[arg-type]


def _lengths(body: dict[str, Any], version: int, current: Any = None) -> dict[str, int]:
    lo_limit, hi_limit = LIMITS[version]
    lo = body.get("min_prefixlen", current.min_prefixlen if current else lo_limit)
    hi = body.get("max_prefixlen", current.max_prefixlen if current else hi_limit)
    default = body.get("default_prefixlen", current.default_prefixlen if current else lo)
    for name, value in (("min_prefixlen", lo), ("max_prefixlen", hi),
                        ("default_prefixlen", default)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi_limit:
            raise BadRequest(f"Invalid input for {name}. Reason: '{value}' is not a valid "
                             "prefix length.", kind="InvalidInput")
    if not lo <= default <= hi:
        raise BadRequest("Illegal prefix bounds: min_prefixlen <= default_prefixlen <= "
                         "max_prefixlen is required.", kind="IllegalSubnetPoolPrefixBounds")
    return {"min_prefixlen": lo, "max_prefixlen": hi, "default_prefixlen": default}


async def create(tx: Tx, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    project = body.get("project_id") or caller.project_id
    caller.enforce("create", "subnetpool", {"project_id": project})
    prefixes = _prefixes(body.get("prefixes"))
    version = prefixes[0].version
    lengths = _lengths(body, version)
    if any(p.prefixlen > lengths["min_prefixlen"] for p in prefixes):
        lengths["min_prefixlen"] = min(lengths["min_prefixlen"],
                                       min(p.prefixlen for p in prefixes))
    pool_id = new_id()
    await tx.s.execute(insert(m.subnetpools).values(
        id=pool_id, project_id=project, name=body.get("name", ""),
        description=body.get("description", ""), ip_version=version,
        prefixes=[str(p) for p in prefixes], shared=body.get("shared", False),
        is_default=body.get("is_default", False), default_quota=body.get("default_quota"),
        **lengths, **stamps()))
    return await show(tx, caller, pool_id)


async def update(tx: Tx, caller: Caller, pool_id: str, body: dict[str, Any]
                 ) -> dict[str, Any]:
    row = await visible_row(tx, caller, pool_id)
    caller.enforce("update", "subnetpool", _target(row))
    values: dict[str, Any] = {k: body[k] for k in ("name", "description", "is_default",
                                                   "default_quota") if k in body}
    if "prefixes" in body:
        new = _prefixes(body["prefixes"])
        if new[0].version != row.ip_version:
            raise BadRequest("Illegal subnetpool prefix: the IP version cannot change.",
                             kind="PrefixVersionMismatch")
        old = [ipaddress.ip_network(p) for p in row.prefixes]
        if not all(any(o.subnet_of(n) for n in new) for o in old):  # type: ignore[arg-type]
            raise BadRequest("Illegal prefix update: the prefixes of a subnet pool can only "
                             "grow.", kind="IllegalSubnetPoolPrefixUpdate")
        values["prefixes"] = [str(p) for p in new]
    values.update(_lengths(body, row.ip_version, row))
    await bump(tx, m.subnetpools, pool_id, values)
    return await show(tx, caller, pool_id)


async def delete_(tx: Tx, caller: Caller, pool_id: str) -> None:
    row = await visible_row(tx, caller, pool_id)
    caller.enforce("delete", "subnetpool", _target(row))
    used = (await tx.s.execute(select(m.subnets.c.id).where(
        m.subnets.c.subnetpool_id == pool_id).limit(1))).first()
    if used is not None:
        raise Conflict(f"Subnet pool {pool_id} could not be deleted: subnets are allocated "
                       "from it.", kind="SubnetPoolInUse")
    await drop_tags(tx, pool_id)
    await tx.s.execute(delete(m.subnetpools).where(m.subnetpools.c.id == pool_id))


# --- allocation for subnets -------------------------------------------------

async def pool_for(tx: Tx, caller: Caller, body: dict[str, Any]) -> Any | None:
    """The pool a subnet request names (or the default one), or None."""
    if body.get("subnetpool_id"):
        return await visible_row(tx, caller, body["subnetpool_id"])
    if not body.get("use_default_subnetpool"):
        return None
    version = body.get("ip_version", 4)
    row = (await tx.s.execute(select(m.subnetpools).where(
        m.subnetpools.c.is_default.is_(True), m.subnetpools.c.ip_version == version))).first()
    if row is None:
        raise BadRequest(f"Bad subnets request: no default subnet pool for IPv{version}.",
                         kind="BadRequest")
    return row


async def allocate_cidr(tx: Tx, pool: Any, body: dict[str, Any]) -> ipam.IPNetwork:
    """The CIDR a subnet takes from ``pool``: the one asked for, or the first free block."""
    if body.get("ip_version", pool.ip_version) != pool.ip_version:
        raise BadRequest("Bad subnets request: the subnet pool and the ip_version differ.",
                         kind="BadRequest")
    await lock_project(tx, pool.project_id)  # one allocation at a time per pool owner
    taken = [ipaddress.ip_network(r[0]) for r in await tx.s.execute(
        select(m.subnets.c.cidr).where(m.subnets.c.subnetpool_id == pool.id))]
    prefixes = [ipaddress.ip_network(p) for p in pool.prefixes]
    if body.get("cidr"):
        cidr = ipam.parse_cidr(body["cidr"])
        if not any(cidr.subnet_of(p) for p in prefixes):  # type: ignore[arg-type]
            raise BadRequest(f"Bad subnets request: {cidr} is not in subnet pool {pool.id}.",
                             kind="BadRequest")
        candidates: Iterable[ipam.IPNetwork] = [cidr]
    else:
        length = body.get("prefixlen", pool.default_prefixlen)
        if not pool.min_prefixlen <= length <= pool.max_prefixlen:
            raise BadRequest(f"Invalid input: prefixlen {length} is outside "
                             f"{pool.min_prefixlen}..{pool.max_prefixlen} of the pool.",
                             kind="InvalidInput")
        candidates = (c for p in prefixes if p.prefixlen <= length
                      for c in p.subnets(new_prefix=length))
    for cidr in candidates:
        if not pool.min_prefixlen <= cidr.prefixlen <= pool.max_prefixlen:
            raise BadRequest(f"Invalid input: prefix length of {cidr} is outside the pool's "
                             "bounds.", kind="InvalidInput")
        if not any(cidr.overlaps(t) for t in taken):  # type: ignore[arg-type]
            return cidr
    raise Conflict(f"Subnet allocation from pool {pool.id} failed: no free prefix.",
                   kind="SubnetAllocationError")

