"""Identity service wiring (placeholder until the identity issue lands)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.api.app import build_app
from stratus.api.faults import FaultStyle
from stratus.runtime import Runtime, Service

MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def _version(base: str) -> dict[str, object]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": MEDIA_TYPES,
    }


class IdentityService(Service):
    name = "identity"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        base = runtime.settings.endpoint("identity")

        async def root(request: Request) -> Response:
            return JSONResponse({"versions": {"values": [_version(base)]}}, status_code=300)

        async def v3(request: Request) -> Response:
            return JSONResponse({"version": _version(base)})

        self.app = build_app(
            "identity",
            [Route("/", root, methods=["GET"]), Route("/v3", v3, methods=["GET"]),
             Route("/v3/", v3, methods=["GET"])],
            metrics=runtime.metrics,
            style=FaultStyle.KEYSTONE,
            max_body=runtime.settings.max_request_body,
        )


async def build(runtime: Runtime) -> Service:
    return IdentityService(runtime)
