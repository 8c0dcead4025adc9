"""POST/GET/HEAD/DELETE /v3/auth/tokens as clients and Tempest use them."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from tests.functional.identity.conftest import Keystone, Tenant
from tests.support.cloud import ADMIN_PASSWORD, CloudProcess

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
AUTH_FAILED = {"code": 401, "title": "Unauthorized",
               "message": "The request you have made requires authentication."}


def password_body(name: str, password: str, **scope: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"name": "Default"}, "password": password}}}}
    if scope:
        body["scope"] = scope
    return body


def test_version_documents_answer_without_a_token(cloud: CloudProcess) -> None:
    root = httpx.get(cloud.url("identity") + "/")
    assert root.status_code == 300
    assert root.json()["versions"]["values"][0]["id"] == "v3.14"
    v3 = httpx.get(cloud.url("identity") + "/v3").json()["version"]
    assert v3["status"] == "stable" and v3["media-types"]


def test_password_token_is_201_with_the_keystone_shape(keystone: Keystone) -> None:
    resp = keystone.auth(password_body("admin", ADMIN_PASSWORD,
                                       project={"name": "admin", "domain": {"id": "default"}}))
    assert resp.status_code == 201
    assert resp.headers["X-Subject-Token"].startswith("gAAAAA")
    token = resp.json()["token"]
    assert token["methods"] == ["password"]
    assert TIME.match(token["expires_at"]) and TIME.match(token["issued_at"])
    assert token["user"]["name"] == "admin" and token["user"]["domain"] == {
        "id": "default", "name": "Default"}
    assert "password_expires_at" in token["user"]
    assert token["project"]["name"] == "admin" and token["project"]["domain"]["id"] == "default"
    assert token["is_domain"] is False and len(token["audit_ids"]) == 1
    assert {"admin", "manager", "member", "reader"} <= {r["name"] for r in token["roles"]}


def test_catalog_has_every_api_service_with_region_and_region_id(
        keystone: Keystone, cloud: CloudProcess) -> None:
    _, token = keystone.login("admin", ADMIN_PASSWORD, scope={
        "project": {"name": "admin", "domain": {"name": "Default"}}})
    types = {entry["type"]: entry for entry in token["catalog"]}
    wanted = {"identity": "identity", "compute": "compute", "image": "image",
              "network": "network", "volume": "block-storage"}
    for service, ctype in wanted.items():
        if service in cloud.started_services:
            assert ctype in types, f"{ctype} missing from the catalog"
    if "volume" in cloud.started_services:
        assert "volumev3" in types
        url = types["block-storage"]["endpoints"][0]["url"]
        assert url.endswith("/v3/" + token["project"]["id"])
    for entry in token["catalog"]:
        assert {e["interface"] for e in entry["endpoints"]} == {"public", "internal", "admin"}
        for endpoint in entry["endpoints"]:
            assert endpoint["region"] == endpoint["region_id"] == "RegionOne"
            assert endpoint["id"] and endpoint["url"].startswith("http://127.0.0.1:")
    assert types["identity"]["endpoints"][0]["url"] == cloud.url("identity") + "/v3"


def test_wrong_password_and_unknown_user_get_the_same_401(keystone: Keystone) -> None:
    wrong = keystone.auth(password_body("admin", "not-the-password"))
    unknown = keystone.auth(password_body("no-such-user-at-all", "whatever"))
    bad_domain = keystone.auth({"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "no-such-domain"}, "password": "x"}}}})
    for resp in (wrong, unknown, bad_domain):
        assert resp.status_code == 401
        assert resp.json() == {"error": AUTH_FAILED}


def test_failed_logins_take_as_long_for_unknown_users(keystone: Keystone) -> None:
    def timed(name: str) -> float:
        start = time.perf_counter()
        assert keystone.auth(password_body(name, "wrong-password")).status_code == 401
        return time.perf_counter() - start

    known = statistics.median(timed("admin") for _ in range(3))
    unknown = statistics.median(timed("nobody-by-this-name") for _ in range(3))
    assert unknown > 0.5 * known, (known, unknown)


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"auth": 1}', b'{"auth": {}}', b'{"auth": {"identity": {}}}',
    b'{"auth": {"identity": {"methods": "password"}}}',
    b'{"auth": {"identity": {"methods": ["password"]}}}',
    b'{"auth": {"identity": {"methods": ["password"], "password": {"user": 5}}}}',
    b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "a"}}}}}',
    b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin",'
    b' "domain": {"id": "default"}, "password": 5}}}}}',
    b'{"auth": {"identity": {"methods": ["token"], "token": {}}}}',
    b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "x",'
    b' "password": "y"}}}, "scope": {"project": {"name": "admin"}}}}',
])
def test_malformed_auth_bodies_are_400(keystone: Keystone, body: bytes) -> None:
    resp = keystone.http.post(keystone.url + "/auth/tokens", content=body,
                              headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == 400


def test_unsupported_method_is_401(keystone: Keystone) -> None:
    resp = keystone.auth({"identity": {"methods": ["totp"], "totp": {}}})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == 401


@pytest.mark.parametrize("garbage", ["garbage", "gAAAAABthisisnotatoken", "x" * 5000, "é"])
def test_garbage_tokens_are_401_as_caller_and_404_as_subject(keystone: Keystone,
                                                            garbage: str) -> None:
    headers = {"X-Auth-Token": garbage.encode("utf-8")}
    resp = keystone.http.get(keystone.url + "/users", headers=headers)
    assert resp.status_code in (401, 413, 431) and resp.status_code != 500
    if resp.status_code == 401:
        assert resp.json()["error"]["code"] == 401
    subject = keystone.req("GET", "/auth/tokens",
                           headers={"X-Subject-Token": garbage.encode("utf-8")})
    assert subject.status_code in (404, 413, 431), subject.text


def test_missing_token_is_401(keystone: Keystone) -> None:
    resp = keystone.http.get(keystone.url + "/projects")
    assert resp.status_code == 401 and resp.json() == {"error": AUTH_FAILED}


def test_validate_head_and_revoke(keystone: Keystone, tenants: tuple[Tenant, Tenant]) -> None:
    tenant = tenants[0]
    token, body = keystone.login(tenant.member["name"], "pw-secret",
                                 project_id=tenant.project["id"])
    got = keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert got.status_code == 200 and got.headers["X-Subject-Token"] == token
    assert got.json()["token"]["audit_ids"] == body["audit_ids"]
    assert "catalog" not in keystone.req("GET", "/auth/tokens?nocatalog",
                                         headers={"X-Subject-Token": token}).json()["token"]
    assert keystone.req("HEAD", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 200
    # A user may validate their own token, not someone else's.
    assert keystone.req("GET", "/auth/tokens", token=token,
                        headers={"X-Subject-Token": token}).status_code == 200
    assert keystone.req("GET", "/auth/tokens", token=token,
                        headers={"X-Subject-Token": keystone.admin_token}).status_code == 403
    assert keystone.req("DELETE", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 204
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 404
    assert keystone.req("GET", f"/users/{tenant.member['id']}", token=token).status_code == 401


def test_rescoped_token_keeps_expiry_and_chains_audit_ids(keystone: Keystone,
                                                          tenants: tuple[Tenant, Tenant]
                                                          ) -> None:
    tenant = tenants[0]
    unscoped, first = keystone.login(tenant.member["name"], "pw-secret")
    assert "project" not in first and "catalog" not in first and "roles" not in first
    resp = keystone.auth({"identity": {"methods": ["token"], "token": {"id": unscoped}},
                          "scope": {"project": {"id": tenant.project["id"]}}})
    assert resp.status_code == 201, resp.text
    second = resp.json()["token"]
    assert second["expires_at"] == first["expires_at"]
    assert second["audit_ids"][1] == first["audit_ids"][0]
    assert set(second["methods"]) == {"password", "token"}
    other = keystone.auth({"identity": {"methods": ["token"], "token": {"id": unscoped}},
                           "scope": {"project": {"id": tenants[1].project["id"]}}})
    assert other.status_code == 401


def test_domain_and_system_scoped_tokens(keystone: Keystone) -> None:
    _, system = keystone.login("admin", ADMIN_PASSWORD, scope={"system": {"all": True}})
    assert system["system"] == {"all": True} and system["catalog"]
    denied = keystone.auth(password_body("admin", ADMIN_PASSWORD, domain={"id": "default"}))
    assert denied.status_code == 401  # no role on the domain yet
    user = keystone.user()
    resp = keystone.req("PUT", f"/domains/default/users/{user['id']}/roles/"
                        f"{keystone.roles['reader']}")
    assert resp.status_code == 204
    _, domain = keystone.login(user["name"], user["password"], scope={"domain": {"id": "default"}})
    assert domain["domain"] == {"id": "default", "name": "Default"}
    assert [r["name"] for r in domain["roles"]] == ["reader"]


def test_auth_catalog_projects_and_system(keystone: Keystone,
                                          tenants: tuple[Tenant, Tenant]) -> None:
    tenant = tenants[0]
    catalog = keystone.req("GET", "/auth/catalog", token=tenant.member_token)
    assert catalog.status_code == 200 and catalog.json()["catalog"]
    projects = keystone.req("GET", "/auth/projects", token=tenant.member_token).json()
    assert [p["id"] for p in projects["projects"]] == [tenant.project["id"]]
    system = keystone.req("GET", "/auth/system", token=tenant.member_token).json()
    assert system["system"] == []
    assert keystone.req("GET", "/auth/system").json()["system"] == [{"all": True}]


def test_tokens_issued_before_a_key_rotation_still_validate(keystone: Keystone,
                                                            cloud: CloudProcess) -> None:
    before, _ = keystone.login("admin", ADMIN_PASSWORD)
    result = subprocess.run([sys.executable, "-m", "stratus", "identity", "rotate-keys"],
                            env=cloud.env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "rotated" in result.stdout
    time.sleep(1.2)  # the server looks at the key directory at most once a second
    keystone.project()  # any identity write drops the validation cache: decrypt again
    fresh = keystone.auth(password_body("admin", ADMIN_PASSWORD))
    assert fresh.status_code == 201
    for token in (before, keystone.admin_token, fresh.headers["X-Subject-Token"]):
        resp = keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token})
        assert resp.status_code == 200, resp.text


def test_a_revoked_token_offered_as_proof_is_404(keystone: Keystone,
                                                 tenants: tuple[Tenant, Tenant]) -> None:
    tenant = tenants[0]
    token, _ = keystone.login(tenant.member["name"], "pw-secret")
    revoked = keystone.req("DELETE", "/auth/tokens", headers={"X-Subject-Token": token})
    assert revoked.status_code == 204
    resp = keystone.auth({"identity": {"methods": ["token"], "token": {"id": token}}})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == 404
    garbage = keystone.auth({"identity": {"methods": ["token"], "token": {"id": "garbage"}}})
    assert garbage.status_code == 404
