"""The one auth middleware: X-Auth-Token in, ``request.state.context`` out.

Every API service wraps its router with it (``build_app(middleware=[...])``).
It asks the process's :class:`TokenValidator` (identity's own in the
all-in-one, a caching remote validator otherwise) and rejects the request
with 401 when the token is missing or invalid. Paths in ``public`` (version
documents, token issue) pass without a token.

A request that also carries ``X-Service-Token`` is a service acting for a
user: when that token validates to a user with the ``service`` role the
context says ``is_service`` (policy: ``service:True``, ``rule:service_role``
reads the roles as usual) and the user's token may have expired within
``identity.allow_expired_window``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol, runtime_checkable

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
        is_service = False
        service_token = _header(scope, b"x-service-token")
        if service_token:
            # As keystonemiddleware: a service token that does not validate fails the
            # request; a valid one of a user without the service role is ignored.
            service = await validator.validate(service_token)
            is_service = service.has_role("service")
        if is_service and isinstance(validator, ExpiredTokenValidator):
            context = await validator.validate_allow_expired(token)
        else:
            context = await validator.validate(token)
        state["context"] = RequestContext(**{**context.__dict__, "is_service": is_service,
                                             "request_id": state.get("request_id", "")})
        await self.app(scope, receive, send)


@runtime_checkable
class ExpiredTokenValidator(Protocol):
    """A validator that can also accept a recently expired token.

    Used for requests that carry a valid ``X-Service-Token`` of a user with the
    ``service`` role, so that a long operation a service started for a user
    (an image upload, a server boot) does not fail when the user's token
    expires half-way; how long after expiry is ``identity.allow_expired_window``.
    """

    async def validate_allow_expired(self, token: str) -> RequestContext: ...


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
