"""Power and run-state operations of the QEMU driver: stop, start, reboot, pause,
suspend/resume and rescue. Every one ends or starts the guest's QEMU process
(or stops/continues its vCPUs); the driver's methods of the same names delegate
here, as migrations delegate to :mod:`qemu_migrate`.

* soft power-off/reboot = ACPI `system_powerdown`, hard after the timeout;
  a soft reboot then starts QEMU again; a hard reboot is `system_reset`;
* suspend = migrate the state to `exec:cat > suspend.state` (QEMU 7.2 has no
  `file:` URI) with max-bandwidth raised, then quit; resume = a new QEMU with
  `-S -incoming "exec:cat suspend.state"`, then `cont`;
* rescue = a new QEMU booting an overlay on the rescue image (and its kernel,
  when it names one) with the guest's own disk second; unrescue boots it again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from stratus.compute.states import PowerState
from stratus.compute.virt import qemu_disks as disks
from stratus.compute.virt import qemu_jobs
from stratus.compute.virt.driver import DriverError, ImageSource
from stratus.guest import qemu as gq

if TYPE_CHECKING:
    from stratus.compute.virt.qemu import QemuDriver


async def power_off(drv: QemuDriver, uuid: str, *, timeout: float = 0) -> None:
    rec = drv._mine(uuid)
    async with drv.lock(uuid):
        await drv._stop_process(uuid, drv._proc(uuid), timeout=timeout)
        if rec.get("suspended"):
            rec["suspended"] = False
            drv.save(uuid, rec)
            (drv.run_dir(uuid) / "suspend.state").unlink(missing_ok=True)


async def power_on(drv: QemuDriver, uuid: str) -> None:
    rec = drv._mine(uuid)
    if rec.get("suspended"):
        return await drv.resume(uuid)
    async with drv.lock(uuid):
        guest = drv._proc(uuid)
        if guest is None:
            await drv._start(uuid, rec)
        elif await drv._status(guest) != "running":
            await drv.qmp(guest, "cont")


async def reboot(drv: QemuDriver, uuid: str, *, hard: bool) -> None:
    rec = drv._mine(uuid)
    guest = drv._proc(uuid)
    if guest is None or rec.get("suspended"):
        await drv.power_off(uuid)
        return await drv.power_on(uuid)
    async with drv.lock(uuid):
        status = await drv._status(guest)
        if hard or status != "running":
            await drv.qmp(guest, "system_reset")
            if status != "running":
                await drv.qmp(guest, "cont")
            return
        await drv._stop_process(uuid, guest, timeout=drv.soft_timeout)
        await drv._start(uuid, rec)


async def pause(drv: QemuDriver, uuid: str) -> None:
    guest = await _require(drv, uuid, ("running",), "pause", "paused")
    if await drv._status(guest) == "running":
        await drv.qmp(guest, "stop")


async def unpause(drv: QemuDriver, uuid: str) -> None:
    guest = await _require(drv, uuid, ("paused",), "unpause", "running")
    if await drv._status(guest) != "running":
        await drv.qmp(guest, "cont")


async def _require(drv: QemuDriver, uuid: str, allowed: tuple[str, ...], op: str,
                   target: str) -> gq.Guest:
    drv._mine(uuid)
    guest = drv._proc(uuid)
    status = await drv._status(guest) if guest else "shutdown"
    if guest is None or status not in (*allowed, target):
        raise DriverError(f"cannot {op} a guest whose QEMU status is {status}")
    return guest


async def suspend(drv: QemuDriver, uuid: str) -> None:
    rec = drv._mine(uuid)
    if rec.get("suspended"):
        return
    guest = drv._proc(uuid)
    if guest is None or await drv._status(guest) not in ("running", "paused"):
        raise DriverError("cannot suspend a guest that is not running")
    async with drv.lock(uuid):
        state = drv.run_dir(uuid) / "suspend.state"
        await qemu_jobs.migrate(drv, guest, f"exec:cat > {state}")
        rec["suspended"] = True
        drv.save(uuid, rec)
        await drv._stop_process(uuid, guest)


async def resume(drv: QemuDriver, uuid: str) -> None:
    rec = drv._mine(uuid)
    if not rec.get("suspended"):
        if await drv.power_state(uuid) == PowerState.RUNNING:
            return
        raise DriverError("cannot resume a guest that is not suspended")
    state = drv.run_dir(uuid) / "suspend.state"
    async with drv.lock(uuid):
        guest = await drv._start(uuid, rec, incoming=f"exec:cat {state}")
        await qemu_jobs.wait_incoming(drv, guest)
        await drv.qmp(guest, "cont")
        rec["suspended"] = False
        drv.save(uuid, rec)
        state.unlink(missing_ok=True)


async def rescue(drv: QemuDriver, uuid: str, image: ImageSource | None,
                 image_id: str | None) -> None:
    rec = drv._mine(uuid)
    wanted = image_id or rec.get("image_id")
    if not wanted:
        raise DriverError("no rescue image: the guest has no image and none was given")
    record = await disks.image_record(image, wanted)
    base = await drv.bases.ensure(wanted, image, record)
    boot = await disks.fetch_boot(drv.bases, wanted, record, image)  # the rescue image's
    async with drv.lock(uuid):
        await drv._stop_process(uuid, drv._proc(uuid))
        rescue_disk = drv.dir(uuid) / "rescue.qcow2"
        rescue_disk.unlink(missing_ok=True)
        await asyncio.to_thread(disks.create_overlay, base, rescue_disk, 0)
        rescue_boot = await asyncio.to_thread(disks.place_boot, boot, drv.dir(uuid),
                                              "rescue-")
        rec.update(rescued=True, rescue_boot=rescue_boot, suspended=False)
        drv.save(uuid, rec)
        await drv._start(uuid, rec)


async def unrescue(drv: QemuDriver, uuid: str) -> None:
    rec = drv._mine(uuid)
    async with drv.lock(uuid):
        await drv._stop_process(uuid, drv._proc(uuid))
        (drv.dir(uuid) / "rescue.qcow2").unlink(missing_ok=True)
        disks.place_boot(None, drv.dir(uuid), "rescue-")
        rec.update(rescued=False, rescue_boot=None)
        drv.save(uuid, rec)
        await drv._start(uuid, rec)
