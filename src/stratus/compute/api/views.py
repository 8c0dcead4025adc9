"""Response bodies. Fields that depend on the microversion are data: each row
of :data:`SERVER_FIELDS` says from which version (and, if so, until which)
a field appears, whether only admins see it, and how to compute it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stratus.compute.api.microversion import Version
from stratus.compute.models import Flavor, Instance, InstanceFault, Migration
from stratus.compute.network import addresses, security_groups
from stratus.compute.states import Status, status_of


def ts(value: datetime | None) -> str | None:
    """Nova's timestamp format: ``2024-01-02T03:04:05Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def ts_micro(value: datetime | None) -> str | None:
    """The microsecond form used by instance actions and migrations."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def links(base: str, kind: str, ident: str, project: str | None = None) -> list[dict[str, str]]:
    root = base.rstrip("/")
    bookmark = root.rsplit("/v2.1", 1)[0]
    return [{"rel": "self", "href": f"{root}/{kind}/{ident}"},
            {"rel": "bookmark", "href": f"{bookmark}/{kind}/{ident}"}]


@dataclass(frozen=True)
class ServerContext:
    base: str  # .../v2.1
    version: Version
    is_admin: bool
    fault: InstanceFault | None = None
    tags: tuple[str, ...] = ()
    group: str | None = None
    host_status: str = ""
    vifs: tuple[dict[str, Any], ...] = ()  # the cached ports (compute.network)


Getter = Callable[[Instance, ServerContext], Any]


@dataclass(frozen=True)
class Field:
    name: str
    get: Getter
    since: str = "2.1"
    until: str | None = None  # last version that has it
    admin: bool = False


def _host_id(inst: Instance) -> str:
    if not inst.host:
        return ""
    return hashlib.sha224((inst.project_id + inst.host).encode()).hexdigest()


def _image(inst: Instance, c: ServerContext) -> Any:
    if not inst.image_ref:
        return ""
    return {"id": inst.image_ref, "links": [{"rel": "bookmark", "href": links(
        c.base, "images", inst.image_ref)[1]["href"]}]}


def _flavor(inst: Instance, c: ServerContext) -> dict[str, Any]:
    f = inst.flavor
    if c.version < "2.47":
        return {"id": f["flavorid"], "links": [{"rel": "bookmark", "href": links(
            c.base, "flavors", f["flavorid"])[1]["href"]}]}
    return {"vcpus": f["vcpus"], "ram": f["ram"], "disk": f["disk"],
            "ephemeral": f.get("ephemeral", 0), "swap": f.get("swap", 0),
            "original_name": f["name"], "extra_specs": dict(f.get("extra_specs") or {})}


def _fault(inst: Instance, c: ServerContext) -> dict[str, Any] | None:
    f = c.fault
    if f is None or inst.vm_state not in ("error", "deleted"):
        return None
    out: dict[str, Any] = {"code": f.code, "created": ts(f.created_at), "message": f.message}
    if c.is_admin or f.code != 500:
        out["details"] = f.details or f.message
    return out


_AZ = "OS-EXT-AZ:availability_zone"
SERVER_FIELDS: tuple[Field, ...] = (
    Field("id", lambda i, c: i.uuid),
    Field("name", lambda i, c: i.name),
    Field("status", lambda i, c: status_of(i.vm_state, i.task_state).value),
    Field("tenant_id", lambda i, c: i.project_id),
    Field("user_id", lambda i, c: i.user_id),
    Field("metadata", lambda i, c: dict(i.metadata_ or {})),
    Field("hostId", lambda i, c: _host_id(i)),
    Field("image", _image),
    Field("flavor", _flavor),
    Field("created", lambda i, c: ts(i.created_at)),
    Field("updated", lambda i, c: ts(i.updated_at)),
    Field("addresses", lambda i, c: addresses(list(c.vifs))),
    Field("accessIPv4", lambda i, c: i.access_ip_v4 or ""),
    Field("accessIPv6", lambda i, c: i.access_ip_v6 or ""),
    Field("links", lambda i, c: links(c.base, "servers", i.uuid)),
    Field("key_name", lambda i, c: i.key_name),
    Field("config_drive", lambda i, c: i.config_drive or ""),
    Field("progress", lambda i, c: 100 if i.vm_state == "active" else i.progress),
    Field("OS-DCF:diskConfig", lambda i, c: "AUTO" if i.auto_disk_config else "MANUAL"),
    Field(_AZ, lambda i, c: i.availability_zone or ""),
    Field("OS-EXT-STS:vm_state", lambda i, c: i.vm_state),
    Field("OS-EXT-STS:task_state", lambda i, c: i.task_state),
    Field("OS-EXT-STS:power_state", lambda i, c: int(i.power_state)),
    Field("OS-SRV-USG:launched_at", lambda i, c: ts_micro(i.launched_at)),
    Field("OS-SRV-USG:terminated_at", lambda i, c: ts_micro(i.terminated_at)),
    Field("os-extended-volumes:volumes_attached", lambda i, c: []),
    Field("OS-EXT-SRV-ATTR:host", lambda i, c: i.host, admin=True),
    Field("OS-EXT-SRV-ATTR:hypervisor_hostname", lambda i, c: i.node, admin=True),
    Field("OS-EXT-SRV-ATTR:instance_name", lambda i, c: f"instance-{i.id:08x}", admin=True),
    Field("OS-EXT-SRV-ATTR:reservation_id", lambda i, c: i.reservation_id, "2.3", admin=True),
    Field("OS-EXT-SRV-ATTR:launch_index", lambda i, c: i.launch_index, "2.3", admin=True),
    Field("OS-EXT-SRV-ATTR:kernel_id", lambda i, c: "", "2.3", admin=True),
    Field("OS-EXT-SRV-ATTR:ramdisk_id", lambda i, c: "", "2.3", admin=True),
    Field("OS-EXT-SRV-ATTR:hostname", lambda i, c: i.hostname, "2.3", "2.89", admin=True),
    Field("OS-EXT-SRV-ATTR:hostname", lambda i, c: i.hostname, "2.90"),
    Field("OS-EXT-SRV-ATTR:root_device_name", lambda i, c: "/dev/vda", "2.3", admin=True),
    Field("OS-EXT-SRV-ATTR:user_data", lambda i, c: i.user_data, "2.3", admin=True),
    Field("locked", lambda i, c: bool(i.locked), "2.9"),
    Field("host_status", lambda i, c: c.host_status, "2.16", admin=True),
    Field("description", lambda i, c: i.description, "2.19"),
    Field("tags", lambda i, c: list(c.tags), "2.26"),
    Field("trusted_image_certificates", lambda i, c: None, "2.63"),
    Field("server_groups", lambda i, c: [c.group] if c.group else [], "2.71"),
    Field("locked_reason", lambda i, c: i.locked_reason, "2.73"),
    Field("pinned_availability_zone", lambda i, c: i.pinned_availability_zone, "2.96"),
)
# The statuses whose bodies carry "progress" (Nova's view).
PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")
# Fields only in show/update/rebuild bodies, never in lists.
SHOW_ONLY = {"server_groups"}


# Before 2.75, update and rebuild answer with the "basic" view: no extension fields.
_EXTENSION_PREFIXES = ("OS-EXT-", "OS-SRV-USG:", "os-extended-volumes:")
_EXTENSION_FIELDS = {"key_name", "config_drive", "host_status",
                     "pinned_availability_zone", "security_groups"}


def _is_extension(name: str) -> bool:
    return name.startswith(_EXTENSION_PREFIXES) or name in _EXTENSION_FIELDS


def server(inst: Instance, c: ServerContext, *, in_list: bool = False,
           basic: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in SERVER_FIELDS:
        if basic and _is_extension(f.name):
            continue
        if c.version < f.since or (f.until and c.version > f.until):
            continue
        if f.admin and not c.is_admin:
            continue
        if in_list and f.name in SHOW_ONLY:
            continue
        out[f.name] = f.get(inst, c)
    if out.get("status") not in PROGRESS_STATUSES:  # Nova shows progress only while it moves
        out.pop("progress", None)
    if basic and "addresses" in out:  # as Nova's basic view: addresses without OS-EXT-IPS*
        out["addresses"] = {net: [{"version": a["version"], "addr": a["addr"]} for a in ips]
                            for net, ips in out["addresses"].items()}
    fault = _fault(inst, c)
    if fault:
        out["fault"] = fault
    groups = security_groups(list(c.vifs))
    if groups and not basic:  # as Nova: only servers with ports show their groups
        out["security_groups"] = groups
    if c.version >= "2.16" and c.is_admin and not c.host_status:
        out.pop("host_status", None)
    return out


def server_brief(inst: Instance, c: ServerContext) -> dict[str, Any]:
    return {"id": inst.uuid, "name": inst.name, "links": links(c.base, "servers", inst.uuid)}


def flavor(f: Flavor, base: str, version: Version, *, brief: bool = False,
           is_admin: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f.flavorid, "name": f.name,
                           "links": links(base, "flavors", f.flavorid)}
    if version >= "2.55":
        out["description"] = f.description
    if brief:
        return out
    out.update({"ram": f.memory_mb, "disk": f.root_gb, "vcpus": f.vcpus,
                "swap": f.swap or "", "rxtx_factor": f.rxtx_factor,
                "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
                "OS-FLV-DISABLED:disabled": f.disabled,
                "os-flavor-access:is_public": f.is_public})
    if version >= "2.75" and not f.swap:
        out["swap"] = 0
    if version >= "2.61":
        out["extra_specs"] = dict(f.extra_specs or {})
    return out


def migration(m: Migration, base: str, version: Version, instance_project: str = "") -> dict[
        str, Any]:
    kinds = {"resize": "resize", "migration": "migration", "live-migration": "live-migration",
             "evacuation": "evacuation"}
    out: dict[str, Any] = {
        "id": m.id, "status": m.status, "instance_uuid": m.instance_uuid,
        "source_compute": m.source_compute, "source_node": m.source_node,
        "dest_compute": m.dest_compute, "dest_node": m.dest_node, "dest_host": m.dest_host,
        "old_instance_type_id": m.old_flavor_id, "new_instance_type_id": m.new_flavor_id,
        "created_at": ts_micro(m.created_at), "updated_at": ts_micro(m.updated_at),
    }
    if version >= "2.23":
        out["migration_type"] = kinds.get(m.migration_type, m.migration_type)
        if m.migration_type == "live-migration" and m.status in (
                "queued", "preparing", "running"):
            out["links"] = [
                {"rel": "self",
                 "href": f"{base}/servers/{m.instance_uuid}/migrations/{m.id}"},
                {"rel": "bookmark",
                 "href": f"{base.rsplit('/v2.1', 1)[0]}/servers/{m.instance_uuid}/migrations/"
                         f"{m.id}"}]
    if version >= "2.59":
        out["uuid"] = m.uuid
    if version >= "2.80":
        out["user_id"] = m.user_id
        out["project_id"] = m.project_id
    return out


STATUS_FILTER_VALUES = {s.value for s in Status}
