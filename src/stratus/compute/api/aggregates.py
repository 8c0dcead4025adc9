"""os-aggregates: host aggregates CRUD, host membership and metadata (Nova's
semantics: an aggregate with ``availability_zone`` metadata is a zone, and a
host can be in one zone only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from stratus.compute.aggregates import AZ_KEY
from stratus.compute.api.common import Call, Deps, ok, require_str
from stratus.compute.api.views import ts_micro
from stratus.compute.models import Aggregate, AggregateHost, Service
from stratus.db.base import utcnow
from stratus.errors import BadRequest, Conflict, NotFound


def _view(call: Call, agg: Aggregate, hosts: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": agg.id, "name": agg.name,
        "availability_zone": (agg.metadata_ or {}).get(AZ_KEY),
        "created_at": ts_micro(agg.created_at), "updated_at": ts_micro(agg.updated_at),
        "deleted_at": None, "deleted": False}
    if hosts is not None:
        out.update(hosts=hosts, metadata=dict(agg.metadata_ or {}))
    if call.version >= "2.41":
        out["uuid"] = agg.uuid
    return out


async def _load(call: Call, ident: str) -> tuple[Aggregate, list[str]]:
    if not ident.isdigit():
        raise NotFound(f"Aggregate {ident} could not be found.")
    async with call.deps.db.session() as session:
        agg = await session.get(Aggregate, int(ident))
        if agg is None:
            raise NotFound(f"Aggregate {ident} could not be found.")
        hosts = list((await session.scalars(select(AggregateHost.host).where(
            AggregateHost.aggregate_id == agg.id).order_by(AggregateHost.host))).all())
    return agg, hosts


def _admin(deps: Deps, request: Request) -> Call:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-admin")
    return call


def _name_and_zone(body: dict[str, Any], *, required: bool) -> tuple[str | None, Any]:
    unknown = set(body) - {"name", "availability_zone"}
    if unknown:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(sorted(unknown))})")
    name = require_str(body, "name", required=required)
    zone = body.get("availability_zone")
    if zone is not None:
        zone = require_str(body, "availability_zone")
    if not required and name is None and "availability_zone" not in body:
        raise BadRequest("Set name and/or availability_zone.")
    return (name.strip() if name else name), zone


async def _check_zone(call: Call, agg_id: int | None, hosts: list[str], zone: str | None) -> None:
    """A host may be in one zone only: refuse a change that puts one of
    ``hosts`` in a second zone through another aggregate."""
    if not hosts:
        return
    default = call.deps.settings.compute.default_availability_zone
    mine = zone or default
    async with call.deps.db.session() as session:
        rows = (await session.execute(select(AggregateHost.host, Aggregate.metadata_).join(
            Aggregate, Aggregate.id == AggregateHost.aggregate_id).where(
            AggregateHost.host.in_(hosts), Aggregate.id != (agg_id or -1)))).all()
    for host, meta in rows:
        other = (meta or {}).get(AZ_KEY)
        if other and other != mine:
            raise BadRequest(f"Cannot put host {host} in availability zone {mine}: it is "
                             f"already in availability zone {other}.")


async def index(deps: Deps, request: Request) -> Response:
    call = _admin(deps, request)
    async with deps.db.session() as session:
        aggs = (await session.scalars(select(Aggregate).order_by(Aggregate.id))).all()
        members: dict[int, list[str]] = {}
        for agg_id, host in (await session.execute(select(
                AggregateHost.aggregate_id, AggregateHost.host).order_by(AggregateHost.host))):
            members.setdefault(agg_id, []).append(host)
    return ok({"aggregates": [_view(call, a, members.get(a.id, [])) for a in aggs]})


async def create(deps: Deps, request: Request) -> Response:
    call = _admin(deps, request)
    name, zone = _name_and_zone(await call.body("aggregate"), required=True)
    agg = Aggregate(name=name, metadata_={AZ_KEY: zone} if zone else {})
    try:
        async with deps.db.session() as session:
            session.add(agg)
    except IntegrityError:
        raise Conflict(f"Aggregate {name} already exists.") from None
    return ok({"aggregate": _view(call, agg, None)})


async def show(deps: Deps, request: Request) -> Response:
    call = _admin(deps, request)
    agg, hosts = await _load(call, request.path_params["aggregate_id"])
    return ok({"aggregate": _view(call, agg, hosts)})


async def update(deps: Deps, request: Request) -> Response:
    call = _admin(deps, request)
    agg, hosts = await _load(call, request.path_params["aggregate_id"])
    body = await call.body("aggregate")
    name, zone = _name_and_zone(body, required=False)
    meta = dict(agg.metadata_ or {})
    if "availability_zone" in body:
        await _check_zone(call, agg.id, hosts, zone)
        meta.pop(AZ_KEY, None)
        if zone:
            meta[AZ_KEY] = zone
    return ok({"aggregate": _view(call, await _save(call, agg.id, name=name, meta=meta), hosts)})


async def _save(call: Call, agg_id: int, *, name: str | None = None,
                meta: dict[str, str] | None = None) -> Aggregate:
    try:
        async with call.deps.db.session() as session:
            row = await session.get(Aggregate, agg_id)
            if row is None:
                raise NotFound(f"Aggregate {agg_id} could not be found.")
            if name:
                row.name = name
            if meta is not None:
                row.metadata_ = meta
            row.updated_at = utcnow()
    except IntegrityError:
        raise Conflict(f"Aggregate {name} already exists.") from None
    return row


async def remove(deps: Deps, request: Request) -> Response:
    call = _admin(deps, request)
    agg, hosts = await _load(call, request.path_params["aggregate_id"])
    if hosts:
        raise BadRequest(f"Cannot delete aggregate {agg.id}: it still has hosts "
                         f"({', '.join(hosts)}).")
    async with deps.db.session() as session:
        await session.execute(delete(Aggregate).where(Aggregate.id == agg.id))
    return Response(status_code=200)


async def action(deps: Deps, request: Request) -> Response:
    call = _admin(deps, request)
    agg, hosts = await _load(call, request.path_params["aggregate_id"])
    body = await call.body()
    if len(body) != 1:
        raise BadRequest("Exactly one of add_host, remove_host, set_metadata is expected.")
    name, args = next(iter(body.items()))
    if not isinstance(args, dict):
        raise BadRequest(f"Invalid body for {name}")
    if name in ("add_host", "remove_host"):
        host = require_str(args, "host")
        assert host is not None
        if name == "add_host":
            await _add_host(call, agg, hosts, host)
        else:
            await _remove_host(call, agg, hosts, host)
        agg, hosts = await _load(call, str(agg.id))
        return ok({"aggregate": _view(call, agg, hosts)})
    if name == "set_metadata":
        new = args.get("metadata")
        if not isinstance(new, dict) or set(args) != {"metadata"}:
            raise BadRequest("set_metadata needs a 'metadata' object")
        meta = dict(agg.metadata_ or {})
        for key, value in new.items():
            if not isinstance(key, str) or not key or len(key) > 255 or (
                    value is not None and (not isinstance(value, str) or len(value) > 255)):
                raise BadRequest(f"Invalid metadata item {key!r}: {value!r}")
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        if meta.get(AZ_KEY) != (agg.metadata_ or {}).get(AZ_KEY):
            await _check_zone(call, agg.id, hosts, meta.get(AZ_KEY))
        return ok({"aggregate": _view(call, await _save(call, agg.id, meta=meta), hosts)})
    raise BadRequest(f"Unknown aggregate action {name}")


async def _add_host(call: Call, agg: Aggregate, hosts: list[str], host: str) -> None:
    async with call.deps.db.session() as session:
        known = await session.scalar(select(Service.id).where(
            Service.host == host, Service.binary == "nova-compute"))
    if known is None:
        raise NotFound(f"Compute host {host} could not be found.")
    if host in hosts:
        raise Conflict(f"Aggregate {agg.id} already has host {host}.")
    await _check_zone(call, agg.id, [host], (agg.metadata_ or {}).get(AZ_KEY))
    try:
        async with call.deps.db.session() as session:
            session.add(AggregateHost(aggregate_id=agg.id, host=host))
    except IntegrityError:
        raise Conflict(f"Aggregate {agg.id} already has host {host}.") from None
    await _save(call, agg.id)


async def _remove_host(call: Call, agg: Aggregate, hosts: list[str], host: str) -> None:
    if host not in hosts:
        raise NotFound(f"Host {host} is not in aggregate {agg.id}.")
    async with call.deps.db.session() as session:
        await session.execute(delete(AggregateHost).where(
            AggregateHost.aggregate_id == agg.id, AggregateHost.host == host))
    await _save(call, agg.id)
