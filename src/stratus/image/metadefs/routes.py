"""The /v2/metadefs routes and how metadefs look on the wire."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stratus.api.app import json_body
from stratus.api.auth import context_of
from stratus.image.metadefs.core import MetadefCore, NamespaceDetail
from stratus.image.metadefs.domain import Association, Definition
from stratus.image.views import stamp

BASE = "/v2/metadefs/namespaces"


# -- views ----------------------------------------------------------------------

def _times(obj: Association | Definition) -> dict[str, Any]:
    return {"created_at": stamp(obj.created_at), "updated_at": stamp(obj.updated_at)}


def association(a: Association) -> dict[str, Any]:
    body: dict[str, Any] = {"name": a.name, **_times(a)}
    if a.prefix is not None:
        body["prefix"] = a.prefix
    if a.properties_target is not None:
        body["properties_target"] = a.properties_target
    return body


def definition(kind: str, namespace: str, d: Definition) -> dict[str, Any]:
    if kind == "properties":
        return {"name": d.name, **d.body}
    body = {"name": d.name, **d.body, **_times(d)}
    if kind == "objects":
        body["schema"] = "/v2/schemas/metadefs/object"
        body["self"] = f"{BASE}/{quote(namespace)}/objects/{quote(d.name)}"
    return body


def definitions(kind: str, namespace: str, items: list[Definition]) -> dict[str, Any]:
    if kind == "properties":  # Glance keys properties by name
        return {"properties": {d.name: d.body for d in items},
                "schema": "/v2/schemas/metadefs/properties"}
    return {kind: [definition(kind, namespace, d) for d in items],
            "schema": f"/v2/schemas/metadefs/{kind}"}


def namespace(detail: NamespaceDetail) -> dict[str, Any]:
    ns = detail.namespace
    body: dict[str, Any] = {
        "namespace": ns.namespace, "visibility": str(ns.visibility),
        "protected": ns.protected, "owner": ns.owner,
        "created_at": stamp(ns.created_at), "updated_at": stamp(ns.updated_at),
        "schema": "/v2/schemas/metadefs/namespace",
        "self": f"{BASE}/{quote(ns.namespace)}"}
    if ns.display_name is not None:
        body["display_name"] = ns.display_name
    if ns.description is not None:
        body["description"] = ns.description
    if detail.associations:
        body["resource_type_associations"] = [association(a) for a in detail.associations]
    for kind in ("properties", "objects", "tags"):
        items = getattr(detail, kind)
        if items:
            body[kind] = definitions(kind, ns.namespace, items)[kind]
    return body


# -- routes ---------------------------------------------------------------------

def routes(core: MetadefCore) -> list[BaseRoute]:
    async def list_namespaces(request: Request) -> Response:
        params = dict(request.query_params)
        page, more = await core.list_namespaces(context_of(request), params)
        rest = {k: v for k, v in params.items() if k != "marker"}
        body: dict[str, Any] = {
            "namespaces": [namespace(d) for d in page],
            "first": BASE + (f"?{urlencode(rest)}" if rest else ""),
            "schema": "/v2/schemas/metadefs/namespaces"}
        if more:
            body["next"] = f"{BASE}?" + urlencode({**rest,
                                                   "marker": page[-1].namespace.namespace})
        return JSONResponse(body)

    async def create_namespace(request: Request) -> Response:
        detail = await core.create_namespace(context_of(request), await json_body(request))
        return JSONResponse(namespace(detail), status_code=201)

    async def show_namespace(request: Request) -> Response:
        detail = await core.show_namespace(context_of(request), request.path_params["ns"],
                                           request.query_params.get("resource_type"))
        return JSONResponse(namespace(detail))

    async def update_namespace(request: Request) -> Response:
        detail = await core.update_namespace(context_of(request), request.path_params["ns"],
                                             await json_body(request))
        return JSONResponse(namespace(detail))

    async def delete_namespace(request: Request) -> Response:
        await core.delete_namespace(context_of(request), request.path_params["ns"])
        return Response(status_code=204)

    def for_kind(kind: str) -> list[BaseRoute]:
        async def list_all(request: Request) -> Response:
            ns = request.path_params["ns"]
            items = await core.list_definitions(context_of(request), ns, kind)
            return JSONResponse(definitions(kind, ns, items))

        async def create(request: Request) -> Response:
            ns = request.path_params["ns"]
            made = await core.create_definition(context_of(request), ns, kind,
                                                await json_body(request))
            return JSONResponse(definition(kind, ns, made), status_code=201)

        async def show(request: Request) -> Response:
            p = request.path_params
            found = await core.show_definition(context_of(request), p["ns"], kind, p["name"])
            return JSONResponse(definition(kind, p["ns"], found))

        async def update(request: Request) -> Response:
            p = request.path_params
            body = await json_body(request)
            changed = await core.update_definition(context_of(request), p["ns"], kind,
                                                   p["name"], body)
            return JSONResponse(definition(kind, p["ns"], changed))

        async def delete_one(request: Request) -> Response:
            p = request.path_params
            await core.delete_definition(context_of(request), p["ns"], kind, p["name"])
            return Response(status_code=204)

        async def delete_all(request: Request) -> Response:
            await core.delete_definition(context_of(request), request.path_params["ns"], kind,
                                         None)
            return Response(status_code=204)

        many, one = f"{BASE}/{{ns}}/{kind}", f"{BASE}/{{ns}}/{kind}/{{name}}"
        return [Route(many, list_all, methods=["GET"]),
                *([Route(many, create, methods=["POST"])] if kind != "tags" else []),
                Route(many, delete_all, methods=["DELETE"]),
                Route(one, show, methods=["GET"]),
                Route(one, update, methods=["PUT"]),
                Route(one, delete_one, methods=["DELETE"])]

    async def create_tag(request: Request) -> Response:
        p = request.path_params
        made = await core.create_definition(context_of(request), p["ns"], "tags",
                                            {"name": p["name"]})
        return JSONResponse(definition("tags", p["ns"], made), status_code=201)

    async def create_tags(request: Request) -> Response:
        ns = request.path_params["ns"]
        append = request.headers.get("x-openstack-append", "").lower() == "true"
        tags = await core.create_tags(context_of(request), ns, await json_body(request),
                                      append)
        return JSONResponse({"tags": [{"name": t.name} for t in tags]}, status_code=201)

    async def resource_types(request: Request) -> Response:
        found = await core.resource_types(context_of(request))
        return JSONResponse({"resource_types": [{"name": t.name, **_times(t)}
                                                for t in found]})

    async def associations(request: Request) -> Response:
        found = await core.associations(context_of(request), request.path_params["ns"])
        return JSONResponse({"resource_type_associations": [association(a) for a in found]})

    async def associate(request: Request) -> Response:
        made = await core.associate(context_of(request), request.path_params["ns"],
                                    await json_body(request))
        return JSONResponse(association(made), status_code=201)

    async def dissociate(request: Request) -> Response:
        p = request.path_params
        await core.dissociate(context_of(request), p["ns"], p["name"])
        return Response(status_code=204)

    return [
        Route("/v2/metadefs/resource_types", resource_types, methods=["GET"]),
        Route(BASE, list_namespaces, methods=["GET"]),
        Route(BASE, create_namespace, methods=["POST"]),
        Route(f"{BASE}/{{ns}}", show_namespace, methods=["GET"]),
        Route(f"{BASE}/{{ns}}", update_namespace, methods=["PUT"]),
        Route(f"{BASE}/{{ns}}", delete_namespace, methods=["DELETE"]),
        Route(f"{BASE}/{{ns}}/resource_types", associations, methods=["GET"]),
        Route(f"{BASE}/{{ns}}/resource_types", associate, methods=["POST"]),
        Route(f"{BASE}/{{ns}}/resource_types/{{name}}", dissociate, methods=["DELETE"]),
        Route(f"{BASE}/{{ns}}/tags", create_tags, methods=["POST"]),
        Route(f"{BASE}/{{ns}}/tags/{{name}}", create_tag, methods=["POST"]),
        *for_kind("objects"), *for_kind("properties"), *for_kind("tags"),
    ]
