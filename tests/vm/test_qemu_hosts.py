"""Every action that moves or remakes a server, on a real guest, through the `openstack` CLI.

One all-in-one runs two QEMU compute hosts (``compute.fake_hosts = 2``: two
compute agents in the all-in-one process, each with its own QEMU driver)
sharing one instances directory, i.e. shared storage. Migrations are still
real process-to-process moves: a QEMU on one host sends the guest's memory
over TCP to a QEMU started by the other host's agent.

One server lives through the whole module (each boot costs seconds under
TCG); every test starts from it ACTIVE and checks, from inside the guest,
what its action promises: its boot counter (kept on its disk) and its tick
counter (one a second) as printed on the serial console.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.guest.builder import GuestArtifacts
from tests.vm.qemu_cloud import QemuCloud, boots, qemu_memory_mib, qemus_under, ticks

pytestmark = pytest.mark.vm
FLAVOR, BIGGER = "m1.small", "m1.medium"  # 128 and 256 MiB
UP = r"stratus-guest up ip="


@pytest.fixture(scope="module")
def cloud(vm_data_dir: Path, guest_image: GuestArtifacts) -> Iterator[QemuCloud]:
    # Shelve keeps the server on its host until an explicit offload (both steps tested).
    c = QemuCloud(guest_image, vm_data_dir, hosts=2,
                  env={"STRATUS_COMPUTE__SHELVED_OFFLOAD_TIME": "-1"})
    c.start()
    try:
        yield c
    finally:
        c.stop()


class Mover:
    """The module's server, and its boot count as last seen on its console (a live
    migration moves the guest to a console that has not seen it boot)."""

    def __init__(self, cloud: QemuCloud, name: str) -> None:
        self.cloud, self.name, self.boot = cloud, name, 0

    def booted_again(self, boot: int | None = None) -> str:
        """Waits for the next boot (or boot number BOOT) to come up; returns the console."""
        self.boot = self.boot + 1 if boot is None else boot
        return self.cloud.wait_console(self.name, rf"boot={self.boot} (?s:.*){UP}")


@pytest.fixture(scope="module")
def mover(cloud: QemuCloud) -> Iterator[Mover]:
    cloud.cli("server", "create", "--image", "stratus-guest", "--flavor", FLAVOR,
              "--nic", "none", "--wait", "mover")
    m = Mover(cloud, "mover")
    m.booted_again()
    yield m
    cloud.cli("server", "delete", "--wait", "mover")


def _host_key(host: str) -> str:
    return hashlib.sha1(host.encode()).hexdigest()[:8]


def _qemu_of(c: QemuCloud, server_id: str, host: str) -> list[int]:
    return qemus_under(c.guest_dir(server_id) / f"run-{_host_key(host)}")


def test_console_log_show_has_the_up_marker(cloud: QemuCloud, mover: Mover) -> None:
    out = cloud.cli("console", "log", "show", mover.name)
    assert "stratus-guest up ip=" in out and "hostname=mover" in out


def test_live_migration_moves_the_running_guest_without_a_reboot(cloud: QemuCloud,
                                                                 mover: Mover) -> None:
    c, vm = cloud, mover.name
    s = c.wait(vm, "ACTIVE", timeout=20)  # as the previous test left it
    source = s["OS-EXT-SRV-ATTR:host"]
    before = c.wait_console(vm, r"tick=\d+")
    last_tick = ticks(before)[-1]

    t0 = time.monotonic()
    c.cli("server", "migrate", "--live-migration", "--wait", vm)
    s = c.wait(vm, "ACTIVE")
    elapsed = time.monotonic() - t0
    assert s["OS-EXT-SRV-ATTR:host"] != source
    after = c.wait_console(vm, r"tick=\d+")
    assert "boot=" not in after and "stratus-guest up" not in after, "the guest rebooted"
    # The destination's console starts at the switch-over: the count goes on from there.
    assert last_tick < ticks(after)[0] <= last_tick + elapsed + 3, "ticks did not continue"
    assert not _qemu_of(c, s["id"], source), "the source QEMU outlived the migration"
    assert _qemu_of(c, s["id"], s["OS-EXT-SRV-ATTR:host"])
    migrations = c.cli_json("server", "migration", "list", "--server", vm,
                            "--type", "live-migration")
    assert [m["Status"] for m in migrations] == ["completed"]
    assert migrations[0]["Source Compute"] == source


def test_cold_migration_confirmed_boots_the_same_disk_on_the_other_host(
        cloud: QemuCloud, mover: Mover) -> None:
    c, vm = cloud, mover.name
    s = c.wait(vm, "ACTIVE", timeout=20)  # as the previous test left it
    source = s["OS-EXT-SRV-ATTR:host"]
    c.cli("server", "migrate", "--wait", vm)
    c.wait(vm, "VERIFY_RESIZE")
    c.cli("server", "migrate", "confirm", vm)
    s = c.wait(vm, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] != source
    mover.booted_again()
    assert not _qemu_of(c, s["id"], source)


def test_resize_revert_restores_the_flavor_then_confirm_applies_it(cloud: QemuCloud,
                                                                   mover: Mover) -> None:
    c, vm = cloud, mover.name
    s = c.wait(vm, "ACTIVE", timeout=20)  # as the previous test left it
    c.cli("server", "resize", "--flavor", BIGGER, "--wait", vm)
    s = c.wait(vm, "VERIFY_RESIZE")
    assert s["flavor"]["original_name"] == BIGGER
    mover.booted_again()
    [pid] = _qemu_of(c, s["id"], s["OS-EXT-SRV-ATTR:host"])
    assert qemu_memory_mib(pid) == 256

    c.cli("server", "resize", "revert", vm)
    s = c.wait(vm, "ACTIVE")
    assert s["flavor"]["original_name"] == FLAVOR
    # The original disk comes back, as it was: it never saw the resized boot.
    mover.booted_again(mover.boot)
    [pid] = _qemu_of(c, s["id"], s["OS-EXT-SRV-ATTR:host"])
    assert qemu_memory_mib(pid) == 128

    c.cli("server", "resize", "--flavor", BIGGER, "--wait", vm)
    c.wait(vm, "VERIFY_RESIZE")
    c.cli("server", "resize", "confirm", vm)
    s = c.wait(vm, "ACTIVE")
    assert s["flavor"]["original_name"] == BIGGER
    mover.booted_again()


def test_shelve_then_offload_then_unshelve_keeps_the_disk(cloud: QemuCloud, mover: Mover) -> None:
    c, vm = cloud, mover.name
    s = c.wait(vm, "ACTIVE", timeout=20)  # as the previous test left it
    sid = s["id"]
    c.cli("server", "shelve", "--wait", vm)
    s = c.wait(vm, "SHELVED")
    assert s["OS-EXT-SRV-ATTR:host"], "shelve (no offload) keeps the server on its host"
    assert not qemus_under(c.guest_dir(sid))
    # (`openstack server shelve --offload` skips a server already shelved: the API it is)
    r = c.api.post(f"/servers/{sid}/action", json={"shelveOffload": None})
    assert r.status_code == 202, r.text
    s = c.wait(vm, "SHELVED_OFFLOADED")
    assert not s["OS-EXT-SRV-ATTR:host"]
    assert not c.guest_dir(sid).exists(), "offload left the guest's files on the host"
    c.cli("server", "unshelve", "--wait", vm)
    c.wait(vm, "ACTIVE")
    mover.booted_again()


def test_rescue_boots_the_rescue_image_with_the_disk_second(cloud: QemuCloud,
                                                            mover: Mover) -> None:
    c, vm = cloud, mover.name
    c.wait(vm, "ACTIVE", timeout=20)  # as the previous test left it
    mark = len(c.console(vm))
    c.cli("server", "rescue", vm)
    c.wait(vm, "RESCUE")
    out = c.wait_console(vm, UP, after=mark)[mark:]
    assert boots(out) == [1], "the rescue image's own disk boots (fresh)"
    assert "disks=vda,vdb" in out, "the server's disk is not attached second"
    c.cli("server", "unrescue", vm)
    c.wait(vm, "ACTIVE")
    mover.booted_again()


def test_evacuate_from_a_dead_host_boots_the_shared_disk_elsewhere(cloud: QemuCloud,
                                                                  mover: Mover) -> None:
    c, vm = cloud, mover.name
    s = c.wait(vm, "ACTIVE", timeout=20)  # as the previous test left it
    source, sid = s["OS-EXT-SRV-ATTR:host"], s["id"]
    c.cli("compute", "service", "set", "--down", source, "nova-compute")
    try:
        for pid in _qemu_of(c, sid, source):  # the host died: so did its guests
            os.kill(pid, signal.SIGKILL)
        # (no --wait: python-openstackclient 10.5 waits for 'ACTIVE' against a lowercased
        # status, so it never returns)
        c.cli("server", "evacuate", vm)
        s = c.wait(vm, "ACTIVE")
        assert s["OS-EXT-SRV-ATTR:host"] != source
        mover.booted_again()  # shared storage: the same disk, not the image
        migrations = c.cli_json("server", "migration", "list", "--server", vm,
                                "--type", "evacuation")
        assert migrations and migrations[0]["Status"] == "done"
    finally:
        c.cli("compute", "service", "set", "--up", source, "nova-compute")


def test_rebuild_boots_a_new_disk_from_the_image(cloud: QemuCloud, mover: Mover) -> None:
    c, vm = cloud, mover.name
    s = c.wait(vm, "ACTIVE", timeout=20)  # as the previous test left it
    c.cli("server", "rebuild", "--image", "stratus-guest", "--wait", vm)
    after = c.wait(vm, "ACTIVE")
    assert after["OS-EXT-SRV-ATTR:host"] == s["OS-EXT-SRV-ATTR:host"]
    mover.booted_again(1)
