"""OS-TRUST: a trustor delegates some of its roles on a project to a trustee.

A trust is a row; nothing about it is copied into tokens but its id. A
trust-scoped token therefore means, at every validation, what the trust
means *now*: deleting the trust, its expiry, or the trustor losing one of
the delegated roles kills every token made with it (Keystone's rule: the
trustor must still hold every role it delegated).

Redelegation: a trust made with ``allow_redelegation`` may be passed on,
with a trust-scoped token of it, as a new trust that delegates no more
(roles, time, impersonation) and counts one step down
(``redelegation_count``), at most ``identity.max_redelegation_count`` deep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db.base import new_hex_id
from stratus.errors import BadRequest, Forbidden, NotFound
from stratus.identity import models as m
from stratus.identity.assignments import RoleTable, effective_role_ids, role_view
from stratus.identity.core import Identity, Row, find_row
from stratus.identity.tokens import PROJECT, format_time, parse_time


class TrustUnusable(Exception):
    """The trust is gone, expired, used up, or its trustor no longer holds its roles."""


def is_expired(row: Row, now: datetime | None = None) -> bool:
    return row["expires_at"] is not None and row["expires_at"] <= (now or datetime.now(UTC))


def trust_view(idn: Identity, row: Row, table: RoleTable | None = None) -> dict[str, Any]:
    """The wire form; ``table`` adds the delegated roles (omitted in lists, as Keystone)."""
    extra = row.get("extra") or {}
    out: dict[str, Any] = {
        "id": row["id"], "trustor_user_id": row["trustor_user_id"],
        "trustee_user_id": row["trustee_user_id"], "project_id": row["project_id"],
        "impersonation": row["impersonation"],
        "expires_at": format_time(row["expires_at"]) if row["expires_at"] else None,
        "remaining_uses": row["remaining_uses"],
        "allow_redelegation": bool(extra.get("allow_redelegation", False)),
        "redelegated_trust_id": extra.get("redelegated_trust_id"),
        "deleted_at": None,
        "links": idn.link(f"OS-TRUST/trusts/{row['id']}"),
    }
    if out["allow_redelegation"]:
        out["redelegation_count"] = extra.get("redelegation_count", 0)
    if table is not None:
        out["roles"] = [role_view(idn, table.by_id[r]) for r in row["roles"] or []
                        if r in table.by_id]
        out["roles_links"] = {"self": idn.link(f"OS-TRUST/trusts/{row['id']}/roles")["self"],
                              "previous": None, "next": None}
    return out


@dataclass(frozen=True)
class Delegator:
    """Who is creating the trust: the caller's user and, when redelegating, its trust."""

    user_id: str
    trust: Row | None = None


def _optional_datetime(body: Mapping[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{key}': it must be a date string.")
    try:
        return parse_time(value)
    except ValueError:
        raise BadRequest(f"Invalid input for field '{key}': {value!r} is not a date.") from None


def _optional_count(body: Mapping[str, Any], key: str, minimum: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadRequest(f"Invalid input for field '{key}': an integer >= {minimum} or null.")
    return value


def _resolve_roles(table: RoleTable, refs: Any) -> list[str]:
    if refs is None:
        return []
    if not isinstance(refs, list):
        raise BadRequest("Invalid input for field 'roles': it must be a list.")
    out: list[str] = []
    for ref in refs:
        if not isinstance(ref, dict):
            raise BadRequest("Invalid input for field 'roles': a list of objects.")
        found = None
        if isinstance(ref.get("id"), str):
            found = table.by_id.get(ref["id"])
        elif isinstance(ref.get("name"), str):
            found = table.by_name(ref["name"], ref.get("domain_id") or "")
        else:
            raise BadRequest("Invalid input for field 'roles': each role needs an id or a name.")
        if found is None:
            raise NotFound(f"Could not find role: {ref.get('id') or ref.get('name')}.")
        out.append(found["id"])
    return list(dict.fromkeys(out))


async def create_trust(idn: Identity, s: AsyncSession, table: RoleTable,
                       body: Mapping[str, Any], by: Delegator) -> Row:
    """Check and store a trust (the caller is known to be its trustor)."""
    for key in ("trustor_user_id", "trustee_user_id"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise BadRequest(f"Invalid input for field '{key}': '{key}' is a required property.")
    impersonation = body.get("impersonation")
    if not isinstance(impersonation, bool):
        raise BadRequest("Invalid input for field 'impersonation': a boolean is required.")
    project_id = body.get("project_id")
    if project_id is not None and not isinstance(project_id, str):
        raise BadRequest("Invalid input for field 'project_id': it must be a string.")
    expires_at = _optional_datetime(body, "expires_at")
    now = datetime.now(UTC)
    if expires_at is not None and expires_at <= now:
        raise BadRequest("Invalid input for field 'expires_at': it is in the past.")
    remaining_uses = _optional_count(body, "remaining_uses", 1)
    allow_redelegation = body.get("allow_redelegation", False)
    if not isinstance(allow_redelegation, bool):
        raise BadRequest("Invalid input for field 'allow_redelegation': a boolean.")
    redelegation_count = _optional_count(body, "redelegation_count", 0)
    role_ids = _resolve_roles(table, body.get("roles"))
    if project_id and not role_ids:
        raise BadRequest("At least one role should be specified for a trust on a project.")

    trustee = await find_row(s, m.users, id=body["trustee_user_id"])
    if trustee is None:
        raise NotFound(f"Could not find user: {body['trustee_user_id']}.")
    if project_id is not None:
        if await find_row(s, m.projects, id=project_id) is None:
            raise NotFound(f"Could not find project: {project_id}.")
        held = set(await effective_role_ids(s, table, body["trustor_user_id"], PROJECT,
                                            project_id))
        missing = [r for r in role_ids if r not in held]
        if missing:
            raise Forbidden(f"The trustor does not hold role {missing[0]} on project "
                            f"{project_id}.")

    max_count = idn.config.max_redelegation_count
    parent = by.trust
    if parent is not None:
        parent_extra = parent.get("extra") or {}
        if not parent_extra.get("allow_redelegation"):
            raise Forbidden("This trust does not allow redelegation.")
        max_count = int(parent_extra.get("redelegation_count", 0)) - 1
        if max_count < 0:
            raise Forbidden("The trust has been redelegated as often as it allows.")
        if project_id != parent["project_id"]:
            raise Forbidden("A redelegated trust must keep the project of its parent.")
        if not set(role_ids) <= set(parent["roles"] or []):
            raise Forbidden("A redelegated trust cannot delegate roles its parent does not.")
        if impersonation and not parent["impersonation"]:
            raise Forbidden("A redelegated trust cannot impersonate when its parent does not.")
        if parent["expires_at"] is not None and (expires_at is None
                                                 or expires_at > parent["expires_at"]):
            expires_at = parent["expires_at"]
    if redelegation_count is not None and redelegation_count > max_count:
        raise Forbidden(f"redelegation_count may be at most {max_count}.")
    extra: dict[str, Any] = {"allow_redelegation": allow_redelegation and max_count > 0,
                             "created_at": format_time(now)}
    if extra["allow_redelegation"]:
        extra["redelegation_count"] = max_count if redelegation_count is None else (
            redelegation_count)
    if parent is not None:
        extra["redelegated_trust_id"] = parent["id"]
    row: Row = {"id": new_hex_id(), "trustor_user_id": body["trustor_user_id"],
                "trustee_user_id": trustee["id"], "project_id": project_id,
                "impersonation": impersonation, "expires_at": expires_at,
                "remaining_uses": remaining_uses, "roles": role_ids, "extra": extra}
    await s.execute(m.trusts.insert().values(**row))
    return row


async def get_trust(s: AsyncSession, trust_id: str) -> Row:
    """A live trust, or 404 (an expired trust is as good as gone)."""
    row = await find_row(s, m.trusts, id=trust_id)
    if row is None or is_expired(row):
        raise NotFound(f"Could not find trust: {trust_id}.")
    return row


async def list_trusts(s: AsyncSession, trustor: str | None, trustee: str | None) -> list[Row]:
    stmt = select(m.trusts)
    if trustor:
        stmt = stmt.where(m.trusts.c.trustor_user_id == trustor)
    if trustee:
        stmt = stmt.where(m.trusts.c.trustee_user_id == trustee)
    now = datetime.now(UTC)
    return [dict(r) for r in (await s.execute(stmt)).mappings() if not is_expired(dict(r), now)]


async def delete_trust(s: AsyncSession, trust_id: str) -> None:
    """The trust and every trust redelegated from it."""
    doomed = [trust_id]
    rows = [dict(r) for r in (await s.execute(select(m.trusts))).mappings()]
    while True:
        more = [r["id"] for r in rows if r["id"] not in doomed
                and (r["extra"] or {}).get("redelegated_trust_id") in doomed]
        if not more:
            break
        doomed.extend(more)
    await s.execute(delete(m.trusts).where(m.trusts.c.id.in_(doomed)))


async def consume(s: AsyncSession, trust_id: str) -> None:
    """Spend one use of a trust that counts them (403 once none is left)."""
    row = await find_row(s, m.trusts, id=trust_id)
    if row is None or row["remaining_uses"] is None:
        return
    result = await s.execute(update(m.trusts).where(
        m.trusts.c.id == trust_id, m.trusts.c.remaining_uses > 0).values(
        remaining_uses=m.trusts.c.remaining_uses - 1))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Forbidden(f"The trust {trust_id} has no uses left.")


async def delegated_roles(s: AsyncSession, table: RoleTable, trust: Row) -> list[str]:
    """The roles a trust-scoped token carries now; TrustUnusable if the trust broke."""
    if is_expired(trust):
        raise TrustUnusable("the trust has expired")
    for key in ("trustor_user_id", "trustee_user_id"):
        user = await find_row(s, m.users, id=trust[key])
        if user is None or not user["enabled"]:
            raise TrustUnusable(f"the trust's {key[:7]} is gone or disabled")
    if trust["project_id"] is None:
        return []
    held = await effective_role_ids(s, table, trust["trustor_user_id"], PROJECT,
                                    trust["project_id"])
    delegated = [r for r in trust["roles"] or [] if r in table.by_id]
    if not delegated or any(r not in held for r in delegated):
        raise TrustUnusable("the trustor no longer holds the delegated roles")
    return table.expand(delegated, effective=True)
