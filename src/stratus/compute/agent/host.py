"""One compute host's life: register, recover, serve, heartbeat, sync power states.

Recovery at start is a reconcile pass keyed by instance (safe to run twice):
every instance of this host left in a transitional task_state is finished
or rolled back as the action table's ``on_interrupt`` says, with a fault
recorded, so no instance stays in a transitional state after a restart.
Guests the hypervisor runs for instances that now live elsewhere (evacuated
while this host was down, see :func:`recovery.finish_evacuations`) or are
deleted are destroyed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import select, update

from stratus.bus import Bus, Listener, Target
from stratus.compute import rpc, servicegroup, teardown
from stratus.compute.agent import recovery
from stratus.compute.agent.manager import AgentManager
from stratus.compute.images import ImageAPI
from stratus.compute.instances import InstanceStore
from stratus.compute.lifecycle import Recovery, action_for_task
from stratus.compute.models import ComputeNode, Instance
from stratus.compute.states import PowerState, VmState, vm_state_for_power
from stratus.compute.virt.driver import Driver
from stratus.db import Database
from stratus.settings import ComputeSettings

log = logging.getLogger("stratus.compute.agent")


class ComputeHost:
    def __init__(self, host: str, driver: Driver, db: Database, bus: Bus, images: ImageAPI,
                 settings: ComputeSettings) -> None:
        self.host = host
        self.driver = driver
        self.db = db
        self.bus = bus
        self.settings = settings
        self.images = images
        self.manager = AgentManager(host, driver, db, bus, images, settings)
        self.store = InstanceStore(db)
        self._listener: Listener | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.report_resources()
        await servicegroup.heartbeat(self.db, self.host, "nova-compute", rpc.AGENT,
                                     self.settings.default_availability_zone)
        await self.recover()
        self._listener = await self.bus.serve(Target(rpc.AGENT, self.host), self.manager)
        self._task = asyncio.create_task(self._loop(), name=f"compute-agent-{self.host}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener:
            await self._listener.stop()

    async def _loop(self) -> None:
        interval = self.settings.heartbeat_interval
        since_sync = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                await servicegroup.heartbeat(self.db, self.host, "nova-compute", rpc.AGENT,
                                             self.settings.default_availability_zone)
                since_sync += interval
                if since_sync >= self.settings.power_sync_interval:
                    since_sync = 0.0
                    await self.sync_power_states()
            except Exception:
                log.exception("periodic work of compute host %s failed", self.host)

    async def report_resources(self) -> None:
        """Upsert this host's capacity; the used amounts belong to the claims."""
        res = await self.driver.host_resources()
        s = self.settings
        values = dict(hypervisor_hostname=res.hostname, hypervisor_type=res.hypervisor_type,
                      hypervisor_version=res.hypervisor_version, host_ip=res.host_ip,
                      cpu_info=res.cpu_info, vcpus=res.vcpus, memory_mb=res.memory_mb,
                      local_gb=res.local_gb, cpu_allocation_ratio=s.cpu_allocation_ratio,
                      ram_allocation_ratio=s.ram_allocation_ratio,
                      disk_allocation_ratio=s.disk_allocation_ratio,
                      reserved_host_memory_mb=s.reserved_host_memory_mb,
                      reserved_host_disk_gb=s.reserved_host_disk_gb,
                      reserved_host_cpus=s.reserved_host_cpus,
                      availability_zone=s.default_availability_zone)
        async with self.db.session() as session:
            result = await session.execute(update(ComputeNode).where(
                ComputeNode.host == self.host).values(**values))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                session.add(ComputeNode(host=self.host, **values))

    async def _instances(self) -> list[Instance]:
        async with self.db.session() as session:
            return list((await session.execute(select(Instance).where(
                Instance.host == self.host, Instance.deleted.is_(False)))).scalars())

    async def sync_power_states(self) -> int:
        """Align stable instances with what the hypervisor says; returns how many changed."""
        changed = 0
        for inst in await self._instances():
            if inst.task_state is not None:
                continue
            power = await self.driver.power_state(inst.uuid)
            vm = vm_state_for_power(power, VmState(inst.vm_state))
            if power != inst.power_state or vm != inst.vm_state:
                ok = await self.store.advance_stable(inst.uuid, vm, power)
                changed += ok
                if ok and vm != inst.vm_state:
                    log.info("instance %s is %s behind our back: now %s", inst.uuid,
                             power.name, vm.value)
        return changed

    async def recover(self) -> None:
        # First what was evacuated while we were away: never start, adopt or roll back
        # those (one still being rebuilt elsewhere names this host until it is done).
        evacuated = await recovery.finish_evacuations(self.db, self.driver, self.host)
        guests = {g.uuid for g in await self.driver.list_guests()}
        mine = await self._instances()
        for inst in mine:
            if inst.task_state is None or inst.uuid in evacuated:
                continue
            try:
                await self._recover_one(inst)
            except Exception:
                log.exception("recovering instance %s failed", inst.uuid)
        # Guests of instances that were deleted or evacuated while we were away.
        assigned = {i.uuid for i in mine}
        for uuid in guests - assigned:
            log.info("destroying guest %s: its instance is no longer on %s", uuid, self.host)
            await self.driver.destroy(uuid)
        await self.sync_power_states()

    async def _recover_one(self, inst: Instance) -> None:
        t = action_for_task(inst.task_state or "")
        task = inst.task_state
        reason = (f"Interrupted by a restart of the compute agent on {self.host} "
                  f"during {task}")
        if t is None or t.on_interrupt is Recovery.ERROR:
            log.warning("instance %s: %s; setting error", inst.uuid, reason)
            await self.store.update(inst.uuid, vm_state=VmState.ERROR.value, task_state=None,
                                    power_state=int(await self.driver.power_state(inst.uuid)))
            await self.store.fault(inst.uuid, reason, host=self.host)
            return
        if t.on_interrupt is Recovery.FINISH:  # delete
            await self.driver.destroy(inst.uuid)
            await teardown.finalize_delete(self.db, inst)
            return
        values: dict[str, Any] = {}
        if task in recovery.SNAPSHOT_TASKS:
            left = await recovery.abandon_snapshot_images(self.images, inst.uuid)
            if left:
                reason += f"; image(s) {', '.join(left)} could not be deleted"
        moved = False
        if task in recovery.MIGRATION_TASKS:
            values = await recovery.abandon_migration(self.db, inst)
            moved = values.pop("moved")
        power = await self.driver.power_state(inst.uuid)
        if task in recovery.MIGRATION_TASKS:
            values["prior_vm_state"] = None
            if not moved and power == PowerState.SHUTDOWN \
                    and inst.prior_vm_state == VmState.ACTIVE.value:
                # a cold migration stops the guest first: rolled back, it runs again
                await self.driver.power_on(inst.uuid)
                power = await self.driver.power_state(inst.uuid)
        current = VmState(inst.vm_state)
        vm = vm_state_for_power(power, current) if power != PowerState.NOSTATE else current
        if moved:  # the guest left its source half-way: neither copy is known good
            vm = VmState.ERROR
        log.warning("instance %s: %s; back to %s", inst.uuid, reason, vm.value)
        await self.store.update(inst.uuid, vm_state=vm.value, task_state=None,
                                power_state=int(power), **values)
        await self.store.fault(inst.uuid, reason, host=self.host, code=500)
