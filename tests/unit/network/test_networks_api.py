"""Networks and subnets over the Neutron v2.0 API."""

from __future__ import annotations

import httpx

from tests.unit.network.harness import fault, make_network, make_port, make_subnet


async def test_discovery_documents(alice: httpx.AsyncClient, net: object) -> None:
    assert (await alice.get("/")).json()["versions"][0]["id"] == "v2.0"
    names = {r["collection"] for r in (await alice.get("/v2.0/")).json()["resources"]}
    assert {"networks", "subnets", "ports", "routers", "floatingips", "security_groups",
            "security_group_rules", "quotas"} <= names
    aliases = {e["alias"] for e in (await alice.get("/v2.0/extensions")).json()["extensions"]}
    assert {"router", "external-net", "provider", "security-group", "quotas", "binding",
            "standard-attr-tag", "pagination", "sorting"} <= aliases
    assert "dvr" not in aliases and "subnet_allocation" in aliases
    r = await alice.get("/v2.0/extensions/nope")
    assert r.status_code == 404


async def test_requests_without_a_token_are_refused(net: object) -> None:
    from tests.unit.network.harness import Net

    assert isinstance(net, Net)
    async with net.client(None) as anon:
        r = await anon.get("/v2.0/networks")
        assert r.status_code == 401


async def test_a_project_network_gets_a_vxlan_segment_hidden_from_members(
        alice: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    assert network["status"] == "ACTIVE" and network["mtu"] == 1450
    assert "provider:network_type" not in network
    seen = (await admin.get(f"/v2.0/networks/{network['id']}")).json()["network"]
    assert seen["provider:network_type"] == "vxlan"
    assert 1 <= seen["provider:segmentation_id"] <= 65535


async def test_provider_attributes_are_for_admins(alice: httpx.AsyncClient,
                                                  admin: httpx.AsyncClient) -> None:
    r = await alice.post("/v2.0/networks", json={"network": {
        "provider:network_type": "flat", "provider:physical_network": "physnet1"}})
    assert r.status_code == 403
    vlan = await make_network(admin, **{"provider:network_type": "vlan",
                                        "provider:physical_network": "physnet1"})
    assert 100 <= vlan["provider:segmentation_id"] <= 999
    r = await admin.post("/v2.0/networks", json={"network": {
        "provider:network_type": "vlan", "provider:physical_network": "physnet1",
        "provider:segmentation_id": vlan["provider:segmentation_id"]}})
    assert r.status_code == 409 and fault(r) == "SegmentationIdInUse"
    await make_network(admin, **{"provider:network_type": "flat",
                                 "provider:physical_network": "public"})
    r = await admin.post("/v2.0/networks", json={"network": {
        "provider:network_type": "flat", "provider:physical_network": "public"}})
    assert r.status_code == 409 and fault(r) == "FlatNetworkInUse"
    r = await admin.post("/v2.0/networks", json={"network": {"provider:network_type": "gre"}})
    assert r.status_code == 400 and fault(r) == "InvalidInput"
    local = await make_network(admin, **{"provider:network_type": "local"})
    assert local["provider:segmentation_id"] is None and local["mtu"] == 1500


async def test_another_projects_private_network_is_invisible(
        alice: httpx.AsyncClient, bob: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    private = await make_network(alice)
    shared = await make_network(admin, shared=True)
    r = await bob.get(f"/v2.0/networks/{private['id']}")
    assert r.status_code == 404 and fault(r) == "NetworkNotFound"
    ids = {n["id"] for n in (await bob.get("/v2.0/networks")).json()["networks"]}
    assert shared["id"] in ids and private["id"] not in ids
    r = await bob.post("/v2.0/ports", json={"port": {"network_id": private["id"]}})
    assert r.status_code == 404 and fault(r) == "NetworkNotFound"
    r = await bob.delete(f"/v2.0/networks/{shared['id']}")
    assert r.status_code == 403


async def test_update_and_delete_a_network(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    r = await alice.put(f"/v2.0/networks/{network['id']}",
                        json={"network": {"name": "renamed", "admin_state_up": False}})
    assert r.status_code == 200
    body = r.json()["network"]
    assert body["name"] == "renamed" and body["revision_number"] == 1
    r = await alice.put(f"/v2.0/networks/{network['id']}", json={"network": {"shared": True}})
    assert r.status_code == 403
    r = await alice.put(f"/v2.0/networks/{network['id']}", json={"network": {"bogus": 1}})
    assert r.status_code == 400
    assert (await alice.delete(f"/v2.0/networks/{network['id']}")).status_code == 204
    assert (await alice.get(f"/v2.0/networks/{network['id']}")).status_code == 404


async def test_deleting_a_network_with_ports_in_use_is_a_conflict(
        alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    await make_port(alice, network["id"], device_id="vm-1", device_owner="compute:nova")
    r = await alice.delete(f"/v2.0/networks/{network['id']}")
    assert r.status_code == 409 and fault(r) == "NetworkInUse"


async def test_ipv4_subnet_defaults(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    subnet = await make_subnet(alice, network["id"], dns_nameservers=["8.8.8.8"],
                               host_routes=[{"destination": "10.5.0.0/16",
                                             "nexthop": "10.0.0.254"}])
    assert subnet["gateway_ip"] == "10.0.0.1"
    assert subnet["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    assert subnet["enable_dhcp"] is True and subnet["dns_nameservers"] == ["8.8.8.8"]
    shown = (await alice.get(f"/v2.0/networks/{network['id']}")).json()["network"]
    assert shown["subnets"] == [subnet["id"]]


async def test_subnet_without_gateway_and_with_pools(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    subnet = await make_subnet(alice, network["id"], gateway_ip=None,
                               allocation_pools=[{"start": "10.0.0.100", "end": "10.0.0.110"}])
    assert subnet["gateway_ip"] is None
    port = await make_port(alice, network["id"])
    ip = port["fixed_ips"][0]["ip_address"]
    assert 100 <= int(ip.rsplit(".", 1)[1]) <= 110


async def test_bad_subnets_are_rejected_with_the_neutron_error(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    cases = [
        ({"cidr": "10.0.0.128/25"}, 400, "InvalidInput"),  # overlaps
        ({"cidr": "10.1.0.0/24", "gateway_ip": "10.2.0.1"}, 400, "InvalidInput"),
        ({"cidr": "not-a-cidr"}, 400, "InvalidInput"),
        ({"cidr": "10.3.0.0/24", "allocation_pools": [{"start": "10.4.0.2",
                                                      "end": "10.4.0.9"}]},
         400, "OutOfBoundsAllocationPool"),
        ({"cidr": "10.5.0.0/24", "gateway_ip": "10.5.0.5",
          "allocation_pools": [{"start": "10.5.0.2", "end": "10.5.0.9"}]},
         409, "GatewayConflictWithAllocationPools"),
        ({"cidr": "10.6.0.0/24", "ip_version": 6}, 400, "InvalidInput"),
        ({"cidr": "10.7.0.0/24", "ipv6_ra_mode": "slaac"}, 400, "InvalidInput"),
        ({"cidr": "10.8.0.0/24", "dns_nameservers": ["x"]}, 400, "InvalidInput"),
        ({"cidr": "10.9.0.0/24", "enable_dhcp": "maybe"}, 400, "InvalidInput"),
        ({"cidr": "10.10.0.0/24", "allocation_pools": "all"}, 400, "InvalidInput"),
    ]
    for attrs, status, kind in cases:
        body = {"network_id": network["id"], "ip_version": 4, **attrs}
        r = await alice.post("/v2.0/subnets", json={"subnet": body})
        assert (r.status_code, fault(r)) == (status, kind), (attrs, r.text)


async def test_ipv6_slaac_subnet_gives_eui64_addresses(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"], "2001:db8:1::/64", ipv6_ra_mode="slaac",
                      ipv6_address_mode="slaac")
    port = await make_port(alice, network["id"], mac_address="fa:16:3e:11:22:33")
    assert port["fixed_ips"][0]["ip_address"] == "2001:db8:1:0:f816:3eff:fe11:2233"


async def test_dual_stack_port_gets_one_address_of_each_family(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    await make_subnet(alice, network["id"], "2001:db8:2::/64",
                      ipv6_address_mode="dhcpv6-stateful", ipv6_ra_mode="dhcpv6-stateful")
    port = await make_port(alice, network["id"])
    versions = sorted(6 if ":" in ip["ip_address"] else 4 for ip in port["fixed_ips"])
    assert versions == [4, 6]


async def test_subnet_update_and_delete_in_use(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    subnet = await make_subnet(alice, network["id"])
    r = await alice.put(f"/v2.0/subnets/{subnet['id']}", json={"subnet": {
        "dns_nameservers": ["1.1.1.1"], "gateway_ip": None, "name": "s"}})
    assert r.status_code == 200 and r.json()["subnet"]["gateway_ip"] is None
    r = await alice.put(f"/v2.0/subnets/{subnet['id']}", json={"subnet": {"cidr": "10.1.0.0/24"}})
    assert r.status_code == 400
    port = await make_port(alice, network["id"])
    r = await alice.delete(f"/v2.0/subnets/{subnet['id']}")
    assert r.status_code == 409 and fault(r) == "SubnetInUse"
    assert (await alice.delete(f"/v2.0/ports/{port['id']}")).status_code == 204
    assert (await alice.delete(f"/v2.0/subnets/{subnet['id']}")).status_code == 204


async def test_junk_bodies_never_cause_a_server_error(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    junk = [None, 1, "x", [], {"network_id": None}, {"network_id": network["id"], "cidr": 5},
            {"network_id": network["id"], "cidr": "10.0.0.0/24", "host_routes": [1]},
            {"network_id": network["id"], "cidr": "10.0.0.0/24", "ip_version": "six"},
            {"network_id": network["id"], "cidr": "10.0.0.0/24", "gateway_ip": 7}]
    for item in junk:
        for path, key in (("/v2.0/subnets", "subnet"), ("/v2.0/ports", "port"),
                          ("/v2.0/networks", "network"), ("/v2.0/routers", "router"),
                          ("/v2.0/security-group-rules", "security_group_rule"),
                          ("/v2.0/floatingips", "floatingip")):
            r = await alice.post(path, json={key: item})
            assert r.status_code < 500, (path, item, r.text)
    r = await alice.post("/v2.0/networks", content=b"{nope", headers={
        "content-type": "application/json"})
    assert r.status_code == 400
