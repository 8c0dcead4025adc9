"""The HTTP edge every API service shares.

``build_app`` wraps a service's routes with: request ids
(``x-openstack-request-id``), one access log line per request, per-route
counts and latency histograms, a cap on JSON request bodies, ``/metrics`` and
``/healthz``, and rendering of every error in the service's fault format.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.api.faults import FaultStyle, fault_body
from stratus.api.metrics import Metrics
from stratus.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    StratusError,
    UnsupportedMediaType,
)

log = logging.getLogger("stratus.access")
errlog = logging.getLogger("stratus.api")

REQUEST_ID_HEADER = "x-openstack-request-id"
# Bodies of these types are streamed by their handlers (image data), not capped.
STREAMING_TYPES = ("application/octet-stream",)


def render_error(style: FaultStyle, error: StratusError) -> Response:
    headers = dict(error.headers)
    return JSONResponse(fault_body(style, error), status_code=error.status, headers=headers)


class EdgeMiddleware:
    """Request id, access log, metrics and the body cap, as plain ASGI."""

    def __init__(self, app: ASGIApp, *, service: str, metrics: Metrics, style: FaultStyle,
                 max_body: int, extra_request_id_headers: Sequence[str] = ()) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics
        self.style = style
        self.max_body = max_body
        self.extra_headers = [h.lower().encode() for h in extra_request_id_headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = f"req-{uuid.uuid4()}"
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder = [500]
        started = [False]
        rid = request_id.encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                started[0] = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), rid))
                for name in self.extra_headers:
                    headers.append((name, rid))
                message["headers"] = headers
            await send(message)

        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        length = headers.get(b"content-length")
        try:
            if ctype not in STREAMING_TYPES:
                if length is not None and length.isdigit() and int(length) > self.max_body:
                    raise PayloadTooLarge(
                        f"Request body of {int(length)} bytes exceeds the limit of "
                        f"{self.max_body} bytes."
                    )
                receive = self._capped(receive)
            await self.app(scope, receive, send_wrapper)
        except StratusError as exc:  # raised outside the router (body cap, auth)
            await render_error(self.style, exc)(scope, receive, send_wrapper)
        except Exception:
            # Starlette has already rendered the 500 and logged the traceback;
            # keep uvicorn from logging it a second time.
            if not started[0]:
                raise
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            labels = {"service": self.service, "method": scope["method"], "route": template,
                      "status": str(status_holder[0])}
            self.metrics.inc("stratus_http_requests_total", labels)
            self.metrics.observe(
                "stratus_http_request_duration_seconds",
                {"service": self.service, "method": scope["method"], "route": template},
                elapsed,
            )
            client = scope.get("client") or ("-", 0)
            log.info('%s %s "%s %s" %s %.1fms %s', self.service, client[0], scope["method"],
                     scope.get("path", ""), status_holder[0], elapsed * 1000, request_id)

    def _capped(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
            return message

        return capped


async def json_body(request: Request, *, required: bool = True) -> Any:
    """The request's JSON document, or a 400 that says what is wrong with it."""
    try:
        raw = await request.body()
    except ClientDisconnect:  # nobody to answer; not a server error worth a traceback
        raise BadRequest("The client disconnected before the request body ended.") from None
    if not raw:
        if required:
            raise BadRequest("The request body is empty; a JSON document is required.")
        return None
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype and not (ctype == "application/json" or ctype.endswith("+json")
                      or ctype.endswith("-json")):
        raise UnsupportedMediaType(f"Content-Type {ctype!r} is not supported; send JSON.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Malformed JSON in request body: {exc}") from None
    except RecursionError:  # e.g. "[[[[...]]]]" thousands deep
        raise BadRequest("Malformed JSON in request body: nested too deeply.") from None


def json_object(body: Any, key: str | None = None) -> dict[str, Any]:
    """Require ``body`` (or ``body[key]``) to be a JSON object."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    if key is None:
        return body
    inner = body.get(key)
    if not isinstance(inner, dict):
        raise BadRequest(f"The request body must hold an object under {key!r}.")
    return inner


Handler = Callable[[Request], Awaitable[Response]]


def build_app(
    service: str,
    routes: Sequence[BaseRoute],
    *,
    metrics: Metrics,
    style: FaultStyle,
    max_body: int = 1024 * 1024,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
    middleware: Sequence[Callable[[ASGIApp], ASGIApp]] = (),
    extra_request_id_headers: Sequence[str] = (),
    state: dict[str, Any] | None = None,
) -> ASGIApp:
    """A Starlette app for ``service`` wrapped in the shared edge middleware.

    ``middleware`` are applied innermost-first around the router (e.g. the
    auth middleware), inside the edge so their errors are rendered too.
    """

    async def metrics_endpoint(request: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": service})

    async def on_stratus_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StratusError)
        return render_error(style, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            err: StratusError = NotFound(f"No such resource: {request.url.path}")
        elif exc.status_code == 405:
            err = MethodNotAllowed(
                f"Method {request.method} is not allowed for {request.url.path}.",
                headers=dict(exc.headers or {}),
            )
        else:
            err = StratusError(exc.detail)
            err.status = exc.status_code
        return render_error(style, err)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        rid = request.scope.get("state", {}).get("request_id", "")
        errlog.exception("unhandled error in %s %s (%s)", request.method, request.url.path, rid)
        err = StratusError(f"An unexpected error occurred; quote request id {rid} to the operator.")
        return render_error(style, err)

    all_routes = list(routes) + [
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ]
    app = Starlette(
        routes=all_routes,
        lifespan=lifespan,
        exception_handlers={
            StratusError: on_stratus_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
    )
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    inner: ASGIApp = app
    for wrap in middleware:
        inner = wrap(inner)
    return EdgeMiddleware(inner, service=service, metrics=metrics, style=style, max_body=max_body,
                          extra_request_id_headers=extra_request_id_headers)
