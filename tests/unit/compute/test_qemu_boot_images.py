"""The QEMU driver's kernel/ramdisk images (AKI/ARI), without QEMU: the base cache
checks what it fetches, a disk image's ``kernel_id``/``ramdisk_id`` become the
guest's own files, and a kernel that is missing or not active fails by name."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from stratus.compute.virt import qemu_disks as disks
from stratus.compute.virt.driver import DriverError

KERNEL = b"\x7fELF kernel" * 1000
RAMDISK = b"\x1f\x8b ramdisk" * 500


def record(image_id: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"id": image_id, "status": "active", "size": len(data),
            "checksum": hashlib.md5(data).hexdigest(), "os_hash_algo": "sha512",
            "os_hash_value": hashlib.sha512(data).hexdigest(), **extra}


class Images:
    """An image source over a dict; counts the downloads."""

    def __init__(self, data: dict[str, bytes], records: dict[str, dict[str, Any]]) -> None:
        self.data, self.records, self.reads = data, records, []

    async def __call__(self, image_id: str) -> AsyncIterator[bytes]:
        self.reads.append(image_id)
        blob = self.data[image_id]
        for i in range(0, len(blob), 4096):
            yield blob[i:i + 4096]

    async def show(self, image_id: str) -> dict[str, Any] | None:
        return self.records.get(image_id)


@pytest.fixture
def images() -> Images:
    return Images({"k": KERNEL, "r": RAMDISK},
                  {"k": record("k", KERNEL), "r": record("r", RAMDISK),
                   "disk": {"id": "disk", "status": "active", "kernel_id": "k",
                            "ramdisk_id": "r", "os_command_line": "console=ttyS0 quiet"}})


async def test_a_disk_naming_a_kernel_boots_it_with_its_ramdisk_and_command_line(
        tmp_path: Path, images: Images) -> None:
    bases = disks.BaseImages(tmp_path / "_base")
    fetched = await disks.fetch_boot(bases, "disk", images.records["disk"], images)
    assert fetched is not None and fetched["append"] == "console=ttyS0 quiet"
    guest = tmp_path / "guest"
    guest.mkdir()
    boot = disks.place_boot(fetched, guest)
    assert boot == {"kernel_id": "k", "ramdisk_id": "r", "kernel": "kernel",
                    "initrd": "ramdisk", "append": "console=ttyS0 quiet"}
    assert (guest / "kernel").read_bytes() == KERNEL  # byte for byte, not converted
    assert (guest / "ramdisk").read_bytes() == RAMDISK
    # Cached once per host: a second guest reads nothing more.
    await disks.fetch_boot(bases, "disk", images.records["disk"], images)
    assert images.reads == ["k", "r"]


async def test_without_a_command_line_the_root_disk_and_serial_console_are_used(
        tmp_path: Path, images: Images) -> None:
    fetched = await disks.fetch_boot(disks.BaseImages(tmp_path), "disk",
                                     {"kernel_id": "k"}, images)
    assert fetched is not None and fetched["initrd"] is None
    assert fetched["append"] == disks.DEFAULT_CMDLINE
    assert "root=/dev/vda" in disks.DEFAULT_CMDLINE and "console=ttyS0" in disks.DEFAULT_CMDLINE


async def test_a_disk_naming_no_kernel_boots_from_its_disk(tmp_path: Path,
                                                           images: Images) -> None:
    bases = disks.BaseImages(tmp_path)
    assert await disks.fetch_boot(bases, "plain", {"id": "plain", "status": "active"},
                                  images) is None
    assert disks.place_boot(None, tmp_path) is None


@pytest.mark.parametrize("kernel, why", [
    (None, "does not exist or is not visible"),
    ({"id": "k", "status": "queued"}, "is not active (status queued)"),
])
async def test_a_missing_or_inactive_kernel_fails_naming_it(
        tmp_path: Path, images: Images, kernel: dict[str, Any] | None, why: str) -> None:
    if kernel is None:
        images.records.pop("k")
    else:
        images.records["k"] = kernel
    with pytest.raises(DriverError) as err:
        await disks.fetch_boot(disks.BaseImages(tmp_path), "disk", images.records["disk"],
                               images)
    assert str(err.value) == f"the kernel image k (the kernel_id of image disk) {why}"
    assert not list(tmp_path.iterdir()), "nothing cached"


@pytest.mark.parametrize("lie", ["checksum", "os_hash_value", "size"])
async def test_data_that_does_not_match_its_record_is_not_cached(
        tmp_path: Path, images: Images, lie: str) -> None:
    bad = record("k", KERNEL)
    bad[lie] = 1 if lie == "size" else "0" * 32
    bases = disks.BaseImages(tmp_path)
    with pytest.raises(DriverError, match="image k"):
        await bases.ensure("k", images, bad, disk=False)
    assert not bases.path("k").exists() and not list(tmp_path.glob(".*part"))
    assert await bases.ensure("k", images, record("k", KERNEL), disk=False)


async def test_the_cache_remembers_how_an_image_boots(tmp_path: Path, images: Images) -> None:
    """A guest whose image was deleted since it was cached still boots as it said."""
    bases = disks.BaseImages(tmp_path)
    images.data["disk"] = b"disk data"
    await bases.ensure("disk", images, images.records["disk"], disk=False)
    assert bases.meta("disk")["kernel_id"] == "k"
    fetched = await disks.fetch_boot(bases, "disk", None, images)
    assert fetched is not None and fetched["kernel_id"] == "k"


def test_a_moved_guest_takes_its_kernel_and_boot_entry_along(tmp_path: Path) -> None:
    src, dst = tmp_path / "a", tmp_path / "b"
    for d in (src, dst):
        d.mkdir()
    (src / "kernel").write_bytes(KERNEL)
    boot = {"kernel_id": "k", "ramdisk_id": None, "kernel": "kernel", "initrd": None,
            "append": "quiet"}
    (src / "guest.json").write_text(json.dumps({"uuid": "u", "boot": boot}))
    (dst / "guest.json").write_text(json.dumps({"uuid": "u", "boot": None, "incoming": True}))
    disks.hand_over_boot(src, dst)
    assert (dst / "kernel").read_bytes() == KERNEL
    assert json.loads((dst / "guest.json").read_text()) == {"uuid": "u", "boot": boot,
                                                           "incoming": True}


async def test_a_kernel_whose_data_cannot_be_read_fails_naming_it(tmp_path: Path,
                                                                  images: Images) -> None:
    images.data["k"] = b""
    images.records["k"] = record("k", b"")
    with pytest.raises(DriverError) as err:
        await disks.fetch_boot(disks.BaseImages(tmp_path), "disk", images.records["disk"],
                               images)
    assert str(err.value).startswith("the kernel image k (the kernel_id of image disk) could "
                                     "not be fetched: image k has no data")
