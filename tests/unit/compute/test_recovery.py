"""An agent that restarts finishes or rolls back what it was doing; power sync."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from stratus.compute.models import Instance
from stratus.compute.states import PowerState
from tests.unit.compute.conftest import Cloud


async def _set(cloud: Cloud, uuid: str, **values: object) -> None:
    async with cloud.runtime.db.session() as session:
        await session.execute(update(Instance).where(Instance.uuid == uuid).values(**values))


async def test_restart_recovers_interrupted_tasks_with_faults(cloud: Cloud) -> None:
    async with cloud.client("admin-p1") as c:
        spawning = await cloud.create(c, name="spawning")
        pausing = await cloud.create(c, name="pausing")
        deleting = await cloud.create(c, name="deleting")
        # Simulate a crash: tasks left in flight, as the database would show them.
        await _set(cloud, spawning["id"], vm_state="building", task_state="spawning")
        await _set(cloud, pausing["id"], task_state="pausing")
        await _set(cloud, deleting["id"], task_state="deleting")
        host = next(iter(cloud.hosts.values()))
        await host.recover()
        s = (await c.get(f"/servers/{spawning['id']}")).json()["server"]
        assert s["status"] == "ERROR" and "Interrupted" in s["fault"]["message"]
        s = (await c.get(f"/servers/{pausing['id']}")).json()["server"]
        assert s["status"] == "ACTIVE" and s["OS-EXT-STS:task_state"] is None
        assert (await c.get(f"/servers/{deleting['id']}")).status_code == 404
        assert deleting["id"] not in cloud.driver().guests


async def test_guest_stopped_behind_our_back_becomes_shutoff(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        cloud.driver().crash_behind_our_back(s["id"])
        host = next(iter(cloud.hosts.values()))
        assert await host.sync_power_states() == 1
        s = (await c.get(f"/servers/{s['id']}")).json()["server"]
        assert s["status"] == "SHUTOFF"
        assert s["OS-EXT-STS:power_state"] == PowerState.SHUTDOWN


async def test_recovery_destroys_guests_of_instances_gone_elsewhere(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        await _set(cloud, s["id"], host="elsewhere")
        host = next(iter(cloud.hosts.values()))
        await host.recover()
        assert s["id"] not in cloud.driver().guests


async def test_notifications_are_published_for_actions(cloud: Cloud) -> None:
    events: list[str] = []

    async def record(event_type: str, payload: dict[str, object]) -> None:
        events.append(event_type)

    await cloud.runtime.bus.subscribe("instance.*", record)
    async with cloud.client() as c:
        s = await cloud.create(c)
        await cloud.action(c, s["id"], "pause")
        await cloud.wait(c, s["id"], "PAUSED")
        await asyncio.sleep(0.05)
    assert "instance.create.end" in events
    assert {"instance.pause.start", "instance.pause.end"} <= set(events)


async def _wait_task(c: object, uuid: str, task: str) -> None:
    for _ in range(500):
        s = (await c.get(f"/servers/{uuid}")).json()["server"]  # type: ignore[attr-defined]
        if s["OS-EXT-STS:task_state"] == task:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{uuid} never reached task_state {task}")


async def test_interrupted_snapshot_deletes_its_queued_image(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        cloud.driver().latency["snapshot"] = 30
        resp = await cloud.action(c, s["id"], "createImage", {"name": "snap"})
        image_id = resp.json()["image_id"]
        await _wait_task(c, s["id"], "image_uploading")
        assert cloud.images.images[image_id]["status"] == "queued"
        await next(iter(cloud.hosts.values())).recover()
        assert image_id not in cloud.images.images
        s = (await c.get(f"/servers/{s['id']}")).json()["server"]
        assert s["status"] == "ACTIVE" and s["OS-EXT-STS:task_state"] is None


async def test_interrupted_resize_closes_its_migration_and_frees_the_destination(
        two_hosts: Cloud) -> None:
    cloud = two_hosts
    async with cloud.client("admin-p1") as c:
        s = await cloud.create(c)
        source = s["OS-EXT-SRV-ATTR:host"]
        before = (await c.get("/limits")).json()["limits"]["absolute"]
        cloud.driver(source).latency["migrate"] = 30
        assert (await cloud.action(c, s["id"], "resize", {"flavorRef": "2"})).status_code == 202
        await _wait_task(c, s["id"], "resize_migrating")
        await cloud.hosts[source].recover()
        s = (await c.get(f"/servers/{s['id']}")).json()["server"]
        assert s["status"] == "ACTIVE" and s["OS-EXT-STS:task_state"] is None
        assert s["OS-EXT-SRV-ATTR:host"] == source and s["flavor"]["original_name"] == "m1.tiny"
        migs = (await c.get(f"/os-migrations?instance_uuid={s['id']}")).json()["migrations"]
        assert [m["status"] for m in migs] == ["error"]
        hv = (await c.get("/os-hypervisors/detail", headers={
            "OpenStack-API-Version": "compute 2.87"})).json()["hypervisors"]
        vms = {h["hypervisor_hostname"]: (h["running_vms"], h["memory_mb_used"]) for h in hv}
        assert vms[source] == (1, 64)
        assert [v for h, v in vms.items() if h != source] == [(0, 0)]
        after = (await c.get("/limits")).json()["limits"]["absolute"]
        assert after["totalRAMUsed"] == before["totalRAMUsed"]
        assert after["totalCoresUsed"] == before["totalCoresUsed"]
