"""The one auth middleware: X-Auth-Token in, ``request.state.context`` out.

Every API service wraps its router with it (``build_app(middleware=[...])``).
It asks the process's :class:`TokenValidator` (identity's own in the
all-in-one, a caching remote validator otherwise) and rejects the request
with 401 when the token is missing or invalid. Paths in ``public`` (version
documents, token issue) pass without a token.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from stratus.api.context import RequestContext, TokenValidator
from stratus.errors import ServiceUnavailable, Unauthorized


class AuthMiddleware:
    def __init__(self, app: ASGIApp, *, validator: Callable[[], TokenValidator | None],
                 public: Collection[str] = ("/", "/healthz", "/metrics"),
                 public_prefixes: Collection[str] = ()) -> None:
        self.app = app
        self.validator = validator
        self.public = frozenset(public)
        self.public_prefixes = tuple(public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        state = scope.setdefault("state", {})
        token = _header(scope, b"x-auth-token")
        if not token:
            if path in self.public or path.rstrip("/") in self.public or (
                    self.public_prefixes and path.startswith(self.public_prefixes)):
                state["context"] = None
                await self.app(scope, receive, send)
                return
            raise Unauthorized("The request you have made requires authentication.")
        validator = self.validator()
        if validator is None:
            raise ServiceUnavailable("No identity service is configured to validate tokens.")
        context = await validator.validate(token)
        state["context"] = RequestContext(**{**context.__dict__,
                                             "request_id": state.get("request_id", "")})
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def auth_middleware(validator: Callable[[], TokenValidator | None], **kwargs: object
                    ) -> Callable[[ASGIApp], ASGIApp]:
    """For ``build_app(middleware=[auth_middleware(lambda: runtime.token_validator)])``."""
    def wrap(app: ASGIApp) -> ASGIApp:
        return AuthMiddleware(app, validator=validator, **kwargs)  # type: ignore[arg-type]
    return wrap


def context_of(request: object) -> RequestContext:
    """The caller's context; 401 if the route was reached without a token."""
    ctx = getattr(getattr(request, "state", None), "context", None)
    if ctx is None:
        raise Unauthorized("The request you have made requires authentication.")
    assert isinstance(ctx, RequestContext)
    return ctx
