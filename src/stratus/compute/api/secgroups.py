"""Nova's security-group proxies over the network service (deprecated from 2.36).

``/os-security-groups``, ``/os-security-group-rules``,
``/servers/{id}/os-security-groups`` and the ``addSecurityGroup`` /
``removeSecurityGroup`` server actions, shaped as Nova shapes them on top of
Neutron. Every call to the network service carries the caller's token, so the
network service enforces who sees and changes what. The group and rule
proxies answer 404 from microversion 2.36, as Nova does; the server's list and
the two actions stay.
"""

from __future__ import annotations

import ipaddress
import uuid as uuidlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stratus.compute import network
from stratus.compute.api.common import Call, Deps, accepted, ok, require_str
from stratus.compute.models import Instance
from stratus.errors import BadRequest, Conflict, NotFound


def _api(call: Call) -> network.RestNetworkAPI:
    if call.deps.network is None:
        raise NotFound("This cloud has no network service.")
    return call.deps.network


def _proxy_call(deps: Deps, request: Request) -> Call:
    call = Call(deps, request)
    if call.version >= "2.36":
        raise NotFound("The security group proxy APIs were removed in microversion 2.36; "
                       "use the network service.")
    return call


def _check_id(value: Any, what: str = "Security group id") -> str:
    try:
        return str(uuidlib.UUID(str(value)))
    except (ValueError, TypeError):
        raise BadRequest(f"{what} should be uuid") from None


# --- views -----------------------------------------------------------------------

def _rule_view(rule: dict[str, Any], groups: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    protocol = rule.get("protocol")
    lo, hi = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol and lo is None and hi is None:
        lo, hi = (1, 65535) if str(protocol).lower() in ("tcp", "udp") else (-1, -1)
    out: dict[str, Any] = {"id": rule["id"], "parent_group_id": rule["security_group_id"],
                           "ip_protocol": protocol, "from_port": lo, "to_port": hi,
                           "group": {}, "ip_range": {}}
    remote = rule.get("remote_group_id")
    if remote:
        source = groups.get(remote)
        if source is None:
            return None  # the remote group went away meanwhile: Nova leaves the rule out
        out["group"] = {"name": source.get("name"), "tenant_id": source.get("tenant_id")
                        or source.get("project_id")}
    else:
        cidr = rule.get("remote_ip_prefix")
        if not cidr:
            cidr = "::/0" if rule.get("ethertype") == "IPv6" else "0.0.0.0/0"
        out["ip_range"] = {"cidr": cidr}
    return out


def _group_view(group: dict[str, Any], groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rules = []
    for rule in group.get("security_group_rules") or []:
        if rule.get("direction") != "ingress":
            continue
        view = _rule_view(rule, groups)
        if view is not None:
            rules.append(view)
    return {"id": group["id"], "name": group.get("name"),
            "description": group.get("description") or "",
            "tenant_id": group.get("tenant_id") or group.get("project_id"), "rules": rules}


async def _remotes(call: Call, groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The groups named as remote_group_id by ``groups``' rules, by id."""
    known = {g["id"]: g for g in groups}
    for group in groups:
        for rule in group.get("security_group_rules") or []:
            remote = rule.get("remote_group_id")
            if remote and remote not in known:
                try:
                    known[remote] = (await _api(call).get(
                        f"/security-groups/{remote}", call.ctx.token))["security_group"]
                except NotFound:
                    continue
    return known


async def _views(call: Call, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    remotes = await _remotes(call, groups)
    return [_group_view(g, remotes) for g in groups]


async def _get_group(call: Call, ident: str) -> dict[str, Any]:
    try:
        group: dict[str, Any] = (await _api(call).get(
            f"/security-groups/{ident}", call.ctx.token))["security_group"]
    except NotFound:
        raise NotFound(f"Security group {ident} not found.") from None
    return group


def _group_body(body: dict[str, Any]) -> tuple[str, str]:
    name = require_str(body, "name")
    description = require_str(body, "description", allow_empty=True)
    return str(name), str(description)


# --- /os-security-groups ------------------------------------------------------------

async def index(deps: Deps, request: Request) -> Response:
    call = _proxy_call(deps, request)
    params: dict[str, Any] = {}
    all_tenants = call.query("all_tenants")
    if not (call.is_admin and all_tenants is not None and all_tenants.lower() not in (
            "0", "false", "no", "off")):
        params["project_id"] = call.project_id
    groups = (await _api(call).get("/security-groups", call.ctx.token, **params)).get(
        "security_groups", [])
    groups.sort(key=lambda g: (str(g.get("project_id") or ""), str(g.get("name") or "")))
    offset = call.query_int("offset", 0) or 0
    limit = call.query_int("limit")
    groups = groups[offset:] if limit is None else groups[offset:offset + limit]
    return ok({"security_groups": await _views(call, groups)})


async def create(deps: Deps, request: Request) -> Response:
    call = _proxy_call(deps, request)
    name, description = _group_body(await call.body("security_group"))
    group = (await _api(call).call("POST", "/security-groups", token=call.ctx.token, body={
        "security_group": {"name": name, "description": description}}))["security_group"]
    return ok({"security_group": (await _views(call, [group]))[0]})


async def show(deps: Deps, request: Request) -> Response:
    call = _proxy_call(deps, request)
    ident = _check_id(request.path_params["group_id"])
    group = await _get_group(call, ident)
    return ok({"security_group": (await _views(call, [group]))[0]})


async def update(deps: Deps, request: Request) -> Response:
    call = _proxy_call(deps, request)
    ident = _check_id(request.path_params["group_id"])
    name, description = _group_body(await call.body("security_group"))
    await _get_group(call, ident)
    group = (await _api(call).call("PUT", f"/security-groups/{ident}", token=call.ctx.token,
                                   body={"security_group": {"name": name,
                                                            "description": description}})
             )["security_group"]
    return ok({"security_group": (await _views(call, [group]))[0]})


async def delete(deps: Deps, request: Request) -> Response:
    call = _proxy_call(deps, request)
    ident = _check_id(request.path_params["group_id"])
    group = await _get_group(call, ident)
    if group.get("name") == "default":
        raise BadRequest("Removing default security group not allowed.")
    try:
        await _api(call).call("DELETE", f"/security-groups/{ident}", token=call.ctx.token)
    except Conflict as exc:
        raise BadRequest(str(exc)) from None  # in use: Nova answers 400
    return accepted()


# --- /os-security-group-rules ---------------------------------------------------------

def _port(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {name}: must be an integer")
    try:
        return int(str(value).strip())
    except ValueError:
        raise BadRequest(f"Invalid input for field/attribute {name}: {value!r} is not an "
                         "integer") from None


def _rule_request(body: dict[str, Any]) -> dict[str, Any]:
    """Nova's ``_rule_args_to_dict``, validated, as a Neutron rule body (no group id)."""
    protocol = body.get("ip_protocol")
    group_id = body.get("group_id")
    cidr = body.get("cidr")
    from_port, to_port = body.get("from_port"), body.get("to_port")
    rule: dict[str, Any] = {"direction": "ingress", "ethertype": "IPv4"}
    if group_id is not None:
        rule["remote_group_id"] = _check_id(group_id)
    else:
        cidr = cidr or "0.0.0.0/0"
        try:
            net = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            raise BadRequest(f"Invalid cidr {cidr}.") from None
        if net.prefixlen == 0 and int(net.network_address) != 0:
            raise BadRequest(f"Bad prefix for network in cidr {cidr}")
        rule["remote_ip_prefix"] = str(cidr)  # as given: Nova echoes the caller's cidr
        rule["ethertype"] = f"IPv{net.version}"
    if protocol is None and from_port is None and to_port is None:
        if group_id is None:
            raise BadRequest("Not enough parameters to build a valid rule.")
        return rule
    if protocol is None or from_port is None or to_port is None:
        raise BadRequest("Not enough parameters to build a valid rule.")
    proto = str(protocol).lower()
    if proto not in ("tcp", "udp", "icmp"):
        raise BadRequest(f"Invalid IP protocol {protocol}.")
    lo, hi = _port(from_port, "from_port"), _port(to_port, "to_port")
    if proto in ("tcp", "udp"):
        if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
            raise BadRequest("Invalid port range: valid TCP/UDP ports are 1-65535.")
        if lo > hi:
            raise BadRequest(f"Invalid port range {lo}:{hi}. Former value cannot be greater "
                             "than the later")
    else:
        if not (-1 <= lo <= 255 and -1 <= hi <= 255):
            raise BadRequest(f"Invalid port range {lo}:{hi}. For ICMP, the type:code must be "
                             "valid")
        if lo == -1 and hi != -1:
            raise BadRequest("Invalid port range: ICMP code given without a type.")
    rule["protocol"] = proto
    if proto == "icmp":
        if lo != -1:
            rule["port_range_min"] = lo
        if hi != -1:
            rule["port_range_max"] = hi
    else:
        rule["port_range_min"], rule["port_range_max"] = lo, hi
    return rule


async def rule_create(deps: Deps, request: Request) -> Response:
    call = _proxy_call(deps, request)
    body = await call.body("security_group_rule")
    # Nova's order: the parent (and source) group must exist before the rule is checked.
    parent = await _get_group(call, _check_id(body.get("parent_group_id")))
    source: dict[str, Any] | None = None
    if body.get("group_id") is not None:
        source = await _get_group(call, _check_id(body["group_id"]))
    rule = _rule_request(body)
    rule["security_group_id"] = parent["id"]
    try:
        created = (await _api(call).call("POST", "/security-group-rules", token=call.ctx.token,
                                         body={"security_group_rule": rule})
                   )["security_group_rule"]
    except Conflict:
        raise BadRequest(f"This rule already exists in group {parent['id']}") from None
    groups = {parent["id"]: parent}
    if source is not None:
        groups[source["id"]] = source
    view = _rule_view(created, groups)
    if view is not None and view["ip_range"] and body.get("cidr"):
        # The network service keeps the network address; Nova echoes the caller's cidr.
        view["ip_range"] = {"cidr": str(body["cidr"])}
    return ok({"security_group_rule": view})


async def rule_delete(deps: Deps, request: Request) -> Response:
    call = _proxy_call(deps, request)
    ident = _check_id(request.path_params["rule_id"], "Security group rule id")
    try:
        await _api(call).call("DELETE", f"/security-group-rules/{ident}", token=call.ctx.token)
    except NotFound:
        raise NotFound(f"Security group rule {ident} not found.") from None
    return accepted()


# --- a server's groups ----------------------------------------------------------------------

async def _ports(call: Call, inst: Instance) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = (await _api(call).get(
        "/ports", call.ctx.token, device_id=inst.uuid)).get("ports", [])
    return ports


async def server_index(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    inst = await call.instance(request.path_params["server_id"])
    if deps.network is None:
        return ok({"security_groups": []})
    ids = list(dict.fromkeys(sg for p in await _ports(call, inst)
                             for sg in p.get("security_groups") or []))
    groups = []
    for ident in ids:
        try:
            groups.append(await _get_group(call, ident))
        except NotFound:
            continue
    return ok({"security_groups": await _views(call, groups)})


async def _resolve(call: Call, name: str) -> str:
    """The id of the caller's group called ``name`` (or with that id); 404/409 as Nova."""
    api = _api(call)
    if _is_uuid(name):
        try:
            return str((await api.get(f"/security-groups/{name}", call.ctx.token)
                        )["security_group"]["id"])
        except NotFound:
            pass
    groups = (await api.get("/security-groups", call.ctx.token, name=name,
                            project_id=call.project_id)).get("security_groups", [])
    matches = [g["id"] for g in groups if g.get("name") == name]
    if not matches:
        raise NotFound(f"Security group {name} not found for project {call.project_id}.")
    if len(matches) > 1:
        raise Conflict(f"Multiple security groups found matching '{name}'. Use an ID to be "
                       "more specific.")
    return str(matches[0])


def _is_uuid(value: str) -> bool:
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True


def _action_name(body: Any) -> str:
    if not isinstance(body, dict):
        raise BadRequest("The action body must be an object with a 'name'.")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Security group name cannot be empty")
    return name.strip()


async def add_security_group(call: Call, inst: Instance, body: Any) -> Response:
    name = _action_name(body)
    group_id = await _resolve(call, name)
    ports = await _ports(call, inst)
    if not ports:
        raise NotFound(f"instance_id {inst.uuid} could not be found as device id on any "
                       "ports")
    for port in ports:
        if port.get("port_security_enabled") is False:
            raise BadRequest(f"Cannot add security group {name} to {inst.uuid} since the "
                             f"port {port['id']} does not meet security requirements")
    for port in ports:
        current = list(port.get("security_groups") or [])
        if group_id in current:
            continue
        await _api(call).call("PUT", f"/ports/{port['id']}", token=call.ctx.token,
                              body={"port": {"security_groups": [*current, group_id]}})
    await network.refresh_cache(_api(call), call.deps.db, inst.uuid)
    return accepted()


async def remove_security_group(call: Call, inst: Instance, body: Any) -> Response:
    name = _action_name(body)
    group_id = await _resolve(call, name)
    ports = await _ports(call, inst)
    found = False
    for port in ports:
        current = list(port.get("security_groups") or [])
        if group_id not in current:
            continue
        found = True
        await _api(call).call("PUT", f"/ports/{port['id']}", token=call.ctx.token, body={
            "port": {"security_groups": [g for g in current if g != group_id]}})
    if not found:
        raise BadRequest(f"Security group {name} not associated with the instance "
                         f"{inst.uuid}")
    await network.refresh_cache(_api(call), call.deps.db, inst.uuid)
    return accepted()


__all__ = ["add_security_group", "create", "delete", "index", "remove_security_group",
           "rule_create", "rule_delete", "server_index", "show", "update"]
