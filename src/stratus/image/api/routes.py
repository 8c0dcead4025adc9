"""Routes and handlers of the Glance v2 API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from stratus.api.app import json_body, json_object
from stratus.api.auth import context_of
from stratus.errors import BadRequest
from stratus.image import views
from stratus.image.api.http import byte_range, data_stream, patch_body
from stratus.image.core import IMPORT_METHODS, ImageCore
from stratus.image.domain import parse_patch
from stratus.image.listing import parse_list_query
from stratus.image.schemas import all_schemas
from stratus.settings import ImageSettings

# Newest first; v2.16 is the level whose features we implement.
VERSIONS = ("v2.16", "v2.15", "v2.14", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8",
            "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0")


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def routes(core: ImageCore, settings: ImageSettings) -> list[BaseRoute]:
    schemas = all_schemas(settings.disk_formats, settings.container_formats)
    import_headers = {"OpenStack-image-import-methods": ",".join(IMPORT_METHODS),
                      "OpenStack-image-store-ids": core.store.id}

    # -- discovery ------------------------------------------------------------
    def versions_doc(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"versions": [
            {"id": v, "status": "CURRENT" if i == 0 else "SUPPORTED",
             "links": [{"rel": "self", "href": f"{base}/v2/"}]}
            for i, v in enumerate(VERSIONS)]}

    async def root(request: Request) -> Response:
        return JSONResponse(versions_doc(request), status_code=300)

    async def versions(request: Request) -> Response:
        return JSONResponse(versions_doc(request))

    async def schema(request: Request) -> Response:
        context_of(request)
        name = request.path_params["name"]
        if name not in schemas:
            raise _not_found(name)
        return JSONResponse(schemas[name])

    async def info_import(request: Request) -> Response:
        context_of(request)
        return JSONResponse({"import-methods": {
            "description": "Import methods available.", "type": "array",
            "value": list(IMPORT_METHODS)}})

    async def info_stores(request: Request) -> Response:
        context_of(request)
        return JSONResponse({"stores": [{"id": core.store.id, "description":
                                         core.store.description, "default": True}]})

    async def info_stores_detail(request: Request) -> Response:
        ctx = context_of(request)
        core.policy.enforce("stores_info_detail", ctx)
        return JSONResponse({"stores": [{
            "id": core.store.id, "description": core.store.description, "default": True,
            "type": "file", "properties": {"datadir": str(core.store.root)}}]})

    async def info_usage(request: Request) -> Response:
        ctx = context_of(request)
        count, _ = await core.repo.usage(ctx.project_id)
        used = await core.usage.used(ctx.project_id)  # stored and being uploaded
        return JSONResponse({"usage": {
            "image_size_total": {"limit": _mib(settings.image_size_total_quota),
                                 "usage": used // (1024 * 1024)},
            "image_count_total": {"limit": settings.image_count_quota, "usage": count},
            "image_stage_total": {"limit": _mib(settings.image_size_total_quota), "usage": 0},
            "image_count_uploading": {"limit": -1, "usage": 0}}})

    # -- images ---------------------------------------------------------------
    async def list_images(request: Request) -> Response:
        ctx = context_of(request)
        params = list(request.query_params.multi_items())
        query = parse_list_query(params, default_limit=settings.list_limit_default,
                                 max_limit=settings.list_limit_max)
        page = await core.list(ctx, query)
        rest = [(k, v) for k, v in params if k != "marker"]
        first = "/v2/images" + (f"?{urlencode(rest)}" if rest else "")
        body: dict[str, Any] = {"images": [views.image(i) for i in page], "first": first,
                                "schema": "/v2/schemas/images"}
        if page and len(page) == query.limit:
            body["next"] = "/v2/images?" + urlencode(rest + [("marker", page[-1].id)])
        return JSONResponse(body)

    async def create_image(request: Request) -> Response:
        ctx = context_of(request)
        image = await core.create(ctx, json_object(await json_body(request)))
        headers = {**import_headers,
                   "Location": str(request.url_for("show_image", image_id=image.id))}
        return JSONResponse(views.image(image), status_code=201, headers=headers)

    async def show_image(request: Request) -> Response:
        image = await core.show(context_of(request), request.path_params["image_id"])
        return JSONResponse(views.image(image))

    async def update_image(request: Request) -> Response:
        ctx = context_of(request)
        body, draft = await patch_body(request)
        image = await core.update(ctx, request.path_params["image_id"], parse_patch(body, draft))
        return JSONResponse(views.image(image))

    async def delete_image(request: Request) -> Response:
        await core.delete(context_of(request), request.path_params["image_id"])
        return Response(status_code=204)

    async def deactivate(request: Request) -> Response:
        await core.set_active(context_of(request), request.path_params["image_id"], False)
        return Response(status_code=204)

    async def reactivate(request: Request) -> Response:
        await core.set_active(context_of(request), request.path_params["image_id"], True)
        return Response(status_code=204)

    async def add_tag(request: Request) -> Response:
        p = request.path_params
        await core.add_tag(context_of(request), p["image_id"], p["tag"])
        return Response(status_code=204)

    async def delete_tag(request: Request) -> Response:
        p = request.path_params
        await core.delete_tag(context_of(request), p["image_id"], p["tag"])
        return Response(status_code=204)

    # -- data -----------------------------------------------------------------
    async def upload(request: Request) -> Response:
        ctx = context_of(request)
        chunks, length = data_stream(request)
        try:
            await core.upload(ctx, request.path_params["image_id"], chunks, length)
        except ConnectionAbortedError as exc:
            raise BadRequest(f"Image data upload incomplete: {exc}.") from None
        return Response(status_code=204)

    async def stage(request: Request) -> Response:
        ctx = context_of(request)
        chunks, length = data_stream(request)
        try:
            await core.stage(ctx, request.path_params["image_id"], chunks, length)
        except ConnectionAbortedError as exc:
            raise BadRequest(f"Image data staging incomplete: {exc}.") from None
        return Response(status_code=204)

    async def start_import(request: Request) -> Response:
        ctx = context_of(request)
        body = json_object(await json_body(request))
        await core.start_import(ctx, request.path_params["image_id"], body, _request_id(request))
        return Response(status_code=202)

    async def download(request: Request) -> Response:
        ctx = context_of(request)
        plan = await core.download(ctx, request.path_params["image_id"], byte_range(request))
        if plan is None:
            return Response(status_code=204)
        size = plan.image.size or 0
        headers = {"Content-Length": str(plan.end - plan.start + 1)}
        if plan.partial:
            headers["Content-Range"] = f"bytes {plan.start}-{plan.end}/{size}"
        elif plan.image.checksum:
            headers["Content-MD5"] = plan.image.checksum
        return StreamingResponse(plan.chunks, status_code=206 if plan.partial else 200,
                                 headers=headers, media_type="application/octet-stream")

    async def image_tasks(request: Request) -> Response:
        tasks = await core.tasks(context_of(request), request.path_params["image_id"])
        return JSONResponse({"tasks": [views.task(t) for t in tasks]})

    async def no_image_id(request: Request) -> Response:
        context_of(request)
        raise _not_found_image()

    async def create_task(request: Request) -> Response:
        context_of(request)
        body = json_object(await json_body(request))
        raise BadRequest(f"Task type {body.get('type')!r} is not supported: this cloud imports "
                         "images with the interoperable import API (glance-direct), not from "
                         "URLs.")

    # -- members --------------------------------------------------------------
    async def list_members(request: Request) -> Response:
        members = await core.members(context_of(request), request.path_params["image_id"])
        return JSONResponse({"members": [views.member(m) for m in members],
                             "schema": "/v2/schemas/members"})

    async def add_member(request: Request) -> Response:
        ctx = context_of(request)
        member = await core.add_member(ctx, request.path_params["image_id"],
                                       await json_body(request))
        return JSONResponse(views.member(member))

    async def show_member(request: Request) -> Response:
        p = request.path_params
        member = await core.member(context_of(request), p["image_id"], p["member_id"])
        return JSONResponse(views.member(member))

    async def update_member(request: Request) -> Response:
        p = request.path_params
        ctx = context_of(request)
        member = await core.update_member(ctx, p["image_id"], p["member_id"],
                                          await json_body(request))
        return JSONResponse(views.member(member))

    async def delete_member(request: Request) -> Response:
        p = request.path_params
        await core.delete_member(context_of(request), p["image_id"], p["member_id"])
        return Response(status_code=204)

    image = "/v2/images/{image_id}"
    return [
        Route("/", root, methods=["GET"]),
        Route("/versions", versions, methods=["GET"]),
        Route("/v2/schemas/{name:path}", schema, methods=["GET"]),
        Route("/v2/info/import", info_import, methods=["GET"]),
        Route("/v2/info/stores", info_stores, methods=["GET"]),
        Route("/v2/info/stores/detail", info_stores_detail, methods=["GET"]),
        Route("/v2/info/usage", info_usage, methods=["GET"]),
        Route("/v2/images", list_images, methods=["GET"]),
        Route("/v2/images", create_image, methods=["POST"]),
        # An empty image id is a missing image, not the collection.
        Route("/v2/images/", no_image_id, methods=["GET", "DELETE", "PATCH"]),
        Route(image, show_image, methods=["GET"], name="show_image"),
        Route(image, update_image, methods=["PATCH"]),
        Route(image, delete_image, methods=["DELETE"]),
        Route(image + "/actions/deactivate", deactivate, methods=["POST"]),
        Route(image + "/actions/reactivate", reactivate, methods=["POST"]),
        Route(image + "/tags/{tag:path}", add_tag, methods=["PUT"]),
        Route(image + "/tags/{tag:path}", delete_tag, methods=["DELETE"]),
        Route(image + "/file", upload, methods=["PUT"]),
        Route(image + "/file", download, methods=["GET"]),
        Route(image + "/stage", stage, methods=["PUT"]),
        Route(image + "/import", start_import, methods=["POST"]),
        Route(image + "/tasks", image_tasks, methods=["GET"]),
        Route("/v2/tasks", create_task, methods=["POST"]),
        Route(image + "/members", list_members, methods=["GET"]),
        Route(image + "/members", add_member, methods=["POST"]),
        Route(image + "/members/{member_id}", show_member, methods=["GET"]),
        Route(image + "/members/{member_id}", update_member, methods=["PUT"]),
        Route(image + "/members/{member_id}", delete_member, methods=["DELETE"]),
    ]


def _mib(limit: int) -> int:
    return limit if limit < 0 else limit // (1024 * 1024)


def _not_found_image() -> Exception:
    from stratus.errors import NotFound

    return NotFound("No image found with an empty ID.")


def _not_found(name: str) -> Exception:
    from stratus.errors import NotFound

    return NotFound(f"Unknown schema {name!r}.")
