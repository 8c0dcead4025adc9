"""Get-me-a-network: one topology per project, created on first GET, joined to
the external network when there is one."""

from __future__ import annotations

import asyncio

import httpx

from tests.unit.network.harness import PROJECT_A, PROJECT_B


async def _external(admin: httpx.AsyncClient) -> str:
    net = (await admin.post("/v2.0/networks", json={"network": {
        "name": "public", "router:external": True, "is_default": True}})).json()["network"]
    r = await admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "172.24.4.0/24", "ip_version": 4}})
    assert r.status_code == 201, r.text
    return str(net["id"])


async def test_concurrent_first_gets_make_one_topology_with_a_router_to_the_outside(
        admin: httpx.AsyncClient, alice: httpx.AsyncClient) -> None:
    ext = await _external(admin)
    answers = await asyncio.gather(*(alice.get(f"/v2.0/auto-allocated-topology/{PROJECT_A}")
                                     for _ in range(5)))
    assert {r.status_code for r in answers} == {200}
    ids = {r.json()["auto_allocated_topology"]["id"] for r in answers}
    assert len(ids) == 1
    nets = (await alice.get("/v2.0/networks?name=auto_allocated_network")).json()["networks"]
    assert [n["id"] for n in nets] == list(ids) and nets[0]["subnets"]
    router, = (await alice.get("/v2.0/routers")).json()["routers"]
    assert router["external_gateway_info"]["network_id"] == ext
    ext_list = (await alice.get("/v2.0/extensions")).json()["extensions"]
    assert "auto-allocated-topology" in {e["alias"] for e in ext_list}


async def test_dry_run_creates_nothing_and_others_projects_are_forbidden(
        alice: httpx.AsyncClient, bob: httpx.AsyncClient) -> None:
    r = await alice.get(f"/v2.0/auto-allocated-topology/{PROJECT_A}?fields=dry-run")
    assert r.json()["auto_allocated_topology"]["id"] == "dry-run=pass"
    assert (await alice.get("/v2.0/networks")).json()["networks"] == []
    r = await bob.get(f"/v2.0/auto-allocated-topology/{PROJECT_A}")
    assert r.status_code == 403
    assert (await bob.get(f"/v2.0/auto-allocated-topology/{PROJECT_B}")).status_code == 200


async def test_delete_removes_the_topology_and_the_next_get_rebuilds_it(
        admin: httpx.AsyncClient, alice: httpx.AsyncClient) -> None:
    await _external(admin)
    first = (await alice.get(f"/v2.0/auto-allocated-topology/{PROJECT_A}")).json()
    r = await alice.delete(f"/v2.0/auto-allocated-topology/{PROJECT_A}")
    assert r.status_code == 204
    assert (await alice.get("/v2.0/routers")).json()["routers"] == []
    assert (await alice.get("/v2.0/networks?name=auto_allocated_network")
            ).json()["networks"] == []
    again = (await alice.get(f"/v2.0/auto-allocated-topology/{PROJECT_A}")).json()
    assert again["auto_allocated_topology"]["id"] != first["auto_allocated_topology"]["id"]
