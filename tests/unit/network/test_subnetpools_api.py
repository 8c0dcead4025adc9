"""Subnet pools and subnets that take their CIDR from one."""

from __future__ import annotations

import httpx

from tests.unit.network.harness import fault, make_network


async def make_pool(client: httpx.AsyncClient, **attrs: object) -> dict[str, object]:
    r = await client.post("/v2.0/subnetpools", json={"subnetpool": {
        "name": "pool", "prefixes": ["10.10.0.0/16"], "default_prefixlen": 24, **attrs}})
    assert r.status_code == 201, r.text
    return dict(r.json()["subnetpool"])


async def test_subnets_take_consecutive_free_blocks_from_the_pool(
        alice: httpx.AsyncClient) -> None:
    pool = await make_pool(alice)
    assert (pool["ip_version"], pool["min_prefixlen"], pool["max_prefixlen"]) == (4, 8, 32)
    network = await make_network(alice)
    cidrs = []
    for prefixlen in (None, None, 28):
        body = {"network_id": network["id"], "ip_version": 4, "subnetpool_id": pool["id"]}
        if prefixlen:
            body["prefixlen"] = prefixlen
        r = await alice.post("/v2.0/subnets", json={"subnet": body})
        assert r.status_code == 201, r.text
        assert r.json()["subnet"]["subnetpool_id"] == pool["id"]
        cidrs.append(r.json()["subnet"]["cidr"])
    assert cidrs == ["10.10.0.0/24", "10.10.1.0/24", "10.10.2.0/28"]
    r = await alice.post("/v2.0/subnets", json={"subnet": {
        "network_id": network["id"], "ip_version": 4, "subnetpool_id": pool["id"],
        "cidr": "10.10.1.128/25"}})
    assert r.status_code == 409 and fault(r) == "SubnetAllocationError"
    r = await alice.delete(f"/v2.0/subnetpools/{pool['id']}")
    assert r.status_code == 409 and fault(r) == "SubnetPoolInUse"


async def test_pools_are_private_unless_shared_and_prefixes_only_grow(
        alice: httpx.AsyncClient, bob: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    pool = await make_pool(alice)
    assert (await bob.get(f"/v2.0/subnetpools/{pool['id']}")).status_code == 404
    shared = await make_pool(admin, shared=True, is_default=True)
    assert (await bob.get(f"/v2.0/subnetpools/{shared['id']}")).status_code == 200
    r = await alice.put(f"/v2.0/subnetpools/{pool['id']}", json={"subnetpool": {
        "prefixes": ["10.10.0.0/24"]}})
    assert r.status_code == 400 and fault(r) == "IllegalSubnetPoolPrefixUpdate"
    r = await alice.put(f"/v2.0/subnetpools/{pool['id']}", json={"subnetpool": {
        "prefixes": ["10.10.0.0/16", "10.20.0.0/16"], "name": "bigger"}})
    assert r.status_code == 200 and r.json()["subnetpool"]["name"] == "bigger"
    network = await make_network(bob)
    r = await bob.post("/v2.0/subnets", json={"subnet": {
        "network_id": network["id"], "ip_version": 4, "use_default_subnetpool": True}})
    assert r.status_code == 201 and r.json()["subnet"]["subnetpool_id"] == shared["id"]
    r = await alice.post("/v2.0/subnetpools", json={"subnetpool": {
        "prefixes": ["10.0.0.0/8", "fd00::/8"]}})
    assert r.status_code == 400
