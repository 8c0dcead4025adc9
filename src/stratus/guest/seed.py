"""The ``guest-seed`` service: make the test guest the cloud's default image.

When this process's compute agent runs the QEMU driver, after start-up (in
the background, so ``stratus up`` is ready as fast as ever) it builds the
guest if the cache has none (`stratus image build`), probes KVM once per host,
and uploads it to the image service, with a progress bar, as three public
images: ``stratus-guest-kernel`` (aki), ``stratus-guest-ramdisk`` (ari) and
``stratus-guest`` (qcow2), whose ``kernel_id``/``ramdisk_id``/``os_command_line``
properties name the other two, so servers boot the kernel directly (half the
boot time under TCG; the disk also boots by itself, through its boot loader).
What exists is kept. With the fake driver it does nothing at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from stratus.runtime import Runtime, Service
from stratus.settings import Hypervisor

log = logging.getLogger("stratus.guest.seed")

IMAGE_NAME = "stratus-guest"
KERNEL_NAME = "stratus-guest-kernel"
RAMDISK_NAME = "stratus-guest-ramdisk"
CHUNK = 1 << 20


class GuestSeedService(Service):
    name = "guest-seed"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.task: asyncio.Task[str | None] | None = None

    def wanted(self) -> bool:
        agent = self.runtime.services.get("compute-agent")
        return getattr(agent, "hypervisor", None) == Hypervisor.QEMU

    async def start(self) -> None:
        if self.wanted():
            self.task = asyncio.create_task(self._seed(), name="guest-seed")

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except BaseException:  # noqa: BLE001 - stopping
                pass

    async def _seed(self) -> str | None:
        try:
            return await seed(self.runtime)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not upload the %s image", IMAGE_NAME)
            return None


async def seed(runtime: Runtime) -> str:
    """Build (cached), probe KVM (cached), upload what is missing; returns the disk image id."""
    from stratus.guest.builder import build_guest
    from stratus.guest.qemu import probe_accel
    from stratus.image.client import ImageClient

    data_dir = runtime.settings.data_dir
    artifacts = await asyncio.to_thread(build_guest, data_dir / "guest")
    probe = await asyncio.to_thread(probe_accel, data_dir, artifacts.disk)
    if not probe.cached:
        log.info("accelerator for guests on this host: %s (%s)", probe.accel, probe.detail)
    async with ImageClient.from_runtime(runtime, headers=runtime.service_headers) as images:
        return await seed_images(images, artifacts)


async def seed_images(images: Any, artifacts: Any) -> str:
    """The kernel (AKI), the ramdisk (ARI), then the disk naming both, so the disk is
    never active without its boot properties. Safe to run again: what is there and
    active stays; an upload that broke off (not active) is redone; a disk image
    from before kernels were seeded gets the properties it lacks."""
    kernel = artifacts.vmlinux or artifacts.kernel  # vmlinux: the fast (PVH) entry
    kernel_id = await _ensure(images, KERNEL_NAME, kernel, disk_format="aki",
                              container_format="aki")
    ramdisk_id = await _ensure(images, RAMDISK_NAME, artifacts.initrd, disk_format="ari",
                               container_format="ari")
    boot = {"kernel_id": kernel_id, "ramdisk_id": ramdisk_id,
            "os_command_line": artifacts.cmdline}
    image_id = await _ensure(images, IMAGE_NAME, artifacts.disk, disk_format="qcow2",
                             container_format="bare", min_disk=0, min_ram=128,
                             os_distro="stratus-guest", hw_disk_bus="virtio",
                             hw_vif_model="virtio", **boot)
    found = await images.get(image_id)
    missing = [{"op": "add", "path": f"/{k}", "value": v} for k, v in boot.items()
               if not found.get(k)]
    if missing:
        await images.update(image_id, missing)
        log.info("image %s now boots its kernel directly (%s)", IMAGE_NAME,
                 ", ".join(op["path"][1:] for op in missing))
    return image_id


async def _ensure(images: Any, name: str, path: Path, **fields: Any) -> str:
    """The id of the active public image NAME, uploading PATH as it when there is none."""
    for image in await images.list(name=name):
        if image["status"] == "active":
            return str(image["id"])
        log.info("image %s (%s) is %s: uploading it again", name, image["id"], image["status"])
        await images.delete(image["id"])
    image = await images.create(name=name, visibility="public", **fields)
    size = path.stat().st_size
    try:
        await images.upload(image["id"], _with_progress(path, name, size), size)
    except BaseException:
        await asyncio.shield(images.delete(image["id"]))
        raise
    log.info("uploaded the image %s (%s, %.1f MiB)", name, image["id"], size / 2**20)
    return str(image["id"])


async def _with_progress(path: Path, name: str, size: int) -> AsyncIterator[bytes]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        DownloadColumn(), TransferSpeedColumn(),
                        console=Console(stderr=True), transient=False)
    with progress, path.open("rb") as f:
        task = progress.add_task(f"uploading image {name}", total=size)
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            progress.advance(task, len(chunk))
            yield chunk


async def build(runtime: Runtime) -> Any:
    return GuestSeedService(runtime)
