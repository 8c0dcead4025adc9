"""Port pages cut by the database give what the general (in-Python) pager gives."""

from __future__ import annotations

from typing import Any

import httpx

from tests.unit.network.harness import make_network, make_port, make_subnet


async def walk(client: httpx.AsyncClient, params: dict[str, str]) -> list[list[str]]:
    """Follow ``next`` links from the first page; the ids of each page."""
    pages: list[list[str]] = []
    url: str | None = "/v2.0/ports"
    query: Any = params
    while url:
        body = (await client.get(url, params=query)).json()
        pages.append([p["id"] for p in body["ports"]])
        nxt = [link["href"] for link in body.get("ports_links", []) if link["rel"] == "next"]
        url, query = (nxt[0].split("9696", 1)[-1].split("://net", 1)[-1], None) if nxt \
            else (None, None)
    return pages


async def test_sql_and_python_pagers_agree(alice: httpx.AsyncClient) -> None:
    network = await make_network(alice)
    await make_subnet(alice, network["id"])
    for _ in range(7):
        await make_port(alice, network["id"])
    for sort in ({}, {"sort_key": "id", "sort_dir": "desc"}):
        sql = await walk(alice, {"limit": "3", "network_id": network["id"], **sort})
        # admin_state_up is not pushed to SQL, so this takes the general pager.
        python = await walk(alice, {"limit": "3", "network_id": network["id"],
                                    "admin_state_up": "true", **sort})
        assert sql == python and [len(p) for p in sql] == [3, 3, 1], sort
        last = sql[1][0]
        back = (await alice.get("/v2.0/ports", params={
            "limit": "3", "marker": last, "page_reverse": "true", "network_id": network["id"],
            **sort})).json()["ports"]
        assert [p["id"] for p in back] == sql[0]
    r = await alice.get("/v2.0/ports", params={"limit": "2", "marker": "nope"})
    assert r.status_code == 400
