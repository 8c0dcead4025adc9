"""Version discovery, ``/v3/auth/*`` and revocation events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.api.app import json_body, json_object
from stratus.errors import Forbidden, NotFound
from stratus.identity import models as m
from stratus.identity.assignments import effective_role_ids, user_targets
from stratus.identity.provider import InvalidToken
from stratus.identity.resources import domain_view, project_view
from stratus.identity.routes.common import Api, no_content, route
from stratus.identity.tokens import format_time

MEDIA_TYPES = [{"base": "application/json",
                "type": "application/vnd.openstack.identity-v3+json"}]


def version_doc(base: str) -> dict[str, Any]:
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base}/v3/"}], "media-types": MEDIA_TYPES}


def routes(api: Api) -> list[Route]:
    idn = api.idn
    base = idn.base_url

    async def root(request: Request) -> Response:
        return JSONResponse({"versions": {"values": [version_doc(base)]}}, status_code=300)

    async def v3(request: Request) -> Response:
        return JSONResponse({"version": version_doc(base)})

    async def issue(request: Request) -> Response:
        auth = json_object(json_object(await json_body(request)), "auth")
        valid = await api.authn.authenticate(auth, request.headers.get("x-auth-token"))
        with_catalog = "nocatalog" not in request.query_params
        return Response(valid.render(with_catalog), status_code=201,
                        media_type="application/json",
                        headers={"X-Subject-Token": valid.token_id})

    async def subject(request: Request) -> Any:
        caller = await api.caller(request)
        token_id = request.headers.get("x-subject-token")
        if not token_id:
            raise NotFound("Could not find token: the X-Subject-Token header is missing.")
        allow_expired = request.query_params.get("allow_expired", "").lower() in (
            "1", "true", "yes")
        try:
            valid = await api.provider.validate(token_id, allow_expired=allow_expired)
        except InvalidToken:
            raise NotFound(f"Could not find token: {token_id}.") from None
        return caller, valid

    async def validate(request: Request) -> Response:
        caller, valid = await subject(request)
        api.policy.enforce("identity:validate_token", caller.context,
                           {"target": {"token": {"user_id": valid.user_id}}})
        headers = {"X-Subject-Token": valid.token_id}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        with_catalog = "nocatalog" not in request.query_params
        return Response(valid.render(with_catalog), media_type="application/json",
                        headers=headers)

    async def revoke(request: Request) -> Response:
        caller, valid = await subject(request)
        api.policy.enforce("identity:revoke_token", caller.context,
                           {"target": {"token": {"user_id": valid.user_id}}})
        async with idn.write("revocation event") as s:
            await api.provider.revoke(s, audit_id=valid.payload.audit_ids[0])
        return no_content()

    async def catalog(request: Request) -> Response:
        caller = await api.caller(request)
        if caller.payload.scope_kind is None:
            raise Forbidden("The catalog needs a scoped token.")
        async with idn.db.session() as s:
            entries = await api.provider.catalog(s, caller.payload.project_id)
        return JSONResponse({"catalog": entries,
                             "links": {"self": f"{base}/v3/auth/catalog"}})

    async def auth_projects(request: Request) -> Response:
        caller = await api.caller(request)
        async with idn.db.session() as s:
            ids = await user_targets(s, caller.user_id, "project")
            rows = (await s.execute(select(m.projects).where(m.projects.c.id.in_(ids))
                                    )).mappings().all() if ids else []
            domains = {d["id"]: d for d in (await s.execute(select(m.domains))).mappings()}
        items = [project_view(idn, dict(r)) for r in rows
                 if r["enabled"] and domains.get(r["domain_id"], {}).get("enabled")]
        return api.collection(request, "projects", items)

    async def auth_domains(request: Request) -> Response:
        caller = await api.caller(request)
        async with idn.db.session() as s:
            ids = await user_targets(s, caller.user_id, "domain")
            rows = (await s.execute(select(m.domains).where(m.domains.c.id.in_(ids))
                                    )).mappings().all() if ids else []
        items = [domain_view(idn, dict(r)) for r in rows if r["enabled"]]
        return api.collection(request, "domains", items)

    async def auth_system(request: Request) -> Response:
        caller = await api.caller(request)
        async with idn.db.session() as s:
            table = await api.provider.role_table(s)
            roles = await effective_role_ids(s, table, caller.user_id, "s", "all")
        return JSONResponse({"system": [{"all": True}] if roles else [],
                             "links": {"self": f"{base}/v3/auth/system"}})

    async def revoke_events(request: Request) -> Response:
        await api.authorize(request, "identity:list_revoke_events")
        events = []
        for e in api.provider.list_events():
            item: dict[str, Any] = {"issued_before": format_time(e.issued_before)}
            for key in ("user_id", "project_id", "domain_id", "audit_id", "audit_chain_id"):
                if getattr(e, key):
                    item[key] = getattr(e, key)
            events.append(item)
        return JSONResponse({"events": events, "links": {"self": f"{base}/v3/OS-REVOKE/events",
                                                         "previous": None, "next": None}})

    return [
        route("/", root, ["GET"]),
        route("/v3", v3, ["GET"]),
        route("/v3/", v3, ["GET"]),
        route("/v3/auth/tokens", issue, ["POST"]),
        route("/v3/auth/tokens", validate, ["GET", "HEAD"]),
        route("/v3/auth/tokens", revoke, ["DELETE"]),
        route("/v3/auth/catalog", catalog, ["GET"]),
        route("/v3/auth/projects", auth_projects, ["GET"]),
        route("/v3/auth/domains", auth_domains, ["GET"]),
        route("/v3/auth/system", auth_system, ["GET"]),
        route("/v3/OS-REVOKE/events", revoke_events, ["GET"]),
    ]
