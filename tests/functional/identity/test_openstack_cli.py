"""python-openstackclient, unchanged, against Stratus identity.

Each `openstack` start costs about a second, so the commands run in the
CLI's interactive mode: one process reads many commands from stdin, exactly
as a user typing them would.
"""

from __future__ import annotations

from typing import Any

from tests.functional.identity.conftest import Keystone, json_docs, openstack, unique
from tests.support.cloud import CloudProcess


def run_script(cloud: CloudProcess, lines: list[str], **kw: Any) -> list[Any]:
    """Run commands in one interactive `openstack`; any error text fails the test.

    (Interactive mode exits 1 at end of input and prints errors on stdout, so
    success means: the output is nothing but the JSON documents asked for.)
    """
    result = openstack(cloud, stdin="\n".join(lines) + "\n", check=False, **kw)
    assert not result.stderr.strip(), result.stderr
    try:
        return json_docs(result.stdout)
    except ValueError:
        raise AssertionError(f"openstack printed an error:\n{result.stdout}") from None


def by_name(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in rows if r.get("Name", r.get("name")) == name)


def test_identity_commands_of_the_openstack_cli(cloud: CloudProcess, keystone: Keystone) -> None:
    d, p, u, g, r, ac = (unique(x) for x in ("dom", "proj", "user", "grp", "role", "appcred"))
    docs = run_script(cloud, [
        "token issue -f json",
        "catalog list -f json",
        "endpoint list -f json",
        "service list -f json",
        f"domain create --description first {d} -f json",
        "domain list -f json",
        f"domain set --description second {d}",
        f"domain show {d} -f json",
        f"project create --domain {d} {p} -f json",
        "project list -f json",
        f"project set --domain {d} --description described {p}",
        f"project show --domain {d} {p} -f json",
        f"user create --domain {d} --password user-pw {u} -f json",
        f"user list --domain {d} -f json",
        f"user set --domain {d} --email someone@example.org {u}",
        f"user show --domain {d} {u} -f json",
        f"group create --domain {d} {g} -f json",
        f"group list --domain {d} -f json",
        f"group set --domain {d} --description grouped {g}",
        f"group show --domain {d} {g} -f json",
        f"role create {r} -f json",
        "role list -f json",
        f"role set --description roled {r}",
        f"role show {r} -f json",
        f"role add --user {u} --user-domain {d} --project {p} --project-domain {d} member",
        f"role assignment list --names --project {p} --project-domain {d} -f json",
        f"application credential create {ac} -f json",
    ])
    (token, catalog, endpoints, services, domain, domains, domain_shown, project, projects,
     project_shown, user, users, user_shown, group, groups, group_shown, role, roles,
     role_shown, assignments, app_cred) = docs

    assert token["id"].startswith("gAAAAA") and token["project_id"] and token["user_id"]
    types = {entry["Type"] for entry in catalog}
    assert "identity" in types
    if "compute" in cloud.started_services:
        assert {"compute", "image", "network", "block-storage", "volumev3"} <= types
    assert {e["Interface"] for e in endpoints} == {"public", "internal", "admin"}
    assert all(e["Region"] == "RegionOne" for e in endpoints)
    assert "keystone" in {s["Name"] for s in services}

    assert domain["name"] == d and by_name(domains, d)["ID"] == domain["id"]
    assert domain_shown["description"] == "second"
    assert project["domain_id"] == domain["id"] and by_name(projects, p)["ID"] == project["id"]
    assert project_shown["description"] == "described"
    assert [x["Name"] for x in users] == [u] and user_shown["email"] == "someone@example.org"
    assert [x["Name"] for x in groups] == [g] and group_shown["description"] == "grouped"
    assert by_name(roles, r)["ID"] == role["id"] and role_shown["description"] == "roled"
    assert [(a["Role"], a["User"], a["Project"]) for a in assignments] == [
        ("member", f"{u}@{d}", f"{p}@{d}")]

    # Authenticate with the application credential, as the CLI does.
    docs = run_script(cloud, ["token issue -f json"], cloud_name=None, env={
        "OS_AUTH_TYPE": "v3applicationcredential", "OS_AUTH_URL": keystone.url,
        "OS_APPLICATION_CREDENTIAL_ID": app_cred["ID"],
        "OS_APPLICATION_CREDENTIAL_SECRET": app_cred["Secret"]})
    assert docs[0]["project_id"] == app_cred["Project ID"]

    # Revoke a token; it stops working at once.
    revoked = token["id"]
    run_script(cloud, [f"token revoke {revoked}"])
    assert keystone.req("GET", "/auth/tokens", headers={"X-Subject-Token": revoked}
                        ).status_code == 404

    run_script(cloud, [
        f"application credential delete {ac}",
        f"role remove --user {u} --user-domain {d} --project {p} --project-domain {d} member",
        f"role delete {r}",
        f"group delete --domain {d} {g}",
        f"user delete --domain {d} {u}",
        f"project delete --domain {d} {p}",
        f"domain set --disable {d}",
        f"domain delete {d}",
    ])
    assert keystone.req("GET", f"/domains/{domain['id']}").status_code == 404
    assert keystone.req("GET", f"/users/{user['id']}").status_code == 404
    assert keystone.req("GET", f"/roles/{role['id']}").status_code == 404
    assert keystone.req("GET", f"/groups/{group['id']}").status_code == 404
