"""X-Service-Token in the shared auth middleware (keystonemiddleware's service tokens)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.api.app import build_app
from stratus.api.auth import auth_middleware, context_of
from stratus.api.faults import FaultStyle
from stratus.api.metrics import Metrics
from stratus.identity.client import RemoteValidator
from stratus.identity.service import IdentityService
from tests.functional.identity.inprocess import Client, identity


async def whoami(request: Request) -> Response:
    ctx = context_of(request)
    return JSONResponse({"user_id": ctx.user_id, "is_service": ctx.is_service})


@dataclass
class World:
    identity: Client
    api: httpx.AsyncClient  # a service API behind the auth middleware
    user_token: str
    user_id: str
    service_token: str

    @property
    def service(self) -> IdentityService:
        return self.identity.runtime.services["identity"]  # type: ignore[return-value]

    def expired_token(self, seconds_ago: int) -> str:
        provider = self.service.provider
        past = datetime.now(UTC) - timedelta(seconds=seconds_ago)
        payload = provider.new_payload(self.user_id, ["password"], None, None,
                                       expires_at=past)
        return provider.idn.codec.issue(payload)

    async def call(self, token: str, service_token: str | None = None) -> httpx.Response:
        headers = {"X-Auth-Token": token}
        if service_token is not None:
            headers["X-Service-Token"] = service_token
        return await self.api.get("/whoami", headers=headers)


def service_api(validator: object) -> httpx.AsyncClient:
    app = build_app("test", [Route("/whoami", whoami, methods=["GET"])], metrics=Metrics(),
                    style=FaultStyle.NOVA, max_body=4096,
                    middleware=[auth_middleware(lambda: validator)])  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with identity(tmp_path, allow_expired_window=3600) as c:
        user = await c.user("pw-user")
        token = (await c.login(user["id"], "pw-user")).headers["X-Subject-Token"]
        service_token, _ = await c.runtime.extras["identity.service_token"]()
        async with service_api(c.runtime.token_validator) as api:
            yield World(c, api, token, user["id"], service_token)


async def test_a_service_token_of_a_service_user_marks_the_request(world: World) -> None:
    r = await world.call(world.user_token, world.service_token)
    assert r.json() == {"user_id": world.user_id, "is_service": True}
    r = await world.call(world.user_token)
    assert r.json()["is_service"] is False


async def test_a_valid_service_token_without_the_service_role_is_ignored(world: World) -> None:
    r = await world.call(world.user_token, world.user_token)
    assert r.status_code == 200 and r.json()["is_service"] is False


async def test_an_invalid_service_token_fails_the_request(world: World) -> None:
    r = await world.call(world.user_token, "garbage")
    assert r.status_code == 401


async def test_expired_user_tokens_pass_only_with_a_service_token(world: World) -> None:
    expired = world.expired_token(seconds_ago=60)
    assert (await world.call(expired)).status_code == 401
    r = await world.call(expired, world.service_token)
    assert r.status_code == 200 and r.json()["user_id"] == world.user_id
    too_old = world.expired_token(seconds_ago=7200)
    assert (await world.call(too_old, world.service_token)).status_code == 401


async def test_remote_validator_asks_for_expired_tokens_only_for_services(
        world: World) -> None:
    identity_app = world.service.app
    runtime = world.identity.runtime
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=identity_app))
    remote = RemoteValidator(runtime.settings, runtime.service_headers, client=client)
    async with client, service_api(remote) as api:
        expired = world.expired_token(seconds_ago=60)
        headers = {"X-Auth-Token": expired}
        assert (await api.get("/whoami", headers=headers)).status_code == 401
        r = await api.get("/whoami", headers={**headers, "X-Service-Token": world.service_token})
        assert r.status_code == 200 and r.json() == {"user_id": world.user_id,
                                                     "is_service": True}
