"""The conductor: the flows that span the scheduler and more than one host.

Each flow claims what it needs from the scheduler, drives the agents step by
step (bus calls), walks the instance through the action's task_states from
the table and, on failure, rolls back its completed steps (see
:mod:`stratus.compute.conductor.flow`) and ends the action in the table's
failure state with a fault.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from stratus.bus import Bus
from stratus.compute.aggregates import zone_of
from stratus.compute.images import ImageAPI
from stratus.compute.instances import InstanceStore, notification_payload
from stratus.compute.lifecycle import Action, transition
from stratus.compute.models import Instance, Migration
from stratus.compute.rpc import AgentAPI, SchedulerAPI
from stratus.compute.states import PowerState, TaskState, VmState
from stratus.db import Database
from stratus.db.base import utcnow
from stratus.errors import RemoteError
from stratus.settings import ComputeSettings

log = logging.getLogger("stratus.compute.conductor")
T = TaskState


def _message(exc: BaseException) -> str:
    if isinstance(exc, RemoteError):
        return exc.remote_message
    return str(exc) or type(exc).__name__


class ConductorManager:
    """Bus endpoint of ``compute-conductor``."""

    def __init__(self, db: Database, bus: Bus, settings: ComputeSettings, *,
                 volatile_bus: bool = False, images: ImageAPI | None = None) -> None:
        self.images = images
        # With an in-memory bus, messages in flight die with the process: a build
        # still waiting for a host at start can never resume.
        self.volatile_bus = volatile_bus
        self.db = db
        self.bus = bus
        self.settings = settings
        self.store = InstanceStore(db)
        self.scheduler = SchedulerAPI(bus)
        self.agents = AgentAPI(bus, long_timeout=settings.long_rpc_timeout)

    async def _notify(self, uuid: str, event: str, **extra: Any) -> None:
        inst = await self.store.get(uuid, deleted=True)
        await self.bus.notify(f"instance.{event}", notification_payload(inst, **extra),
                              publisher="conductor")

    async def delete_image(self, token: str, image_id: str) -> None:
        if self.images is None:
            return
        try:
            await self.images.delete(token, image_id)
        except Exception:  # noqa: BLE001 - an image left behind is not a failed unshelve
            log.warning("could not delete shelved image %s", image_id)

    async def _zone_of(self, host: str) -> str:
        async with self.db.session() as session:
            return await zone_of(session, host, self.settings.default_availability_zone)

    async def _set_migration(self, migration_uuid: str | None, **values: Any) -> None:
        if not migration_uuid:
            return
        async with self.db.session() as session:
            await session.execute(update(Migration).where(Migration.uuid == migration_uuid)
                                  .values(updated_at=utcnow(), **values))

    # --- build --------------------------------------------------------------

    async def build_instances(self, instance_uuids: list[str], spec: dict[str, Any],
                              request_id: str, token: str) -> None:
        for uuid in instance_uuids:
            await self.store.event_start(uuid, request_id, "conductor_schedule_and_build")
        try:
            picks = await self.scheduler.select_destinations(
                spec, instance_uuids, alternates=self.settings.scheduler_max_attempts - 1)
        except Exception as exc:  # noqa: BLE001 - NoValidHost and bus failures alike
            for uuid in instance_uuids:
                await self._build_failed(uuid, request_id, exc, code=500)
            return
        for uuid, pick in zip(instance_uuids, picks):
            await self._build_on(uuid, pick, spec, request_id, token)

    async def _build_on(self, uuid: str, pick: dict[str, Any], spec: dict[str, Any],
                        request_id: str, token: str) -> None:
        alternates: list[str] = list(pick.get("alternates", []))
        host = pick["host"]
        errors: list[str] = []
        while True:
            try:
                await self._spawn_on(uuid, host, pick["node"], request_id, token)
                return
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{host}: {_message(exc)}")
                await self.scheduler.release(uuid, host)
                # Try the alternates in order; a lost claim just moves on.
                while alternates:
                    candidate = alternates.pop(0)
                    try:
                        pick = await self.scheduler.claim_on(candidate, spec, uuid, uuid)
                        host = pick["host"]
                        log.info("rescheduling instance %s to %s after: %s", uuid, host,
                                 errors[-1])
                        break
                    except Exception:  # noqa: BLE001
                        continue
                else:
                    await self._build_failed(uuid, request_id, RuntimeError(
                        "Build of instance failed on every host tried: " + "; ".join(errors)))
                    return

    async def _spawn_on(self, uuid: str, host: str, node: str, request_id: str,
                        token: str) -> None:
        inst = await self.store.get(uuid)
        # Ports are created and bound by the agent as part of spawn; block
        # devices beyond the image need a volume service, which does not exist
        # yet. So one guarded write takes the build straight to spawning.
        if inst.task_state != T.SPAWNING.value and not await self.store.advance(
                uuid, inst.task_state, T.SPAWNING, host=host, node=node,
                availability_zone=inst.availability_zone or await self._zone_of(host)):
            raise RuntimeError(f"instance {uuid} changed while being built")
        power = await self.agents.long_call(host, "spawn", uuid=uuid, request_id=request_id,
                                       token=token)
        t = transition(Action.CREATE)
        await self.store.finish(inst, t, started_from=VmState.BUILDING,
                                power=PowerState(power), launched_at=utcnow())
        await self.store.event_finish(uuid, request_id, "conductor_schedule_and_build",
                                      host=host)
        await self.bus.notify("instance.create.end", notification_payload(
            inst, host=host, state=VmState.ACTIVE.value, task_state=None), publisher="conductor")

    async def _build_failed(self, uuid: str, request_id: str, exc: BaseException,
                            code: int = 500) -> None:
        try:
            inst = await self.store.get(uuid)
        except Exception:  # noqa: BLE001 - deleted while building
            return
        await self.store.fail(inst, transition(Action.CREATE), started_from=VmState.BUILDING,
                              error=_message(exc), request_id=request_id,
                              event="conductor_schedule_and_build", code=code)
        await self._notify(uuid, "create.error", fault=_message(exc))

    # --- resize and cold migration ------------------------------------------

    async def migrate_server(self, uuid: str, request_id: str, migration_uuid: str,
                             spec: dict[str, Any], new_flavor: dict[str, Any] | None,
                             host: str | None) -> None:
        from stratus.compute.conductor.migrate import cold_migrate

        await cold_migrate(self, uuid, request_id, migration_uuid, spec, new_flavor, host)

    async def confirm_resize(self, uuid: str, request_id: str, migration_uuid: str) -> None:
        from stratus.compute.conductor.migrate import confirm

        await confirm(self, uuid, request_id, migration_uuid)

    async def revert_resize(self, uuid: str, request_id: str, migration_uuid: str) -> None:
        from stratus.compute.conductor.migrate import revert

        await revert(self, uuid, request_id, migration_uuid)

    async def live_migrate(self, uuid: str, request_id: str, migration_uuid: str,
                           spec: dict[str, Any], host: str | None,
                           block_migration: bool | None, force: bool = False,
                           token: str | None = None) -> None:
        from stratus.compute.conductor.migrate import live_migrate

        await live_migrate(self, uuid, request_id, migration_uuid, spec, host, block_migration,
                           token)

    async def evacuate(self, uuid: str, request_id: str, migration_uuid: str,
                       spec: dict[str, Any], host: str | None, token: str) -> None:
        from stratus.compute.conductor.migrate import evacuate

        await evacuate(self, uuid, request_id, migration_uuid, spec, host, token)

    async def unshelve(self, uuid: str, request_id: str, spec: dict[str, Any],
                       host: str | None, token: str) -> None:
        from stratus.compute.conductor.migrate import unshelve

        await unshelve(self, uuid, request_id, spec, host, token)

    # --- housekeeping -------------------------------------------------------

    async def recover(self) -> None:
        """Builds the conductor lost (no host yet, still scheduling) end in error."""
        async with self.db.session() as session:
            stuck = (await session.execute(select(Instance).where(
                Instance.deleted.is_(False), Instance.host.is_(None),
                Instance.task_state == T.SCHEDULING.value))).scalars().all()
        for inst in stuck:
            age = (utcnow() - inst.updated_at.replace(tzinfo=None)).total_seconds()
            if self.volatile_bus or age > 2 * self.settings.service_down_time:
                await self._build_failed(inst.uuid, "", RuntimeError(
                    "Scheduling was interrupted (the conductor restarted)"))

    async def periodic(self) -> None:
        """Automatic resize confirmation and shelved offload, when configured."""
        now = utcnow()
        s = self.settings
        async with self.db.session() as session:
            resized = (await session.execute(select(Instance).where(
                Instance.deleted.is_(False), Instance.vm_state == VmState.RESIZED.value,
                Instance.task_state.is_(None)))).scalars().all() \
                if s.resize_confirm_window > 0 else []
            shelved = (await session.execute(select(Instance).where(
                Instance.deleted.is_(False), Instance.vm_state == VmState.SHELVED.value,
                Instance.task_state.is_(None)))).scalars().all() \
                if s.shelved_offload_time > 0 else []
        for inst in resized:
            if (now - inst.updated_at.replace(tzinfo=None)).total_seconds() \
                    >= s.resize_confirm_window:
                async with self.db.session() as session:
                    mig = await session.scalar(select(Migration.uuid).where(
                        Migration.instance_uuid == inst.uuid,
                        Migration.status == "finished").order_by(Migration.id.desc()))
                try:
                    await self.store.begin(inst.uuid, Action.CONFIRM_RESIZE)
                except Exception:  # noqa: BLE001 - someone acted first
                    continue
                await self.confirm_resize(inst.uuid, "", mig or "")
        for inst in shelved:
            if inst.host and (now - inst.updated_at.replace(tzinfo=None)).total_seconds() \
                    >= s.shelved_offload_time:
                try:
                    await self.store.begin(inst.uuid, Action.SHELVE_OFFLOAD)
                except Exception:  # noqa: BLE001
                    continue
                await self.agents.cast(inst.host, "shelve_offload_instance", uuid=inst.uuid,
                                       request_id="")
