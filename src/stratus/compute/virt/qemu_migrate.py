"""Migration for the QEMU driver: live (QMP migrate over TCP) and cold (disk files
moved; the source's side and its kept copy are :mod:`qemu_resize`). The QMP job
helpers it shares with suspend and snapshot are :mod:`qemu_jobs`.

Modes, chosen on the destination by ``prepare_incoming`` and sent to the
source in ``MigrationTarget.extra["mode"]`` (a live migration's
``block_migration`` None, the API's "auto", takes what the storage allows;
True/False that the storage contradicts fail before anything starts):

* ``shared``: the guest's directory already exists on the destination (both
  hosts use the same instances directory, or it is the same host: a resize).
  Live: only memory moves; the destination QEMU opens the same overlay.
  Cold: nothing to copy; ownership in ``guest.json`` changes hands.
* ``block`` (live, storage not shared): the destination makes an empty disk
  (an overlay on its cached base image, else a flat qcow2), exports it with
  QEMU's NBD server; the source `drive-mirror`s into it (``sync=top`` when the
  base is there, ``full`` otherwise), waits for the job to be ready, migrates
  memory, then cancels the job, letting it write the last dirty blocks (the
  destination keeps the mirrored disk; the job is kept until read, and a
  mirror that failed them fails the migration with the guest running on at
  the source). The destination QEMU waits with -S and
  runs the guest only then, in ``finish_incoming`` (libvirt's order: it must
  not run on a disk still being written), so the guest's real pause is longer
  than QEMU's ``downtime`` figure by that flush and one round trip; a guest
  paused on the source stays paused. The source first says (``describe_source``)
  which image its overlay really sits on (after an unshelve: the shelve
  snapshot, deleted since, so the whole disk moves) and how it boots; the
  destination fetches that image into its own base cache (through the agent's
  image source), so the disk it keeps is an overlay on it, and the kernel and
  ramdisk, so the incoming QEMU has the source's ``-kernel/-initrd/-append``.
* ``copy`` (cold, storage not shared): the source copies the stopped guest's
  overlay (rebased onto the destination's base, or flattened when the
  destination lacks it) and its config drive into the destination's directory.

Timings of the last outgoing migration (total, downtime, RAM sent; from QMP
``query-migrate``) are kept in ``driver.last_migration[uuid]`` and logged, and
``migrate_out`` returns them as :class:`MigrationStats`. ``drv.migration_bandwidth``
(``compute.live_migration_bandwidth``) caps both the memory stream
(``max-bandwidth``) and the disk mirror (``speed``). While a live migration
runs, ``progress`` reads RAM and disk-mirror progress from QMP; ``force_complete``
lifts the cap and the switch-over pause limit (``downtime-limit``), so QEMU
pauses the guest at its next check and sends the rest at full speed; the
guest never enters the user-paused state, so the destination runs it;
``abort`` cancels the mirror job and the migration (``migrate_cancel``).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratus.compute.virt import qemu_disks as disks
from stratus.compute.virt import qemu_jobs as jobs
from stratus.compute.virt import qemu_resize
from stratus.compute.virt.driver import (
    DriverError,
    GuestSpec,
    ImageSource,
    MigrationAborted,
    MigrationStats,
    MigrationTarget,
)
from stratus.guest import qemu as gq

if TYPE_CHECKING:
    from stratus.compute.virt.qemu import QemuDriver

log = logging.getLogger("stratus.compute.qemu")
MIRROR_JOB = "stratus-mirror"


# --- destination -----------------------------------------------------------------------

def describe_source(drv: QemuDriver, uuid: str) -> dict[str, Any]:
    """On the source, for the destination's ``prepare_incoming``: the image the guest's
    overlay really sits on (after an unshelve, the shelve snapshot, not the server's
    image) and how it boots (its kernel, ramdisk and command line)."""
    rec = drv._mine(uuid)
    base = disks.backing_image(drv.bases, drv.dir(uuid) / "disk.qcow2")
    boot = rec.get("boot") or {}
    return {"image_id": base,
            "boot": {k: boot.get(k) for k in ("kernel_id", "ramdisk_id", "append")}
            if boot.get("kernel_id") else None}


async def prepare_incoming(drv: QemuDriver, spec: GuestSpec, *, live: bool,
                           block_migration: bool | None, image: ImageSource | None = None,
                           source: dict[str, Any] | None = None) -> MigrationTarget:
    """Shared storage is when the guest's directory, owned by a host, is already
    here; ``block_migration`` None picks the mode from that, True/False insist
    (and fail first, as Nova's pre-checks do, when the storage says otherwise).
    SOURCE is :func:`describe_source` from the source host (without it: the
    spec's image, booted the way that image says)."""
    uuid = spec.uuid
    d = drv.dir(uuid)
    shared = (d / "disk.qcow2").exists() and (drv.record(uuid) or {}).get("host") is not None
    if live and shared and block_migration is True:
        raise DriverError(f"Block migration can not be used with shared storage: host "
                          f"{drv.host} already sees the disk of {uuid} in {drv.instances}")
    if live and not shared and block_migration is False:
        raise DriverError(f"Host {drv.host} is not on shared storage with the source "
                          f"({drv.instances} does not hold the disk of {uuid}): live "
                          "migration without block migration needs shared storage")
    try:
        return await _prepare(drv, spec, live=live, shared=shared, image=image,
                              source=source)
    except BaseException:
        if not shared:
            await abort_incoming(drv, uuid)
        raise


async def _prepare(drv: QemuDriver, spec: GuestSpec, *, live: bool, shared: bool,
                   image: ImageSource | None,
                   source: dict[str, Any] | None) -> MigrationTarget:
    uuid = spec.uuid
    d = drv.dir(uuid)
    extra: dict[str, str] = {"mode": "shared" if shared else ("block" if live else "copy"),
                             "dir": str(d)}
    if not shared:
        base_id = source.get("image_id") if source else spec.image_id
        if base_id and image is not None:
            try:  # the guest's base image here too: only its overlay has to move
                await drv.bases.ensure(base_id, image)
            except Exception as exc:  # noqa: BLE001 - e.g. an unshelved guest's snapshot, deleted
                log.warning("guest %s: image %s not cached on %s, copying the whole disk: "
                            "%s", uuid, base_id, drv.host, exc)
        boot = await _fetch_boot(drv, spec, image, source)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        rec = drv.new_record(spec) | {"host": None, "incoming": True, "image_id": base_id}
        rec["boot"] = await asyncio.to_thread(disks.place_boot, boot, d)
        base = drv.bases.path(base_id) if base_id else None
        if base is not None and base.exists():
            extra.update(base=str(base), base_image=base.name)
        if drv.wants_config_drive(spec):
            await asyncio.to_thread(disks.make_config_drive, d / "config.img", spec)
        drv.save(uuid, rec)
    if not live:
        return MigrationTarget(host=drv.host, uri=f"file://{d}", block_migration=not shared,
                               extra=extra)
    rec = drv.record(uuid) or {}
    if not shared:
        size = max(spec.root_gb * disks.GIB,
                   disks.virtual_size(Path(extra["base"])) if "base" in extra else 0)
        if size == 0:
            raise DriverError("block migration of a flavor with no root disk size needs the "
                              "image cached on the destination")
        if "base" in extra:
            await asyncio.to_thread(disks.create_overlay, Path(extra["base"]),
                                    d / "disk.qcow2", spec.root_gb)
            extra["sync"] = "top"
        else:
            await asyncio.to_thread(disks.qemu_img, "create", "-q", "-f", "qcow2",
                                    d / "disk.qcow2", str(size))
            extra["sync"] = "full"
    port = gq.free_port()
    guest = await drv._start(uuid, rec | {"vcpus": spec.vcpus, "memory_mb": spec.memory_mb},
                             incoming=f"tcp:127.0.0.1:{port}", autostart=shared)
    # QMP answers once QEMU's main loop runs, i.e. after it listens for the migration.
    await drv._status(guest)
    if not shared:
        nbd_port = gq.free_port()
        await drv.qmp(guest, "nbd-server-start", addr={
            "type": "inet", "data": {"host": "127.0.0.1", "port": str(nbd_port)}})
        await drv.qmp(guest, "nbd-server-add", device="disk0", writable=True)
        extra["nbd"] = f"nbd:127.0.0.1:{nbd_port}:exportname=disk0"
    return MigrationTarget(host=drv.host, uri=f"tcp:127.0.0.1:{port}",
                           block_migration=not shared, extra=extra)


async def _fetch_boot(drv: QemuDriver, spec: GuestSpec, image: ImageSource | None,
                      source: dict[str, Any] | None) -> dict[str, Any] | None:
    """The kernel and ramdisk the guest boots, cached here, so the incoming QEMU (and
    any later start) boots as on the source. None when it boots from its disk, or
    when they cannot be fetched: the source then hands its own files over."""
    if image is None:
        return None
    try:
        if source:
            return await disks.fetch_kernel(drv.bases, source.get("boot") or {},
                                            source.get("image_id") or spec.image_id or "",
                                            image)
        if spec.image_id:
            record = await disks.image_record(image, spec.image_id)
            return await disks.fetch_boot(drv.bases, spec.image_id, record, image)
    except DriverError as exc:
        log.warning("guest %s: its kernel is not fetched on %s (the source hands its copy "
                    "over): %s", spec.uuid, drv.host, exc)
    return None


async def finish_incoming(drv: QemuDriver, spec: GuestSpec, target: MigrationTarget, *,
                          power_on: bool, paused: bool = False) -> None:
    """PAUSED: the guest was paused on the source (live) and stays so here."""
    uuid = spec.uuid
    rec = drv.record(uuid)
    if rec is None:
        raise DriverError(f"no incoming guest {uuid} on {drv.host}")
    guest = drv._proc(uuid)
    if target.uri.startswith("tcp:"):
        if guest is None:
            raise DriverError(f"the incoming QEMU of {uuid} on {drv.host} is gone")
        await jobs.wait_incoming(drv, guest)
        if target.extra.get("mode") == "block":
            # Started with -S: the source's mirror has flushed its last writes into
            # our disk by now (migrate_out returned); only then may the guest run.
            await drv.qmp(guest, "nbd-server-stop")
            if power_on and not paused:
                await drv.qmp(guest, "cont")
        elif paused and await drv._status(guest) == "running":
            await drv.qmp(guest, "stop")  # QEMU keeps the source's paused state; be sure
    rec.update(host=drv.host, incoming=False, vcpus=spec.vcpus, memory_mb=spec.memory_mb,
               root_gb=spec.root_gb)
    rec.pop("incoming", None)
    drv.save(uuid, rec)
    if guest is None:
        await asyncio.to_thread(disks.grow, drv.dir(uuid) / "disk.qcow2", spec.root_gb)
        if power_on:
            await drv.power_on(uuid)
    elif not power_on:
        await drv.power_off(uuid)


async def abort_incoming(drv: QemuDriver, uuid: str) -> None:
    rec = drv.record(uuid)
    guest = drv._proc(uuid)
    if rec is not None and rec.get("host") == drv.host:
        return  # the guest is ours and running here: nothing incoming to undo
    if guest is not None:
        await drv._stop_process(uuid, guest)
    shutil.rmtree(drv.run_dir(uuid), ignore_errors=True)
    if rec is not None and rec.get("incoming"):
        shutil.rmtree(drv.dir(uuid), ignore_errors=True)


# --- source ----------------------------------------------------------------------------

async def migrate_out(drv: QemuDriver, uuid: str, target: MigrationTarget, *,
                      live: bool) -> MigrationStats | None:
    rec = drv._mine(uuid)
    mode = target.extra.get("mode", "")
    guest = drv._proc(uuid)
    stats = None
    if target.extra.get("base") and target.extra.get("base_image") != await asyncio.to_thread(
            disks.backing_image, drv.bases, drv.dir(uuid) / "disk.qcow2"):
        # The destination's base is not the one our overlay sits on (prepared without
        # describe_source, it took the server's image): send the whole disk instead.
        target = replace(target, extra={**target.extra, "base": "", "sync": "full"})
    if live:
        if guest is None:
            raise DriverError("live migration needs a running or paused guest")
        stats = await _live(drv, uuid, guest, target)
    else:
        async with drv.lock(uuid):
            await drv._stop_process(uuid, guest)
            if mode == "copy":
                await asyncio.to_thread(qemu_resize.copy_disks, drv.dir(uuid),
                                        Path(target.extra["dir"]),
                                        target.extra.get("base") or None)
            await asyncio.to_thread(qemu_resize.keep_for_revert, drv, uuid, rec,
                                    moved=mode != "shared")
    if mode == "shared":
        shutil.rmtree(drv.run_dir(uuid), ignore_errors=True)
        if live:
            return stats  # the destination takes ownership in finish_incoming
        rec.update(host=None, suspended=False)
        drv.save(uuid, rec)
    else:
        if live and "dir" in target.extra:  # its kernel and ramdisk go along (direct boot)
            await asyncio.to_thread(disks.hand_over_boot, drv.dir(uuid), Path(target.extra["dir"]))
        shutil.rmtree(drv.dir(uuid), ignore_errors=True)
    return stats


async def _live(drv: QemuDriver, uuid: str, guest: gq.Guest,
                target: MigrationTarget) -> MigrationStats:
    mode = target.extra.get("mode")
    run = drv.migrating[uuid] = jobs.LiveRun(guest)
    info: dict[str, Any] = {}
    disk: int | None = None
    t0 = time.monotonic()
    was_running = await drv._status(guest) == "running"
    try:
        async with drv.lock(uuid):
            speed = {"speed": drv.migration_bandwidth} if drv.migration_bandwidth else {}
            if mode == "block":
                await drv.qmp(guest, "drive-mirror", device="disk0",
                              target=target.extra["nbd"], format="raw", mode="existing",
                              sync=target.extra.get("sync", "full"),
                              **{"job-id": MIRROR_JOB, "auto-dismiss": False},
                              **({} if run.forced else speed))
                try:
                    await jobs.wait_job(drv, guest, MIRROR_JOB, ready=True)
                except DriverError:
                    await _cancel(drv, guest, MIRROR_JOB)
                    raise
                disk = next((int(j["len"]) for j in await drv.qmp(guest, "query-block-jobs")
                             if j["device"] == MIRROR_JOB), None)
            mirrored = time.monotonic() - t0
            try:
                if run.aborted:
                    raise MigrationAborted(f"live migration of {guest.spec.name} was aborted")
                info = await jobs.migrate(drv, guest, target.uri, run=run,
                                     bandwidth=drv.migration_bandwidth)
            except DriverError:
                if mode == "block":
                    await _cancel(drv, guest, MIRROR_JOB)
                raise
            if mode == "block":  # the guest is stopped: let the mirror write what is left
                try:
                    await _cancel(drv, guest, MIRROR_JOB, flush=True)
                except DriverError:
                    # The destination's disk misses writes: it must never run. The
                    # guest runs on here (cont takes its disk back from QEMU's hand-over).
                    await drv.qmp(guest, "cont")
                    raise
            ram = info.get("ram", {})
            drv.last_migration[uuid] = {
                "mode": mode, "total_ms": info.get("total-time"),
                "downtime_ms": info.get("downtime"), "ram_bytes": ram.get("transferred"),
                "disk_mirror_s": round(mirrored, 3), "wall_s": round(time.monotonic() - t0, 3),
                "forced": run.forced}
            log.info("guest %s migrated to %s: %s", uuid, target.host, drv.last_migration[uuid])
            await drv._stop_process(uuid, guest)
    except DriverError as exc:
        await _regain_disks(drv, guest, was_running)
        if run.aborted and not isinstance(exc, MigrationAborted):
            raise MigrationAborted(f"live migration of {guest.spec.name} was aborted: "
                                   f"{exc}") from exc
        raise
    finally:
        drv.migrating.pop(uuid, None)
    ram = info.get("ram", {})
    return MigrationStats(memory_total=ram.get("total"), memory_processed=ram.get("transferred"),
                          memory_remaining=ram.get("remaining", 0),
                          disk_total=disk, disk_processed=disk,
                          disk_remaining=0 if disk is not None else None,
                          downtime_ms=info.get("downtime"))


async def _regain_disks(drv: QemuDriver, guest: gq.Guest, was_running: bool) -> None:
    """After a live migration that QEMU reports failed or cancelled, on a guest that
    ran: `cont`, which re-activates its disks. QEMU 7.2 restarts the vCPUs itself but
    leaves the disks inactive (handed over) when the cancel lands in the switch-over;
    the guest's next write would hang or abort QEMU. Nothing is done when the
    migration may have completed (the destination may run the guest)."""
    if not was_running:
        return
    try:
        status = (await drv.qmp(guest, "query-migrate")).get("status")
        if status in ("failed", "cancelled"):
            await drv.qmp(guest, "cont")
    except DriverError as exc:
        log.warning("guest %s: its disks could not be checked after the failed migration: %s",
                    guest.spec.name, exc)


async def progress(drv: QemuDriver, uuid: str) -> MigrationStats | None:
    run = drv.migrating.get(uuid)
    if run is None:
        return None
    running = {j["device"]: j for j in await drv.qmp(run.guest, "query-block-jobs")}
    mirror = running.get(MIRROR_JOB)
    ram = (await drv.qmp(run.guest, "query-migrate")).get("ram", {})
    disk: dict[str, int | None] = {}
    if mirror is not None:
        size, done = int(mirror.get("len", 0)), int(mirror.get("offset", 0))
        disk = {"disk_total": size, "disk_processed": done, "disk_remaining": size - done}
    return MigrationStats(memory_total=ram.get("total"),
                          memory_processed=ram.get("transferred"),
                          memory_remaining=ram.get("remaining"), **disk)


async def force_complete(drv: QemuDriver, uuid: str) -> None:
    """Converge now: lift the speed cap (memory and disk mirror) and the pause budget,
    so QEMU stops the guest at its next check and sends what is left at full speed.
    QEMU pauses it (not the user), so the destination runs it on arrival."""
    run = drv.migrating.get(uuid)
    if run is None:
        raise DriverError(f"no live migration of {uuid} runs on {drv.host}")
    run.forced = True
    running = {j["device"] for j in await drv.qmp(run.guest, "query-block-jobs")}
    if MIRROR_JOB in running:
        await drv.qmp(run.guest, "block-job-set-speed", device=MIRROR_JOB, speed=0)
    await drv.qmp(run.guest, "migrate-set-parameters",
                  **{"downtime-limit": jobs.FORCED_DOWNTIME_MS,
                     "max-bandwidth": jobs.MAX_BANDWIDTH})


async def abort(drv: QemuDriver, uuid: str) -> None:
    run = drv.migrating.get(uuid)
    if run is None:
        raise DriverError(f"no live migration of {uuid} runs on {drv.host}")
    run.aborted = True
    running = {j["device"] for j in await drv.qmp(run.guest, "query-block-jobs")}
    if MIRROR_JOB in running:
        await drv.qmp(run.guest, "block-job-cancel", device=MIRROR_JOB, force=True)
    await drv.qmp(run.guest, "migrate_cancel")


async def _cancel(drv: QemuDriver, guest: gq.Guest, job: str, *, flush: bool = False) -> None:
    """End JOB (started with auto-dismiss off, so how it ended can be read). FLUSH (a
    ready mirror, after a migration): write the remaining dirty blocks to the target
    first, which a forced cancel would drop, and fail unless every one was written."""
    try:
        await drv.qmp(guest, "block-job-cancel", device=job, force=not flush)
    except DriverError:
        pass  # ending already (an abort cancelled it, or it failed): read how below
    try:
        await jobs.wait_job(drv, guest, job, ready=False, timeout=120 if flush else 30)
        ended = {j["id"]: j for j in await drv.qmp(guest, "query-jobs")}.get(job)
        if ended is not None:
            await drv.qmp(guest, "job-dismiss", id=job)
    except DriverError:
        if flush:
            raise
        return
    if flush and ended is not None and ended.get("error"):
        raise DriverError(f"the disk mirror of {guest.spec.name} failed to write its last "
                          f"blocks: {ended['error']}")
