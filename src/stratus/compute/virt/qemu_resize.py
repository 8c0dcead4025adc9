"""Cold migration and resize for the QEMU driver, on the source: the stopped guest's
disks copied to a destination that does not share them (``copy`` mode of
:mod:`qemu_migrate`), and the source's copy kept until the user confirms or
reverts (Nova's ``<uuid>_resize``); the new flavor's sizes applied to the disk.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratus.compute.virt import qemu_disks as disks
from stratus.compute.virt.driver import DriverError, GuestSpec

if TYPE_CHECKING:
    from stratus.compute.virt.qemu import QemuDriver


async def resize_disk(drv: QemuDriver, uuid: str, spec: GuestSpec) -> None:
    """Grow the root disk to the flavor (never shrink); vCPUs/RAM apply at next start."""
    rec = drv._mine(uuid)
    disk = drv.dir(uuid) / "disk.qcow2"
    async with drv.lock(uuid):
        guest = drv._proc(uuid)
        wanted = spec.root_gb * disks.GIB
        if spec.root_gb > 0 and await asyncio.to_thread(disks.virtual_size, disk) < wanted:
            if guest is not None:
                await drv.qmp(guest, "block_resize", device="disk0", size=wanted)
            else:
                await asyncio.to_thread(disks.grow, disk, spec.root_gb)
        rec.update(vcpus=spec.vcpus, memory_mb=spec.memory_mb, root_gb=spec.root_gb)
        drv.save(uuid, rec)


def kept_dir(drv: QemuDriver, uuid: str) -> Path:
    return drv.instances / f"{uuid}_resize"


def keep_for_revert(drv: QemuDriver, uuid: str, rec: dict[str, Any], *, moved: bool) -> None:
    """Keep the stopped guest's files as ``<uuid>_resize`` (Nova's name) until the
    user confirms or reverts. Copied to another instances directory, the files
    are simply renamed; when the destination works on the same files (shared
    storage, or a resize on this host) the overlay is copied before it grows,
    and the kernel and ramdisk, never written in place, are hard-linked.
    The kept record has no ``host``, so nothing lists it as a guest."""
    kept = kept_dir(drv, uuid)
    shutil.rmtree(kept, ignore_errors=True)
    if moved:
        os.replace(drv.dir(uuid), kept)
    else:
        shutil.copytree(drv.dir(uuid), kept, ignore=shutil.ignore_patterns("run-*", "*.tmp"),
                        copy_function=_link_boot_files)
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


def _link_boot_files(src: str, dst: str) -> None:
    if Path(src).name.removeprefix("rescue-") in ("kernel", "ramdisk"):
        disks.place_file(Path(src), Path(dst))
    else:
        shutil.copy2(src, dst)


def _kept_source(kept: Path) -> str | None:
    try:
        return json.loads((kept / "guest.json").read_text()).get("resize_source")
    except (OSError, ValueError):
        return None


def copy_disks(source: Path, dest: Path, dest_base: str | None) -> None:
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
