"""Migration for the QEMU driver: live (QMP migrate over TCP), cold (disk files moved),
and the QMP job helpers suspend and snapshot share with it.

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
  destination keeps the mirrored disk). The destination QEMU waits with -S and
  runs the guest only then, in ``finish_incoming`` (libvirt's order: it must
  not run on a disk still being written), so the guest's real pause is longer
  than QEMU's ``downtime`` figure by that flush and one round trip. The
  destination fetches the guest's image into its own base cache first (through
  the agent's image source), so the disk it keeps is an overlay on it.
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
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratus.compute.virt import qemu_disks as disks
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
MAX_BANDWIDTH = 8 << 30
DOWNTIME_LIMIT_MS = 300  # QEMU's default pause budget at switch-over
# A live migration's pause budget per RAM pass: QEMU switches over once what is left
# fits the budget at the measured speed. 300 ms at loopback speed lets it stop the
# guest with ~100 MiB unsent (pauses of ~110 ms here); 20 ms waits for the next pass
# (~3 ms). Each further pass (a guest dirtying memory fast) raises it, so it converges.
DOWNTIME_STEPS_MS = (20, 50, 100, 200, DOWNTIME_LIMIT_MS)
FORCED_DOWNTIME_MS = 2_000_000  # QEMU's maximum: switch over at the next pass
POLL = 0.02
MIRROR_JOB = "stratus-mirror"


class LiveRun:
    """A live migration in flight on the source, for progress, abort and force."""

    def __init__(self, guest: gq.Guest) -> None:
        self.guest = guest
        self.aborted = False
        self.forced = False


async def migrate(drv: QemuDriver, guest: gq.Guest, uri: str, timeout: float = 600,
                  run: LiveRun | None = None, bandwidth: int = 0) -> dict[str, Any]:
    """Run a QMP migration to URI until it completes; returns the final query-migrate.
    BANDWIDTH caps it (bytes/s; 0 or a forced RUN: as fast as it goes). A live RUN
    starts with a small pause budget, raised pass by pass (``DOWNTIME_STEPS_MS``)."""
    forced = run is not None and run.forced
    step = 0
    limit = (FORCED_DOWNTIME_MS if forced else
             DOWNTIME_STEPS_MS[0] if run is not None else DOWNTIME_LIMIT_MS)
    cap = bandwidth if bandwidth and not forced else MAX_BANDWIDTH
    await drv.qmp(guest, "migrate-set-parameters", **{"max-bandwidth": cap,
                                                      "downtime-limit": limit})
    await drv.qmp(guest, "migrate", uri=uri)
    deadline = time.monotonic() + timeout
    while True:
        info = await drv.qmp(guest, "query-migrate")
        status = info.get("status")
        if status == "completed":
            return dict(info)
        passes = int(info.get("ram", {}).get("dirty-sync-count", 0))
        wanted = min(max(passes - 2, 0), len(DOWNTIME_STEPS_MS) - 1)
        if run is not None and not run.forced and wanted > step and status == "active":
            step = wanted
            await drv.qmp(guest, "migrate-set-parameters",
                          **{"downtime-limit": DOWNTIME_STEPS_MS[step]})
            if run.forced:  # forced meanwhile: its budget wins
                await drv.qmp(guest, "migrate-set-parameters",
                              **{"downtime-limit": FORCED_DOWNTIME_MS})
        if status in ("failed", "cancelled"):
            if run is not None and run.aborted:
                raise MigrationAborted(f"live migration of {guest.spec.name} was aborted")
            raise DriverError(f"migration of {guest.spec.name} to {uri} {status}: "
                              f"{info.get('error-desc', 'no detail')}")
        if time.monotonic() > deadline:
            await drv.qmp(guest, "migrate_cancel")
            raise DriverError(f"migration of {guest.spec.name} did not finish in {timeout:.0f}s")
        await asyncio.sleep(POLL)


async def wait_incoming(drv: QemuDriver, guest: gq.Guest, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while (status := (await drv.qmp(guest, "query-status"))["status"]) == "inmigrate":
        if not guest.alive() or time.monotonic() > deadline:
            raise DriverError(f"incoming migration of {guest.spec.name} did not finish "
                              f"({status})")
        await asyncio.sleep(POLL)


async def _wait_job(drv: QemuDriver, guest: gq.Guest, job: str, *, ready: bool,
                    timeout: float = 600) -> None:
    """Until JOB is ready (READY) or gone (not READY)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = {j["device"]: j for j in await drv.qmp(guest, "query-block-jobs")}
        found = jobs.get(job)
        if ready and found is not None and found.get("ready"):
            return
        if found is None:
            if ready:
                raise DriverError(f"block job {job} of {guest.spec.name} ended early")
            return
        if time.monotonic() > deadline:
            raise DriverError(f"block job {job} of {guest.spec.name} timed out")
        await asyncio.sleep(POLL)


async def block_commit(drv: QemuDriver, guest: gq.Guest, base: Path) -> None:
    """Fold the active layer of disk0 back into BASE (after a live snapshot)."""
    job = "stratus-commit"
    await drv.qmp(guest, "block-commit", device="disk0", base=str(base), **{"job-id": job})
    await _wait_job(drv, guest, job, ready=True)
    await drv.qmp(guest, "block-job-complete", device=job)
    await _wait_job(drv, guest, job, ready=False)


# --- destination -----------------------------------------------------------------------

async def prepare_incoming(drv: QemuDriver, spec: GuestSpec, *, live: bool,
                           block_migration: bool | None,
                           image: ImageSource | None = None) -> MigrationTarget:
    """Shared storage is when the guest's directory, owned by a host, is already
    here; ``block_migration`` None picks the mode from that, True/False insist
    (and fail first, as Nova's pre-checks do, when the storage says otherwise)."""
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
        return await _prepare(drv, spec, live=live, shared=shared, image=image)
    except BaseException:
        if not shared:
            await abort_incoming(drv, uuid)
        raise


async def _prepare(drv: QemuDriver, spec: GuestSpec, *, live: bool, shared: bool,
                   image: ImageSource | None) -> MigrationTarget:
    uuid = spec.uuid
    d = drv.dir(uuid)
    extra: dict[str, str] = {"mode": "shared" if shared else ("block" if live else "copy"),
                             "dir": str(d)}
    if not shared:
        if spec.image_id and image is not None:
            try:  # the guest's base image here too: only its overlay has to move
                await drv.bases.ensure(spec.image_id, image)
            except DriverError as exc:
                log.warning("guest %s: image %s not cached on %s, copying the whole disk: "
                            "%s", uuid, spec.image_id, drv.host, exc)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        rec = drv.new_record(spec) | {"host": None, "incoming": True}
        base = drv.bases.path(spec.image_id) if spec.image_id else None
        if base is not None and base.exists():
            extra["base"] = str(base)
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


async def finish_incoming(drv: QemuDriver, spec: GuestSpec, target: MigrationTarget, *,
                          power_on: bool) -> None:
    uuid = spec.uuid
    rec = drv.record(uuid)
    if rec is None:
        raise DriverError(f"no incoming guest {uuid} on {drv.host}")
    guest = drv._proc(uuid)
    if target.uri.startswith("tcp:"):
        if guest is None:
            raise DriverError(f"the incoming QEMU of {uuid} on {drv.host} is gone")
        await wait_incoming(drv, guest)
        if target.extra.get("mode") == "block":
            # Started with -S: the source's mirror has flushed its last writes into
            # our disk by now (migrate_out returned); only then may the guest run.
            await drv.qmp(guest, "nbd-server-stop")
            if power_on:
                await drv.qmp(guest, "cont")
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
    if live:
        if guest is None:
            raise DriverError("live migration needs a running or paused guest")
        stats = await _live(drv, uuid, guest, target)
    else:
        async with drv.lock(uuid):
            await drv._stop_process(uuid, guest)
            if mode == "copy":
                await asyncio.to_thread(_copy_disks, drv.dir(uuid), Path(target.extra["dir"]),
                                        target.extra.get("base"))
            await asyncio.to_thread(_keep_for_revert, drv, uuid, rec, moved=mode != "shared")
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


# --- cold migration/resize: the source's copy until confirm or revert -------------------

def kept_dir(drv: QemuDriver, uuid: str) -> Path:
    return drv.instances / f"{uuid}_resize"


def _keep_for_revert(drv: QemuDriver, uuid: str, rec: dict[str, Any], *, moved: bool) -> None:
    """Keep the stopped guest's files as ``<uuid>_resize`` (Nova's name) until the
    user confirms or reverts. Copied to another instances directory, the files
    are simply renamed; when the destination works on the same files (shared
    storage, or a resize on this host) the overlay is copied before it grows.
    The kept record has no ``host``, so nothing lists it as a guest."""
    kept = kept_dir(drv, uuid)
    shutil.rmtree(kept, ignore_errors=True)
    if moved:
        os.replace(drv.dir(uuid), kept)
    else:
        shutil.copytree(drv.dir(uuid), kept, ignore=shutil.ignore_patterns("run-*", "*.tmp"))
    for run in kept.glob("run-*"):
        shutil.rmtree(run, ignore_errors=True)
    (kept / "guest.json").write_text(json.dumps(
        {**rec, "host": None, "suspended": False, "resize_source": drv.host}, indent=1) + "\n")


async def confirm(drv: QemuDriver, uuid: str) -> None:
    kept = kept_dir(drv, uuid)
    if kept.exists() and _kept_source(kept) in (drv.host, None):
        await asyncio.to_thread(shutil.rmtree, kept, True)


async def revert(drv: QemuDriver, spec: GuestSpec, *, power_on: bool) -> None:
    """Put the kept files back in place (the destination destroyed its copy first)
    and start the guest with the old flavor: its disk is the original, size and all."""
    uuid = spec.uuid
    kept = kept_dir(drv, uuid)
    if not kept.exists() or _kept_source(kept) != drv.host:
        raise DriverError(f"no copy of guest {uuid} kept on {drv.host} to revert to")
    async with drv.lock(uuid):
        current = drv.record(uuid)
        if current is not None and current.get("host") not in (None, drv.host):
            raise DriverError(f"guest {uuid} still belongs to {current['host']}; destroy it "
                              "there before reverting")
        if drv._proc(uuid) is not None:
            await drv._stop_process(uuid, drv._proc(uuid))
        shutil.rmtree(drv.dir(uuid), ignore_errors=True)
        os.replace(kept, drv.dir(uuid))
        rec = drv.record(uuid) or {}
        rec.pop("resize_source", None)
        rec.update(host=drv.host, vcpus=spec.vcpus, memory_mb=spec.memory_mb,
                   root_gb=spec.root_gb, suspended=False)
        drv.save(uuid, rec)
        if power_on:
            await drv._start(uuid, rec)


def _kept_source(kept: Path) -> str | None:
    try:
        return json.loads((kept / "guest.json").read_text()).get("resize_source")
    except (OSError, ValueError):
        return None


async def _live(drv: QemuDriver, uuid: str, guest: gq.Guest,
                target: MigrationTarget) -> MigrationStats:
    mode = target.extra.get("mode")
    run = drv.migrating[uuid] = LiveRun(guest)
    info: dict[str, Any] = {}
    disk: int | None = None
    t0 = time.monotonic()
    try:
        async with drv.lock(uuid):
            speed = {"speed": drv.migration_bandwidth} if drv.migration_bandwidth else {}
            if mode == "block":
                await drv.qmp(guest, "drive-mirror", device="disk0",
                              target=target.extra["nbd"], format="raw", mode="existing",
                              sync=target.extra.get("sync", "full"), **{"job-id": MIRROR_JOB},
                              **({} if run.forced else speed))
                try:
                    await _wait_job(drv, guest, MIRROR_JOB, ready=True)
                except DriverError:
                    await _cancel(drv, guest, MIRROR_JOB)
                    raise
                disk = next((int(j["len"]) for j in await drv.qmp(guest, "query-block-jobs")
                             if j["device"] == MIRROR_JOB), None)
            mirrored = time.monotonic() - t0
            try:
                if run.aborted:
                    raise MigrationAborted(f"live migration of {guest.spec.name} was aborted")
                info = await migrate(drv, guest, target.uri, run=run,
                                     bandwidth=drv.migration_bandwidth)
            except DriverError:
                if mode == "block":
                    await _cancel(drv, guest, MIRROR_JOB)
                raise
            if mode == "block":  # the guest is stopped: let the mirror write what is left
                await _cancel(drv, guest, MIRROR_JOB, flush=True)
            ram = info.get("ram", {})
            drv.last_migration[uuid] = {
                "mode": mode, "total_ms": info.get("total-time"),
                "downtime_ms": info.get("downtime"), "ram_bytes": ram.get("transferred"),
                "disk_mirror_s": round(mirrored, 3), "wall_s": round(time.monotonic() - t0, 3),
                "forced": run.forced}
            log.info("guest %s migrated to %s: %s", uuid, target.host, drv.last_migration[uuid])
            await drv._stop_process(uuid, guest)
    except DriverError as exc:
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


async def progress(drv: QemuDriver, uuid: str) -> MigrationStats | None:
    run = drv.migrating.get(uuid)
    if run is None:
        return None
    jobs = {j["device"]: j for j in await drv.qmp(run.guest, "query-block-jobs")}
    mirror = jobs.get(MIRROR_JOB)
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
    jobs = {j["device"] for j in await drv.qmp(run.guest, "query-block-jobs")}
    if MIRROR_JOB in jobs:
        await drv.qmp(run.guest, "block-job-set-speed", device=MIRROR_JOB, speed=0)
    await drv.qmp(run.guest, "migrate-set-parameters",
                  **{"downtime-limit": FORCED_DOWNTIME_MS, "max-bandwidth": MAX_BANDWIDTH})


async def abort(drv: QemuDriver, uuid: str) -> None:
    run = drv.migrating.get(uuid)
    if run is None:
        raise DriverError(f"no live migration of {uuid} runs on {drv.host}")
    run.aborted = True
    jobs = {j["device"] for j in await drv.qmp(run.guest, "query-block-jobs")}
    if MIRROR_JOB in jobs:
        await drv.qmp(run.guest, "block-job-cancel", device=MIRROR_JOB, force=True)
    await drv.qmp(run.guest, "migrate_cancel")


async def _cancel(drv: QemuDriver, guest: gq.Guest, job: str, *, flush: bool = False) -> None:
    """End JOB. FLUSH (a ready mirror, after a migration): write the remaining dirty
    blocks to the target first, which a forced cancel would drop."""
    try:
        await drv.qmp(guest, "block-job-cancel", device=job, force=not flush)
        await _wait_job(drv, guest, job, ready=False, timeout=120 if flush else 30)
    except DriverError:
        if flush:
            raise


def _copy_disks(source: Path, dest: Path, dest_base: str | None) -> None:
    if not dest.is_dir():
        raise DriverError(f"cold migration without shared storage copies into {dest}, which "
                          "is not reachable from this host")
    overlay = source / "disk.qcow2"
    tmp = dest / "disk.qcow2.part"
    if dest_base:
        shutil.copyfile(overlay, tmp)
        fmt = disks.image_info(Path(dest_base))["format"]
        disks.qemu_img("rebase", "-u", "-F", fmt, "-b", dest_base, tmp)
    else:
        disks.qemu_img("convert", "-O", "qcow2", overlay, tmp)
    tmp.replace(dest / "disk.qcow2")
    if (source / "config.img").exists():
        shutil.copyfile(source / "config.img", dest / "config.img")
    disks.hand_over_boot(source, dest)
