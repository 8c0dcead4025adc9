"""Get-me-a-network: Neutron's ``auto-allocated-topology`` extension.

``GET /v2.0/auto-allocated-topology/{project_id}`` returns the project's
network for servers created with ``networks: "auto"``, creating it on first
use: a network, an IPv4 subnet (from the default subnet pool when there is
one), and a router joining it to the default external network (or, failing
that, the only external network with a subnet) when one exists. The
``auto_allocated_topologies`` row, keyed by project, makes concurrent first
requests converge on one topology: the losing transaction hits the primary
key, is retried by :meth:`Store.write` and finds the winner's row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from stratus.errors import Forbidden, NotFound
from stratus.network import models as m
from stratus.network import networks, routers, subnets
from stratus.network.access import Caller
from stratus.network.ports import _ADMIN as elevated
from stratus.network.store import Tx

NAME = "auto_allocated_network"
ROUTER_NAME = "auto_allocated_router"
SUBNET_NAME = "auto_allocated_subnet_v4"
FALLBACK_CIDR = "10.0.0.0/24"


def _check_caller(caller: Caller, project_id: str) -> None:
    if project_id != caller.project_id and not caller.is_admin:
        raise Forbidden(f"Not allowed to get the auto-allocated topology of project "
                        f"{project_id}.", kind="PolicyNotAuthorized")


def _view(project_id: str, network_id: str) -> dict[str, Any]:
    return {"id": network_id, "tenant_id": project_id, "project_id": project_id}


async def _existing(tx: Tx, project_id: str) -> Any:
    t = m.auto_allocated_topologies.c
    return (await tx.s.execute(select(m.auto_allocated_topologies).where(
        t.project_id == project_id))).first()


async def _external_network(tx: Tx) -> str | None:
    """The default external network, else the only external network with a subnet."""
    n, s = m.networks.c, m.subnets.c
    rows = (await tx.s.execute(select(n.id, n.is_default).where(
        n.external.is_(True), n.id.in_(select(s.network_id).where(s.ip_version == 4)))
        .order_by(n.is_default.desc(), n.created_at))).all()
    if not rows:
        return None
    if rows[0].is_default or len(rows) == 1:
        return str(rows[0].id)
    return None


async def _default_pool(tx: Tx) -> str | None:
    p = m.subnetpools.c
    row = (await tx.s.execute(select(p.id).where(p.is_default.is_(True),
                                                 p.ip_version == 4))).first()
    return str(row[0]) if row else None


async def get(tx: Tx, caller: Caller, project_id: str, *, dry_run: bool = False
              ) -> dict[str, Any]:
    _check_caller(caller, project_id)
    row = await _existing(tx, project_id)
    if row is not None:
        alive = (await tx.s.execute(select(m.networks.c.id).where(
            m.networks.c.id == row.network_id))).first()
        if alive is not None:
            return _view(project_id, row.network_id)
        await tx.s.execute(delete(m.auto_allocated_topologies).where(
            m.auto_allocated_topologies.c.project_id == project_id))
    if dry_run:
        return {"id": "dry-run=pass", "tenant_id": project_id, "project_id": project_id}
    admin = elevated(caller)
    net = await networks.create(tx, admin, {"name": NAME, "project_id": project_id,
                                            "description": "Auto-allocated network"})
    body: dict[str, Any] = {"network_id": net["id"], "project_id": project_id,
                            "name": SUBNET_NAME, "ip_version": 4}
    pool = await _default_pool(tx)
    if pool is not None:
        body["subnetpool_id"] = pool
    else:
        body["cidr"] = FALLBACK_CIDR
    subnet = await subnets.create(tx, admin, body)
    router_id: str | None = None
    external = await _external_network(tx)
    if external is not None:
        router = await routers.create(tx, admin, {
            "name": ROUTER_NAME, "project_id": project_id,
            "external_gateway_info": {"network_id": external}})
        router_id = router["id"]
        await routers.add_interface(tx, admin, router["id"], {"subnet_id": subnet["id"]})
    await tx.s.execute(insert(m.auto_allocated_topologies).values(
        project_id=project_id, network_id=net["id"], router_id=router_id))
    return _view(project_id, net["id"])


async def delete_(tx: Tx, caller: Caller, project_id: str) -> None:
    _check_caller(caller, project_id)
    row = await _existing(tx, project_id)
    if row is None:
        return  # as Neutron: nothing to clean up is not an error
    admin = elevated(caller)
    sids = [r[0] for r in await tx.s.execute(select(m.subnets.c.id).where(
        m.subnets.c.network_id == row.network_id))]
    if row.router_id is not None:
        for sid in sids:
            try:
                await routers.remove_interface(tx, admin, row.router_id, {"subnet_id": sid})
            except NotFound:
                continue
        try:
            await routers.delete_(tx, admin, row.router_id)
        except NotFound:
            pass
    await tx.s.execute(delete(m.auto_allocated_topologies).where(
        m.auto_allocated_topologies.c.project_id == project_id))
    await networks.delete_(tx, admin, row.network_id)
