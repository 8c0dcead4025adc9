"""The compute API's image proxy (``/images``, removed in 2.36): the image
service's records in Nova's shape, read and changed with the caller's token
through :class:`~stratus.compute.images.ImageAPI` (filters and paging are
applied here, over what the caller can see)."""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stratus.compute.api.common import Call, Deps, ok
from stratus.errors import BadRequest, NotFound

# Glance's own fields; everything else on an image record is a custom property.
_BASE = {"id", "name", "status", "visibility", "protected", "checksum", "os_hash_algo",
         "os_hash_value", "owner", "size", "virtual_size", "min_ram", "min_disk",
         "disk_format", "container_format", "created_at", "updated_at", "tags", "self",
         "file", "schema", "direct_url", "locations", "os_hidden", "stores",
         "os_glance_failed_import", "os_glance_importing_to_stores"}
_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING",
           "importing": "SAVING", "uploading": "SAVING", "deleted": "DELETED",
           "pending_delete": "DELETED", "killed": "ERROR"}
_PROGRESS = {"ACTIVE": 100, "SAVING": 50}


def _proxy_call(deps: Deps, request: Request) -> Call:
    call = Call(deps, request)
    if call.version >= "2.36":
        raise NotFound("The images proxy API was removed in microversion 2.36; use the "
                       "image service.")
    return call


def _ts(raw: Any) -> str | None:
    if not raw:
        return None
    return str(raw).replace("+00:00", "Z").split(".")[0].rstrip("Z") + "Z"


def _links(call: Call, image_id: str) -> list[dict[str, str]]:
    root = call.base.rsplit("/v2.1", 1)[0]
    glance = call.deps.settings.endpoint("image")
    return [{"rel": "self", "href": f"{call.base}/images/{image_id}"},
            {"rel": "bookmark", "href": f"{root}/images/{image_id}"},
            {"rel": "alternate", "type": "application/vnd.openstack.image",
             "href": f"{glance}/images/{image_id}"}]


def metadata_of(image: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in image.items() if k not in _BASE and v is not None}


def _view(call: Call, image: dict[str, Any], detail: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": image["id"], "name": image.get("name"),
                           "links": _links(call, image["id"])}
    if not detail:
        return out
    status = _STATUS.get(str(image.get("status")), "UNKNOWN")
    meta = metadata_of(image)
    out.update(status=status, progress=_PROGRESS.get(status, 25 if status == "SAVING" else 0),
               minDisk=int(image.get("min_disk") or 0), minRam=int(image.get("min_ram") or 0),
               created=_ts(image.get("created_at")), updated=_ts(image.get("updated_at")),
               metadata=meta, **{"OS-EXT-IMG-SIZE:size": image.get("size")})
    if server := meta.get("instance_uuid"):
        root = call.base.rsplit("/v2.1", 1)[0]
        out["server"] = {"id": server, "links": [
            {"rel": "self", "href": f"{call.base}/servers/{server}"},
            {"rel": "bookmark", "href": f"{root}/servers/{server}"}]}
    return out


async def _image(call: Call, image_id: str) -> dict[str, Any]:
    try:
        uuidlib.UUID(image_id)
    except ValueError:
        raise NotFound(f"Image {image_id} could not be found.") from None
    image = await call.deps.images.show(call.ctx.token, image_id)
    if image is None:
        raise NotFound(f"Image {image_id} could not be found.")
    return image


def _matches(image: dict[str, Any], call: Call) -> bool:
    q = call.query
    if (name := q("name")) is not None and image.get("name") != name:
        return False
    if (status := q("status")) is not None and \
            _STATUS.get(str(image.get("status")), "UNKNOWN") != status.upper():
        return False
    if (server := q("server")) is not None and \
            image.get("instance_uuid") != server.rstrip("/").rsplit("/", 1)[-1]:
        return False
    if (kind := q("type")) is not None and image.get("image_type", "base") != kind:
        return False
    for param, field in (("minRam", "min_ram"), ("minDisk", "min_disk")):
        if (raw := q(param)) is not None:
            try:
                if int(image.get(field) or 0) < int(raw):
                    return False
            except ValueError:
                raise BadRequest(f"Invalid {param} {raw!r}") from None
    if (since := q("changes-since")) is not None:
        try:
            when = datetime.fromisoformat(since.replace("Z", "+00:00"))
            updated = datetime.fromisoformat(str(image.get("updated_at")).replace("Z",
                                                                                   "+00:00"))
        except ValueError:
            raise BadRequest(f"Invalid changes-since {since!r}") from None
        if updated < when:
            return False
    return True


async def _list(deps: Deps, request: Request, detail: bool) -> Response:
    call = _proxy_call(deps, request)
    images = [i for i in await deps.images.list(call.ctx.token) if _matches(i, call)]
    images.sort(key=lambda i: (str(i.get("created_at") or ""), i["id"]), reverse=True)
    if (marker := call.query("marker")) is not None:
        ids = [i["id"] for i in images]
        if marker not in ids:
            raise BadRequest(f"marker [{marker}] not found")
        images = images[ids.index(marker) + 1:]
    limit = call.query_int("limit")
    body: dict[str, Any] = {}
    if limit is not None and len(images) > limit:
        images = images[:limit]
        if images:
            suffix = "/detail" if detail else ""
            body["images_links"] = [{"rel": "next", "href": f"{call.base}/images{suffix}"
                                     f"?limit={limit}&marker={images[-1]['id']}"}]
    body["images"] = [_view(call, i, detail) for i in images]
    return ok(body)


async def index(deps: Deps, request: Request) -> Response:
    return await _list(deps, request, False)


async def detail(deps: Deps, request: Request) -> Response:
    return await _list(deps, request, True)


async def show(deps: Deps, request: Request) -> Response:
    call = _proxy_call(deps, request)
    image = await _image(call, request.path_params["image_id"])
    if image.get("status") in ("deleted", "pending_delete"):
        raise NotFound(f"Image {image['id']} could not be found.")
    return ok({"image": _view(call, image, True)})


async def remove(deps: Deps, request: Request) -> Response:
    call = _proxy_call(deps, request)
    image = await _image(call, request.path_params["image_id"])
    await deps.images.delete(call.ctx.token, image["id"])
    return Response(status_code=204)


def _check_meta(meta: Any) -> dict[str, str]:
    if not isinstance(meta, dict):
        raise BadRequest("metadata must be an object")
    for key, value in meta.items():
        if not isinstance(key, str) or not key or len(key) > 255 or key in _BASE:
            raise BadRequest(f"Invalid metadata key {key!r}")
        if not isinstance(value, str) or len(value) > 255:
            raise BadRequest(f"Invalid metadata value for {key!r}")
    return meta


async def metadata(deps: Deps, request: Request) -> Response:
    """``/images/{id}/metadata``: GET all, PUT replace all, POST merge."""
    call = _proxy_call(deps, request)
    image = await _image(call, request.path_params["image_id"])
    current = metadata_of(image)
    if request.method == "GET":
        return ok({"metadata": current})
    new = _check_meta((await call.body()).get("metadata"))
    ops = [{"op": "replace" if k in image else "add", "path": f"/{k}", "value": v}
           for k, v in new.items()]
    if request.method == "PUT":
        ops += [{"op": "remove", "path": f"/{k}"} for k in current if k not in new]
    updated = await deps.images.update(call.ctx.token, image["id"], ops) if ops else image
    return ok({"metadata": metadata_of(updated)})


async def metadata_item(deps: Deps, request: Request) -> Response:
    """``/images/{id}/metadata/{key}``: GET, PUT (``{"meta": {key: value}}``), DELETE."""
    call = _proxy_call(deps, request)
    image = await _image(call, request.path_params["image_id"])
    key = request.path_params["key"]
    current = metadata_of(image)
    if request.method == "GET":
        if key not in current:
            raise NotFound(f"Image {image['id']} has no metadata key {key}.")
        return ok({"meta": {key: current[key]}})
    if request.method == "DELETE":
        if key not in current:
            raise NotFound(f"Image {image['id']} has no metadata key {key}.")
        await deps.images.update(call.ctx.token, image["id"],
                                 [{"op": "remove", "path": f"/{key}"}])
        return Response(status_code=204)
    meta = _check_meta((await call.body()).get("meta"))
    if list(meta) != [key]:
        raise BadRequest("The body's 'meta' must hold exactly the key of the URL.")
    await deps.images.update(call.ctx.token, image["id"], [{
        "op": "replace" if key in image else "add", "path": f"/{key}", "value": meta[key]}])
    return ok({"meta": meta})
