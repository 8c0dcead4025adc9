"""Network API wiring (placeholder until the networking issue lands)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.api.app import build_app
from stratus.api.faults import FaultStyle
from stratus.runtime import Runtime, Service


class NetworkService(Service):
    name = "network"

    def __init__(self, runtime: Runtime) -> None:
        base = runtime.settings.endpoint("network")

        async def root(request: Request) -> Response:
            return JSONResponse({"versions": [
                {"id": "v2.0", "status": "CURRENT",
                 "links": [{"rel": "self", "href": f"{base}/v2.0/"}]}]})

        self.app = build_app("network", [Route("/", root, methods=["GET"])],
                             metrics=runtime.metrics, style=FaultStyle.NEUTRON,
                             max_body=runtime.settings.max_request_body)


async def build(runtime: Runtime) -> Service:
    return NetworkService(runtime)
