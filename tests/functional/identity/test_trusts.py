"""OS-TRUST against the live cloud: delegation, trust-scoped tokens, and their end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.functional.identity.conftest import Keystone, unique


@dataclass
class Parties:
    project: dict[str, Any]
    trustor: dict[str, Any]
    trustee: dict[str, Any]
    trustor_token: str
    delegated: str  # role id
    kept: str  # role id the trustor holds but does not delegate


@pytest.fixture
def parties(keystone: Keystone) -> Parties:
    project = keystone.project()
    delegated = keystone.create("role", {"name": unique("delegated")})["id"]
    kept = keystone.create("role", {"name": unique("kept")})["id"]
    trustor = keystone.user()
    for role in (delegated, kept):
        r = keystone.req("PUT", f"/projects/{project['id']}/users/{trustor['id']}/roles/{role}")
        assert r.status_code == 204
    trustee = keystone.user()
    token, _ = keystone.login(trustor["name"], trustor["password"], project_id=project["id"])
    return Parties(project, trustor, trustee, token, delegated, kept)


def make_trust(ks: Keystone, p: Parties, **kw: Any) -> dict[str, Any]:
    body = {"trustor_user_id": p.trustor["id"], "trustee_user_id": p.trustee["id"],
            "project_id": p.project["id"], "impersonation": True,
            "roles": [{"id": p.delegated}], **kw}
    r = ks.req("POST", "/OS-TRUST/trusts", token=p.trustor_token, json={"trust": body})
    assert r.status_code == 201, r.text
    return dict(r.json()["trust"])


def trust_login(ks: Keystone, p: Parties, trust_id: str) -> Any:
    return ks.auth({"identity": {"methods": ["password"], "password": {"user": {
        "id": p.trustee["id"], "password": p.trustee["password"]}}},
        "scope": {"OS-TRUST:trust": {"id": trust_id}}})


def test_trustee_acts_as_the_trustor_with_only_the_delegated_roles(
        keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties)
    assert trust["roles"][0]["id"] == parties.delegated and len(trust["roles"]) == 1
    assert trust["expires_at"] is None and "/v3/OS-TRUST/trusts/" in trust["links"]["self"]
    r = trust_login(keystone, parties, trust["id"])
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["OS-TRUST:trust"] == {
        "id": trust["id"], "impersonation": True,
        "trustee_user": {"id": parties.trustee["id"]},
        "trustor_user": {"id": parties.trustor["id"]}}
    assert token["user"]["id"] == parties.trustor["id"]
    assert token["project"]["id"] == parties.project["id"]
    assert [role["id"] for role in token["roles"]] == [parties.delegated]
    validated = keystone.req("GET", "/auth/tokens",
                             headers={"X-Subject-Token": r.headers["X-Subject-Token"]})
    assert validated.status_code == 200 and "OS-TRUST:trust" in validated.json()["token"]


def test_without_impersonation_the_token_names_the_trustee(
        keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties, impersonation=False)
    r = trust_login(keystone, parties, trust["id"])
    assert r.status_code == 201, r.text
    assert r.json()["token"]["user"]["id"] == parties.trustee["id"]


def test_trust_roles_list_show_and_check(keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties)
    base = f"/OS-TRUST/trusts/{trust['id']}/roles"
    t = parties.trustor_token
    assert [r["id"] for r in keystone.req("GET", base, token=t).json()["roles"]] == [
        parties.delegated]
    assert keystone.req("GET", f"{base}/{parties.delegated}", token=t).status_code == 200
    assert keystone.req("HEAD", f"{base}/{parties.delegated}", token=t).status_code == 200
    assert keystone.req("GET", f"{base}/{parties.kept}", token=t).status_code == 404
    assert keystone.req("HEAD", f"{base}/{parties.kept}", token=t).status_code == 404


def test_lists_by_trustor_trustee_and_admin(keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties)
    mine = keystone.req("GET", f"/OS-TRUST/trusts/?trustor_user_id={parties.trustor['id']}",
                        token=parties.trustor_token).json()["trusts"]
    assert [x["id"] for x in mine] == [trust["id"]]
    everyone = keystone.req("GET", "/OS-TRUST/trusts").json()["trusts"]
    assert trust["id"] in {x["id"] for x in everyone}
    # The trustor may not list every trust, nor someone else's.
    assert keystone.req("GET", "/OS-TRUST/trusts", token=parties.trustor_token
                        ).status_code == 403
    assert keystone.req("GET", f"/OS-TRUST/trusts?trustor_user_id={parties.trustee['id']}",
                        token=parties.trustor_token).status_code == 403


def test_only_the_trustor_creates_and_only_delegable_roles(
        keystone: Keystone, parties: Parties) -> None:
    body = {"trustor_user_id": parties.trustee["id"], "trustee_user_id": parties.trustor["id"],
            "project_id": parties.project["id"], "impersonation": False,
            "roles": [{"id": parties.delegated}]}
    r = keystone.req("POST", "/OS-TRUST/trusts", token=parties.trustor_token,
                     json={"trust": body})
    assert r.status_code == 403
    admin_role = keystone.roles["admin"]
    r = keystone.req("POST", "/OS-TRUST/trusts", token=parties.trustor_token, json={"trust": {
        **body, "trustor_user_id": parties.trustor["id"],
        "trustee_user_id": parties.trustee["id"], "roles": [{"id": admin_role}]}})
    assert r.status_code == 403


@pytest.mark.parametrize("field,value", [("expires_at", "bad.123Z"), ("remaining_uses", 0),
                                         ("impersonation", "yes")])
def test_malformed_trusts_are_400(keystone: Keystone, parties: Parties, field: str,
                                  value: Any) -> None:
    body = {"trustor_user_id": parties.trustor["id"], "trustee_user_id": parties.trustee["id"],
            "project_id": parties.project["id"], "impersonation": True,
            "roles": [{"id": parties.delegated}], field: value}
    r = keystone.req("POST", "/OS-TRUST/trusts", token=parties.trustor_token,
                     json={"trust": body})
    assert r.status_code == 400, r.text


def test_expiry_is_kept_and_caps_the_token(keystone: Keystone, parties: Parties) -> None:
    expires = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
    trust = make_trust(keystone, parties, expires_at=expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert trust["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    token = trust_login(keystone, parties, trust["id"]).json()["token"]
    assert token["expires_at"] <= trust["expires_at"]


def test_remaining_uses_run_out(keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties, remaining_uses=1)
    assert trust_login(keystone, parties, trust["id"]).status_code == 201
    assert trust_login(keystone, parties, trust["id"]).status_code == 403


def test_only_the_trustee_can_use_a_trust(keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties)
    r = keystone.auth({"identity": {"methods": ["password"], "password": {"user": {
        "id": parties.trustor["id"], "password": parties.trustor["password"]}}},
        "scope": {"OS-TRUST:trust": {"id": trust["id"]}}})
    assert r.status_code == 403


def test_deleting_the_trust_revokes_its_tokens(keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties)
    token = trust_login(keystone, parties, trust["id"]).headers["X-Subject-Token"]
    r = keystone.req("DELETE", f"/OS-TRUST/trusts/{trust['id']}", token=parties.trustor_token)
    assert r.status_code == 204
    assert keystone.req("GET", f"/OS-TRUST/trusts/{trust['id']}",
                        token=parties.trustor_token).status_code == 404
    assert keystone.req("GET", "/auth/tokens",
                        headers={"X-Subject-Token": token}).status_code == 404


def test_trustor_losing_the_role_revokes_trust_tokens(
        keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties)
    token = trust_login(keystone, parties, trust["id"]).headers["X-Subject-Token"]
    r = keystone.req("DELETE", f"/projects/{parties.project['id']}/users/"
                     f"{parties.trustor['id']}/roles/{parties.delegated}")
    assert r.status_code == 204
    assert keystone.req("GET", "/auth/tokens",
                        headers={"X-Subject-Token": token}).status_code == 404
    assert trust_login(keystone, parties, trust["id"]).status_code == 403


def test_trust_tokens_cannot_be_rescoped(keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties)
    token = trust_login(keystone, parties, trust["id"]).headers["X-Subject-Token"]
    r = keystone.auth({"identity": {"methods": ["token"], "token": {"id": token}},
                       "scope": {"project": {"id": parties.project["id"]}}})
    assert r.status_code == 403


def test_redelegation_counts_down(keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties, allow_redelegation=True, redelegation_count=1)
    assert trust["redelegation_count"] == 1
    token = trust_login(keystone, parties, trust["id"]).headers["X-Subject-Token"]
    other = keystone.user()
    body = {"trustor_user_id": parties.trustor["id"], "trustee_user_id": other["id"],
            "project_id": parties.project["id"], "impersonation": True,
            "roles": [{"id": parties.delegated}]}
    r = keystone.req("POST", "/OS-TRUST/trusts", token=token, json={"trust": body})
    assert r.status_code == 201, r.text
    child = r.json()["trust"]
    assert child["redelegated_trust_id"] == trust["id"] and not child["allow_redelegation"]
    # Deleting the first trust takes the redelegated one with it.
    keystone.req("DELETE", f"/OS-TRUST/trusts/{trust['id']}", token=parties.trustor_token)
    assert keystone.req("GET", f"/OS-TRUST/trusts/{child['id']}").status_code == 404


def test_trust_tokens_cannot_make_application_credentials(
        keystone: Keystone, parties: Parties) -> None:
    trust = make_trust(keystone, parties)
    token = trust_login(keystone, parties, trust["id"]).headers["X-Subject-Token"]
    r = keystone.req("POST", f"/users/{parties.trustor['id']}/application_credentials",
                     token=token, json={"application_credential": {"name": unique("ac")}})
    assert r.status_code == 403, r.text
