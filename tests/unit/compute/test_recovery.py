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
