"""os-aggregates: CRUD, hosts, metadata, and zones made of aggregates."""

from __future__ import annotations

import pytest

from tests.unit.compute.conftest import Cloud
from tests.unit.compute.schema_check import check


@pytest.mark.parametrize("version", ["2.1", "2.41", "2.96"])
async def test_aggregate_bodies_match_tempest(cloud: Cloud, version: str) -> None:
    host = next(iter(cloud.hosts))
    async with cloud.client("admin-p1", version) as c:
        resp = await c.post("/os-aggregates", json={"aggregate": {"name": "a1"}})
        check("aggregates.create_aggregate", version, resp.status_code, resp.json())
        agg = resp.json()["aggregate"]["id"]
        assert (await c.post("/os-aggregates", json={"aggregate": {"name": "a1"}})
                ).status_code == 409
        resp = await c.put(f"/os-aggregates/{agg}", json={"aggregate": {"name": "a2"}})
        check("aggregates.update_aggregate", version, resp.status_code, resp.json())
        resp = await c.post(f"/os-aggregates/{agg}/action", json={"add_host": {"host": host}})
        check("aggregates.aggregate_add_remove_host", version, resp.status_code, resp.json())
        assert resp.json()["aggregate"]["hosts"] == [host]
        assert (await c.post(f"/os-aggregates/{agg}/action",
                             json={"add_host": {"host": host}})).status_code == 409
        assert (await c.post(f"/os-aggregates/{agg}/action",
                             json={"add_host": {"host": "nope"}})).status_code == 404
        resp = await c.post(f"/os-aggregates/{agg}/action",
                            json={"set_metadata": {"metadata": {"ssd": "true"}}})
        check("aggregates.aggregate_set_metadata", version, resp.status_code, resp.json())
        check("aggregates.list_aggregates", version, 200, (await c.get("/os-aggregates")).json())
        check("aggregates.get_aggregate", version, 200,
              (await c.get(f"/os-aggregates/{agg}")).json())
        assert (await c.delete(f"/os-aggregates/{agg}")).status_code == 400  # still has a host
        resp = await c.post(f"/os-aggregates/{agg}/action",
                            json={"remove_host": {"host": host}})
        assert resp.status_code == 200 and resp.json()["aggregate"]["hosts"] == []
        assert (await c.post(f"/os-aggregates/{agg}/action",
                             json={"remove_host": {"host": host}})).status_code == 404
        assert (await c.delete(f"/os-aggregates/{agg}")).status_code == 200
        assert (await c.get(f"/os-aggregates/{agg}")).status_code == 404
    async with cloud.client("member-p1", version) as c:
        assert (await c.post("/os-aggregates", json={"aggregate": {"name": "x"}})
                ).status_code == 403


async def test_a_zone_from_an_aggregate_places_servers_and_is_listed(cloud: Cloud) -> None:
    host = next(iter(cloud.hosts))
    async with cloud.client("admin-p1") as c:
        resp = await c.post("/os-aggregates", json={"aggregate": {
            "name": "rack1", "availability_zone": "zone-a"}})
        agg = resp.json()["aggregate"]["id"]
        await c.post(f"/os-aggregates/{agg}/action", json={"add_host": {"host": host}})
        zones = (await c.get("/os-availability-zone")).json()["availabilityZoneInfo"]
        assert [z["zoneName"] for z in zones] == ["zone-a"]
        other = (await c.post("/os-aggregates", json={"aggregate": {
            "name": "rack2", "availability_zone": "zone-b"}})).json()["aggregate"]["id"]
        # a host is in one zone only
        assert (await c.post(f"/os-aggregates/{other}/action",
                             json={"add_host": {"host": host}})).status_code == 400
        services = (await c.get("/os-services?binary=nova-compute")).json()["services"]
        assert services[0]["zone"] == "zone-a"
    async with cloud.client() as c:
        server = await cloud.create(c, availability_zone="zone-a")
        assert server["OS-EXT-AZ:availability_zone"] == "zone-a"
        server = await cloud.create(c, name="vm2")
        assert server["OS-EXT-AZ:availability_zone"] == "zone-a"
        resp = await c.post("/servers", json={"server": {
            "name": "x", "imageRef": cloud.image_id, "flavorRef": "1", "networks": "none",
            "availability_zone": "zone-c"}})
        assert resp.status_code == 400
