"""Direct kernel boot the OpenStack way: images whose ``kernel_id``/``ramdisk_id``
(AKI/ARI images) and ``os_command_line`` say how to boot them, on real guests.

`stratus up` seeds ``stratus-guest`` naming ``stratus-guest-kernel`` and
``stratus-guest-ramdisk``: its servers start QEMU with ``-kernel/-initrd/
-append`` (half the boot time under TCG) while their root disk stays their
overlay. The same disk uploaded without those properties boots through
SeaBIOS and its boot loader. Snapshots and shelve images inherit the
properties, so what is booted from them boots directly too. What a guest did
is read from its serial console (its boot counter lives on its disk).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from stratus.guest.builder import GuestArtifacts
from tests.support.openstack import openstack
from tests.vm.qemu_cloud import QemuCloud, boots, qemu_argv, qemus_under

pytestmark = pytest.mark.vm
FLAVOR = "m1.small"  # 128 MiB
UP = r"stratus-guest up ip="


def create(c: QemuCloud, name: str, image: str, *, wait: bool = True) -> dict[str, Any]:
    args = ["server", "create", "--image", image, "--flavor", FLAVOR, "--nic", "none", name]
    return dict(c.cli_json(*args, *(["--wait"] if wait else [])))


def argv(c: QemuCloud, server_id: str) -> list[str]:
    """The command line of the server's QEMU."""
    pids = qemus_under(c.guest_dir(server_id))
    assert len(pids) == 1, f"{len(pids)} QEMU processes for {server_id}"
    return qemu_argv(pids[0])


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_the_seeded_guest_names_its_kernel_and_ramdisk(cloud: QemuCloud) -> None:
    image = cloud.cli_json("image", "show", "stratus-guest")
    props = image["properties"]
    kernel = cloud.cli_json("image", "show", props["kernel_id"])
    ramdisk = cloud.cli_json("image", "show", props["ramdisk_id"])
    assert (kernel["name"], kernel["disk_format"], kernel["container_format"]) == (
        "stratus-guest-kernel", "aki", "aki")
    assert (ramdisk["name"], ramdisk["disk_format"]) == ("stratus-guest-ramdisk", "ari")
    assert kernel["visibility"] == ramdisk["visibility"] == "public"
    assert "console=ttyS0" in props["os_command_line"]


def test_a_server_of_the_seeded_guest_boots_its_kernel_directly(cloud: QemuCloud) -> None:
    server = create(cloud, "direct", "stratus-guest")
    console = cloud.wait_console("direct", UP)
    assert boots(console) == [1] and "hostname=direct" in console
    args = argv(cloud, server["id"])
    props = cloud.cli_json("image", "show", "stratus-guest")["properties"]
    guest = cloud.guest_dir(server["id"])
    assert option(args, "-kernel") == str(guest / "kernel")
    assert option(args, "-initrd") == str(guest / "ramdisk")
    assert option(args, "-append") == props["os_command_line"]
    assert str(guest / "disk.qcow2") in option(args, "-drive")  # type: ignore[operator]
    assert "bootindex=0" not in " ".join(args)


def test_the_same_disk_without_boot_properties_boots_through_the_bios(
        cloud: QemuCloud, guest_image: GuestArtifacts) -> None:
    cloud.cli("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
              "--file", str(guest_image.disk), "disk-only")
    assert "kernel_id" not in (cloud.cli_json("image", "show", "disk-only")
                               .get("properties") or {})
    server = create(cloud, "bios", "disk-only")
    console = cloud.wait_console("bios", UP)
    assert boots(console) == [1] and "hostname=bios" in console
    args = argv(cloud, server["id"])
    assert "-kernel" not in args and "-initrd" not in args
    assert "bootindex=0" in " ".join(args)
    cloud.cli("server", "delete", "--wait", "bios")


def test_a_snapshot_keeps_the_kernel_and_the_disk(cloud: QemuCloud) -> None:
    cloud.wait_console("direct", UP)
    cloud.cli("server", "image", "create", "--name", "direct-snap", "--wait", "direct")
    cloud.wait("direct", "ACTIVE")
    seeded = cloud.cli_json("image", "show", "stratus-guest")["properties"]
    snap = cloud.cli_json("image", "show", "direct-snap")["properties"]
    assert {k: snap.get(k) for k in ("kernel_id", "ramdisk_id", "os_command_line")} == {
        k: seeded[k] for k in ("kernel_id", "ramdisk_id", "os_command_line")}
    server = create(cloud, "from-snap", "direct-snap")
    console = cloud.wait_console("from-snap", UP)
    assert boots(console) == [2], "the snapshot did not carry the disk (boot counter) over"
    assert option(argv(cloud, server["id"]), "-kernel") == str(
        cloud.guest_dir(server["id"]) / "kernel")
    cloud.cli("server", "delete", "--wait", "from-snap")


def test_an_unshelved_server_boots_its_kernel_directly(cloud: QemuCloud) -> None:
    before = boots(cloud.wait_console("direct", UP))[-1]
    cloud.cli("server", "shelve", "direct")
    cloud.wait("direct", "SHELVED_OFFLOADED")
    cloud.cli("server", "unshelve", "direct")
    server = cloud.wait("direct", "ACTIVE")
    console = cloud.wait_console("direct", rf"boot={before + 1}(?s:.*){UP}")
    assert boots(console)[-1] == before + 1
    assert option(argv(cloud, server["id"]), "-kernel") == str(
        cloud.guest_dir(server["id"]) / "kernel")


def test_rescue_boots_the_rescue_images_kernel(cloud: QemuCloud) -> None:
    server = cloud.server("direct")
    cloud.cli("server", "rescue", "--image", "disk-only", "direct")
    cloud.wait("direct", "RESCUE")
    args = argv(cloud, server["id"])
    assert "-kernel" not in args, "the rescue image names no kernel: it boots from its disk"
    cloud.cli("server", "unrescue", "direct")
    cloud.wait("direct", "ACTIVE")
    cloud.cli("server", "rescue", "direct")  # the server's own image: its kernel
    cloud.wait("direct", "RESCUE")
    guest = cloud.guest_dir(server["id"])
    assert option(argv(cloud, server["id"]), "-kernel") == str(guest / "rescue-kernel")
    cloud.cli("server", "unrescue", "direct")
    cloud.wait("direct", "ACTIVE")
    assert option(argv(cloud, server["id"]), "-kernel") == str(guest / "kernel")
    assert not (guest / "rescue-kernel").exists()


def test_a_kernel_that_is_missing_or_not_active_fails_the_build_by_name(
        cloud: QemuCloud, guest_image: GuestArtifacts) -> None:
    missing = str(uuid.uuid4())
    cloud.cli("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
              "--file", str(guest_image.disk), "--property", f"kernel_id={missing}",
              "no-kernel-image")
    before = cloud.cli("server", "list", "-f", "value", "-c", "ID")
    refused = openstack(cloud.cloud, "server", "create", "--image", "no-kernel-image",
                        "--flavor", "m1.small", "--nic", "none", "no-kernel", check=False)
    assert refused.returncode != 0 and f"Kernel image {missing}" in refused.stderr, refused
    assert "could not be found" in refused.stderr
    assert cloud.cli("server", "list", "-f", "value", "-c", "ID") == before
    kernel_file = guest_image.vmlinux or guest_image.kernel
    deactivated = cloud.cli_json("image", "create", "--disk-format", "aki", "--container-format",
                                 "aki", "--file", str(kernel_file), "deactivated-kernel")["id"]
    cloud.cli("image", "set", "--deactivate", deactivated)
    for name, kernel, why in (("inactive-kernel", deactivated, "is not active"),):
        cloud.cli("image", "create", "--disk-format", "qcow2", "--container-format", "bare",
                  "--file", str(guest_image.disk), "--property", f"kernel_id={kernel}",
                  f"{name}-image")
        create(cloud, name, f"{name}-image", wait=False)
        server = _wait_error(cloud, name)
        fault = server["fault"]
        assert f"kernel image {kernel}" in fault["message"] and why in fault["message"]
        assert "Traceback" not in fault["message"]
        assert not qemus_under(cloud.guest_dir(server["id"]))
        cloud.cli("server", "delete", "--wait", name)


def _wait_error(c: QemuCloud, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (s := c.server(name))["status"] != "ERROR":
        assert s["status"] in ("BUILD",), f"{name} is {s['status']}, not ERROR"
        assert time.monotonic() < deadline, f"{name} still {s['status']}"
        time.sleep(0.3)
    return s
