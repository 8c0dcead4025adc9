"""Two ordinary projects with a member user each, on the session's all-in-one cloud."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cloud import ADMIN_PASSWORD, CloudProcess

OPENSTACK = str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "openstack")


@dataclass
class Persona:
    name: str
    project_id: str
    token: str
    cloud: str  # entry in the test clouds.yaml


@dataclass
class ImageCloud:
    cloud: CloudProcess
    clouds_yaml: Path
    admin: Persona
    alice: Persona
    bob: Persona

    @property
    def url(self) -> str:
        return self.cloud.url("image")

    def http(self, who: Persona) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Auth-Token": who.token},
                            timeout=30)

    def openstack(self, who: Persona, *args: str, check: bool = True
                  ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml),
               "OS_CLOUD": who.cloud}
        result = subprocess.run([OPENSTACK, *args], env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed:\n{result.stderr}")
        return result

    @property
    def store_root(self) -> Path:
        return self.cloud.data_dir / "images"


def _token(identity: str, user: str, password: str, project: str) -> tuple[str, str]:
    resp = httpx.post(f"{identity}/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"id": "default"}}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}, timeout=30)
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"], resp.json()["token"]["project"]["id"]


def _member_user(identity: str, admin_token: str, name: str) -> tuple[str, str]:
    headers = {"X-Auth-Token": admin_token}
    with httpx.Client(base_url=identity, headers=headers, timeout=30) as http:
        project = http.post("/v3/projects", json={"project": {
            "name": name, "domain_id": "default"}})
        project.raise_for_status()
        project_id = project.json()["project"]["id"]
        user = http.post("/v3/users", json={"user": {
            "name": name, "password": f"{name}-pw", "domain_id": "default",
            "default_project_id": project_id}})
        user.raise_for_status()
        roles = http.get("/v3/roles", params={"name": "member"}).json()["roles"]
        http.put(f"/v3/projects/{project_id}/users/{user.json()['user']['id']}/roles/"
                 f"{roles[0]['id']}").raise_for_status()
    return name, f"{name}-pw"


def _clouds_entry(identity: str, user: str, password: str, project: str) -> dict[str, Any]:
    return {"auth": {"auth_url": f"{identity}/v3", "username": user, "password": password,
                     "project_name": project, "user_domain_name": "Default",
                     "project_domain_name": "Default"},
            "region_name": "RegionOne", "interface": "public", "identity_api_version": 3}


@pytest.fixture(scope="session")
def image_cloud(cloud: CloudProcess, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[ImageCloud]:
    import json

    identity = cloud.url("identity")
    admin_token, admin_project = _token(identity, "admin", ADMIN_PASSWORD, "admin")
    suffix = uuid.uuid4().hex[:8]
    personas = {"admin": Persona("admin", admin_project, admin_token, "admin")}
    clouds = {"admin": _clouds_entry(identity, "admin", ADMIN_PASSWORD, "admin")}
    for who in ("alice", "bob"):
        name, password = _member_user(identity, admin_token, f"img-{who}-{suffix}")
        token, project_id = _token(identity, name, password, name)
        personas[who] = Persona(who, project_id, token, who)
        clouds[who] = _clouds_entry(identity, name, password, name)
    path = tmp_path_factory.mktemp("image-clients") / "clouds.yaml"
    path.write_text(json.dumps({"clouds": clouds}))  # JSON is valid YAML
    yield ImageCloud(cloud, path, personas["admin"], personas["alice"], personas["bob"])
