"""The ``guest-seed`` service: make the test guest the cloud's default image.

When this process's compute agent runs the QEMU driver, after start-up (in
the background, so ``stratus up`` is ready as fast as ever) it builds the
guest if the cache has none (`stratus image build`), probes KVM once per host,
and uploads the disk to the image service as ``stratus-guest`` (public,
qcow2) unless an image of that name exists, with a progress bar. With the
fake driver it does nothing at all.
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
    """Build (cached), probe KVM (cached), upload unless present; returns the image id."""
    from stratus.guest.builder import build_guest
    from stratus.guest.qemu import probe_accel
    from stratus.image.client import ImageClient

    data_dir = runtime.settings.data_dir
    artifacts = await asyncio.to_thread(build_guest, data_dir / "guest")
    probe = await asyncio.to_thread(probe_accel, data_dir, artifacts.disk)
    if not probe.cached:
        log.info("accelerator for guests on this host: %s (%s)", probe.accel, probe.detail)
    async with ImageClient.from_runtime(runtime, headers=runtime.service_headers) as images:
        found = (await images._call("GET", "/v2/images",
                                    params={"name": IMAGE_NAME})).json()["images"]
        if found:
            return str(found[0]["id"])
        image = await images.create(name=IMAGE_NAME, disk_format="qcow2",
                                    container_format="bare", visibility="public",
                                    min_disk=0, min_ram=128, os_distro="stratus-guest",
                                    hw_disk_bus="virtio", hw_vif_model="virtio")
        size = artifacts.disk.stat().st_size
        try:
            await images.upload(image["id"], _with_progress(artifacts.disk, size), size)
        except BaseException:
            await asyncio.shield(images.delete(image["id"]))
            raise
    log.info("uploaded the default image %s (%s, %.1f MiB)", IMAGE_NAME, image["id"],
             size / 2**20)
    return str(image["id"])


async def _with_progress(path: Path, size: int) -> AsyncIterator[bytes]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        DownloadColumn(), TransferSpeedColumn(),
                        console=Console(stderr=True), transient=False)
    with progress, path.open("rb") as f:
        task = progress.add_task(f"uploading image {IMAGE_NAME}", total=size)
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            progress.advance(task, len(chunk))
            yield chunk


async def build(runtime: Runtime) -> Any:
    return GuestSeedService(runtime)
