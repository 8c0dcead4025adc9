"""The compute agent: one per host, the only caller of its hypervisor driver.

Host-local actions (start, stop, reboot, pause, snapshot, rescue, rebuild,
shelve, delete, ...) arrive as casts from the API; the steps of multi-host
flows (build, migrate, evacuate, unshelve) arrive as calls from the
conductor. Every host-local action runs through :meth:`AgentManager._run`,
the one place that walks the action's task_states from the table, records
the action event, sends the notifications, and on failure records the fault
and leaves the table's failure state (with the power state the hypervisor
reports), so no handler repeats that logic. Snapshots (createImage, backup,
shelve) stream the guest's disk into the image service through
:mod:`stratus.compute.agent.snapshots`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from stratus.bus import Bus
from stratus.compute import network, teardown
from stratus.compute.agent import snapshots
from stratus.compute.images import ImageAPI, TokenImages
from stratus.compute.instances import InstanceStore, migration_record, notification_payload
from stratus.compute.lifecycle import Action, Transition, transition
from stratus.compute.models import Instance
from stratus.compute.states import PowerState, TaskState, VmState
from stratus.compute.virt.driver import (
    Driver,
    DriverError,
    GuestSpec,
    ImageSource,
    MigrationAborted,
    MigrationTarget,
)
from stratus.db import Database
from stratus.db.base import utcnow
from stratus.settings import ComputeSettings

log = logging.getLogger("stratus.compute.agent")

Work = Callable[[Instance, "Progress"], Awaitable[dict[str, Any] | None]]


class Progress:
    """Moves an instance to the next task_state of its action (a guarded write)."""

    def __init__(self, store: InstanceStore, t: Transition, uuid: str, current: str | None):
        self.store, self.t, self.uuid, self.current = store, t, uuid, current

    async def __call__(self, **values: Any) -> None:
        nxt = self.t.next_task(self.current)
        if not await self.store.advance(self.uuid, self.current, nxt, **values):
            raise RuntimeError(f"instance {self.uuid} left task_state {self.current} "
                               "while the agent worked on it")
        self.current = nxt.value


def guest_spec(inst: Instance, flavor: dict[str, Any] | None = None,
               image_id: str | None = None, vifs: list[network.Vif] | None = None) -> GuestSpec:
    f = flavor or inst.flavor
    nics = tuple({"port_id": v["port_id"], "mac": v["mac"], "network_id": v["network_id"]}
                 for v in vifs or [])
    return GuestSpec(uuid=inst.uuid, name=f"instance-{inst.id:08x}", vcpus=int(f["vcpus"]),
                     memory_mb=int(f["ram"]), root_gb=int(f["disk"]),
                     ephemeral_gb=int(f.get("ephemeral", 0)), swap_mb=int(f.get("swap", 0)),
                     image_id=image_id or inst.image_ref, user_data=inst.user_data,
                     metadata=dict(inst.metadata_ or {}), key_data=inst.key_data,
                     hostname=inst.hostname, extra_specs=dict(f.get("extra_specs") or {}),
                     nics=nics, config_drive=inst.config_drive.lower() in ("true", "1"))


class AgentManager:
    """Bus endpoint of ``compute.<host>``."""

    def __init__(self, host: str, driver: Driver, db: Database, bus: Bus, images: ImageAPI,
                 settings: ComputeSettings) -> None:
        self.host = host
        self.driver = driver
        self.db = db
        self.bus = bus
        self.images = images
        self.settings = settings
        self.store = InstanceStore(db)
        self.network: network.RestNetworkAPI | None = None  # set by the service wiring
        self.vif_events = network.VifEvents()
        # A build and a delete of one instance never overlap here (Nova's per-instance
        # lock): a delete during a build waits for it, then removes what it made.
        self._building: dict[str, asyncio.Lock] = {}
        # Live migrations (by migration uuid) aborted before they started sending here.
        self._aborted_early: set[str] = set()

    def _instance_lock(self, uuid: str) -> asyncio.Lock:
        return self._building.setdefault(uuid, asyncio.Lock())

    def image_source(self, token: str) -> ImageSource:
        return TokenImages(self.images, token)

    async def notify(self, inst: Instance, event: str, **extra: Any) -> None:
        await self.bus.notify(f"instance.{event}", notification_payload(inst, **extra),
                              publisher=f"compute.{self.host}")

    async def _run(self, action: Action, uuid: str, request_id: str, work: Work,
                   *, event_name: str | None = None) -> None:
        t = transition(action)
        try:
            inst = await self.store.get(uuid)
        except Exception:  # noqa: BLE001 - deleted meanwhile
            return
        started_from = VmState(inst.vm_state)
        event = event_name or f"compute_{action.value.replace('-', '_')}"
        name = action.value.lower()
        await self.store.event_start(uuid, request_id, event, self.host)
        await self.notify(inst, f"{name}.start")
        progress = Progress(self.store, t, uuid, inst.task_state)
        try:
            values = await work(inst, progress) or {}
        except Exception as exc:  # noqa: BLE001 - every failure ends in a defined state
            power = await self._power(uuid)
            await self.store.fail(inst, t, started_from=started_from, error=exc,
                                  request_id=request_id, host=self.host, event=event,
                                  power_state=int(power))
            await self.notify(inst, f"{name}.error", fault=str(exc))
            return
        await self.store.finish(inst, t, started_from=started_from, **values)
        await self.store.event_finish(uuid, request_id, event, host=self.host)
        await self.notify(await self.store.get(uuid, deleted=True), f"{name}.end")

    async def _power(self, uuid: str) -> PowerState:
        try:
            return await self.driver.power_state(uuid)
        except Exception:  # noqa: BLE001
            return PowerState.NOSTATE

    # --- host-local actions (casts from the API) ----------------------------

    async def start_instance(self, uuid: str, request_id: str) -> None:
        await self._run(Action.START, uuid, request_id,
                        lambda i, p: self._simple(self.driver.power_on(uuid)))

    async def stop_instance(self, uuid: str, request_id: str) -> None:
        await self._run(Action.STOP, uuid, request_id,
                        lambda i, p: self._simple(self.driver.power_off(uuid, timeout=60)))

    async def reboot_instance(self, uuid: str, request_id: str, hard: bool) -> None:
        async def work(inst: Instance, progress: Progress) -> None:
            await progress()
            await progress()
            await self.driver.reboot(uuid, hard=hard)
        await self._run(Action.REBOOT_HARD if hard else Action.REBOOT_SOFT, uuid, request_id,
                        work, event_name="compute_reboot_instance")

    async def pause_instance(self, uuid: str, request_id: str) -> None:
        await self._run(Action.PAUSE, uuid, request_id,
                        lambda i, p: self._simple(self.driver.pause(uuid)))

    async def unpause_instance(self, uuid: str, request_id: str) -> None:
        await self._run(Action.UNPAUSE, uuid, request_id,
                        lambda i, p: self._simple(self.driver.unpause(uuid)))

    async def suspend_instance(self, uuid: str, request_id: str) -> None:
        await self._run(Action.SUSPEND, uuid, request_id,
                        lambda i, p: self._simple(self.driver.suspend(uuid)))

    async def resume_instance(self, uuid: str, request_id: str) -> None:
        await self._run(Action.RESUME, uuid, request_id,
                        lambda i, p: self._simple(self.driver.resume(uuid)))

    async def set_admin_password(self, uuid: str, request_id: str, password: str) -> None:
        await self._run(Action.CHANGE_PASSWORD, uuid, request_id,
                        lambda i, p: self._simple(self.driver.set_admin_password(uuid, password)))

    async def rescue_instance(self, uuid: str, request_id: str, token: str,
                              image_id: str | None) -> None:
        async def work(inst: Instance, progress: Progress) -> dict[str, Any]:
            # Nova's default rescue image is the server's image, not whatever the guest
            # was last spawned from (after an unshelve: the deleted shelve snapshot).
            await self.driver.rescue(uuid, self.image_source(token),
                                     image_id or inst.image_ref)
            return {"rescue_image_ref": image_id}
        await self._run(Action.RESCUE, uuid, request_id, work)

    async def unrescue_instance(self, uuid: str, request_id: str) -> None:
        async def work(inst: Instance, progress: Progress) -> dict[str, Any]:
            await self.driver.unrescue(uuid)
            return {"rescue_image_ref": None}
        await self._run(Action.UNRESCUE, uuid, request_id, work)

    async def rebuild_instance(self, uuid: str, request_id: str, token: str,
                               image_ref: str | None) -> None:
        async def work(inst: Instance, progress: Progress) -> dict[str, Any]:
            was_stopped = inst.vm_state == VmState.STOPPED
            await self.driver.destroy(uuid)
            await progress()
            await progress()
            await self.driver.spawn(guest_spec(inst, image_id=image_ref),
                                    self.image_source(token))
            power = PowerState.RUNNING
            if was_stopped:
                await self.driver.power_off(uuid)
                power = PowerState.SHUTDOWN
            return {"image_ref": image_ref or inst.image_ref, "power_state": int(power),
                    "launched_at": utcnow()}
        await self._run(Action.REBUILD, uuid, request_id, work)

    async def snapshot_instance(self, uuid: str, request_id: str, token: str, image_id: str,
                                backup: bool = False, backup_type: str | None = None,
                                rotation: int | None = None) -> None:
        async def work(inst: Instance, progress: Progress) -> None:
            try:
                if not backup:
                    await progress()  # image_snapshot
                await snapshots.stream_snapshot(self.driver, self.images, uuid, token,
                                                image_id, progress)
            except BaseException:
                await snapshots.delete_image(self.images, token, image_id)
                raise
            if backup and rotation is not None:
                await snapshots.rotate_backups(self.images, token, uuid, backup_type or "",
                                               rotation)
        await self._run(Action.BACKUP if backup else Action.SNAPSHOT, uuid, request_id, work,
                        event_name="compute_snapshot_instance")

    async def shelve_instance(self, uuid: str, request_id: str, token: str,
                              image_id: str | None) -> None:
        async def work(inst: Instance, progress: Progress) -> dict[str, Any]:
            await self.driver.power_off(uuid, timeout=60)
            if image_id:
                async def step(**_: Any) -> None:
                    await progress()
                await snapshots.stream_snapshot(self.driver, self.images, uuid, token,
                                                image_id, step)
            return {"shelved_image_id": image_id}
        await self._run(Action.SHELVE, uuid, request_id, work)
        inst = await self.store.get(uuid)
        if inst.vm_state == VmState.SHELVED and self.settings.shelved_offload_time == 0:
            await self.store.begin(uuid, Action.SHELVE_OFFLOAD)
            await self.shelve_offload_instance(uuid, request_id)

    async def shelve_offload_instance(self, uuid: str, request_id: str) -> None:
        async def work(inst: Instance, progress: Progress) -> dict[str, Any]:
            await self.driver.destroy(uuid)
            from stratus.compute.scheduler import claims
            async with self.db.session() as session:
                await claims.release(session, uuid)
            return {"host": None, "node": None, "availability_zone": None,
                    "power_state": int(PowerState.SHUTDOWN)}
        await self._run(Action.SHELVE_OFFLOAD, uuid, request_id, work)

    async def terminate_instance(self, uuid: str, request_id: str) -> None:
        async with self._instance_lock(uuid):
            await self._terminate(uuid, request_id)
        self._building.pop(uuid, None)

    async def _terminate(self, uuid: str, request_id: str) -> None:
        try:
            inst = await self.store.get(uuid)
        except Exception:  # noqa: BLE001
            return
        await self.notify(inst, "delete.start")
        try:
            await self.driver.destroy(uuid)
        except Exception as exc:  # noqa: BLE001
            await self.store.fail(inst, transition(Action.DELETE),
                                  started_from=VmState(inst.vm_state), error=exc,
                                  request_id=request_id, host=self.host,
                                  event="compute_terminate_instance")
            return
        if inst.vm_state == VmState.RESIZED:
            await self._drop_resize_source(uuid)
        await network.deallocate_for_instance(self.network, self.db, uuid)
        await teardown.finalize_delete(self.db, inst)
        await self.notify(inst, "delete.end")

    async def _drop_resize_source(self, uuid: str) -> None:
        """Deleting a server awaiting resize confirmation confirms it first (as Nova):
        the source's kept copy and its allocation go too."""
        from sqlalchemy import select

        from stratus.compute import rpc
        from stratus.compute.models import Migration
        from stratus.compute.scheduler import claims

        async with self.db.session() as session:
            mig = await session.scalar(select(Migration).where(
                Migration.instance_uuid == uuid, Migration.status == "finished"
            ).order_by(Migration.id.desc()))
            if mig is None:
                return
            await claims.release(session, mig.uuid)
            mig.status = "confirmed"
        if mig.source_compute == self.host:
            await self.driver.confirm_migration(uuid)
        elif mig.source_compute:
            await rpc.AgentAPI(self.bus).cast(mig.source_compute, "confirm_migration",
                                              uuid=uuid)

    async def get_console_output(self, uuid: str, length: int | None = None) -> str:
        return await self.driver.console_output(uuid, length)

    async def get_vnc_console(self, uuid: str) -> dict[str, Any]:
        """Where this host's guest shows its VNC console: ``{host, port,
        internal_access_path}``; NotSupported when the hypervisor has none."""
        return dataclasses.asdict(await self.driver.get_vnc_console(uuid))

    async def trigger_crash_dump(self, uuid: str) -> None:
        await self.driver.trigger_crash_dump(uuid)

    @staticmethod
    async def _simple(op: Awaitable[None]) -> None:
        await op

    # --- steps of conductor flows (calls) ----------------------------------

    async def spawn(self, uuid: str, request_id: str, token: str,
                    flavor: dict[str, Any] | None = None, power_on: bool = True) -> int:
        """Build (or re-build after evacuate/unshelve) the guest here; returns power state."""
        async with self._instance_lock(uuid):
            return await self._spawn(uuid, token, flavor, power_on)

    async def _spawn(self, uuid: str, token: str, flavor: dict[str, Any] | None,
                     power_on: bool) -> int:
        inst = await self.store.get(uuid)
        image_id = inst.shelved_image_id if inst.vm_state in (
            VmState.SHELVED_OFFLOADED, VmState.SHELVED) and inst.shelved_image_id else None
        await self.driver.destroy(uuid)  # idempotent: a retried step starts clean

        async def start(vifs: list[network.Vif]) -> None:
            await self.driver.spawn(guest_spec(inst, flavor, image_id, vifs),
                                    self.image_source(token))
        await self._with_ports(inst, start)
        if not power_on:
            await self.driver.power_off(uuid)
            return int(PowerState.SHUTDOWN)
        return int(PowerState.RUNNING)

    async def _with_ports(self, inst: Instance,
                          start: Callable[[list[network.Vif]], Awaitable[None]]) -> None:
        """Run ``start`` with the instance's ports bound here and plugged.

        A first build creates the ports the request asked for; later spawns
        (evacuate, unshelve) re-bind the existing ones. The waiter is set up
        before binding, because the network service may report a port up at once.
        A first build that fails removes the guest and the ports it created.
        """
        api = self.network
        vifs = (await network.cached(self.db, [inst.uuid])).get(inst.uuid, [])
        spec = inst.request_spec or {}
        if api is None or (not vifs and not spec.get("networks")):
            await start(vifs)
            return
        first = not vifs
        if first:
            vifs = await network.create_ports(api, inst, list(spec["networks"]),
                                              list(spec.get("security_groups") or []))
            await network.store_cache(self.db, inst.uuid, vifs)
        try:
            with self.vif_events.expect(inst.uuid, [v["port_id"] for v in vifs]) as futures:
                pending = await network.bind(api, vifs, self.host)
                await start(vifs)
                await network.VifEvents.wait({p: futures[p] for p in pending if p in futures},
                                             self.settings.vif_plugging_timeout)
        except BaseException:
            if first:
                with contextlib.suppress(Exception):
                    await self.driver.destroy(inst.uuid)
                await network.deallocate_for_instance(api, self.db, inst.uuid)
            raise
        try:
            await network.refresh_cache(api, self.db, inst.uuid)
        except Exception:
            log.warning("could not refresh the ports of %s", inst.uuid, exc_info=True)

    async def external_instance_event(self, uuid: str, events: list[dict[str, Any]]) -> None:
        """Events from the network service (via the compute API) for a guest here."""
        for ev in events:
            self.vif_events.deliver(uuid, ev.get("name", ""), ev.get("tag"),
                                    ev.get("status", "completed"))

    async def destroy(self, uuid: str, keep_disks: bool = False) -> None:
        await self.driver.destroy(uuid, keep_disks=keep_disks)

    async def power_off(self, uuid: str) -> None:
        await self.driver.power_off(uuid)

    async def power_on(self, uuid: str) -> None:
        await self.driver.power_on(uuid)

    async def migration_source(self, uuid: str) -> dict[str, Any]:
        """On the source: what the destination's prepare_incoming needs to know."""
        return await self.driver.migration_source(uuid)

    async def prepare_incoming(self, uuid: str, flavor: dict[str, Any], live: bool,
                               block_migration: bool | None, token: str | None = None,
                               source: dict[str, Any] | None = None) -> dict[str, Any]:
        inst = await self.store.get(uuid)
        vifs = (await network.cached(self.db, [uuid])).get(uuid, [])
        target = await self.driver.prepare_incoming(
            guest_spec(inst, flavor, vifs=vifs), live=live, block_migration=block_migration,
            image=self.image_source(token) if token else None, source=source)
        return {"host": target.host, "uri": target.uri,
                "block_migration": target.block_migration, "extra": target.extra}

    async def migrate_out(self, uuid: str, dest: dict[str, Any], live: bool,
                          migration_uuid: str | None = None) -> dict[str, Any]:
        """Send the guest; while a live migration runs, its progress is copied into
        the migration record (what os-migrations shows). Returns the final stats."""
        target = MigrationTarget(**dest)
        if live and migration_uuid in self._aborted_early:
            self._aborted_early.discard(migration_uuid)
            raise MigrationAborted(f"live migration {migration_uuid} was aborted before it "
                                   "started")
        if not (live and migration_uuid):
            stats = await self.driver.migrate_out(uuid, target, live=live)
            return stats.as_record() if stats else {}
        reporter = asyncio.create_task(self._report_progress(uuid, migration_uuid))
        try:
            stats = await self.driver.migrate_out(uuid, target, live=live)
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        return stats.as_record() if stats else {}

    async def _report_progress(self, uuid: str, migration_uuid: str) -> None:
        while True:
            await asyncio.sleep(self.settings.migration_progress_interval)
            try:
                stats = await self.driver.migration_progress(uuid)
                if stats is not None:
                    await migration_record(self.db, migration_uuid, **stats.as_record())
            except Exception:
                log.debug("progress of the migration of %s unavailable", uuid, exc_info=True)

    async def live_migration_abort(self, uuid: str, migration_uuid: str | None = None) -> None:
        """Cancel the guest's live migration; one not sending yet (queued or preparing,
        API 2.65+) is remembered and ends, cancelled, when it would start."""
        try:
            await self.driver.live_migration_abort(uuid)
        except DriverError:
            if migration_uuid is None:
                raise
            self._aborted_early.add(migration_uuid)

    async def live_migration_force_complete(self, uuid: str) -> None:
        await self.driver.live_migration_force_complete(uuid)

    async def finish_incoming(self, uuid: str, dest: dict[str, Any], flavor: dict[str, Any],
                              power_on: bool, paused: bool = False) -> int:
        """PAUSED: the guest was paused on the source (live) and stays paused here."""
        inst = await self.store.get(uuid)
        vifs = (await network.cached(self.db, [uuid])).get(uuid, [])
        if self.network is not None and vifs:  # the ports follow the guest here
            await network.bind(self.network, vifs, self.host)
        spec = guest_spec(inst, flavor, vifs=vifs)
        await self.driver.finish_incoming(spec, MigrationTarget(**dest), power_on=power_on,
                                          paused=paused)
        await self.driver.resize_disk(uuid, spec)
        return int(await self.driver.power_state(uuid))

    async def abort_incoming(self, uuid: str) -> None:
        await self.driver.abort_incoming(uuid)

    async def confirm_migration(self, uuid: str) -> None:
        await self.driver.confirm_migration(uuid)

    async def revert_migration(self, uuid: str, flavor: dict[str, Any], power_on: bool) -> int:
        """Back on the source: the kept copy runs again (its ports come back here)."""
        inst = await self.store.get(uuid)
        vifs = (await network.cached(self.db, [uuid])).get(uuid, [])
        if self.network is not None and vifs:
            await network.bind(self.network, vifs, self.host)
        await self.driver.revert_migration(guest_spec(inst, flavor, vifs=vifs),
                                           power_on=power_on)
        return int(await self.driver.power_state(uuid))

    async def task_state_of(self, uuid: str) -> str | None:
        return (await self.store.get(uuid)).task_state


TaskStateT = TaskState
