"""Routers and floating IPs."""

from __future__ import annotations

from typing import Any

import httpx

from tests.unit.network.harness import fault, make_network, make_port, make_subnet


async def external(admin: httpx.AsyncClient) -> dict[str, Any]:
    network = await make_network(admin, **{"router:external": True,
                                            "provider:network_type": "flat",
                                            "provider:physical_network": "public"})
    await make_subnet(admin, network["id"], "172.24.4.0/24", enable_dhcp=False)
    return network


async def topology(alice: httpx.AsyncClient, admin: httpx.AsyncClient) -> dict[str, Any]:
    ext = await external(admin)
    network = await make_network(alice)
    subnet = await make_subnet(alice, network["id"])
    r = await alice.post("/v2.0/routers", json={"router": {
        "name": "r1", "external_gateway_info": {"network_id": ext["id"]}}})
    assert r.status_code == 201, r.text
    router = r.json()["router"]
    r = await alice.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                        json={"subnet_id": subnet["id"]})
    assert r.status_code == 200, r.text
    return {"ext": ext, "network": network, "subnet": subnet, "router": router,
            "interface": r.json()}


async def test_router_gateway_and_interface(alice: httpx.AsyncClient,
                                            admin: httpx.AsyncClient) -> None:
    t = await topology(alice, admin)
    gw = t["router"]["external_gateway_info"]
    assert gw["network_id"] == t["ext"]["id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["ip_address"].startswith("172.24.4.")
    assert t["interface"]["subnet_id"] == t["subnet"]["id"]
    port = (await alice.get(f"/v2.0/ports/{t['interface']['port_id']}")).json()["port"]
    assert port["device_owner"] == "network:router_interface"
    assert port["fixed_ips"][0]["ip_address"] == "10.0.0.1"
    r = await alice.delete(f"/v2.0/ports/{port['id']}")
    assert r.status_code == 409 and fault(r) == "L3PortInUse"
    r = await alice.put(f"/v2.0/routers/{t['router']['id']}/add_router_interface",
                        json={"subnet_id": t["subnet"]["id"]})
    assert r.status_code == 400
    r = await alice.delete(f"/v2.0/routers/{t['router']['id']}")
    assert r.status_code == 409 and fault(r) == "RouterInUse"
    r = await alice.put(f"/v2.0/routers/{t['router']['id']}/remove_router_interface",
                        json={"subnet_id": t["subnet"]["id"]})
    assert r.status_code == 200
    assert (await alice.delete(f"/v2.0/routers/{t['router']['id']}")).status_code == 204


async def test_gateway_needs_an_external_network(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    r = await alice.post("/v2.0/routers", json={"router": {
        "external_gateway_info": {"network_id": network["id"]}}})
    assert r.status_code == 400


async def test_interface_by_port_and_static_routes(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    port = await make_port(alice, network["id"], fixed_ips=[{"ip_address": "10.0.0.254"}])
    router = (await alice.post("/v2.0/routers", json={"router": {}})).json()["router"]
    r = await alice.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                        json={"port_id": port["id"]})
    assert r.status_code == 200 and r.json()["port_id"] == port["id"]
    route = {"destination": "192.168.9.0/24", "nexthop": "10.0.0.77"}
    r = await alice.put(f"/v2.0/routers/{router['id']}", json={"router": {"routes": [route]}})
    assert r.status_code == 200 and r.json()["router"]["routes"] == [route]
    r = await alice.put(f"/v2.0/routers/{router['id']}", json={"router": {"routes": [
        {"destination": "192.168.9.0/24", "nexthop": "10.99.0.1"}]}})
    assert r.status_code == 400 and fault(r) == "InvalidRoutes"
    r = await alice.put(f"/v2.0/routers/{router['id']}/remove_router_interface",
                        json={"port_id": port["id"]})
    assert r.status_code == 409 and fault(r) == "RouterInterfaceInUseByRoute"
    r = await alice.put(f"/v2.0/routers/{router['id']}/remove_extraroutes",
                        json={"router": {"routes": [route]}})
    assert r.status_code == 200 and r.json()["router"]["routes"] == []
    r = await alice.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={})
    assert r.status_code == 400


async def test_floating_ip_associate_and_disassociate(alice: httpx.AsyncClient,
                                                      admin: httpx.AsyncClient) -> None:
    t = await topology(alice, admin)
    port = await make_port(alice, t["network"]["id"])
    r = await alice.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": t["ext"]["id"]}})
    assert r.status_code == 201
    fip = r.json()["floatingip"]
    assert fip["status"] == "DOWN" and fip["port_id"] is None
    r = await alice.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {
        "port_id": port["id"]}})
    assert r.status_code == 200
    body = r.json()["floatingip"]
    assert body["router_id"] == t["router"]["id"]
    assert body["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    r = await alice.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": t["ext"]["id"], "port_id": port["id"]}})
    assert r.status_code == 409 and fault(r) == "FloatingIPPortAlreadyAssociated"
    r = await alice.put(f"/v2.0/routers/{t['router']['id']}/remove_router_interface",
                        json={"subnet_id": t["subnet"]["id"]})
    assert r.status_code == 409 and fault(r) == "RouterInterfaceInUseByFloatingIP"
    r = await alice.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {
        "port_id": None}})
    assert r.status_code == 200 and r.json()["floatingip"]["router_id"] is None
    assert (await alice.delete(f"/v2.0/floatingips/{fip['id']}")).status_code == 204


async def test_floating_ips_need_a_router_and_stay_with_their_project(
        alice: httpx.AsyncClient, bob: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    ext = await external(admin)
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    port = await make_port(alice, network["id"])
    r = await alice.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": ext["id"], "port_id": port["id"]}})
    assert r.status_code == 404 and fault(r) == "ExternalGatewayForFloatingIPNotFound"
    fip = (await alice.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": ext["id"], "floating_ip_address": "172.24.4.77"}})).json()
    assert fip["floatingip"]["floating_ip_address"] == "172.24.4.77"
    fid = fip["floatingip"]["id"]
    assert (await bob.get(f"/v2.0/floatingips/{fid}")).status_code == 404
    r = await bob.put(f"/v2.0/floatingips/{fid}", json={"floatingip": {"port_id": None}})
    assert r.status_code == 404
    r = await alice.post("/v2.0/floatingips", json={"floatingip": {
        "floating_network_id": network["id"]}})
    assert r.status_code == 400
