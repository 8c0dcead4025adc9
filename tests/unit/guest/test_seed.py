"""Seeding the test guest into a real (in-process) image service: a kernel (AKI),
a ramdisk (ARI) and the disk image naming them, once, whatever was there before."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stratus.guest.seed import IMAGE_NAME, KERNEL_NAME, RAMDISK_NAME, seed_images
from stratus.image.client import ImageClient
from tests.unit.image.conftest import ImageAPI, make_api

CMDLINE = "console=tty0 console=ttyS0,115200 quiet"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ImageAPI]:
    made = await make_api(tmp_path / "svc")
    yield made
    await made.http.aclose()
    await made.runtime.services["image"].stop()
    await made.runtime.bus.stop()
    await made.runtime.db.dispose()


@pytest.fixture
def artifacts(tmp_path: Path) -> Any:
    files = {"disk.qcow2": b"QFI\xfb" + b"\0" * 4092, "vmlinux": b"\x7fELF" * 3000,
             "initrd.gz": b"\x1f\x8b" * 2000, "vmlinuz": b"MZ" * 100}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return SimpleNamespace(disk=tmp_path / "disk.qcow2", vmlinux=tmp_path / "vmlinux",
                           kernel=tmp_path / "vmlinuz", initrd=tmp_path / "initrd.gz",
                           cmdline=CMDLINE)


async def by_name(images: ImageClient) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in await images.list()}


async def test_the_guest_is_seeded_as_kernel_ramdisk_and_a_disk_naming_them(
        api: ImageAPI, artifacts: Any) -> None:
    images = ImageClient(api.http, {"X-Auth-Token": "admin"})
    disk_id = await seed_images(images, artifacts)
    found = await by_name(images)
    kernel, ramdisk, disk = found[KERNEL_NAME], found[RAMDISK_NAME], found[IMAGE_NAME]
    assert (kernel["disk_format"], kernel["container_format"]) == ("aki", "aki")
    assert (ramdisk["disk_format"], ramdisk["container_format"]) == ("ari", "ari")
    assert all(i["visibility"] == "public" and i["status"] == "active"
               for i in (kernel, ramdisk, disk))
    assert kernel["os_hash_value"] == hashlib.sha512(artifacts.vmlinux.read_bytes()).hexdigest()
    assert disk["id"] == disk_id and disk["disk_format"] == "qcow2"
    assert (disk["kernel_id"], disk["ramdisk_id"], disk["os_command_line"]) == (
        kernel["id"], ramdisk["id"], CMDLINE)
    # Another member project sees all three (public), so its servers boot directly.
    alice = ImageClient(api.http, {"X-Auth-Token": "alice"})
    assert {KERNEL_NAME, RAMDISK_NAME, IMAGE_NAME} <= set(await by_name(alice))


async def test_seeding_again_uploads_nothing(api: ImageAPI, artifacts: Any) -> None:
    images = ImageClient(api.http, {"X-Auth-Token": "admin"})
    first = await seed_images(images, artifacts)
    before = await images.list()
    assert await seed_images(images, artifacts) == first
    assert await images.list() == before


async def test_a_disk_image_from_before_kernels_gets_the_boot_properties(
        api: ImageAPI, artifacts: Any) -> None:
    images = ImageClient(api.http, {"X-Auth-Token": "admin"})
    old = await images.create(name=IMAGE_NAME, disk_format="qcow2", container_format="bare",
                              visibility="public")
    await images.upload(old["id"], _chunks(artifacts.disk.read_bytes()))
    assert await seed_images(images, artifacts) == old["id"]
    found = await by_name(images)
    assert found[IMAGE_NAME]["kernel_id"] == found[KERNEL_NAME]["id"]
    assert found[IMAGE_NAME]["os_command_line"] == CMDLINE
    assert len(await images.list(name=IMAGE_NAME)) == 1


async def test_an_upload_that_broke_off_is_redone(api: ImageAPI, artifacts: Any) -> None:
    images = ImageClient(api.http, {"X-Auth-Token": "admin"})
    stale = await images.create(name=KERNEL_NAME, disk_format="aki", container_format="aki",
                                visibility="public")  # queued: no data ever arrived
    await seed_images(images, artifacts)
    kernels = await images.list(name=KERNEL_NAME)
    assert [k["status"] for k in kernels] == ["active"] and kernels[0]["id"] != stale["id"]


async def test_kernel_id_must_name_an_image(api: ImageAPI) -> None:
    """The image service takes AKI/ARI formats, and kernel_id/ramdisk_id only as ids."""
    resp = await api.http.post("/v2/images", headers=api.as_("alice"), json={
        "name": "bad", "disk_format": "qcow2", "container_format": "bare",
        "kernel_id": "vmlinuz"})
    assert resp.status_code == 400 and "kernel_id" in resp.json()["error"]["message"]
    for fmt in ("aki", "ari", "ami"):
        made = await api.create(name=fmt, disk_format=fmt, container_format=fmt)
        assert (await api.upload(made["id"], b"\x7fELF" * 64)).status_code == 204
        shown = (await api.show(made["id"])).json()
        assert (shown["status"], shown["disk_format"]) == ("active", fmt)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
