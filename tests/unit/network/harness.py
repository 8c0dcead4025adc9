"""An in-process network service on a chosen database, driven over HTTP (ASGI).

Tokens are fixed strings mapped to contexts by a small test validator, so the
API is exercised exactly as a client would, without the identity service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from stratus.api.context import RequestContext
from stratus.api.metrics import Metrics
from stratus.bus import connect
from stratus.db import Database, migrate
from stratus.errors import Unauthorized
from stratus.runtime import Runtime
from stratus.settings import Settings

PROJECT_A = "a" * 32
PROJECT_B = "b" * 32
ADMIN_PROJECT = "f" * 32

TOKENS = {
    "admin": RequestContext(user_id="u-admin", project_id=ADMIN_PROJECT, roles=("admin",)),
    "alice": RequestContext(user_id="u-alice", project_id=PROJECT_A, roles=("member",)),
    "bob": RequestContext(user_id="u-bob", project_id=PROJECT_B, roles=("member",)),
    "carol": RequestContext(user_id="u-carol", project_id=PROJECT_A, roles=("reader",)),
}


class FixedTokens:
    async def validate(self, token: str) -> RequestContext:
        if token not in TOKENS:
            raise Unauthorized("The request you have made requires authentication.")
        return TOKENS[token]


async def _quiesce(bus: Any, timeout: float = 5.0) -> None:
    """Let in-flight agent messages finish: cancelling one mid-query can hang aiosqlite."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        servers = [s for group in getattr(bus, "_servers", {}).values() for s in group]
        if all(not s.inflight and s.queue.empty() for s in servers):
            await asyncio.sleep(0.01)
            if all(not s.inflight and s.queue.empty() for s in servers):
                return
        await asyncio.sleep(0.01)


class Net:
    """Clients per persona on one network service."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def client(self, token: str | None = "admin") -> httpx.AsyncClient:
        headers = {"X-Auth-Token": token} if token else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url="http://net", headers=headers, timeout=60)


@asynccontextmanager
async def network_service(data_dir: Path, db_url: str = "", **network: Any
                          ) -> AsyncIterator[tuple[Net, Runtime]]:
    settings = Settings(data_dir=data_dir, database_url=db_url, services=("network",),
                        dataplane="noop", network=network)
    db = Database(settings.db_url)
    await migrate.upgrade(db, ["network"])
    metrics = Metrics()
    bus = connect(settings.bus_url, metrics=metrics, default_timeout=10)
    runtime = Runtime(settings=settings, metrics=metrics, db=db, bus=bus)
    runtime.token_validator = FixedTokens()
    from stratus.network.service import build

    service = await build(runtime)
    runtime.services["network"] = service
    await bus.start()
    await service.start()
    try:
        yield Net(service.app), runtime
    finally:
        await _quiesce(bus)
        await service.stop()
        await bus.stop()
        await db.dispose()


def fault(resp: httpx.Response) -> str:
    """The NeutronError type of an error response."""
    return str(resp.json()["NeutronError"]["type"])


async def make_network(client: httpx.AsyncClient, **attrs: Any) -> dict[str, Any]:
    r = await client.post("/v2.0/networks", json={"network": {"name": "net", **attrs}})
    assert r.status_code == 201, r.text
    return dict(r.json()["network"])


async def make_subnet(client: httpx.AsyncClient, network_id: str, cidr: str = "10.0.0.0/24",
                      **attrs: Any) -> dict[str, Any]:
    version = 6 if ":" in cidr else 4
    r = await client.post("/v2.0/subnets", json={"subnet": {
        "network_id": network_id, "cidr": cidr, "ip_version": version, **attrs}})
    assert r.status_code == 201, r.text
    return dict(r.json()["subnet"])


async def make_port(client: httpx.AsyncClient, network_id: str, **attrs: Any) -> dict[str, Any]:
    r = await client.post("/v2.0/ports", json={"port": {"network_id": network_id, **attrs}})
    assert r.status_code == 201, r.text
    return dict(r.json()["port"])
