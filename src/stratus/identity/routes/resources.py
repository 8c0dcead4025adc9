"""Domains, projects (and tags), users (and passwords), groups (and members)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stratus.errors import BadRequest, NotFound, Unauthorized
from stratus.identity import models as m
from stratus.identity import resources as r
from stratus.identity.core import DEFAULT_DOMAIN_ID, find_row, get_row, text
from stratus.identity.routes.common import Api, matches, name_filter, no_content, ok, route
from stratus.identity.security import check_self_service_change


def routes(api: Api) -> list[Route]:
    idn = api.idn

    def default_domain(caller: Any) -> str:
        return caller.context.domain_id or caller.context.project_domain_id or DEFAULT_DOMAIN_ID

    # --- domains ------------------------------------------------------------

    async def list_domains(request: Request) -> Response:
        await api.authorize(request, "identity:list_domains")
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.domains))).mappings().all()
        q = request.query_params
        items = [r.domain_view(idn, dict(x)) for x in rows
                 if matches(x, q, ("name", "enabled")) and name_filter(x, q)]
        return api.collection(request, "domains", items)

    async def create_domain(request: Request) -> Response:
        await api.authorize(request, "identity:create_domain")
        body = await api.body(request, "domain")
        async with idn.write("domain") as s:
            row = await r.create_domain(s, body)
        return ok({"domain": r.domain_view(idn, row)}, 201)

    async def get_domain(request: Request) -> Response:
        domain_id = request.path_params["domain_id"]
        caller = await api.caller(request)
        async with idn.db.session() as s:
            row = await get_row(s, m.domains, domain_id, "domain")
        api.policy.enforce("identity:get_domain", caller.context,
                           {"target": {"domain": {"id": domain_id}}})
        return ok({"domain": r.domain_view(idn, row)})

    async def update_domain(request: Request) -> Response:
        await api.authorize(request, "identity:update_domain")
        body = await api.body(request, "domain")
        domain_id = request.path_params["domain_id"]
        async with idn.write("domain") as s:
            before = await get_row(s, m.domains, domain_id, "domain")
            row = await r.update_domain(s, domain_id, body)
            if before["enabled"] and not row["enabled"]:
                await api.provider.revoke(s, domain_id=domain_id)
        return ok({"domain": r.domain_view(idn, row)})

    async def delete_domain(request: Request) -> Response:
        await api.authorize(request, "identity:delete_domain")
        async with idn.write("domain") as s:
            await r.delete_domain(s, request.path_params["domain_id"])
        return no_content()

    # --- projects -----------------------------------------------------------

    async def list_projects(request: Request) -> Response:
        q = request.query_params
        await api.authorize(request, "identity:list_projects", {"domain_id": q.get("domain_id")})
        async with idn.db.session() as s:
            rows = [dict(x) for x in (await s.execute(select(m.projects))).mappings().all()]
            tags = await r.project_tags(s, [x["id"] for x in rows])
        if q.get("is_domain", "").lower() == "true":
            async with idn.db.session() as s:
                domains = (await s.execute(select(m.domains))).mappings().all()
            return api.collection(request, "projects", [
                r.domain_as_project_view(idn, dict(d)) for d in domains
                if matches(d, q, ("name", "enabled"))])
        items = []
        for row in rows:
            view = r.project_view(idn, row, tags[row["id"]])
            if not (matches(view, q, ("name", "enabled", "domain_id", "parent_id"))
                    and name_filter(view, q) and _tag_filter(set(view["tags"]), q)):
                continue
            items.append(view)
        return api.collection(request, "projects", items)

    async def create_project(request: Request) -> Response:
        caller = await api.authorize(request, "identity:create_project")
        body = await api.body(request, "project")
        if body.get("is_domain") is True:  # a domain, made through the projects API
            fields = {k: body[k] for k in ("name", "description", "enabled") if k in body}
            async with idn.write("domain") as s:
                domain = await r.create_domain(s, fields)
            return ok({"project": r.domain_as_project_view(idn, domain)}, 201)
        async with idn.write("project") as s:
            row = await r.create_project(s, body, default_domain(caller))
        return ok({"project": r.project_view(idn, row, body.get("tags") or [])}, 201)

    async def load_project(request: Request, rule: str) -> dict[str, Any]:
        caller = await api.caller(request)
        project_id = request.path_params["project_id"]
        async with idn.db.session() as s:
            row = await get_row(s, m.projects, project_id, "project")
            tags = (await r.project_tags(s, [project_id]))[project_id]
        api.policy.enforce(rule, caller.context, {"target": {"project": row}})
        return r.project_view(idn, row, tags)

    async def as_domain(request: Request) -> dict[str, Any] | None:
        """The domain a project id names, if it names a domain (``is_domain`` projects)."""
        project_id = request.path_params["project_id"]
        async with idn.db.session() as s:
            if await find_row(s, m.projects, id=project_id):
                return None
            return await find_row(s, m.domains, id=project_id)

    async def get_project(request: Request) -> Response:
        domain = await as_domain(request)
        if domain is not None:
            await api.authorize(request, "identity:get_domain",
                                {"target": {"domain": {"id": domain["id"]}}})
            return ok({"project": r.domain_as_project_view(idn, domain)})
        view = await load_project(request, "identity:get_project")
        q = request.query_params
        async with idn.db.session() as s:
            if "parents_as_list" in q or "parents_as_ids" in q:
                parents = await r.ancestors(s, {"parent_id": view["parent_id"]})
                if "parents_as_list" in q:
                    view["parents"] = [{"project": r.project_view(idn, p)} for p in parents]
                else:
                    view["parents"] = _nest([p["id"] for p in parents])
            if "subtree_as_list" in q or "subtree_as_ids" in q:
                children = await r.descendants(s, view["id"])
                if "subtree_as_list" in q:
                    view["subtree"] = [{"project": r.project_view(idn, c)} for c in children]
                else:
                    view["subtree"] = {c["id"]: None for c in children} or None
        return ok({"project": view})

    async def update_project(request: Request) -> Response:
        await api.authorize(request, "identity:update_project")
        body = await api.body(request, "project")
        project_id = request.path_params["project_id"]
        if await as_domain(request) is not None:
            fields = {k: body[k] for k in ("name", "description", "enabled") if k in body}
            async with idn.write("domain") as s:
                before = await get_row(s, m.domains, project_id, "domain")
                domain = await r.update_domain(s, project_id, fields)
                if before["enabled"] and not domain["enabled"]:
                    await api.provider.revoke(s, domain_id=project_id)
            return ok({"project": r.domain_as_project_view(idn, domain)})
        async with idn.write("project") as s:
            before = await get_row(s, m.projects, project_id, "project")
            row = await r.update_project(s, project_id, body)
            tags = (await r.project_tags(s, [project_id]))[project_id]
            if before["enabled"] and not row["enabled"]:
                await api.provider.revoke(s, project_id=project_id)
        return ok({"project": r.project_view(idn, row, tags)})

    async def delete_project(request: Request) -> Response:
        await api.authorize(request, "identity:delete_project")
        project_id = request.path_params["project_id"]
        if await as_domain(request) is not None:
            async with idn.write("domain") as s:
                await r.delete_domain(s, project_id)
            return no_content()
        async with idn.write("project") as s:
            await r.delete_project(s, project_id)
            await api.provider.revoke(s, project_id=project_id)
        return no_content()

    async def list_tags(request: Request) -> Response:
        view = await load_project(request, "identity:get_project")
        return ok({"tags": view["tags"], "links": {}})

    async def replace_tags(request: Request) -> Response:
        await api.authorize(request, "identity:update_project_tags")
        project_id = request.path_params["project_id"]
        body = await api.body(request, None)
        if "tags" not in body:
            raise BadRequest("Invalid input for field 'tags': it is required.")
        tags = r._tags(body) or []
        async with idn.write("project tags") as s:
            row = await get_row(s, m.projects, project_id, "project")
            await r.set_tags(s, project_id, tags)
        return ok({"project": r.project_view(idn, row, tags), "tags": tags})

    async def delete_tags(request: Request) -> Response:
        await api.authorize(request, "identity:update_project_tags")
        project_id = request.path_params["project_id"]
        async with idn.write("project tags") as s:
            await get_row(s, m.projects, project_id, "project")
            await r.set_tags(s, project_id, [])
        return no_content()

    async def tag(request: Request) -> Response:
        project_id = request.path_params["project_id"]
        name = request.path_params["tag"]
        if request.method in ("GET", "HEAD"):
            view = await load_project(request, "identity:get_project")
            if name not in view["tags"]:
                raise NotFound(f"Could not find project tag: {name}.")
            return no_content()
        await api.authorize(request, "identity:update_project_tags")
        async with idn.write("project tag") as s:
            await get_row(s, m.projects, project_id, "project")
            current = (await r.project_tags(s, [project_id]))[project_id]
            if request.method == "PUT":
                tags = r._tags({"tags": list(dict.fromkeys([*current, name]))}) or []
                await r.set_tags(s, project_id, tags)
            else:
                if name not in current:
                    raise NotFound(f"Could not find project tag: {name}.")
                await r.set_tags(s, project_id, [t for t in current if t != name])
        if request.method == "PUT":
            return Response(status_code=201, headers={
                "Location": f"{idn.base_url}/v3/projects/{project_id}/tags/{name}"})
        return no_content()

    # --- users --------------------------------------------------------------

    async def list_users(request: Request) -> Response:
        q = request.query_params
        await api.authorize(request, "identity:list_users", {"domain_id": q.get("domain_id")})
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.users))).mappings().all()
        items = [r.user_view(idn, dict(x)) for x in rows
                 if matches(x, q, ("name", "enabled", "domain_id")) and name_filter(x, q)]
        return api.collection(request, "users", items)

    async def create_user(request: Request) -> Response:
        caller = await api.authorize(request, "identity:create_user")
        body = await api.body(request, "user")
        async with idn.write("user") as s:
            row = await r.create_user(idn, s, body, default_domain(caller))
        return ok({"user": r.user_view(idn, row)}, 201)

    async def get_user(request: Request) -> Response:
        caller = await api.caller(request)
        async with idn.db.session() as s:
            row = await get_row(s, m.users, request.path_params["user_id"], "user")
        api.policy.enforce("identity:get_user", caller.context, {"target": {"user": row}})
        return ok({"user": r.user_view(idn, row)})

    async def update_user(request: Request) -> Response:
        await api.authorize(request, "identity:update_user")
        body = await api.body(request, "user")
        user_id = request.path_params["user_id"]
        async with idn.write("user") as s:
            row, revoke = await r.update_user(idn, s, user_id, body)
            if revoke:
                await api.provider.revoke(s, user_id=user_id)
        return ok({"user": r.user_view(idn, row)})

    async def delete_user(request: Request) -> Response:
        await api.authorize(request, "identity:delete_user")
        user_id = request.path_params["user_id"]
        async with idn.write("user") as s:
            await r.delete_user(s, user_id)
            await api.provider.revoke(s, user_id=user_id)
        return no_content()

    async def change_password(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        body = await api.body(request, "user")
        original = text(body, "original_password", required=True, max_len=4096)
        new = text(body, "password", required=True, max_len=4096)
        caller = await api.caller(request)
        api.policy.enforce("identity:change_password", caller.context, {"user_id": user_id})
        async with idn.db.session() as s:
            row = await get_row(s, m.users, user_id, "user")
        if not await idn.hasher.verify(original, row["password_hash"]):
            raise Unauthorized("The request you have made requires authentication.")
        async with idn.db.session() as s:
            await check_self_service_change(idn, s, row, new)
        async with idn.write("password") as s:
            await r.update_user(idn, s, user_id, {"password": new})
            await api.provider.revoke(s, user_id=user_id)
        return no_content()

    async def user_projects(request: Request) -> Response:
        from stratus.identity.assignments import user_targets

        user_id = request.path_params["user_id"]
        await api.authorize(request, "identity:list_user_projects", {"user_id": user_id})
        async with idn.db.session() as s:
            await get_row(s, m.users, user_id, "user")
            ids = await user_targets(s, user_id, "project")
            rows = (await s.execute(select(m.projects).where(m.projects.c.id.in_(ids))
                                    )).mappings().all() if ids else []
        q = request.query_params
        items = [r.project_view(idn, dict(x)) for x in rows
                 if matches(x, q, ("name", "enabled", "domain_id"))]
        return api.collection(request, "projects", items)

    async def user_groups(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        await api.authorize(request, "identity:list_groups_for_user", {"user_id": user_id})
        async with idn.db.session() as s:
            await get_row(s, m.users, user_id, "user")
            rows = (await s.execute(select(m.groups).join(
                m.group_members, m.group_members.c.group_id == m.groups.c.id).where(
                m.group_members.c.user_id == user_id))).mappings().all()
        return api.collection(request, "groups", [r.group_view(idn, dict(x)) for x in rows])

    # --- groups -------------------------------------------------------------

    async def list_groups(request: Request) -> Response:
        q = request.query_params
        await api.authorize(request, "identity:list_groups", {"domain_id": q.get("domain_id")})
        async with idn.db.session() as s:
            rows = (await s.execute(select(m.groups))).mappings().all()
        items = [r.group_view(idn, dict(x)) for x in rows
                 if matches(x, q, ("name", "domain_id")) and name_filter(x, q)]
        return api.collection(request, "groups", items)

    async def create_group(request: Request) -> Response:
        caller = await api.authorize(request, "identity:create_group")
        body = await api.body(request, "group")
        async with idn.write("group") as s:
            row = await r.create_group(s, body, default_domain(caller))
        return ok({"group": r.group_view(idn, row)}, 201)

    async def get_group(request: Request) -> Response:
        caller = await api.caller(request)
        async with idn.db.session() as s:
            row = await get_row(s, m.groups, request.path_params["group_id"], "group")
        api.policy.enforce("identity:get_group", caller.context, {"target": {"group": row}})
        return ok({"group": r.group_view(idn, row)})

    async def update_group(request: Request) -> Response:
        await api.authorize(request, "identity:update_group")
        body = await api.body(request, "group")
        async with idn.write("group") as s:
            row = await r.update_group(s, request.path_params["group_id"], body)
        return ok({"group": r.group_view(idn, row)})

    async def delete_group(request: Request) -> Response:
        await api.authorize(request, "identity:delete_group")
        async with idn.write("group") as s:
            await r.delete_group(s, request.path_params["group_id"])
        return no_content()

    async def group_users(request: Request) -> Response:
        caller = await api.caller(request)
        group_id = request.path_params["group_id"]
        async with idn.db.session() as s:
            group = await get_row(s, m.groups, group_id, "group")
            api.policy.enforce("identity:list_users_in_group", caller.context,
                               {"target": {"group": group}})
            rows = (await s.execute(select(m.users).join(
                m.group_members, m.group_members.c.user_id == m.users.c.id).where(
                m.group_members.c.group_id == group_id))).mappings().all()
        q = request.query_params
        items = [r.user_view(idn, dict(x)) for x in rows if matches(x, q, ("name", "enabled"))]
        return api.collection(request, "users", items)

    async def membership(request: Request) -> Response:
        group_id = request.path_params["group_id"]
        user_id = request.path_params["user_id"]
        rule = {"PUT": "identity:add_user_to_group", "DELETE": "identity:remove_user_from_group"
                }.get(request.method, "identity:check_user_in_group")
        await api.authorize(request, rule, {"user_id": user_id})
        key = {"group_id": group_id, "user_id": user_id}
        if request.method in ("GET", "HEAD"):
            async with idn.db.session() as s:
                await get_row(s, m.groups, group_id, "group")
                await get_row(s, m.users, user_id, "user")
                if await find_row(s, m.group_members, **key) is None:
                    raise NotFound(f"User {user_id} is not a member of group {group_id}.")
            return no_content()
        async with idn.write("group membership") as s:
            await get_row(s, m.groups, group_id, "group")
            await get_row(s, m.users, user_id, "user")
            present = await find_row(s, m.group_members, **key) is not None
            if request.method == "PUT" and not present:
                await s.execute(insert(m.group_members).values(**key))
            elif request.method == "DELETE":
                if not present:
                    raise NotFound(f"User {user_id} is not a member of group {group_id}.")
                await s.execute(delete(m.group_members).where(
                    m.group_members.c.group_id == group_id,
                    m.group_members.c.user_id == user_id))
        return no_content()

    return [
        route("/v3/domains", list_domains, ["GET"]),
        route("/v3/domains", create_domain, ["POST"]),
        route("/v3/domains/{domain_id}", get_domain, ["GET"]),
        route("/v3/domains/{domain_id}", update_domain, ["PATCH"]),
        route("/v3/domains/{domain_id}", delete_domain, ["DELETE"]),
        route("/v3/projects", list_projects, ["GET"]),
        route("/v3/projects", create_project, ["POST"]),
        route("/v3/projects/{project_id}", get_project, ["GET"]),
        route("/v3/projects/{project_id}", update_project, ["PATCH"]),
        route("/v3/projects/{project_id}", delete_project, ["DELETE"]),
        route("/v3/projects/{project_id}/tags", list_tags, ["GET"]),
        route("/v3/projects/{project_id}/tags", replace_tags, ["PUT"]),
        route("/v3/projects/{project_id}/tags", delete_tags, ["DELETE"]),
        route("/v3/projects/{project_id}/tags/{tag}", tag, ["GET", "HEAD", "PUT", "DELETE"]),
        route("/v3/users", list_users, ["GET"]),
        route("/v3/users", create_user, ["POST"]),
        route("/v3/users/{user_id}", get_user, ["GET"]),
        route("/v3/users/{user_id}", update_user, ["PATCH"]),
        route("/v3/users/{user_id}", delete_user, ["DELETE"]),
        route("/v3/users/{user_id}/password", change_password, ["POST"]),
        route("/v3/users/{user_id}/projects", user_projects, ["GET"]),
        route("/v3/users/{user_id}/groups", user_groups, ["GET"]),
        route("/v3/groups", list_groups, ["GET"]),
        route("/v3/groups", create_group, ["POST"]),
        route("/v3/groups/{group_id}", get_group, ["GET"]),
        route("/v3/groups/{group_id}", update_group, ["PATCH"]),
        route("/v3/groups/{group_id}", delete_group, ["DELETE"]),
        route("/v3/groups/{group_id}/users", group_users, ["GET"]),
        route("/v3/groups/{group_id}/users/{user_id}", membership,
              ["PUT", "GET", "HEAD", "DELETE"]),
    ]


def _tag_filter(tags: set[str], q: Any) -> bool:
    def parse(key: str) -> set[str] | None:
        return set(q[key].split(",")) if key in q else None
    all_of, any_of = parse("tags"), parse("tags-any")
    not_all, not_any = parse("not-tags"), parse("not-tags-any")
    if all_of is not None and not all_of <= tags:
        return False
    if any_of is not None and not any_of & tags:
        return False
    if not_all is not None and not_all <= tags:
        return False
    if not_any is not None and not_any & tags:
        return False
    return True


def _nest(ids: list[str]) -> dict[str, Any] | None:
    """Keystone's nested ``parents_as_ids``: {parent: {grandparent: None}}."""
    out: dict[str, Any] | None = None
    for pid in reversed(ids):
        out = {pid: out}
    return out
