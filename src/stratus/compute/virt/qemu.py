"""The QEMU driver: each guest is a QEMU process driven over QMP.

Files of a guest, under the host's instances directory::

    <instances>/_base/<image id>        the image, fetched once per host (qemu_disks)
    <instances>/<uuid>/guest.json       what to run: sizes, boot, owner host, suspended
    <instances>/<uuid>/disk.qcow2       the root disk: an overlay on the base image
    <instances>/<uuid>/config.img       the config drive (vfat, label config-2)
    <instances>/<uuid>/kernel, ramdisk  when its image names them: direct kernel boot
    <instances>/<uuid>/rescue.qcow2     while rescued: the rescue disk (the root is vdb)
    <instances>/<uuid>/run-<host key>/  this host's QEMU: qmp.sock, serial.log, qemu.pid,
                                        qemu.log, and suspend.state while suspended

The run directory is per host, so two hosts can share one instances directory
(shared storage: live migration moves only memory); `guest.json` names the
host that owns the guest, and a host lists and destroys only its own. QEMU
runs in its own session: it outlives an agent restart, and the next driver
finds it from its pidfile (`stratus.guest.qemu.attach`).

Choices, for the record:

* power state comes from the process and QMP `query-status`, never from a
  cache, so a QEMU killed behind our back reads SHUTDOWN at the next sync;
* this module keeps the guest's files, processes and the contract; the
  methods delegate to :mod:`qemu_power` (power, suspend/resume, rescue),
  :mod:`qemu_migrate` (live and cold migration), :mod:`qemu_resize` (the copy
  kept until confirm/revert), :mod:`qemu_console`, :mod:`qemu_host`; QMP jobs
  (state migration, block jobs) are :mod:`qemu_jobs`;
* snapshot = `blockdev-snapshot-sync` puts a temporary overlay on top (the
  guest keeps running and writes there), the frozen chain is streamed as one
  standalone qcow2 by :mod:`qcow2stream` (no temporary copy), then
  `block-commit` folds the temporary overlay back;
* an image whose properties name a kernel (``kernel_id``, optionally
  ``ramdisk_id`` and ``os_command_line``: the AKI/ARI style, as Nova's libvirt
  driver reads them) boots that kernel directly (``-kernel/-initrd/-append``)
  with the overlay still its root disk; under TCG that is half the boot time
  of SeaBIOS + a boot loader. The kernel and ramdisk come through the base
  cache like any image, and the guest keeps its own links (`kernel`,
  `ramdisk`; `rescue-kernel`, ... while rescued) so they move with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from stratus.compute.states import PowerState
from stratus.compute.virt import (
    qemu_console,
    qemu_host,
    qemu_jobs,
    qemu_migrate,
    qemu_power,
    qemu_resize,
)
from stratus.compute.virt import qemu_disks as disks
from stratus.compute.virt.driver import (
    ConsoleEndpoint,
    Driver,
    DriverError,
    GuestExists,
    GuestInfo,
    GuestNotFound,
    GuestSpec,
    HostResources,
    ImageSource,
    MigrationStats,
    MigrationTarget,
    SnapshotSink,
)
from stratus.compute.virt.qcow2stream import StreamError, stream_qcow2
from stratus.guest import qemu as gq

log = logging.getLogger("stratus.compute.qemu")

_P = PowerState
STATUS_POWER = {"running": _P.RUNNING, "paused": _P.PAUSED, "suspended": _P.PAUSED,
                "inmigrate": _P.PAUSED, "prelaunch": _P.PAUSED, "finish-migrate": _P.PAUSED,
                "save-vm": _P.PAUSED, "restore-vm": _P.PAUSED, "debug": _P.PAUSED,
                "postmigrate": _P.SHUTDOWN, "shutdown": _P.SHUTDOWN,
                "internal-error": _P.CRASHED, "io-error": _P.CRASHED,
                "guest-panicked": _P.CRASHED}


class QemuDriver(Driver):
    hypervisor_type = "QEMU"

    def __init__(self, host: str, *, instances_dir: Path, base_dir: Path | None = None,
                 accel: str = "tcg", network: bool = True, metadata_service: bool = False,
                 soft_timeout: float = 30.0, vnc: bool = True) -> None:
        self.host = host
        self.instances = instances_dir
        self.instances.mkdir(parents=True, exist_ok=True)
        self.bases = disks.BaseImages(base_dir or instances_dir / "_base")
        self.accel = accel
        self.network = network
        self.metadata_service = metadata_service
        self.soft_timeout = soft_timeout
        self.vnc = vnc
        self.host_key = hashlib.sha1(host.encode()).hexdigest()[:8]
        self._procs: dict[str, gq.Guest] = {}  # QEMUs this driver started (to reap them)
        self._locks: dict[str, asyncio.Lock] = {}
        self.last_migration: dict[str, dict[str, Any]] = {}
        self.migrating: dict[str, qemu_jobs.LiveRun] = {}  # live migrations going out
        self.migration_bandwidth = 0  # live migration cap, bytes/s (0: unlimited)

    # --- files and processes ---------------------------------------------------------

    def dir(self, uuid: str) -> Path:
        return self.instances / uuid

    def run_dir(self, uuid: str) -> Path:
        return self.dir(uuid) / f"run-{self.host_key}"

    def record(self, uuid: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.dir(uuid) / "guest.json").read_text()))
        except (OSError, ValueError):
            return None

    def _mine(self, uuid: str) -> dict[str, Any]:
        rec = self.record(uuid)
        if rec is None or rec.get("host") != self.host:
            raise GuestNotFound(f"guest {uuid} does not exist on QEMU host {self.host}")
        return rec

    def save(self, uuid: str, rec: dict[str, Any]) -> None:
        path = self.dir(uuid) / "guest.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=1) + "\n")
        os.replace(tmp, path)

    def wants_config_drive(self, spec: GuestSpec) -> bool:
        """A config drive when asked (``spec.config_drive``), and also whenever the
        guest has no other metadata source: no metadata service answers guests on
        this host yet (user-mode networking has none, and the network service's
        metadata proxy is not wired), so without the drive a guest would never
        learn its hostname, keys or user data. Set ``metadata_service`` once one
        answers, and only the guests that ask get a drive, as in Nova."""
        return spec.config_drive or not self.metadata_service

    def lock(self, uuid: str) -> asyncio.Lock:
        return self._locks.setdefault(uuid, asyncio.Lock())

    def qemu_spec(self, uuid: str, rec: dict[str, Any], *, incoming: str | None = None,
                  autostart: bool = False, run_dir: Path | None = None) -> gq.GuestSpec:
        d = self.dir(uuid)
        rescue = d / "rescue.qcow2" if rec.get("rescued") else None
        boot = rec.get("rescue_boot") if rescue else rec.get("boot")
        kernel = d / boot["kernel"] if boot else None
        kernel = kernel if kernel is not None and kernel.exists() else None
        extra: tuple[str, ...] = ()
        if incoming:
            extra = ("-incoming", incoming) if autostart else ("-S", "-incoming", incoming)
        config = d / "config.img"
        return gq.GuestSpec(
            disk=d / "disk.qcow2", workdir=run_dir or self.run_dir(uuid), name=rec["name"],
            overlay=rescue or d / "disk.qcow2", memory_mib=int(rec["memory_mb"]),
            vcpus=int(rec["vcpus"]), accel=self.accel, kernel=kernel,
            initrd=d / boot["initrd"] if kernel and boot and boot["initrd"] else None,
            append=boot["append"] if kernel and boot else None, network=self.network,
            mac=rec["mac"], writable_disks=(d / "disk.qcow2",) if rescue else (),
            extra_disks=(config,) if config.exists() else (), vnc=self.vnc,
            fresh_overlay=False, extra_args=extra)

    def _proc(self, uuid: str) -> gq.Guest | None:
        """The live QEMU of this guest on this host, or None."""
        guest = self._procs.get(uuid)
        if guest is not None and guest.alive():
            return guest
        self._procs.pop(uuid, None)
        rec = self.record(uuid)
        if rec is None:
            return None
        found = gq.attach(self.qemu_spec(uuid, rec))
        if found is not None and found.alive():
            self._procs[uuid] = found
            return found
        return None

    async def _start(self, uuid: str, rec: dict[str, Any], *, incoming: str | None = None,
                     autostart: bool = False, run_dir: Path | None = None) -> gq.Guest:
        spec = self.qemu_spec(uuid, rec, incoming=incoming, autostart=autostart,
                              run_dir=run_dir)
        try:
            guest = await asyncio.to_thread(gq.start, spec)
        except gq.GuestError as exc:
            raise DriverError(str(exc)) from None
        self._procs[uuid] = guest
        return guest

    async def qmp(self, guest: gq.Guest, command: str, **arguments: Any) -> Any:
        try:
            return await asyncio.wait_for(guest.qmp(command, **arguments), 30)
        except Exception as exc:  # noqa: BLE001 - one message for every QMP failure
            raise DriverError(f"QMP {command} on {guest.spec.name} failed: {exc}") from exc

    async def _status(self, guest: gq.Guest) -> str:
        return str((await self.qmp(guest, "query-status"))["status"])

    async def _stop_process(self, uuid: str, guest: gq.Guest | None, *,
                            timeout: float = 0) -> None:
        """End QEMU: ACPI power-down for up to TIMEOUT s, then quit, then SIGKILL."""
        if guest is None or not guest.alive():
            return
        if timeout > 0:
            try:
                if await self._status(guest) == "running":
                    await self.qmp(guest, "system_powerdown")
                    if await asyncio.to_thread(guest.wait, timeout):
                        self._procs.pop(uuid, None)
                        return
                    log.info("guest %s ignored ACPI power-down for %.0fs; stopping it hard",
                             uuid, timeout)
            except DriverError:
                pass
        try:
            await self.qmp(guest, "quit")
        except DriverError:
            pass
        if not await asyncio.to_thread(guest.wait, 5):
            guest.kill()
        guest.wait(1)
        self._procs.pop(uuid, None)

    # --- the contract ----------------------------------------------------------------

    async def host_resources(self) -> HostResources:
        return await qemu_host.host_resources(self)

    async def list_guests(self) -> list[GuestInfo]:
        out = []
        for entry in sorted(self.instances.iterdir()):
            rec = self.record(entry.name) if entry.is_dir() else None
            if rec is not None and rec.get("host") == self.host:
                out.append(GuestInfo(entry.name, await self.power_state(entry.name)))
        return out

    async def power_state(self, uuid: str) -> PowerState:
        rec = self.record(uuid)
        if rec is None or rec.get("host") != self.host:
            return _P.NOSTATE
        guest = self._proc(uuid)
        if guest is None:
            return _P.SUSPENDED if rec.get("suspended") else _P.SHUTDOWN
        try:
            return STATUS_POWER.get(await self._status(guest), _P.RUNNING)
        except DriverError:
            return _P.SHUTDOWN if not guest.alive() else _P.RUNNING

    async def spawn(self, spec: GuestSpec, image: ImageSource | None, *,
                    rescue_image: str | None = None) -> None:
        rec = self.record(spec.uuid)
        if rec is not None and rec.get("host") == self.host:
            raise GuestExists(f"guest {spec.uuid} already exists on {self.host}")
        if rec is not None and rec.get("host") and (self.dir(spec.uuid) / "disk.qcow2").exists():
            return await self._adopt(spec, rec)
        if not spec.image_id:
            raise DriverError("the QEMU driver boots from images only (no image given)")
        record = await disks.image_record(image, spec.image_id)
        base = await self.bases.ensure(spec.image_id, image, record)
        boot = await disks.fetch_boot(self.bases, spec.image_id, record, image)
        d = self.dir(spec.uuid)
        async with self.lock(spec.uuid):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
            try:
                await asyncio.to_thread(disks.create_overlay, base, d / "disk.qcow2",
                                        spec.root_gb)
                if self.wants_config_drive(spec):
                    await asyncio.to_thread(disks.make_config_drive, d / "config.img", spec)
                rec = self.new_record(spec)
                rec["boot"] = await asyncio.to_thread(disks.place_boot, boot, d)
                self.save(spec.uuid, rec)
                await self._start(spec.uuid, rec)
            except BaseException:
                await self._stop_process(spec.uuid, self._procs.get(spec.uuid))
                shutil.rmtree(d, ignore_errors=True)
                raise

    async def _adopt(self, spec: GuestSpec, rec: dict[str, Any]) -> None:
        """Evacuation on shared storage: boot the disk another (dead) host left behind.

        Refused while that host's QEMU still runs: two QEMUs writing one overlay
        would corrupt it (Nova: "the instance is still running on the failed host").
        """
        d = self.dir(spec.uuid)
        for run in d.glob("run-*"):
            if run == self.run_dir(spec.uuid):
                continue
            other = gq.attach(gq.GuestSpec(disk=run, workdir=run))
            if other is not None and other.alive():
                raise DriverError(f"guest {spec.uuid} still runs on host {rec.get('host')} "
                                  f"(QEMU pid {other.pid}); it cannot be evacuated")
        async with self.lock(spec.uuid):
            for run in d.glob("run-*"):
                shutil.rmtree(run, ignore_errors=True)
            (d / "rescue.qcow2").unlink(missing_ok=True)
            disks.place_boot(None, d, "rescue-")
            await asyncio.to_thread(disks.grow, d / "disk.qcow2", spec.root_gb)
            if self.wants_config_drive(spec):
                await asyncio.to_thread(disks.make_config_drive, d / "config.img", spec)
            rec.update(host=self.host, name=spec.name, vcpus=spec.vcpus,
                       memory_mb=spec.memory_mb, root_gb=spec.root_gb, suspended=False,
                       rescued=False, rescue_boot=None)
            rec.pop("incoming", None)
            self.save(spec.uuid, rec)
            log.info("guest %s: adopted its disk on shared storage (evacuated here)", spec.uuid)
            await self._start(spec.uuid, rec)

    def new_record(self, spec: GuestSpec) -> dict[str, Any]:
        return {"uuid": spec.uuid, "name": spec.name, "host": self.host,
                "vcpus": spec.vcpus, "memory_mb": spec.memory_mb, "root_gb": spec.root_gb,
                "image_id": spec.image_id,
                "mac": spec.nics[0]["mac"] if spec.nics else _mac(spec.uuid),
                "boot": None, "suspended": False, "rescued": False}

    async def destroy(self, uuid: str, *, keep_disks: bool = False) -> None:
        rec = self.record(uuid)
        async with self.lock(uuid):
            await self._stop_process(uuid, self._proc(uuid))
            shutil.rmtree(self.run_dir(uuid), ignore_errors=True)
            if rec is None:
                return
            if rec.get("host") not in (self.host, None):
                return  # shared storage: the guest's files belong to another host now
            if keep_disks:
                rec["host"] = None
                self.save(uuid, rec)
            else:
                shutil.rmtree(self.dir(uuid), ignore_errors=True)
        self._locks.pop(uuid, None)

    async def power_off(self, uuid: str, *, timeout: float = 0) -> None:
        await qemu_power.power_off(self, uuid, timeout=timeout)

    async def power_on(self, uuid: str) -> None:
        await qemu_power.power_on(self, uuid)

    async def reboot(self, uuid: str, *, hard: bool) -> None:
        await qemu_power.reboot(self, uuid, hard=hard)

    async def pause(self, uuid: str) -> None:
        await qemu_power.pause(self, uuid)

    async def unpause(self, uuid: str) -> None:
        await qemu_power.unpause(self, uuid)

    async def suspend(self, uuid: str) -> None:
        await qemu_power.suspend(self, uuid)

    async def resume(self, uuid: str) -> None:
        await qemu_power.resume(self, uuid)

    async def snapshot(self, uuid: str, sink: SnapshotSink) -> int:
        self._mine(uuid)
        disk = self.dir(uuid) / "disk.qcow2"
        async with self.lock(uuid):
            guest = self._proc(uuid)
            try:
                if guest is None:
                    return await stream_qcow2(disk, sink)
                return await self._live_snapshot(guest, disk, sink)
            except StreamError as exc:
                raise DriverError(str(exc)) from None

    async def _live_snapshot(self, guest: gq.Guest, disk: Path, sink: SnapshotSink) -> int:
        top = disk.with_name("snapshot-top.qcow2")
        top.unlink(missing_ok=True)
        await self.qmp(guest, "blockdev-snapshot-sync", device="disk0",
                       **{"snapshot-file": str(top), "format": "qcow2"})
        try:
            return await stream_qcow2(disk, sink)
        finally:
            await qemu_jobs.block_commit(self, guest, disk)
            top.unlink(missing_ok=True)

    async def rescue(self, uuid: str, image: ImageSource | None, image_id: str | None) -> None:
        await qemu_power.rescue(self, uuid, image, image_id)

    async def unrescue(self, uuid: str) -> None:
        await qemu_power.unrescue(self, uuid)

    async def resize_disk(self, uuid: str, spec: GuestSpec) -> None:
        await qemu_resize.resize_disk(self, uuid, spec)

    async def migration_source(self, uuid: str) -> dict[str, Any]:
        return await asyncio.to_thread(qemu_migrate.describe_source, self, uuid)

    async def prepare_incoming(self, spec: GuestSpec, *, live: bool,
                               block_migration: bool | None,
                               image: ImageSource | None = None,
                               source: dict[str, Any] | None = None) -> MigrationTarget:
        return await qemu_migrate.prepare_incoming(self, spec, live=live,
                                                   block_migration=block_migration,
                                                   image=image, source=source)

    async def migrate_out(self, uuid: str, target: MigrationTarget, *,
                          live: bool) -> MigrationStats | None:
        return await qemu_migrate.migrate_out(self, uuid, target, live=live)

    async def migration_progress(self, uuid: str) -> MigrationStats | None:
        return await qemu_migrate.progress(self, uuid)

    async def live_migration_force_complete(self, uuid: str) -> None:
        await qemu_migrate.force_complete(self, uuid)

    async def live_migration_abort(self, uuid: str) -> None:
        await qemu_migrate.abort(self, uuid)

    async def finish_incoming(self, spec: GuestSpec, target: MigrationTarget, *,
                              power_on: bool, paused: bool = False) -> None:
        await qemu_migrate.finish_incoming(self, spec, target, power_on=power_on,
                                           paused=paused)

    async def abort_incoming(self, uuid: str) -> None:
        await qemu_migrate.abort_incoming(self, uuid)

    async def confirm_migration(self, uuid: str) -> None:
        await qemu_resize.confirm(self, uuid)

    async def revert_migration(self, spec: GuestSpec, *, power_on: bool) -> None:
        await qemu_resize.revert(self, spec, power_on=power_on)

    async def console_output(self, uuid: str, length: int | None = None) -> str:
        return await qemu_console.console_output(self, uuid, length)

    async def get_vnc_console(self, uuid: str) -> ConsoleEndpoint:
        return await qemu_console.get_vnc_console(self, uuid)

    async def trigger_crash_dump(self, uuid: str) -> None:
        await qemu_console.trigger_crash_dump(self, uuid)

    # --- for tests and operators ------------------------------------------------------

    def pid(self, uuid: str) -> int | None:
        guest = self._proc(uuid)
        return guest.pid if guest else None

    def kill_behind_our_back(self, uuid: str) -> None:
        """What an OOM kill or a crash does: the QEMU process vanishes."""
        guest = self._proc(uuid)
        if guest is not None:
            os.kill(guest.pid, signal.SIGKILL)
            guest.wait(5)


def _mac(uuid: str) -> str:
    digest = hashlib.sha1(uuid.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])
