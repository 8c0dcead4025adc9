"""A live migration in progress: its progress on the migration record,
force-complete and abort (servers/{id}/migrations), with the fake driver
holding the migration open through its latency knob."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.compute.conftest import Cloud, make_cloud, stop_cloud
from tests.unit.compute.schema_check import check


@pytest.fixture
async def two_hosts(tmp_path: Path) -> AsyncIterator[Cloud]:
    c, runtime = await make_cloud(tmp_path, fake_hosts=2, migration_progress_interval=0.05)
    try:
        yield c
    finally:
        await stop_cloud(runtime)


async def _running_migration(cloud: Cloud, c: httpx.AsyncClient, seconds: float
                             ) -> tuple[dict[str, Any], dict[str, Any]]:
    s = await cloud.create(c)
    source = s["OS-EXT-SRV-ATTR:host"]
    cloud.driver(source).latency["migrate"] = seconds
    resp = await cloud.action(c, s["id"], "os-migrateLive",
                              {"host": None, "block_migration": "auto"})
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        body = (await c.get(f"/servers/{s['id']}/migrations")).json()
        running = [m for m in body["migrations"] if m["status"] == "running"]
        if running and running[0]["memory_processed_bytes"]:
            check("servers.list_live_migrations", "2.96", 200, body)
            return s, running[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the live migration never showed progress")


async def test_progress_reaches_the_migration_record(two_hosts: Cloud) -> None:
    cloud = two_hosts
    async with cloud.client("admin-p1") as c:
        s, mig = await _running_migration(cloud, c, 1.0)
        assert mig["memory_total_bytes"] == 64 << 20  # flavor 1's RAM
        assert 0 < mig["memory_processed_bytes"] <= mig["memory_total_bytes"]
        assert mig["memory_remaining_bytes"] == (mig["memory_total_bytes"]
                                                 - mig["memory_processed_bytes"])
        done = await cloud.wait(c, s["id"], "ACTIVE")
        assert done["OS-EXT-SRV-ATTR:host"] != s["OS-EXT-SRV-ATTR:host"]


async def test_force_complete_finishes_a_running_live_migration(two_hosts: Cloud) -> None:
    cloud = two_hosts
    async with cloud.client("admin-p1") as c:
        s, mig = await _running_migration(cloud, c, 30.0)
        started = time.monotonic()
        resp = await c.post(f"/servers/{s['id']}/migrations/{mig['id']}/action",
                            json={"force_complete": None})
        assert resp.status_code == 202, resp.text
        done = await cloud.wait(c, s["id"], "ACTIVE")
        assert time.monotonic() - started < 5
        assert done["OS-EXT-SRV-ATTR:host"] != s["OS-EXT-SRV-ATTR:host"]
        migs = (await c.get(f"/os-migrations?instance_uuid={s['id']}")).json()["migrations"]
        assert migs[0]["status"] == "completed"
        resp = await c.post(f"/servers/{s['id']}/migrations/{mig['id']}/action",
                            json={"force_complete": None})
        assert resp.status_code in (400, 409)


async def test_abort_leaves_the_server_on_its_source(two_hosts: Cloud) -> None:
    cloud = two_hosts
    async with cloud.client("admin-p1") as c:
        s, mig = await _running_migration(cloud, c, 30.0)
        source = s["OS-EXT-SRV-ATTR:host"]
        resp = await c.delete(f"/servers/{s['id']}/migrations/{mig['id']}")
        assert resp.status_code == 202, resp.text
        done = await cloud.wait(c, s["id"], "ACTIVE")
        assert done["OS-EXT-SRV-ATTR:host"] == source and "fault" not in done
        assert s["id"] in cloud.driver(source).guests
        migs = (await c.get(f"/os-migrations?instance_uuid={s['id']}")).json()["migrations"]
        assert migs[0]["status"] == "cancelled"
        hv = (await c.get("/os-hypervisors/detail", headers={
            "OpenStack-API-Version": "compute 2.87"})).json()["hypervisors"]
        used = {h["hypervisor_hostname"]: h["running_vms"] for h in hv}
        assert sorted(used.values()) == [0, 1]  # the destination's claim was given back
        # Nova: the server is no longer migrating, so there is nothing to abort (409)
        resp = await c.delete(f"/servers/{s['id']}/migrations/{mig['id']}")
        assert resp.status_code == 409, resp.text
        assert "task_state" in resp.json()["conflictingRequest"]["message"]


async def test_abort_and_force_complete_follow_novas_rules(two_hosts: Cloud) -> None:
    cloud = two_hosts
    async with cloud.client("admin-p1") as c:
        other = await cloud.create(c)
        s, mig = await _running_migration(cloud, c, 30.0)
        base = f"/servers/{s['id']}/migrations/{mig['id']}"
        theirs = f"/servers/{other['id']}/migrations/{mig['id']}"
        v = {"OpenStack-API-Version": "compute 2.23"}
        assert (await c.delete(base, headers=v)).status_code == 404  # abort is 2.24+
        v = {"OpenStack-API-Version": "compute 2.22"}
        assert (await c.get(base, headers=v)).status_code == 404  # show is 2.23+
        shown = await c.get(base)
        assert shown.status_code == 200 and shown.json()["migration"]["status"] == "running"
        # Another server's migration: abort 404; force-complete 400; while the other
        # server is not migrating at all, both are 409 first.
        other_id = other["id"]
        assert (await c.delete(theirs)).status_code == 409
        assert (await c.post(f"{theirs}/action", json={"force_complete": None})
                ).status_code == 409
        assert (await c.delete(f"/servers/{s['id']}/migrations/999999")).status_code == 404
        r = await c.post(f"/servers/{s['id']}/migrations/999999/action",
                         json={"force_complete": None})
        assert r.status_code == 400, r.text
        for bad in ({"force_complete": {}}, {"force": None}, []):
            r = await c.post(f"{base}/action", json=bad)
            assert r.status_code == 400 and "badRequest" in r.json(), (bad, r.text)
        assert (await c.get(f"/servers/{other_id}/migrations/{mig['id']}")).status_code == 404
        assert (await c.delete(base)).status_code == 202
        done = await cloud.wait(c, s["id"], "ACTIVE")
        assert done["OS-EXT-SRV-ATTR:host"] == s["OS-EXT-SRV-ATTR:host"]
        gone = await c.get(base)
        assert gone.status_code == 404 and "itemNotFound" in gone.json()
        r = await c.post(f"{base}/action", json={"force_complete": None})
        assert r.status_code == 409 and "conflictingRequest" in r.json()


async def test_abort_before_it_runs_needs_2_65_and_cancels_it(two_hosts: Cloud) -> None:
    cloud = two_hosts
    async with cloud.client("admin-p1") as c:
        s = await cloud.create(c)
        source = s["OS-EXT-SRV-ATTR:host"]
        dest = next(h for h in cloud.hosts if h != source)
        cloud.driver(dest).latency["prepare_incoming"] = 1.0
        resp = await cloud.action(c, s["id"], "os-migrateLive",
                                  {"host": None, "block_migration": "auto"})
        assert resp.status_code == 202, resp.text
        deadline = time.monotonic() + 5
        while True:
            found = (await c.get(f"/servers/{s['id']}/migrations")).json()["migrations"]
            if found and found[0]["status"] == "preparing":
                break
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.02)
        url = f"/servers/{s['id']}/migrations/{found[0]['id']}"
        r = await c.delete(url, headers={"OpenStack-API-Version": "compute 2.64"})
        assert r.status_code == 400 and "preparing" in r.json()["badRequest"]["message"]
        r = await c.delete(url, headers={"OpenStack-API-Version": "compute 2.65"})
        assert r.status_code == 202, r.text
        done = await cloud.wait(c, s["id"], "ACTIVE")
        assert done["OS-EXT-SRV-ATTR:host"] == source
        migs = (await c.get(f"/os-migrations?instance_uuid={s['id']}")).json()["migrations"]
        assert migs[0]["status"] == "cancelled"


async def test_a_migration_outlasting_the_rpc_timeout_still_completes(two_hosts: Cloud) -> None:
    """Moving a guest takes as long as it takes: the conductor waits for it with the
    long timeout (long_rpc_timeout), not the one for quick calls."""
    cloud = two_hosts
    conductor = cloud.runtime.services["conductor"].manager  # type: ignore[attr-defined]
    conductor.agents.timeout = 0.3  # quick calls now give up after 0.3 s
    async with cloud.client("admin-p1") as c:
        s, _ = await _running_migration(cloud, c, 1.5)
        done = await cloud.wait(c, s["id"], "ACTIVE")
        assert done["OS-EXT-SRV-ATTR:host"] != s["OS-EXT-SRV-ATTR:host"]
        migs = (await c.get("/os-migrations", params={"instance_uuid": s["id"]})).json()
        assert [m["status"] for m in migs["migrations"]] == ["completed"]
