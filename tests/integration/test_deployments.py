"""Stratus on the real servers: MariaDB, PostgreSQL and RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable

import httpx
import pytest

from tests.support.cloud import ADMIN_PASSWORD, CloudProcess
from tests.support.databases import mariadb_database, postgres_database
from tests.support.services import ensure_rabbitmq

DATABASES: dict[str, Callable[[], AbstractContextManager[str]]] = {
    "mariadb": mariadb_database,
    "postgresql": postgres_database,
}


@pytest.fixture(params=[pytest.param("mariadb", marks=pytest.mark.mysql),
                        pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with DATABASES[request.param]() as url:
        yield url


def admin_token(identity_url: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    r = httpx.post(f"{identity_url}/v3/auth/tokens", json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"]


def test_all_in_one_on_a_real_database_migrates_serves_and_restarts(
        tmp_path: Path, database_url: str) -> None:
    env = {"STRATUS_DATABASE_URL": database_url}
    for _ in range(2):  # cold (migrations + bootstrap), then warm on the same database
        with CloudProcess(tmp_path / "data", env=env) as cloud:
            for name in cloud.started_services:
                r = httpx.get(cloud.url(name) + "/", timeout=10)
                assert r.status_code in (200, 300), (name, r.text)
            token = admin_token(cloud.url("identity"))
            r = httpx.get(cloud.url("identity") + "/v3/projects",
                          headers={"X-Auth-Token": token}, timeout=10)
            assert r.status_code == 200
            assert "admin" in {p["name"] for p in r.json()["projects"]}


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_services_split_over_processes_share_rabbitmq_and_postgres(tmp_path: Path) -> None:
    """identity in one process, the other APIs in another; tokens work across them."""
    ensure_rabbitmq()
    with postgres_database() as url:
        shared = {"STRATUS_DATABASE_URL": url,
                  "STRATUS_BUS_URL": "amqp://guest:guest@127.0.0.1:5672/",
                  # a multi-node deployment configures the service users' password
                  "STRATUS_IDENTITY__SERVICE_PASSWORD": "stratus-test-service"}
        first = CloudProcess(tmp_path / "a", env=shared, services=("identity",))
        second = CloudProcess(tmp_path / "b", env=shared, services=("image", "compute"))
        # both processes must agree on where each API lives
        second.ports = dict(first.ports)
        second.env.update({f"STRATUS_PORTS__{n.upper()}": str(p) for n, p in first.ports.items()})
        with first:
            with second:
                token = admin_token(first.url("identity"))
                r = httpx.get(second.url("image") + "/v2/images",
                              headers={"X-Auth-Token": token}, timeout=10)
                assert r.status_code == 200, r.text
                r = httpx.get(second.url("image") + "/v2/images",
                              headers={"X-Auth-Token": "garbage"}, timeout=10)
                assert r.status_code == 401


@pytest.mark.rabbitmq
@pytest.mark.mysql
def test_a_second_compute_host_joins_over_rabbitmq_and_mariadb(tmp_path: Path) -> None:
    """A compute agent in its own process (`stratus serve compute-agent --host`) takes builds."""
    import json
    import subprocess
    import sys
    import time

    ensure_rabbitmq()
    with mariadb_database() as url:
        shared = {"STRATUS_DATABASE_URL": url,
                  "STRATUS_BUS_URL": "amqp://guest:guest@127.0.0.1:5672/",
                  "STRATUS_IDENTITY__SERVICE_PASSWORD": "stratus-test-service",
                  "STRATUS_HYPERVISOR": "fake",
                  "STRATUS_COMPUTE__HOST": "node1",
                  "STRATUS_COMPUTE__HEARTBEAT_INTERVAL": "1"}
        with CloudProcess(tmp_path / "a", env=shared) as cloud:
            env = dict(cloud.env, STRATUS_DATA_DIR=str(tmp_path / "b"))
            log = (tmp_path / "agent.log").open("wb")
            agent = subprocess.Popen([sys.executable, "-m", "stratus", "serve", "compute-agent",
                                      "--host", "node2"], env=env, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
            try:
                token = admin_token(cloud.url("identity"))
                headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.53"}
                compute = cloud.url("compute") + "/v2.1"
                deadline = time.monotonic() + 60
                hosts: set[str] = set()
                while time.monotonic() < deadline and hosts != {"node1", "node2"}:
                    r = httpx.get(f"{compute}/os-hypervisors", headers=headers, timeout=10)
                    hosts = {h["hypervisor_hostname"] for h in r.json()["hypervisors"]
                             if h["state"] == "up"}
                    time.sleep(0.5)
                assert hosts == {"node1", "node2"}, (hosts, (tmp_path / "agent.log").read_text())
                images = cloud.url("image") + "/v2/images"
                r = httpx.post(images, headers=headers, timeout=10, json={
                    "name": "tiny", "disk_format": "raw", "container_format": "bare"})
                assert r.status_code == 201, r.text
                image_id = r.json()["id"]
                r = httpx.put(f"{images}/{image_id}/file", content=b"\0" * 4096, timeout=10,
                              headers={**headers, "Content-Type": "application/octet-stream"})
                assert r.status_code == 204, r.text
                flavor = httpx.get(f"{compute}/flavors", headers=headers, timeout=10).json()
                body = {"server": {"name": "on-node2", "flavorRef": flavor["flavors"][0]["id"],
                                   "imageRef": image_id,
                                   "networks": "none", "availability_zone": "nova:node2"}}
                r = httpx.post(f"{compute}/servers", json=body, headers=headers, timeout=30)
                assert r.status_code == 202, r.text
                server_id = r.json()["server"]["id"]
                server: dict[str, object] = {}
                while time.monotonic() < deadline + 60:
                    server = httpx.get(f"{compute}/servers/{server_id}", headers=headers,
                                       timeout=10).json()["server"]
                    if server["status"] in ("ACTIVE", "ERROR"):
                        break
                    time.sleep(0.3)
                assert server["status"] == "ACTIVE", json.dumps(server)
                assert server["OS-EXT-SRV-ATTR:host"] == "node2"
            finally:
                agent.terminate()
                agent.wait(15)
