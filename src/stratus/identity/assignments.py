"""Roles, implied roles and role assignments, and what they add up to.

An assignment gives an actor (user or group) a role on a target (project,
domain, or the system). ``inherited`` assignments on a domain or project
apply to every project below it instead of the target itself. A user's
*effective* roles on a scope are their direct assignments, their groups',
the inherited ones from above, all expanded by role implication.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db.base import new_hex_id
from stratus.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.identity import models as m
from stratus.identity.core import Identity, Row, check_name, extras, find_row, get_row, text
from stratus.identity.models import GLOBAL
from stratus.identity.resources import ancestors, descendants, user_group_ids

SYSTEM = "system"
USER_PROJECT, GROUP_PROJECT = "UserProject", "GroupProject"
USER_DOMAIN, GROUP_DOMAIN = "UserDomain", "GroupDomain"
USER_SYSTEM, GROUP_SYSTEM = "UserSystem", "GroupSystem"

ROLE_FIELDS = {"name", "domain_id", "description", "options"}


# --- roles ------------------------------------------------------------------

def role_view(idn: Identity, row: Row) -> dict[str, Any]:
    return {**(row.get("extra") or {}), "id": row["id"], "name": row["name"],
            "domain_id": row["domain_id"] or None, "description": row.get("description"),
            "options": row.get("options") or {}, "links": idn.link(f"roles/{row['id']}")}


async def create_role(s: AsyncSession, body: Mapping[str, Any]) -> Row:
    name = check_name(text(body, "name", required=True), "role")
    domain_id = text(body, "domain_id", nullable=True, max_len=64) or GLOBAL
    if domain_id and not await find_row(s, m.domains, id=domain_id):
        raise NotFound(f"Could not find domain: {domain_id}.")
    if await find_row(s, m.roles, domain_id=domain_id, name=name):
        raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found "
                       f"with name {name}.")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise BadRequest("Invalid input for field 'options': it must be an object.")
    row = {"id": new_hex_id(), "name": name, "domain_id": domain_id,
           "description": text(body, "description", nullable=True, max_len=65535),
           "options": options, "extra": extras(body, ROLE_FIELDS)}
    await s.execute(insert(m.roles).values(**row))
    return row


async def update_role(s: AsyncSession, role_id: str, body: Mapping[str, Any]) -> Row:
    row = await get_row(s, m.roles, role_id, "role")
    if "domain_id" in body and (body["domain_id"] or GLOBAL) != row["domain_id"]:
        raise BadRequest("Update of `domain_id` is not allowed.")
    if (row.get("options") or {}).get("immutable") and any(
            k != "options" for k in body):
        raise Forbidden(f"Role {role_id} is immutable.")
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = check_name(text(body, "name", required=True), "role")
        other = await find_row(s, m.roles, domain_id=row["domain_id"], name=values["name"])
        if other and other["id"] != role_id:
            raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found "
                           f"with name {values['name']}.")
    if "description" in body:
        values["description"] = text(body, "description", nullable=True, max_len=65535)
    if "options" in body:
        if not isinstance(body["options"], dict):
            raise BadRequest("Invalid input for field 'options': it must be an object.")
        values["options"] = {k: v for k, v in {**(row["options"] or {}),
                                                **body["options"]}.items() if v is not None}
    extra = extras(body, ROLE_FIELDS)
    if extra:
        values["extra"] = {**(row["extra"] or {}), **extra}
    if values:
        await s.execute(update(m.roles).where(m.roles.c.id == role_id).values(**values))
    return {**row, **values}


async def delete_role(s: AsyncSession, role_id: str) -> None:
    row = await get_row(s, m.roles, role_id, "role")
    if (row.get("options") or {}).get("immutable"):
        raise Forbidden(f"Role {role_id} is immutable.")
    await s.execute(delete(m.assignments).where(m.assignments.c.role_id == role_id))
    await s.execute(delete(m.implied_roles).where(or_(
        m.implied_roles.c.prior_role_id == role_id, m.implied_roles.c.implied_role_id == role_id)))
    await s.execute(delete(m.roles).where(m.roles.c.id == role_id))


@dataclass(frozen=True)
class RoleTable:
    """Every role and implication, cached in memory (both tables are small)."""

    by_id: dict[str, Row]
    implies: dict[str, tuple[str, ...]]

    def expand(self, role_ids: Iterable[str], *, effective: bool = False) -> list[str]:
        """Roles plus those they imply. ``effective`` drops domain-specific roles: they
        only ever stand for the global roles they imply (Keystone's rule)."""
        out: list[str] = []
        seen: set[str] = set()
        stack = list(role_ids)[::-1]
        while stack:
            rid = stack.pop()
            if rid in seen or rid not in self.by_id:
                continue
            seen.add(rid)
            if not (effective and self.by_id[rid]["domain_id"]):
                out.append(rid)
            stack.extend(reversed(self.implies.get(rid, ())))
        return out

    def by_name(self, name: str, domain_id: str = GLOBAL) -> Row | None:
        for row in self.by_id.values():
            if row["name"] == name and row["domain_id"] == domain_id:
                return row
        return None


async def load_role_table(s: AsyncSession) -> RoleTable:
    roles = {r["id"]: dict(r) for r in (await s.execute(select(m.roles))).mappings().all()}
    implies: dict[str, list[str]] = {}
    for prior, implied in (await s.execute(select(m.implied_roles))).all():
        implies.setdefault(prior, []).append(implied)
    return RoleTable(roles, {k: tuple(v) for k, v in implies.items()})


async def add_implied_role(s: AsyncSession, prior_id: str, implied_id: str) -> None:
    prior = await get_row(s, m.roles, prior_id, "role")
    implied = await get_row(s, m.roles, implied_id, "role")
    if implied["domain_id"] and not prior["domain_id"]:
        raise Forbidden("A global role cannot imply a domain-specific role.")
    if prior_id == implied_id:
        raise BadRequest("A role cannot imply itself.")
    table = await load_role_table(s)
    if prior_id in table.expand([implied_id]):
        raise BadRequest("That implication would make a cycle.")
    if not await find_row(s, m.implied_roles, prior_role_id=prior_id, implied_role_id=implied_id):
        await s.execute(insert(m.implied_roles).values(prior_role_id=prior_id,
                                                       implied_role_id=implied_id))


# --- assignments ------------------------------------------------------------

def assignment_type(actor: str, target: str) -> str:
    return {("user", "project"): USER_PROJECT, ("group", "project"): GROUP_PROJECT,
            ("user", "domain"): USER_DOMAIN, ("group", "domain"): GROUP_DOMAIN,
            ("user", "system"): USER_SYSTEM, ("group", "system"): GROUP_SYSTEM}[(actor, target)]


async def check_parties(s: AsyncSession, actor: str, actor_id: str, target: str,
                        target_id: str, role_id: str) -> Row:
    await get_row(s, m.users if actor == "user" else m.groups, actor_id, actor)
    if target == "project":
        await get_row(s, m.projects, target_id, "project")
    elif target == "domain":
        await get_row(s, m.domains, target_id, "domain")
    elif target_id != "all":
        raise NotFound(f"Could not find system scope: {target_id}.")
    return await get_row(s, m.roles, role_id, "role")


def _key(actor: str, actor_id: str, target: str, target_id: str, role_id: str,
         inherited: bool) -> dict[str, Any]:
    return {"type": assignment_type(actor, target), "actor_id": actor_id,
            "target_id": SYSTEM if target == "system" else target_id, "role_id": role_id,
            "inherited": inherited}


async def grant(s: AsyncSession, actor: str, actor_id: str, target: str, target_id: str,
                role_id: str, inherited: bool = False) -> None:
    await check_parties(s, actor, actor_id, target, target_id, role_id)
    key = _key(actor, actor_id, target, target_id, role_id, inherited)
    if not await find_row(s, m.assignments, **key):
        await s.execute(insert(m.assignments).values(**key))


async def has_grant(s: AsyncSession, actor: str, actor_id: str, target: str, target_id: str,
                    role_id: str, inherited: bool = False) -> bool:
    await check_parties(s, actor, actor_id, target, target_id, role_id)
    return await find_row(s, m.assignments, **_key(actor, actor_id, target, target_id, role_id,
                                                     inherited)) is not None


async def revoke(s: AsyncSession, actor: str, actor_id: str, target: str, target_id: str,
                 role_id: str, inherited: bool = False) -> None:
    await check_parties(s, actor, actor_id, target, target_id, role_id)
    key = _key(actor, actor_id, target, target_id, role_id, inherited)
    result = await s.execute(delete(m.assignments).where(and_(
        *[m.assignments.c[k] == v for k, v in key.items()])))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"Could not find role assignment with role: {role_id}, {actor}: "
                       f"{actor_id}, {target}: {target_id}.")


async def granted_roles(s: AsyncSession, actor: str, actor_id: str, target: str,
                        target_id: str, inherited: bool = False) -> list[Row]:
    await get_row(s, m.users if actor == "user" else m.groups, actor_id, actor)
    if target == "project":
        await get_row(s, m.projects, target_id, "project")
    elif target == "domain":
        await get_row(s, m.domains, target_id, "domain")
    key = {"type": assignment_type(actor, target), "actor_id": actor_id,
           "target_id": SYSTEM if target == "system" else target_id, "inherited": inherited}
    stmt = select(m.roles).join(m.assignments, m.assignments.c.role_id == m.roles.c.id).where(
        and_(*[m.assignments.c[k] == v for k, v in key.items()]))
    return [dict(r) for r in (await s.execute(stmt)).mappings().all()]


async def effective_role_ids(s: AsyncSession, table: RoleTable, user_id: str,
                             scope_kind: str | None, scope_id: str | None) -> list[str]:
    """Role ids the user holds on a scope ("p"/"d"/"s"), implications expanded."""
    if scope_kind is None:
        return []
    actors = [user_id, *await user_group_ids(s, user_id)]
    rows = (await s.execute(select(m.assignments).where(
        m.assignments.c.actor_id.in_(actors)))).mappings().all()
    direct: list[str] = []
    if scope_kind == "p":
        project = await find_row(s, m.projects, id=scope_id)
        if project is None:
            return []
        above = {p["id"] for p in await ancestors(s, project)} | {project["domain_id"]}
        for row in rows:
            if row["target_id"] == scope_id and not row["inherited"] and row["type"] in (
                    USER_PROJECT, GROUP_PROJECT):
                direct.append(row["role_id"])
            elif row["target_id"] in above and row["inherited"]:
                direct.append(row["role_id"])
    elif scope_kind == "d":
        direct = [r["role_id"] for r in rows if r["target_id"] == scope_id
                  and not r["inherited"] and r["type"] in (USER_DOMAIN, GROUP_DOMAIN)]
    else:
        direct = [r["role_id"] for r in rows if r["target_id"] == SYSTEM]
    return table.expand(dict.fromkeys(direct), effective=True)


async def user_targets(s: AsyncSession, user_id: str, kind: str) -> list[str]:
    """Ids of projects (or domains) where the user has any role, directly or via groups."""
    actors = [user_id, *await user_group_ids(s, user_id)]
    rows = (await s.execute(select(m.assignments).where(
        m.assignments.c.actor_id.in_(actors)))).mappings().all()
    if kind == "domain":
        return list(dict.fromkeys(r["target_id"] for r in rows
                                  if r["type"] in (USER_DOMAIN, GROUP_DOMAIN)
                                  and not r["inherited"]))
    ids: dict[str, None] = {}
    for r in rows:
        if r["type"] in (USER_PROJECT, GROUP_PROJECT) and not r["inherited"]:
            ids[r["target_id"]] = None
        if r["inherited"] and r["type"] in (USER_PROJECT, GROUP_PROJECT):
            for child in await descendants(s, r["target_id"]):
                ids[child["id"]] = None
        if r["inherited"] and r["type"] in (USER_DOMAIN, GROUP_DOMAIN):
            for pid in (await s.execute(select(m.projects.c.id).where(
                    m.projects.c.domain_id == r["target_id"]))).scalars():
                ids[pid] = None
    return list(ids)


async def delete_implied_role(s: AsyncSession, prior_id: str, implied_id: str) -> None:
    await get_row(s, m.roles, prior_id, "role")
    await get_row(s, m.roles, implied_id, "role")
    result = await s.execute(delete(m.implied_roles).where(and_(
        m.implied_roles.c.prior_role_id == prior_id,
        m.implied_roles.c.implied_role_id == implied_id)))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"Could not find implied role: {prior_id} implies {implied_id}.")
