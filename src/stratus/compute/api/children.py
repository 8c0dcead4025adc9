"""Per-server sub-resources: metadata, tags, instance actions, migrations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from starlette.requests import Request
from starlette.responses import Response

from stratus.compute import network, quotas
from stratus.compute.api.common import Call, Deps, check_metadata, ok
from stratus.compute.api.servers import TAG_RE
from stratus.compute.api.views import migration as migration_view
from stratus.compute.api.views import ts_micro
from stratus.compute.models import (
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceTag,
    Migration,
)
from stratus.errors import BadRequest, Conflict, NotFound, OverQuota

# --- metadata ---------------------------------------------------------------


async def metadata(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    key = request.path_params.get("key")
    write = request.method != "GET"
    inst = await call.instance(request.path_params["server_id"],
                               "os_compute_api:server-metadata" if write
                               else "os_compute_api:server-metadata:read")
    meta = dict(inst.metadata_ or {})
    if not write:
        if key is None:
            return ok({"metadata": meta})
        if key not in meta:
            raise NotFound(f"Metadata item {key} was not found")
        return ok({"meta": {key: meta[key]}})
    call.check_lock(inst, "update metadata")
    if inst.task_state in ("deleting",):
        raise Conflict(f"Instance {inst.uuid} is being deleted.")
    if request.method == "DELETE":
        if key not in meta:
            raise NotFound(f"Metadata item {key} was not found")
        meta.pop(key)
        await deps.store.update(inst.uuid, metadata_=meta)
        return Response(status_code=204)
    body = await call.body()
    if key is not None:
        item = body.get("meta")
        if not isinstance(item, dict) or len(item) != 1:
            raise BadRequest("The body must hold exactly one item under 'meta'.")
        if key not in item:
            raise BadRequest("Request body and URI mismatch")
        new = check_metadata(item, "meta")
        meta.update(new)
        result: dict[str, Any] = {"meta": new}
    else:
        new = check_metadata(body.get("metadata"), "metadata")
        meta = new if request.method == "PUT" else {**meta, **new}
        result = {"metadata": meta}
    async with deps.db.session() as session:
        hard = await quotas.limits(session, deps.settings.compute, inst.project_id)
    if 0 <= hard["metadata_items"] < len(meta):
        raise OverQuota(f"Quota exceeded for metadata_items: {len(meta)} of "
                        f"{hard['metadata_items']}")
    await deps.store.update(inst.uuid, metadata_=meta)
    return ok(result)


# --- tags (2.26) ------------------------------------------------------------


async def _tags(call: Call, inst: Instance) -> list[str]:
    async with call.deps.db.session() as session:
        return sorted((await session.execute(select(InstanceTag.tag).where(
            InstanceTag.instance_uuid == inst.uuid))).scalars())


def _need_226(call: Call) -> None:
    if call.version < "2.26":
        raise NotFound("Server tags need microversion 2.26 or later.")


async def tags(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    _need_226(call)
    write = request.method != "GET"
    inst = await call.instance(request.path_params["server_id"],
                               "os_compute_api:servers:update" if write
                               else "os_compute_api:servers:show")
    tag = request.path_params.get("tag")
    current = await _tags(call, inst)
    if not write:
        if tag is None:
            return ok({"tags": current})
        if tag not in current:
            raise NotFound(f"Tag {tag} not found on instance {inst.uuid}")
        return Response(status_code=204)
    async with deps.db.session() as session:
        if request.method == "DELETE":
            if tag is None:
                await session.execute(delete(InstanceTag).where(
                    InstanceTag.instance_uuid == inst.uuid))
                return Response(status_code=204)
            if tag not in current:
                raise NotFound(f"Tag {tag} not found on instance {inst.uuid}")
            await session.execute(delete(InstanceTag).where(
                InstanceTag.instance_uuid == inst.uuid, InstanceTag.tag == tag))
            return Response(status_code=204)
        if tag is not None:
            if not TAG_RE.match(tag):
                raise BadRequest(f"Invalid tag {tag!r}")
            if tag in current:
                return Response(status_code=204)
            if len(current) >= 50:
                raise BadRequest("An instance has at most 50 tags.")
            session.add(InstanceTag(instance_uuid=inst.uuid, tag=tag))
            location = f"{call.base}/servers/{inst.uuid}/tags/{tag}"
            return Response(status_code=201, headers={"Location": location})
        body = await call.body()
        new = body.get("tags")
        if not isinstance(new, list) or len(new) > 50 or not all(
                isinstance(t, str) and TAG_RE.match(t) for t in new):
            raise BadRequest("'tags' must be a list of at most 50 valid tags.")
        await session.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid))
        for t in dict.fromkeys(new):
            session.add(InstanceTag(instance_uuid=inst.uuid, tag=t))
    return ok({"tags": sorted(dict.fromkeys(new))})


# --- instance actions ---------------------------------------------------------


def _action_view(call: Call, a: InstanceAction) -> dict[str, Any]:
    out: dict[str, Any] = {"action": a.action, "instance_uuid": a.instance_uuid,
                           "request_id": a.request_id, "user_id": a.user_id,
                           "project_id": a.project_id, "start_time": ts_micro(a.start_time),
                           "message": a.message}
    if call.version >= "2.58":
        out["updated_at"] = ts_micro(a.updated_at)
    return out


async def _instance_any(call: Call) -> Instance:
    uuid = call.request.path_params["server_id"]
    async with call.deps.db.session() as session:
        inst = await session.scalar(select(Instance).where(Instance.uuid == uuid))
    visible = inst is not None and (not inst.deleted or call.version >= "2.21")
    if not visible or not call.allowed("os_compute_api:os-instance-actions",
                                       {"project_id": inst.project_id if inst else ""}):
        raise NotFound(f"Instance {uuid} could not be found.")
    assert inst is not None
    return inst


async def actions_index(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await _instance_any(call)
    async with deps.db.session() as session:
        rows = list((await session.execute(select(InstanceAction).where(
            InstanceAction.instance_uuid == inst.uuid).order_by(
            InstanceAction.start_time.desc(), InstanceAction.id.desc()))).scalars())
    if call.version >= "2.58":
        if (marker := call.query("marker")) is not None:
            ids = [a.request_id for a in rows]
            if marker not in ids:
                raise BadRequest(f"Marker {marker} could not be found.")
            rows = rows[ids.index(marker) + 1:]
        if (limit := call.query_int("limit")) is not None:
            rows = rows[:limit]
    return ok({"instanceActions": [_action_view(call, a) for a in rows]})


async def actions_show(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await _instance_any(call)
    request_id = request.path_params["request_id"]
    async with deps.db.session() as session:
        action = await session.scalar(select(InstanceAction).where(
            InstanceAction.instance_uuid == inst.uuid, InstanceAction.request_id == request_id
        ).order_by(InstanceAction.id.desc()))
        if action is None:
            raise NotFound(f"Action for request_id {request_id} on instance {inst.uuid} not "
                           "found")
        events = list((await session.execute(select(InstanceActionEvent).where(
            InstanceActionEvent.action_id == action.id).order_by(InstanceActionEvent.id)
        )).scalars())
    view = _action_view(call, action)
    show_events = call.version >= "2.51" or call.allowed(
        "os_compute_api:os-instance-actions:events")
    if show_events:
        admin = call.allowed("os_compute_api:os-instance-actions:events")
        out = []
        for e in events:
            ev: dict[str, Any] = {"event": e.event, "start_time": ts_micro(e.start_time),
                                  "finish_time": ts_micro(e.finish_time), "result": e.result}
            if admin:
                ev["traceback"] = e.traceback
            if call.version >= "2.62":
                if admin:
                    ev["host"] = e.host or ""
                import hashlib

                ev["hostId"] = hashlib.sha224((inst.project_id + (e.host or "")).encode()
                                              ).hexdigest() if e.host else ""
            if call.version >= "2.84":
                ev["details"] = e.details
            out.append(ev)
        view["events"] = out
    return ok({"instanceAction": view})


# --- servers/{id}/migrations (2.22+) ---------------------------------------------


_IN_PROGRESS = ("queued", "preparing", "running")
_SHOWN = (*_IN_PROGRESS, "post-migrating")  # what GET .../migrations/{id} still shows


async def server_migrations(deps: Deps, request: Request) -> Response:
    """Live migrations in progress (2.23+: list, show), abort one (2.24+: DELETE).

    As Nova: abort needs the server migrating (409), the migration to be this
    server's (404) and running (400; from 2.65 also queued or preparing)."""
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    if call.version < ("2.24" if request.method == "DELETE" else "2.23"):
        raise NotFound("Server migrations need microversion 2.23 (abort: 2.24) or later.")
    inst = await call.instance(request.path_params["server_id"])
    mid = request.path_params.get("migration_id")
    if request.method == "DELETE":
        call.check_lock(inst, "abort live migration")
        if inst.task_state != "migrating":
            raise Conflict(f"Cannot 'abort live migration' instance {inst.uuid} while it is "
                           f"in task_state {inst.task_state}")
        mig = await _live_migration(call, inst.uuid, mid or "")
        if mig is None:
            raise NotFound(f"Migration {mid} not found for instance {inst.uuid}")
        allowed = _IN_PROGRESS if call.version >= "2.65" else ("running",)
        if mig.status not in allowed:
            raise BadRequest(f"Migration {mid} state of instance {inst.uuid} is "
                             f"{mig.status}. Cannot abort live migration while the "
                             "migration is in this state.")
        await deps.agents.cast(mig.source_compute or "", "live_migration_abort",
                               uuid=inst.uuid, migration_uuid=mig.uuid)
        return Response(status_code=202)
    async with deps.db.session() as session:
        stmt = select(Migration).where(Migration.instance_uuid == inst.uuid,
                                       Migration.migration_type == "live-migration",
                                       Migration.status.in_(_IN_PROGRESS if mid is None
                                                            else _SHOWN))
        if mid is not None:
            stmt = stmt.where(Migration.id == int(mid) if mid.isdigit() else False)
        rows = list((await session.execute(stmt)).scalars())
    if mid is not None and not rows:
        raise NotFound(f"In-progress live migration {mid} is not found for server "
                       f"{inst.uuid}.")
    views = []
    for m in rows:
        v = {k: val for k, val in migration_view(m, call.base, call.version).items()
             if k not in ("links", "old_instance_type_id", "new_instance_type_id",
                          "migration_type", "instance_uuid")}
        v["server_uuid"] = m.instance_uuid
        for name in ("memory_total", "memory_processed", "memory_remaining", "disk_total",
                     "disk_processed", "disk_remaining"):
            v[f"{name}_bytes"] = getattr(m, name)
        views.append(v)
    if mid is not None:
        return ok({"migration": views[0]})
    return ok({"migrations": views})


async def _live_migration(call: Call, uuid: str, mid: str) -> Migration | None:
    """This server's migration MID (any type, as Nova looks it up), or None."""
    if not mid.isdigit():
        return None
    async with call.deps.db.session() as session:
        return await session.scalar(select(Migration).where(
            Migration.instance_uuid == uuid, Migration.id == int(mid)))


async def migration_action(deps: Deps, request: Request) -> Response:
    """``force_complete`` (2.22+): make a running live migration converge now.

    As Nova: the server must be ACTIVE and migrating (409); a migration that is
    not this server's, or not running, is a 400."""
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    if call.version < "2.22":
        raise NotFound("Forcing a live migration to complete needs microversion 2.22.")
    inst = await call.instance(request.path_params["server_id"])
    body = await call.body()
    if not isinstance(body, dict) or set(body) != {"force_complete"} \
            or body["force_complete"] is not None:
        raise BadRequest("The only migration action is 'force_complete' (null).")
    mid = request.path_params["migration_id"]
    call.check_lock(inst, "force_complete")
    if inst.vm_state != "active" or inst.task_state != "migrating":
        raise Conflict(f"Cannot 'force_complete' instance {inst.uuid} while it is in "
                       f"vm_state {inst.vm_state}, task_state {inst.task_state}")
    mig = await _live_migration(call, inst.uuid, mid)
    if mig is None:
        raise BadRequest(f"Migration {mid} not found for instance {inst.uuid}")
    if mig.status != "running":
        raise BadRequest(f"Migration {mid} state of instance {inst.uuid} is {mig.status}. "
                         "Cannot force complete while the migration is in this state.")
    await deps.agents.cast(mig.source_compute or "", "live_migration_force_complete",
                           uuid=inst.uuid)
    return Response(status_code=202)


# --- ips (addresses by network) ---------------------------------------------


async def ips(deps: Deps, request: Request) -> Response:
    """``GET /servers/{id}/ips[/{network_label}]``: the server's addresses, basic view."""
    call = Call(deps, request)
    label = request.path_params.get("network_label")
    inst = await call.instance(request.path_params["server_id"],
                               "os_compute_api:ips:show" if label else "os_compute_api:ips:index")
    vifs = (await network.cached(deps.db, [inst.uuid])).get(inst.uuid, [])
    nets = {net: [{"version": a["version"], "addr": a["addr"]} for a in entries]
            for net, entries in network.addresses(list(vifs)).items()}
    if label is None:
        return ok({"addresses": nets})
    if label not in nets:
        raise NotFound("Instance is not a member of specified network")
    return ok({label: nets[label]})
