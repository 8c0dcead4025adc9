"""IPAM never hands out one address twice, with many concurrent requests and workers.

Two network services ("API workers", each with its own connection pool) share
one database; 200 port creates race for the 100 addresses of a pool, from two
projects on a shared network. Exactly 100 must succeed and 100 must get a
clean 409 IpAddressGenerationFailure, with no address allocated twice. Runs
on SQLite, and on the real MariaDB and PostgreSQL servers (started if down),
each test in a database of its own that it drops at the end. One more test
does the same over HTTP against real processes: `stratus serve identity` and
two `stratus serve network` (each its own port) on one PostgreSQL database
and RabbitMQ.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from stratus.db import normalize_url
from stratus.settings import API_SERVICES
from tests.support.cloud import ADMIN_PASSWORD, free_port
from tests.support.databases import postgres_database
from tests.support.services import ensure_mariadb, ensure_postgres, ensure_rabbitmq
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


class _Proc:
    """``python -m stratus serve SERVICES`` in a child process, stopped by its own pid."""

    def __init__(self, data_dir: Path, services: tuple[str, ...], env: dict[str, str],
                 port: int) -> None:
        self.data_dir, self.services, self.env, self.port = data_dir, services, env, port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.data_dir / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 45) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "serve.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stratus", "serve", *self.services],
                env={**self.env, "STRATUS_DATA_DIR": str(self.data_dir)},
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve {self.services} exited:\n{self.log}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve {self.services} not ready in {timeout}s:\n{self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_concurrent_port_creates_across_two_network_processes_on_postgresql(
        tmp_path: Path) -> None:
    """Two real `stratus serve network` processes (plus `serve identity`) on one
    PostgreSQL database and RabbitMQ: 200 port creates split across both APIs
    for a 100-address pool give exactly 100 ports, 100 clean 409s, no shared IP."""
    ensure_rabbitmq()
    with postgres_database() as db_url:
        ports = {name: free_port() for name in API_SERVICES}
        second_network = free_port()
        env = dict(os.environ)
        env.update({f"STRATUS_PORTS__{n.upper()}": str(p) for n, p in ports.items()})
        env.update({"STRATUS_DATABASE_URL": db_url,
                    "STRATUS_BUS_URL": "amqp://guest:guest@127.0.0.1:5672/",
                    "STRATUS_IDENTITY__ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "STRATUS_IDENTITY__SERVICE_PASSWORD": "stratus-test-service",
                    "STRATUS_HYPERVISOR": "fake", "STRATUS_DATAPLANE": "noop"})
        procs = [
            _Proc(tmp_path / "identity", ("identity",), env, ports["identity"]),
            _Proc(tmp_path / "net1", ("network",), env, ports["network"]),
            # same identity port, its own network port
            _Proc(tmp_path / "net2", ("network",),
                  {**env, "STRATUS_PORTS__NETWORK": str(second_network)}, second_network),
        ]
        try:
            for proc in procs:  # one after the other: the first of each migrates
                proc.start()
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
            r = httpx.post(f"http://127.0.0.1:{ports['identity']}/v3/auth/tokens", json=body,
                           timeout=30)
            assert r.status_code == 201, r.text
            token = r.headers["x-subject-token"]
            urls = [f"http://127.0.0.1:{ports['network']}", f"http://127.0.0.1:{second_network}"]
            asyncio.run(_race_over_http(urls, token))
        finally:
            for proc in reversed(procs):
                proc.stop()


async def _race_over_http(urls: list[str], token: str) -> None:
    headers = {"X-Auth-Token": token}
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(
            base_url=url, headers=headers, timeout=60, limits=limits)) for url in urls]
        admin = clients[0]
        r = await admin.post("/v2.0/networks", json={"network": {"name": "race"}})
        assert r.status_code == 201, r.text
        net = r.json()["network"]
        r = await admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4,
            "enable_dhcp": False,
            "allocation_pools": [{"start": "10.9.0.10", "end": "10.9.0.109"}]}})
        assert r.status_code == 201, r.text

        async def create(i: int) -> tuple[int, dict]:
            resp = await clients[i % 2].post(
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
        for client in clients:  # both processes see the same 100 ports
            listed = (await client.get("/v2.0/ports",
                                       params={"network_id": net["id"]})).json()
            assert sorted(p["fixed_ips"][0]["ip_address"] for p in listed["ports"]) == sorted(ips)
