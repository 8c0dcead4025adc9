"""Per-project quotas (``/v2.0/quotas``), counted exactly from the tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update

from stratus.errors import BadRequest, Conflict, Forbidden
from stratus.network import models as m
from stratus.network.access import Caller
from stratus.network.store import QUOTA_TABLES, Tx, default_quotas, quotas_of, usage_of

# Accepted for compatibility (clients send them); not enforced by this cloud.
UNENFORCED = {"subnetpool": -1, "rbac_policy": 10}
CONTROL = ("force", "check_limit")  # flags of a PUT, not limits


async def show(tx: Tx, caller: Caller, project_id: str) -> dict[str, Any]:
    if not caller.can("get_quota", {"id": project_id, "project_id": project_id}):
        raise Forbidden("rule:get_quota is disallowed by policy", kind="PolicyNotAuthorized")
    return {**await quotas_of(tx, project_id), **UNENFORCED}


async def details(tx: Tx, caller: Caller, project_id: str) -> dict[str, Any]:
    limits = await show(tx, caller, project_id)
    out: dict[str, Any] = {}
    for name, limit in limits.items():
        used = await usage_of(tx, project_id, name) if name in QUOTA_TABLES else 0
        out[name] = {"limit": limit, "used": used, "reserved": 0}
    return out


def defaults(tx: Tx) -> dict[str, Any]:
    return {**default_quotas(tx.cfg), **UNENFORCED}


async def listing(tx: Tx, caller: Caller) -> list[dict[str, Any]]:
    if not caller.is_admin:
        return []
    projects = sorted({r[0] for r in await tx.s.execute(select(m.quotas.c.project_id))})
    out = []
    for project in projects:
        item: dict[str, Any] = {**await quotas_of(tx, project), **UNENFORCED}
        item.update(project_id=project, tenant_id=project)
        out.append(item)
    return out


async def update_(tx: Tx, caller: Caller, project_id: str, body: dict[str, Any],
                  *, force: bool = False) -> dict[str, Any]:
    if not caller.is_admin:
        raise Forbidden("rule:update_quota is disallowed by policy", kind="PolicyNotAuthorized")
    flags = {k: body.get(k, False) for k in CONTROL}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise BadRequest(f"Invalid input: {', '.join(CONTROL)} must be booleans.",
                         kind="InvalidInput")
    # Neutron's quota-check-limit: usage is compared only when asked to, never with force.
    check = flags["check_limit"] and not flags["force"] and not force
    for name, value in body.items():
        if name in CONTROL:
            continue
        if name not in QUOTA_TABLES and name not in UNENFORCED:
            raise BadRequest(f"Unrecognized attribute(s) '{name}'", kind="HTTPBadRequest")
        if isinstance(value, bool) or not isinstance(value, (int, str)) or \
                not str(value).lstrip("-").isdigit() or int(value) < -1:
            raise BadRequest(f"Invalid input for {name}. Reason: '{value}' is not a valid "
                             "quota limit (an integer, -1 for unlimited).", kind="InvalidInput")
        if name not in QUOTA_TABLES:
            continue
        limit = int(value)
        if check and limit >= 0:
            used = await usage_of(tx, project_id, name)
            if used > limit:
                raise Conflict(f"Change would make usage less than 0 for the following "
                               f"resources: {name}.", kind="InvalidQuotaValue")
        q = m.quotas.c
        changed = await tx.s.execute(update(m.quotas).where(
            q.project_id == project_id, q.resource == name).values(hard_limit=limit))
        if changed.rowcount == 0:  # type: ignore[attr-defined]
            await tx.s.execute(insert(m.quotas).values(project_id=project_id, resource=name,
                                                       hard_limit=limit))
    return {**await quotas_of(tx, project_id), **UNENFORCED}


async def reset(tx: Tx, caller: Caller, project_id: str) -> None:
    if not caller.is_admin:
        raise Forbidden("rule:delete_quota is disallowed by policy", kind="PolicyNotAuthorized")
    await tx.s.execute(delete(m.quotas).where(m.quotas.c.project_id == project_id))
