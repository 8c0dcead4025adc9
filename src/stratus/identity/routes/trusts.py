"""``/v3/OS-TRUST/trusts``: create, list, show, delete, and the delegated roles."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stratus.errors import Forbidden, NotFound
from stratus.identity import models as m
from stratus.identity import trusts as t
from stratus.identity.assignments import role_view
from stratus.identity.core import find_row
from stratus.identity.provider import ValidToken
from stratus.identity.routes.common import Api, no_content, ok, route

BASE = "/v3/OS-TRUST/trusts"


def routes(api: Api) -> list[Route]:
    idn = api.idn

    async def create(request: Request) -> Response:
        caller = await api.caller(request)
        body = await api.body(request, "trust")
        api.policy.enforce("identity:create_trust", caller.context, {"trust": body})
        if caller.payload.app_cred_id:
            raise Forbidden("An application credential cannot create trusts.")
        async with idn.write("trust") as s:
            parent = None
            if caller.payload.trust_id:
                parent = await find_row(s, m.trusts, id=caller.payload.trust_id)
                if parent is None:
                    raise Forbidden("The trust of this token is gone.")
            table = await api.provider.role_table(s)
            row = await t.create_trust(idn, s, table, body,
                                       t.Delegator(caller.user_id, parent))
        return ok({"trust": t.trust_view(idn, row, table)}, 201)

    async def list_(request: Request) -> Response:
        caller = await api.caller(request)
        q = request.query_params
        trustor, trustee = q.get("trustor_user_id"), q.get("trustee_user_id")
        target = {"target": {"trust": {"trustor_user_id": trustor,
                                       "trustee_user_id": trustee}}}
        if trustor:
            api.policy.enforce("identity:list_trusts_for_trustor", caller.context, target)
        if trustee:
            api.policy.enforce("identity:list_trusts_for_trustee", caller.context, target)
        if not trustor and not trustee:
            api.policy.enforce("identity:list_trusts", caller.context, target)
        async with idn.db.session() as s:
            rows = await t.list_trusts(s, trustor, trustee)
        return api.collection(request, "trusts", [t.trust_view(idn, r) for r in rows])

    async def visible(request: Request, rule: str) -> tuple[ValidToken, dict[str, Any]]:
        caller = await api.caller(request)
        async with idn.db.session() as s:
            row = await t.get_trust(s, request.path_params["trust_id"])
        api.policy.enforce(rule, caller.context, {"target": {"trust": row}})
        return caller, row

    async def show(request: Request) -> Response:
        _, row = await visible(request, "identity:get_trust")
        async with idn.db.session() as s:
            table = await api.provider.role_table(s)
        return ok({"trust": t.trust_view(idn, row, table)})

    async def remove(request: Request) -> Response:
        await visible(request, "identity:delete_trust")
        async with idn.write("trust") as s:
            await t.delete_trust(s, request.path_params["trust_id"])
        return no_content()

    async def roles(request: Request) -> Response:
        _, row = await visible(request, "identity:list_roles_for_trust")
        async with idn.db.session() as s:
            table = await api.provider.role_table(s)
        items = [role_view(idn, table.by_id[r]) for r in row["roles"] or [] if r in table.by_id]
        return api.collection(request, "roles", items)

    async def role(request: Request) -> Response:
        _, row = await visible(request, "identity:get_role_for_trust")
        role_id = request.path_params["role_id"]
        async with idn.db.session() as s:
            table = await api.provider.role_table(s)
        if role_id not in (row["roles"] or []) or role_id not in table.by_id:
            raise NotFound(f"Could not find role: {role_id}.")
        if request.method == "HEAD":
            return Response(status_code=200)
        return ok({"role": role_view(idn, table.by_id[role_id])})

    return [
        route(BASE, create, ["POST"]),
        route(BASE, list_, ["GET"]),
        route(BASE + "/", list_, ["GET"]),
        route(BASE + "/{trust_id}", show, ["GET"]),
        route(BASE + "/{trust_id}", remove, ["DELETE"]),
        route(BASE + "/{trust_id}/roles", roles, ["GET"]),
        route(BASE + "/{trust_id}/roles/{role_id}", role, ["GET", "HEAD"]),
    ]
