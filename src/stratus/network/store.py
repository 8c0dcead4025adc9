"""Transactions, quotas, tags and the helpers every resource module shares.

:meth:`Store.write` runs a unit of work in one transaction and retries it
from the start when the database says two workers collided: a unique
constraint (the same IP, MAC or segmentation id picked twice), a deadlock
or a busy SQLite. Domain errors (``StratusError``) are never retried. Agent
messages queued on the :class:`Tx` are sent only after a successful commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db import Database
from stratus.db.base import utcnow
from stratus.errors import Conflict, NotFound, ServiceUnavailable
from stratus.network import models as m
from stratus.settings import NetworkSettings

log = logging.getLogger("stratus.network")
T = TypeVar("T")
Event = tuple[str, dict[str, Any]]
Publisher = Callable[[list[Event]], Awaitable[None]]

QUOTA_TABLES: dict[str, Table] = {
    "network": m.networks, "subnet": m.subnets, "port": m.ports, "router": m.routers,
    "floatingip": m.floatingips, "security_group": m.security_groups,
    "security_group_rule": m.security_group_rules,
}
_RETRYABLE = ("deadlock", "lock wait timeout", "database is locked", "could not serialize",
              "serialization failure")


@dataclass
class Tx:
    """One unit of work: a session in a transaction, the settings, messages to send."""

    s: AsyncSession
    cfg: NetworkSettings
    events: list[Event] = field(default_factory=list)

    def emit(self, method: str, **payload: Any) -> None:
        self.events.append((method, payload))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        text = str(exc.orig).lower()
        return any(word in text for word in _RETRYABLE)
    return False


class Store:
    def __init__(self, db: Database, cfg: NetworkSettings, publish: Publisher | None = None,
                 *, max_attempts: int = 60) -> None:
        self.db = db
        self.cfg = cfg
        self.publish = publish
        self.max_attempts = max_attempts

    async def write(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        for attempt in range(1, self.max_attempts + 1):
            tx: Tx | None = None
            try:
                async with self._writer(), self.db.session() as s:
                    tx = Tx(s, self.cfg)
                    result = await fn(tx)
            except DBAPIError as exc:
                if not _retryable(exc) or attempt == self.max_attempts:
                    if isinstance(exc, IntegrityError):
                        log.warning("giving up after %d attempts: %s", attempt, exc.orig)
                        raise Conflict("The request conflicts with a concurrent change; "
                                       "retry it.", kind="Conflict") from None
                    log.exception("database error")
                    raise ServiceUnavailable("The database is busy; retry the request.") from None
                await asyncio.sleep(random.uniform(0, 0.005 * min(attempt, 20)))
                continue
            if self.publish is not None and tx.events:
                try:
                    await self.publish(tx.events)
                except Exception:  # agents resync; the API change stands
                    log.exception("publishing network events failed")
            return result
        raise AssertionError("unreachable")

    def _writer(self) -> AbstractAsyncContextManager[Any]:
        # One queue of writers per process on SQLite (see Database.writer).
        return self.db.writer()

    async def read(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        async with self.db.session() as s:
            return await fn(Tx(s, self.cfg))


# --- rows -------------------------------------------------------------------

def iso(value: datetime | None) -> str | None:
    # isoformat is C-fast (strftime dominated large listings); stored times are UTC.
    return value.isoformat(timespec="seconds")[:19] + "Z" if value is not None else None


def standard(row: Any, tags: dict[str, list[str]], *, named: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id}
    if named:
        out["name"] = row.name
    out.update({
        "description": row.description, "project_id": row.project_id,
        "tenant_id": row.project_id, "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at), "revision_number": row.revision_number,
        "tags": sorted(tags.get(row.id, [])),
    })
    return out


def stamps() -> dict[str, Any]:
    now = utcnow()
    return {"created_at": now, "updated_at": now, "revision_number": 0}


async def get_row(tx: Tx, table: Table, id_: str, kind: str, label: str) -> Any:
    row = (await tx.s.execute(select(table).where(table.c.id == id_))).first()
    if row is None:
        raise NotFound(f"{label} {id_} could not be found.", kind=kind)
    return row


async def bump(tx: Tx, table: Table, id_: str, values: dict[str, Any] | None = None) -> None:
    await tx.s.execute(update(table).where(table.c.id == id_).values(
        **(values or {}), updated_at=utcnow(), revision_number=table.c.revision_number + 1))


# --- tags -------------------------------------------------------------------

async def tags_of(tx: Tx, ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(ids)
    out: dict[str, list[str]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        rows = (await tx.s.execute(select(m.tags).where(m.tags.c.resource_id.in_(chunk)))).all()
        for r in rows:
            out.setdefault(r.resource_id, []).append(r.tag)
    return out


async def set_tags(tx: Tx, resource_id: str, tags: list[str]) -> None:
    await tx.s.execute(delete(m.tags).where(m.tags.c.resource_id == resource_id))
    for tag in dict.fromkeys(tags):
        await tx.s.execute(insert(m.tags).values(resource_id=resource_id, tag=tag))


async def drop_tags(tx: Tx, resource_id: str) -> None:
    await tx.s.execute(delete(m.tags).where(m.tags.c.resource_id == resource_id))


# --- quotas -----------------------------------------------------------------

def default_quotas(cfg: NetworkSettings) -> dict[str, int]:
    return {name: int(getattr(cfg, f"quota_{name}")) for name in QUOTA_TABLES}


async def quotas_of(tx: Tx, project_id: str) -> dict[str, int]:
    limits = default_quotas(tx.cfg)
    rows = await tx.s.execute(select(m.quotas).where(m.quotas.c.project_id == project_id))
    for r in rows:
        if r.resource in limits:
            limits[r.resource] = r.hard_limit
    return limits


async def usage_of(tx: Tx, project_id: str, resource: str) -> int:
    table = QUOTA_TABLES[resource]
    stmt = select(func.count()).select_from(table).where(table.c.project_id == project_id)
    if resource == "port":
        # Ports of routers and floating IPs count towards those resources.
        stmt = stmt.where(~table.c.device_owner.in_(
            ("network:router_gateway", "network:floatingip")))
    return int((await tx.s.execute(stmt)).scalar_one())


async def lock_project(tx: Tx, project_id: str) -> None:
    """Serialise quota-checked creates of one project (a row lock, any worker, any host)."""
    result = await tx.s.execute(update(m.project_locks).where(
        m.project_locks.c.project_id == project_id).values(
        generation=m.project_locks.c.generation + 1))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        # A concurrent first insert makes one of us fail; Store.write retries it.
        await tx.s.execute(insert(m.project_locks).values(project_id=project_id, generation=1))


async def reserve(tx: Tx, project_id: str, resource: str, count: int = 1) -> None:
    """Raise OverQuota unless ``count`` more ``resource`` fit in the project's quota."""
    await lock_project(tx, project_id)
    limit = (await quotas_of(tx, project_id))[resource]
    if limit < 0:
        return
    used = await usage_of(tx, project_id, resource)
    if used + count > limit:
        raise Conflict(f"Quota exceeded for resources: ['{resource}'].", kind="OverQuota")
