"""What every identity handler uses: the caller's token, policy, bodies, responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.api.app import json_body, json_object
from stratus.api.policy import Policy
from stratus.errors import Unauthorized
from stratus.identity.authn import AUTH_FAILED, Authenticator
from stratus.identity.core import Identity
from stratus.identity.provider import InvalidToken, TokenProvider, ValidToken

Handler = Callable[[Request], Awaitable[Response]]


class Api:
    """The identity service's handlers share one of these."""

    def __init__(self, idn: Identity, provider: TokenProvider, authn: Authenticator,
                 policy: Policy) -> None:
        self.idn = idn
        self.provider = provider
        self.authn = authn
        self.policy = policy

    async def caller(self, request: Request) -> ValidToken:
        """The validated X-Auth-Token of the request (401 if missing or invalid)."""
        token = request.headers.get("x-auth-token")
        if not token:
            raise Unauthorized(AUTH_FAILED)
        try:
            return await self.provider.validate(token)
        except InvalidToken:
            raise Unauthorized(AUTH_FAILED) from None

    async def authorize(self, request: Request, rule: str,
                        target: Mapping[str, Any] | None = None) -> ValidToken:
        caller = await self.caller(request)
        self.policy.enforce(rule, caller.context, target or {})
        return caller

    def allowed(self, caller: ValidToken, rule: str, target: Mapping[str, Any]) -> bool:
        return self.policy.check(rule, caller.context, target)

    async def body(self, request: Request, key: str | None) -> dict[str, Any]:
        return json_object(await json_body(request), key)

    def collection(self, request: Request, key: str, items: list[Any]) -> Response:
        url = f"{self.idn.base_url}{request.url.path}"
        if request.url.query:
            url += f"?{request.url.query}"
        body: dict[str, Any] = {key: items, "links": {"self": url, "previous": None,
                                                      "next": None}}
        limit = self.idn.config.list_limit
        if limit and len(items) > limit:  # Keystone's list_limit: cut, and say so
            body[key] = items[:limit]
            body["truncated"] = True
        return JSONResponse(body)


def ok(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers=dict(headers or {}))


def no_content() -> Response:
    return Response(status_code=204)


def route(path: str, handler: Handler, methods: Iterable[str]) -> Route:
    return Route(path, handler, methods=list(methods))


def matches(row: Mapping[str, Any], query: Mapping[str, str], keys: Iterable[str]) -> bool:
    """Keystone's exact-match list filters (``?name=x&enabled=true``)."""
    for key in keys:
        if key not in query:
            continue
        want = query[key]
        have = row.get(key)
        if isinstance(have, bool):
            if have != (want.lower() not in ("0", "false", "no", "off")):
                return False
        elif str(have) != want:
            return False
    return True


def name_filter(row: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    """``?name__contains=``/``__startswith``/``__endswith`` and ``__i`` variants."""
    for key, want in query.items():
        if not key.startswith("name__"):
            continue
        op = key[len("name__"):]
        have = str(row.get("name", ""))
        if op.startswith("i"):
            op, have, want = op[1:], have.lower(), want.lower()
        if op == "contains" and want not in have:
            return False
        if op == "startswith" and not have.startswith(want):
            return False
        if op == "endswith" and not have.endswith(want):
            return False
    return True
