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
