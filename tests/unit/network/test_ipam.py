"""Subnet validation and address choice, without a database."""

from __future__ import annotations

import ipaddress
import random

import pytest

from stratus.errors import BadRequest, Conflict
from stratus.network import ipam


def net(cidr: str) -> ipam.IPNetwork:
    return ipaddress.ip_network(cidr)


def ip(text: str) -> ipam.IPAddress:
    return ipaddress.ip_address(text)


def test_default_pools_exclude_gateway_network_and_broadcast() -> None:
    pools = ipam.default_pools(net("10.0.0.0/24"), ip("10.0.0.1"))
    assert [p.as_dict() for p in pools] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]


def test_a_gateway_in_the_middle_splits_the_default_pool() -> None:
    pools = ipam.default_pools(net("10.0.0.0/29"), ip("10.0.0.3"))
    assert [p.as_dict() for p in pools] == [{"start": "10.0.0.1", "end": "10.0.0.2"},
                                           {"start": "10.0.0.4", "end": "10.0.0.6"}]


def test_ipv6_pools_keep_the_last_address() -> None:
    pools = ipam.default_pools(net("2001:db8::/64"), ip("2001:db8::1"))
    assert pools[0].end == ip("2001:db8::ffff:ffff:ffff:ffff")


def test_a_pool_outside_the_cidr_is_rejected() -> None:
    with pytest.raises(BadRequest) as err:
        ipam.parse_pools([{"start": "10.0.1.1", "end": "10.0.1.5"}], net("10.0.0.0/24"))
    assert err.value.kind == "OutOfBoundsAllocationPool"


def test_overlapping_pools_are_rejected() -> None:
    with pytest.raises(BadRequest) as err:
        ipam.parse_pools([{"start": "10.0.0.2", "end": "10.0.0.9"},
                          {"start": "10.0.0.5", "end": "10.0.0.20"}], net("10.0.0.0/24"))
    assert err.value.kind == "OverlappingAllocationPools"


def test_a_gateway_inside_a_pool_conflicts() -> None:
    pools = ipam.parse_pools([{"start": "10.0.0.1", "end": "10.0.0.9"}], net("10.0.0.0/24"))
    with pytest.raises(Conflict) as err:
        ipam.check_gateway(ip("10.0.0.5"), net("10.0.0.0/24"), pools)
    assert err.value.kind == "GatewayConflictWithAllocationPools"


@pytest.mark.parametrize("gateway", ["10.0.1.1", "10.0.0.0", "10.0.0.255", "2001:db8::1"])
def test_a_gateway_outside_the_subnet_or_on_its_edges_is_invalid(gateway: str) -> None:
    with pytest.raises(BadRequest) as err:
        ipam.check_gateway(ip(gateway), net("10.0.0.0/24"), [])
    assert err.value.kind == "InvalidInput"


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "banana", "10.0.0.5/24", "", "10.0.0.0"])
def test_invalid_cidrs_are_rejected(cidr: str) -> None:
    with pytest.raises(BadRequest):
        ipam.parse_cidr(cidr)


def test_overlap_is_detected_within_a_network() -> None:
    with pytest.raises(BadRequest):
        ipam.check_overlap(net("10.0.0.128/25"), ["10.0.0.0/24"], "n1")
    ipam.check_overlap(net("10.0.1.0/24"), ["10.0.0.0/24"], "n1")


def test_slaac_addresses_follow_eui64() -> None:
    assert str(ipam.eui64(net("2001:db8::/64"), "fa:16:3e:11:22:33")) == \
        "2001:db8::f816:3eff:fe11:2233"


def test_ipv6_modes_must_agree_and_need_a_slash_64() -> None:
    with pytest.raises(BadRequest):
        ipam.check_ipv6_modes(6, "slaac", "dhcpv6-stateful", net("2001:db8::/64"))
    with pytest.raises(BadRequest):
        ipam.check_ipv6_modes(6, None, "slaac", net("2001:db8::/80"))
    with pytest.raises(BadRequest):
        ipam.check_ipv6_modes(4, "slaac", None, net("10.0.0.0/24"))
    ipam.check_ipv6_modes(6, "dhcpv6-stateful", "dhcpv6-stateful", net("2001:db8::/80"))


def test_candidates_are_free_addresses_from_the_first_window() -> None:
    pools = ipam.parse_pools([{"start": "10.0.0.2", "end": "10.0.0.254"}], net("10.0.0.0/24"))
    used = {"10.0.0.2", "10.0.0.4"}
    got = list(ipam.candidates(pools, used, rng=random.Random(1), window=4))
    assert sorted(got) == [ip("10.0.0.3"), ip("10.0.0.5"), ip("10.0.0.6"), ip("10.0.0.7")]


def test_no_candidates_when_the_pool_is_full() -> None:
    pools = ipam.parse_pools([{"start": "10.0.0.2", "end": "10.0.0.3"}], net("10.0.0.0/24"))
    assert list(ipam.candidates(pools, {"10.0.0.2", "10.0.0.3"})) == []


def test_huge_ipv6_pools_are_sampled_not_walked() -> None:
    pools = ipam.default_pools(net("2001:db8::/64"), ip("2001:db8::1"))
    got = list(ipam.candidates(pools, set(), window=8))
    assert len(got) == 8 and all(g in net("2001:db8::/64") for g in got)


def test_dns_and_routes_are_validated() -> None:
    with pytest.raises(BadRequest):
        ipam.check_dns(["8.8.8.8", "8.8.8.8"])
    with pytest.raises(BadRequest):
        ipam.check_host_routes([{"destination": "10.1.0.0/16"}])
    assert ipam.check_host_routes([{"destination": "10.1.0.0/16", "nexthop": "10.0.0.1"}], 4)
