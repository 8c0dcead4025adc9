"""Ports: addresses, MACs, ownership, bindings, port security, status."""

from __future__ import annotations

import asyncio

import httpx

from tests.unit.network.harness import fault, make_network, make_port, make_subnet


async def test_a_requested_fixed_ip_is_given_once(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    subnet = await make_subnet(alice, network["id"])
    port = await make_port(alice, network["id"], fixed_ips=[{"ip_address": "10.0.0.50"}])
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.0.0.50"}]
    r = await alice.post("/v2.0/ports", json={"port": {
        "network_id": network["id"], "fixed_ips": [{"subnet_id": subnet["id"],
                                                    "ip_address": "10.0.0.50"}]}})
    assert r.status_code == 409 and fault(r) == "IpAddressAlreadyAllocated"
    r = await alice.post("/v2.0/ports", json={"port": {
        "network_id": network["id"], "fixed_ips": [{"ip_address": "192.168.0.5"}]}})
    assert r.status_code == 400 and fault(r) == "InvalidIpForNetwork"
    r = await alice.post("/v2.0/ports", json={"port": {
        "network_id": network["id"], "fixed_ips": [{"subnet_id": "nope"}]}})
    assert r.status_code == 400


async def test_a_full_subnet_answers_ip_address_generation_failure(
        alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"], "10.0.0.0/29",
                      allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.3"}])
    await make_port(alice, network["id"])
    await make_port(alice, network["id"])
    r = await alice.post("/v2.0/ports", json={"port": {"network_id": network["id"]}})
    assert r.status_code == 409 and fault(r) == "IpAddressGenerationFailure"


async def test_mac_addresses_are_unique_per_network(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    port = await make_port(alice, network["id"], mac_address="FA:16:3E:00:00:01")
    assert port["mac_address"] == "fa:16:3e:00:00:01"
    r = await alice.post("/v2.0/ports", json={"port": {"network_id": network["id"],
                                                       "mac_address": "fa:16:3e:00:00:01"}})
    assert r.status_code == 409 and fault(r) == "MacAddressInUse"
    r = await alice.post("/v2.0/ports", json={"port": {"network_id": network["id"],
                                                       "mac_address": "zz"}})
    assert r.status_code == 400
    generated = await make_port(alice, network["id"])
    assert generated["mac_address"].startswith("fa:16:3e:")


async def test_ports_get_the_default_security_group_and_port_security_rules(
        alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    port = await make_port(alice, network["id"])
    groups = (await alice.get("/v2.0/security-groups", params={"name": "default"})).json()
    assert port["security_groups"] == [groups["security_groups"][0]["id"]]
    r = await alice.post("/v2.0/ports", json={"port": {
        "network_id": network["id"], "port_security_enabled": False,
        "security_groups": port["security_groups"]}})
    assert r.status_code == 409
    bare = await make_port(alice, network["id"], port_security_enabled=False)
    assert bare["security_groups"] == []
    r = await alice.put(f"/v2.0/ports/{bare['id']}", json={"port": {
        "allowed_address_pairs": [{"ip_address": "10.0.0.200"}]}})
    assert r.status_code == 409 and fault(r) == "AddressPairAndPortSecurityRequired"
    r = await alice.put(f"/v2.0/ports/{port['id']}", json={"port": {
        "allowed_address_pairs": [{"ip_address": "10.0.0.0/28", "mac_address":
                                   "fa:16:3e:aa:bb:cc"}]}})
    assert r.status_code == 200
    assert r.json()["port"]["allowed_address_pairs"][0]["ip_address"] == "10.0.0.0/28"
    r = await alice.put(f"/v2.0/ports/{port['id']}", json={"port": {
        "port_security_enabled": False}})
    assert r.status_code == 409 and fault(r) == "PortSecurityPortHasSecurityGroup"


async def test_another_projects_ports_are_invisible(alice: httpx.AsyncClient,
                                                    bob: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    port = await make_port(alice, network["id"])
    assert (await bob.get(f"/v2.0/ports/{port['id']}")).status_code == 404
    assert (await bob.delete(f"/v2.0/ports/{port['id']}")).status_code == 404
    assert (await bob.get("/v2.0/ports")).json()["ports"] == []


async def test_binding_is_admin_only_and_a_bound_port_goes_active(
        alice: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    port = await make_port(alice, network["id"], device_id="vm-1", device_owner="compute:nova")
    assert port["status"] == "DOWN" and "binding:host_id" not in port
    r = await alice.put(f"/v2.0/ports/{port['id']}", json={"port": {"binding:host_id": "h1"}})
    assert r.status_code == 403
    from stratus.network.agent import AgentRunner

    r = await admin.put(f"/v2.0/ports/{port['id']}", json={"port": {
        "binding:host_id": "h1", "binding:profile": {"x": 1}}})
    assert r.status_code == 200
    bound = r.json()["port"]
    assert bound["binding:vif_type"] == "bridge" and bound["binding:profile"] == {"x": 1}
    assert AgentRunner  # the embedded agent serves this process's host, not "h1"


async def test_the_noop_agent_marks_ports_bound_to_its_host_active(
        net: object, admin: httpx.AsyncClient) -> None:
    import socket

    network = await make_network(admin)
    await make_subnet(admin, network["id"])
    port = await make_port(admin, network["id"], **{"binding:host_id": socket.gethostname()})
    for _ in range(100):
        status = (await admin.get(f"/v2.0/ports/{port['id']}")).json()["port"]["status"]
        if status == "ACTIVE":
            break
        await asyncio.sleep(0.02)
    assert status == "ACTIVE"


async def test_updating_fixed_ips_keeps_and_replaces_addresses(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    subnet = await make_subnet(alice, network["id"])
    port = await make_port(alice, network["id"], fixed_ips=[{"ip_address": "10.0.0.20"}])
    r = await alice.put(f"/v2.0/ports/{port['id']}", json={"port": {"fixed_ips": [
        {"ip_address": "10.0.0.20"}, {"subnet_id": subnet["id"], "ip_address": "10.0.0.21"}]}})
    assert r.status_code == 200
    assert sorted(i["ip_address"] for i in r.json()["port"]["fixed_ips"]) == \
        ["10.0.0.20", "10.0.0.21"]
    r = await alice.put(f"/v2.0/ports/{port['id']}", json={"port": {"fixed_ips": [
        {"ip_address": "10.0.0.21"}]}})
    assert [i["ip_address"] for i in r.json()["port"]["fixed_ips"]] == ["10.0.0.21"]
    again = await make_port(alice, network["id"], fixed_ips=[{"ip_address": "10.0.0.20"}])
    assert again["fixed_ips"][0]["ip_address"] == "10.0.0.20"
