"""An identity-only runtime in this process, driven over ASGI (for settings the shared
cloud does not have: security compliance, list limits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stratus.runtime import Runtime, build
from stratus.settings import load_settings

ADMIN_PASSWORD = "pw-admin"


@dataclass
class Client:
    runtime: Runtime
    http: httpx.AsyncClient
    admin_token: str = ""

    async def auth(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post("/v3/auth/tokens", json={"auth": body})

    async def login(self, user_id: str, password: str,
                    project_id: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"identity": {"methods": ["password"], "password": {
            "user": {"id": user_id, "password": password}}}}
        if project_id:
            body["scope"] = {"project": {"id": project_id}}
        return await self.auth(body)

    async def req(self, method: str, path: str, token: str | None = None,
                  **kw: Any) -> httpx.Response:
        headers = {"X-Auth-Token": token or self.admin_token, **kw.pop("headers", {})}
        return await self.http.request(method, "/v3" + path, headers=headers, **kw)

    async def user(self, password: str = "pw-first", **kw: Any) -> dict[str, Any]:
        r = await self.req("POST", "/users", json={"user": {
            "name": f"u-{len(password)}-{id(kw)}-{password}", "domain_id": "default",
            "password": password, **kw}})
        assert r.status_code == 201, r.text
        return dict(r.json()["user"])


@asynccontextmanager
async def identity(tmp_path: Path, **identity_settings: Any) -> AsyncIterator[Client]:
    settings = load_settings(environ={}, data_dir=tmp_path, services="identity", identity={
        "admin_password": ADMIN_PASSWORD, "password_hash_rounds": 4, **identity_settings})
    runtime = await build(settings)
    app = runtime.services["identity"].app  # type: ignore[attr-defined]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://identity") as http:
            client = Client(runtime, http)
            r = await client.auth({"identity": {"methods": ["password"], "password": {
                "user": {"name": "admin", "domain": {"id": "default"},
                         "password": ADMIN_PASSWORD}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}})
            assert r.status_code == 201, r.text
            client.admin_token = r.headers["X-Subject-Token"]
            yield client
    finally:
        await runtime.db.dispose()
