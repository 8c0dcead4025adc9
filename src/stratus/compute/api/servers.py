"""``/servers``: create, list (brief and detail), show, update, delete."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid as uuidlib
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from stratus.compute import network, quotas, teardown
from stratus.compute.aggregates import zone_names
from stratus.compute.api import listing
from stratus.compute.api.common import (
    Call,
    Deps,
    check_metadata,
    disk_config,
    ok,
    require_int,
    require_str,
)
from stratus.compute.api.views import ServerContext, server
from stratus.compute.flavors import snapshot as flavor_snapshot
from stratus.compute.images import inherited_properties
from stratus.compute.lifecycle import Action
from stratus.compute.models import (
    Flavor,
    FlavorProject,
    Instance,
    InstanceAction,
    InstanceFault,
    InstanceTag,
    KeyPair,
    ServerGroup,
    ServerGroupMember,
)
from stratus.compute.servicegroup import compute_service, is_up
from stratus.compute.states import TaskState, VmState
from stratus.errors import BadRequest, Conflict, Forbidden, NotFound, OverQuota

CREATE_KEYS = {
    "name", "imageRef", "flavorRef", "networks", "key_name", "user_data", "metadata",
    "availability_zone", "min_count", "max_count", "description", "tags", "hostname",
    "adminPass", "config_drive", "security_groups", "block_device_mapping_v2",
    "block_device_mapping", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig",
    "return_reservation_id", "personality", "host", "hypervisor_hostname",
    "trusted_image_certificates",
}
TAG_RE = re.compile(r"^[^,/]{1,60}$")


def flavor_id_from(ref: Any) -> str:
    if not isinstance(ref, (str, int)) or isinstance(ref, bool) or str(ref).strip() == "":
        raise BadRequest("Invalid flavorRef provided.")
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


async def find_flavor(call: Call, ref: Any) -> Flavor:
    flavor_id = flavor_id_from(ref)
    async with call.deps.db.session() as session:
        flavor = await session.scalar(select(Flavor).where(Flavor.flavorid == flavor_id))
        if flavor is not None and not flavor.is_public and not call.is_admin:
            access = await session.scalar(select(FlavorProject).where(
                FlavorProject.flavor_id == flavor.id,
                FlavorProject.project_id == call.project_id))
            flavor = flavor if access else None
    if flavor is None or flavor.disabled:
        raise BadRequest(f"Flavor {flavor_id} could not be found.")
    return flavor


async def find_image(call: Call, ref: Any, flavor: Flavor | None = None) -> dict[str, Any]:
    if not isinstance(ref, str) or not ref.strip():
        raise BadRequest("Invalid imageRef provided.")
    image_id = ref.rstrip("/").rsplit("/", 1)[-1]
    try:
        uuidlib.UUID(image_id)
    except ValueError:
        raise BadRequest(f"Invalid imageRef provided: {ref!r} is not an image id.") from None
    image = await call.deps.images.show(call.ctx.token, image_id)
    if image is None:
        raise BadRequest(f"Image {image_id} could not be found.")
    if image.get("status") != "active":
        raise BadRequest(f"Image {image_id} is not active (status {image.get('status')}).")
    if flavor is not None:
        if int(image.get("min_ram") or 0) > flavor.memory_mb:
            raise BadRequest(f"Flavor's memory is too small for requested image {image_id}.")
        if int(image.get("min_disk") or 0) > flavor.root_gb:
            raise BadRequest(f"Flavor's disk is too small for requested image {image_id}.")
        size = int(image.get("size") or 0)
        if flavor.root_gb and size > flavor.root_gb * 1024**3:
            raise BadRequest(f"Flavor's disk is too small for requested image {image_id}.")
    for key, what in (("kernel_id", "Kernel"), ("ramdisk_id", "Ramdisk")):
        # As Nova: a boot image named but absent is the caller's error (400) now; one
        # that exists but cannot be used (deactivated) fails the build, naming it.
        ref_id = image.get(key)
        if ref_id and await call.deps.images.show(call.ctx.token, str(ref_id)) is None:
            raise BadRequest(f"{what} image {ref_id} (the {key} of image {image_id}) "
                             "could not be found.")
    return image


def _networks(call: Call, body: dict[str, Any]) -> str | list[network.Nic]:
    nets = body.get("networks")
    return network.parse_request(nets, call.version, present=nets is not None)


def _security_groups(value: Any) -> list[str]:
    if value is None:
        return ["default"]
    if not isinstance(value, list) or not all(
            isinstance(g, dict) and isinstance(g.get("name"), str) and g["name"].strip()
            for g in value):
        raise BadRequest("Invalid input for field/attribute security_groups: a list of "
                         "{\"name\": ...} objects is required.")
    return list(dict.fromkeys(g["name"].strip() for g in value)) or ["default"]


def _user_data(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 65535:
        raise BadRequest("user_data must be a base64 string of at most 65535 characters.")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Invalid input for field/attribute user_data: not base64.") from None
    return value


def access_ip(value: Any, key: str, version: int) -> str:
    """An accessIPv4/v6 as Nova stores it: validated and normalised ('' when unset)."""
    if value in (None, ""):
        return ""
    import ipaddress

    try:
        addr = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        addr = None
    if addr is None or addr.version != version:
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r} is not an "
                         f"IPv{version} address")
    return str(addr)


def _hostname(name: str) -> str:
    host = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63]
    return host or "server"


async def create(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:servers:create")
    doc = await call.body()
    body = doc.get("server")
    if not isinstance(body, dict):
        raise BadRequest("The request body must hold an object under 'server'.")
    unknown = sorted(set(body) - CREATE_KEYS)
    if unknown:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(map(repr, unknown))}"
                         " were unexpected)")
    name = require_str(body, "name")
    assert name is not None
    description = require_str(body, "description", required=False, allow_empty=True)
    if description is not None and call.version < "2.19":
        raise BadRequest("'description' needs microversion 2.19 or later.")
    requested = _networks(call, body)
    sg_names = _security_groups(body.get("security_groups"))
    if call.deps.network is not None:  # as Nova: an unknown group is the caller's 400, now
        await network.security_group_ids(call.deps.network, call.project_id, sg_names)
    flavor = await find_flavor(call, body.get("flavorRef"))
    bdm = body.get("block_device_mapping_v2")
    image_ref = body.get("imageRef")
    if bdm:
        if not isinstance(bdm, list) or any(
                not isinstance(b, dict) or b.get("source_type", "image") != "image"
                or b.get("destination_type", "local") != "local" for b in bdm):
            raise BadRequest("Only image-backed block devices (source_type image, "
                             "destination_type local) are supported until volumes exist.")
        image_ref = image_ref or bdm[0].get("uuid")
    if not image_ref:
        raise BadRequest("'imageRef' is required to boot from an image.")
    image = await find_image(call, image_ref, flavor)
    auto_disk = disk_config(body, image)
    if auto_disk is None:  # as Nova: the image's own auto_disk_config, else MANUAL
        auto_disk = str(image.get("auto_disk_config", "")).lower() in ("true", "1", "yes")
    metadata = check_metadata(body.get("metadata", {}))
    min_count = require_int(body.get("min_count", 1), "min_count", 1)
    max_count = require_int(body.get("max_count", min_count), "max_count", 1)
    if min_count > max_count:
        raise BadRequest("min_count must be <= max_count")
    nics, max_count = await network.validate(
        deps.network, call.ctx.token, call.project_id, requested, max_count, min_count,
        is_admin=call.is_admin, version=call.version)
    tags = body.get("tags", [])
    if tags and call.version < "2.52":
        raise BadRequest("'tags' needs microversion 2.52 or later.")
    if not isinstance(tags, list) or len(tags) > 50 or not all(
            isinstance(t, str) and TAG_RE.match(t) for t in tags):
        raise BadRequest("Invalid tags: at most 50 strings of 1-60 characters without ',' "
                         "or '/'.")
    key_data = None
    key_name = require_str(body, "key_name", required=False)
    if key_name:
        async with deps.db.session() as session:
            key = await session.scalar(select(KeyPair).where(
                KeyPair.user_id == call.ctx.user_id, KeyPair.name == key_name))
        if key is None:
            raise BadRequest(f"Invalid key_name provided: {key_name}")
        key_data = key.public_key
    az, force_host = await _availability_zone(call, body.get("availability_zone"))
    hints = doc.get("OS-SCH-HNT:scheduler_hints") or doc.get("os:scheduler_hints") or {}
    if not isinstance(hints, dict):
        raise BadRequest("scheduler_hints must be an object")
    group = await _group(call, hints.get("group"))
    hostname = body.get("hostname")
    if hostname is not None:
        # 2.94 allows fully qualified names (up to 255 characters).
        pattern = (r"^[a-zA-Z0-9][a-zA-Z0-9.-]{0,254}$" if call.version >= "2.94"
                   else r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$")
        if call.version < "2.90" or not isinstance(hostname, str) or not re.match(
                pattern, hostname) or hostname.endswith((".", "-")):
            raise BadRequest(f"Invalid hostname {hostname!r}.")
    user_data = _user_data(body.get("user_data"))
    ip4 = access_ip(body.get("accessIPv4"), "accessIPv4", 4)
    ip6 = access_ip(body.get("accessIPv6"), "accessIPv6", 6)
    limit = await _limits(call)
    if len(metadata) > limit["metadata_items"] >= 0:
        raise OverQuota(f"Quota exceeded for metadata_items: {len(metadata)} of "
                        f"{limit['metadata_items']}")
    spec = {
        "vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb,
        "disk_gb": flavor.root_gb + flavor.ephemeral_gb, "project_id": call.project_id,
        "availability_zone": az, "force_host": force_host,
        "image_properties": dict(image.get("properties") or {}, **{
            k: v for k, v in image.items() if k.startswith(("hw_", "img_"))
            or k in ("architecture", "hypervisor_type")}),
        "extra_specs": dict(flavor.extra_specs or {}),
        "group_policy": group.policy if group else None,
        "group_hosts": await _group_hosts(call, group) if group else [],
        "same_host": await _hosts_of(call, hints.get("same_host")),
        "different_host": await _hosts_of(call, hints.get("different_host")),
    }
    if group and group.rules.get("max_server_per_host"):
        spec["group_max_server_per_host"] = int(group.rules["max_server_per_host"])
    reservation = f"r-{secrets.token_hex(4)}"
    snap = flavor_snapshot(flavor)
    await quotas.ensure_rows(deps.db, call.project_id)
    instances: list[Instance] = []
    count = max_count
    for attempt in (max_count, min_count):
        count = attempt
        try:
            async with deps.db.session() as session:
                await quotas.reserve(session, call.project_id,
                                     quotas.instance_deltas(snap, count), limit)
                if group is not None:
                    await _check_group_quota(session, group, count, limit)
                for index in range(count):
                    display = name if count == 1 else f"{name}-{index + 1}"
                    inst = Instance(
                        uuid=str(uuidlib.uuid4()), project_id=call.project_id,
                        user_id=call.ctx.user_id, name=display, description=description,
                        hostname=hostname or _hostname(display),
                        vm_state=VmState.BUILDING.value, task_state=TaskState.SCHEDULING.value,
                        availability_zone=az, pinned_availability_zone=az, flavor=snap,
                        vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, root_gb=flavor.root_gb,
                        image_ref=image["id"], key_name=key_name, key_data=key_data,
                        user_data=user_data, metadata_=metadata,
                        config_drive="True" if _wants_config_drive(call, body, image) else "",
                        access_ip_v4=ip4, access_ip_v6=ip6,
                        reservation_id=reservation, launch_index=index,
                        auto_disk_config=auto_disk,
                        request_spec={"hints": hints,
                                      "networks": [n.to_json() for n in nics],
                                      "security_groups": sg_names,
                                      "image_meta": inherited_properties(image)})
                    session.add(inst)
                    for tag in dict.fromkeys(tags):
                        session.add(InstanceTag(instance_uuid=inst.uuid, tag=tag))
                    if group is not None:
                        session.add(ServerGroupMember(group_id=group.id,
                                                      instance_uuid=inst.uuid))
                    session.add(InstanceAction(instance_uuid=inst.uuid, action="create",
                                               request_id=call.request_id,
                                               project_id=call.project_id,
                                               user_id=call.ctx.user_id))
                    instances.append(inst)
            break
        except OverQuota:
            instances = []
            if attempt == min_count:
                raise
    uuids = [i.uuid for i in instances]
    await deps.conductor.cast("build_instances", instance_uuids=uuids, spec=spec,
                              request_id=call.request_id, token=call.ctx.token)
    if body.get("return_reservation_id"):
        return ok({"reservation_id": reservation}, 202)
    first = instances[0]
    out: dict[str, Any] = {"id": first.uuid, "links": server(
        first, ServerContext(call.base, call.version, False), in_list=True)["links"],
        "OS-DCF:diskConfig": "AUTO" if auto_disk else "MANUAL",
        "security_groups": [{"name": n} for n in sg_names]}
    out["adminPass"] = body.get("adminPass") or secrets.token_urlsafe(9)
    return ok({"server": out}, 202)


def _wants_config_drive(call: Call, body: dict[str, Any], image: dict[str, Any]) -> bool:
    """Nova's rule: the request asks, the image demands it, or the deployment forces it."""
    return (body.get("config_drive") in (True, "True", "true", "1")
            or image.get("img_config_drive") == "mandatory"
            or call.deps.settings.compute.force_config_drive)


async def _availability_zone(call: Call, value: Any) -> tuple[str | None, str | None]:
    if value in (None, ""):
        return None, None
    if not isinstance(value, str):
        raise BadRequest("Invalid input for field/attribute availability_zone")
    zone, _, rest = value.partition(":")
    host = rest.split(":")[0] or None
    if host:
        call.enforce("os_compute_api:servers:create:forced_host")
    default = call.deps.settings.compute.default_availability_zone
    if zone and zone != default:
        async with call.deps.db.session() as session:
            known = await zone_names(session)
        if zone not in known:
            raise BadRequest(f"The requested availability zone is not available: {zone}")
    return zone or None, host


async def _group(call: Call, ref: Any) -> ServerGroup | None:
    if ref is None:
        return None
    async with call.deps.db.session() as session:
        group = await session.scalar(select(ServerGroup).where(ServerGroup.uuid == str(ref)))
    if group is None or (group.project_id != call.project_id and not call.is_admin):
        raise BadRequest(f"Server group {ref} could not be found.")
    return group


async def _group_hosts(call: Call, group: ServerGroup) -> list[str]:
    async with call.deps.db.session() as session:
        rows = await session.execute(select(Instance.host).join(
            ServerGroupMember, ServerGroupMember.instance_uuid == Instance.uuid).where(
            ServerGroupMember.group_id == group.id, Instance.deleted.is_(False),
            Instance.host.is_not(None)))
        return [h for h in rows.scalars() if h]


async def _check_group_quota(session: Any, group: ServerGroup, count: int,
                             limit: dict[str, int]) -> None:
    from sqlalchemy import func

    members = await session.scalar(select(func.count()).select_from(ServerGroupMember).where(
        ServerGroupMember.group_id == group.id))
    cap = limit["server_group_members"]
    if cap >= 0 and (members or 0) + count > cap:
        raise OverQuota(f"Quota exceeded for server_group_members: {members} of {cap} used")


async def _hosts_of(call: Call, ids: Any) -> list[str]:
    if not ids:
        return []
    ids = [ids] if isinstance(ids, str) else list(ids)
    async with call.deps.db.session() as session:
        rows = await session.execute(select(Instance.host).where(Instance.uuid.in_(ids)))
        return [h for h in rows.scalars() if h]


async def _limits(call: Call) -> dict[str, int]:
    async with call.deps.db.session() as session:
        return await quotas.limits(session, call.deps.settings.compute, call.project_id)


async def context_for(call: Call, inst: Instance) -> ServerContext:
    async with call.deps.db.session() as session:
        fault = await session.scalar(select(InstanceFault).where(
            InstanceFault.instance_uuid == inst.uuid).order_by(InstanceFault.id.desc()).limit(1))
        tags = tuple((await session.execute(select(InstanceTag.tag).where(
            InstanceTag.instance_uuid == inst.uuid).order_by(InstanceTag.tag))).scalars())
        group = await session.scalar(select(ServerGroup.uuid).join(
            ServerGroupMember, ServerGroupMember.group_id == ServerGroup.id).where(
            ServerGroupMember.instance_uuid == inst.uuid))
    host_status = ""
    if call.is_admin and inst.host:
        svc = await compute_service(call.deps.db, inst.host)
        host_status = ("UP" if svc and is_up(svc, call.deps.settings.compute.service_down_time)
                       else "DOWN") if svc and not svc.forced_down else "DOWN"
        if svc and svc.disabled and host_status == "UP":
            host_status = "MAINTENANCE"
    elif call.is_admin:
        host_status = ""
    vifs = (await network.cached(call.deps.db, [inst.uuid])).get(inst.uuid, [])
    return ServerContext(call.base, call.version, call.is_admin, fault, tags, group,
                         host_status, tuple(vifs))


async def show(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await call.instance(request.path_params["server_id"])
    return ok({"server": server(inst, await context_for(call, inst))})


async def update(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await call.instance(request.path_params["server_id"], "os_compute_api:servers:update")
    body = await call.body("server")
    allowed = {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
    if call.version >= "2.19":
        allowed.add("description")
    if call.version >= "2.90":
        allowed.add("hostname")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(unknown)} were "
                         "unexpected)")
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = require_str(body, "name")
    if "description" in body:
        values["description"] = require_str(body, "description", required=False,
                                            allow_empty=True)
    if "hostname" in body:
        values["hostname"] = require_str(body, "hostname", max_len=63)
    for key, column, ipv in (("accessIPv4", "access_ip_v4", 4), ("accessIPv6", "access_ip_v6", 6)):
        if key in body:
            values[column] = access_ip(body[key], key, ipv)
    if (auto_disk := disk_config(body)) is not None:
        values["auto_disk_config"] = auto_disk
    if values:
        await deps.store.update(inst.uuid, **values)
    inst = await call.instance(inst.uuid)
    return ok({"server": server(inst, await context_for(call, inst),
                                basic=call.version < "2.75")})


async def delete(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await call.instance(request.path_params["server_id"], "os_compute_api:servers:delete")
    await delete_instance(call, inst)
    return ok(None, 204)


async def delete_instance(call: Call, inst: Instance) -> None:
    call.check_lock(inst, "delete")
    deps = call.deps
    await deps.store.record_action(inst.uuid, "delete", call.request_id, call.project_id,
                                   call.ctx.user_id)
    # Deleting a server that is being deleted is accepted, as in Nova (clients retry,
    # Tempest cleans up twice): the delete is sent again, in case its host missed it.
    if inst.task_state != TaskState.DELETING.value:
        try:
            await deps.store.begin(inst.uuid, Action.DELETE, allow_task=True)
        except Conflict:
            if (await deps.store.get(inst.uuid)).task_state != TaskState.DELETING.value:
                raise
    # The host as of the claim: a build that got its host first is deleted by that
    # host (after its build ends); one that did not yet can no longer get one.
    inst = await deps.store.get(inst.uuid)
    svc = await compute_service(deps.db, inst.host) if inst.host else None
    local = svc is None or not is_up(svc, deps.settings.compute.service_down_time)
    if local:  # nothing runs it, or its host is down: delete here (Nova's local delete)
        await network.deallocate_for_instance(deps.network, deps.db, inst.uuid)
        await teardown.finalize_delete(deps.db, inst)
        return
    await deps.agents.cast(inst.host or "", "terminate_instance", uuid=inst.uuid,
                           request_id=call.request_id)


async def index(deps: Deps, request: Request) -> Response:
    return await listing.list_servers(Call(deps, request), detail=False)


async def detail(deps: Deps, request: Request) -> Response:
    return await listing.list_servers(Call(deps, request), detail=True)


__all__ = ["Forbidden", "NotFound", "create", "delete", "detail", "index", "show", "update"]
