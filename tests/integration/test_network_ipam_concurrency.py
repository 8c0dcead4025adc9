"""IPAM never hands out one address twice, with many concurrent requests and workers.

Two network services ("API workers", each with its own connection pool) share
one database; 200 port creates race for the 100 addresses of a pool, from two
projects on a shared network. Exactly 100 must succeed and 100 must get a
clean 409 IpAddressGenerationFailure, with no address allocated twice. Runs
on SQLite, and on the real MariaDB and PostgreSQL servers (started if down),
each test in a database of its own that it drops at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from stratus.db import normalize_url
from tests.support.services import ensure_mariadb, ensure_postgres
from tests.unit.network.harness import network_service

REQUESTS = 200
FREE = 100


@asynccontextmanager
async def server_database(kind: str) -> AsyncIterator[str]:
    name = f"stratus_net_{uuid.uuid4().hex[:10]}"
    if kind == "mysql":
        await asyncio.to_thread(ensure_mariadb)
        server, url = "mysql://root@127.0.0.1:3306/", f"mysql://root@127.0.0.1:3306/{name}"
    else:
        await asyncio.to_thread(ensure_postgres)
        server = "postgresql://postgres@127.0.0.1:5432/postgres"
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    engine = create_async_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {name}"))
        yield url
    finally:
        async with engine.connect() as conn:
            if kind == "postgresql":
                await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await engine.dispose()


async def race(tmp_path: Path, db_url: str) -> None:
    async with AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(network_service(tmp_path / f"w{i}", db_url))
                   for i in range(2)]
        nets = [w[0] for w in workers]
        admin = await stack.enter_async_context(nets[0].client("admin"))
        net = (await admin.post("/v2.0/networks", json={"network": {
            "name": "race", "shared": True}})).json()["network"]
        r = await admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4,
            "enable_dhcp": False,
            "allocation_pools": [{"start": "10.9.0.10", "end": "10.9.0.109"}]}})
        assert r.status_code == 201, r.text
        clients = [await stack.enter_async_context(nets[i % 2].client(token))
                   for i, token in enumerate(("alice", "bob", "alice", "bob"))]

        async def create(i: int) -> tuple[int, dict]:
            resp = await clients[i % len(clients)].post(
                "/v2.0/ports", json={"port": {"network_id": net["id"], "name": f"p{i}"}})
            return resp.status_code, resp.json()

        results = await asyncio.gather(*(create(i) for i in range(REQUESTS)))
        statuses = Counter(code for code, _ in results)
        assert statuses == {201: FREE, 409: REQUESTS - FREE}, statuses
        failures = {body["NeutronError"]["type"] for code, body in results if code == 409}
        assert failures == {"IpAddressGenerationFailure"}
        ips = [body["port"]["fixed_ips"][0]["ip_address"] for code, body in results
               if code == 201]
        assert len(set(ips)) == FREE
        listed = (await admin.get("/v2.0/ports", params={"network_id": net["id"]})).json()
        assert sorted(p["fixed_ips"][0]["ip_address"] for p in listed["ports"]) == sorted(ips)


async def test_concurrent_port_creates_never_share_an_address_on_sqlite(tmp_path: Path) -> None:
    await race(tmp_path, f"sqlite:///{tmp_path / 'race.db'}")


@pytest.mark.mysql
async def test_concurrent_port_creates_never_share_an_address_on_mariadb(tmp_path: Path) -> None:
    async with server_database("mysql") as url:
        await race(tmp_path, url)


@pytest.mark.postgres
async def test_concurrent_port_creates_never_share_an_address_on_postgresql(
        tmp_path: Path) -> None:
    async with server_database("postgresql") as url:
        await race(tmp_path, url)
