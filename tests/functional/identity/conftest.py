"""Helpers for driving the identity API of the session's all-in-one cloud."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.cloud import ADMIN_PASSWORD, CloudProcess

# Shared CLI helpers; re-exported for the identity tests that import them from here.
from tests.support.openstack import json_docs, openstack, unique  # noqa: F401


@dataclass
class Keystone:
    """A thin client: admin token, and makers of projects/users that clean up after."""

    cloud: CloudProcess
    http: httpx.Client
    admin_token: str = ""
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.cloud.url("identity") + "/v3"

    def req(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        token = self.admin_token if token is None else token
        if token:
            headers["X-Auth-Token"] = token
        return self.http.request(method, self.url + path, headers=headers, **kw)

    def auth(self, body: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.http.post(self.url + "/auth/tokens", json={"auth": body}, **kw)

    def login(self, name: str, password: str, *, project_id: str | None = None,
              domain_id: str = "default", scope: Any = None) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
            "name": name, "domain": {"id": domain_id}, "password": password}}}}
        if project_id:
            body["scope"] = {"project": {"id": project_id}}
        elif scope is not None:
            body["scope"] = scope
        resp = self.auth(body)
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"], resp.json()["token"]

    def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.req("POST", f"/{kind}s", json={kind: body})
        assert resp.status_code == 201, resp.text
        return dict(resp.json()[kind])

    def project(self, **kw: Any) -> dict[str, Any]:
        return self.create("project", {"name": unique("p"), "domain_id": "default", **kw})

    def user(self, project_id: str | None = None, role: str | None = "member",
             password: str = "pw-secret", **kw: Any) -> dict[str, Any]:
        user = self.create("user", {"name": unique("u"), "domain_id": "default",
                                    "password": password, **kw})
        if project_id and role:
            self.grant(user["id"], project_id, role)
        user["password"] = password
        return user

    def grant(self, user_id: str, project_id: str, role: str) -> None:
        resp = self.req("PUT", f"/projects/{project_id}/users/{user_id}/roles/{self.roles[role]}")
        assert resp.status_code == 204, resp.text


@pytest.fixture(scope="session")
def keystone(cloud: CloudProcess) -> Iterator[Keystone]:
    with httpx.Client(timeout=30) as http:
        ks = Keystone(cloud, http)
        ks.admin_token, _ = ks.login("admin", ADMIN_PASSWORD, scope={
            "project": {"name": "admin", "domain": {"id": "default"}}})
        ks.roles = {r["name"]: r["id"] for r in ks.req("GET", "/roles").json()["roles"]}
        yield ks


@dataclass
class Tenant:
    """A project with a member, a reader, and their tokens."""

    project: dict[str, Any]
    member: dict[str, Any]
    reader: dict[str, Any]
    member_token: str
    reader_token: str


@pytest.fixture(scope="session")
def tenants(keystone: Keystone) -> tuple[Tenant, Tenant]:
    out = []
    for _ in range(2):
        project = keystone.project()
        member = keystone.user(project["id"], "member")
        reader = keystone.user(project["id"], "reader")
        m_token, _ = keystone.login(member["name"], member["password"], project_id=project["id"])
        r_token, _ = keystone.login(reader["name"], reader["password"], project_id=project["id"])
        out.append(Tenant(project, member, reader, m_token, r_token))
    return out[0], out[1]
