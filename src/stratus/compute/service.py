"""Compute API wiring (placeholder until the compute issue lands)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.api.app import build_app
from stratus.api.faults import FaultStyle
from stratus.runtime import Runtime, Service

MAX_MICROVERSION = "2.1"


class ComputeService(Service):
    name = "compute"

    def __init__(self, runtime: Runtime) -> None:
        base = runtime.settings.endpoint("compute")

        def versions() -> list[dict[str, object]]:
            return [
                {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
                 "updated": "2011-01-21T11:33:21Z",
                 "links": [{"rel": "self", "href": f"{base}/v2/"}]},
                {"id": "v2.1", "status": "CURRENT", "version": MAX_MICROVERSION,
                 "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
                 "links": [{"rel": "self", "href": f"{base}/v2.1/"}]},
            ]

        async def root(request: Request) -> Response:
            return JSONResponse({"versions": versions()})

        async def v21(request: Request) -> Response:
            return JSONResponse({"version": versions()[1]})

        self.app = build_app(
            "compute",
            [Route("/", root, methods=["GET"]), Route("/v2.1", v21, methods=["GET"]),
             Route("/v2.1/", v21, methods=["GET"])],
            metrics=runtime.metrics, style=FaultStyle.NOVA,
            max_body=runtime.settings.max_request_body,
            extra_request_id_headers=("x-compute-request-id",),
        )


async def build(runtime: Runtime) -> Service:
    return ComputeService(runtime)
