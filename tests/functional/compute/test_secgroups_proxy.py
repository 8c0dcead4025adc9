"""Nova's deprecated ``os-security-groups`` proxies over the network service, on a
real all-in-one: groups and rules at 2.1, 404 from 2.36, and the server actions
that put a group on (and take it off) a server's ports."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.functional.compute.helpers import User, upload_image
from tests.support.cloud import CloudProcess
from tests.support.openstack import IdentityAdmin, unique

V21 = {"OpenStack-API-Version": "compute 2.1", "X-OpenStack-Nova-API-Version": "2.1"}


@pytest.fixture(scope="module")
def user(cloud: CloudProcess) -> User:
    return User(cloud)


def _api(user: User, method: str, path: str, version: str = "2.1", **kw: Any
         ) -> httpx.Response:
    return user.api(method, path, headers={"OpenStack-API-Version": f"compute {version}",
                                           "X-OpenStack-Nova-API-Version": version}, **kw)


def test_groups_and_rules_through_the_proxy_at_2_1(user: User) -> None:
    name = unique("proxy-sg")
    resp = _api(user, "POST", "/os-security-groups",
                json={"security_group": {"name": name, "description": "via nova"}})
    assert resp.status_code == 200, resp.text
    group = resp.json()["security_group"]
    assert group["name"] == name and group["description"] == "via nova"
    assert group["tenant_id"] and isinstance(group["rules"], list)
    gid = group["id"]

    listed = _api(user, "GET", "/os-security-groups").json()["security_groups"]
    assert gid in {g["id"] for g in listed}
    assert "default" in {g["name"] for g in listed}

    resp = _api(user, "POST", "/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
        "cidr": "10.0.0.0/8"}})
    assert resp.status_code == 200, resp.text
    rule = resp.json()["security_group_rule"]
    assert rule["parent_group_id"] == gid and rule["ip_protocol"] == "tcp"
    assert (rule["from_port"], rule["to_port"]) == (22, 22)
    assert rule["ip_range"] == {"cidr": "10.0.0.0/8"} and rule["group"] == {}
    dup = _api(user, "POST", "/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": gid, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
        "cidr": "10.0.0.0/8"}})
    assert dup.status_code == 400, dup.text

    default = next(g for g in listed if g["name"] == "default")
    resp = _api(user, "POST", "/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": gid, "ip_protocol": "icmp", "from_port": -1, "to_port": -1,
        "group_id": default["id"]}})
    assert resp.status_code == 200, resp.text
    by_group = resp.json()["security_group_rule"]
    assert by_group["group"] == {"name": "default", "tenant_id": group["tenant_id"]}
    assert by_group["ip_range"] == {}

    shown = _api(user, "GET", f"/os-security-groups/{gid}").json()["security_group"]
    assert {r["id"] for r in shown["rules"]} == {rule["id"], by_group["id"]}

    bad = _api(user, "POST", "/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": gid, "ip_protocol": "tcp", "from_port": 90, "to_port": 80}})
    assert bad.status_code == 400
    assert _api(user, "POST", "/os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": "not-a-uuid", "ip_protocol": "tcp", "from_port": 1,
        "to_port": 2}}).status_code == 400

    updated = _api(user, "PUT", f"/os-security-groups/{gid}", json={
        "security_group": {"name": name + "-x", "description": "renamed"}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["security_group"]["name"] == name + "-x"

    assert _api(user, "DELETE", f"/os-security-group-rules/{rule['id']}").status_code == 202
    assert _api(user, "DELETE", f"/os-security-group-rules/{rule['id']}").status_code == 404
    assert _api(user, "DELETE", f"/os-security-groups/{default['id']}").status_code == 400
    assert _api(user, "DELETE", f"/os-security-groups/{gid}").status_code == 202
    assert _api(user, "GET", f"/os-security-groups/{gid}").status_code == 404


@pytest.mark.parametrize("version", ["2.36", "2.96"])
def test_the_proxies_are_gone_from_2_36(user: User, version: str) -> None:
    assert _api(user, "GET", "/os-security-groups", version).status_code == 404
    assert _api(user, "POST", "/os-security-groups", version, json={
        "security_group": {"name": "x", "description": ""}}).status_code == 404
    assert _api(user, "POST", "/os-security-group-rules", version, json={
        "security_group_rule": {}}).status_code == 404
    assert _api(user, "GET", "/os-security-groups", "2.35").status_code == 200


def test_another_project_cannot_see_the_group(user: User, cloud: CloudProcess) -> None:
    gid = _api(user, "POST", "/os-security-groups", json={"security_group": {
        "name": unique("private-sg"), "description": ""}}).json()["security_group"]["id"]
    identity = IdentityAdmin(cloud)
    other = identity.persona("sg-other")
    identity.close()
    headers = {"X-Auth-Token": other.token, **V21}
    url = f"{cloud.url('compute')}/v2.1"
    assert httpx.get(f"{url}/os-security-groups/{gid}", headers=headers).status_code == 404
    theirs = httpx.get(f"{url}/os-security-groups", headers=headers).json()
    assert gid not in {g["id"] for g in theirs["security_groups"]}
    assert httpx.delete(f"{url}/os-security-groups/{gid}", headers=headers).status_code == 404
    assert _api(user, "DELETE", f"/os-security-groups/{gid}").status_code == 202


def test_add_and_remove_a_group_on_a_server(user: User) -> None:
    image = unique("sg-img")
    upload_image(user, image)
    net = user.osc("network", "create", unique("sg-net"))["id"]
    user.osc("subnet", "create", "--network", net, "--subnet-range", "10.77.0.0/24",
             unique("sg-subnet"))
    sid = user.osc("server", "create", "--flavor", "m1.tiny", "--image", image,
                   "--nic", f"net-id={net}", unique("sg-vm"))["id"]
    user.wait(sid, "ACTIVE")
    name = unique("web")
    gid = _api(user, "POST", "/os-security-groups", json={"security_group": {
        "name": name, "description": ""}}).json()["security_group"]["id"]

    def names() -> list[str]:
        resp = _api(user, "GET", f"/servers/{sid}/os-security-groups")
        assert resp.status_code == 200, resp.text
        return sorted(g["name"] for g in resp.json()["security_groups"])

    assert names() == ["default"]
    resp = _api(user, "POST", f"/servers/{sid}/action", json={"addSecurityGroup": {"name": name}})
    assert resp.status_code == 202, resp.text
    assert names() == sorted(["default", name])
    port, = user.osc("port", "list", "--device-id", sid)
    assert gid in user.osc("port", "show", port["ID"])["security_group_ids"]
    assert {"name": name} in user.server(sid)["security_groups"]
    # also readable (and the actions usable) after 2.36
    assert _api(user, "GET", f"/servers/{sid}/os-security-groups", "2.96").status_code == 200

    missing = _api(user, "POST", f"/servers/{sid}/action",
                   json={"addSecurityGroup": {"name": unique("nope")}})
    assert missing.status_code == 404
    resp = _api(user, "POST", f"/servers/{sid}/action", "2.96",
                json={"removeSecurityGroup": {"name": name}})
    assert resp.status_code == 202, resp.text
    assert names() == ["default"]
    again = _api(user, "POST", f"/servers/{sid}/action",
                 json={"removeSecurityGroup": {"name": name}})
    assert again.status_code == 400
    assert {"name": name} not in user.server(sid)["security_groups"]
    user.osc("server", "delete", "--wait", sid, parse=False)
    assert _api(user, "DELETE", f"/os-security-groups/{gid}").status_code == 202
