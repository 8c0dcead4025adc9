"""What a snapshot of a server inherits from the server's image (Nova's rules).

A snapshot, a backup and a shelve image keep the image's custom properties
(so ``kernel_id``/``ramdisk_id``/``os_command_line``: a server booted from
the snapshot, or unshelved, boots its kernel directly as the original did)
and ``min_ram``/``min_disk``; never what only the base image may carry
(``cache_in_nova``, ``bittorrent``, signature keys) nor the fields the image
service computes.
"""

from __future__ import annotations

import pytest

from stratus.compute.images import inherited_properties
from tests.unit.compute.conftest import Cloud

KERNEL, RAMDISK = "0b4fbd5e-7b63-4a8a-9d3c-2f0b1c5c9a11", "6d1a9a4e-2b1e-4a43-8f7e-58b9f8a0d0c2"
BOOTS_DIRECTLY = {"kernel_id": KERNEL, "ramdisk_id": RAMDISK,
                  "os_command_line": "console=ttyS0 quiet"}


@pytest.fixture(autouse=True)
def kernel_and_ramdisk(cloud: Cloud) -> None:
    """The images BOOTS_DIRECTLY names: the API refuses a boot image naming absent ones."""
    cloud.images.add(id=KERNEL, name="kernel", disk_format="aki", container_format="aki")
    cloud.images.add(id=RAMDISK, name="ramdisk", disk_format="ari", container_format="ari")


def image(**extra: object) -> dict[str, object]:
    """A Glance v2 image record as the image service shows it (properties at top level)."""
    return {"id": "c0ffee00-0000-4000-8000-000000000001", "name": "guest", "status": "active",
            "visibility": "public", "protected": False, "os_hidden": False, "owner": "p0",
            "disk_format": "qcow2", "container_format": "bare", "size": 10485760,
            "virtual_size": 67108864, "checksum": "md5", "os_hash_algo": "sha512",
            "os_hash_value": "sha", "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "tags": ["t"], "file": "/v2/images/x/file",
            "self": "/v2/images/x", "schema": "/v2/schemas/image", "min_ram": 128,
            "min_disk": 0, **extra}


def test_snapshot_keeps_the_boot_properties_and_the_hardware_hints() -> None:
    props = inherited_properties(image(**BOOTS_DIRECTLY, hw_disk_bus="virtio",
                                       os_distro="stratus-guest"))
    assert props == {**BOOTS_DIRECTLY, "hw_disk_bus": "virtio", "os_distro": "stratus-guest",
                     "min_ram": 128}


def test_snapshot_drops_what_only_the_base_image_may_carry() -> None:
    props = inherited_properties(image(cache_in_nova="True", bittorrent="yes",
                                       img_signature="sig", img_signature_hash_method="SHA-256",
                                       img_signature_key_type="RSA-PSS",
                                       img_signature_certificate_uuid=KERNEL,
                                       instance_uuid="old-server", image_type="snapshot",
                                       base_image_ref="older",
                                       **{"owner_specified.openstack.md5": "x",
                                          "os_glance_import_task": "t"}))
    assert props == {"min_ram": 128}


def test_nothing_to_inherit_without_an_image() -> None:
    assert inherited_properties(None) == {}


async def test_snapshot_and_backup_images_carry_the_servers_boot_properties(
        cloud: Cloud) -> None:
    booted = cloud.images.add(name="guest", **BOOTS_DIRECTLY, hw_vif_model="virtio",
                              cache_in_nova="True")
    async with cloud.client() as c:
        s = await cloud.create(c, imageRef=booted)
        resp = await cloud.action(c, s["id"], "createImage",
                                  {"name": "snap", "metadata": {"purpose": "test"}})
        assert resp.status_code == 202, resp.text
        snap = cloud.images.images[resp.json()["image_id"]]
        await cloud.wait(c, s["id"], "ACTIVE")
        assert {k: snap.get(k) for k in BOOTS_DIRECTLY} == BOOTS_DIRECTLY
        assert snap["hw_vif_model"] == "virtio" and snap["purpose"] == "test"
        assert "cache_in_nova" not in snap
        assert snap["image_type"] == "snapshot" and snap["instance_uuid"] == s["id"]
        assert snap["base_image_ref"] == booted and snap["disk_format"] == "qcow2"

        resp = await cloud.action(c, s["id"], "createBackup",
                                  {"name": "b", "backup_type": "daily", "rotation": 2})
        assert resp.status_code == 202, resp.text
        backup = cloud.images.images[resp.json()["image_id"]]
        assert backup["kernel_id"] == KERNEL and backup["image_type"] == "backup"
        await cloud.wait(c, s["id"], "ACTIVE")


async def test_a_server_booted_from_a_snapshot_passes_the_properties_on(cloud: Cloud) -> None:
    booted = cloud.images.add(name="guest", **BOOTS_DIRECTLY)
    async with cloud.client() as c:
        s = await cloud.create(c, imageRef=booted)
        first = (await cloud.action(c, s["id"], "createImage", {"name": "one"})).json()
        await cloud.wait(c, s["id"], "ACTIVE")
        again = await cloud.create(c, "again", imageRef=first["image_id"])
        second = (await cloud.action(c, again["id"], "createImage", {"name": "two"})).json()
        snap = cloud.images.images[second["image_id"]]
        assert snap["kernel_id"] == KERNEL and snap["os_command_line"] == "console=ttyS0 quiet"
        assert snap["instance_uuid"] == again["id"] and snap["base_image_ref"] == first[
            "image_id"]


async def test_shelve_image_carries_the_boot_properties_for_the_unshelve(
        cloud: Cloud) -> None:
    booted = cloud.images.add(name="guest", **BOOTS_DIRECTLY)
    async with cloud.client() as c:
        s = await cloud.create(c, imageRef=booted)
        assert (await cloud.action(c, s["id"], "shelve")).status_code == 202
        await cloud.wait(c, s["id"], "SHELVED_OFFLOADED")
        shelved = next(i for i in cloud.images.images.values()
                       if i["name"] == f"{s['name']}-shelved")
        assert {k: shelved.get(k) for k in BOOTS_DIRECTLY} == BOOTS_DIRECTLY
        assert shelved["instance_uuid"] == s["id"]
        assert (await cloud.action(c, s["id"], "unshelve")).status_code == 202
        await cloud.wait(c, s["id"], "ACTIVE")


async def test_snapshot_of_a_server_whose_image_is_gone_keeps_the_properties(
        cloud: Cloud) -> None:
    booted = cloud.images.add(name="guest", **BOOTS_DIRECTLY, hw_disk_bus="virtio")
    async with cloud.client() as c:
        s = await cloud.create(c, imageRef=booted)
        await cloud.images.delete("token", booted)
        resp = await cloud.action(c, s["id"], "createImage", {"name": "orphan"})
        assert resp.status_code == 202, resp.text
        snap = cloud.images.images[resp.json()["image_id"]]
        assert snap["kernel_id"] == KERNEL and snap["hw_disk_bus"] == "virtio"
        await cloud.wait(c, s["id"], "ACTIVE")


async def test_after_a_rebuild_snapshots_inherit_from_the_new_image(cloud: Cloud) -> None:
    booted = cloud.images.add(name="guest", **BOOTS_DIRECTLY)
    plain = cloud.images.add(name="plain", os_distro="debian")
    async with cloud.client() as c:
        s = await cloud.create(c, imageRef=booted)
        assert (await cloud.action(c, s["id"], "rebuild", {"imageRef": plain})).status_code == 202
        await cloud.wait(c, s["id"], "ACTIVE")
        resp = await cloud.action(c, s["id"], "createImage", {"name": "after"})
        snap = cloud.images.images[resp.json()["image_id"]]
        assert "kernel_id" not in snap and snap["os_distro"] == "debian"
        await cloud.wait(c, s["id"], "ACTIVE")
