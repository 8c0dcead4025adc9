"""`stratus up` bootstraps identity once; restarts change nothing and keep tokens valid."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import yaml

from tests.support.cloud import CloudProcess


def login(url: str, password: str) -> httpx.Response:
    return httpx.post(url + "/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}, timeout=30)


def test_generated_admin_password_clouds_yaml_and_idempotent_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cloud = CloudProcess(data, services=("identity",),
                         env={"STRATUS_IDENTITY__ADMIN_PASSWORD": ""})
    t0 = time.monotonic()
    with cloud:
        cold = time.monotonic() - t0
        secret = data / "identity" / "admin-password"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        password = secret.read_text().strip()
        assert password in cloud.log() and "OS_CLIENT_CONFIG_FILE=" in cloud.log()
        clouds = yaml.safe_load((data / "clouds.yaml").read_text())["clouds"]["stratus"]
        assert clouds["auth"]["password"] == password
        assert clouds["auth"]["auth_url"] == cloud.url("identity") + "/v3"
        first = login(cloud.url("identity"), password)
        assert first.status_code == 201
        token = first.headers["X-Subject-Token"]
    assert cold < 10, f"cold start took {cold:.1f}s"
    log_size = len(cloud.log())
    with cloud:
        restart_log = cloud.log()[log_size:]
        assert "bootstrap created" not in restart_log
        url = cloud.url("identity")
        assert secret.read_text().strip() == password
        resp = httpx.get(url + "/v3/auth/tokens", headers={
            "X-Auth-Token": token, "X-Subject-Token": token}, timeout=10)
        assert resp.status_code == 200, "tokens survive a restart"
        roles = {r["name"]: r["id"] for r in httpx.get(
            url + "/v3/roles", headers={"X-Auth-Token": token}).json()["roles"]}
        assert {"admin", "manager", "member", "reader", "service"} <= set(roles)
        users = httpx.get(url + "/v3/users", headers={"X-Auth-Token": token}).json()["users"]
        assert {"admin", "compute", "image", "network", "volume"} <= {u["name"] for u in users}
