"""``/servers/{id}/os-interface``: a server's ports (interfaceAttachments).

Attach creates (or takes over) a port and binds it to the server's host;
detach deletes the ports compute created and unbinds the user's own. The
guest is not hot-plugged yet: the port is wired when the guest next starts.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stratus.compute import network
from stratus.compute.api.common import Call, Deps, accepted, ok
from stratus.errors import BadRequest, Conflict, NotFound


def _api(call: Call) -> network.RestNetworkAPI:
    if call.deps.network is None:
        raise BadRequest("This cloud has no network service.")
    return call.deps.network


def _view(call: Call, port: dict[str, Any]) -> dict[str, Any]:
    out = {"port_state": port["status"], "port_id": port["id"], "net_id": port["network_id"],
           "mac_addr": port["mac_address"],
           "fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                         for ip in port.get("fixed_ips", [])]}
    if call.version >= "2.70":
        out["tag"] = None
    return out


async def index(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await call.instance(request.path_params["server_id"])
    ports = (await _api(call).get("/ports", device_id=inst.uuid)).get("ports", [])
    return ok({"interfaceAttachments": [_view(call, p) for p in ports]})


async def show(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await call.instance(request.path_params["server_id"])
    port_id = request.path_params["port_id"]
    try:
        port = (await _api(call).get(f"/ports/{port_id}"))["port"]
    except NotFound:
        port = {}
    if port.get("device_id") != inst.uuid:
        raise NotFound(f"Port {port_id} is not attached to instance {inst.uuid}.")
    return ok({"interfaceAttachment": _view(call, port)})


async def attach(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await call.instance(request.path_params["server_id"], "os_compute_api:servers:update")
    call.check_lock(inst, "attach_interface")
    body = (await call.body()).get("interfaceAttachment") or {}
    if not isinstance(body, dict):
        raise BadRequest("'interfaceAttachment' must be an object.")
    if not inst.host or inst.task_state is not None or inst.vm_state not in (
            "active", "stopped", "paused", "suspended"):
        raise Conflict(f"Cannot 'attach_interface' instance {inst.uuid} while it is in "
                       f"vm_state {inst.vm_state}")
    net_id, port_id = body.get("net_id"), body.get("port_id")
    if net_id and port_id:
        raise BadRequest("Must not input both network_id and port_id")
    fixed = body.get("fixed_ips") or []
    if fixed and (not isinstance(fixed, list) or len(fixed) != 1 or not isinstance(
            fixed[0], dict) or "ip_address" not in fixed[0]):
        raise BadRequest("Invalid fixed_ips: one {\"ip_address\": ...} is allowed.")
    if port_id:
        requested: Any = [network.Nic(port_id=port_id)]
    elif net_id:
        requested = [network.Nic(network_id=net_id,
                                 fixed_ip=fixed[0]["ip_address"] if fixed else None)]
    else:
        requested = network.AUTO
    api = _api(call)
    nics, _ = await network.validate(api, call.ctx.token, inst.project_id, requested, 1, 1,
                                     is_admin=call.is_admin, version="2.1")
    if not nics:
        raise BadRequest("No network is available to attach an interface to.")
    vifs = await network.create_ports(api, inst, [n.to_json() for n in nics],
                                      list((inst.request_spec or {}).get("security_groups")
                                           or []))
    old = (await network.cached(deps.db, [inst.uuid])).get(inst.uuid, [])
    await network.store_cache(deps.db, inst.uuid, old + vifs)
    try:
        await network.bind(api, vifs, inst.host)
    except Exception:
        await network.release(api, vifs)
        await network.store_cache(deps.db, inst.uuid, old)
        raise
    await network.refresh_cache(api, deps.db, inst.uuid)
    port = (await api.get(f"/ports/{vifs[0]['port_id']}"))["port"]
    return ok({"interfaceAttachment": _view(call, port)})


async def detach(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await call.instance(request.path_params["server_id"], "os_compute_api:servers:update")
    call.check_lock(inst, "detach_interface")
    port_id = request.path_params["port_id"]
    api = _api(call)
    vifs = (await network.cached(deps.db, [inst.uuid])).get(inst.uuid, [])
    vif = next((v for v in vifs if v["port_id"] == port_id), None)
    if vif is None:
        try:
            port = (await api.get(f"/ports/{port_id}"))["port"]
        except NotFound:
            port = {}
        if port.get("device_id") != inst.uuid:
            raise NotFound(f"Port {port_id} is not attached to instance {inst.uuid}.")
        vif = {"port_id": port_id, "preserve": True}
    await network.release(api, [vif])
    await network.store_cache(deps.db, inst.uuid, [v for v in vifs if v["port_id"] != port_id])
    return accepted()
