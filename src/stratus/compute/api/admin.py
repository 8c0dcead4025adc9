"""Operator APIs: os-services, os-hypervisors, os-availability-zone,
os-migrations, os-server-external-events, os-simple-tenant-usage (os-aggregates
lives in :mod:`stratus.compute.api.aggregates`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from starlette.requests import Request
from starlette.responses import Response

from stratus.compute import network
from stratus.compute.aggregates import host_zones
from stratus.compute.api.common import Call, Deps, ok, require_bool, require_str
from stratus.compute.api.views import migration as migration_view
from stratus.compute.api.views import ts_micro
from stratus.compute.models import ComputeNode, Instance, Migration, Service
from stratus.compute.servicegroup import is_up
from stratus.db.base import utcnow
from stratus.errors import BadRequest, NotFound

# --- os-services -------------------------------------------------------------


def _service_view(call: Call, s: Service, zones: dict[str, str] | None = None
                  ) -> dict[str, Any]:
    default = call.deps.settings.compute.default_availability_zone
    out: dict[str, Any] = {
        "id": s.uuid if call.version >= "2.53" else s.id, "binary": s.binary, "host": s.host,
        "zone": s.zone if s.binary != "nova-compute" else (zones or {}).get(s.host, default),
        "status": "disabled" if s.disabled else "enabled",
        "state": "up" if is_up(s, call.deps.settings.compute.service_down_time) else "down",
        "updated_at": ts_micro(s.last_seen_up or s.updated_at),
        "disabled_reason": s.disabled_reason,
    }
    if call.version >= "2.11":
        out["forced_down"] = bool(s.forced_down)
    return out


async def services_index(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    stmt = select(Service).order_by(Service.id)
    if host := call.query("host"):
        stmt = stmt.where(Service.host == host)
    if binary := call.query("binary"):
        stmt = stmt.where(Service.binary == binary)
    async with deps.db.session() as session:
        rows = (await session.execute(stmt)).scalars().all()
        zones = await host_zones(session, deps.settings.compute.default_availability_zone)
    return ok({"services": [_service_view(call, s, zones) for s in rows]})


async def _service_by(call: Call, **where: Any) -> Service:
    async with call.deps.db.session() as session:
        stmt = select(Service)
        for key, value in where.items():
            stmt = stmt.where(getattr(Service, key) == value)
        svc = await session.scalar(stmt)
    if svc is None:
        raise NotFound(f"Service {' '.join(map(str, where.values()))} could not be found.")
    return svc


async def _save(call: Call, svc: Service, **values: Any) -> Service:
    async with call.deps.db.session() as session:
        row = await session.get(Service, svc.id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)
    return row


async def services_update(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    ident = request.path_params["service_id"]
    body = await call.body()
    if call.version >= "2.53":
        svc = await _service_by(call, uuid=ident)
        values: dict[str, Any] = {}
        if "status" in body:
            if body["status"] not in ("enabled", "disabled"):
                raise BadRequest("status must be 'enabled' or 'disabled'")
            values["disabled"] = body["status"] == "disabled"
            values["disabled_reason"] = body.get("disabled_reason") if values["disabled"] \
                else None
        elif "disabled_reason" in body:
            raise BadRequest("disabled_reason needs status 'disabled'")
        if "forced_down" in body:
            values["forced_down"] = require_bool(body["forced_down"], "forced_down")
        if not values:
            raise BadRequest("Set status and/or forced_down.")
        svc = await _save(call, svc, **values)
        return ok({"service": _service_view(call, svc)})
    host = require_str(body, "host")
    binary = require_str(body, "binary")
    svc = await _service_by(call, host=host, binary=binary)
    if ident == "enable":
        await _save(call, svc, disabled=False, disabled_reason=None)
        return ok({"service": {"host": host, "binary": binary, "status": "enabled"}})
    if ident == "disable":
        await _save(call, svc, disabled=True)
        return ok({"service": {"host": host, "binary": binary, "status": "disabled"}})
    if ident == "disable-log-reason":
        reason = require_str(body, "disabled_reason")
        await _save(call, svc, disabled=True, disabled_reason=reason)
        return ok({"service": {"host": host, "binary": binary, "status": "disabled",
                               "disabled_reason": reason}})
    if ident == "force-down" and call.version >= "2.11":
        forced = require_bool(body.get("forced_down"), "forced_down")
        await _save(call, svc, forced_down=forced)
        return ok({"service": {"host": host, "binary": binary, "forced_down": forced}})
    raise NotFound(f"Unknown service action {ident}")


async def services_delete(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    ident = request.path_params["service_id"]
    key = {"uuid": ident} if call.version >= "2.53" else {"id": int(ident)} \
        if ident.isdigit() else {"uuid": ident}
    svc = await _service_by(call, **key)
    async with deps.db.session() as session:
        await session.execute(delete(Service).where(Service.id == svc.id))
        if svc.binary == "nova-compute":
            await session.execute(delete(ComputeNode).where(ComputeNode.host == svc.host))
    return Response(status_code=204)


# --- os-hypervisors ----------------------------------------------------------

async def _nodes(call: Call) -> list[tuple[ComputeNode, Service | None]]:
    async with call.deps.db.session() as session:
        nodes = (await session.execute(select(ComputeNode).order_by(ComputeNode.id))
                 ).scalars().all()
        svcs = {s.host: s for s in (await session.execute(select(Service).where(
            Service.binary == "nova-compute"))).scalars()}
    return [(n, svcs.get(n.host)) for n in nodes]


def _hv_view(call: Call, n: ComputeNode, s: Service | None, detail: bool) -> dict[str, Any]:
    up = bool(s and is_up(s, call.deps.settings.compute.service_down_time))
    out: dict[str, Any] = {"id": n.uuid if call.version >= "2.53" else n.id,
                           "hypervisor_hostname": n.hypervisor_hostname,
                           "state": "up" if up else "down",
                           "status": "disabled" if s and s.disabled else "enabled"}
    if not detail:
        return out
    out.update({"host_ip": n.host_ip, "hypervisor_type": n.hypervisor_type,
                "hypervisor_version": n.hypervisor_version,
                "service": {"host": n.host, "id": (s.uuid if call.version >= "2.53" else s.id)
                            if s else None, "disabled_reason": s.disabled_reason if s else None}})
    if call.version < "2.88":
        out.update({"vcpus": n.vcpus, "vcpus_used": n.vcpus_used, "memory_mb": n.memory_mb,
                    "memory_mb_used": n.memory_mb_used, "local_gb": n.local_gb,
                    "local_gb_used": n.local_gb_used,
                    "free_ram_mb": n.memory_mb - n.memory_mb_used,
                    "free_disk_gb": n.local_gb - n.local_gb_used, "current_workload": 0,
                    "running_vms": n.running_vms, "disk_available_least": n.local_gb
                    - n.local_gb_used, "cpu_info": _cpu_info(call, n.cpu_info)})
    else:
        out["uptime"] = None
    return out


def _cpu_info(call: Call, raw: str) -> Any:
    if call.version >= "2.28":
        try:
            return json.loads(raw or "{}")
        except ValueError:
            return {}
    return raw or "{}"


async def _servers_on(call: Call, host: str) -> list[dict[str, str]]:
    async with call.deps.db.session() as session:
        rows = (await session.execute(select(Instance.uuid, Instance.id).where(
            Instance.host == host, Instance.deleted.is_(False)))).all()
    return [{"uuid": u, "name": f"instance-{i:08x}"} for u, i in rows]


async def hypervisors_list(deps: Deps, request: Request, detail: bool) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    pattern = call.query("hypervisor_hostname_pattern")
    with_servers = call.version >= "2.53" and require_bool(
        call.query("with_servers") or "false", "with_servers")
    out = []
    for n, s in await _nodes(call):
        if pattern and pattern not in n.hypervisor_hostname:
            continue
        view = _hv_view(call, n, s, detail)
        if with_servers:
            servers = await _servers_on(call, n.host)
            if servers:
                view["servers"] = servers
        out.append(view)
    if pattern and not out:
        raise NotFound(f"No hypervisor matching {pattern!r} could be found.")
    return ok({"hypervisors": out})


async def hypervisors_index(deps: Deps, request: Request) -> Response:
    return await hypervisors_list(deps, request, False)


async def hypervisors_detail(deps: Deps, request: Request) -> Response:
    return await hypervisors_list(deps, request, True)


async def hypervisor_show(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    ident = request.path_params["hv_id"]
    for n, s in await _nodes(call):
        if ident in (n.uuid, str(n.id)):
            view = _hv_view(call, n, s, True)
            if call.version >= "2.53" and require_bool(call.query("with_servers") or "false",
                                                       "with_servers"):
                view["servers"] = await _servers_on(call, n.host)
            return ok({"hypervisor": view})
    raise NotFound(f"Hypervisor {ident} could not be found.")


async def hypervisor_statistics(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    if call.version >= "2.88":
        raise NotFound("os-hypervisors/statistics was removed in microversion 2.88.")
    nodes = [n for n, _ in await _nodes(call)]
    total = {"count": len(nodes), "vcpus": 0, "vcpus_used": 0, "memory_mb": 0,
             "memory_mb_used": 0, "local_gb": 0, "local_gb_used": 0, "free_ram_mb": 0,
             "free_disk_gb": 0, "current_workload": 0, "running_vms": 0,
             "disk_available_least": 0}
    for n in nodes:
        for key in ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb",
                    "local_gb_used", "running_vms"):
            total[key] += getattr(n, key)
        total["free_ram_mb"] += n.memory_mb - n.memory_mb_used
        total["free_disk_gb"] += n.local_gb - n.local_gb_used
        total["disk_available_least"] += n.local_gb - n.local_gb_used
    return ok({"hypervisor_statistics": total})


async def hypervisor_uptime(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    if call.version >= "2.88":
        raise NotFound("os-hypervisors/{id}/uptime was removed in microversion 2.88.")
    ident = request.path_params["hv_id"]
    for n, s in await _nodes(call):
        if ident in (n.uuid, str(n.id)):
            view = _hv_view(call, n, s, False)
            view["uptime"] = " 00:00:00 up 1 day,  load average: 0.00, 0.00, 0.00"
            return ok({"hypervisor": view})
    raise NotFound(f"Hypervisor {ident} could not be found.")


async def hypervisor_search(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    if call.version >= "2.53":
        raise NotFound("Use GET /os-hypervisors?hypervisor_hostname_pattern= at 2.53+.")
    pattern = request.path_params["pattern"]
    out = [_hv_view(call, n, s, False) for n, s in await _nodes(call)
           if pattern in n.hypervisor_hostname]
    if not out:
        raise NotFound(f"No hypervisor matching {pattern!r} could be found.")
    return ok({"hypervisors": out})


async def hypervisor_servers(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    if call.version >= "2.53":
        raise NotFound("Use GET /os-hypervisors?with_servers=true at 2.53+.")
    pattern = request.path_params["pattern"]
    out = []
    for n, s in await _nodes(call):
        if pattern in n.hypervisor_hostname:
            view = _hv_view(call, n, s, False)
            servers = await _servers_on(call, n.host)
            if servers:
                view["servers"] = servers
            out.append(view)
    if not out:
        raise NotFound(f"No hypervisor matching {pattern!r} could be found.")
    return ok({"hypervisors": out})


# --- os-availability-zone ----------------------------------------------------

async def availability_zones(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    detail = request.url.path.rstrip("/").endswith("/detail")
    if detail:
        call.enforce("os_compute_api:os-admin")
    default = deps.settings.compute.default_availability_zone
    async with deps.db.session() as session:
        svcs = (await session.execute(select(Service))).scalars().all()
        zone_of = await host_zones(session, default)
    down = deps.settings.compute.service_down_time
    by_zone: dict[str, list[Service]] = {}
    for s in svcs:
        if s.binary == "nova-compute":
            by_zone.setdefault(zone_of.get(s.host, default), []).append(s)
    zones: list[dict[str, Any]] = []
    for zone in sorted(by_zone, key=lambda z: (z != default, z)):
        computes = by_zone[zone]
        hosts: dict[str, Any] | None = None
        if detail:
            hosts = {s.host: {s.binary: {"available": is_up(s, down), "active": not s.disabled,
                                         "updated_at": ts_micro(s.last_seen_up)}}
                     for s in computes}
        available = any(is_up(s, down) and not s.disabled for s in computes)
        zones.append({"zoneName": zone, "zoneState": {"available": available}, "hosts": hosts})
    if detail:
        internal: dict[str, Any] = {}
        for s in svcs:
            if s.binary != "nova-compute":
                internal.setdefault(s.host, {})[s.binary] = {
                    "available": is_up(s, down), "active": not s.disabled,
                    "updated_at": ts_micro(s.last_seen_up)}
        zones.append({"zoneName": "internal", "zoneState": {"available": True},
                      "hosts": internal})
    return ok({"availabilityZoneInfo": zones})


# --- os-migrations -----------------------------------------------------------

async def migrations_index(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    stmt = select(Migration).order_by(Migration.created_at.desc(), Migration.id.desc())
    for key, column in (("status", Migration.status), ("instance_uuid", Migration.instance_uuid),
                        ("source_compute", Migration.source_compute),
                        ("migration_type", Migration.migration_type)):
        if (value := call.query(key)) is not None:
            stmt = stmt.where(column == value)
    if (host := call.query("host")) is not None:
        stmt = stmt.where((Migration.source_compute == host) | (Migration.dest_compute == host))
    if call.version >= "2.80":
        if (user := call.query("user_id")) is not None:
            stmt = stmt.where(Migration.user_id == user)
        if (project := call.query("project_id")) is not None:
            stmt = stmt.where(Migration.project_id == project)
    if call.version >= "2.59":
        if (since := call.query("changes-since")) is not None:
            stmt = stmt.where(Migration.updated_at >= _time(since))
        if (before := call.query("changes-before")) is not None:
            stmt = stmt.where(Migration.updated_at <= _time(before))
    async with deps.db.session() as session:
        rows = list((await session.execute(stmt)).scalars())
    if call.version >= "2.59":
        if (marker := call.query("marker")) is not None:
            ids = [m.uuid for m in rows]
            if marker not in ids:
                raise NotFound(f"Marker {marker} could not be found.")
            rows = rows[ids.index(marker) + 1:]
        if (limit := call.query_int("limit")) is not None:
            rows = rows[:limit]
    return ok({"migrations": [migration_view(m, call.base, call.version) for m in rows]})


def _time(raw: str) -> datetime:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise BadRequest(f"Invalid time {raw!r}") from None


# --- os-server-external-events -------------------------------------------------

EVENT_NAMES = {"network-changed", "network-vif-plugged", "network-vif-unplugged",
               "network-vif-deleted", "volume-extended", "power-update",
               "accelerator-request-bound", "volume-reimaged"}


async def external_events(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    body = await call.body()
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise BadRequest("'events' must be a non-empty list.")
    out = []
    found = False
    for_agents: dict[tuple[str, str], list[dict[str, Any]]] = {}
    changed: list[str] = []
    for ev in events:
        if not isinstance(ev, dict) or ev.get("name") not in EVENT_NAMES or not isinstance(
                ev.get("server_uuid"), str):
            raise BadRequest(f"Invalid event {ev!r}")
        status = ev.get("status", "completed")
        if status not in ("failed", "completed", "in-progress"):
            raise BadRequest(f"Invalid event status {status!r}")
        async with deps.db.session() as session:
            inst = await session.scalar(select(Instance).where(
                Instance.uuid == ev["server_uuid"], Instance.deleted.is_(False)))
        result = dict(ev, status=status)
        if inst is None:
            result.update(code=404, status="failed")
        elif not inst.host:
            result.update(code=422, status="failed")
        else:
            result["code"] = 200
            found = True
            if ev["name"] == "network-changed":
                changed.append(inst.uuid)
            else:  # the agent running the guest may be waiting for it (vif plugged)
                for_agents.setdefault((inst.host, inst.uuid), []).append(result)
        out.append(result)
    if not found:
        raise NotFound("No instances found for any event")
    for (host, uuid), evs in for_agents.items():
        await deps.agents.cast(host, "external_instance_event", uuid=uuid, events=evs)
    if deps.network is not None:
        for uuid in dict.fromkeys(changed):
            await network.refresh_cache(deps.network, deps.db, uuid)
    return ok({"events": out}, 200 if all(e["code"] == 200 for e in out) else 207)


# --- os-simple-tenant-usage ----------------------------------------------------

async def tenant_usage(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    tenant = request.path_params.get("tenant_id")
    if tenant is None or tenant != call.project_id:
        call.enforce("os_compute_api:os-admin")
    now = utcnow()
    start = _time(call.query("start")) if call.query("start") else now - timedelta(days=1)
    end = _time(call.query("end")) if call.query("end") else now
    if start > end:
        raise BadRequest("Invalid start time: it is after the end time.")
    detailed = require_bool(call.query("detailed") or "0", "detailed")
    stmt = select(Instance).where((Instance.terminated_at.is_(None))
                                  | (Instance.terminated_at >= start),
                                  Instance.created_at <= end)
    if tenant:
        stmt = stmt.where(Instance.project_id == tenant)
    async with deps.db.session() as session:
        rows = (await session.execute(stmt)).scalars().all()
    usages: dict[str, dict[str, Any]] = {}
    for inst in rows:
        begin = max(inst.created_at.replace(tzinfo=None), start)
        finish = min((inst.terminated_at or now).replace(tzinfo=None), end)
        hours = max((finish - begin).total_seconds() / 3600, 0)
        u = usages.setdefault(inst.project_id, {
            "tenant_id": inst.project_id, "start": start.isoformat(), "stop": end.isoformat(),
            "total_hours": 0.0, "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0,
            "total_local_gb_usage": 0.0, "server_usages": []})
        u["total_hours"] += hours
        u["total_vcpus_usage"] += hours * inst.vcpus
        u["total_memory_mb_usage"] += hours * inst.memory_mb
        u["total_local_gb_usage"] += hours * inst.root_gb
        if detailed or tenant:
            u["server_usages"].append({
                "instance_id": inst.uuid, "name": inst.name, "hours": hours,
                "memory_mb": inst.memory_mb, "local_gb": inst.root_gb, "vcpus": inst.vcpus,
                "tenant_id": inst.project_id, "flavor": inst.flavor.get("name"),
                "started_at": inst.created_at.replace(tzinfo=None).isoformat(),
                "ended_at": inst.terminated_at.replace(tzinfo=None).isoformat()
                if inst.terminated_at else None,
                "state": "terminated" if inst.deleted else inst.vm_state,
                "uptime": int((now - inst.created_at.replace(tzinfo=None)).total_seconds())})
    if not (detailed or tenant):
        for u in usages.values():
            u.pop("server_usages")
    if tenant:
        return ok({"tenant_usage": usages.get(tenant, {})})
    return ok({"tenant_usages": list(usages.values())})
