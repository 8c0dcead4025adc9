"""The must-show `openstack network/subnet/port/router/floating ip/security group/quota`
commands, run by the real python-openstackclient in interactive mode (one process
per script, as a user typing them would)."""

from __future__ import annotations

from typing import Any

from tests.functional.network.conftest import NetCloud
from tests.support.openstack import unique


def by_name(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in rows if r.get("Name", r.get("name")) == name)


def quota_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {r["Resource"]: r["Limit"] for r in rows}


def test_admin_network_commands(net_cloud: NetCloud) -> None:
    c = net_cloud
    pub, shared = unique("pub"), unique("shared")
    out = c.cli(c.admin, [
        f"network create --external --provider-network-type flat "
        f"--provider-physical-network {pub} {pub} -f json",
        f"subnet create --network {pub} --subnet-range 203.0.113.0/24 --no-dhcp "
        f"--gateway 203.0.113.1 --allocation-pool start=203.0.113.10,end=203.0.113.99 "
        f"{pub}-v4 -f json",
        f"network create --share {shared} -f json",
        f"network set --name {shared}-renamed --description described --no-share {shared}",
        f"network show {shared}-renamed -f json",
        "network list --long -f json",
        "network list --external -f json",
        "extension list --network -f json",
        f"quota set --networks 7 --ports 42 --floating-ips 3 {c.carol.project_id}",
        f"quota show --network {c.carol.project_id} -f json",
        f"network delete {shared}-renamed",
        f"network show {shared}-renamed -f json",
    ])
    (external, pub_subnet, shared_net, shown, long_list, external_list, extensions,
     quota) = out.docs
    assert out.errors.count("\n") == 0 and "No Network found" in out.errors, out.errors

    assert external["router:external"] is True and external["shared"] is False
    assert external["provider:network_type"] == "flat"
    assert external["provider:physical_network"] == pub
    assert pub_subnet["allocation_pools"] == [{"start": "203.0.113.10", "end": "203.0.113.99"}]
    assert pub_subnet["enable_dhcp"] is False and pub_subnet["gateway_ip"] == "203.0.113.1"
    assert shared_net["shared"] is True
    assert shown["id"] == shared_net["id"] and shown["shared"] is False
    assert shown["description"] == "described" and shown["revision_number"] >= 1

    row = by_name(long_list, pub)
    assert row["Router Type"] is True and row["Network Type"] == "flat"
    assert row["Subnets"] == [pub_subnet["id"]] and row["Status"] == "ACTIVE"
    assert {r["Name"] for r in long_list} >= {pub, f"{shared}-renamed"}
    assert pub in {r["Name"] for r in external_list}
    assert f"{shared}-renamed" not in {r["Name"] for r in external_list}

    aliases = {e["Alias"] for e in extensions}
    assert {"router", "external-net", "security-group", "quotas", "binding",
            "standard-attr-tag", "provider"} <= aliases

    limits = quota_of(quota)
    assert (limits["networks"], limits["ports"], limits["floating_ips"]) == (7, 42, 3)


def test_member_builds_a_routed_network_with_a_floating_ip(net_cloud: NetCloud,
                                                           public_net: dict[str, Any]) -> None:
    c, ext = net_cloud, public_net["id"]
    n, r, sg = unique("net"), unique("router"), unique("sg")
    out = c.cli(c.alice, [
        f"network create {n} -f json",
        f"subnet create --network {n} --subnet-range 10.10.0.0/24 --gateway 10.10.0.1 "
        f"--allocation-pool start=10.10.0.100,end=10.10.0.199 --dns-nameserver 192.0.2.53 "
        f"{n}-v4 -f json",
        f"subnet create --network {n} --ip-version 6 --ipv6-ra-mode slaac "
        f"--ipv6-address-mode slaac --subnet-range fd00:10::/64 {n}-v6 -f json",
        f"port create --network {n} --fixed-ip subnet={n}-v4,ip-address=10.10.0.150 "
        f"{n}-port -f json",
        f"router create {r} -f json",
        f"router set --external-gateway {ext} {r}",
        f"router add subnet {r} {n}-v4",
        f"floating ip create {ext} -f json",
        f"security group create {sg} -f json",
        f"security group rule create --protocol tcp --dst-port 22 {sg} -f json",
        f"router show {r} -f json",
        "network list -f json",
        f"subnet pool create --pool-prefix 10.40.0.0/16 --default-prefix-length 26 {n}-pool "
        "-f json",
        f"subnet create --network {n} --subnet-pool {n}-pool {n}-pooled -f json",
    ])
    assert not out.errors, out.errors
    (net, v4, v6, port, router, fip, group, rule, router_shown, networks, pool,
     pooled) = out.docs

    assert net["shared"] is False and net["project_id"] == c.alice.project_id
    assert net["provider:network_type"] is None  # admin-only attributes are hidden
    assert v4["gateway_ip"] == "10.10.0.1" and v4["dns_nameservers"] == ["192.0.2.53"]
    assert v6["ipv6_ra_mode"] == "slaac" and v6["ipv6_address_mode"] == "slaac"
    assert v6["allocation_pools"] == [{"start": "fd00:10::2",
                                       "end": "fd00:10::ffff:ffff:ffff:ffff"}]
    by_subnet = {ip["subnet_id"]: ip["ip_address"] for ip in port["fixed_ips"]}
    assert by_subnet[v4["id"]] == "10.10.0.150"
    assert by_subnet[v6["id"]].startswith("fd00:10::")  # SLAAC adds itself to --fixed-ip
    assert port["status"] == "DOWN" and len(port["security_group_ids"]) == 1
    assert router["external_gateway_info"] is None
    gateway = router_shown["external_gateway_info"]
    assert gateway["network_id"] == ext and gateway["enable_snat"] is True
    assert [i["subnet_id"] for i in router_shown["interfaces_info"]] == [v4["id"]]
    assert router_shown["interfaces_info"][0]["ip_address"] == "10.10.0.1"
    assert fip["floating_network_id"] == ext and fip["port_id"] is None
    assert fip["floating_ip_address"].startswith("198.51.100.")
    assert [(x["direction"], x["ethertype"]) for x in group["rules"]] == [
        ("egress", "IPv4"), ("egress", "IPv6")] or len(group["rules"]) == 2
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"]) == ("tcp", 22, 22)
    assert rule["direction"] == "ingress" and rule["security_group_id"] == group["id"]
    assert n in {x["Name"] for x in networks}
    assert pool["prefixes"] == ["10.40.0.0/16"] and pool["default_prefixlen"] == 26
    assert pooled["cidr"] == "10.40.0.0/26" and pooled["subnetpool_id"] == pool["id"]

    fip_ip = fip["floating_ip_address"]
    out = c.cli(c.alice, [
        f"floating ip set --port {port['id']} {fip_ip}",
        f"floating ip show {fip_ip} -f json",
        f"security group rule create --protocol tcp --dst-port 22 {sg} -f json",
        f"router remove subnet {r} {n}-v4",
    ])
    (associated,) = out.docs
    assert associated["port_id"] == port["id"] and associated["fixed_ip_address"] == "10.10.0.150"
    assert associated["router_id"] == router["id"] and associated["status"] == "ACTIVE"
    assert "Security group rule already exists" in out.errors, out.errors
    assert "a floating IP uses it" in out.errors, out.errors

    out = c.cli(c.alice, [
        f"floating ip unset --port {fip_ip}",
        f"floating ip show {fip_ip} -f json",
        f"router remove subnet {r} {n}-v4",
        f"router unset --external-gateway {r}",
        f"router show {r} -f json",
        f"floating ip delete {fip_ip}",
        f"port delete {n}-port",
        f"router delete {r}",
        f"security group delete {sg}",
        f"network delete {n}",
        f"subnet pool delete {n}-pool",
        "network list -f json",
    ])
    assert not out.errors, out.errors
    unset, router_after, networks = out.docs
    assert unset["port_id"] is None and unset["fixed_ip_address"] is None
    assert router_after["external_gateway_info"] is None
    assert router_after["interfaces_info"] == []
    assert n not in {x["Name"] for x in networks}


def test_member_cannot_share_or_externalise(net_cloud: NetCloud) -> None:
    c = net_cloud
    out = c.cli(c.alice, [f"network create --share {unique('x')} -f json",
                          f"network create --external {unique('x')} -f json"])
    assert out.docs == []
    assert out.errors.count("disallowed by policy") == 2, out.errors
