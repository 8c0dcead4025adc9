"""Security groups and rules, quotas, and list queries (filters, fields, sorting, pages, tags)."""

from __future__ import annotations

import httpx

from tests.unit.network.harness import PROJECT_A, fault, make_network


async def default_group(client: httpx.AsyncClient) -> dict:
    r = await client.get("/v2.0/security-groups", params={"name": "default"})
    groups = r.json()["security_groups"]
    assert len(groups) == 1
    return dict(groups[0])


async def test_the_default_group_is_made_once_with_the_standard_rules(
        alice: httpx.AsyncClient) -> None:
    group = await default_group(alice)
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"])
             for r in group["security_group_rules"]}
    assert rules == {("egress", "IPv4", None), ("egress", "IPv6", None),
                     ("ingress", "IPv4", group["id"]), ("ingress", "IPv6", group["id"])}
    assert (await default_group(alice))["id"] == group["id"]
    r = await alice.delete(f"/v2.0/security-groups/{group['id']}")
    assert r.status_code == 409 and fault(r) == "SecurityGroupCannotRemoveDefault"
    r = await alice.post("/v2.0/security-groups", json={"security_group": {"name": "default"}})
    assert r.status_code == 409


async def test_rules_are_validated_and_duplicates_conflict(alice: httpx.AsyncClient,
                                                           bob: httpx.AsyncClient) -> None:
    r = await alice.post("/v2.0/security-groups", json={"security_group": {"name": "web"}})
    assert r.status_code == 201
    sg = r.json()["security_group"]
    assert len(sg["security_group_rules"]) == 2
    rule = {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}
    r = await alice.post("/v2.0/security-group-rules", json={"security_group_rule": rule})
    assert r.status_code == 201
    r = await alice.post("/v2.0/security-group-rules", json={"security_group_rule": rule})
    assert r.status_code == 409 and fault(r) == "SecurityGroupRuleExists"
    bad = [
        ({"port_range_min": 30, "port_range_max": 20}, "SecurityGroupInvalidPortRange"),
        ({"protocol": "bogus"}, "SecurityGroupRuleInvalidProtocol"),
        ({"remote_ip_prefix": "2001:db8::/64"}, "SecurityGroupRuleParameterConflict"),
        ({"direction": "sideways"}, "InvalidInput"),
        ({"remote_group_id": sg["id"]}, "SecurityGroupRemoteGroupAndRemoteIpPrefix"),
    ]
    for change, kind in bad:
        r = await alice.post("/v2.0/security-group-rules",
                             json={"security_group_rule": {**rule, **change}})
        assert r.status_code == 400 and fault(r) == kind, (change, r.text)
    r = await bob.post("/v2.0/security-group-rules", json={"security_group_rule": {
        **rule, "port_range_min": 80, "port_range_max": 80}})
    assert r.status_code == 404
    rules = (await alice.get("/v2.0/security-group-rules",
                             params={"security_group_id": sg["id"]})).json()
    assert len(rules["security_group_rules"]) == 3
    r = await alice.post("/v2.0/security-group-rules", json={"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "protocol": "icmp",
        "port_range_min": 8, "port_range_max": 0}})
    assert r.status_code == 201
    rid = r.json()["security_group_rule"]["id"]
    assert (await alice.delete(f"/v2.0/security-group-rules/{rid}")).status_code == 204
    assert (await alice.delete(f"/v2.0/security-groups/{sg['id']}")).status_code == 204


async def test_quotas_are_exact_and_admin_managed(alice: httpx.AsyncClient,
                                                  admin: httpx.AsyncClient) -> None:
    r = await alice.get(f"/v2.0/quotas/{PROJECT_A}")
    assert r.status_code == 200 and r.json()["quota"]["network"] == 100
    r = await alice.put(f"/v2.0/quotas/{PROJECT_A}", json={"quota": {"network": 1}})
    assert r.status_code == 403
    r = await admin.put(f"/v2.0/quotas/{PROJECT_A}", json={"quota": {"network": 2}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == 2
    await make_network(alice)
    await make_network(alice)
    r = await alice.post("/v2.0/networks", json={"network": {}})
    assert r.status_code == 409 and fault(r) == "OverQuota"
    details = (await alice.get(f"/v2.0/quotas/{PROJECT_A}/details")).json()["quota"]
    assert details["network"] == {"limit": 2, "used": 2, "reserved": 0}
    listed = (await admin.get("/v2.0/quotas")).json()["quotas"]
    assert [q["project_id"] for q in listed] == [PROJECT_A]
    r = await admin.put(f"/v2.0/quotas/{PROJECT_A}", json={"quota": {"network": "lots"}})
    assert r.status_code == 400
    assert (await admin.delete(f"/v2.0/quotas/{PROJECT_A}")).status_code == 204
    assert (await alice.get(f"/v2.0/quotas/{PROJECT_A}/default")).json()["quota"]["port"] == 500


async def test_filters_fields_sorting_and_pagination(alice: httpx.AsyncClient) -> None:
    for name in ("c", "a", "b", "d", "e"):
        await make_network(alice, name=name, admin_state_up=name != "d")
    r = await alice.get("/v2.0/networks", params=[("sort_key", "name"), ("sort_dir", "asc"),
                                                  ("limit", "2"), ("fields", "name"),
                                                  ("fields", "id")])
    body = r.json()
    assert [n["name"] for n in body["networks"]] == ["a", "b"]
    assert set(body["networks"][0]) == {"id", "name"}
    nxt = [link for link in body["networks_links"] if link["rel"] == "next"][0]["href"]
    page2 = (await alice.get(nxt.split("9696", 1)[1])).json()
    assert "networks" in page2, (nxt, page2)
    assert [n["name"] for n in page2["networks"]] == ["c", "d"]
    assert {link["rel"] for link in page2["networks_links"]} == {"next", "previous"}
    r = await alice.get("/v2.0/networks", params={"admin_state_up": "false"})
    assert [n["name"] for n in r.json()["networks"]] == ["d"]
    r = await alice.get("/v2.0/networks", params=[("name", "a"), ("name", "e")])
    assert sorted(n["name"] for n in r.json()["networks"]) == ["a", "e"]
    r = await alice.get("/v2.0/networks", params={"sort_key": "name", "sort_dir": "up"})
    assert r.status_code == 400
    r = await alice.get("/v2.0/networks", params={"limit": "-1"})
    assert r.status_code == 400
    r = await alice.get("/v2.0/networks", params={"marker": "nope", "limit": 1})
    assert r.status_code == 400


async def test_tags_on_resources_and_tag_filters(alice: httpx.AsyncClient,
                                                 bob: httpx.AsyncClient) -> None:
    one = await make_network(alice, name="one")
    two = await make_network(alice, name="two")
    r = await alice.put(f"/v2.0/networks/{one['id']}/tags", json={"tags": ["red", "blue"]})
    assert r.status_code == 200 and r.json() == {"tags": ["blue", "red"]}
    assert (await alice.put(f"/v2.0/networks/{two['id']}/tags/red")).status_code == 201
    assert (await alice.get(f"/v2.0/networks/{two['id']}/tags/red")).status_code == 204
    r = await alice.get(f"/v2.0/networks/{two['id']}/tags/blue")
    assert r.status_code == 404 and fault(r) == "TagNotFound"
    r = await alice.get("/v2.0/networks", params={"tags": "red,blue"})
    assert [n["name"] for n in r.json()["networks"]] == ["one"]
    r = await alice.get("/v2.0/networks", params={"not-tags-any": "blue"})
    assert [n["name"] for n in r.json()["networks"]] == ["two"]
    assert (await bob.put(f"/v2.0/networks/{one['id']}/tags/x")).status_code == 404
    assert (await alice.delete(f"/v2.0/networks/{one['id']}/tags")).status_code == 204
    shown = (await alice.get(f"/v2.0/networks/{one['id']}")).json()["network"]
    assert shown["tags"] == []
