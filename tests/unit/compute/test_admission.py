"""Quotas and claims under concurrency; bad input never yields a 500."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.unit.compute.conftest import Cloud, make_cloud, stop_cloud
from tests.unit.compute.schema_check import check


async def test_100_parallel_creates_into_quota_of_50_admit_exactly_50(cloud: Cloud) -> None:
    async with cloud.client("admin-p1") as admin:
        resp = await admin.put("/os-quota-sets/project-2",
                               json={"quota_set": {"instances": 50, "cores": 1000,
                                                   "ram": 10**6}})
        assert resp.status_code == 200, resp.text
    async with cloud.client("member-p2") as c:
        body = {"server": {"name": "q", "imageRef": cloud.image_id, "flavorRef": "1",
                           "networks": "none"}}
        results = await asyncio.gather(*(c.post("/servers", json=body) for _ in range(100)))
        codes = sorted(r.status_code for r in results)
        assert codes.count(202) == 50 and codes.count(403) + codes.count(413) == 50, codes
        over = next(r for r in results if r.status_code != 202)
        assert "Quota exceeded for instances" in over.json()["overLimit"]["message"]
        limits = (await c.get("/limits")).json()["limits"]["absolute"]
        assert limits["totalInstancesUsed"] == 50


async def test_a_host_never_takes_more_than_it_has_under_parallel_builds(tmp_path: Path) -> None:
    # 4 vCPUs x ratio 4 = 16 one-vCPU servers fit; 200 arrive at once.
    cloud, runtime = await make_cloud(tmp_path, fake_vcpus=4, fake_memory_mb=100000,
                                      quota_instances=-1, quota_cores=-1, quota_ram=-1)
    try:
        async with cloud.client() as c:
            body = {"server": {"name": "x", "imageRef": cloud.image_id, "flavorRef": "1",
                               "networks": "none"}}
            results = await asyncio.gather(*(c.post("/servers", json=body) for _ in range(200)))
            assert all(r.status_code == 202 for r in results)
            ids = [r.json()["server"]["id"] for r in results]
            for _ in range(500):
                servers = (await c.get("/servers/detail")).json()["servers"]
                if all(s["OS-EXT-STS:task_state"] is None for s in servers):
                    break
                await asyncio.sleep(0.05)
            statuses = [s["status"] for s in servers]
            assert statuses.count("ACTIVE") == 16 and statuses.count("ERROR") == 184
            assert len(cloud.driver().guests) == 16
            err = next(s for s in servers if s["status"] == "ERROR")
            assert "VCPUFilter removed 1 host(s)" in err["fault"]["message"]
            assert len(ids) == 200
        async with cloud.client("admin-p1", "2.87") as a:
            hv = (await a.get("/os-hypervisors/detail")).json()["hypervisors"][0]
            assert hv["vcpus_used"] == 16 and hv["running_vms"] == 16
    finally:
        await stop_cloud(runtime)


BAD_BODIES = [
    b"not json",
    b"[]",
    b'{"server": []}',
    b'{"server": {}}',
    b'{"server": {"name": "", "flavorRef": "1", "networks": "none"}}',
    b'{"server": {"name": "x", "flavorRef": "999", "imageRef": "IMG", "networks": "none"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "nope", "networks": "none"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "0e6c1c3a-0000-4000-8000-000000000000", "networks": "none"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "networks": "auto"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "networks": "none", "key_name": "missing"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "networks": "none", "min_count": "many"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "networks": "none", "min_count": 3, "max_count": 2}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "networks": "none", "metadata": {"a": 1}}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "networks": "none", "user_data": "%%%"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "networks": "none", "bogus": 1}}',
    b'{"server": {"name": "x", "flavorRef": true, "imageRef": "IMG", "networks": "none"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "networks": "none", "availability_zone": "mars"}}',
    b'{"server": {"name": "x", "flavorRef": "1", "imageRef": "IMG", "networks": "none"}, "OS-SCH-HNT:scheduler_hints": {"group": "nope"}}',
]


@pytest.mark.parametrize("raw", BAD_BODIES)
async def test_malformed_create_is_a_4xx_fault(cloud: Cloud, raw: bytes) -> None:
    async with cloud.client() as c:
        resp = await c.post("/servers", content=raw.replace(b"IMG", cloud.image_id.encode()),
                            headers={"Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500, resp.text
        (_, fault), = resp.json().items()
        assert fault["code"] == resp.status_code and fault["message"]


BAD_ACTIONS = [
    {"reboot": {}}, {"reboot": {"type": "MEDIUM"}}, {"resize": {}},
    {"resize": {"flavorRef": "nope"}}, {"resize": {"flavorRef": "1"}}, {"createImage": {}},
    {"createImage": "x"}, {"os-migrateLive": {}}, {"rebuild": {}},
    {"rebuild": {"imageRef": "x"}}, {"nonsense": None}, {"os-start": None, "os-stop": None},
    {"changePassword": {}}, {"os-getConsoleOutput": {"length": "x"}},
    {"confirmResize": None}, {"revertResize": None}, {"unshelve": {"availability_zone": "x"}},
    {"lock": {"locked_reason": 5}},
]


@pytest.mark.parametrize("body", BAD_ACTIONS, ids=lambda b: "+".join(b))
async def test_malformed_action_is_a_4xx_fault(cloud: Cloud, body: dict[str, object]) -> None:
    async with cloud.client("admin-p1") as c:
        s = await cloud.create(c)
        resp = await c.post(f"/servers/{s['id']}/action", json=body)
        assert 400 <= resp.status_code < 500, resp.text
        (_, fault), = resp.json().items()
        assert fault["code"] == resp.status_code


async def test_unknown_and_foreign_servers_are_404(cloud: Cloud) -> None:
    async with cloud.client("member-p1") as c, cloud.client("member-p2") as other:
        s = await cloud.create(c)
        for client, path in ((c, "/servers/nope"), (other, f"/servers/{s['id']}")):
            resp = await client.get(path)
            assert resp.status_code == 404
            assert resp.json()["itemNotFound"]["code"] == 404
        assert (await other.post(f"/servers/{s['id']}/action",
                                 json={"os-stop": None})).status_code == 404
        assert (await other.delete(f"/servers/{s['id']}")).status_code == 404


async def test_reader_cannot_create(cloud: Cloud) -> None:
    async with cloud.client("reader-p1") as c:
        resp = await c.post("/servers", json={"server": {"name": "x"}})
        assert resp.status_code == 403 and "forbidden" in resp.json()


@pytest.mark.parametrize("header,expected", [
    ({}, "2.1"), ({"OpenStack-API-Version": "compute 2.53"}, "2.53"),
    ({"X-OpenStack-Nova-API-Version": "2.30"}, "2.30"),
    ({"OpenStack-API-Version": "compute latest"}, "2.96"),
])
async def test_microversion_is_negotiated_and_echoed(cloud: Cloud, header: dict[str, str],
                                                     expected: str) -> None:
    async with cloud.client(version=None) as c:
        resp = await c.get("/flavors", headers=header)
        assert resp.status_code == 200
        assert resp.headers["openstack-api-version"] == f"compute {expected}"
        assert resp.headers["x-openstack-nova-api-version"] == expected
        assert "OpenStack-API-Version" in resp.headers["vary"]


@pytest.mark.parametrize("bad", ["compute 2.97", "compute 3.0", "compute 1.9", "compute x"])
async def test_microversion_out_of_range_is_406(cloud: Cloud, bad: str) -> None:
    async with cloud.client(version=None) as c:
        resp = await c.get("/flavors", headers={"OpenStack-API-Version": bad})
        assert resp.status_code == 406


async def test_version_documents(cloud: Cloud) -> None:
    async with cloud.client(version=None) as c:
        root = await c.get("http://127.0.0.1:8774/")
        check("versions.list_versions", "2.1", root.status_code, root.json())
        one = await c.get("http://127.0.0.1:8774/v2.1/")
        check("versions.get_one_version", "2.1", one.status_code, one.json())
