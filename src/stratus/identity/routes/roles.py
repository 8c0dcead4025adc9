"""Roles, implied roles, grants (project/domain/system, OS-INHERIT) and /v3/role_assignments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stratus.errors import NotFound
from stratus.identity import assignments as a
from stratus.identity import models as m
from stratus.identity.core import Identity, get_row
from stratus.identity.routes.common import Api, matches, name_filter, no_content, ok, route

ACTORS = {"users": "user", "groups": "group"}
TARGETS = {"projects": "project", "domains": "domain"}


def routes(api: Api) -> list[Route]:
    idn = api.idn

    def brief(row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"], "name": row["name"], "links": idn.link(f"roles/{row['id']}")}

    # --- roles --------------------------------------------------------------

    async def list_roles(request: Request) -> Response:
        q = request.query_params
        await api.authorize(request, "identity:list_roles", {"domain_id": q.get("domain_id")})
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.roles))).mappings().all()
        domain = q.get("domain_id", "")
        items = [a.role_view(idn, dict(x)) for x in rows
                 if x["domain_id"] == domain and matches(x, q, ("name",))
                 and name_filter(x, q)]
        return api.collection(request, "roles", items)

    async def create_role(request: Request) -> Response:
        await api.authorize(request, "identity:create_role")
        body = await api.body(request, "role")
        async with idn.write("role") as s:
            row = await a.create_role(s, body)
        return ok({"role": a.role_view(idn, row)}, 201)

    async def get_role(request: Request) -> Response:
        caller = await api.caller(request)
        async with idn.db.session() as s:
            row = await get_row(s, m.roles, request.path_params["role_id"], "role")
        api.policy.enforce("identity:get_role", caller.context,
                           {"domain_id": row["domain_id"] or None})
        return ok({"role": a.role_view(idn, row)})

    async def update_role(request: Request) -> Response:
        await api.authorize(request, "identity:update_role")
        body = await api.body(request, "role")
        async with idn.write("role") as s:
            row = await a.update_role(s, request.path_params["role_id"], body)
        return ok({"role": a.role_view(idn, row)})

    async def delete_role(request: Request) -> Response:
        await api.authorize(request, "identity:delete_role")
        async with idn.write("role") as s:
            await a.delete_role(s, request.path_params["role_id"])
        return no_content()

    # --- implied roles ------------------------------------------------------

    async def implies_one(request: Request) -> Response:
        await api.authorize(request, "identity:implied_roles")
        prior_id = request.path_params["prior_id"]
        implied_id = request.path_params["implied_id"]
        if request.method == "PUT":
            async with idn.write("implied role") as s:
                await a.add_implied_role(s, prior_id, implied_id)
        elif request.method == "DELETE":
            async with idn.write("implied role") as s:
                await a.delete_implied_role(s, prior_id, implied_id)
            return no_content()
        async with idn.db.session() as s:
            prior = await get_row(s, m.roles, prior_id, "role")
            implied = await get_row(s, m.roles, implied_id, "role")
            table = await a.load_role_table(s)
        if implied_id not in table.implies.get(prior_id, ()):
            raise NotFound(f"Could not find implied role: {prior_id} implies {implied_id}.")
        if request.method == "HEAD":
            return no_content()
        return ok({"role_inference": {"prior_role": brief(prior), "implies": brief(implied)},
                   "links": idn.link(f"roles/{prior_id}/implies/{implied_id}")},
                  201 if request.method == "PUT" else 200)

    async def implies_list(request: Request) -> Response:
        await api.authorize(request, "identity:implied_roles")
        prior_id = request.path_params["prior_id"]
        async with idn.db.session() as s:
            prior = await get_row(s, m.roles, prior_id, "role")
            table = await a.load_role_table(s)
        return ok({"role_inference": {
            "prior_role": brief(prior),
            "implies": [brief(table.by_id[i]) for i in table.implies.get(prior_id, ())]},
            "links": idn.link(f"roles/{prior_id}/implies")})

    async def inferences(request: Request) -> Response:
        await api.authorize(request, "identity:list_role_inference_rules")
        async with idn.db.session() as s:
            table = await a.load_role_table(s)
        items = [{"prior_role": brief(table.by_id[p]),
                  "implies": [brief(table.by_id[i]) for i in implied]}
                 for p, implied in table.implies.items()]
        return ok({"role_inferences": items, "links": idn.link("role_inferences")})

    # --- grants -------------------------------------------------------------

    def parties(request: Request) -> tuple[str, str, str, str]:
        p = request.path_params
        if p["actors"] not in ACTORS or p.get("targets", "projects") not in TARGETS:
            raise NotFound(f"No such resource: {request.url.path}")
        target = TARGETS.get(p.get("targets", ""), "system")
        target_id = p.get("target_id", "all")
        return ACTORS[p["actors"]], p["actor_id"], target, target_id

    async def grant(request: Request, inherited: bool = False) -> Response:
        actor, actor_id, target, target_id = parties(request)
        role_id = request.path_params["role_id"]
        if request.method == "PUT":
            await api.authorize(request, "identity:create_grant")
            async with idn.write("role assignment") as s:
                await a.grant(s, actor, actor_id, target, target_id, role_id, inherited)
        elif request.method == "DELETE":
            await api.authorize(request, "identity:revoke_grant")
            async with idn.write("role assignment") as s:
                await a.revoke(s, actor, actor_id, target, target_id, role_id, inherited)
        else:
            await api.authorize(request, "identity:check_grant",
                                {"user_id": actor_id if actor == "user" else None})
            async with idn.db.session() as s:
                if not await a.has_grant(s, actor, actor_id, target, target_id, role_id,
                                         inherited):
                    raise NotFound(f"Could not find role assignment with role: {role_id}, "
                                   f"{actor}: {actor_id}, {target}: {target_id}.")
        return no_content()

    async def inherited_grant(request: Request) -> Response:
        return await grant(request, inherited=True)

    async def list_grants(request: Request, inherited: bool = False) -> Response:
        actor, actor_id, target, target_id = parties(request)
        await api.authorize(request, "identity:list_grants",
                            {"user_id": actor_id if actor == "user" else None})
        async with idn.db.session() as s:
            rows = await a.granted_roles(s, actor, actor_id, target, target_id, inherited)
        return api.collection(request, "roles", [a.role_view(idn, x) for x in rows])

    async def list_inherited_grants(request: Request) -> Response:
        return await list_grants(request, inherited=True)

    async def role_assignments(request: Request) -> Response:
        q = request.query_params
        await api.authorize(request, "identity:list_role_assignments",
                            {"user.id": q.get("user.id"), "scope.domain.id": q.get(
                                "scope.domain.id")})
        async with idn.db.session() as s:
            items = await list_assignments(idn, s, q)
        return api.collection(request, "role_assignments", items)

    grant_path = "/v3/{targets:str}/{target_id}/{actors:str}/{actor_id}/roles"
    system_path = "/v3/system/{actors:str}/{actor_id}/roles"
    inherit_path = "/v3/OS-INHERIT/{targets:str}/{target_id}/{actors:str}/{actor_id}/roles"
    return [
        route("/v3/roles", list_roles, ["GET"]),
        route("/v3/roles", create_role, ["POST"]),
        route("/v3/roles/{role_id}", get_role, ["GET"]),
        route("/v3/roles/{role_id}", update_role, ["PATCH"]),
        route("/v3/roles/{role_id}", delete_role, ["DELETE"]),
        route("/v3/roles/{prior_id}/implies", implies_list, ["GET"]),
        route("/v3/roles/{prior_id}/implies/{implied_id}", implies_one,
              ["PUT", "GET", "HEAD", "DELETE"]),
        route("/v3/role_inferences", inferences, ["GET"]),
        route("/v3/role_assignments", role_assignments, ["GET"]),
        route(grant_path, list_grants, ["GET"]),
        route(grant_path + "/{role_id}", grant, ["PUT", "GET", "HEAD", "DELETE"]),
        route(system_path, list_grants, ["GET"]),
        route(system_path + "/{role_id}", grant, ["PUT", "GET", "HEAD", "DELETE"]),
        route(inherit_path + "/inherited_to_projects", list_inherited_grants, ["GET"]),
        route(inherit_path + "/{role_id}/inherited_to_projects", inherited_grant,
              ["PUT", "GET", "HEAD", "DELETE"]),
    ]


# --- /v3/role_assignments -----------------------------------------------------

ACTOR_OF = {a.USER_PROJECT: "user", a.USER_DOMAIN: "user", a.USER_SYSTEM: "user",
            a.GROUP_PROJECT: "group", a.GROUP_DOMAIN: "group", a.GROUP_SYSTEM: "group"}
TARGET_OF = {a.USER_PROJECT: "project", a.GROUP_PROJECT: "project", a.USER_DOMAIN: "domain",
             a.GROUP_DOMAIN: "domain", a.USER_SYSTEM: "system", a.GROUP_SYSTEM: "system"}


async def list_assignments(idn: Identity, s: Any, q: Any) -> list[dict[str, Any]]:
    effective = "effective" in q and q.get("effective", "").lower() not in ("0", "false")
    include_names = "include_names" in q and q.get("include_names", "").lower() not in (
        "0", "false")
    rows = [dict(x) for x in (await s.execute(select(m.assignments))).mappings().all()]
    table = await a.load_role_table(s)
    projects = {x["id"]: dict(x) for x in (await s.execute(select(m.projects))).mappings()}
    entries: list[dict[str, Any]] = []
    for row in rows:
        actor, target = ACTOR_OF[row["type"]], TARGET_OF[row["type"]]
        base = {"role_id": row["role_id"], "actor": actor, "actor_id": row["actor_id"],
                "target": target, "target_id": row["target_id"],
                "inherited": bool(row["inherited"]), "links": {}}
        base["links"]["assignment"] = _assignment_link(idn, base)
        entries.append(base)
    if effective:
        if "group.id" in q:
            return []
        members: dict[str, list[str]] = {}
        for gid, uid in (await s.execute(select(m.group_members))).all():
            members.setdefault(gid, []).append(uid)
        expanded: list[dict[str, Any]] = []
        for e in entries:
            users = [dict(e)] if e["actor"] == "user" else [
                {**e, "actor": "user", "actor_id": uid,
                 "links": {**e["links"], "membership": f"{idn.base_url}/v3/groups/"
                           f"{e['actor_id']}/users/{uid}"}}
                for uid in members.get(e["actor_id"], [])]
            for u in users:
                if not u["inherited"]:
                    expanded.append(u)
                    continue
                if u["target"] == "domain":
                    below = [p for p in projects.values() if p["domain_id"] == u["target_id"]]
                else:
                    below = _below(projects, u["target_id"])
                expanded.extend({**u, "target": "project", "target_id": p["id"],
                                 "inherited": False} for p in below)
        entries = []
        for e in expanded:
            if not table.by_id.get(e["role_id"], {}).get("domain_id"):
                entries.append(e)
            for implied in table.expand([e["role_id"]], effective=True):
                if implied == e["role_id"]:
                    continue
                entries.append({**e, "role_id": implied,
                                "links": {**e["links"], "prior_role":
                                          f"{idn.base_url}/v3/roles/{e['role_id']}"}})
        unique: dict[tuple[Any, ...], dict[str, Any]] = {}
        for e in entries:
            unique.setdefault((e["role_id"], e["actor_id"], e["target"], e["target_id"]), e)
        entries = list(unique.values())
    entries = [e for e in entries if _wanted(e, q, projects)]
    return [await _render(idn, s, e, include_names, table) for e in entries]


def _below(projects: dict[str, dict[str, Any]], project_id: str) -> list[dict[str, Any]]:
    out, frontier = [], [project_id]
    while frontier:
        children = [p for p in projects.values() if p["parent_id"] in frontier]
        out.extend(children)
        frontier = [c["id"] for c in children]
    return out


def _wanted(e: dict[str, Any], q: Any, projects: dict[str, dict[str, Any]]) -> bool:
    if "user.id" in q and (e["actor"] != "user" or e["actor_id"] != q["user.id"]):
        return False
    if "group.id" in q and (e["actor"] != "group" or e["actor_id"] != q["group.id"]):
        return False
    if "role.id" in q and e["role_id"] != q["role.id"]:
        return False
    if "scope.project.id" in q:
        wanted = {q["scope.project.id"]}
        if "include_subtree" in q:
            wanted |= {p["id"] for p in _below(projects, q["scope.project.id"])}
        if e["target"] != "project" or e["target_id"] not in wanted:
            return False
    if "scope.domain.id" in q and (e["target"] != "domain"
                                   or e["target_id"] != q["scope.domain.id"]):
        return False
    if "scope.system" in q and e["target"] != "system":
        return False
    if "scope.OS-INHERIT:inherited_to" in q and not e["inherited"]:
        return False
    return True


def _assignment_link(idn: Identity, e: dict[str, Any]) -> str:
    actor = f"{e['actor']}s/{e['actor_id']}/roles/{e['role_id']}"
    if e["target"] == "system":
        return f"{idn.base_url}/v3/system/{actor}"
    path = f"{e['target']}s/{e['target_id']}/{actor}"
    if e["inherited"]:
        return f"{idn.base_url}/v3/OS-INHERIT/{path}/inherited_to_projects"
    return f"{idn.base_url}/v3/{path}"


async def _render(idn: Identity, s: Any, e: dict[str, Any], names: bool,
                  table: a.RoleTable) -> dict[str, Any]:
    role: dict[str, Any] = {"id": e["role_id"]}
    actor: dict[str, Any] = {"id": e["actor_id"]}
    scope_obj: dict[str, Any] = {"id": e["target_id"]}
    if names:
        role_row = table.by_id.get(e["role_id"])
        if role_row:
            role["name"] = role_row["name"]
            if role_row["domain_id"]:
                role["domain"] = await _domain_ref(s, role_row["domain_id"])
        actor_row = await _maybe(s, m.users if e["actor"] == "user" else m.groups,
                                 e["actor_id"])
        if actor_row:
            actor["name"] = actor_row["name"]
            actor["domain"] = await _domain_ref(s, actor_row["domain_id"])
        if e["target"] == "project":
            project = await _maybe(s, m.projects, e["target_id"])
            if project:
                scope_obj["name"] = project["name"]
                scope_obj["domain"] = await _domain_ref(s, project["domain_id"])
        elif e["target"] == "domain":
            domain = await _maybe(s, m.domains, e["target_id"])
            if domain:
                scope_obj["name"] = domain["name"]
    scope: dict[str, Any] = ({"system": {"all": True}} if e["target"] == "system"
                             else {e["target"]: scope_obj})
    if e["inherited"]:
        scope["OS-INHERIT:inherited_to"] = "projects"
    return {"role": role, e["actor"]: actor, "scope": scope, "links": e["links"]}


async def _maybe(s: Any, table: Any, row_id: str) -> dict[str, Any] | None:
    row = (await s.execute(select(table).where(table.c.id == row_id))).mappings().first()
    return dict(row) if row else None


async def _domain_ref(s: Any, domain_id: str) -> dict[str, Any]:
    row = await _maybe(s, m.domains, domain_id)
    return {"id": domain_id, "name": row["name"] if row else ""}
