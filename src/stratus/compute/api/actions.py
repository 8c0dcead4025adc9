"""``POST /servers/{id}/action``: one handler per action, in one table.

Each handler validates its body, claims the action with the table's first
task_state (409 naming the state otherwise), records the instance action,
and hands the work to the agent (host-local) or the conductor (multi-host).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stratus.compute.api import consoles, floatingips, legacy, moves, secgroups
from stratus.compute.api.common import (
    Call,
    Deps,
    accepted,
    begin_action,
    disk_config,
    ok,
    require_int,
    require_str,
)
from stratus.compute.api.moves import check_host, request_spec
from stratus.compute.api.servers import context_for, delete_instance, find_image
from stratus.compute.api.views import server
from stratus.compute.images import inherited_properties
from stratus.compute.lifecycle import Action
from stratus.compute.models import Instance
from stratus.compute.states import VmState
from stratus.errors import BadRequest, Conflict, NotFound

Handler = Callable[[Call, Instance, Any], Awaitable[Response]]


async def _to_agent(call: Call, inst: Instance, action: Action, method: str,
                    name: str | None = None, **kwargs: Any) -> Response:
    await begin_action(call, inst, action, name)
    await call.deps.agents.cast(inst.host or "", method, uuid=inst.uuid,
                                request_id=call.request_id, **kwargs)
    return accepted()


async def start(call: Call, inst: Instance, body: Any) -> Response:
    return await _to_agent(call, inst, Action.START, "start_instance", "start")


async def stop(call: Call, inst: Instance, body: Any) -> Response:
    return await _to_agent(call, inst, Action.STOP, "stop_instance", "stop")


async def reboot(call: Call, inst: Instance, body: Any) -> Response:
    kind = (body or {}).get("type") if isinstance(body, dict) else None
    if not isinstance(kind, str) or kind.upper() not in ("SOFT", "HARD"):
        raise BadRequest("Invalid reboot type: 'type' must be SOFT or HARD.")
    hard = kind.upper() == "HARD"
    return await _to_agent(call, inst, Action.REBOOT_HARD if hard else Action.REBOOT_SOFT,
                           "reboot_instance", "reboot", hard=hard)


def _simple(action: Action, method: str) -> Handler:
    async def handler(call: Call, inst: Instance, body: Any) -> Response:
        return await _to_agent(call, inst, action, method, action.value)
    return handler


async def lock(call: Call, inst: Instance, body: Any) -> Response:
    reason = None
    if isinstance(body, dict) and "locked_reason" in body:
        if call.version < "2.73":
            raise BadRequest("locked_reason needs microversion 2.73 or later.")
        reason = require_str(body, "locked_reason", allow_empty=True)
    await call.deps.store.update(inst.uuid, locked=True,
                                 locked_by="admin" if call.is_admin else "owner",
                                 locked_reason=reason)
    await call.deps.store.record_action(inst.uuid, "lock", call.request_id, call.project_id,
                                        call.ctx.user_id)
    return accepted()


async def unlock(call: Call, inst: Instance, body: Any) -> Response:
    if inst.locked and inst.locked_by == "admin" and not call.is_admin:
        call.enforce("os_compute_api:os-lock-server:unlock:unlock_override")
    await call.deps.store.update(inst.uuid, locked=False, locked_by=None, locked_reason=None)
    await call.deps.store.record_action(inst.uuid, "unlock", call.request_id, call.project_id,
                                        call.ctx.user_id)
    return accepted()


async def create_image(call: Call, inst: Instance, body: Any) -> Response:
    if not isinstance(body, dict):
        raise BadRequest("createImage needs an object with 'name'.")
    name = require_str(body, "name")
    from stratus.compute.api.common import check_metadata

    meta = check_metadata(body.get("metadata", {}))
    await begin_action(call, inst, Action.SNAPSHOT, "createImage")
    try:
        image = await call.deps.images.create(call.ctx.token, {
            **await _inherited(call, inst),
            "name": name, "disk_format": "qcow2", "container_format": "bare",
            "visibility": "private", "instance_uuid": inst.uuid, "image_type": "snapshot",
            "base_image_ref": inst.image_ref or "", **meta})
    except Exception:
        await call.deps.store.update(inst.uuid, task_state=None)
        raise
    await call.deps.agents.cast(inst.host or "", "snapshot_instance", uuid=inst.uuid,
                                request_id=call.request_id, token=call.ctx.token,
                                image_id=image["id"])
    headers = {"Location": f"{call.base.rsplit('/v2.1', 1)[0]}/images/{image['id']}"}
    if call.version >= "2.45":
        return ok({"image_id": image["id"]}, 202, headers)
    return Response(status_code=202, headers=headers)


async def _inherited(call: Call, inst: Instance) -> dict[str, Any]:
    """The properties of the server's image that its snapshots keep (Nova's rules, see
    :func:`inherited_properties`), so a server booted from a snapshot or unshelved
    boots as the original did (its kernel directly, the same disk bus, ...). Like
    Nova's ``image_*`` system metadata, they were saved with the server when it was
    built or rebuilt (``image_meta``); a server from before that reads its image."""
    saved = (inst.request_spec or {}).get("image_meta")
    if saved is not None:
        return dict(saved)
    image = None
    if inst.image_ref:
        try:
            image = await call.deps.images.show(call.ctx.token, inst.image_ref)
        except Exception:  # noqa: BLE001 - a snapshot does not need its base image
            image = None
    return inherited_properties(image)


async def create_backup(call: Call, inst: Instance, body: Any) -> Response:
    if not isinstance(body, dict):
        raise BadRequest("createBackup needs name, backup_type and rotation.")
    name = require_str(body, "name")
    backup_type = require_str(body, "backup_type")
    rotation = require_int(body.get("rotation"), "rotation", 0)
    await begin_action(call, inst, Action.BACKUP, "createBackup")
    try:
        image = await call.deps.images.create(call.ctx.token, {
            **await _inherited(call, inst),
            "name": name, "disk_format": "qcow2", "container_format": "bare",
            "visibility": "private", "instance_uuid": inst.uuid, "image_type": "backup",
            "backup_type": backup_type, "base_image_ref": inst.image_ref or ""})
    except Exception:
        await call.deps.store.update(inst.uuid, task_state=None)
        raise
    await call.deps.agents.cast(inst.host or "", "snapshot_instance", uuid=inst.uuid,
                                request_id=call.request_id, token=call.ctx.token,
                                image_id=image["id"], backup=True, backup_type=backup_type,
                                rotation=rotation)
    headers = {"Location": f"{call.base.rsplit('/v2.1', 1)[0]}/images/{image['id']}"}
    if call.version >= "2.45":
        return ok({"image_id": image["id"]}, 202, headers)
    return Response(status_code=202, headers=headers)


async def shelve(call: Call, inst: Instance, body: Any) -> Response:
    await begin_action(call, inst, Action.SHELVE, "shelve")
    image_id = None
    try:
        image = await call.deps.images.create(call.ctx.token, {
            **await _inherited(call, inst),
            "name": f"{inst.name}-shelved", "disk_format": "qcow2", "container_format": "bare",
            "visibility": "private", "instance_uuid": inst.uuid, "image_type": "snapshot",
            "base_image_ref": inst.image_ref or ""})
        image_id = image["id"]
    except Exception:  # noqa: BLE001 - shelve without an image still frees the host
        image_id = None
    await call.deps.agents.cast(inst.host or "", "shelve_instance", uuid=inst.uuid,
                                request_id=call.request_id, token=call.ctx.token,
                                image_id=image_id)
    return accepted()


async def shelve_offload(call: Call, inst: Instance, body: Any) -> Response:
    call.enforce("os_compute_api:servers:admin_action")
    return await _to_agent(call, inst, Action.SHELVE_OFFLOAD, "shelve_offload_instance",
                           "shelveOffload")


async def unshelve(call: Call, inst: Instance, body: Any) -> Response:
    body = body if isinstance(body, dict) else {}
    az = body.get("availability_zone")
    host = body.get("host")
    if host is not None:
        call.enforce("os_compute_api:servers:admin_action")
        await check_host(call, host)
    if (az is not None or host is not None) and inst.vm_state != VmState.SHELVED_OFFLOADED:
        raise Conflict(f"Cannot choose a destination for instance {inst.uuid} in vm_state "
                       f"{inst.vm_state}; only shelved_offloaded servers move.")
    await begin_action(call, inst, Action.UNSHELVE, "unshelve")
    spec = {**request_spec(inst), **({"availability_zone": az} if az else {})}
    await call.deps.conductor.cast("unshelve", uuid=inst.uuid, request_id=call.request_id,
                                   spec=spec, host=host, token=call.ctx.token)
    return accepted()


async def rescue(call: Call, inst: Instance, body: Any) -> Response:
    body = body if isinstance(body, dict) else {}
    image_id = None
    if body.get("rescue_image_ref"):
        image_id = (await find_image(call, body["rescue_image_ref"]))["id"]
    password = body.get("adminPass") or secrets.token_urlsafe(9)
    await begin_action(call, inst, Action.RESCUE, "rescue")
    await call.deps.agents.cast(inst.host or "", "rescue_instance", uuid=inst.uuid,
                                request_id=call.request_id, token=call.ctx.token,
                                image_id=image_id)
    return ok({"adminPass": password})


async def rebuild(call: Call, inst: Instance, body: Any) -> Response:
    if not isinstance(body, dict) or "imageRef" not in body:
        raise BadRequest("rebuild needs 'imageRef'.")
    image = await find_image(call, body["imageRef"])
    values: dict[str, Any] = {}
    if (auto_disk := disk_config(body, image)) is not None:
        values["auto_disk_config"] = auto_disk
    if "name" in body:
        values["name"] = require_str(body, "name")
    if "metadata" in body:
        from stratus.compute.api.common import check_metadata

        values["metadata_"] = check_metadata(body["metadata"])
    if "description" in body and call.version >= "2.19":
        values["description"] = require_str(body, "description", required=False,
                                            allow_empty=True)
    if body.get("user_data") is not None and call.version >= "2.57":
        values["user_data"] = body["user_data"]
    values["request_spec"] = {**(inst.request_spec or {}),
                              "image_meta": inherited_properties(image)}
    await begin_action(call, inst, Action.REBUILD, "rebuild", image_ref=image["id"], **values)
    await call.deps.agents.cast(inst.host or "", "rebuild_instance", uuid=inst.uuid,
                                request_id=call.request_id, token=call.ctx.token,
                                image_ref=image["id"])
    fresh = await call.instance(inst.uuid)
    view = server(fresh, await context_for(call, fresh), basic=call.version < "2.75")
    if call.version >= "2.54":
        view["key_name"] = fresh.key_name
    if call.version >= "2.57":
        view.pop("OS-EXT-SRV-ATTR:user_data", None)  # rebuild shows it as user_data
        view["user_data"] = fresh.user_data
    view["adminPass"] = body.get("adminPass") or secrets.token_urlsafe(9)
    return ok({"server": view}, 202)


async def change_password(call: Call, inst: Instance, body: Any) -> Response:
    if not isinstance(body, dict):
        raise BadRequest("changePassword needs 'adminPass'.")
    password = require_str(body, "adminPass")
    return await _to_agent(call, inst, Action.CHANGE_PASSWORD, "set_admin_password",
                           "changePassword", password=password)


async def console_output(call: Call, inst: Instance, body: Any) -> Response:
    call.enforce("os_compute_api:os-console-output", {"project_id": inst.project_id})
    length = body.get("length") if isinstance(body, dict) else None
    if length is not None:
        length = require_int(length, "length", -1)
        length = None if length == -1 else length
    if not inst.host or inst.vm_state in (VmState.BUILDING, VmState.SHELVED_OFFLOADED):
        raise Conflict(f"Instance {inst.uuid} is in vm_state {inst.vm_state}; it has no "
                       "console yet.")
    output = await call.deps.agents.call(inst.host, "get_console_output", uuid=inst.uuid,
                                         length=length)
    return ok({"output": output})


async def crash_dump(call: Call, inst: Instance, body: Any) -> Response:
    if inst.vm_state not in (VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED,
                             VmState.RESIZED, VmState.ERROR) or inst.task_state:
        raise Conflict(f"Cannot 'trigger_crash_dump' instance {inst.uuid} while it is in "
                       f"vm_state {inst.vm_state}")
    await call.deps.agents.cast(inst.host or "", "trigger_crash_dump", uuid=inst.uuid)
    return accepted()


async def force_delete(call: Call, inst: Instance, body: Any) -> Response:
    await delete_instance(call, inst)
    return accepted()


async def reset_state(call: Call, inst: Instance, body: Any) -> Response:
    """Admin: force vm_state to ``active`` or ``error`` and clear the task (as Nova)."""
    call.enforce("os_compute_api:servers:admin_action", {"project_id": inst.project_id})
    state = body.get("state") if isinstance(body, dict) else None
    if state not in ("active", "error"):
        raise BadRequest("os-resetState needs 'state': 'active' or 'error'.")
    await call.deps.store.update(inst.uuid, vm_state=state, task_state=None)
    return accepted()


async def restore(call: Call, inst: Instance, body: Any) -> Response:
    # Deletes are immediate here (no reclaim window), so nothing is ever soft-deleted.
    raise Conflict(f"Cannot 'restore' instance {inst.uuid} while it is in vm_state "
                   f"{inst.vm_state}")


ACTIONS: dict[str, tuple[Handler, str]] = {
    "os-start": (start, "2.1"),
    "os-stop": (stop, "2.1"),
    "reboot": (reboot, "2.1"),
    "pause": (_simple(Action.PAUSE, "pause_instance"), "2.1"),
    "unpause": (_simple(Action.UNPAUSE, "unpause_instance"), "2.1"),
    "suspend": (_simple(Action.SUSPEND, "suspend_instance"), "2.1"),
    "resume": (_simple(Action.RESUME, "resume_instance"), "2.1"),
    "unrescue": (_simple(Action.UNRESCUE, "unrescue_instance"), "2.1"),
    "lock": (lock, "2.1"),
    "unlock": (unlock, "2.1"),
    "createImage": (create_image, "2.1"),
    "createBackup": (create_backup, "2.1"),
    "resize": (moves.resize, "2.1"),
    "confirmResize": (moves.confirm_resize, "2.1"),
    "revertResize": (moves.revert_resize, "2.1"),
    "migrate": (moves.migrate, "2.1"),
    "os-migrateLive": (moves.live_migrate, "2.1"),
    "evacuate": (moves.evacuate, "2.1"),
    "shelve": (shelve, "2.1"),
    "shelveOffload": (shelve_offload, "2.1"),
    "unshelve": (unshelve, "2.1"),
    "rescue": (rescue, "2.1"),
    "rebuild": (rebuild, "2.1"),
    "changePassword": (change_password, "2.1"),
    "os-getConsoleOutput": (console_output, "2.1"),
    "trigger_crash_dump": (crash_dump, "2.17"),
    "forceDelete": (force_delete, "2.1"),
    "os-resetState": (reset_state, "2.1"),
    "restore": (restore, "2.1"),
    "addSecurityGroup": (secgroups.add_security_group, "2.1"),
    "removeSecurityGroup": (secgroups.remove_security_group, "2.1"),
    "injectNetworkInfo": (legacy.inject_network_info, "2.1"),
    "addFloatingIp": (floatingips.add_floating_ip, "2.1"),
    "removeFloatingIp": (floatingips.remove_floating_ip, "2.1"),
    **{name: (consoles.action(name), "2.1") for name in consoles.LEGACY},
}
# Unlocked servers only for these (lock/unlock and reads are always allowed).
_LOCK_EXEMPT = {"lock", "unlock", "os-getConsoleOutput", "os-resetState",
                "addSecurityGroup", "removeSecurityGroup", "addFloatingIp", "removeFloatingIp",
                *consoles.LEGACY}
# Actions that make sense for a server with no host (building, error, offloaded).
_HOSTLESS = ("unshelve", "forceDelete", "lock", "unlock", "os-resetState", "restore")


async def dispatch(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    doc = await call.body()
    if len(doc) != 1:
        raise BadRequest("The action body must hold exactly one action.")
    name, body = next(iter(doc.items()))
    entry = ACTIONS.get(name)
    if entry is None or call.version < entry[1]:
        raise BadRequest(f"There is no such action: {name}")
    handler, _ = entry
    inst = await call.instance(request.path_params["server_id"], "os_compute_api:servers:action")
    if name not in _LOCK_EXEMPT:
        call.check_lock(inst, name)
    if not inst.host and name not in _HOSTLESS and inst.vm_state != VmState.SHELVED_OFFLOADED:
        raise Conflict(f"Cannot '{name}' instance {inst.uuid} while it is in vm_state "
                       f"{inst.vm_state}")
    if inst.vm_state == VmState.SHELVED_OFFLOADED and name not in _HOSTLESS:
        raise Conflict(f"Cannot '{name}' instance {inst.uuid} while it is in vm_state "
                       f"{inst.vm_state}")
    return await handler(call, inst, body)


__all__ = ["ACTIONS", "NotFound", "dispatch"]
