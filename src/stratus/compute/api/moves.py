"""Server actions that move a server between hosts: resize (+ confirm/revert), cold and
live migration, evacuate. The API validates and claims; the conductor does the moving."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from stratus.compute import quotas
from stratus.compute.api.common import (
    Call,
    accepted,
    begin_action,
    disk_config,
    ok,
    require_bool,
)
from stratus.compute.api.servers import find_flavor
from stratus.compute.flavors import snapshot as flavor_snapshot
from stratus.compute.lifecycle import Action
from stratus.compute.models import Instance, Migration
from stratus.compute.servicegroup import compute_service, is_up
from stratus.compute.states import VmState
from stratus.errors import BadRequest, Conflict


async def resize(call: Call, inst: Instance, body: Any) -> Response:
    if not isinstance(body, dict) or "flavorRef" not in body:
        raise BadRequest("resize needs 'flavorRef'.")
    flavor = await find_flavor(call, body["flavorRef"])
    if flavor.flavorid == inst.flavor.get("flavorid"):
        raise BadRequest("When resizing, instances must change flavor.")
    if flavor.root_gb < int(inst.flavor["disk"]):
        raise BadRequest("Resize to a flavor with a smaller root disk is not allowed.")
    new = flavor_snapshot(flavor)
    if (auto_disk := disk_config(body)) is not None:
        await call.deps.store.update(inst.uuid, auto_disk_config=auto_disk)
    return await _migrate(call, inst, Action.RESIZE, "resize", new, None)


async def _migrate(call: Call, inst: Instance, action: Action, kind: str,
                   new_flavor: dict[str, Any] | None, host: str | None) -> Response:
    deps = call.deps
    deltas = {"cores": 0, "ram": 0}
    if new_flavor:
        deltas = {"cores": max(0, int(new_flavor["vcpus"]) - int(inst.flavor["vcpus"])),
                  "ram": max(0, int(new_flavor["ram"]) - int(inst.flavor["ram"]))}
    if any(deltas.values()):
        await quotas.ensure_rows(deps.db, inst.project_id)
        async with deps.db.session() as session:
            hard = await quotas.limits(session, deps.settings.compute, inst.project_id)
            await quotas.reserve(session, inst.project_id, deltas, hard)
    try:
        await begin_action(call, inst, action, kind, prior_vm_state=inst.vm_state)
    except Exception:
        if any(deltas.values()):
            async with deps.db.session() as session:
                await quotas.release(session, inst.project_id, deltas)
        raise
    migration = await _new_migration(call, inst, "resize" if new_flavor else "migration",
                                     new_flavor)
    await deps.conductor.cast("migrate_server", uuid=inst.uuid, request_id=call.request_id,
                              migration_uuid=migration, spec=request_spec(inst),
                              new_flavor=new_flavor, host=host)
    return accepted()


def request_spec(inst: Instance) -> dict[str, Any]:
    return {"project_id": inst.project_id, "availability_zone": inst.pinned_availability_zone,
            "extra_specs": dict(inst.flavor.get("extra_specs") or {})}


async def _new_migration(call: Call, inst: Instance, kind: str,
                         new_flavor: dict[str, Any] | None, status: str = "pre-migrating"
                         ) -> str:
    mig = Migration(instance_uuid=inst.uuid, project_id=inst.project_id,
                    user_id=call.ctx.user_id, migration_type=kind, status=status,
                    source_compute=inst.host, source_node=inst.node,
                    old_flavor_id=inst.flavor.get("id"),
                    new_flavor_id=(new_flavor or inst.flavor).get("id"))
    async with call.deps.db.session() as session:
        session.add(mig)
    return mig.uuid


async def _finished_migration(call: Call, inst: Instance) -> str:
    async with call.deps.db.session() as session:
        mig = await session.scalar(select(Migration.uuid).where(
            Migration.instance_uuid == inst.uuid, Migration.status == "finished"
        ).order_by(Migration.id.desc()))
    if mig is None:
        raise BadRequest(f"Instance {inst.uuid} has no resize to confirm or revert.")
    return mig


async def confirm_resize(call: Call, inst: Instance, body: Any) -> Response:
    await _settle_resize(call, inst, Action.CONFIRM_RESIZE, "confirmResize", "confirm_resize")
    return ok(None, 204)


async def revert_resize(call: Call, inst: Instance, body: Any) -> Response:
    await _settle_resize(call, inst, Action.REVERT_RESIZE, "revertResize", "revert_resize")
    return accepted()


async def _settle_resize(call: Call, inst: Instance, action: Action, name: str,
                         method: str) -> None:
    """Confirm or revert: only a RESIZED server, with its finished migration."""
    if inst.vm_state != VmState.RESIZED:
        raise Conflict(f"Cannot '{name}' instance {inst.uuid} while it is in vm_state "
                       f"{inst.vm_state}")
    mig = await _finished_migration(call, inst)
    await begin_action(call, inst, action, name)
    await call.deps.conductor.cast(method, uuid=inst.uuid, request_id=call.request_id,
                                   migration_uuid=mig)


async def migrate(call: Call, inst: Instance, body: Any) -> Response:
    call.enforce("os_compute_api:servers:admin_action")
    host = body.get("host") if isinstance(body, dict) else None
    if host is not None and (call.version < "2.56" or not isinstance(host, str)):
        raise BadRequest("'host' needs microversion 2.56 or later and must be a string.")
    await check_host(call, host)
    return await _migrate(call, inst, Action.MIGRATE, "migrate", None, host)


async def check_host(call: Call, host: str | None) -> None:
    if host is not None and await compute_service(call.deps.db, host) is None:
        raise BadRequest(f"Compute host {host} could not be found.")


async def live_migrate(call: Call, inst: Instance, body: Any) -> Response:
    call.enforce("os_compute_api:servers:admin_action")
    if not isinstance(body, dict) or "host" not in body:
        raise BadRequest("os-migrateLive needs 'host' (null to let the scheduler choose).")
    host = body.get("host")
    if host is not None and not isinstance(host, str):
        raise BadRequest("Invalid host.")
    block = body.get("block_migration", "auto" if call.version >= "2.25" else False)
    if block == "auto" and call.version >= "2.25":
        block = None  # the destination decides: block unless it shares the storage
    else:
        block = require_bool(block, "block_migration")
    await check_host(call, host)
    await begin_action(call, inst, Action.LIVE_MIGRATE, "live-migration")
    mig = await _new_migration(call, inst, "live-migration", None, status="queued")
    await call.deps.conductor.cast("live_migrate", uuid=inst.uuid, request_id=call.request_id,
                                   migration_uuid=mig, spec=request_spec(inst), host=host,
                                   block_migration=block, token=call.ctx.token)
    return accepted()


async def evacuate(call: Call, inst: Instance, body: Any) -> Response:
    call.enforce("os_compute_api:servers:admin_action")
    body = body if isinstance(body, dict) else {}
    host = body.get("host")
    if host is not None and not isinstance(host, str):
        raise BadRequest("Invalid host.")
    await check_host(call, host)
    svc = await compute_service(call.deps.db, inst.host or "")
    if svc is not None and is_up(svc, call.deps.settings.compute.service_down_time):
        raise Conflict(f"Compute service of {inst.host} is still in use; evacuate needs it "
                       "down (stopped, or forced down).")
    if host is not None and host == inst.host:
        raise BadRequest("The target host is the instance's current host.")
    await begin_action(call, inst, Action.EVACUATE, "evacuate")
    mig = await _new_migration(call, inst, "evacuation", None, status="accepted")
    await call.deps.conductor.cast("evacuate", uuid=inst.uuid, request_id=call.request_id,
                                   migration_uuid=mig, spec=request_spec(inst), host=host,
                                   token=call.ctx.token)
    if call.version < "2.14":
        return ok({"adminPass": body.get("adminPass") or secrets.token_urlsafe(9)})
    return Response(status_code=200)
