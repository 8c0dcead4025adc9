"""Block storage API wiring (placeholder until the volume issue lands)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.api.app import build_app
from stratus.api.faults import FaultStyle
from stratus.runtime import Runtime, Service


class VolumeService(Service):
    name = "volume"

    def __init__(self, runtime: Runtime) -> None:
        base = runtime.settings.endpoint("volume")

        def version() -> dict[str, object]:
            return {"id": "v3.0", "status": "CURRENT", "version": "3.0", "min_version": "3.0",
                    "updated": "2023-08-31T00:00:00Z",
                    "links": [{"rel": "self", "href": f"{base}/v3/"}],
                    "media-types": [{"base": "application/json",
                                     "type": "application/vnd.openstack.volume+json;version=3"}]}

        async def root(request: Request) -> Response:
            return JSONResponse({"versions": [version()]}, status_code=300)

        async def v3(request: Request) -> Response:
            return JSONResponse({"versions": [version()]})

        self.app = build_app(
            "volume",
            [Route("/", root, methods=["GET"]), Route("/v3", v3, methods=["GET"]),
             Route("/v3/", v3, methods=["GET"])],
            metrics=runtime.metrics, style=FaultStyle.NOVA,
            max_body=runtime.settings.max_request_body,
        )


async def build(runtime: Runtime) -> Service:
    return VolumeService(runtime)
