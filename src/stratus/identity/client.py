"""For processes without the identity service: a caching remote token validator,
and service tokens fetched with the service users' password.

The validator asks ``GET /v3/auth/tokens`` (with this process's service
token) and caches each answer for ``identity.token_cache_ttl`` seconds (and
never past the token's expiry), like keystonemiddleware's token cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from stratus.api.context import RequestContext
from stratus.api.policy import expand_roles
from stratus.errors import ServiceUnavailable, Unauthorized
from stratus.identity.tokens import parse_time
from stratus.settings import Settings

AUTH_FAILED = "The request you have made requires authentication."


def auth_url(settings: Settings) -> str:
    return (settings.identity.auth_url or settings.endpoint("identity") + "/v3").rstrip("/")


async def fetch_service_token(settings: Settings, user: str = "compute",
                              client: httpx.AsyncClient | None = None
                              ) -> tuple[str, datetime]:
    """Log a service user in to the service project; returns (token, expires_at)."""
    from stratus.identity.bootstrap import SERVICE_PROJECT, service_password

    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": service_password(settings)}}},
        "scope": {"project": {"name": SERVICE_PROJECT, "domain": {"id": "default"}}}}}
    own = client is None
    client = client or httpx.AsyncClient(timeout=30)
    try:
        resp = await client.post(f"{auth_url(settings)}/auth/tokens?nocatalog", json=body)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"cannot reach identity at {auth_url(settings)}: {exc}"
                                 ) from None
    finally:
        if own:
            await client.aclose()
    if resp.status_code != 201:
        raise ServiceUnavailable(f"identity refused the {user} service user "
                                 f"({resp.status_code}); check identity.service_password")
    return resp.headers["x-subject-token"], parse_time(resp.json()["token"]["expires_at"])


def context_from_token(token_id: str, token: dict[str, Any]) -> RequestContext:
    """A :class:`RequestContext` from the ``token`` object of a Keystone response."""
    user = token.get("user") or {}
    project = token.get("project") or {}
    domain = token.get("domain") or {}
    roles = expand_roles(r["name"] for r in token.get("roles") or [])
    return RequestContext(
        user_id=user.get("id", ""), user_name=user.get("name", ""),
        user_domain_id=(user.get("domain") or {}).get("id", ""),
        project_id=project.get("id"), project_name=project.get("name", ""),
        project_domain_id=(project.get("domain") or {}).get("id") if project else None,
        domain_id=domain.get("id"), system_scope="all" if token.get("system") else None,
        roles=roles, audit_ids=tuple(token.get("audit_ids") or ()),
        expires_at=token.get("expires_at", ""), token=token_id)


class RemoteValidator:
    """A :class:`~stratus.api.context.TokenValidator` backed by a remote identity service."""

    MAX_CACHE = 50_000

    def __init__(self, settings: Settings,
                 service_headers: Callable[[], Awaitable[dict[str, str]]],
                 client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.url = auth_url(settings) + "/auth/tokens?nocatalog"
        self.ttl = settings.identity.token_cache_ttl
        self.service_headers = service_headers
        self.client = client
        self._cache: dict[str, tuple[RequestContext, float]] = {}
        self._inflight: dict[str, asyncio.Future[RequestContext]] = {}

    async def validate(self, token: str) -> RequestContext:
        return await self._validate(token, allow_expired=False)

    async def validate_allow_expired(self, token: str) -> RequestContext:
        """For service-accompanied requests (``?allow_expired=1``)."""
        return await self._validate(token, allow_expired=True)

    async def _validate(self, token: str, *, allow_expired: bool) -> RequestContext:
        key = ("expired:" + token) if allow_expired else token
        hit = self._cache.get(key) or (self._cache.get(token) if allow_expired else None)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        pending = self._inflight.get(key)
        if pending is not None:  # many requests with one new token: ask once
            return await asyncio.shield(pending)
        future: asyncio.Future[RequestContext] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            context = await self._ask(token, key, allow_expired)
            future.set_result(context)
            return context
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[key]

    async def _ask(self, token: str, key: str, allow_expired: bool) -> RequestContext:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=30)
        url = self.url + ("&allow_expired=1" if allow_expired else "")
        for attempt in (1, 2):
            headers = {**await self.service_headers(), "X-Subject-Token": token}
            try:
                resp = await self.client.get(url, headers=headers)
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"cannot reach identity to validate a token: {exc}"
                                         ) from None
            if resp.status_code == 200:
                body = resp.json()["token"]
                context = context_from_token(token, body)
                expires = parse_time(body["expires_at"])
                remaining = (expires - datetime.now(UTC)).total_seconds()
                if allow_expired:
                    remaining += self.settings.identity.allow_expired_window
                if len(self._cache) >= self.MAX_CACHE:
                    self._cache.clear()
                self._cache[key] = (context, time.monotonic() + min(self.ttl, remaining))
                return context
            if resp.status_code == 404:
                raise Unauthorized(AUTH_FAILED)
            if resp.status_code == 401 and attempt == 1:
                self.forget_service_token()
                continue
            break
        raise ServiceUnavailable(f"identity answered {resp.status_code} to a token validation")

    def forget_service_token(self) -> None:
        """Hook for the runtime: drop a cached service token the identity refused."""
        reset = getattr(self.service_headers, "__self__", None)
        if reset is not None and hasattr(reset, "_service_token"):
            reset._service_token = None
