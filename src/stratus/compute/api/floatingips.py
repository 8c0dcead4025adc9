"""Nova's floating-IP and tenant-network proxies over the network service.

``/os-floating-ips``, ``/os-floating-ip-pools`` and ``/os-tenant-networks``
answer until microversion 2.35 (404 from 2.36, as Nova); the
``addFloatingIp`` / ``removeFloatingIp`` server actions until 2.43. Every
call to the network service carries the caller's token, so the network
service decides who sees and changes what; these handlers only reshape.
A pool is an external network, named by its name.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stratus.compute import network
from stratus.compute.api.common import Call, Deps, accepted, ok
from stratus.compute.models import Instance
from stratus.errors import BadRequest, Conflict, NotFound, OverQuota

REMOVED = "2.36"
ACTIONS_REMOVED = "2.44"


def _call(deps: Deps, request: Request, what: str) -> tuple[Call, network.RestNetworkAPI]:
    call = Call(deps, request)
    if call.version >= REMOVED:
        raise NotFound(f"{what} was removed in microversion {REMOVED}; use the network service.")
    if deps.network is None:
        raise NotFound("This cloud has no network service.")
    return call, deps.network


def _uuid_or_404(value: str, message: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise NotFound(message) from None


class _Names:
    """Network names by id, fetched once per request."""

    def __init__(self, api: network.RestNetworkAPI, token: str | None) -> None:
        self.api, self.token, self.cache = api, token, {}  # type: ignore[var-annotated]

    async def __call__(self, net_id: str | None) -> str | None:
        if not net_id:
            return None
        if net_id not in self.cache:
            try:
                net = (await self.api.get(f"/networks/{net_id}", self.token))["network"]
                self.cache[net_id] = net.get("name") or net_id
            except NotFound:
                self.cache[net_id] = net_id
        return self.cache[net_id]  # type: ignore[no-any-return]


async def _view(fip: dict[str, Any], names: _Names,
                ports: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    instance_id = None
    port_id = fip.get("port_id")
    if port_id:
        port = (ports or {}).get(port_id)
        if port is None:
            try:
                port = (await names.api.get(f"/ports/{port_id}", names.token))["port"]
            except NotFound:
                port = {}
        instance_id = port.get("device_id") or None
    return {"id": fip["id"], "ip": fip.get("floating_ip_address"),
            "fixed_ip": fip.get("fixed_ip_address"), "instance_id": instance_id,
            "pool": await names(fip.get("floating_network_id"))}


# --- /os-floating-ips -------------------------------------------------------------------

async def index(deps: Deps, request: Request) -> Response:
    call, api = _call(deps, request, "os-floating-ips")
    call.enforce("os_compute_api:os-floating-ips:list", {"project_id": call.project_id})
    fips = (await api.get("/floatingips", call.ctx.token,
                          project_id=call.project_id)).get("floatingips", [])
    ports = {p["id"]: p for p in (await api.get("/ports", call.ctx.token)).get("ports", [])}
    names = _Names(api, call.ctx.token)
    return ok({"floating_ips": [await _view(f, names, ports) for f in fips]})


async def _get(call: Call, api: network.RestNetworkAPI, ident: str) -> dict[str, Any]:
    message = f"Floating IP not found for ID {ident}"
    _uuid_or_404(ident, message)
    try:
        fip: dict[str, Any] = (await api.get(f"/floatingips/{ident}", call.ctx.token))[
            "floatingip"]
    except NotFound:
        raise NotFound(message) from None
    return fip


async def show(deps: Deps, request: Request) -> Response:
    call, api = _call(deps, request, "os-floating-ips")
    call.enforce("os_compute_api:os-floating-ips:show", {"project_id": call.project_id})
    fip = await _get(call, api, request.path_params["floating_ip_id"])
    return ok({"floating_ip": await _view(fip, _Names(api, call.ctx.token))})


async def _pool_id(call: Call, api: network.RestNetworkAPI, pool: str | None) -> str:
    pool = pool or call.deps.settings.compute.default_floating_pool
    nets = (await api.get("/networks", call.ctx.token, **{"router:external": "True"})
            ).get("networks", [])
    for net in nets:
        if pool in (net.get("name"), net.get("id")):
            return str(net["id"])
    raise NotFound("Floating IP pool not found.")


async def create(deps: Deps, request: Request) -> Response:
    call, api = _call(deps, request, "os-floating-ips")
    call.enforce("os_compute_api:os-floating-ips:create", {"project_id": call.project_id})
    body = await call.body() if await request.body() else {}
    pool = body.get("pool")
    if pool is not None and not isinstance(pool, str):
        raise BadRequest("Invalid input for field/attribute pool: must be a string.")
    net_id = await _pool_id(call, api, pool)
    try:
        fip = (await api.call("POST", "/floatingips", token=call.ctx.token, body={
            "floatingip": {"floating_network_id": net_id,
                           "project_id": call.project_id}}))["floatingip"]
    except OverQuota:
        raise OverQuota(f"IP allocation over quota in pool {pool or net_id}.") from None
    except (Conflict, BadRequest) as exc:
        raise NotFound(f"No more floating IPs in pool {pool or net_id}: {exc.message}") from None
    return ok({"floating_ip": await _view(fip, _Names(api, call.ctx.token))})


async def delete(deps: Deps, request: Request) -> Response:
    call, api = _call(deps, request, "os-floating-ips")
    call.enforce("os_compute_api:os-floating-ips:delete", {"project_id": call.project_id})
    fip = await _get(call, api, request.path_params["floating_ip_id"])
    owner = await _owner(call, api, fip)
    await api.call("DELETE", f"/floatingips/{fip['id']}", token=call.ctx.token)
    if owner:
        await network.refresh_cache(api, call.deps.db, owner)
    return accepted()


async def pools(deps: Deps, request: Request) -> Response:
    call, api = _call(deps, request, "os-floating-ip-pools")
    call.enforce("os_compute_api:os-floating-ip-pools:list", {"project_id": call.project_id})
    nets = (await api.get("/networks", call.ctx.token, **{"router:external": "True"})
            ).get("networks", [])
    return ok({"floating_ip_pools": [{"name": n.get("name") or n["id"]} for n in nets]})


# --- the server actions -------------------------------------------------------------------

async def _owner(call: Call, api: network.RestNetworkAPI, fip: dict[str, Any]) -> str | None:
    if not fip.get("port_id"):
        return None
    try:
        port = (await api.get(f"/ports/{fip['port_id']}", call.ctx.token))["port"]
    except NotFound:
        return None
    return port.get("device_id") or None


async def _by_address(call: Call, api: network.RestNetworkAPI, address: Any) -> dict[str, Any]:
    if not isinstance(address, str) or not address:
        raise BadRequest("Address not specified")
    found = (await api.get("/floatingips", call.ctx.token, floating_ip_address=address)
             ).get("floatingips", [])
    if not found:
        raise NotFound(f"floating IP not found for address {address}")
    return found[0]  # type: ignore[no-any-return]


def _action_body(call: Call, body: Any, name: str) -> dict[str, Any]:
    if call.version >= ACTIONS_REMOVED:
        raise NotFound(f"The {name} action was removed in microversion {ACTIONS_REMOVED}; "
                       "use the network service.")
    if call.deps.network is None:
        raise NotFound("This cloud has no network service.")
    if not isinstance(body, dict):
        raise BadRequest(f"The {name} action needs an object with an 'address'.")
    return body


async def add_floating_ip(call: Call, inst: Instance, body: Any) -> Response:
    body = _action_body(call, body, "addFloatingIp")
    api = call.deps.network
    assert api is not None
    fip = await _by_address(call, api, body.get("address"))
    fixed = body.get("fixed_address")
    if fixed is not None and not isinstance(fixed, str):
        raise BadRequest("Invalid input for field/attribute fixed_address.")
    ports = (await api.get("/ports", call.ctx.token, device_id=inst.uuid)).get("ports", [])
    choice: tuple[str, str] | None = None
    for port in ports:
        for ip in port.get("fixed_ips") or []:
            address = ip.get("ip_address", "")
            if (fixed is None and ":" not in address) or address == fixed:
                choice = (port["id"], address)
                break
        if choice:
            break
    if choice is None:
        if fixed is not None:
            raise BadRequest("Specified fixed address not assigned to instance")
        raise BadRequest("No nw_info cache associated with instance")
    previous = await _owner(call, api, fip)
    try:
        await api.call("PUT", f"/floatingips/{fip['id']}", token=call.ctx.token, body={
            "floatingip": {"port_id": choice[0], "fixed_ip_address": choice[1]}})
    except (Conflict, BadRequest) as exc:
        raise BadRequest(f"Unable to associate floating IP {fip['floating_ip_address']} to "
                         f"fixed IP {choice[1]} for instance {inst.uuid}. Error: "
                         f"{exc.message}") from None
    await network.refresh_cache(api, call.deps.db, inst.uuid)
    if previous and previous != inst.uuid:
        await network.refresh_cache(api, call.deps.db, previous)
    return accepted()


async def remove_floating_ip(call: Call, inst: Instance, body: Any) -> Response:
    body = _action_body(call, body, "removeFloatingIp")
    api = call.deps.network
    assert api is not None
    fip = await _by_address(call, api, body.get("address"))
    if await _owner(call, api, fip) != inst.uuid:
        raise Conflict(f"Floating IP {fip['floating_ip_address']} is not associated with "
                       f"instance {inst.uuid}.")
    await api.call("PUT", f"/floatingips/{fip['id']}", token=call.ctx.token,
                   body={"floatingip": {"port_id": None}})
    await network.refresh_cache(api, call.deps.db, inst.uuid)
    return accepted()


# --- /os-tenant-networks ----------------------------------------------------------------------

def _network_view(net: dict[str, Any]) -> dict[str, Any]:
    # Nova's view of a Neutron network carries no cidr: it prints "None".
    return {"id": net["id"], "label": net.get("name") or "", "cidr": "None"}


async def tenant_networks_index(deps: Deps, request: Request) -> Response:
    call, api = _call(deps, request, "os-tenant-networks")
    call.enforce("os_compute_api:os-tenant-networks:list", {"project_id": call.project_id})
    nets = (await api.get("/networks", call.ctx.token)).get("networks", [])
    mine = [n for n in nets if n.get("shared")
            or (n.get("project_id") or n.get("tenant_id")) == call.project_id]
    return ok({"networks": [_network_view(n) for n in mine]})


async def tenant_networks_show(deps: Deps, request: Request) -> Response:
    call, api = _call(deps, request, "os-tenant-networks")
    call.enforce("os_compute_api:os-tenant-networks:show", {"project_id": call.project_id})
    ident = request.path_params["network_id"]
    message = f"Network {ident} could not be found."
    _uuid_or_404(ident, message)
    try:
        net = (await api.get(f"/networks/{ident}", call.ctx.token))["network"]
    except NotFound:
        raise NotFound(message) from None
    return ok({"network": _network_view(net)})


__all__ = ["add_floating_ip", "create", "delete", "index", "pools", "remove_floating_ip",
           "show", "tenant_networks_index", "tenant_networks_show"]
