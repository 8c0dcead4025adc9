"""Resize keeps the source disk until confirm, so revert really restores it
(the QEMU driver, no cloud around it): after a resize to a bigger disk and a
revert, the guest runs on its original overlay, at its original size."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stratus.compute.virt import qemu_disks as disks
from stratus.guest import qemu as gq
from stratus.guest.builder import GuestArtifacts
from tests.vm.test_qemu_driver import driver, images, log, root, spec, up  # noqa: F401

pytestmark = pytest.mark.vm


def _boots(d: object, uuid: str) -> bytes:
    return gq._read_from(log(d, uuid), 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["same-host", "other-host"])
async def test_resize_then_revert_restores_the_original_disk(root: Path,  # noqa: F811
                                                             guest_image: GuestArtifacts,
                                                             accel: str, where: str) -> None:
    src = driver(root, "src", guest_image, accel)
    dst = src if where == "same-host" else driver(root, "dst", guest_image, accel,
                                                  "instances-b")
    small = spec("r1")
    big = type(small)(**{**small.__dict__, "root_gb": 2, "memory_mb": 160})
    await src.spawn(small, images(guest_image))
    await asyncio.to_thread(up, src, "r1")
    original = await asyncio.to_thread(disks.virtual_size, src.dir("r1") / "disk.qcow2")
    assert original == 1 * disks.GIB

    await src.power_off("r1")
    target = await dst.prepare_incoming(big, live=False, block_migration=True)
    await src.migrate_out("r1", target, live=False)
    await dst.finish_incoming(big, target, power_on=True)
    await dst.resize_disk("r1", big)
    await asyncio.to_thread(up, dst, "r1")
    assert b"boot=2" in _boots(dst, "r1")
    assert await asyncio.to_thread(disks.virtual_size,
                                   dst.dir("r1") / "disk.qcow2") == 2 * disks.GIB
    assert (src.instances / "r1_resize" / "disk.qcow2").exists()  # kept until decided
    assert "r1_resize" not in {g.uuid for g in await src.list_guests()}

    await dst.destroy("r1")  # revert: the new copy goes, the kept one comes back
    await src.revert_migration(small, power_on=True)
    await asyncio.to_thread(up, src, "r1")
    assert await asyncio.to_thread(disks.virtual_size,
                                   src.dir("r1") / "disk.qcow2") == original
    # the original overlay booted once before: this is its second boot, not the third
    assert b"boot=2" in _boots(src, "r1") and b"boot=3" not in _boots(src, "r1")
    assert src.record("r1")["memory_mb"] == 128
    assert not (src.instances / "r1_resize").exists()
    await src.confirm_migration("r1")  # nothing left to confirm: a no-op
    await src.destroy("r1")


async def test_confirm_deletes_the_kept_disk(root: Path, guest_image: GuestArtifacts,  # noqa: F811
                                            accel: str) -> None:
    src = driver(root, "src", guest_image, accel)
    small = spec("r2")
    big = type(small)(**{**small.__dict__, "root_gb": 2})
    await src.spawn(small, images(guest_image))
    await src.power_off("r2")
    target = await src.prepare_incoming(big, live=False, block_migration=True)
    await src.migrate_out("r2", target, live=False)
    await src.finish_incoming(big, target, power_on=False)
    assert (src.instances / "r2_resize").exists()
    # its kernel is kept as a link to the same file, not a copy of it
    kept, kernel = src.instances / "r2_resize" / "kernel", src.dir("r2") / "kernel"
    assert kept.stat().st_ino == kernel.stat().st_ino
    await src.confirm_migration("r2")
    assert not (src.instances / "r2_resize").exists()
    assert src.record("r2")["host"] == "src"
    await src.destroy("r2")
