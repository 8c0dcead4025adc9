"""An in-process compute cloud for unit tests: the four compute roles on a
memory bus and a temporary SQLite, driven over HTTP through an ASGI transport
with a small test token validator and an in-memory image service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratus import runtime as rt
from stratus.api.context import RequestContext
from stratus.compute.images import MemoryImageAPI
from stratus.errors import Unauthorized
from stratus.settings import load_settings

PROJECTS = {"p1": "project-1", "p2": "project-2"}


class Tokens:
    """``admin``, ``member-p1``, ``reader-p2``... → a context with that role and project."""

    async def validate(self, token: str) -> RequestContext:
        role, _, project = token.partition("-")
        if role not in ("admin", "member", "reader"):
            raise Unauthorized("bad token")
        project = project or "p1"
        roles = {"admin": ("admin", "member", "reader"), "member": ("member", "reader"),
                 "reader": ("reader",)}[role]
        return RequestContext(user_id=f"user-{role}-{project}", user_name=role,
                              project_id=PROJECTS.get(project, project), roles=roles,
                              token=token)


class Cloud:
    def __init__(self, runtime: rt.Runtime, images: MemoryImageAPI) -> None:
        self.runtime = runtime
        self.images = images
        self.image_id = images.add(name="cirros", size=1024)
        app = runtime.services["compute"].app
        assert app is not None
        self.transport = httpx.ASGITransport(app=app)

    def client(self, token: str = "member-p1", version: str | None = "2.96") -> httpx.AsyncClient:
        headers = {"X-Auth-Token": token}
        if version:
            headers["OpenStack-API-Version"] = f"compute {version}"
        return httpx.AsyncClient(transport=self.transport, headers=headers,
                                 base_url="http://127.0.0.1:8774/v2.1")

    @property
    def hosts(self) -> dict[str, Any]:
        return self.runtime.extras["compute.hosts"]  # type: ignore[no-any-return]

    def driver(self, host: str | None = None) -> Any:
        hosts = self.hosts
        return (hosts[host] if host else next(iter(hosts.values()))).driver

    async def create(self, client: httpx.AsyncClient, name: str = "vm", wait: bool = True,
                     **extra: Any) -> dict[str, Any]:
        body = {"server": {"name": name, "imageRef": self.image_id, "flavorRef": "1",
                           "networks": "none", **extra}}
        resp = await client.post("/servers", json=body)
        assert resp.status_code == 202, resp.text
        server: dict[str, Any] = resp.json()["server"]
        if wait:
            return await self.wait(client, server["id"], "ACTIVE")
        return server

    async def wait(self, client: httpx.AsyncClient, server_id: str, status: str,
                   timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            resp = await client.get(f"/servers/{server_id}")
            if status == "DELETED" and resp.status_code == 404:
                return {}
            assert resp.status_code == 200, resp.text
            server: dict[str, Any] = resp.json()["server"]
            seen.append((server["status"], server["OS-EXT-STS:task_state"]))
            if server["status"] == status and server["OS-EXT-STS:task_state"] is None:
                return server
            if server["status"] == "ERROR" and status != "ERROR":
                raise AssertionError(f"server went to ERROR: {server.get('fault')}")
            await asyncio.sleep(0.01)
        raise AssertionError(f"server {server_id} not {status} in {timeout}s; saw {seen[-5:]}")

    async def action(self, client: httpx.AsyncClient, server_id: str, name: str,
                     body: Any = None) -> httpx.Response:
        return await client.post(f"/servers/{server_id}/action", json={name: body})


async def make_cloud(tmp_path: Path, **compute: Any) -> tuple[Cloud, rt.Runtime]:
    env = {"STRATUS_DATA_DIR": str(tmp_path)}
    settings = load_settings(environ=env, services="compute,scheduler,conductor,compute-agent",
                             hypervisor="fake", compute={"heartbeat_interval": 0.2,
                                                         "fake_vcpus": 8,
                                                         "fake_memory_mb": 16384,
                                                         "fake_disk_gb": 200, **compute})
    runtime = await rt.build(settings)
    runtime.token_validator = Tokens()
    images = MemoryImageAPI()
    runtime.extras["compute.images"] = images
    runtime.extras.setdefault("compute.network", None)  # no network service here
    # Services read the override at build time: rebuild them with it in place.
    for name in list(runtime.services):
        runtime.services[name] = await rt.builder_for(name)(runtime)
    await runtime.bus.start()
    for service in runtime.services.values():
        await service.start()
    return Cloud(runtime, images), runtime


async def stop_cloud(runtime: rt.Runtime) -> None:
    for service in reversed(list(runtime.services.values())):
        await service.stop()
    await runtime.bus.stop()
    await runtime.db.dispose()


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    c, runtime = await make_cloud(tmp_path)
    try:
        yield c
    finally:
        await stop_cloud(runtime)


@pytest.fixture
async def two_hosts(tmp_path: Path) -> AsyncIterator[Cloud]:
    c, runtime = await make_cloud(tmp_path, fake_hosts=2)
    try:
        yield c
    finally:
        await stop_cloud(runtime)
