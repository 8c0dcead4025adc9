"""The HTTP edge of the network service: Neutron v2.0 routes over the domain modules.

Every collection gets the same five routes plus ``/tags``; what differs per
resource is one :class:`Resource` row (its attribute map and its module).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stratus.api.app import json_body, json_object
from stratus.api.auth import context_of
from stratus.api.policy import Policy
from stratus.errors import BadRequest, NotFound
from stratus.network import (
    agents,
    autoallocate,
    floatingips,
    networks,
    ports,
    query,
    quotas,
    routers,
    security_groups,
    subnetpools,
    subnets,
)
from stratus.network import attributes as attrs
from stratus.network.access import Caller
from stratus.network.extensions import ALIASES, extension
from stratus.network.store import Store, Tx, set_tags

MAX_TAGS = 50


@dataclass(frozen=True)
class Resource:
    singular: str
    path: str  # URL segment
    key: str  # JSON collection key
    spec: dict[str, attrs.Attr]
    module: ModuleType


class _Rules:
    """security_groups' rule functions under the common names."""

    create = staticmethod(security_groups.create_rule)
    show = staticmethod(security_groups.show_rule)
    listing = staticmethod(security_groups.list_rules)
    delete_ = staticmethod(security_groups.delete_rule)


RESOURCES = (
    Resource("network", "networks", "networks", attrs.NETWORK, networks),
    Resource("subnet", "subnets", "subnets", attrs.SUBNET, subnets),
    Resource("subnetpool", "subnetpools", "subnetpools", attrs.SUBNETPOOL, subnetpools),
    Resource("port", "ports", "ports", attrs.PORT, ports),
    Resource("router", "routers", "routers", attrs.ROUTER, routers),
    Resource("floatingip", "floatingips", "floatingips", attrs.FLOATINGIP, floatingips),
    Resource("security_group", "security-groups", "security_groups", attrs.SECURITY_GROUP,
             security_groups),
    Resource("security_group_rule", "security-group-rules", "security_group_rules",
             attrs.SECURITY_GROUP_RULE, _Rules),  # type: ignore[arg-type]
)


def json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


class NetworkAPI:
    def __init__(self, store: Store, policy: Policy, base_url: str, max_limit: int) -> None:
        self.store = store
        self.policy = policy
        self.base_url = base_url
        self.max_limit = max_limit

    def caller(self, request: Request) -> Caller:
        return Caller(context_of(request), self.policy)

    # --- generic collection handlers -----------------------------------------

    def routes(self) -> list[BaseRoute]:
        out: list[BaseRoute] = [
            Route("/", self.versions, methods=["GET"]),
            Route("/v2.0", self.resources, methods=["GET"]),
            Route("/v2.0/", self.resources, methods=["GET"]),
            Route("/v2.0/extensions", self.extensions, methods=["GET"]),
            Route("/v2.0/extensions/{alias}", self.extension, methods=["GET"]),
            Route("/v2.0/quotas", self.quota_list, methods=["GET"]),
            Route("/v2.0/quotas/{project_id}", self.quota, methods=["GET", "PUT", "DELETE"]),
            Route("/v2.0/quotas/{project_id}/default", self.quota_default, methods=["GET"]),
            Route("/v2.0/quotas/{project_id}/details", self.quota_details, methods=["GET"]),
            Route("/v2.0/auto-allocated-topology/{project_id}", self.auto_topology,
                  methods=["GET", "DELETE"]),
            Route("/v2.0/agents", self.agent_list, methods=["GET"]),
            Route("/v2.0/agents/{id}", self.agent, methods=["GET", "PUT", "DELETE"]),
        ]
        for action in ("add_router_interface", "remove_router_interface", "add_extraroutes",
                       "remove_extraroutes"):
            out.append(Route(f"/v2.0/routers/{{id}}/{action}", self._router_action(action),
                             methods=["PUT"]))
        for res in RESOURCES:
            base = f"/v2.0/{res.path}"
            out += [
                Route(base, self._collection(res), methods=["GET", "POST"]),
                Route(base + "/{id}", self._member(res), methods=["GET", "PUT", "DELETE"]),
                Route(base + "/{id}/tags", self._tags(res), methods=["GET", "PUT", "DELETE"]),
                Route(base + "/{id}/tags/{tag}", self._tag(res),
                      methods=["GET", "PUT", "DELETE"]),
            ]
        return out

    def _collection(self, res: Resource) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            caller = self.caller(request)
            if request.method == "POST":
                return await self._create(request, caller, res)
            q = query.parse(list(request.query_params.multi_items()), max_limit=self.max_limit)
            if res.singular == "security_group" and caller.project_id:
                await self._ensure_default_group(caller.project_id)
            sql = query.sql_page(q, ports.PUSHED) if res.singular == "port" else None
            if res.singular == "port":
                items = await self.store.read(
                    lambda tx: ports.listing(tx, caller, q.filters, sql))
            else:
                items = await self.store.read(lambda tx: res.module.listing(tx, caller))
            items = [attrs.hide_for(res.singular, i, caller.ctx) for i in items]
            page, more, prev = query.cut(items, sql) if sql else query.apply(items, q)
            body: dict[str, Any] = {res.key: [query.select_fields(i, q.fields) for i in page]}
            links = query.links(res.path, f"{self.base_url}/v2.0", q, page, more, prev)
            if links:
                body[f"{res.key}_links"] = links
            return json(body)
        return handler

    async def _ensure_default_group(self, project_id: str) -> None:
        from sqlalchemy import select

        from stratus.network import models as m

        async def exists(tx: Tx) -> bool:
            return (await tx.s.execute(select(m.default_security_groups.c.project_id).where(
                m.default_security_groups.c.project_id == project_id))).first() is not None
        if not await self.store.read(exists):
            await self.store.write(lambda tx: security_groups.ensure_default(tx, project_id))

    async def _create(self, request: Request, caller: Caller, res: Resource) -> Response:
        body = json_object(await json_body(request))
        if res.key in body and res.singular not in body:
            raw = body[res.key]
            if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
                raise BadRequest(f"The request body must hold a list under {res.key!r}.",
                                 kind="HTTPBadRequest")
            clean = [attrs.check_body(res.spec, i, caller.ctx, create=True,
                                      resource=res.singular) for i in raw]

            async def bulk(tx: Tx) -> list[dict[str, Any]]:
                return [await res.module.create(tx, caller, c) for c in clean]
            items = await self.store.write(bulk)
            return json({res.key: [attrs.hide_for(res.singular, i, caller.ctx)
                                   for i in items]}, 201)
        one = attrs.check_body(res.spec, json_object(body, res.singular), caller.ctx,
                               create=True, resource=res.singular)
        item = await self.store.write(lambda tx: res.module.create(tx, caller, one))
        return json({res.singular: attrs.hide_for(res.singular, item, caller.ctx)}, 201)

    def _member(self, res: Resource) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            caller = self.caller(request)
            id_ = request.path_params["id"]
            if request.method == "GET":
                fields = [f for v in request.query_params.getlist("fields")
                          for f in v.split(",") if f]
                item = await self.store.read(lambda tx: res.module.show(tx, caller, id_))
                item = attrs.hide_for(res.singular, item, caller.ctx)
                return json({res.singular: query.select_fields(item, fields)})
            if request.method == "DELETE":
                await self.store.write(lambda tx: res.module.delete_(tx, caller, id_))
                return Response(status_code=204)
            if not hasattr(res.module, "update"):
                raise BadRequest(f"Updating a {res.singular} is not supported.",
                                 kind="HTTPBadRequest")
            body = attrs.check_body(res.spec, json_object(await json_body(request),
                                                          res.singular),
                                    caller.ctx, create=False, resource=res.singular)
            item = await self.store.write(lambda tx: res.module.update(tx, caller, id_, body))
            return json({res.singular: attrs.hide_for(res.singular, item, caller.ctx)})
        return handler

    # --- tags ------------------------------------------------------------------

    async def _tagged(self, caller: Caller, res: Resource, id_: str, tx: Tx,
                      write: bool) -> dict[str, Any]:
        item: dict[str, Any] = await res.module.show(tx, caller, id_)
        if write:
            caller.enforce("update", res.singular, {**item, "network_owner": None})
        return item

    def _tags(self, res: Resource) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            caller = self.caller(request)
            id_ = request.path_params["id"]
            if request.method == "GET":
                item = await self.store.read(lambda tx: self._tagged(caller, res, id_, tx, False))
                return json({"tags": item.get("tags", [])})
            new: list[str] = []
            if request.method == "PUT":
                raw = json_object(await json_body(request)).get("tags")
                if not isinstance(raw, list) or not all(isinstance(t, str) and 0 < len(t) <= 255
                                                        for t in raw):
                    raise BadRequest("Invalid input for tags: a list of strings is required.",
                                     kind="InvalidInput")
                if len(set(raw)) > MAX_TAGS:
                    raise BadRequest(f"Too many tags; at most {MAX_TAGS}.", kind="InvalidInput")
                new = sorted(set(raw))

            async def work(tx: Tx) -> None:
                await self._tagged(caller, res, id_, tx, True)
                await set_tags(tx, id_, new)
            await self.store.write(work)
            if request.method == "DELETE":
                return Response(status_code=204)
            return json({"tags": new})
        return handler

    def _tag(self, res: Resource) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            caller = self.caller(request)
            id_, tag = request.path_params["id"], request.path_params["tag"]
            if request.method == "GET":
                item = await self.store.read(lambda tx: self._tagged(caller, res, id_, tx, False))
                if tag not in item.get("tags", []):
                    raise NotFound(f"Tag {tag} could not be found for {res.singular} {id_}.",
                                   kind="TagNotFound")
                return Response(status_code=204)
            if len(tag) > 255:
                raise BadRequest("Invalid input for tag: too long.", kind="InvalidInput")

            async def work(tx: Tx) -> None:
                item = await self._tagged(caller, res, id_, tx, True)
                current = set(item.get("tags", []))
                if request.method == "DELETE":
                    if tag not in current:
                        raise NotFound(f"Tag {tag} could not be found for {res.singular} "
                                       f"{id_}.", kind="TagNotFound")
                    current.discard(tag)
                else:
                    if tag not in current and len(current) >= MAX_TAGS:
                        raise BadRequest(f"Too many tags; at most {MAX_TAGS}.",
                                         kind="InvalidInput")
                    current.add(tag)
                await set_tags(tx, id_, sorted(current))
            await self.store.write(work)
            return Response(status_code=204 if request.method == "DELETE" else 201)
        return handler

    # --- routers ---------------------------------------------------------------

    def _router_action(self, action: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            caller = self.caller(request)
            id_ = request.path_params["id"]
            body = json_object(await json_body(request))
            if action in ("add_extraroutes", "remove_extraroutes"):
                inner = json_object(body, "router")
                item = await self.store.write(lambda tx: routers.change_routes(
                    tx, caller, id_, inner, add=action == "add_extraroutes"))
                return json({"router": item})
            fn = routers.add_interface if action == "add_router_interface" \
                else routers.remove_interface
            return json(await self.store.write(lambda tx: fn(tx, caller, id_, body)))
        return handler

    # --- quotas ----------------------------------------------------------------

    async def quota_list(self, request: Request) -> Response:
        caller = self.caller(request)
        return json({"quotas": await self.store.read(lambda tx: quotas.listing(tx, caller))})

    async def quota(self, request: Request) -> Response:
        caller = self.caller(request)
        project = request.path_params["project_id"]
        if request.method == "GET":
            return json({"quota": await self.store.read(
                lambda tx: quotas.show(tx, caller, project))})
        if request.method == "DELETE":
            await self.store.write(lambda tx: quotas.reset(tx, caller, project))
            return Response(status_code=204)
        body = json_object(await json_body(request), "quota")
        return json({"quota": await self.store.write(
            lambda tx: quotas.update_(tx, caller, project, body))})

    async def quota_default(self, request: Request) -> Response:
        self.caller(request)
        return json({"quota": await self.store.read(
            lambda tx: _async(quotas.defaults(tx)))})

    async def quota_details(self, request: Request) -> Response:
        caller = self.caller(request)
        project = request.path_params["project_id"]
        return json({"quota": await self.store.read(
            lambda tx: quotas.details(tx, caller, project))})

    # --- get-me-a-network ----------------------------------------------------------

    async def auto_topology(self, request: Request) -> Response:
        caller = self.caller(request)
        project = request.path_params["project_id"]
        if request.method == "DELETE":
            await self.store.write(lambda tx: autoallocate.delete_(tx, caller, project))
            return Response(status_code=204)
        fields = [f for v in request.query_params.getlist("fields") for f in v.split(",")]
        dry_run = "dry-run" in fields
        item = await self.store.write(
            lambda tx: autoallocate.get(tx, caller, project, dry_run=dry_run))
        return json({"auto_allocated_topology": item})

    # --- agents ----------------------------------------------------------------

    async def agent_list(self, request: Request) -> Response:
        caller = self.caller(request)
        q = query.parse(list(request.query_params.multi_items()), max_limit=self.max_limit)
        items = await self.store.read(lambda tx: agents.listing(tx, caller))
        page, more, prev = query.apply(items, q)
        body: dict[str, Any] = {"agents": [query.select_fields(i, q.fields) for i in page]}
        links = query.links("agents", f"{self.base_url}/v2.0", q, page, more, prev)
        if links:
            body["agents_links"] = links
        return json(body)

    async def agent(self, request: Request) -> Response:
        caller = self.caller(request)
        id_ = request.path_params["id"]
        if request.method == "GET":
            fields = [f for v in request.query_params.getlist("fields")
                      for f in v.split(",") if f]
            item = await self.store.read(lambda tx: agents.show(tx, caller, id_))
            return json({"agent": query.select_fields(item, fields)})
        if request.method == "DELETE":
            await self.store.write(lambda tx: agents.delete_(tx, caller, id_))
            return Response(status_code=204)
        body = attrs.check_body(attrs.AGENT, json_object(await json_body(request), "agent"),
                                caller.ctx, create=False, resource="agent")
        item = await self.store.write(lambda tx: agents.update(tx, caller, id_, body))
        return json({"agent": item})

    # --- discovery -------------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        return json({"versions": [{
            "id": "v2.0", "status": "CURRENT",
            "links": [{"rel": "self", "href": f"{self.base_url}/v2.0/"}]}]})

    async def resources(self, request: Request) -> Response:
        names = [(r.singular, r.path) for r in RESOURCES] + [("quota", "quotas"),
                                                              ("agent", "agents")]
        return json({"resources": [
            {"name": singular, "collection": path.replace("-", "_"),
             "links": [{"rel": "self", "href": f"{self.base_url}/v2.0/{path}"}]}
            for singular, path in names]})

    async def extensions(self, request: Request) -> Response:
        self.caller(request)
        return json({"extensions": [extension(a) for a in ALIASES]})

    async def extension(self, request: Request) -> Response:
        self.caller(request)
        alias = request.path_params["alias"]
        if alias not in ALIASES:
            raise NotFound(f"Extension with alias {alias} does not exist", kind="HTTPNotFound")
        return json({"extension": extension(alias)})


async def _async(value: Any) -> Any:
    return value
