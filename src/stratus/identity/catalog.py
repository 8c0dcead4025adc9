"""Regions, services and endpoints, and the service catalog they make."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db.base import new_hex_id
from stratus.errors import BadRequest, Conflict, Forbidden
from stratus.identity import models as m
from stratus.identity.core import Identity, Row, boolean, extras, find_row, get_row, text

INTERFACES = ("public", "internal", "admin")


def region_view(idn: Identity, row: Row) -> dict[str, Any]:
    return {**(row.get("extra") or {}), "id": row["id"], "description": row["description"],
            "parent_region_id": row["parent_region_id"],
            "links": idn.link(f"regions/{row['id']}")}


def service_view(idn: Identity, row: Row) -> dict[str, Any]:
    extra = dict(row.get("extra") or {})
    return {**extra, "id": row["id"], "type": row["type"], "enabled": row["enabled"],
            "name": extra.get("name", ""), "description": extra.get("description", ""),
            "links": idn.link(f"services/{row['id']}")}


def endpoint_view(idn: Identity, row: Row) -> dict[str, Any]:
    return {**(row.get("extra") or {}), "id": row["id"], "interface": row["interface"],
            "region_id": row["region_id"], "region": row["region_id"], "url": row["url"],
            "service_id": row["service_id"], "enabled": row["enabled"],
            "links": idn.link(f"endpoints/{row['id']}")}


# --- regions ----------------------------------------------------------------

async def create_region(s: AsyncSession, body: Mapping[str, Any],
                        region_id: str | None = None) -> Row:
    rid = region_id or text(body, "id", max_len=255) or new_hex_id()
    if await find_row(s, m.regions, id=rid):
        raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {rid}.")
    parent = text(body, "parent_region_id", nullable=True)
    if parent:
        await get_row(s, m.regions, parent, "region")
    row = {"id": rid, "description": text(body, "description", default="", nullable=True) or "",
           "parent_region_id": parent,
           "extra": extras(body, {"description", "parent_region_id"})}
    await s.execute(insert(m.regions).values(**row))
    return row


async def update_region(s: AsyncSession, region_id: str, body: Mapping[str, Any]) -> Row:
    row = await get_row(s, m.regions, region_id, "region")
    values: dict[str, Any] = {}
    if "description" in body:
        values["description"] = text(body, "description", nullable=True) or ""
    if "parent_region_id" in body:
        parent = text(body, "parent_region_id", nullable=True)
        if parent:
            await get_row(s, m.regions, parent, "region")
            if parent == region_id:
                raise BadRequest("A region cannot be its own parent.")
        values["parent_region_id"] = parent
    extra = extras(body, {"description", "parent_region_id"})
    if extra:
        values["extra"] = {**(row["extra"] or {}), **extra}
    if values:
        await s.execute(update(m.regions).where(m.regions.c.id == region_id).values(**values))
    return {**row, **values}


async def delete_region(s: AsyncSession, region_id: str) -> None:
    await get_row(s, m.regions, region_id, "region")
    children = (await s.execute(select(func.count()).select_from(m.regions).where(
        m.regions.c.parent_region_id == region_id))).scalar_one()
    if children:
        raise Forbidden(f"Cannot delete region {region_id}: it has child regions.")
    await s.execute(update(m.endpoints).where(m.endpoints.c.region_id == region_id)
                    .values(region_id=None))
    await s.execute(delete(m.regions).where(m.regions.c.id == region_id))


# --- services ---------------------------------------------------------------

async def create_service(s: AsyncSession, body: Mapping[str, Any]) -> Row:
    row = {"id": new_hex_id(), "type": text(body, "type", required=True),
           "enabled": boolean(body, "enabled", True),
           "extra": {k: v for k, v in body.items() if k not in ("type", "enabled", "id",
                                                                "links")}}
    await s.execute(insert(m.services).values(**row))
    return row


async def update_service(s: AsyncSession, service_id: str, body: Mapping[str, Any]) -> Row:
    row = await get_row(s, m.services, service_id, "service")
    values: dict[str, Any] = {}
    if "type" in body:
        values["type"] = text(body, "type", required=True)
    if "enabled" in body:
        values["enabled"] = boolean(body, "enabled")
    extra = {k: v for k, v in body.items() if k not in ("type", "enabled", "id", "links")}
    if extra:
        values["extra"] = {**(row["extra"] or {}), **extra}
    if values:
        await s.execute(update(m.services).where(m.services.c.id == service_id).values(**values))
    return {**row, **values}


async def delete_service(s: AsyncSession, service_id: str) -> None:
    await get_row(s, m.services, service_id, "service")
    await s.execute(delete(m.endpoints).where(m.endpoints.c.service_id == service_id))
    await s.execute(delete(m.services).where(m.services.c.id == service_id))


# --- endpoints --------------------------------------------------------------

def _interface(body: Mapping[str, Any]) -> str:
    value = text(body, "interface", required=True)
    if value not in INTERFACES:
        raise BadRequest(f"Invalid input for field 'interface': {value!r} is not one of "
                         f"{', '.join(INTERFACES)}.")
    return str(value)


async def _region(s: AsyncSession, region_id: str | None) -> None:
    """Keystone creates the region an endpoint names if it does not exist yet."""
    if region_id and not await find_row(s, m.regions, id=region_id):
        await s.execute(insert(m.regions).values(id=region_id, description="",
                                                 parent_region_id=None, extra={}))


async def create_endpoint(s: AsyncSession, body: Mapping[str, Any]) -> Row:
    enabled = boolean(body, "enabled", True)
    interface = _interface(body)
    url = text(body, "url", required=True, max_len=2048)
    service_id = text(body, "service_id", required=True)
    await get_row(s, m.services, service_id, "service")
    region_id = text(body, "region_id", nullable=True) or text(body, "region", nullable=True)
    await _region(s, region_id)
    row = {"id": new_hex_id(), "service_id": service_id, "interface": interface,
           "url": url, "region_id": region_id, "enabled": enabled,
           "extra": extras(body, {"service_id", "interface", "url", "region_id", "region",
                                  "enabled"})}
    await s.execute(insert(m.endpoints).values(**row))
    return row


async def update_endpoint(s: AsyncSession, endpoint_id: str, body: Mapping[str, Any]) -> Row:
    row = await get_row(s, m.endpoints, endpoint_id, "endpoint")
    values: dict[str, Any] = {}
    if "enabled" in body:
        values["enabled"] = boolean(body, "enabled")
    if "service_id" in body:
        values["service_id"] = text(body, "service_id", required=True)
        await get_row(s, m.services, values["service_id"], "service")
    if "interface" in body:
        values["interface"] = _interface(body)
    if "url" in body:
        values["url"] = text(body, "url", required=True, max_len=2048)
    for key in ("region_id", "region"):
        if key in body:
            region_id = text(body, key, nullable=True)
            await _region(s, region_id)
            values["region_id"] = region_id
    extra = extras(body, {"service_id", "interface", "url", "region_id", "region", "enabled"})
    if extra:
        values["extra"] = {**(row["extra"] or {}), **extra}
    if values:
        await s.execute(update(m.endpoints).where(m.endpoints.c.id == endpoint_id)
                        .values(**values))
    return {**row, **values}


async def delete_endpoint(s: AsyncSession, endpoint_id: str) -> None:
    await get_row(s, m.endpoints, endpoint_id, "endpoint")
    await s.execute(delete(m.endpoints).where(m.endpoints.c.id == endpoint_id))


async def build_catalog(s: AsyncSession, project_id: str | None = None) -> list[dict[str, Any]]:
    """The token catalog: enabled services with their enabled endpoints."""
    services = (await s.execute(select(m.services).where(
        m.services.c.enabled.is_(True)))).mappings().all()
    endpoints = (await s.execute(select(m.endpoints).where(
        m.endpoints.c.enabled.is_(True)))).mappings().all()
    by_service: dict[str, list[dict[str, Any]]] = {}
    for ep in endpoints:
        url = str(ep["url"])
        if project_id:
            url = url.replace("%(tenant_id)s", project_id).replace("$(tenant_id)s", project_id)
            url = url.replace("%(project_id)s", project_id).replace("$(project_id)s", project_id)
            url = url.replace("{project_id}", project_id)
        elif "%(" in url or "$(" in url or "{project_id}" in url:
            continue  # no project to substitute: Keystone leaves such endpoints out
        by_service.setdefault(ep["service_id"], []).append({
            "id": ep["id"], "interface": ep["interface"], "region_id": ep["region_id"],
            "region": ep["region_id"], "url": url})
    out = []
    for svc in services:
        extra = svc["extra"] or {}
        out.append({"id": svc["id"], "type": svc["type"], "name": extra.get("name", ""),
                    "endpoints": by_service.get(svc["id"], [])})
    return out
