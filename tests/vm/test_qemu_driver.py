"""The driver contract and migrations on real QEMU guests (the QEMU driver, no cloud around it).

The same behaviours tests/unit/compute/test_fake_driver.py asks of the fake
driver, checked here from inside the guest where it matters (ticks, boot
count, up marker). Guests boot their kernel directly (the image names a kernel
and a ramdisk image, as the seeded `stratus-guest` does), ~3.5 s each under TCG.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from stratus.compute.states import PowerState
from stratus.compute.virt.driver import DriverError, GuestExists, GuestSpec
from stratus.compute.virt.qemu import QemuDriver
from stratus.guest import qemu as gq
from stratus.guest.builder import GuestArtifacts

pytestmark = pytest.mark.vm
BOOT = 120


def spec(uuid: str, image_id: str = "guest") -> GuestSpec:
    return GuestSpec(uuid=uuid, name=f"instance-{uuid}", vcpus=1, memory_mb=128, root_gb=1,
                     image_id=image_id, hostname=f"vm-{uuid}",
                     user_data="IyEvYmluL3NoCmVjaG8gaGVsbG8tdXNlci1kYXRhCg==")


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sq-", dir="/tmp"))  # short: unix socket paths
    yield path
    for pidfile in path.glob("**/qemu.pid"):
        found = gq.attach(gq.GuestSpec(disk=pidfile, workdir=pidfile.parent))
        if found is not None:
            found.kill()
    shutil.rmtree(path, ignore_errors=True)


class Images:
    """An image source over the built guest: image "guest" is its disk and names the
    kernel ("kernel", vmlinux) and ramdisk ("ramdisk") images, as the seeded image does;
    EXTRA maps more image ids to data (no record: they boot from their disk)."""

    def __init__(self, guest_image: GuestArtifacts, extra: dict[str, bytes] | None = None):
        self.files = {"guest": guest_image.disk, "ramdisk": guest_image.initrd,
                      "kernel": guest_image.vmlinux or guest_image.kernel}
        self.cmdline = guest_image.cmdline
        self.extra = extra or {}

    async def __call__(self, image_id: str) -> AsyncIterator[bytes]:
        if image_id in self.extra:
            yield self.extra[image_id]
            return
        with self.files[image_id].open("rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk

    async def show(self, image_id: str) -> dict[str, Any] | None:
        if image_id not in self.files:
            return None
        record = {"id": image_id, "status": "active",
                  "size": self.files[image_id].stat().st_size}
        if image_id == "guest":
            record.update(kernel_id="kernel", ramdisk_id="ramdisk",
                          os_command_line=self.cmdline)
        return record


def images(guest_image: GuestArtifacts, extra: dict[str, bytes] | None = None) -> Images:
    return Images(guest_image, extra)


def driver(root: Path, name: str, guest_image: GuestArtifacts, accel: str,
           instances: str = "instances") -> QemuDriver:
    return QemuDriver(name, instances_dir=root / instances, base_dir=root / f"{instances}-base",
                      accel=accel, vnc=False, soft_timeout=60)


def log(d: QemuDriver, uuid: str) -> Path:
    return d.run_dir(uuid) / "serial.log"


def ticks(d: QemuDriver, uuid: str, since: int = 0) -> list[int]:
    return [int(t) for t in gq.TICK_RE.findall(gq._read_from(log(d, uuid), since))]


async def wait_ticks(d: QemuDriver, uuid: str, n: int, since: int = 0) -> list[int]:
    deadline = time.monotonic() + 60
    while len(found := ticks(d, uuid, since)) < n:
        assert time.monotonic() < deadline, (await d.console_output(uuid, 20))
        await asyncio.sleep(0.2)
    return found


def up(d: QemuDriver, uuid: str, since: int = 0) -> gq.Marker:
    return gq.wait_for_marker(log(d, uuid), BOOT, since=since)


def size(d: QemuDriver, uuid: str) -> int:
    return gq._size(log(d, uuid))


async def test_lifecycle_contract_on_a_real_guest(root: Path, guest_image: GuestArtifacts,
                                                  accel: str) -> None:
    d = driver(root, "h1", guest_image, accel)
    source = images(guest_image)
    await d.spawn(spec("u1"), source)
    assert await d.power_state("u1") == PowerState.RUNNING
    with pytest.raises(GuestExists):
        await d.spawn(spec("u1"), source)
    marker = await asyncio.to_thread(up, d, "u1")
    assert marker.hostname == "vm-u1"  # from the config drive
    assert d.record("u1")["boot"]["kernel_id"] == "kernel"  # its image names a kernel
    await wait_ticks(d, "u1", 2)

    await d.pause("u1")
    assert await d.power_state("u1") == PowerState.PAUSED
    frozen = size(d, "u1")
    await asyncio.sleep(2.5)
    assert size(d, "u1") == frozen, "ticks went on while paused"
    await d.unpause("u1")
    await wait_ticks(d, "u1", 1, since=frozen)

    last = ticks(d, "u1")[-1]
    await d.suspend("u1")
    assert await d.power_state("u1") == PowerState.SUSPENDED
    assert d.pid("u1") is None, "QEMU still runs while suspended"
    mark = size(d, "u1")
    await d.resume("u1")
    assert await d.power_state("u1") == PowerState.RUNNING
    after = await wait_ticks(d, "u1", 1, since=mark)
    assert after[0] == last + 1 or after[0] == last + 2  # the same boot goes on
    assert b"stratus-guest up" not in gq._read_from(log(d, "u1"), mark)

    # A new driver (an agent restart) finds the running QEMU again from its pidfile.
    again = driver(root, "h1", guest_image, accel)
    assert [(g.uuid, g.power_state) for g in await again.list_guests()] == [
        ("u1", PowerState.RUNNING)]

    mark = size(d, "u1")
    await d.power_off("u1", timeout=60)  # ACPI: the guest says goodbye
    assert await d.power_state("u1") == PowerState.SHUTDOWN
    assert b"powering off" in gq._read_from(log(d, "u1"), mark)
    await d.power_off("u1")
    mark = size(d, "u1")
    await d.power_on("u1")
    assert (await asyncio.to_thread(up, d, "u1", mark)).hostname == "vm-u1"
    assert b"boot=2" in gq._read_from(log(d, "u1"), mark)
    mark = size(d, "u1")
    await d.reboot("u1", hard=True)
    await asyncio.to_thread(up, d, "u1", mark)
    assert b"boot=3" in gq._read_from(log(d, "u1"), mark)
    out = await d.console_output("u1", length=1)
    assert out.count("\n") == 1

    d.kill_behind_our_back("u1")
    assert await again.power_state("u1") == PowerState.SHUTDOWN
    with pytest.raises(DriverError):
        await d.pause("u1")
    await d.destroy("u1")
    await d.destroy("u1")
    assert await d.power_state("u1") == PowerState.NOSTATE
    assert not (root / "instances" / "u1").exists()


async def test_snapshot_streams_a_standalone_qcow2_that_boots(root: Path,
                                                              guest_image: GuestArtifacts,
                                                              accel: str) -> None:
    d = driver(root, "h1", guest_image, accel)
    await d.spawn(spec("s1"), images(guest_image))
    await asyncio.to_thread(up, d, "s1")
    await wait_ticks(d, "s1", 3)
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(chunk)

    written = await d.snapshot("s1", sink)
    data = b"".join(chunks)
    assert written == len(data) and len(chunks) > 1 and data[:4] == b"QFI\xfb"
    assert not list((root / "instances" / "s1").glob("snapshot-top*")), "temporary overlay left"
    mark = size(d, "s1")
    await wait_ticks(d, "s1", 1, since=mark)  # the guest ran on through the snapshot
    await d.destroy("s1")

    # The snapshot boots from its own disk (syslinux) and carries the tick counter over.
    await d.spawn(spec("s2", image_id="snap"), images(guest_image, {"snap": data}))
    assert d.record("s2")["boot"] is None
    await asyncio.to_thread(up, d, "s2")
    console = gq._read_from(log(d, "s2"), 0)
    assert b"boot=2" in console
    assert ticks(d, "s2") == [] or ticks(d, "s2")[0] > 3
    await d.destroy("s2")


@pytest.mark.parametrize("shared", [True, False], ids=["shared-storage", "block-nbd"])
async def test_live_migration_keeps_the_guest_running(root: Path, guest_image: GuestArtifacts,
                                                      accel: str, shared: bool) -> None:
    src = driver(root, "src", guest_image, accel)
    dst = driver(root, "dst", guest_image, accel, "instances" if shared else "instances-b")
    await src.spawn(spec("m1"), images(guest_image))
    await asyncio.to_thread(up, src, "m1")
    await wait_ticks(src, "m1", 2)
    pid = src.pid("m1")
    target = await dst.prepare_incoming(spec("m1"), live=True, block_migration=not shared)
    assert target.extra["mode"] == ("shared" if shared else "block")
    await src.migrate_out("m1", target, live=True)
    await dst.finish_incoming(spec("m1"), target, power_on=True)
    stats = src.last_migration["m1"]
    assert stats["downtime_ms"] is not None and stats["total_ms"] is not None
    assert await dst.power_state("m1") == PowerState.RUNNING
    assert await src.power_state("m1") == PowerState.NOSTATE
    assert pid is not None and not gq.Guest(spec=gq.GuestSpec(disk=root, workdir=root),
                                            pid=pid).alive()
    last = ticks(src, "m1")[-1] if log(src, "m1").exists() else 0
    after = await wait_ticks(dst, "m1", 2)
    assert b"stratus-guest up" not in gq._read_from(log(dst, "m1"), 0), "the guest rebooted"
    assert after[0] > last - 1
    if not shared:
        assert not (root / "instances" / "m1").exists()
    # Its kernel came along: the next start on the destination boots it directly again.
    assert dst.record("m1")["boot"]["kernel_id"] == "kernel"
    assert (dst.dir("m1") / "kernel").exists()
    await dst.destroy("m1")


async def test_cold_migration_copies_the_stopped_disk(root: Path, guest_image: GuestArtifacts,
                                                      accel: str) -> None:
    src = driver(root, "src", guest_image, accel)
    dst = driver(root, "dst", guest_image, accel, "instances-b")
    await src.spawn(spec("c1"), images(guest_image))
    await asyncio.to_thread(up, src, "c1")
    await src.power_off("c1")
    bigger = GuestSpec(**{**spec("c1").__dict__, "root_gb": 2, "memory_mb": 160})
    target = await dst.prepare_incoming(bigger, live=False, block_migration=True)
    await src.migrate_out("c1", target, live=False)
    await dst.finish_incoming(bigger, target, power_on=True)
    marker = await asyncio.to_thread(up, dst, "c1")
    assert marker.hostname == "vm-c1"
    assert b"boot=2" in gq._read_from(log(dst, "c1"), 0)  # the disk came along
    assert await src.power_state("c1") == PowerState.NOSTATE
    assert dst.record("c1")["memory_mb"] == 160
    assert b"-kernel" in gq._read_from(Path(f"/proc/{dst.pid('c1')}/cmdline"), 0).split(b"\0")
    await dst.destroy("c1")
