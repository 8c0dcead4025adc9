"""``GET /servers[/detail]``: filters, sorting and marker paging, as Nova does them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from starlette.responses import Response

from stratus.compute import network
from stratus.compute.api.common import Call, ok, require_bool
from stratus.compute.api.views import ServerContext, server, server_brief
from stratus.compute.models import (
    Instance,
    InstanceFault,
    InstanceTag,
    ServerGroup,
    ServerGroupMember,
)
from stratus.compute.states import STATUS_TO_VM_STATES, TaskState
from stratus.errors import BadRequest

MAX_LIMIT = 1000
SORT_KEYS = {
    "created_at": Instance.created_at, "updated_at": Instance.updated_at,
    "display_name": Instance.name, "name": Instance.name, "uuid": Instance.uuid,
    "id": Instance.id, "vm_state": Instance.vm_state, "task_state": Instance.task_state,
    "power_state": Instance.power_state, "host": Instance.host, "node": Instance.node,
    "availability_zone": Instance.availability_zone, "key_name": Instance.key_name,
    "launched_at": Instance.launched_at, "terminated_at": Instance.terminated_at,
    "hostname": Instance.hostname, "project_id": Instance.project_id,
    "user_id": Instance.user_id, "locked": Instance.locked,
    "display_description": Instance.description, "image_ref": Instance.image_ref,
}
ADMIN_SORT_KEYS = {"host", "node"}


def _parse_time(raw: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise BadRequest(f"Invalid {name} value {raw!r}: not an ISO 8601 time.") from None


def _tags(raw: str | None) -> list[str]:
    return [t for t in (raw or "").split(",") if t]


def _filters(call: Call, stmt: Select[Any]) -> Select[Any]:
    q = call.request.query_params
    admin = call.is_admin
    all_tenants = "all_tenants" in q and (q.get("all_tenants") in ("", None)
                                          or require_bool(q.get("all_tenants"), "all_tenants"))
    if all_tenants:
        call.enforce("os_compute_api:servers:index:get_all_tenants")
    project = q.get("project_id") or q.get("tenant_id")
    if not all_tenants:  # as Nova (lp#1185290): tenant_id means nothing without all_tenants
        stmt = stmt.where(Instance.project_id == call.project_id)
    elif project and admin:
        stmt = stmt.where(Instance.project_id == project)
    deleted = q.get("deleted")
    if deleted is not None and admin and require_bool(deleted, "deleted"):
        stmt = stmt.where(Instance.deleted.is_(True))
    elif "changes-since" not in q:
        stmt = stmt.where(Instance.deleted.is_(False))
    if (name := q.get("name")) is not None:
        try:
            pattern = re.compile(name)
        except re.error:
            raise BadRequest(f"Invalid name filter {name!r}: not a regular expression.") \
                from None
        call.request.state.name_filter = pattern
    for key in ("ip", "ip6"):
        if (raw := q.get(key)) is not None:
            try:
                setattr(call.request.state, f"{key}_filter", re.compile(raw))
            except re.error:
                raise BadRequest(f"Invalid {key} filter {raw!r}: not a regular expression.") \
                    from None
    for status in q.getlist("status"):
        status = status.upper()
        vm_states = STATUS_TO_VM_STATES.get(status)
        if vm_states is None and status not in ("REBOOT", "HARD_REBOOT", "RESIZE", "MIGRATING",
                                                "REBUILD", "PASSWORD", "REVERT_RESIZE"):
            return stmt.where(False)
        if vm_states is not None:
            stmt = stmt.where(Instance.vm_state.in_([v.value for v in vm_states]))
        elif status == "REBOOT":
            stmt = stmt.where(Instance.task_state.in_(["rebooting", "reboot_pending",
                                                       "reboot_started"]))
        elif status == "HARD_REBOOT":
            stmt = stmt.where(Instance.task_state.in_(["rebooting_hard", "reboot_pending_hard",
                                                       "reboot_started_hard"]))
        elif status == "MIGRATING":
            stmt = stmt.where(Instance.task_state == TaskState.MIGRATING.value)
        elif status == "RESIZE":
            stmt = stmt.where(Instance.task_state.like("resize_%"))
        elif status == "REBUILD":
            stmt = stmt.where(Instance.task_state.like("rebuild%"))
    simple = {"image": Instance.image_ref, "key_name": Instance.key_name,
              "availability_zone": Instance.availability_zone,
              "reservation_id": Instance.reservation_id, "vm_state": Instance.vm_state,
              "task_state": Instance.task_state, "user_id": Instance.user_id,
              "hostname": Instance.hostname}
    if admin:
        simple.update(host=Instance.host, node=Instance.node)
    for key, column in simple.items():
        if (value := q.get(key)) is not None:
            stmt = stmt.where(column == value.rstrip("/").rsplit("/", 1)[-1]
                              if key == "image" else column == value)
    if (flavor := q.get("flavor")) is not None:
        call.request.state.flavor_filter = flavor.rstrip("/").rsplit("/", 1)[-1]
    if (locked := q.get("locked")) is not None:
        stmt = stmt.where(Instance.locked.is_(require_bool(locked, "locked")))
    if (since := q.get("changes-since")) is not None:
        stmt = stmt.where(Instance.updated_at >= _parse_time(since, "changes-since"))
    if (before := q.get("changes-before")) is not None:
        stmt = stmt.where(Instance.updated_at <= _parse_time(before, "changes-before"))
    tag_q = select(InstanceTag.instance_uuid)
    tags = _tags(q.get("tags"))
    for tag in tags:
        stmt = stmt.where(Instance.uuid.in_(tag_q.where(InstanceTag.tag == tag)))
    if any_tags := _tags(q.get("tags-any")):
        stmt = stmt.where(Instance.uuid.in_(tag_q.where(InstanceTag.tag.in_(any_tags))))
    if not_tags := _tags(q.get("not-tags")):
        clauses = [Instance.uuid.in_(tag_q.where(InstanceTag.tag == t)) for t in not_tags]
        stmt = stmt.where(~and_(*clauses))
    if not_any := _tags(q.get("not-tags-any")):
        stmt = stmt.where(~Instance.uuid.in_(tag_q.where(InstanceTag.tag.in_(not_any))))
    return stmt


async def _by_address(call: Call, rows: list[Instance]) -> list[Instance]:
    """Nova's ``ip``/``ip6`` filters: a regular expression searched in the fixed and
    floating addresses of the given IP version."""
    wanted = [(4, getattr(call.request.state, "ip_filter", None)),
              (6, getattr(call.request.state, "ip6_filter", None))]
    wanted = [(v, p) for v, p in wanted if p is not None]
    if not wanted or not rows:
        return rows
    cached = await network.cached(call.deps.db, [r.uuid for r in rows])

    def matches(inst: Instance) -> bool:
        addrs = [a for ips in network.addresses(list(cached.get(inst.uuid, []))).values()
                 for a in ips]
        return all(any(a["version"] == v and p.search(a["addr"]) for a in addrs)
                   for v, p in wanted)

    return [r for r in rows if matches(r)]


def _sort(call: Call) -> list[tuple[str, bool]]:
    q = call.request.query_params
    keys = q.getlist("sort_key")
    dirs = q.getlist("sort_dir")
    out = []
    for i, key in enumerate(keys):
        if key not in SORT_KEYS or (key in ADMIN_SORT_KEYS and not call.is_admin):
            raise BadRequest(f"Invalid sort_key {key!r}.")
        direction = dirs[i] if i < len(dirs) else (dirs[-1] if dirs else "desc")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort_dir {direction!r}: use asc or desc.")
        out.append((key, direction == "desc"))
    if not out:
        out = [("created_at", True)]
    out.append(("id", out[0][1]))
    return out


async def list_servers(call: Call, *, detail: bool) -> Response:
    call.enforce("os_compute_api:servers:index")
    limit = call.query_int("limit", MAX_LIMIT)
    assert limit is not None
    limit = min(limit, MAX_LIMIT)
    marker = call.query("marker")
    sort = _sort(call)
    stmt = _filters(call, select(Instance))
    order = [(SORT_KEYS[k].desc() if desc else SORT_KEYS[k].asc()) for k, desc in sort]
    async with call.deps.db.session() as session:
        if marker:
            ref = await session.scalar(select(Instance).where(Instance.uuid == marker))
            if ref is None:
                raise BadRequest(f"marker [{marker}] not found")
            stmt = stmt.where(_after(ref, sort))
        rows = list((await session.execute(stmt.order_by(*order))).scalars())
        name_re = getattr(call.request.state, "name_filter", None)
        flavor = getattr(call.request.state, "flavor_filter", None)
        if name_re is not None:
            rows = [r for r in rows if name_re.search(r.name)]
        if flavor is not None:
            rows = [r for r in rows if r.flavor.get("flavorid") == flavor]
        rows = await _by_address(call, rows)
        more = len(rows) > limit
        rows = rows[:limit]
        page: list[dict[str, Any]] = []
        if detail and rows:
            uuids = [r.uuid for r in rows]
            faults: dict[str, InstanceFault] = {}
            for f in (await session.execute(select(InstanceFault).where(
                    InstanceFault.instance_uuid.in_(uuids)).order_by(InstanceFault.id))
                      ).scalars():
                faults[f.instance_uuid] = f
            tags: dict[str, list[str]] = {}
            for t in (await session.execute(select(InstanceTag).where(
                    InstanceTag.instance_uuid.in_(uuids)))).scalars():
                tags.setdefault(t.instance_uuid, []).append(t.tag)
            groups = dict((await session.execute(select(
                ServerGroupMember.instance_uuid, ServerGroup.uuid).join(
                ServerGroup, ServerGroup.id == ServerGroupMember.group_id).where(
                ServerGroupMember.instance_uuid.in_(uuids)))).all())
    admin = call.is_admin
    vifs = await network.cached(call.deps.db, [i.uuid for i in rows]) if detail else {}
    for inst in rows:
        if detail:
            ctx = ServerContext(call.base, call.version, admin, faults.get(inst.uuid),
                                tuple(sorted(tags.get(inst.uuid, []))), groups.get(inst.uuid),
                                vifs=tuple(vifs.get(inst.uuid, ())))
            page.append(server(inst, ctx, in_list=True))
        else:
            page.append(server_brief(inst, ServerContext(call.base, call.version, admin)))
    body: dict[str, Any] = {"servers": page}
    if rows and (more or (len(rows) == limit and call.query("limit") is not None)):
        path = "servers/detail" if detail else "servers"
        query = [(k, v) for k, v in call.request.query_params.multi_items() if k != "marker"]
        query.append(("marker", rows[-1].uuid))
        from urllib.parse import urlencode

        body["servers_links"] = [{"rel": "next",
                                  "href": f"{call.base}/{path}?{urlencode(query)}"}]
    return ok(body)


def _after(ref: Instance, sort: list[tuple[str, bool]]) -> Any:
    """Rows strictly after ``ref`` in the (multi-key) sort order: keyset paging."""
    clauses = []
    for i, (key, desc) in enumerate(sort):
        col = SORT_KEYS[key]
        value = getattr(ref, col.key)
        eq = [SORT_KEYS[k] == getattr(ref, SORT_KEYS[k].key) for k, _ in sort[:i]]
        if value is None:
            cmp = col.is_not(None) if not desc else None
        else:
            cmp = (col < value) if desc else (col > value)
            if desc:
                cmp = or_(cmp, col.is_(None))
        if cmp is None:
            continue
        clauses.append(and_(*eq, cmp))
    return or_(*clauses) if clauses else False
