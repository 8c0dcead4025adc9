"""Who may see and change what: members, readers, other projects, disabled and deleted things."""

from __future__ import annotations

from tests.functional.identity.conftest import Keystone, Tenant, unique


def test_member_cannot_see_other_projects_or_users(keystone: Keystone,
                                                   tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    token = a.member_token
    assert keystone.req("GET", f"/projects/{a.project['id']}", token=token).status_code == 200
    assert keystone.req("GET", f"/projects/{b.project['id']}", token=token).status_code == 403
    assert keystone.req("GET", "/projects", token=token).status_code == 403
    assert keystone.req("GET", "/users", token=token).status_code == 403
    assert keystone.req("GET", f"/users/{b.member['id']}", token=token).status_code == 403
    assert keystone.req("GET", f"/users/{a.member['id']}", token=token).status_code == 200
    assert keystone.req("GET", f"/users/{b.member['id']}/projects",
                        token=token).status_code == 403
    assert keystone.req("GET", f"/role_assignments?user.id={b.member['id']}",
                        token=token).status_code == 403
    mine = keystone.req("GET", f"/role_assignments?user.id={a.member['id']}", token=token)
    assert mine.status_code == 200 and len(mine.json()["role_assignments"]) == 1


def test_member_cannot_change_other_projects_or_users(keystone: Keystone,
                                                      tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    token = a.member_token
    assert keystone.req("PATCH", f"/projects/{b.project['id']}", token=token,
                        json={"project": {"description": "mine now"}}).status_code == 403
    assert keystone.req("PATCH", f"/users/{b.member['id']}", token=token,
                        json={"user": {"password": "taken"}}).status_code == 403
    assert keystone.req("DELETE", f"/users/{b.member['id']}", token=token).status_code == 403
    assert keystone.req("PUT", f"/projects/{b.project['id']}/users/{a.member['id']}/roles/"
                        f"{keystone.roles['member']}", token=token).status_code == 403
    assert keystone.req("POST", f"/users/{b.member['id']}/application_credentials",
                        token=token, json={"application_credential": {"name": "x"}}
                        ).status_code == 403


def test_reader_cannot_write(keystone: Keystone, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    token = a.reader_token
    assert keystone.req("GET", f"/projects/{a.project['id']}", token=token).status_code == 200
    for method, path, body in [
        ("PATCH", f"/projects/{a.project['id']}", {"project": {"description": "x"}}),
        ("POST", "/projects", {"project": {"name": unique("p")}}),
        ("POST", "/users", {"user": {"name": unique("u")}}),
        ("POST", "/roles", {"role": {"name": unique("r")}}),
        ("POST", "/domains", {"domain": {"name": unique("d")}}),
        ("PUT", f"/projects/{a.project['id']}/tags/x", None),
    ]:
        resp = keystone.req(method, path, token=token, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["error"]["code"] == 403


def test_disabled_user_gets_no_token_and_loses_its_tokens(keystone: Keystone) -> None:
    project = keystone.project()
    user = keystone.user(project["id"])
    token, _ = keystone.login(user["name"], user["password"], project_id=project["id"])
    assert keystone.req("PATCH", f"/users/{user['id']}", json={"user": {"enabled": False}}
                        ).status_code == 200
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 404
    resp = keystone.auth({"identity": {"methods": ["password"], "password": {"user": {
        "id": user["id"], "password": user["password"]}}}})
    assert resp.status_code == 401
    # The same answer as a wrong password: a disabled account is not advertised.
    assert resp.json()["error"]["message"] == (
        "The request you have made requires authentication.")
    keystone.req("PATCH", f"/users/{user['id']}", json={"user": {"enabled": True}})
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 404, "re-enabling must not resurrect old tokens"


def test_disabled_project_gets_no_token_and_its_tokens_stop(keystone: Keystone) -> None:
    project = keystone.project()
    user = keystone.user(project["id"])
    token, _ = keystone.login(user["name"], user["password"], project_id=project["id"])
    keystone.req("PATCH", f"/projects/{project['id']}", json={"project": {"enabled": False}})
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 404
    resp = keystone.auth({"identity": {"methods": ["password"], "password": {"user": {
        "id": user["id"], "password": user["password"]}}},
        "scope": {"project": {"id": project["id"]}}})
    assert resp.status_code == 401


def test_deleted_users_token_stops_validating(keystone: Keystone) -> None:
    project = keystone.project()
    user = keystone.user(project["id"])
    token, _ = keystone.login(user["name"], user["password"], project_id=project["id"])
    assert keystone.req("GET", f"/users/{user['id']}", token=token).status_code == 200
    assert keystone.req("DELETE", f"/users/{user['id']}").status_code == 204
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 404
    assert keystone.req("GET", f"/projects/{project['id']}", token=token).status_code == 401


def test_removed_role_and_deleted_project_end_their_tokens(keystone: Keystone) -> None:
    project = keystone.project()
    user = keystone.user(project["id"], "member")
    token, body = keystone.login(user["name"], user["password"], project_id=project["id"])
    assert {r["name"] for r in body["roles"]} == {"member", "reader"}
    path = f"/projects/{project['id']}/users/{user['id']}/roles/{keystone.roles['member']}"
    assert keystone.req("DELETE", path).status_code == 204
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 404
    keystone.grant(user["id"], project["id"], "reader")
    token, body = keystone.login(user["name"], user["password"], project_id=project["id"])
    assert [r["name"] for r in body["roles"]] == ["reader"]
    assert keystone.req("DELETE", f"/projects/{project['id']}").status_code == 204
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 404


def test_password_change_needs_the_old_one_and_revokes_tokens(keystone: Keystone) -> None:
    project = keystone.project()
    user = keystone.user(project["id"])
    token, _ = keystone.login(user["name"], user["password"], project_id=project["id"])
    path = f"/users/{user['id']}/password"
    wrong = keystone.req("POST", path, token=token, json={"user": {
        "original_password": "nope", "password": "new-secret"}})
    assert wrong.status_code == 401
    ok = keystone.req("POST", path, token=token, json={"user": {
        "original_password": user["password"], "password": "new-secret"}})
    assert ok.status_code == 204
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": token}
                        ).status_code == 404
    keystone.login(user["name"], "new-secret", project_id=project["id"])
    assert keystone.auth({"identity": {"methods": ["password"], "password": {"user": {
        "id": user["id"], "password": user["password"]}}}}).status_code == 401
