"""Regressions found by the real CLI, junk input and Tempest; each test is named after what broke."""

from __future__ import annotations

import asyncio

import httpx

from tests.unit.network.harness import fault, make_network, make_port, make_subnet
from tests.unit.network.test_l3_api import external


async def test_quota_set_sends_check_limit_and_usage_is_checked_only_then(
        admin: httpx.AsyncClient, alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    await make_port(alice, network["id"])
    project = network["project_id"]
    r = await admin.put(f"/v2.0/quotas/{project}", json={"quota": {
        "port": 0, "check_limit": True}})
    assert r.status_code == 409 and fault(r) == "InvalidQuotaValue"
    r = await admin.put(f"/v2.0/quotas/{project}", json={"quota": {"port": 0}})
    assert r.status_code == 200 and r.json()["quota"]["port"] == 0
    r = await admin.put(f"/v2.0/quotas/{project}", json={"quota": {"check_limit": "yes"}})
    assert r.status_code == 400


async def test_another_projects_quota_is_403_not_500(alice: httpx.AsyncClient) -> None:
    r = await alice.get("/v2.0/quotas/" + "b" * 32)
    assert r.status_code == 403 and fault(r) == "PolicyNotAuthorized"


async def test_slaac_address_is_added_to_a_port_that_names_only_its_v4_ip(
        alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    v4 = await make_subnet(alice, network["id"])
    v6 = await make_subnet(alice, network["id"], "fd00:1::/64", ipv6_ra_mode="slaac",
                           ipv6_address_mode="slaac")
    port = await make_port(alice, network["id"], fixed_ips=[{"ip_address": "10.0.0.9"}])
    assert {ip["subnet_id"] for ip in port["fixed_ips"]} == {v4["id"], v6["id"]}


async def test_slaac_subnet_deletes_under_ports_but_the_network_does_not(
        alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    v6 = await make_subnet(alice, network["id"], "fd00:2::/64", ipv6_ra_mode="slaac",
                           ipv6_address_mode="slaac")
    port = await make_port(alice, network["id"])
    assert (await alice.delete(f"/v2.0/subnets/{v6['id']}")).status_code == 204
    assert (await alice.get(f"/v2.0/ports/{port['id']}")).json()["port"]["fixed_ips"] == []
    r = await alice.delete(f"/v2.0/networks/{network['id']}")
    assert r.status_code == 409 and fault(r) == "NetworkInUse"


async def test_external_network_deletes_with_its_unassociated_floating_ips(
        admin: httpx.AsyncClient) -> None:
    ext = await external(admin)
    r = await admin.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": ext["id"]}})
    fip = r.json()["floatingip"]
    assert (await admin.delete(f"/v2.0/networks/{ext['id']}")).status_code == 204
    assert (await admin.get(f"/v2.0/floatingips/{fip['id']}")).status_code == 404


async def test_router_ports_go_active_even_when_the_router_is_admin_down(
        alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    subnet = await make_subnet(alice, network["id"])
    r = await alice.post("/v2.0/routers", json={"router": {"admin_state_up": False}})
    router = r.json()["router"]
    r = await alice.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                        json={"subnet_id": subnet["id"]})
    port_id = r.json()["port_id"]
    for _ in range(100):
        port = (await alice.get(f"/v2.0/ports/{port_id}")).json()["port"]
        if port["status"] == "ACTIVE":
            break
        await asyncio.sleep(0.02)
    assert port["status"] == "ACTIVE"


async def test_security_group_port_errors_say_what_neutron_says(
        alice: httpx.AsyncClient) -> None:
    sg = (await alice.post("/v2.0/security-groups", json={"security_group": {
        "name": "g"}})).json()["security_group"]
    cases = [("tcp", -16, 80, "Invalid value for port -16"),
             ("tcp", 80, 79, "port_range_min must be <= port_range_max"),
             ("tcp", 80, 65536, "Invalid value for port 65536"),
             ("tcp", None, 6, "port_range_min must be <= port_range_max"),
             ("icmp", 1, 256, "Invalid value for ICMP code"),
             ("icmp", None, 6, "ICMP type (port-range-min) is missing"),
             ("icmp", 300, 1, "Invalid value for ICMP type")]
    for protocol, lo, hi, message in cases:
        r = await alice.post("/v2.0/security-group-rules", json={"security_group_rule": {
            "security_group_id": sg["id"], "direction": "ingress", "protocol": protocol,
            "port_range_min": lo, "port_range_max": hi}})
        assert r.status_code == 400 and message in r.json()["NeutronError"]["message"], (
            protocol, lo, hi, r.text)


async def test_renaming_a_group_to_default_conflicts(alice: httpx.AsyncClient) -> None:
    sg = (await alice.post("/v2.0/security-groups", json={"security_group": {
        "name": "g"}})).json()["security_group"]
    r = await alice.put(f"/v2.0/security-groups/{sg['id']}", json={"security_group": {
        "name": "default"}})
    assert r.status_code == 409 and fault(r) == "SecurityGroupDefaultAlreadyExists"


async def test_router_interface_with_a_non_string_id_is_400_not_a_database_error(
        alice: httpx.AsyncClient) -> None:
    router = (await alice.post("/v2.0/routers", json={"router": {}})).json()["router"]
    for body in ({"subnet_id": []}, {"port_id": {"a": 1}}, {"subnet_id": 5}):
        r = await alice.put(f"/v2.0/routers/{router['id']}/add_router_interface", json=body)
        assert r.status_code == 400, r.text
    r = await alice.put(f"/v2.0/routers/{router['id']}", json={"router": {
        "external_gateway_info": {"network_id": ["x"]}}})
    assert r.status_code == 400


async def test_fixed_ip_naming_neither_subnet_nor_address_is_400(
        alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    r = await alice.post("/v2.0/ports", json={"port": {"network_id": network["id"],
                                                       "fixed_ips": [{"subnet_id": None}]}})
    assert r.status_code == 400 and fault(r) == "InvalidInput"
