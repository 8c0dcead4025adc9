"""Compute's view of the network service: ports for servers, as Nova's neutron API does.

The network service is reached only through its public REST API
(:class:`RestNetworkAPI`), with the caller's token where the caller's
rights matter (may this project use that network or port?) and with the
compute service's token otherwise (port bindings are admin-only).

The life of a server's ports:

* the API checks the request (:func:`parse_request`, :func:`validate`) and
  stores the resolved NICs in the instance's request spec;
* the agent of the chosen host creates (or takes over) and binds them
  (:func:`allocate`), the driver plugs them, and the agent waits for the
  network service's ``network-vif-plugged`` events (:class:`VifEvents`);
* the ports and their addresses are cached per instance
  (:func:`refresh_cache`) so the server views never call the network service;
  ``network-changed`` events refresh the cache;
* delete removes the ports compute created and unbinds the others
  (:func:`deallocate`); moves re-bind them to the new host (:func:`rebind`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from stratus.compute.models import InstanceInfoCache
from stratus.db import Database
from stratus.db.base import utcnow
from stratus.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    OverQuota,
    ServiceUnavailable,
    StratusError,
)

log = logging.getLogger("stratus.compute.network")

Vif = dict[str, Any]


class VifPlugTimeout(StratusError):
    """The network service did not report a server's ports up in time."""

    status = 500


# --- the REST client ------------------------------------------------------------

class RestNetworkAPI:
    """The network service's ``/v2.0`` API through ``runtime.client("network")``."""

    def __init__(self, runtime: Any, timeout: float = 30.0) -> None:
        self.runtime = runtime
        self.timeout = timeout

    async def call(self, method: str, path: str, *, token: str | None = None,
                   body: dict[str, Any] | None = None,
                   params: Any = None) -> dict[str, Any]:
        headers = {"X-Auth-Token": token} if token else await self.runtime.service_headers()
        try:
            async with self.runtime.client("network", headers=headers,
                                           timeout=self.timeout) as client:
                resp = await client.request(method, f"/v2.0{path}", json=body, params=params)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"The network service cannot be reached: {exc}") from exc
        if resp.status_code == 204:
            return {}
        data: dict[str, Any] = resp.json() if resp.content else {}
        if resp.status_code < 400:
            return data
        err = data.get("NeutronError") or {}
        kind = str(err.get("type", "")) if isinstance(err, dict) else ""
        message = str(err.get("message", resp.text[:300])) if isinstance(err, dict) \
            else resp.text[:300]
        raise _translate(resp.status_code, kind, message)

    async def get(self, path: str, token: str | None = None, **params: Any) -> dict[str, Any]:
        return await self.call("GET", path, token=token, params=params or None)


def _translate(status: int, kind: str, message: str) -> StratusError:
    if kind == "OverQuota":
        return OverQuota(message)
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status == 403:
        return Forbidden(message)
    if status == 400:
        return BadRequest(message)
    return ServiceUnavailable(f"The network service failed: {message}")


# --- the request, as the API accepts it -------------------------------------------

@dataclass(frozen=True)
class Nic:
    network_id: str | None = None
    port_id: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"network_id": self.network_id, "port_id": self.port_id,
                "fixed_ip": self.fixed_ip, "tag": self.tag}


AUTO = "auto"
NONE = "none"


def parse_request(value: Any, version: Any, *, present: bool) -> str | list[Nic]:
    """``networks`` of a create request → ``"auto"``, ``"none"`` or the NICs asked for.

    Before 2.37 an absent ``networks`` means "auto" without auto-allocation (the
    one usable network, if exactly one); from 2.37 it is required.
    """
    if not present:
        if version >= "2.37":
            raise BadRequest("'networks' is a required property at microversion 2.37 and "
                             "later: use \"none\", \"auto\" or a list.")
        return AUTO
    if value in (AUTO, NONE):  # 2.37 values, accepted (leniently) before it too
        return str(value)
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for field/attribute networks: {value!r}")
    nics: list[Nic] = []
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"uuid", "port", "fixed_ip", "tag"}:
            raise BadRequest(f"Invalid input for field/attribute networks: {item!r}")
        net, port, ip, tag = (item.get(k) for k in ("uuid", "port", "fixed_ip", "tag"))
        if tag is not None and version < "2.32":
            raise BadRequest("'tag' in networks needs microversion 2.32 or later.")
        for key, ident in (("uuid", net), ("port", port)):
            if ident is not None and not _is_uuid(ident):
                raise BadRequest(f"Bad networks format: network {key} {ident!r} is not in "
                                 "proper format")
        if port is None and net is None:
            raise BadRequest("Bad networks format: each network needs a 'uuid' or a 'port'.")
        if port is not None and ip is not None:
            raise BadRequest(f"Fixed IP {ip} cannot be used with port {port}: the port "
                             "already has its addresses.")
        if ip is not None:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                raise BadRequest(f"Invalid fixed IP address ({ip})") from None
        nics.append(Nic(None if port else net, port, ip, tag))
    return nics if nics else NONE


def _is_uuid(value: Any) -> bool:
    try:
        uuidlib.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


async def validate(api: RestNetworkAPI | None, token: str, project_id: str, requested: str | list[Nic],
                   max_count: int, min_count: int, *, is_admin: bool,
                   version: Any) -> tuple[list[Nic], int]:
    """Resolve ``requested`` with the caller's rights; returns the NICs and how many
    servers the project's port quota allows (at least ``min_count``, else OverQuota)."""
    if requested == NONE:
        return [], max_count
    if api is None:
        if requested == AUTO and version < "2.37":
            return [], max_count  # no network service: servers simply have no ports
        raise BadRequest("This cloud has no network service: use \"networks\": \"none\".")
    if requested == AUTO and version < "2.37":
        try:
            nics = await _auto(api, token, project_id, allocate=False)
        except ServiceUnavailable:
            log.warning("network service unreachable: booting without ports")
            nics = []
    elif requested == AUTO:
        nics = await _auto(api, token, project_id, allocate=True)
    else:
        assert isinstance(requested, list)
        nics = list(requested)
    if any(n.port_id for n in nics) and max_count > 1:
        raise BadRequest("Unable to launch multiple instances with a single configured "
                         "port ID. Please launch your instance one by one with different "
                         "ports.")
    if any(n.fixed_ip for n in nics) and max_count > 1:
        raise BadRequest("max_count cannot be greater than 1 if an fixed_ip is specified.")
    for nic in nics:
        if nic.port_id:
            port = await _visible(api, token, "ports", nic.port_id, "Port")
            if port.get("device_id"):
                raise Conflict(f"Port {nic.port_id} is still in use.")
            if not port.get("fixed_ips"):
                raise BadRequest(f"Port {nic.port_id} requires a FixedIP in order to be used.")
        else:
            net = await _visible(api, token, "networks", nic.network_id or "", "Network")
            if not net.get("subnets"):
                raise BadRequest(f"Network {net['id']} requires a subnet in order to boot "
                                 "instances on.")
            if net.get("router:external") and not net.get("shared") and not is_admin:
                raise Forbidden(f"It is not allowed to create an interface on external "
                                f"network {net['id']}")
    new_ports = sum(1 for n in nics if not n.port_id)
    if not new_ports:
        return nics, max_count
    quota = (await api.get(f"/quotas/{project_id}/details")).get("quota", {}).get("port", {})
    limit = int(quota.get("limit", -1))
    if limit < 0:
        return nics, max_count
    fits = max(0, limit - int(quota.get("used", 0)) - int(quota.get("reserved", 0))) \
        // new_ports
    if fits < min_count:
        raise OverQuota(f"Maximum number of ports exceeded: the project's port quota "
                        f"({limit}) cannot hold {new_ports * min_count} more.")
    return nics, min(max_count, fits)


async def _visible(api: RestNetworkAPI, token: str, kind: str, ident: str,
                   label: str) -> dict[str, Any]:
    try:
        data = await api.get(f"/{kind}/{ident}", token=token)
    except NotFound:
        raise BadRequest(f"{label} {ident} could not be found.") from None
    return dict(data[kind[:-1]])


async def _auto(api: RestNetworkAPI, token: str, project_id: str, *,
                allocate: bool) -> list[Nic]:
    """Nova's rule: the one usable network; none → get-me-a-network (2.37+)."""
    own = (await api.get("/networks", token=token, project_id=project_id,
                         shared="False")).get("networks", [])
    shared = (await api.get("/networks", token=token, shared="True")).get("networks", [])
    usable = {n["id"]: n for n in own + shared if not n.get("router:external")}
    if len(usable) > 1:
        raise Conflict("Multiple possible networks found, use a Network ID to be more "
                       "specific.")
    if usable:
        return [Nic(network_id=next(iter(usable)))]
    if not allocate:
        return []
    topo = await api.get(f"/auto-allocated-topology/{project_id}", token=token)
    return [Nic(network_id=topo["auto_allocated_topology"]["id"])]


# --- ports of an instance -----------------------------------------------------------

def owner(az: str | None) -> str:
    return f"compute:{az or 'nova'}"


async def create_ports(api: RestNetworkAPI, inst: Any, nics: list[dict[str, Any]],
                       security_groups: list[str]) -> list[Vif]:
    """Create (or take over) the ports of ``nics`` for ``inst``, not yet bound; all or
    nothing. Binding is a second step so the caller can wait for events first."""
    done: list[Vif] = []
    sg_ids = await security_group_ids(api, inst.project_id, security_groups)
    device = {"device_id": inst.uuid, "device_owner": owner(inst.availability_zone)}
    try:
        for nic in nics:
            if nic.get("port_id"):
                port = (await api.call("PUT", f"/ports/{nic['port_id']}",
                                       body={"port": device}))["port"]
                done.append(_vif(port, preserve=True, tag=nic.get("tag")))
                continue
            body: dict[str, Any] = {"network_id": nic["network_id"],
                                    "project_id": inst.project_id, **device}
            if nic.get("fixed_ip"):
                body["fixed_ips"] = [{"ip_address": nic["fixed_ip"]}]
            if sg_ids is not None:
                body["security_groups"] = sg_ids
            port = (await api.call("POST", "/ports", body={"port": body}))["port"]
            done.append(_vif(port, preserve=False, tag=nic.get("tag")))
    except BaseException:
        await release(api, done)
        raise
    return done


async def bind(api: RestNetworkAPI, vifs: list[Vif], host: str) -> list[str]:
    """Bind the ports to ``host``; returns the ids of those now waiting to be plugged."""
    pending = []
    for vif in vifs:
        try:
            port = (await api.call("PUT", f"/ports/{vif['port_id']}",
                                   body={"port": {"binding:host_id": host}}))["port"]
        except NotFound:
            continue
        if port.get("status") != "ACTIVE":
            pending.append(port["id"])
    return pending


async def security_group_ids(api: RestNetworkAPI, project_id: str, names: list[str]
                     ) -> list[str] | None:
    if not names or names == ["default"]:
        return None  # the network service gives new ports the project's default group
    groups = (await api.get("/security-groups", project_id=project_id)).get(
        "security_groups", [])
    out = []
    for name in names:
        match = [g["id"] for g in groups if name in (g["name"], g["id"])]
        if not match:
            raise BadRequest(f"Security group {name} not found for project {project_id}.")
        out.append(match[0])
    return out


def _vif(port: dict[str, Any], *, preserve: bool, tag: str | None = None) -> Vif:
    return {"port_id": port["id"], "network_id": port["network_id"],
            "mac": port["mac_address"], "preserve": preserve, "tag": tag,
            "fixed_ips": [{"address": ip["ip_address"],
                           "version": ipaddress.ip_address(ip["ip_address"]).version}
                          for ip in port.get("fixed_ips", [])]}


async def release(api: RestNetworkAPI, vifs: list[Vif]) -> None:
    """Delete the ports compute created, unbind the user's; best effort, never raises."""
    for vif in vifs:
        try:
            if vif.get("preserve"):
                await api.call("PUT", f"/ports/{vif['port_id']}", body={"port": {
                    "device_id": "", "device_owner": "", "binding:host_id": ""}})
            else:
                await api.call("DELETE", f"/ports/{vif['port_id']}")
        except NotFound:
            continue
        except Exception:
            log.warning("could not release port %s", vif["port_id"], exc_info=True)


async def deallocate_for_instance(api: RestNetworkAPI | None, db: Database, uuid: str) -> None:
    """At delete (or a failed first build): release the instance's ports, forget them."""
    vifs = (await cached(db, [uuid])).get(uuid, [])
    if api is not None and vifs:
        await release(api, vifs)
    async with db.session() as session:
        row = await session.get(InstanceInfoCache, uuid)
        if row is not None:
            await session.delete(row)


# --- the per-instance cache -----------------------------------------------------------

async def cached(db: Database, uuids: list[str]) -> dict[str, list[Vif]]:
    if not uuids:
        return {}
    out: dict[str, list[Vif]] = {}
    async with db.session() as session:
        for i in range(0, len(uuids), 500):
            rows = await session.execute(select(InstanceInfoCache).where(
                InstanceInfoCache.instance_uuid.in_(uuids[i:i + 500])))
            for row in rows.scalars():
                out[row.instance_uuid] = list(row.network_info or [])
    return out


async def store_cache(db: Database, uuid: str, vifs: list[Vif]) -> None:
    async with db.session() as session:
        row = await session.get(InstanceInfoCache, uuid)
        if row is None:
            session.add(InstanceInfoCache(instance_uuid=uuid, network_info=vifs))
        else:
            row.network_info = vifs
            row.updated_at = utcnow()


async def refresh_cache(api: RestNetworkAPI, db: Database, uuid: str) -> list[Vif]:
    """Read the instance's ports back from the network service (``preserve`` flags kept)."""
    old = {v["port_id"]: v for v in (await cached(db, [uuid])).get(uuid, [])}
    ports = (await api.get("/ports", device_id=uuid)).get("ports", [])
    vifs: list[Vif] = []
    names: dict[str, str] = {}
    groups: dict[str, str] = {}
    for port in ports:
        prior = old.get(port["id"], {})
        vif = _vif(port, preserve=bool(prior.get("preserve", True)), tag=prior.get("tag"))
        net = port["network_id"]
        if net not in names:
            try:
                names[net] = (await api.get(f"/networks/{net}"))["network"]["name"] or net
            except NotFound:
                names[net] = net
        vif["network_name"] = names[net]
        fips = (await api.get("/floatingips", port_id=port["id"])).get("floatingips", [])
        vif["floating_ips"] = [{"address": f["floating_ip_address"], "version": 4}
                               for f in fips]
        for sg in port.get("security_groups", []):
            if sg not in groups:
                try:
                    groups[sg] = (await api.get(f"/security-groups/{sg}")
                                  )["security_group"]["name"]
                except NotFound:
                    groups[sg] = sg
        vif["security_groups"] = [groups[sg] for sg in port.get("security_groups", [])]
        vifs.append(vif)
    vifs.sort(key=lambda v: [p["id"] for p in ports].index(v["port_id"]))
    await store_cache(db, uuid, vifs)
    return vifs


def addresses(vifs: list[Vif]) -> dict[str, list[dict[str, Any]]]:
    """The ``addresses`` of a server body, from its cached ports."""
    out: dict[str, list[dict[str, Any]]] = {}
    for vif in vifs:
        entries = out.setdefault(vif.get("network_name") or vif["network_id"], [])
        for kind, ips in (("fixed", vif.get("fixed_ips", [])),
                          ("floating", vif.get("floating_ips", []))):
            for ip in ips:
                entries.append({"version": ip["version"], "addr": ip["address"],
                                "OS-EXT-IPS:type": kind,
                                "OS-EXT-IPS-MAC:mac_addr": vif["mac"]})
    return out


def security_groups(vifs: list[Vif]) -> list[dict[str, str]]:
    names = dict.fromkeys(n for v in vifs for n in v.get("security_groups", []))
    return [{"name": n} for n in names]


# --- waiting for the network service's events ------------------------------------------

class VifEvents:
    """Futures for the ``network-vif-plugged`` events an agent waits on.

    Register first, then bind: the network service may report a port up at
    once (the no-op dataplane does), and an event that finds no waiter is lost.
    """

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], asyncio.Future[str]] = {}

    @contextmanager
    def expect(self, uuid: str, port_ids: list[str]) -> Iterator[dict[str, asyncio.Future[str]]]:
        loop = asyncio.get_running_loop()
        futures = {p: loop.create_future() for p in port_ids}
        for port_id, fut in futures.items():
            self._waiting[(uuid, port_id)] = fut
        try:
            yield futures
        finally:
            for port_id in futures:
                self._waiting.pop((uuid, port_id), None)

    def deliver(self, uuid: str, name: str, tag: str | None, status: str) -> bool:
        if name != "network-vif-plugged" or tag is None:
            return False
        fut = self._waiting.get((uuid, tag))
        if fut is None or fut.done():
            return False
        fut.set_result(status)
        return True

    @staticmethod
    async def wait(futures: dict[str, asyncio.Future[str]], timeout: float) -> None:
        if not futures or timeout <= 0:
            return
        _done, pending = await asyncio.wait(list(futures.values()), timeout=timeout)
        if pending:
            missing = [p for p, f in futures.items() if not f.done()]
            raise VifPlugTimeout(f"Virtual interface creation failed: no network-vif-plugged "
                                 f"event for port(s) {', '.join(missing)} within {timeout:g}s")
        failed = [p for p, f in futures.items() if f.result() == "failed"]
        if failed:
            raise VifPlugTimeout(f"Virtual interface creation failed: the network service "
                                 f"could not plug port(s) {', '.join(failed)}")
