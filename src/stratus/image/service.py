"""Image service wiring (placeholder until the image issue lands)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.api.app import build_app
from stratus.api.faults import FaultStyle
from stratus.runtime import Runtime, Service


class ImageService(Service):
    name = "image"

    def __init__(self, runtime: Runtime) -> None:
        base = runtime.settings.endpoint("image")

        async def root(request: Request) -> Response:
            versions = [
                {"id": v, "status": "CURRENT" if v == "v2.16" else "SUPPORTED",
                 "links": [{"rel": "self", "href": f"{base}/v2/"}]}
                for v in ("v2.16", "v2.15", "v2.9", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3",
                          "v2.2", "v2.1", "v2.0")
            ]
            return JSONResponse({"versions": versions}, status_code=300)

        self.app = build_app("image", [Route("/", root, methods=["GET"])],
                             metrics=runtime.metrics, style=FaultStyle.GLANCE,
                             max_body=runtime.settings.max_request_body)


async def build(runtime: Runtime) -> Service:
    return ImageService(runtime)
