"""Unified limits: registered (default) limits per service and resource, project overrides.

The flat model: a project's limit for a resource is its project limit if one
exists, else the registered default. Services that enforce quotas may read
them here (``GET /v3/limits?project_id=..&service_id=..``) with a service token.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stratus.db.base import new_hex_id
from stratus.errors import BadRequest, Conflict
from stratus.identity import models as m
from stratus.identity.core import Identity, find_row, get_row, text
from stratus.identity.routes.common import Api, matches, no_content, ok, route

FIELDS = ("service_id", "region_id", "resource_name")


def _int(body: dict[str, Any], key: str, required: bool) -> int | None:
    if key not in body:
        if required:
            raise BadRequest(f"Invalid input for field '{key}': it is required.")
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise BadRequest(f"Invalid input for field '{key}': an integer >= -1.")
    return value


def registered_view(idn: Identity, row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "service_id": row["service_id"], "region_id": row["region_id"],
            "resource_name": row["resource_name"], "default_limit": row["default_limit"],
            "description": row["description"],
            "links": idn.link(f"registered_limits/{row['id']}")}


def limit_view(idn: Identity, row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "project_id": row["project_id"], "domain_id": row["domain_id"],
            "service_id": row["service_id"], "region_id": row["region_id"],
            "resource_name": row["resource_name"], "resource_limit": row["resource_limit"],
            "description": row["description"], "links": idn.link(f"limits/{row['id']}")}


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list) or not body[key]:
        raise BadRequest(f"The request body must hold a non-empty list under {key!r}.")
    if not all(isinstance(x, dict) for x in body[key]):
        raise BadRequest(f"Every item of {key!r} must be an object.")
    return list(body[key])


def routes(api: Api) -> list[Route]:
    idn = api.idn

    async def list_registered(request: Request) -> Response:
        await api.authorize(request, "identity:list_registered_limits")
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.registered_limits))).mappings().all()
        items = [registered_view(idn, dict(x)) for x in rows
                 if matches(x, request.query_params, FIELDS)]
        return api.collection(request, "registered_limits", items)

    async def create_registered(request: Request) -> Response:
        from stratus.api.app import json_body

        await api.authorize(request, "identity:create_registered_limits")
        items = _items(await json_body(request), "registered_limits")
        out = []
        async with idn.write("registered limit") as s:
            for item in items:
                row = {"id": new_hex_id(), "service_id": text(item, "service_id", required=True),
                       "region_id": text(item, "region_id", nullable=True),
                       "resource_name": text(item, "resource_name", required=True),
                       "default_limit": _int(item, "default_limit", True),
                       "description": text(item, "description", nullable=True, max_len=65535)}
                await get_row(s, m.services, row["service_id"], "service")
                if row["region_id"]:
                    await get_row(s, m.regions, row["region_id"], "region")
                if await find_row(s, m.registered_limits, **{k: row[k] for k in FIELDS}):
                    raise Conflict(f"Duplicate registered limit for {row['resource_name']}.")
                await s.execute(insert(m.registered_limits).values(**row))
                out.append(registered_view(idn, row))
        return ok({"registered_limits": out}, 201)

    async def one_registered(request: Request) -> Response:
        limit_id = request.path_params["limit_id"]
        if request.method == "GET":
            await api.authorize(request, "identity:get_registered_limit")
            async with idn.db.session() as s:
                row = await get_row(s, m.registered_limits, limit_id, "registered limit")
            return ok({"registered_limit": registered_view(idn, row)})
        if request.method == "DELETE":
            await api.authorize(request, "identity:delete_registered_limit")
            async with idn.write("registered limit") as s:
                await get_row(s, m.registered_limits, limit_id, "registered limit")
                await s.execute(delete(m.registered_limits).where(
                    m.registered_limits.c.id == limit_id))
            return no_content()
        await api.authorize(request, "identity:update_registered_limit")
        body = await api.body(request, "registered_limit")
        values: dict[str, Any] = {}
        for key in ("service_id", "resource_name"):
            if key in body:
                values[key] = text(body, key, required=True)
        if "region_id" in body:
            values["region_id"] = text(body, "region_id", nullable=True)
        if "description" in body:
            values["description"] = text(body, "description", nullable=True, max_len=65535)
        if "default_limit" in body:
            values["default_limit"] = _int(body, "default_limit", True)
        async with idn.write("registered limit") as s:
            row = await get_row(s, m.registered_limits, limit_id, "registered limit")
            row = {**row, **values}
            other = await find_row(s, m.registered_limits, **{k: row[k] for k in FIELDS})
            if other and other["id"] != limit_id:
                raise Conflict("Duplicate registered limit.")
            if values:
                await s.execute(update(m.registered_limits).where(
                    m.registered_limits.c.id == limit_id).values(**values))
        return ok({"registered_limit": registered_view(idn, row)})

    async def list_limits(request: Request) -> Response:
        caller = await api.authorize(request, "identity:list_limits")
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.limits))).mappings().all()
        admin = api.allowed(caller, "admin_required", {})
        items = [limit_view(idn, dict(x)) for x in rows
                 if (admin or (x["project_id"] and x["project_id"] == caller.context.project_id))
                 and matches(x, request.query_params, FIELDS + ("project_id", "domain_id"))]
        return api.collection(request, "limits", items)

    async def create_limits(request: Request) -> Response:
        from stratus.api.app import json_body

        await api.authorize(request, "identity:create_limits")
        items = _items(await json_body(request), "limits")
        out = []
        async with idn.write("limit") as s:
            for item in items:
                row = {"id": new_hex_id(),
                       "project_id": text(item, "project_id", nullable=True, max_len=64),
                       "domain_id": text(item, "domain_id", nullable=True, max_len=64),
                       "service_id": text(item, "service_id", required=True),
                       "region_id": text(item, "region_id", nullable=True),
                       "resource_name": text(item, "resource_name", required=True),
                       "resource_limit": _int(item, "resource_limit", True),
                       "description": text(item, "description", nullable=True, max_len=65535)}
                if bool(row["project_id"]) == bool(row["domain_id"]):
                    raise BadRequest("A limit is for a project_id or a domain_id.")
                if row["project_id"]:
                    await get_row(s, m.projects, row["project_id"], "project")
                else:
                    await get_row(s, m.domains, row["domain_id"], "domain")
                if not await find_row(s, m.registered_limits, **{k: row[k] for k in FIELDS}):
                    raise BadRequest(f"No registered limit for {row['resource_name']} of "
                                     f"service {row['service_id']} in that region.")
                key = {k: row[k] for k in (*FIELDS, "project_id", "domain_id")}
                if await find_row(s, m.limits, **key):
                    raise Conflict(f"Duplicate limit for {row['resource_name']}.")
                await s.execute(insert(m.limits).values(**row))
                out.append(limit_view(idn, row))
        return ok({"limits": out}, 201)

    async def one_limit(request: Request) -> Response:
        limit_id = request.path_params["limit_id"]
        if request.method == "GET":
            caller = await api.caller(request)
            async with idn.db.session() as s:
                row = await get_row(s, m.limits, limit_id, "limit")
            api.policy.enforce("identity:get_limit", caller.context, {"target": {"limit": row}})
            return ok({"limit": limit_view(idn, row)})
        if request.method == "DELETE":
            await api.authorize(request, "identity:delete_limit")
            async with idn.write("limit") as s:
                await get_row(s, m.limits, limit_id, "limit")
                await s.execute(delete(m.limits).where(m.limits.c.id == limit_id))
            return no_content()
        await api.authorize(request, "identity:update_limit")
        body = await api.body(request, "limit")
        values: dict[str, Any] = {}
        if "resource_limit" in body:
            values["resource_limit"] = _int(body, "resource_limit", True)
        if "description" in body:
            values["description"] = text(body, "description", nullable=True, max_len=65535)
        async with idn.write("limit") as s:
            row = await get_row(s, m.limits, limit_id, "limit")
            if values:
                await s.execute(update(m.limits).where(m.limits.c.id == limit_id)
                                .values(**values))
        return ok({"limit": limit_view(idn, {**row, **values})})

    async def model(request: Request) -> Response:
        await api.caller(request)
        return ok({"model": {"name": "flat", "description": (
            "Limit enforcement and validation does not take project hierarchy into "
            "consideration.")}})

    return [
        route("/v3/registered_limits", list_registered, ["GET"]),
        route("/v3/registered_limits", create_registered, ["POST"]),
        route("/v3/registered_limits/{limit_id}", one_registered, ["GET", "PATCH", "DELETE"]),
        route("/v3/limits/model", model, ["GET"]),
        route("/v3/limits", list_limits, ["GET"]),
        route("/v3/limits", create_limits, ["POST"]),
        route("/v3/limits/{limit_id}", one_limit, ["GET", "PATCH", "DELETE"]),
    ]
