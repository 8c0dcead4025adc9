"""Domains, projects, users and groups: storage and their wire shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db.base import new_hex_id, utcnow
from stratus.errors import BadRequest, Conflict, Forbidden, NotFound
from stratus.identity import models as m
from stratus.identity.core import (
    Identity,
    Row,
    boolean,
    check_name,
    extras,
    find_row,
    get_row,
    text,
)
from stratus.identity.security import check_strength, password_expires_at, remember_password

# --- views ------------------------------------------------------------------


def domain_view(idn: Identity, row: Row) -> dict[str, Any]:
    return {**(row.get("extra") or {}), "id": row["id"], "name": row["name"],
            "description": row["description"], "enabled": row["enabled"], "tags": [],
            "options": {}, "links": idn.link(f"domains/{row['id']}")}


def project_view(idn: Identity, row: Row, tags: list[str] | None = None) -> dict[str, Any]:
    return {**(row.get("extra") or {}), "id": row["id"], "name": row["name"],
            "domain_id": row["domain_id"],
            # Keystone: a top-level project's parent is its domain.
            "parent_id": row["parent_id"] or row["domain_id"],
            "description": row["description"], "enabled": row["enabled"], "is_domain": False,
            "tags": sorted(tags or []), "options": {},
            "links": idn.link(f"projects/{row['id']}")}


def domain_as_project_view(idn: Identity, row: Row) -> dict[str, Any]:
    """A domain seen through the projects API (Keystone's ``is_domain`` projects)."""
    return {"id": row["id"], "name": row["name"], "domain_id": None, "parent_id": None,
            "description": row["description"], "enabled": row["enabled"], "is_domain": True,
            "tags": [], "options": {}, "links": idn.link(f"projects/{row['id']}")}


def user_view(idn: Identity, row: Row) -> dict[str, Any]:
    out = {**(row.get("extra") or {}), "id": row["id"], "name": row["name"],
           "domain_id": row["domain_id"], "enabled": row["enabled"],
           "password_expires_at": password_expires_at(idn, row),
           "options": row.get("options") or {},
           "links": idn.link(f"users/{row['id']}")}
    if row.get("default_project_id"):
        out["default_project_id"] = row["default_project_id"]
    if row.get("description") is not None:
        out["description"] = row["description"]
    return out


def group_view(idn: Identity, row: Row) -> dict[str, Any]:
    return {**(row.get("extra") or {}), "id": row["id"], "name": row["name"],
            "domain_id": row["domain_id"], "description": row["description"],
            "links": idn.link(f"groups/{row['id']}")}


# --- domains ----------------------------------------------------------------

DOMAIN_FIELDS = {"name", "description", "enabled", "tags", "options", "explicit_domain_id"}


async def create_domain(s: AsyncSession, body: Mapping[str, Any]) -> Row:
    name = check_name(text(body, "name", required=True, max_len=64), "domain")
    if await find_row(s, m.domains, name=name):
        raise Conflict(f"Conflict occurred attempting to store domain - Duplicate entry found "
                       f"with name {name}.")
    row = {"id": text(body, "explicit_domain_id") or new_hex_id(), "name": name,
           "description": text(body, "description", default="", nullable=True) or "",
           "enabled": boolean(body, "enabled", True), "extra": extras(body, DOMAIN_FIELDS)}
    await s.execute(insert(m.domains).values(**row))
    return row


async def update_domain(s: AsyncSession, domain_id: str, body: Mapping[str, Any]) -> Row:
    row = await get_row(s, m.domains, domain_id, "domain")
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = check_name(text(body, "name", required=True, max_len=64), "domain")
        other = await find_row(s, m.domains, name=values["name"])
        if other and other["id"] != domain_id:
            raise Conflict(f"Conflict occurred attempting to store domain - Duplicate entry "
                           f"found with name {values['name']}.")
    if "description" in body:
        values["description"] = text(body, "description", nullable=True) or ""
    if "enabled" in body:
        values["enabled"] = boolean(body, "enabled")
    extra = extras(body, DOMAIN_FIELDS)
    if extra:
        values["extra"] = {**(row["extra"] or {}), **extra}
    if values:
        await s.execute(update(m.domains).where(m.domains.c.id == domain_id).values(**values))
    return {**row, **values}


async def delete_domain(s: AsyncSession, domain_id: str) -> None:
    row = await get_row(s, m.domains, domain_id, "domain")
    if row["enabled"]:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    project_ids = (await s.execute(select(m.projects.c.id).where(
        m.projects.c.domain_id == domain_id))).scalars().all()
    user_ids = (await s.execute(select(m.users.c.id).where(
        m.users.c.domain_id == domain_id))).scalars().all()
    group_ids = (await s.execute(select(m.groups.c.id).where(
        m.groups.c.domain_id == domain_id))).scalars().all()
    targets = [domain_id, *project_ids, *user_ids, *group_ids]
    await s.execute(delete(m.assignments).where(or_(m.assignments.c.target_id.in_(targets),
                                                    m.assignments.c.actor_id.in_(targets))))
    await s.execute(delete(m.group_members).where(or_(m.group_members.c.user_id.in_(user_ids),
                                                      m.group_members.c.group_id.in_(group_ids))))
    await s.execute(delete(m.app_creds).where(m.app_creds.c.user_id.in_(user_ids)))
    await s.execute(delete(m.access_rules).where(m.access_rules.c.user_id.in_(user_ids)))
    await s.execute(delete(m.project_tags).where(m.project_tags.c.project_id.in_(project_ids)))
    await s.execute(update(m.projects).where(m.projects.c.domain_id == domain_id)
                    .values(parent_id=None))
    await s.execute(delete(m.projects).where(m.projects.c.domain_id == domain_id))
    await s.execute(delete(m.users).where(m.users.c.domain_id == domain_id))
    await s.execute(delete(m.groups).where(m.groups.c.domain_id == domain_id))
    domain_roles = (await s.execute(select(m.roles.c.id).where(
        m.roles.c.domain_id == domain_id))).scalars().all()
    await s.execute(delete(m.assignments).where(m.assignments.c.role_id.in_(domain_roles)))
    await s.execute(delete(m.roles).where(m.roles.c.domain_id == domain_id))
    await s.execute(delete(m.domain_configs).where(m.domain_configs.c.domain_id == domain_id))
    await s.execute(delete(m.domains).where(m.domains.c.id == domain_id))


# --- projects ---------------------------------------------------------------

PROJECT_FIELDS = {"name", "description", "enabled", "domain_id", "parent_id", "is_domain",
                  "tags", "options"}


def _tags(body: Mapping[str, Any]) -> list[str] | None:
    if "tags" not in body:
        return None
    tags = body["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadRequest("Invalid input for field 'tags': it must be a list of strings.")
    for tag in tags:
        if not tag or len(tag) > 255 or "/" in tag or "," in tag:
            raise BadRequest(f"Invalid project tag {tag!r}: 1-255 characters, no '/' or ','.")
    if len(tags) > 80:
        raise BadRequest("A project may have at most 80 tags.")
    return list(dict.fromkeys(tags))


async def project_tags(s: AsyncSession, project_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {pid: [] for pid in project_ids}
    if not project_ids:
        return out
    rows = await s.execute(select(m.project_tags).where(
        m.project_tags.c.project_id.in_(project_ids)))
    for pid, tag in rows.all():
        out.setdefault(pid, []).append(tag)
    return out


async def set_tags(s: AsyncSession, project_id: str, tags: list[str]) -> None:
    await s.execute(delete(m.project_tags).where(m.project_tags.c.project_id == project_id))
    if tags:
        await s.execute(insert(m.project_tags), [{"project_id": project_id, "tag": t}
                                                 for t in tags])


async def create_project(s: AsyncSession, body: Mapping[str, Any],
                         default_domain: str | None) -> Row:
    name = check_name(text(body, "name", required=True, max_len=64), "project")
    parent_id = text(body, "parent_id", nullable=True, max_len=64)
    domain_id = text(body, "domain_id", nullable=True, max_len=64)
    parent = None
    if parent_id:
        parent = await find_row(s, m.projects, id=parent_id)
        if parent is None:
            if await find_row(s, m.domains, id=parent_id):
                domain_id = domain_id or parent_id
                parent_id = None
            else:
                raise NotFound(f"Could not find project: {parent_id}.")
        else:
            if domain_id and domain_id != parent["domain_id"]:
                raise BadRequest("A project's domain must be the domain of its parent.")
            domain_id = parent["domain_id"]
    domain_id = domain_id or default_domain
    if not domain_id:
        raise BadRequest("Invalid input for field 'domain_id': it is required.")
    if not await find_row(s, m.domains, id=domain_id):
        raise NotFound(f"Could not find domain: {domain_id}.")
    if await find_row(s, m.projects, domain_id=domain_id, name=name):
        raise Conflict(f"Conflict occurred attempting to store project - Duplicate entry found "
                       f"with name {name} at domain ID {domain_id}.")
    tags = _tags(body) or []
    row = {"id": new_hex_id(), "name": name, "domain_id": domain_id, "parent_id": parent_id,
           "description": text(body, "description", default="", nullable=True) or "",
           "enabled": boolean(body, "enabled", True), "extra": extras(body, PROJECT_FIELDS)}
    await s.execute(insert(m.projects).values(**row))
    await set_tags(s, row["id"], tags)
    return row


async def update_project(s: AsyncSession, project_id: str, body: Mapping[str, Any]) -> Row:
    row = await get_row(s, m.projects, project_id, "project")
    if "domain_id" in body and body["domain_id"] != row["domain_id"]:
        raise BadRequest("Update of `domain_id` is not allowed.")
    if "parent_id" in body and body["parent_id"] not in (row["parent_id"], row["domain_id"]):
        raise BadRequest("Update of `parent_id` is not allowed.")
    if "is_domain" in body and body["is_domain"] is not False:
        raise BadRequest("Update of `is_domain` is not allowed.")
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = check_name(text(body, "name", required=True, max_len=64), "project")
        other = await find_row(s, m.projects, domain_id=row["domain_id"], name=values["name"])
        if other and other["id"] != project_id:
            raise Conflict(f"Conflict occurred attempting to store project - Duplicate entry "
                           f"found with name {values['name']}.")
    if "description" in body:
        values["description"] = text(body, "description", nullable=True) or ""
    if "enabled" in body:
        values["enabled"] = boolean(body, "enabled")
    extra = extras(body, PROJECT_FIELDS)
    if extra:
        values["extra"] = {**(row["extra"] or {}), **extra}
    if values:
        await s.execute(update(m.projects).where(m.projects.c.id == project_id).values(**values))
    tags = _tags(body)
    if tags is not None:
        await set_tags(s, project_id, tags)
    return {**row, **values}


async def delete_project(s: AsyncSession, project_id: str) -> Row:
    row = await get_row(s, m.projects, project_id, "project")
    child = (await s.execute(select(func.count()).select_from(m.projects).where(
        m.projects.c.parent_id == project_id))).scalar_one()
    if child:
        raise Forbidden(f"Cannot delete project {project_id}: it has child projects.")
    await s.execute(delete(m.assignments).where(m.assignments.c.target_id == project_id))
    await s.execute(delete(m.project_tags).where(m.project_tags.c.project_id == project_id))
    await s.execute(delete(m.app_creds).where(m.app_creds.c.project_id == project_id))
    await s.execute(delete(m.limits).where(m.limits.c.project_id == project_id))
    await s.execute(delete(m.trusts).where(m.trusts.c.project_id == project_id))
    await s.execute(delete(m.projects).where(m.projects.c.id == project_id))
    return row


async def ancestors(s: AsyncSession, project: Row) -> list[Row]:
    """Parents of a project, nearest first."""
    out: list[Row] = []
    parent_id = project.get("parent_id")
    while parent_id and len(out) < 64:
        parent = await find_row(s, m.projects, id=parent_id)
        if parent is None:
            break
        out.append(parent)
        parent_id = parent.get("parent_id")
    return out


async def descendants(s: AsyncSession, project_id: str) -> list[Row]:
    out: list[Row] = []
    frontier = [project_id]
    while frontier and len(out) < 10000:
        rows = (await s.execute(select(m.projects).where(
            m.projects.c.parent_id.in_(frontier)))).mappings().all()
        out.extend(dict(r) for r in rows)
        frontier = [r["id"] for r in rows]
    return out


# --- users ------------------------------------------------------------------

USER_FIELDS = {"name", "domain_id", "enabled", "password", "default_project_id", "description",
               "options", "federated"}


async def create_user(idn: Identity, s: AsyncSession, body: Mapping[str, Any],
                      default_domain: str | None) -> Row:
    name = check_name(text(body, "name", required=True), "user")
    domain_id = text(body, "domain_id", max_len=64) or default_domain
    if not domain_id:
        raise BadRequest("Invalid input for field 'domain_id': it is required.")
    if not await find_row(s, m.domains, id=domain_id):
        raise NotFound(f"Could not find domain: {domain_id}.")
    if await find_row(s, m.users, domain_id=domain_id, name=name):
        raise Conflict(f"Conflict occurred attempting to store user - Duplicate entry found "
                       f"with name {name} at domain ID {domain_id}.")
    password = text(body, "password", nullable=True, max_len=4096)
    if password:
        check_strength(idn, password)
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise BadRequest("Invalid input for field 'options': it must be an object.")
    row = {"id": new_hex_id(), "name": name, "domain_id": domain_id,
           "enabled": boolean(body, "enabled", True),
           "password_hash": await idn.hasher.hash(password) if password else None,
           "password_created_at": utcnow() if password else None,
           "default_project_id": text(body, "default_project_id", nullable=True, max_len=64),
           "description": text(body, "description", nullable=True, max_len=65535),
           "options": options, "extra": extras(body, USER_FIELDS), "created_at": utcnow()}
    await s.execute(insert(m.users).values(**row))
    return row


async def update_user(idn: Identity, s: AsyncSession, user_id: str,
                      body: Mapping[str, Any]) -> tuple[Row, bool]:
    """The updated user, and whether its tokens must be revoked."""
    row = await get_row(s, m.users, user_id, "user")
    if "domain_id" in body and body["domain_id"] != row["domain_id"]:
        raise BadRequest("Update of `domain_id` is not allowed.")
    values: dict[str, Any] = {}
    revoke = False
    if "name" in body:
        values["name"] = check_name(text(body, "name", required=True), "user")
        other = await find_row(s, m.users, domain_id=row["domain_id"], name=values["name"])
        if other and other["id"] != user_id:
            raise Conflict(f"Conflict occurred attempting to store user - Duplicate entry found "
                           f"with name {values['name']}.")
    if "enabled" in body:
        values["enabled"] = boolean(body, "enabled")
        revoke = revoke or (row["enabled"] and not values["enabled"])
    if "password" in body:
        password = text(body, "password", nullable=True, max_len=4096)
        if password:
            check_strength(idn, password)
        await remember_password(idn, s, user_id, row["password_hash"])
        values["password_hash"] = await idn.hasher.hash(password) if password else None
        values["password_created_at"] = utcnow()
        revoke = True
    if "default_project_id" in body:
        values["default_project_id"] = text(body, "default_project_id", nullable=True,
                                            max_len=64)
    if "description" in body:
        values["description"] = text(body, "description", nullable=True, max_len=65535)
    if "options" in body:
        if not isinstance(body["options"], dict):
            raise BadRequest("Invalid input for field 'options': it must be an object.")
        values["options"] = {k: v for k, v in {**(row["options"] or {}),
                                                **body["options"]}.items() if v is not None}
    extra = extras(body, USER_FIELDS)
    if extra:
        values["extra"] = {**(row["extra"] or {}), **extra}
    if values:
        await s.execute(update(m.users).where(m.users.c.id == user_id).values(**values))
    return {**row, **values}, revoke


async def delete_user(s: AsyncSession, user_id: str) -> None:
    await get_row(s, m.users, user_id, "user")
    await s.execute(delete(m.assignments).where(m.assignments.c.actor_id == user_id))
    await s.execute(delete(m.group_members).where(m.group_members.c.user_id == user_id))
    await s.execute(delete(m.app_creds).where(m.app_creds.c.user_id == user_id))
    await s.execute(delete(m.credentials).where(m.credentials.c.user_id == user_id))
    await s.execute(delete(m.access_rules).where(m.access_rules.c.user_id == user_id))
    await s.execute(delete(m.password_history).where(m.password_history.c.user_id == user_id))
    await s.execute(delete(m.login_failures).where(m.login_failures.c.user_id == user_id))
    await s.execute(delete(m.trusts).where(or_(m.trusts.c.trustor_user_id == user_id,
                                               m.trusts.c.trustee_user_id == user_id)))
    await s.execute(delete(m.users).where(m.users.c.id == user_id))


# --- groups -----------------------------------------------------------------

GROUP_FIELDS = {"name", "domain_id", "description"}


async def create_group(s: AsyncSession, body: Mapping[str, Any],
                       default_domain: str | None) -> Row:
    name = check_name(text(body, "name", required=True, max_len=64), "group")
    domain_id = text(body, "domain_id", max_len=64) or default_domain
    if not domain_id:
        raise BadRequest("Invalid input for field 'domain_id': it is required.")
    if not await find_row(s, m.domains, id=domain_id):
        raise NotFound(f"Could not find domain: {domain_id}.")
    if await find_row(s, m.groups, domain_id=domain_id, name=name):
        raise Conflict(f"Conflict occurred attempting to store group - Duplicate entry found "
                       f"with name {name} at domain ID {domain_id}.")
    row = {"id": new_hex_id(), "name": name, "domain_id": domain_id,
           "description": text(body, "description", default="", nullable=True) or "",
           "extra": extras(body, GROUP_FIELDS)}
    await s.execute(insert(m.groups).values(**row))
    return row


async def update_group(s: AsyncSession, group_id: str, body: Mapping[str, Any]) -> Row:
    row = await get_row(s, m.groups, group_id, "group")
    if "domain_id" in body and body["domain_id"] != row["domain_id"]:
        raise BadRequest("Update of `domain_id` is not allowed.")
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = check_name(text(body, "name", required=True, max_len=64), "group")
        other = await find_row(s, m.groups, domain_id=row["domain_id"], name=values["name"])
        if other and other["id"] != group_id:
            raise Conflict(f"Conflict occurred attempting to store group - Duplicate entry "
                           f"found with name {values['name']}.")
    if "description" in body:
        values["description"] = text(body, "description", nullable=True) or ""
    extra = extras(body, GROUP_FIELDS)
    if extra:
        values["extra"] = {**(row["extra"] or {}), **extra}
    if values:
        await s.execute(update(m.groups).where(m.groups.c.id == group_id).values(**values))
    return {**row, **values}


async def delete_group(s: AsyncSession, group_id: str) -> None:
    await get_row(s, m.groups, group_id, "group")
    await s.execute(delete(m.assignments).where(m.assignments.c.actor_id == group_id))
    await s.execute(delete(m.group_members).where(m.group_members.c.group_id == group_id))
    await s.execute(delete(m.groups).where(m.groups.c.id == group_id))


async def user_group_ids(s: AsyncSession, user_id: str) -> list[str]:
    return list((await s.execute(select(m.group_members.c.group_id).where(
        m.group_members.c.user_id == user_id))).scalars().all())
