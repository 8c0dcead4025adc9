"""Two projects on the real all-in-one: neither sees, uses or takes what is the other's."""

from __future__ import annotations

from typing import Any

import httpx

from tests.functional.network.conftest import NetCloud, created, fault


def build(http: httpx.Client, cidr: str, public: str | None = None) -> dict[str, Any]:
    """A network, subnet, port, security group and (with ``public``) a router and floating IP."""
    out: dict[str, Any] = {}
    out["net"] = created(http.post("/networks", json={"network": {"name": "iso"}}), "network")
    out["subnet"] = created(http.post("/subnets", json={"subnet": {
        "network_id": out["net"]["id"], "cidr": cidr, "ip_version": 4}}), "subnet")
    out["port"] = created(http.post("/ports", json={"port": {
        "network_id": out["net"]["id"]}}), "port")
    out["sg"] = created(http.post("/security-groups", json={"security_group": {
        "name": "iso"}}), "security_group")
    if public:
        out["router"] = created(http.post("/routers", json={"router": {
            "name": "iso", "external_gateway_info": {"network_id": public}}}), "router")
        assert http.put(f"/routers/{out['router']['id']}/add_router_interface",
                        json={"subnet_id": out["subnet"]["id"]}).status_code == 200
        out["fip"] = created(http.post("/floatingips", json={"floatingip": {
            "floating_network_id": public}}), "floatingip")
    return out


def test_a_project_cannot_see_or_use_anothers_network(net_cloud: NetCloud,
                                                      public_net: dict[str, Any]) -> None:
    c = net_cloud
    with c.http(c.alice) as alice, c.http(c.bob) as bob:
        a = build(alice, "10.50.0.0/24", public_net["id"])
        b = build(bob, "10.60.0.0/24", public_net["id"])
        net_id, port_id = a["net"]["id"], a["port"]["id"]

        assert fault(bob.get(f"/networks/{net_id}"), 404) == "NetworkNotFound"
        assert fault(bob.get(f"/subnets/{a['subnet']['id']}"), 404) == "SubnetNotFound"
        assert fault(bob.get(f"/ports/{port_id}"), 404) == "PortNotFound"
        assert fault(bob.get(f"/routers/{a['router']['id']}"), 404) == "RouterNotFound"
        assert fault(bob.get(f"/floatingips/{a['fip']['id']}"), 404) == "FloatingIPNotFound"
        assert fault(bob.get(f"/security-groups/{a['sg']['id']}"), 404) == \
            "SecurityGroupNotFound"
        for path, key, mine in (("/networks", "networks", net_id), ("/ports", "ports", port_id),
                                ("/subnets", "subnets", a["subnet"]["id"]),
                                ("/routers", "routers", a["router"]["id"]),
                                ("/floatingips", "floatingips", a["fip"]["id"]),
                                ("/security-groups", "security_groups", a["sg"]["id"]),
                                ("/security-group-rules", "security_group_rules",
                                 a["sg"]["security_group_rules"][0]["id"])):
            listed = {i["id"] for i in bob.get(path).json()[key]}
            assert mine not in listed, path
            assert {i["project_id"] for i in bob.get(path).json()[key]} <= {
                c.bob.project_id, c.admin.project_id}, path

        # Attach to it: a port, a subnet, a router interface; use its security group.
        assert fault(bob.post("/ports", json={"port": {"network_id": net_id}}), 404) == \
            "NetworkNotFound"
        fault(bob.post("/subnets", json={"subnet": {"network_id": net_id, "ip_version": 4,
                                                    "cidr": "10.70.0.0/24"}}), 404)
        fault(bob.put(f"/routers/{b['router']['id']}/add_router_interface",
                      json={"subnet_id": a["subnet"]["id"]}), 404)
        fault(bob.put(f"/routers/{b['router']['id']}/add_router_interface",
                      json={"port_id": port_id}), 404)
        fault(bob.post("/ports", json={"port": {"network_id": b["net"]["id"],
                                                "security_groups": [a["sg"]["id"]]}}), 404)
        fault(bob.post("/security-group-rules", json={"security_group_rule": {
            "security_group_id": a["sg"]["id"], "direction": "ingress"}}), 404)

        # Change or delete it.
        for path in (f"/networks/{net_id}", f"/ports/{port_id}",
                     f"/subnets/{a['subnet']['id']}", f"/routers/{a['router']['id']}"):
            key = path.split("/")[1][:-1]
            assert bob.put(path, json={key: {"name": "mine"}}).status_code == 404, path
            assert bob.delete(path).status_code == 404, path
        assert bob.put(f"/networks/{net_id}/tags/mine").status_code == 404

        # Take its floating IP, or point one at its port.
        fault(bob.put(f"/floatingips/{a['fip']['id']}", json={"floatingip": {
            "port_id": b["port"]["id"]}}), 404)
        fault(bob.delete(f"/floatingips/{a['fip']['id']}"), 404)
        fault(bob.put(f"/floatingips/{b['fip']['id']}", json={"floatingip": {
            "port_id": port_id}}), 404)
        fault(bob.post("/floatingips", json={"floatingip": {
            "floating_network_id": public_net["id"],
            "floating_ip_address": a["fip"]["floating_ip_address"]}}), 409)
        # ...nor see it through a filter.
        assert bob.get("/floatingips", params={
            "floating_ip_address": a["fip"]["floating_ip_address"]}).json()["floatingips"] == []
        assert bob.get("/ports", params={"network_id": net_id}).json()["ports"] == []

        # Nothing of alice's changed.
        assert alice.get(f"/networks/{net_id}").json()["network"]["name"] == "iso"
        assert alice.get(f"/floatingips/{a['fip']['id']}").json()["floatingip"]["port_id"] \
            is None


def test_shared_network_is_usable_but_other_projects_ports_stay_private(
        net_cloud: NetCloud) -> None:
    c = net_cloud
    with c.http(c.admin) as admin, c.http(c.alice) as alice, c.http(c.bob) as bob:
        shared = created(admin.post("/networks", json={"network": {
            "name": "iso-shared", "shared": True}}), "network")
        created(admin.post("/subnets", json={"subnet": {
            "network_id": shared["id"], "cidr": "10.80.0.0/24", "ip_version": 4}}), "subnet")
        a_port = created(alice.post("/ports", json={"port": {"network_id": shared["id"]}}),
                         "port")
        b_port = created(bob.post("/ports", json={"port": {"network_id": shared["id"]}}), "port")
        assert fault(bob.get(f"/ports/{a_port['id']}"), 404) == "PortNotFound"
        listed = {p["id"] for p in bob.get("/ports", params={
            "network_id": shared["id"]}).json()["ports"]}
        assert listed == {b_port["id"]}
        # A member cannot subnet or reconfigure a network it only shares.
        fault(bob.post("/subnets", json={"subnet": {"network_id": shared["id"],
                                                    "ip_version": 4,
                                                    "cidr": "10.81.0.0/24"}}), 403)
        assert bob.put(f"/networks/{shared['id']}", json={"network": {
            "name": "mine"}}).status_code in (403, 404)
        # Un-sharing while others use it is refused.
        assert fault(admin.put(f"/networks/{shared['id']}", json={"network": {
            "shared": False}}), 409) == "InvalidSharedSetting"
        # A network with ports in use cannot be deleted.
        assert fault(admin.delete(f"/networks/{shared['id']}"), 409) == "NetworkInUse"


def test_openstacksdk_sees_only_its_projects_resources(net_cloud: NetCloud) -> None:
    c = net_cloud
    alice, bob = c.alice.sdk(), c.bob.sdk()
    try:
        net = alice.network.create_network(name="sdk-private")
        alice.network.create_subnet(network_id=net.id, cidr="10.90.0.0/24", ip_version=4)
        port = alice.network.create_port(network_id=net.id)
        assert bob.network.find_network(net.id) is None
        assert bob.network.find_port(port.id) is None
        assert net.id not in {n.id for n in bob.network.networks()}
        assert net.id in {n.id for n in alice.network.networks()}
        groups = list(bob.network.security_groups(name="default"))
        assert len(groups) == 1 and groups[0].project_id == c.bob.project_id
        alice.network.delete_port(port)
        alice.network.delete_network(net)
        assert alice.network.find_network(net.id) is None
    finally:
        alice.close()
        bob.close()
