"""Resources over HTTP: conflicts, bad input, assignments, app credentials, limits."""

from __future__ import annotations

import pytest

from tests.functional.identity.conftest import Keystone, unique


@pytest.mark.parametrize("kind,extra", [
    ("domain", {}), ("project", {"domain_id": "default"}), ("user", {"domain_id": "default"}),
    ("group", {"domain_id": "default"}), ("role", {}),
])
def test_duplicate_names_are_409(keystone: Keystone, kind: str, extra: dict[str, str]) -> None:
    name = unique(kind)
    keystone.create(kind, {"name": name, **extra})
    again = keystone.req("POST", f"/{kind}s", json={kind: {"name": name, **extra}})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == 409


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/projects", {"project": {"name": 5}}),
    ("POST", "/projects", {"project": {}}),
    ("POST", "/projects", {"project": {"name": "x", "enabled": "yes"}}),
    ("POST", "/projects", {"project": {"name": "x", "tags": "a,b"}}),
    ("POST", "/projects", ["not", "an", "object"]),
    ("POST", "/users", {"user": {"name": ""}}),
    ("POST", "/users", {"user": {"name": "x", "options": "nope"}}),
    ("POST", "/domains", {"domain": {"name": None}}),
    ("POST", "/endpoints", {"endpoint": {"interface": "sideways", "url": "http://x",
                                         "service_id": "s"}}),
    ("POST", "/limits", {"limits": []}),
    ("POST", "/registered_limits", {"registered_limits": [{"service_id": 1}]}),
    ("PATCH", "/projects/{project}", {"project": {"domain_id": "other"}}),
    ("PUT", "/projects/{project}/tags", {"tags": ["a/b"]}),
])
def test_bad_input_is_400(keystone: Keystone, method: str, path: str, body: object) -> None:
    project = keystone.project()
    resp = keystone.req(method, path.format(project=project["id"]), json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == 400


@pytest.mark.parametrize("path", [
    "/projects/nope", "/users/nope", "/groups/nope", "/domains/nope", "/roles/nope",
    "/regions/nope", "/services/nope", "/endpoints/nope", "/credentials/nope", "/limits/nope",
    "/registered_limits/nope", "/policies/nope", "/projects/nope/users/nope/roles/nope",
    "/users/nope/application_credentials/nope", "/no-such-collection",
    "/nope/x/users/y/roles",
])
def test_unknown_things_are_404(keystone: Keystone, path: str) -> None:
    resp = keystone.req("GET", path)
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] == 404


def test_enabled_domain_cannot_be_deleted(keystone: Keystone) -> None:
    domain = keystone.create("domain", {"name": unique("d")})
    assert keystone.req("DELETE", f"/domains/{domain['id']}").status_code == 403
    keystone.req("PATCH", f"/domains/{domain['id']}", json={"domain": {"enabled": False}})
    assert keystone.req("DELETE", f"/domains/{domain['id']}").status_code == 204


def test_project_hierarchy_and_tags(keystone: Keystone) -> None:
    parent = keystone.project(tags=["blue"])
    child = keystone.project(parent_id=parent["id"])
    assert parent["parent_id"] == "default" and child["parent_id"] == parent["id"]
    assert keystone.req("DELETE", f"/projects/{parent['id']}").status_code == 403
    assert keystone.req("PUT", f"/projects/{child['id']}/tags/red").status_code == 201
    found = keystone.req("GET", "/projects?tags=red").json()["projects"]
    assert [p["id"] for p in found] == [child["id"]]
    sub = keystone.req("GET", f"/projects/{parent['id']}?subtree_as_ids").json()["project"]
    assert sub["subtree"] == {child["id"]: None}


def test_effective_assignments_expand_groups_inheritance_and_implied_roles(
        keystone: Keystone) -> None:
    domain = keystone.create("domain", {"name": unique("d")})
    project = keystone.create("project", {"name": unique("p"), "domain_id": domain["id"]})
    user = keystone.create("user", {"name": unique("u"), "domain_id": domain["id"]})
    group = keystone.create("group", {"name": unique("g"), "domain_id": domain["id"]})
    assert keystone.req("PUT", f"/groups/{group['id']}/users/{user['id']}").status_code == 204
    member = keystone.roles["member"]
    path = (f"/OS-INHERIT/domains/{domain['id']}/groups/{group['id']}/roles/{member}"
            "/inherited_to_projects")
    assert keystone.req("PUT", path).status_code == 204
    plain = keystone.req("GET", f"/role_assignments?group.id={group['id']}").json()
    assert plain["role_assignments"][0]["scope"]["OS-INHERIT:inherited_to"] == "projects"
    effective = keystone.req(
        "GET", f"/role_assignments?effective&include_names&user.id={user['id']}").json()
    got = {(a["role"]["name"], a["scope"]["project"]["name"])
           for a in effective["role_assignments"]}
    assert got == {("member", project["name"]), ("reader", project["name"])}
    entry = effective["role_assignments"][0]
    assert entry["user"]["domain"]["name"] == domain["name"]
    assert "membership" in entry["links"]


def test_implied_roles_api_and_tokens(keystone: Keystone) -> None:
    prior = keystone.create("role", {"name": unique("prior")})
    implied = keystone.create("role", {"name": unique("implied")})
    path = f"/roles/{prior['id']}/implies/{implied['id']}"
    assert keystone.req("PUT", path).status_code == 201
    assert keystone.req("HEAD", path).status_code == 204
    assert keystone.req("PUT", f"/roles/{implied['id']}/implies/{prior['id']}"
                        ).status_code == 400  # a cycle
    project = keystone.project()
    user = keystone.user(project["id"], role=None)
    keystone.req("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{prior['id']}")
    _, token = keystone.login(user["name"], user["password"], project_id=project["id"])
    assert {r["name"] for r in token["roles"]} == {prior["name"], implied["name"]}
    rules = keystone.req("GET", "/role_inferences").json()["role_inferences"]
    admin_rule = next(r for r in rules if r["prior_role"]["name"] == "admin")
    assert [r["name"] for r in admin_rule["implies"]] == ["manager"]


def test_application_credential_roles_expiry_and_deletion(keystone: Keystone) -> None:
    project = keystone.project()
    user = keystone.user(project["id"], "member")
    token, _ = keystone.login(user["name"], user["password"], project_id=project["id"])
    base = f"/users/{user['id']}/application_credentials"
    resp = keystone.req("POST", base, token=token, json={"application_credential": {
        "name": "reader-only", "roles": [{"name": "reader"}]}})
    assert resp.status_code == 201, resp.text
    cred = resp.json()["application_credential"]
    assert cred["secret"] and [r["name"] for r in cred["roles"]] == ["reader"]
    assert "secret" not in keystone.req("GET", f"{base}/{cred['id']}",
                                        token=token).json()["application_credential"]
    escalate = keystone.req("POST", base, token=token, json={"application_credential": {
        "name": "admin-wanted", "roles": [{"name": "admin"}]}})
    assert escalate.status_code == 400
    body = {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": cred["id"], "secret": cred["secret"]}}}
    login = keystone.auth(body)
    assert login.status_code == 201, login.text
    ac_token = login.headers["X-Subject-Token"]
    tok = login.json()["token"]
    assert [r["name"] for r in tok["roles"]] == ["reader"]
    assert tok["application_credential"]["id"] == cred["id"]
    assert tok["project"]["id"] == project["id"]
    wrong = {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": cred["id"], "secret": "wrong"}}}
    assert keystone.auth(wrong).status_code == 401
    by_name = {"identity": {"methods": ["application_credential"], "application_credential": {
        "name": "reader-only", "secret": cred["secret"],
        "user": {"name": user["name"], "domain": {"id": "default"}}}}}
    assert keystone.auth(by_name).status_code == 201
    # A restricted application credential cannot make more of them.
    more = keystone.req("POST", base, token=ac_token,
                        json={"application_credential": {"name": "child"}})
    assert more.status_code == 403
    past = keystone.req("POST", base, token=token, json={"application_credential": {
        "name": "old", "expires_at": "2000-01-01T00:00:00"}})
    assert past.status_code == 400
    assert keystone.req("DELETE", f"{base}/{cred['id']}", token=token).status_code == 204
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": ac_token}
                        ).status_code == 404
    assert keystone.auth(body).status_code == 401


def test_unified_limits(keystone: Keystone) -> None:
    services = keystone.req("GET", "/services?type=identity").json()["services"]
    service_id = services[0]["id"]
    resource = unique("widgets")
    resp = keystone.req("POST", "/registered_limits", json={"registered_limits": [{
        "service_id": service_id, "region_id": "RegionOne", "resource_name": resource,
        "default_limit": 10}]})
    assert resp.status_code == 201, resp.text
    again = keystone.req("POST", "/registered_limits", json={"registered_limits": [{
        "service_id": service_id, "region_id": "RegionOne", "resource_name": resource,
        "default_limit": 5}]})
    assert again.status_code == 409
    project = keystone.project()
    resp = keystone.req("POST", "/limits", json={"limits": [{
        "service_id": service_id, "region_id": "RegionOne", "resource_name": resource,
        "project_id": project["id"], "resource_limit": 3}]})
    assert resp.status_code == 201, resp.text
    limit = resp.json()["limits"][0]
    unregistered = keystone.req("POST", "/limits", json={"limits": [{
        "service_id": service_id, "resource_name": unique("x"), "project_id": project["id"],
        "resource_limit": 1}]})
    assert unregistered.status_code == 400
    patched = keystone.req("PATCH", f"/limits/{limit['id']}",
                           json={"limit": {"resource_limit": 4}})
    assert patched.json()["limit"]["resource_limit"] == 4
    found = keystone.req("GET", f"/limits?project_id={project['id']}").json()["limits"]
    assert [x["resource_limit"] for x in found] == [4]
    assert keystone.req("GET", "/limits/model").json()["model"]["name"] == "flat"


def test_catalog_crud_and_service_filter(keystone: Keystone) -> None:
    service = keystone.create("service", {"type": unique("type"), "name": "svc"})
    endpoint = keystone.create("endpoint", {"service_id": service["id"], "interface": "public",
                                            "url": "http://example.invalid", "region_id":
                                            "RegionOne"})
    assert endpoint["region"] == "RegionOne"
    listed = keystone.req("GET", f"/endpoints?service_id={service['id']}").json()["endpoints"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert keystone.req("DELETE", f"/services/{service['id']}").status_code == 204
    assert keystone.req("GET", f"/endpoints/{endpoint['id']}").status_code == 404


def test_no_500_on_odd_requests(keystone: Keystone) -> None:
    project = keystone.project()
    odd: list[tuple[str, str, object]] = [
        ("POST", "/projects", {"project": {"name": "x" * 10000}}),
        ("POST", "/projects", {"project": {"name": "\x00bad"}}),
        ("POST", "/users", {"user": {"name": "u", "domain_id": "nope"}}),
        ("POST", "/projects", {"project": {"name": "p", "parent_id": "nope"}}),
        ("PATCH", f"/projects/{project['id']}", {"project": {"enabled": None}}),
        ("POST", "/credentials", {"credential": {"user_id": "nope", "type": "ec2",
                                                 "blob": "{}"}}),
        ("GET", "/role_assignments?scope.project.id=nope&effective", None),
        ("PUT", "/system/users/nope/roles/nope", None),
        ("PUT", "/domains/default/config", {"config": {"nope": {}}}),
        ("POST", "/regions", {"region": {"parent_region_id": "nope"}}),
        ("POST", "/users/nope/password", {"user": {"password": "x",
                                                   "original_password": "y"}}),
    ]
    for method, path, body in odd:
        resp = keystone.req(method, path, json=body)
        assert resp.status_code < 500, (method, path, resp.status_code, resp.text)
        if resp.status_code >= 400:
            assert resp.json()["error"]["code"] == resp.status_code
