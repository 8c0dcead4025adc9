"""``/os-quota-sets``, ``/os-quota-class-sets``, ``/limits`` and ``/os-server-groups``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from starlette.requests import Request
from starlette.responses import Response

from stratus.compute import quotas
from stratus.compute.api.common import Call, Deps, ok, require_int, require_str
from stratus.compute.models import Instance, Quota, ServerGroup, ServerGroupMember
from stratus.errors import BadRequest, NotFound, OverQuota

_LEGACY_DEFAULTS = {"fixed_ips": -1, "floating_ips": 10, "security_groups": 10,
                    "security_group_rules": 20}
_INJECTED = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")


def _visible(call: Call) -> list[str]:
    names = [r for r in quotas.RESOURCES if not (call.version >= "2.57" and r in _INJECTED)]
    if call.version < "2.36":
        names += list(quotas.LEGACY)
    return names


async def _figures(call: Call, project: str, defaults_only: bool = False) -> dict[str, int]:
    deps = call.deps
    if defaults_only:
        async with deps.db.session() as session:
            values = await quotas.class_defaults(session, deps.settings.compute)
    else:
        async with deps.db.session() as session:
            values = await quotas.limits(session, deps.settings.compute, project)
    return {**_LEGACY_DEFAULTS, **values}  # legacy ones only the default class may set


def _target(call: Call) -> tuple[str, dict[str, Any]]:
    project = call.request.path_params["tenant_id"]
    return project, {"project_id": project}


async def quota_show(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    project, target = _target(call)
    call.enforce("os_compute_api:os-quota-sets:show", target)
    suffix = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    values = await _figures(call, project, defaults_only=suffix == "defaults")
    body: dict[str, Any] = {"id": project}
    if suffix == "detail":
        async with deps.db.session() as session:
            used = await quotas.usage(session, project)
            used.update(await quotas.counted_usage(session, project, call.ctx.user_id))
        for name in _visible(call):
            body[name] = {"limit": values[name], "in_use": used.get(name, 0), "reserved": 0}
    else:
        body.update({name: values[name] for name in _visible(call)})
    return ok({"quota_set": body})


async def quota_update(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    project, target = _target(call)
    call.enforce("os_compute_api:os-quota-sets:update", target)
    body = await call.body("quota_set")
    force = bool(body.pop("force", False))
    updates: dict[str, int] = {}
    for name, value in body.items():
        if name not in _visible(call):
            raise BadRequest(f"Unknown quota resource {name!r}")
        if name in quotas.LEGACY:
            continue
        updates[name] = require_int(value, name, -1)
    async with deps.db.session() as session:
        used = await quotas.usage(session, project)
        for name, value in updates.items():
            if not force and 0 <= value < used.get(name, 0):
                raise BadRequest(f"Quota limit {value} for {name} must be greater than or "
                                 f"equal to already used and reserved {used[name]}.")
            row = await session.get(Quota, (project, name))
            if row is None:
                session.add(Quota(project_id=project, resource=name, hard_limit=value))
            else:
                row.hard_limit = value
    values = await _figures(call, project)
    return ok({"quota_set": {name: values[name] for name in _visible(call)}})


async def quota_class_show(deps: Deps, request: Request) -> Response:
    """``os-quota-class-sets/{class}``: only the ``default`` class has an effect (Nova)."""
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    values = await _figures(call, "", defaults_only=True)
    body: dict[str, Any] = {"id": request.path_params["class_name"]}
    body.update({name: values[name] for name in _visible(call)})
    return ok({"quota_class_set": body})


async def quota_class_update(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    body = await call.body("quota_class_set")
    updates: dict[str, int] = {}
    for name, value in body.items():
        if name not in _visible(call):
            raise BadRequest(f"Unknown quota resource {name!r}")
        updates[name] = require_int(value, name, -1)  # legacy ones too, shown before 2.50
    if request.path_params["class_name"] == "default":
        async with deps.db.session() as session:
            for name, value in updates.items():
                row = await session.get(Quota, (quotas.CLASS_DEFAULT, name))
                if row is None:
                    session.add(Quota(project_id=quotas.CLASS_DEFAULT, resource=name,
                                      hard_limit=value))
                else:
                    row.hard_limit = value
    values = await _figures(call, "", defaults_only=True)
    return ok({"quota_class_set": {name: values[name] for name in _visible(call)}})


async def quota_delete(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    project, target = _target(call)
    call.enforce("os_compute_api:os-quota-sets:update", target)
    async with deps.db.session() as session:
        await session.execute(delete(Quota).where(Quota.project_id == project))
    return Response(status_code=202)


async def limits(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    project = call.project_id
    if (other := call.query("tenant_id")) and other != project:
        call.enforce("os_compute_api:os-admin")
        project = other
    values = await _figures(call, project)
    async with deps.db.session() as session:
        used = await quotas.usage(session, project)
        counted = await quotas.counted_usage(session, project, call.ctx.user_id)
    absolute: dict[str, int] = {
        "maxTotalInstances": values["instances"], "maxTotalCores": values["cores"],
        "maxTotalRAMSize": values["ram"], "maxTotalKeypairs": values["key_pairs"],
        "maxServerMeta": values["metadata_items"], "maxServerGroups": values["server_groups"],
        "maxServerGroupMembers": values["server_group_members"],
        "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"],
        "totalRAMUsed": used["ram"], "totalServerGroupsUsed": counted["server_groups"]}
    if call.version < "2.57":
        absolute.update(maxPersonality=values["injected_files"],
                        maxPersonalitySize=values["injected_file_content_bytes"])
    if call.version < "2.39":
        absolute["maxImageMeta"] = values["metadata_items"]
    if call.version < "2.36":
        absolute.update(maxTotalFloatingIps=values["floating_ips"],
                        maxSecurityGroups=values["security_groups"],
                        maxSecurityGroupRules=values["security_group_rules"],
                        totalFloatingIpsUsed=0, totalSecurityGroupsUsed=0)
    return ok({"limits": {"rate": [], "absolute": absolute}})


# --- server groups -----------------------------------------------------------

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


async def _members(call: Call, group: ServerGroup) -> list[str]:
    async with call.deps.db.session() as session:
        return list((await session.execute(select(ServerGroupMember.instance_uuid).join(
            Instance, Instance.uuid == ServerGroupMember.instance_uuid).where(
            ServerGroupMember.group_id == group.id, Instance.deleted.is_(False)))).scalars())


async def _group_view(call: Call, g: ServerGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"id": g.uuid, "name": g.name, "members": await _members(call, g)}
    if call.version >= "2.64":
        out.update(policy=g.policy, rules=dict(g.rules or {}))
    else:
        out.update(policies=[g.policy], metadata={})
    if call.version >= "2.13":
        out.update(project_id=g.project_id, user_id=g.user_id)
    return out


async def groups_index(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-server-groups:read")
    stmt = select(ServerGroup).order_by(ServerGroup.id)
    if not (call.query("all_projects") and call.is_admin):
        stmt = stmt.where(ServerGroup.project_id == call.project_id)
    async with deps.db.session() as session:
        rows = list((await session.execute(stmt)).scalars())
    offset = call.query_int("offset", 0) or 0
    limit = call.query_int("limit")
    rows = rows[offset:offset + limit if limit is not None else None]
    return ok({"server_groups": [await _group_view(call, g) for g in rows]})


async def groups_create(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-server-groups")
    body = await call.body("server_group")
    name = require_str(body, "name")
    rules: dict[str, Any] = {}
    if call.version >= "2.64":
        policy = body.get("policy")
        rules = body.get("rules") or {}
        if not isinstance(rules, dict) or set(rules) - {"max_server_per_host"}:
            raise BadRequest("rules may only hold max_server_per_host")
        if rules and policy != "anti-affinity":
            raise BadRequest("rules are only allowed with the anti-affinity policy")
        if "max_server_per_host" in rules:
            rules["max_server_per_host"] = require_int(rules["max_server_per_host"],
                                                       "max_server_per_host", 1)
    else:
        policies = body.get("policies")
        if not isinstance(policies, list) or len(policies) != 1:
            raise BadRequest("'policies' must be a list with one policy")
        policy = policies[0]
    if policy not in POLICIES:
        raise BadRequest(f"Invalid policy {policy!r}: one of {', '.join(POLICIES)}")
    async with deps.db.session() as session:
        hard = await quotas.limits(session, deps.settings.compute, call.project_id)
        used = await session.scalar(select(func.count()).select_from(ServerGroup).where(
            ServerGroup.project_id == call.project_id))
        if 0 <= hard["server_groups"] <= (used or 0):
            raise OverQuota("Quota exceeded, too many server groups.")
        group = ServerGroup(name=name, policy=policy, rules=rules, project_id=call.project_id,
                            user_id=call.ctx.user_id)
        session.add(group)
    return ok({"server_group": await _group_view(call, group)})


async def _group(call: Call) -> ServerGroup:
    ident = call.request.path_params["group_id"]
    async with call.deps.db.session() as session:
        group = await session.scalar(select(ServerGroup).where(ServerGroup.uuid == ident))
    if group is None or (group.project_id != call.project_id and not call.is_admin):
        raise NotFound(f"Server group {ident} could not be found.")
    return group


async def groups_show(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-server-groups:read")
    return ok({"server_group": await _group_view(call, await _group(call))})


async def groups_delete(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-server-groups")
    group = await _group(call)
    async with deps.db.session() as session:
        await session.execute(delete(ServerGroupMember).where(
            ServerGroupMember.group_id == group.id))
        await session.execute(delete(ServerGroup).where(ServerGroup.id == group.id))
    return Response(status_code=204)
