"""Regions, services and endpoints."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stratus.identity import catalog as c
from stratus.identity import models as m
from stratus.identity.core import get_row
from stratus.identity.routes.common import Api, matches, no_content, ok, route


def routes(api: Api) -> list[Route]:
    idn = api.idn

    async def list_regions(request: Request) -> Response:
        await api.authorize(request, "identity:list_regions")
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.regions))).mappings().all()
        q = request.query_params
        items = [c.region_view(idn, dict(x)) for x in rows
                 if matches(x, q, ("parent_region_id",))]
        return api.collection(request, "regions", items)

    async def create_region(request: Request) -> Response:
        await api.authorize(request, "identity:create_region")
        body = await api.body(request, "region")
        async with idn.write("region") as s:
            row = await c.create_region(s, body, request.path_params.get("region_id"))
        return ok({"region": c.region_view(idn, row)}, 201)

    async def get_region(request: Request) -> Response:
        await api.authorize(request, "identity:get_region")
        async with idn.db.session() as s:
            row = await get_row(s, m.regions, request.path_params["region_id"], "region")
        return ok({"region": c.region_view(idn, row)})

    async def update_region(request: Request) -> Response:
        await api.authorize(request, "identity:update_region")
        body = await api.body(request, "region")
        async with idn.write("region") as s:
            row = await c.update_region(s, request.path_params["region_id"], body)
        return ok({"region": c.region_view(idn, row)})

    async def delete_region(request: Request) -> Response:
        await api.authorize(request, "identity:delete_region")
        async with idn.write("region") as s:
            await c.delete_region(s, request.path_params["region_id"])
        return no_content()

    async def list_services(request: Request) -> Response:
        await api.authorize(request, "identity:list_services")
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.services))).mappings().all()
        q = request.query_params
        items = [c.service_view(idn, dict(x)) for x in rows]
        items = [x for x in items if matches(x, q, ("type", "name", "enabled"))]
        return api.collection(request, "services", items)

    async def create_service(request: Request) -> Response:
        await api.authorize(request, "identity:create_service")
        body = await api.body(request, "service")
        async with idn.write("service") as s:
            row = await c.create_service(s, body)
        return ok({"service": c.service_view(idn, row)}, 201)

    async def get_service(request: Request) -> Response:
        await api.authorize(request, "identity:get_service")
        async with idn.db.session() as s:
            row = await get_row(s, m.services, request.path_params["service_id"], "service")
        return ok({"service": c.service_view(idn, row)})

    async def update_service(request: Request) -> Response:
        await api.authorize(request, "identity:update_service")
        body = await api.body(request, "service")
        async with idn.write("service") as s:
            row = await c.update_service(s, request.path_params["service_id"], body)
        return ok({"service": c.service_view(idn, row)})

    async def delete_service(request: Request) -> Response:
        await api.authorize(request, "identity:delete_service")
        async with idn.write("service") as s:
            await c.delete_service(s, request.path_params["service_id"])
        return no_content()

    async def list_endpoints(request: Request) -> Response:
        await api.authorize(request, "identity:list_endpoints")
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.endpoints))).mappings().all()
        q = request.query_params
        items = [c.endpoint_view(idn, dict(x)) for x in rows]
        items = [x for x in items if matches(x, q, ("interface", "service_id", "region_id",
                                                    "enabled"))]
        return api.collection(request, "endpoints", items)

    async def create_endpoint(request: Request) -> Response:
        await api.authorize(request, "identity:create_endpoint")
        body = await api.body(request, "endpoint")
        async with idn.write("endpoint") as s:
            row = await c.create_endpoint(s, body)
        return ok({"endpoint": c.endpoint_view(idn, row)}, 201)

    async def get_endpoint(request: Request) -> Response:
        await api.authorize(request, "identity:get_endpoint")
        async with idn.db.session() as s:
            row = await get_row(s, m.endpoints, request.path_params["endpoint_id"], "endpoint")
        return ok({"endpoint": c.endpoint_view(idn, row)})

    async def update_endpoint(request: Request) -> Response:
        await api.authorize(request, "identity:update_endpoint")
        body = await api.body(request, "endpoint")
        async with idn.write("endpoint") as s:
            row = await c.update_endpoint(s, request.path_params["endpoint_id"], body)
        return ok({"endpoint": c.endpoint_view(idn, row)})

    async def delete_endpoint(request: Request) -> Response:
        await api.authorize(request, "identity:delete_endpoint")
        async with idn.write("endpoint") as s:
            await c.delete_endpoint(s, request.path_params["endpoint_id"])
        return no_content()

    return [
        route("/v3/regions", list_regions, ["GET"]),
        route("/v3/regions", create_region, ["POST"]),
        route("/v3/regions/{region_id}", get_region, ["GET"]),
        route("/v3/regions/{region_id}", create_region, ["PUT"]),
        route("/v3/regions/{region_id}", update_region, ["PATCH"]),
        route("/v3/regions/{region_id}", delete_region, ["DELETE"]),
        route("/v3/services", list_services, ["GET"]),
        route("/v3/services", create_service, ["POST"]),
        route("/v3/services/{service_id}", get_service, ["GET"]),
        route("/v3/services/{service_id}", update_service, ["PATCH"]),
        route("/v3/services/{service_id}", delete_service, ["DELETE"]),
        route("/v3/endpoints", list_endpoints, ["GET"]),
        route("/v3/endpoints", create_endpoint, ["POST"]),
        route("/v3/endpoints/{endpoint_id}", get_endpoint, ["GET"]),
        route("/v3/endpoints/{endpoint_id}", update_endpoint, ["PATCH"]),
        route("/v3/endpoints/{endpoint_id}", delete_endpoint, ["DELETE"]),
    ]
