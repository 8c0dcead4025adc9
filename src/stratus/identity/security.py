"""Keystone's security compliance: lockout, password expiry, history, age and strength.

Each rule is off until its ``identity.*`` setting is set (as in Keystone), and
none of them costs a query while it is off. User options opt single users
out, as Keystone's do: ``ignore_lockout_failure_attempts``,
``ignore_password_expiry``, ``ignore_change_password_upon_first_use``
(accepted, nothing to ignore), ``lock_password`` (no self-service change).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.errors import BadRequest, Forbidden
from stratus.identity import models as m
from stratus.identity.core import Identity, Row, find_row
from stratus.identity.tokens import format_time


def _option(user: Row, name: str) -> bool:
    return bool((user.get("options") or {}).get(name))


def password_expiry(idn: Identity, user: Row) -> datetime | None:
    days = idn.config.password_expires_days
    created = user.get("password_created_at")
    if not days or created is None or _option(user, "ignore_password_expiry"):
        return None
    return created + timedelta(days=days)


def password_expires_at(idn: Identity, user: Row) -> str | None:
    """The wire value of ``password_expires_at`` for users and tokens."""
    expiry = password_expiry(idn, user)
    return format_time(expiry) if expiry else None


def password_expired(idn: Identity, user: Row) -> bool:
    expiry = password_expiry(idn, user)
    return expiry is not None and expiry <= datetime.now(UTC)


def check_strength(idn: Identity, password: str) -> None:
    """``password_regex``: 400 for a password that does not match it."""
    pattern = idn.config.password_regex
    if pattern and not re.match(pattern, password):
        hint = idn.config.password_regex_description or f"it must match {pattern!r}"
        raise BadRequest(f"Password validation error: The password does not meet the "
                         f"requirements: {hint}.")


# --- lockout -------------------------------------------------------------------

async def is_locked(idn: Identity, s: AsyncSession, user: Row) -> bool:
    attempts = idn.config.lockout_failure_attempts
    if not attempts or _option(user, "ignore_lockout_failure_attempts"):
        return False
    row = await find_row(s, m.login_failures, user_id=user["id"])
    if row is None or row["count"] < attempts:
        return False
    unlock = row["last_failure_at"] + timedelta(seconds=idn.config.lockout_duration)
    if unlock > datetime.now(UTC):
        return True
    await s.execute(delete(m.login_failures).where(m.login_failures.c.user_id == user["id"]))
    return False


async def record_login(idn: Identity, s: AsyncSession, user: Row, ok: bool) -> None:
    """Count a failed password login, or forget the failures after a good one."""
    if not idn.config.lockout_failure_attempts:
        return
    if ok:
        await s.execute(delete(m.login_failures).where(
            m.login_failures.c.user_id == user["id"]))
        return
    now = datetime.now(UTC)
    result = await s.execute(update(m.login_failures).where(
        m.login_failures.c.user_id == user["id"]).values(
        count=m.login_failures.c.count + 1, last_failure_at=now))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await s.execute(insert(m.login_failures).values(user_id=user["id"], count=1,
                                                        last_failure_at=now))


# --- password history and age ---------------------------------------------------

async def check_self_service_change(idn: Identity, s: AsyncSession, user: Row,
                                    new_password: str) -> None:
    """What a user changing their own password must respect (an admin reset need not)."""
    if _option(user, "lock_password"):
        raise Forbidden("You cannot change your password: it is locked.")
    age = idn.config.minimum_password_age
    created = user.get("password_created_at")
    if age and created is not None and created + timedelta(days=age) > datetime.now(UTC):
        raise BadRequest(f"You cannot change your password at this time due to the minimum "
                         f"password age ({age} days).")
    count = idn.config.unique_last_password_count
    if count < 1:
        return
    hashes = [user["password_hash"]] if user.get("password_hash") else []
    if count > 1:
        rows = (await s.execute(select(m.password_history.c.password_hash).where(
            m.password_history.c.user_id == user["id"]).order_by(
            m.password_history.c.id.desc()).limit(count - 1))).scalars().all()
        hashes.extend(rows)
    for hashed in hashes[:count]:
        if await idn.hasher.verify(new_password, hashed):
            raise BadRequest(f"The new password cannot be identical to a previous password. "
                             f"The number of previous passwords that must be unique is: "
                             f"{count}.")


async def remember_password(idn: Identity, s: AsyncSession, user_id: str,
                            old_hash: str | None) -> None:
    """Keep the replaced hash while history is on; drop what is older than needed."""
    keep = idn.config.unique_last_password_count - 1
    if keep < 1 or not old_hash:
        return
    await s.execute(insert(m.password_history).values(
        user_id=user_id, password_hash=old_hash, created_at=datetime.now(UTC)))
    ids = (await s.execute(select(m.password_history.c.id).where(
        m.password_history.c.user_id == user_id).order_by(
        m.password_history.c.id.desc()))).scalars().all()
    if len(ids) > keep:
        await s.execute(delete(m.password_history).where(
            m.password_history.c.id.in_(ids[keep:])))
