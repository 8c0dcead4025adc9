"""Dashboard wiring (placeholder until the dashboard issue lands)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from stratus.api.app import build_app
from stratus.api.faults import FaultStyle
from stratus.runtime import Runtime, Service
from stratus.settings import API_SERVICES


class DashboardService(Service):
    name = "dashboard"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings

        async def root(request: Request) -> Response:
            rows = "".join(
                f"<li>{svc}: <a href='{settings.endpoint(svc)}'>{settings.endpoint(svc)}</a></li>"
                for svc in settings.services if svc in API_SERVICES and svc != "dashboard"
            )
            return HTMLResponse(
                "<!doctype html><title>Stratus</title><h1>Stratus</h1>"
                f"<p>The dashboard is not built yet. APIs of this cloud:</p><ul>{rows}</ul>"
            )

        self.app = build_app("dashboard", [Route("/", root, methods=["GET"])],
                             metrics=runtime.metrics, style=FaultStyle.KEYSTONE,
                             max_body=runtime.settings.max_request_body)


async def build(runtime: Runtime) -> Service:
    return DashboardService(runtime)
