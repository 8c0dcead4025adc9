"""The ``novncproxy`` service (nova-novncproxy): noVNC's pages plus the console websocket.

It listens on ``ports.novncproxy`` (6080) of ``bind_host`` (127.0.0.1 by
default). The pages come from Debian's ``novnc`` package
(``console.novnc_dir``, /usr/share/novnc); without it they answer 404 saying
so, and the websocket (any path) still works for other VNC clients. It needs
the compute database (tokens) and the bus (to ask compute agents), not the
identity service: the console token is the credential.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from stratus.api.app import build_app
from stratus.api.faults import FaultStyle
from stratus.console.proxy import ConsoleProxy
from stratus.errors import NotFound
from stratus.runtime import Runtime, Service

PAGE = "vnc_lite.html"


def page_routes(root: Path) -> list[BaseRoute]:
    """``/`` (what this is), and noVNC's files under ``root``, one route per top-level
    entry (so the shared ``/healthz`` and ``/metrics`` routes stay reachable)."""
    installed = (root / PAGE).is_file()
    missing_text = (f"noVNC is not installed on this host (no {root / PAGE}): apt-get install "
                    "novnc (scripts/install.sh does it as root), or set console.novnc_dir. "
                    "The console websocket works without it.")

    async def index(request: Request) -> Response:
        state = (f"<a href='/{PAGE}'>noVNC</a> is served from {html.escape(str(root))}"
                 if installed else html.escape(missing_text))
        return HTMLResponse("<!doctype html><title>Stratus console proxy</title>"
                            "<h1>Stratus console proxy</h1><p>Open a console with the URL "
                            "that <code>openstack console url show SERVER</code> gives.</p>"
                            f"<p>{state}</p>")

    routes: list[BaseRoute] = [Route("/", index, methods=["GET", "HEAD"])]
    if not installed:
        async def missing(request: Request) -> Response:
            raise NotFound(missing_text)
        return routes + [Route("/{page}.html", missing, methods=["GET", "HEAD"])]
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            routes.append(Mount(f"/{entry.name}", app=StaticFiles(directory=entry)))
        elif entry.is_file():
            routes.append(Route(f"/{entry.name}", _file(entry), methods=["GET", "HEAD"]))
    return routes


def _file(path: Path) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return FileResponse(path)
    return serve


class NoVNCProxyService(Service):
    name = "novncproxy"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        proxy = ConsoleProxy(runtime.db, runtime.bus, settings)
        routes: list[BaseRoute] = [WebSocketRoute("/{path:path}", proxy.handle)]
        routes += page_routes(settings.console.novnc_dir)
        self.app = build_app("novncproxy", routes, metrics=runtime.metrics,
                             style=FaultStyle.KEYSTONE, max_body=settings.max_request_body)


async def build(runtime: Runtime) -> Service:
    return NoVNCProxyService(runtime)
