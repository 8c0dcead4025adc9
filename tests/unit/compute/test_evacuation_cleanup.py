"""A host back after its guests were evacuated cleans up after them (as Nova's
``_destroy_evacuated_instances``): it destroys what it still holds of a guest
that now lives elsewhere, never one that came back, and completes the migration."""

from __future__ import annotations

from sqlalchemy import select, update

from stratus.compute.models import Instance, Migration
from tests.unit.compute.conftest import Cloud


async def _evacuated(cloud: Cloud, uuid: str, source: str, now_on: str) -> str:
    async with cloud.runtime.db.session() as session:
        inst = await session.scalar(select(Instance).where(Instance.uuid == uuid))
        assert inst is not None
        mig = Migration(instance_uuid=uuid, project_id=inst.project_id, user_id=inst.user_id,
                        migration_type="evacuation", status="done", source_compute=source,
                        dest_compute=now_on)
        session.add(mig)
        await session.execute(update(Instance).where(Instance.uuid == uuid).values(
            host=now_on))
        await session.flush()
        return mig.uuid


async def _status(cloud: Cloud, migration_uuid: str) -> str:
    async with cloud.runtime.db.session() as session:
        return str(await session.scalar(select(Migration.status).where(
            Migration.uuid == migration_uuid)))


async def test_restart_destroys_evacuated_guests_and_completes_their_migrations(
        cloud: Cloud) -> None:
    async with cloud.client() as c:
        gone = (await cloud.create(c, name="gone"))["id"]
        back = (await cloud.create(c, name="back"))["id"]
        host = next(iter(cloud.hosts.values()))
        left = await _evacuated(cloud, gone, host.host, "elsewhere")
        returned = await _evacuated(cloud, back, host.host, host.host)  # and moved back

        await host.recover()
        assert gone not in cloud.driver().guests
        assert back in cloud.driver().guests
        assert await _status(cloud, left) == "completed"
        assert await _status(cloud, returned) == "completed"
        await host.recover()  # safe to run twice
        assert back in cloud.driver().guests


async def test_restart_during_an_evacuation_leaves_the_evacuee_to_it(cloud: Cloud) -> None:
    async with cloud.client() as c:
        uuid = (await cloud.create(c, name="evacuee"))["id"]
        host = next(iter(cloud.hosts.values()))
        async with cloud.runtime.db.session() as session:
            inst = await session.scalar(select(Instance).where(Instance.uuid == uuid))
            assert inst is not None
            session.add(Migration(instance_uuid=uuid, project_id=inst.project_id,
                                  user_id=inst.user_id, migration_type="evacuation",
                                  status="accepted", source_compute=host.host))
            inst.task_state = "rebuild_spawning"

        await host.recover()
        s = (await c.get(f"/servers/{uuid}")).json()["server"]
        assert s["OS-EXT-STS:task_state"] == "rebuild_spawning", "recovery took it back"
        assert "fault" not in s
