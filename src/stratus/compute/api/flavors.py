"""``/flavors`` (+ extra specs and access) and ``/os-keypairs``."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from stratus.compute import keypairs as keys
from stratus.compute import quotas
from stratus.compute.api.common import Call, Deps, ok, require_bool, require_int, require_str
from stratus.compute.api.views import flavor as flavor_view
from stratus.compute.api.views import ts_micro
from stratus.compute.models import Flavor, FlavorProject, KeyPair
from stratus.errors import BadRequest, Conflict, NotFound, OverQuota

FLAVOR_SORT = {"flavorid": Flavor.flavorid, "id": Flavor.flavorid, "name": Flavor.name,
               "memory_mb": Flavor.memory_mb, "root_gb": Flavor.root_gb,
               "vcpus": Flavor.vcpus, "created_at": Flavor.created_at}


async def _flavor(call: Call, flavor_id: str) -> Flavor:
    async with call.deps.db.session() as session:
        flavor = await session.scalar(select(Flavor).where(Flavor.flavorid == flavor_id))
        if flavor is not None and not flavor.is_public and not call.is_admin:
            if not await session.scalar(select(FlavorProject).where(
                    FlavorProject.flavor_id == flavor.id,
                    FlavorProject.project_id == call.project_id)):
                flavor = None
    if flavor is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


async def list_flavors(deps: Deps, request: Request, detail: bool) -> Response:
    call = Call(deps, request)
    stmt = select(Flavor)
    public = call.query("is_public")
    if call.is_admin:
        if public is not None and public.lower() != "none":
            stmt = stmt.where(Flavor.is_public.is_(require_bool(public, "is_public")))
    else:
        access = select(FlavorProject.flavor_id).where(
            FlavorProject.project_id == call.project_id)
        stmt = stmt.where(or_(Flavor.is_public.is_(True), Flavor.id.in_(access)))
    if (min_ram := call.query_int("minRam")) is not None:
        stmt = stmt.where(Flavor.memory_mb >= min_ram)
    if (min_disk := call.query_int("minDisk")) is not None:
        stmt = stmt.where(Flavor.root_gb >= min_disk)
    key = call.query("sort_key") or "flavorid"
    if key not in FLAVOR_SORT:
        raise BadRequest(f"Invalid sort_key {key!r}")
    direction = call.query("sort_dir") or "asc"
    if direction not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort_dir {direction!r}")
    col = FLAVOR_SORT[key]
    limit = call.query_int("limit", 1000) or 0
    async with deps.db.session() as session:
        rows = list((await session.execute(stmt.order_by(
            col.desc() if direction == "desc" else col.asc(), Flavor.id))).scalars())
    if (marker := call.query("marker")) is not None:
        ids = [f.flavorid for f in rows]
        if marker not in ids:
            raise BadRequest(f"marker [{marker}] not found")
        rows = rows[ids.index(marker) + 1:]
    page = rows[:limit]
    body: dict[str, Any] = {"flavors": [flavor_view(f, call.base, call.version, brief=not detail)
                                        for f in page]}
    if call.query("limit") is not None and len(rows) > limit and page:
        path = "flavors/detail" if detail else "flavors"
        body["flavors_links"] = [{"rel": "next", "href":
                                  f"{call.base}/{path}?limit={limit}&marker={page[-1].flavorid}"}]
    return ok(body)


async def index(deps: Deps, request: Request) -> Response:
    return await list_flavors(deps, request, False)


async def detail(deps: Deps, request: Request) -> Response:
    return await list_flavors(deps, request, True)


async def show(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    flavor = await _flavor(call, request.path_params["flavor_id"])
    return ok({"flavor": flavor_view(flavor, call.base, call.version)})


async def create(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-flavor-manage")
    body = await call.body("flavor")
    name = require_str(body, "name")
    flavor = Flavor(
        name=(name or "").strip(), flavorid=str(body.get("id") or uuidlib.uuid4()),
        memory_mb=require_int(body.get("ram"), "ram", 1),
        vcpus=require_int(body.get("vcpus"), "vcpus", 1),
        root_gb=require_int(body.get("disk"), "disk", 0),
        ephemeral_gb=require_int(body.get("OS-FLV-EXT-DATA:ephemeral", 0), "ephemeral", 0),
        swap=require_int(body.get("swap", 0) or 0, "swap", 0),
        rxtx_factor=float(body.get("rxtx_factor", 1.0)),
        is_public=require_bool(body.get("os-flavor-access:is_public", True), "is_public"),
        description=body.get("description") if call.version >= "2.55" else None,
        extra_specs={})
    raw_id = body.get("id")
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int))
                               or not str(raw_id).strip()):
        raise BadRequest("Invalid flavor id.")
    try:
        async with deps.db.session() as session:
            session.add(flavor)
    except IntegrityError:
        raise Conflict(f"Flavor with name {name} or id {flavor.flavorid} already exists.") \
            from None
    return ok({"flavor": flavor_view(flavor, call.base, call.version)})


async def update(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-flavor-manage")
    if call.version < "2.55":
        raise NotFound("Flavor update needs microversion 2.55.")
    body = await call.body("flavor")
    flavor = await _flavor(call, request.path_params["flavor_id"])
    description = require_str(body, "description", required=True, allow_empty=True)
    async with deps.db.session() as session:
        row = await session.get(Flavor, flavor.id)
        assert row is not None
        row.description = description
        flavor = row
    return ok({"flavor": flavor_view(flavor, call.base, call.version)})


async def remove(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-flavor-manage")
    flavor = await _flavor(call, request.path_params["flavor_id"])
    async with deps.db.session() as session:
        await session.execute(delete(Flavor).where(Flavor.id == flavor.id))
    return Response(status_code=202)


async def extra_specs(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    flavor = await _flavor(call, request.path_params["flavor_id"])
    key = request.path_params.get("key")
    specs = dict(flavor.extra_specs or {})
    if request.method == "GET":
        if key is None:
            return ok({"extra_specs": specs})
        if key not in specs:
            raise NotFound(f"Flavor {flavor.flavorid} has no extra spec {key}.")
        return ok({key: specs[key]})
    call.enforce("os_compute_api:os-flavor-manage")
    if request.method == "DELETE":
        if key not in specs:
            raise NotFound(f"Flavor {flavor.flavorid} has no extra spec {key}.")
        specs.pop(key)
        result: Response = Response(status_code=200)
    else:
        body = await call.body()
        new = body.get("extra_specs", body) if key is None else body
        if not isinstance(new, dict) or not all(
                isinstance(k, str) and isinstance(v, (str, int, float, bool))
                for k, v in new.items()):
            raise BadRequest("extra_specs must map names to strings.")
        if key is not None and (len(new) != 1 or key not in new):
            raise BadRequest("Request body and URI mismatch")
        new = {k: str(v) for k, v in new.items()}
        specs.update(new)
        result = ok({"extra_specs": new} if key is None else new)
    async with deps.db.session() as session:
        row = await session.get(Flavor, flavor.id)
        assert row is not None
        row.extra_specs = specs
    return result


async def access(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    call.enforce("os_compute_api:os-flavor-manage")
    flavor = await _flavor(call, request.path_params["flavor_id"])
    if request.method == "POST":
        body = await call.body()
        (action, arg), = body.items() if len(body) == 1 else (("", None),)
        if action not in ("addTenantAccess", "removeTenantAccess") or not isinstance(arg, dict):
            raise BadRequest("Use addTenantAccess or removeTenantAccess with 'tenant'.")
        if flavor.is_public:
            raise Conflict("Cannot set access for a public flavor.")
        tenant = require_str(arg, "tenant")
        async with deps.db.session() as session:
            exists = await session.get(FlavorProject, (flavor.id, tenant))
            if action == "addTenantAccess":
                if exists:
                    raise Conflict(f"Flavor access already exists for {tenant}.")
                session.add(FlavorProject(flavor_id=flavor.id, project_id=tenant))
            else:
                if not exists:
                    raise NotFound(f"Flavor access not found for {tenant}.")
                await session.delete(exists)
    elif flavor.is_public:
        raise NotFound("Access list not available for public flavors.")
    async with deps.db.session() as session:
        rows = (await session.execute(select(FlavorProject.project_id).where(
            FlavorProject.flavor_id == flavor.id))).scalars().all()
    return ok({"flavor_access": [{"flavor_id": flavor.flavorid, "tenant_id": p} for p in rows]})


# --- key pairs -------------------------------------------------------------

def _key_view(k: KeyPair, call: Call, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": k.name, "public_key": k.public_key,
                           "fingerprint": k.fingerprint}
    if call.version >= "2.2":
        out["type"] = k.type
    if full:
        out.update(user_id=k.user_id, id=k.id, created_at=ts_micro(k.created_at),
                   deleted=False, deleted_at=None, updated_at=None)
    return out


def _key_user(call: Call) -> str:
    user = call.query("user_id")
    if user and user != call.ctx.user_id:
        if call.version < "2.10":
            return call.ctx.user_id
        call.enforce("os_compute_api:os-keypairs:other_user")
        return user
    return call.ctx.user_id


async def keypair_index(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    user = _key_user(call)
    async with deps.db.session() as session:
        rows = list((await session.execute(select(KeyPair).where(
            KeyPair.user_id == user).order_by(KeyPair.name))).scalars())
    if call.version >= "2.35":
        if (marker := call.query("marker")) is not None:
            names = [k.name for k in rows]
            if marker not in names:
                raise BadRequest(f"marker [{marker}] not found")
            rows = rows[names.index(marker) + 1:]
        limit = call.query_int("limit")
        if limit is not None:
            rows = rows[:limit]
    return ok({"keypairs": [{"keypair": _key_view(k, call)} for k in rows]})


async def keypair_create(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    body = await call.body("keypair")
    name = require_str(body, "name")
    assert name is not None
    if not all(c.isalnum() or c in "-_ ." for c in name) or name.strip() != name:
        raise BadRequest("Keypair name contains unsafe characters")
    key_type = body.get("type", "ssh") if call.version >= "2.2" else "ssh"
    if key_type not in ("ssh", "x509"):
        raise BadRequest("Invalid keypair type")
    user = call.ctx.user_id
    if body.get("user_id") and call.version >= "2.10" and body["user_id"] != user:
        call.enforce("os_compute_api:os-keypairs:other_user")
        user = body["user_id"]
    public = body.get("public_key")
    private = None
    if public is None:
        if call.version >= "2.92":
            raise BadRequest("'public_key' is a required property at microversion 2.92+.")
        private, public = keys.generate(key_type)
    elif not isinstance(public, str):
        raise BadRequest("public_key must be a string")
    fingerprint = keys.fingerprint(public, key_type)
    async with deps.db.session() as session:
        hard = await quotas.limits(session, deps.settings.compute, call.project_id)
        used = (await quotas.counted_usage(session, call.project_id, user))["key_pairs"]
    if 0 <= hard["key_pairs"] <= used:
        raise OverQuota("Quota exceeded, too many key pairs.")
    key = KeyPair(user_id=user, name=name, public_key=public.strip(), fingerprint=fingerprint,
                  type=key_type)
    try:
        async with deps.db.session() as session:
            session.add(key)
    except IntegrityError:
        raise Conflict(f"Key pair '{name}' already exists.") from None
    view = _key_view(key, call)
    view["user_id"] = user
    if private:
        view["private_key"] = private
    return ok({"keypair": view}, 201 if call.version >= "2.2" else 200)


async def _keypair(call: Call) -> KeyPair:
    name = call.request.path_params["name"]
    user = _key_user(call)
    async with call.deps.db.session() as session:
        key = await session.scalar(select(KeyPair).where(KeyPair.user_id == user,
                                                         KeyPair.name == name))
    if key is None:
        raise NotFound(f"Keypair {name} not found for user {user}")
    return key


async def keypair_show(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    return ok({"keypair": _key_view(await _keypair(call), call, full=True)})


async def keypair_delete(deps: Deps, request: Request) -> Response:
    call = Call(deps, request)
    key = await _keypair(call)
    async with deps.db.session() as session:
        await session.execute(delete(KeyPair).where(KeyPair.id == key.id))
    return Response(status_code=204 if call.version >= "2.2" else 202)
