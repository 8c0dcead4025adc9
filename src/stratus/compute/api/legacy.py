"""Small and deprecated Nova APIs that clients and Tempest still call:
``/extensions``, ``os-hosts`` (to 2.42), ``os-instance_usage_audit_log``,
``servers/{id}/diagnostics``. Each answers from what compute already knows;
none has state of its own."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from stratus.compute import network
from stratus.compute.aggregates import host_zones
from stratus.compute.api.common import Call, Deps, ok
from stratus.compute.models import ComputeNode, Instance, Service
from stratus.compute.states import PowerState
from stratus.db.base import utcnow
from stratus.errors import BadRequest, NotFound, NotImplementedYet


async def blank_id(deps: Deps, request: Request) -> Response:
    """``/collection/`` with an empty id: 404 as Nova (not a redirect to the list)."""
    raise NotFound(f"No resource with an empty id at {request.url.path}")


# --- /extensions ------------------------------------------------------------

# (alias, name, description): the v2.1 API's extension list, as Nova still returns it.
EXTENSIONS: tuple[tuple[str, str, str], ...] = (
    ("os-admin-actions", "AdminActions", "Enable admin-only server actions."),
    ("os-aggregates", "Aggregates", "Admin-only aggregate administration."),
    ("os-availability-zone", "AvailabilityZone",
     "1. Add availability_zone to the Create Server API. 2. Add availability zones describing."),
    ("os-console-output", "ConsoleOutput", "Console log output support."),
    ("os-consoles", "Consoles", "Interactive Console support."),
    ("os-create-backup", "CreateBackup", "Create a backup of a server."),
    ("os-evacuate", "Evacuate", "Enables server evacuation."),
    ("os-extended-availability-zone", "ExtendedAvailabilityZone",
     "Extended Availability Zone support."),
    ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."),
    ("OS-EXT-STS", "ExtendedStatus", "Extended Status support."),
    ("os-flavor-access", "FlavorAccess", "Flavor access support."),
    ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support."),
    ("os-flavor-manage", "FlavorManage", "Flavor create/delete API support."),
    ("os-hosts", "Hosts", "Admin-only host administration."),
    ("os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."),
    ("os-instance-actions", "InstanceActions",
     "View a log of actions and events taken on an instance."),
    ("os-keypairs", "Keypairs", "Keypair Support."),
    ("os-lock-server", "LockServer", "Enable lock/unlock server actions."),
    ("os-migrate-server", "MigrateServer", "Enable migrate and live-migrate server actions."),
    ("os-migrations", "Migrations", "Provide data on migrations."),
    ("os-pause-server", "PauseServer", "Enable pause/unpause server actions."),
    ("os-quota-sets", "Quotas", "Quotas management support."),
    ("os-rescue", "Rescue", "Instance rescue mode."),
    ("os-security-groups", "SecurityGroups", "Security group support."),
    ("os-server-diagnostics", "ServerDiagnostics",
     "Allow Admins to view server diagnostics through server id."),
    ("os-server-external-events", "ServerExternalEvents", "Server External Event Triggers."),
    ("os-server-groups", "ServerGroups", "Server group support."),
    ("os-services", "Services", "Services support."),
    ("os-shelve", "Shelve", "Instance shelve mode."),
    ("os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage extension."),
    ("os-suspend-server", "SuspendServer", "Enable suspend/resume server actions."),
)


def _extension_view(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description, "links": [],
            "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
            "updated": "2014-12-03T00:00:00Z"}


async def extensions_index(deps: Deps, request: Request) -> Response:
    return ok({"extensions": [_extension_view(*e) for e in EXTENSIONS]})


async def extensions_show(deps: Deps, request: Request) -> Response:
    alias = request.path_params["alias"]
    for entry in EXTENSIONS:
        if entry[0] == alias:
            return ok({"extension": _extension_view(*entry)})
    raise NotFound(f"Extension {alias} could not be found.")


# --- os-hosts (removed in 2.43) ---------------------------------------------

_TOPIC = {"nova-compute": "compute", "nova-scheduler": "scheduler",
          "nova-conductor": "conductor"}


def _hosts_call(deps: Deps, request: Request) -> Call:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    if call.version >= "2.43":
        raise NotFound("os-hosts was removed in microversion 2.43; use os-hypervisors "
                       "and os-services.")
    return call


async def hosts_index(deps: Deps, request: Request) -> Response:
    call = _hosts_call(deps, request)
    default = deps.settings.compute.default_availability_zone
    async with deps.db.session() as session:
        svcs = (await session.scalars(select(Service).order_by(Service.id))).all()
        zones = await host_zones(session, default)
    out = []
    for s in svcs:
        zone = zones.get(s.host, default) if s.binary == "nova-compute" else s.zone
        out.append({"host_name": s.host, "service": _TOPIC.get(s.binary, s.topic),
                    "zone": zone})
    if (zone := call.query("zone")) is not None and zone != "":
        out = [h for h in out if h["zone"] == zone]
    return ok({"hosts": out})


async def _compute_node(call: Call, host: str) -> ComputeNode:
    async with call.deps.db.session() as session:
        node = await session.scalar(select(ComputeNode).where(ComputeNode.host == host))
    if node is None:
        raise NotFound(f"Compute host {host} could not be found.")
    return node


async def hosts_show(deps: Deps, request: Request) -> Response:
    call = _hosts_call(deps, request)
    host = request.path_params["host"]
    node = await _compute_node(call, host)
    async with deps.db.session() as session:
        per_project = (await session.execute(select(
            Instance.project_id, func.sum(Instance.vcpus), func.sum(Instance.memory_mb),
            func.sum(Instance.root_gb)).where(Instance.host == host,
                                              Instance.deleted.is_(False)).group_by(
            Instance.project_id))).all()

    def resource(project: str, cpu: int, mem: int, disk: int) -> dict[str, Any]:
        return {"resource": {"host": host, "project": project, "cpu": int(cpu or 0),
                             "memory_mb": int(mem or 0), "disk_gb": int(disk or 0)}}

    out = [resource("(total)", node.vcpus, node.memory_mb, node.local_gb),
           resource("(used_now)", node.vcpus_used, node.memory_mb_used, node.local_gb_used),
           resource("(used_max)", sum(int(r[1] or 0) for r in per_project),
                    sum(int(r[2] or 0) for r in per_project),
                    sum(int(r[3] or 0) for r in per_project))]
    out += [resource(p, c, m, d) for p, c, m, d in per_project]
    return ok({"host": out})


async def hosts_update(deps: Deps, request: Request) -> Response:
    call = _hosts_call(deps, request)
    host = request.path_params["host"]
    body = await call.body()
    status, maintenance = body.get("status"), body.get("maintenance_mode")
    if set(body) - {"status", "maintenance_mode"} or (status is None and maintenance is None):
        raise BadRequest("Set 'status' and/or 'maintenance_mode'.")
    if status not in (None, "enable", "disable") or maintenance not in (None, "enable",
                                                                        "disable"):
        raise BadRequest("'status' and 'maintenance_mode' are 'enable' or 'disable'.")
    await _compute_node(call, host)
    if maintenance is not None:
        raise NotImplementedYet("Maintenance mode is not supported by this hypervisor.")
    async with deps.db.session() as session:
        svc = await session.scalar(select(Service).where(
            Service.host == host, Service.binary == "nova-compute"))
        if svc is None:
            raise NotFound(f"Compute host {host} could not be found.")
        svc.disabled = status == "disable"
        svc.disabled_reason = None
    return ok({"host": host, "status": "enabled" if status == "enable" else "disabled"})


async def hosts_power(deps: Deps, request: Request) -> Response:
    call = _hosts_call(deps, request)
    await _compute_node(call, request.path_params["host"])
    raise NotImplementedYet("Host power actions are not supported by this hypervisor.")


# --- os-networks (a read-only proxy to the network service, removed in 2.36) -----

def _network_view(net: dict[str, Any]) -> dict[str, Any]:
    fields = ("bridge", "bridge_interface", "broadcast", "cidr", "cidr_v6", "created_at",
              "deleted", "deleted_at", "dhcp_server", "dhcp_start", "dns1", "dns2",
              "enable_dhcp", "gateway", "gateway_v6", "host", "injected", "mtu",
              "multi_host", "netmask", "netmask_v6", "priority", "project_id",
              "rxtx_base", "share_address", "updated_at", "vlan", "vpn_private_address",
              "vpn_public_address", "vpn_public_port")
    return {**dict.fromkeys(fields), "id": net["id"], "label": net.get("name", ""),
            "mtu": net.get("mtu"), "project_id": net.get("project_id")}


async def networks_index(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    if call.version >= "2.36":
        raise NotFound("os-networks was removed in microversion 2.36; use the network "
                       "service.")
    if deps.network is None:
        return ok({"networks": []})
    nets = (await deps.network.get("/networks", call.ctx.token)).get("networks", [])
    return ok({"networks": [_network_view(n) for n in nets]})


async def networks_show(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    ident = request.path_params["network_id"]
    if call.version >= "2.36" or deps.network is None:
        raise NotFound(f"Network {ident} could not be found.")
    net = (await deps.network.get(f"/networks/{ident}", call.ctx.token))["network"]
    return ok({"network": _network_view(net)})


# --- os-instance_usage_audit_log ----------------------------------------------

async def usage_audit_log(deps: Deps, request: Request) -> Response:
    """The period audit: no audit task runs here, so every host shows as not run."""
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    before = request.path_params.get("before")
    end = utcnow()
    if before is not None:
        try:
            end = datetime.fromisoformat(before.replace("Z", ""))
        except ValueError:
            raise BadRequest(f"Invalid timestamp for date {before}") from None
    end = end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    begin = (end - timedelta(days=1)).replace(day=1)
    async with deps.db.session() as session:
        hosts = sorted((await session.scalars(select(Service.host).where(
            Service.binary == "nova-compute"))).all())
    log = {"hosts_not_run": hosts, "log": {}, "num_hosts": len(hosts), "num_hosts_done": 0,
           "num_hosts_not_run": len(hosts), "num_hosts_running": 0,
           "overall_status": f"0 of {len(hosts)} hosts done. 0 errors.",
           "period_beginning": str(begin), "period_ending": str(end), "total_errors": 0,
           "total_instances": 0}
    key = "instance_usage_audit_log" if before is not None else "instance_usage_audit_logs"
    return ok({key: log})


# --- servers/{id}/diagnostics --------------------------------------------------

_DIAG_STATE = {PowerState.RUNNING: "running", PowerState.PAUSED: "paused",
               PowerState.SHUTDOWN: "shutdown", PowerState.CRASHED: "crashed",
               PowerState.SUSPENDED: "suspended"}


async def diagnostics(deps: Deps, request: Request) -> Response:
    """What the control plane knows of the guest (sizes, power state). The
    standard 2.48 body has a closed set of driver names; ``libvirt`` is the
    one whose guests ours resemble (QEMU), and what Nova's fake driver says."""
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    inst = await call.instance(request.path_params["server_id"])
    if not inst.host:
        raise NotFound(f"Instance {inst.uuid} has no host yet.")
    power = PowerState(inst.power_state)
    async with deps.db.session() as session:
        hv_type = await session.scalar(select(ComputeNode.hypervisor_type).where(
            ComputeNode.host == inst.host))
    if call.version < "2.48":
        return ok({"cpu0_time": 0, "memory": inst.memory_mb * 1024, "vda_read": 0,
                   "vda_write": 0})
    uptime = int((utcnow() - inst.launched_at.replace(tzinfo=None)).total_seconds()) \
        if inst.launched_at else None
    return ok({"state": _DIAG_STATE.get(power, "pending"), "driver": "libvirt",
               "hypervisor": hv_type, "hypervisor_os": "linux",
               "uptime": uptime, "config_drive": inst.config_drive in ("True", "true", "1"),
               "num_cpus": inst.vcpus, "num_nics": 0, "num_disks": 1,
               "memory_details": {"maximum": inst.memory_mb, "used": 0},
               "cpu_details": [{"id": i, "time": None, "utilisation": None}
                               for i in range(inst.vcpus)],
               "nic_details": [],
               "disk_details": [{"read_bytes": 0, "read_requests": 0, "write_bytes": 0,
                                 "write_requests": 0, "errors_count": 0}]})


# --- os-server-password and injectNetworkInfo --------------------------------------------

async def server_password(deps: Deps, request: Request) -> Response:
    """``GET``/``DELETE /servers/{id}/os-server-password``.

    In Nova a guest agent posts its encrypted password to the metadata
    service, which keeps it for this API. No guest here posts one (our
    metadata answers reads only), so the password is always empty and a
    clear is a no-op: the answers a Nova user gets for a guest without an agent.
    """
    call = Call(deps, request)
    write = request.method == "DELETE"
    await call.instance(request.path_params["server_id"],
                        "os_compute_api:os-server-password:clear" if write
                        else "os_compute_api:os-server-password:show")
    if write:
        return Response(status_code=204)
    return ok({"password": ""})


async def inject_network_info(call: Call, inst: Instance, body: Any) -> Response:
    """Admin: re-read the server's ports from the network service into its cached
    network info (guests here take their addresses by DHCP, so nothing is written
    into the guest)."""
    call.enforce("os_compute_api:os-admin-actions:inject_network_info",
                 {"project_id": inst.project_id})
    if call.deps.network is not None:
        await network.refresh_cache(call.deps.network, call.deps.db, inst.uuid)
    await call.deps.store.record_action(inst.uuid, "inject_network_info", call.request_id,
                                        call.project_id, call.ctx.user_id)
    return Response(status_code=202)
