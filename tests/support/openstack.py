"""Clients for the session's all-in-one as real users drive it.

* :func:`openstack` runs the real python-openstackclient; :func:`run_script`
  feeds it many commands in one interactive process (each start costs ~1 s).
* :class:`IdentityAdmin` makes projects and users with roles through the
  identity API and hands back :class:`Persona` objects: a token for httpx,
  a ``clouds.yaml`` entry for the CLI and keyword arguments for openstacksdk.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.cloud import ADMIN_PASSWORD, CloudProcess

OPENSTACK = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "openstack")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def openstack(cloud: CloudProcess, *args: str, stdin: str | None = None,
              env: dict[str, str] | None = None, cloud_name: str | None = "stratus",
              clouds_yaml: Path | None = None, check: bool = True,
              ) -> subprocess.CompletedProcess[str]:
    """Run the real `openstack` CLI against the cloud (its clouds.yaml unless given one)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    full_env["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml or cloud.data_dir / "clouds.yaml")
    if cloud_name:
        full_env["OS_CLOUD"] = cloud_name
    full_env.update(env or {})
    result = subprocess.run([OPENSTACK, *args], input=stdin, capture_output=True, text=True,
                            env=full_env, timeout=int(os.environ.get("OSC_TIMEOUT", "120")), check=False)
    if check:
        assert result.returncode == 0, f"openstack {args}: {result.stderr}\n{result.stdout}"
    return result


def json_docs(text: str) -> list[Any]:
    """Every JSON document printed one after another (interactive `openstack` output)."""
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    pos, text = 0, text.strip()
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
    return docs


@dataclass
class Script:
    docs: list[Any]
    errors: str  # what the CLI printed besides the JSON documents


def script(cloud: CloudProcess, lines: list[str], **kw: Any) -> Script:
    """Run commands in one interactive `openstack`; errors are returned, not raised."""
    result = openstack(cloud, stdin="\n".join(lines) + "\n", check=False, **kw)
    try:
        return Script(json_docs(result.stdout), result.stderr.strip())
    except ValueError:
        raise AssertionError(f"openstack printed an error:\n{result.stdout}") from None


def run_script(cloud: CloudProcess, lines: list[str], **kw: Any) -> list[Any]:
    """Like :func:`script`, but any error text fails the test."""
    out = script(cloud, lines, **kw)
    assert not out.errors, out.errors
    return out.docs


@dataclass
class Persona:
    """A user scoped to a project: token for HTTP, entry for clouds.yaml, kwargs for the SDK."""

    name: str
    password: str
    user_id: str
    project_id: str
    project_name: str
    token: str
    auth_url: str

    def cloud_entry(self) -> dict[str, Any]:
        return {"auth": {"auth_url": self.auth_url, "username": self.name,
                         "password": self.password, "project_name": self.project_name,
                         "user_domain_name": "Default", "project_domain_name": "Default"},
                "region_name": "RegionOne", "interface": "public", "identity_api_version": 3}

    def sdk(self) -> Any:
        """An openstacksdk Connection for this persona."""
        import openstack as sdk

        return sdk.connect(auth_url=self.auth_url, username=self.name, password=self.password,
                           project_name=self.project_name, user_domain_name="Default",
                           project_domain_name="Default", region_name="RegionOne")


def write_clouds_yaml(path: Path, personas: dict[str, Persona]) -> Path:
    path.write_text(json.dumps({"clouds": {k: p.cloud_entry() for k, p in personas.items()}}))
    return path  # JSON is valid YAML


@dataclass
class IdentityAdmin:
    """The admin side of the identity API: projects, users, role grants, tokens."""

    cloud: CloudProcess
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    token: str = ""
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.cloud.url("identity") + "/v3"

    def __post_init__(self) -> None:
        self.token, _ = self.login("admin", ADMIN_PASSWORD, "admin")
        listed = self.req("GET", "/roles").json()["roles"]
        self.roles = {r["name"]: r["id"] for r in listed}

    def req(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, self.url + path, headers={"X-Auth-Token": self.token},
                                 **kw)

    def login(self, user: str, password: str, project: str) -> tuple[str, str]:
        """(token, project id) of ``user`` scoped to the project named ``project``."""
        resp = self.http.post(self.url + "/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password, "domain": {"id": "default"}}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"], resp.json()["token"]["project"]["id"]

    def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.req("POST", f"/{kind}s", json={kind: body})
        assert resp.status_code == 201, resp.text
        return dict(resp.json()[kind])

    def persona(self, prefix: str, role: str = "member", project: Persona | None = None,
                ) -> Persona:
        """A new user with ``role`` on a new project (or on ``project``'s)."""
        if project is None:
            proj = self.create("project", {"name": unique(prefix), "domain_id": "default"})
            project_id, project_name = proj["id"], proj["name"]
        else:
            project_id, project_name = project.project_id, project.project_name
        name, password = unique(prefix), unique("pw")
        user = self.create("user", {"name": name, "password": password,
                                    "domain_id": "default"})
        resp = self.req("PUT", f"/projects/{project_id}/users/{user['id']}/roles/"
                               f"{self.roles[role]}")
        assert resp.status_code == 204, resp.text
        token, _ = self.login(name, password, project_name)
        return Persona(name, password, user["id"], project_id, project_name, token, self.url)

    def admin_persona(self) -> Persona:
        token, project_id = self.login("admin", ADMIN_PASSWORD, "admin")
        return Persona("admin", ADMIN_PASSWORD, "", project_id, "admin", token, self.url)

    def close(self) -> None:
        self.http.close()
