"""Live migration without shared storage, and its progress, abort and force-complete,
on a real guest through the `openstack` CLI.

One all-in-one runs two QEMU compute hosts, each with its own instances
directory (``compute.instances_path = "instances/{host}"``): nothing is shared,
so a live migration is a block migration (the destination fetches the image,
makes an empty overlay on it and exports it over NBD; the source mirrors its
disk into it while the memory follows). ``compute.live_migration_bandwidth``
caps every migration at a few MiB/s, so one stays running long enough to be
watched, aborted or forced to complete (a 128 MiB guest sends ~60 MiB).

One server lives through the whole module; every test starts from it ACTIVE
and checks from inside the guest (serial console) that it kept running: no
new boot marker, and its tick counter (one a second) going on.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratus.compute.virt import qemu_disks
from stratus.guest.builder import GuestArtifacts
from tests.vm.qemu_cloud import QemuCloud, qemu_argv, qemus_under, ticks

pytestmark = pytest.mark.vm
VM = "lm"
UP = r"boot=1 (?s:.*)stratus-guest up ip="
# What a guest kernel prints when it breaks (e.g. memory pages lost by a long live
# migration, see stratus.guest.qemu.TCG_RAM_PAD_KIB): it may tick on for a while
# after an oops, so look for one.
OOPS = re.compile(r"Oops|BUG:|Kernel panic|list_(add|del) corruption|general protection")


@pytest.fixture(scope="module")
def cloud(vm_data_dir: Path, guest_image: GuestArtifacts) -> Iterator[QemuCloud]:
    c = QemuCloud(guest_image, vm_data_dir, hosts=2, instances_path="instances/{host}",
                  env={"STRATUS_COMPUTE__LIVE_MIGRATION_BANDWIDTH": "4",
                       "STRATUS_COMPUTE__MIGRATION_PROGRESS_INTERVAL": "0.3"})
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def vm(cloud: QemuCloud) -> Iterator[str]:
    cloud.cli("server", "create", "--image", "stratus-guest", "--flavor", "m1.small",
              "--nic", "none", "--wait", VM)
    cloud.wait_console(VM, UP)
    yield cloud.server(VM)["id"]
    cloud.cli("server", "delete", "--wait", VM)


def _host_key(host: str) -> str:
    return hashlib.sha1(host.encode()).hexdigest()[:8]


def _qemus(c: QemuCloud, host: str) -> list[int]:
    """QEMUs running out of HOST's instances directory (not a sibling named like it)."""
    d = f"{c.instances(host)}/"
    return [p for p in qemus_under(c.instances(host)) if any(d in a for a in qemu_argv(p))]


def _other(c: QemuCloud, host: str) -> str:
    return next(h for h in c.hosts if h != host)


def _last_tick(c: QemuCloud) -> tuple[int, int]:
    """The guest's tick count now, and how long its console is."""
    out = c.wait_console(VM, r"tick=\d+")
    return ticks(out)[-1], len(out)


def _kept_running(c: QemuCloud, before: tuple[int, int], *, moved: bool) -> None:
    """The same boot goes on: no boot marker since BEFORE (on the destination's new
    console when MOVED, which starts at the switch-over), ticks going on from there."""
    tick, mark = before
    deadline = time.monotonic() + 60
    while True:
        whole = c.console(VM)
        out = whole[0 if moved else mark:]
        seen = ticks(out)
        if seen and seen[-1] > tick + 1:
            break
        assert time.monotonic() < deadline, \
            f"the guest stopped ticking ({len(whole)} chars, {mark} before; power state " \
            f"{c.server(VM)['OS-EXT-STS:power_state']}):\n{whole[-800:]}"
        time.sleep(0.5)
    assert "boot=" not in out and "stratus-guest up" not in out, "the guest rebooted"
    assert tick - 2 < seen[0] <= seen[-1], "the tick counter started again"
    assert not OOPS.search(whole), f"the guest kernel broke:\n{whole[-3000:]}"


def _migrations(c: QemuCloud) -> list[dict[str, Any]]:
    return list(c.cli_json("server", "migration", "list", "--server", VM,
                           "--type", "live-migration"))


def _record(c: QemuCloud, migration_id: int) -> dict[str, Any]:
    """The migration row itself (what Nova keeps once the API stops showing bytes)."""
    db = sqlite3.connect(f"file:{c.data / 'stratus.db'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        row = db.execute("SELECT * FROM migrations WHERE id = ?", (migration_id,)).fetchone()
    finally:
        db.close()
    return dict(row)


def _wait_running(c: QemuCloud, sid: str, *, memory: bool = True) -> dict[str, Any]:
    """The live migration once it runs (and, with MEMORY, has sent some memory)."""
    deadline = time.monotonic() + 120
    while True:
        found = c.api.get(f"/servers/{sid}/migrations").json()["migrations"]
        running = [m for m in found if m["status"] == "running"]
        if running and (not memory or running[0]["memory_processed_bytes"]):
            return dict(running[0])
        s = c.server(sid)
        assert s["OS-EXT-STS:task_state"] == "migrating", f"the migration ended: {found} {s}"
        assert time.monotonic() < deadline, f"no running live migration: {found}"
        time.sleep(0.2)


def _standalone_here(c: QemuCloud, sid: str, host: str) -> None:
    """HOST's directory holds the guest's disk: an overlay on a base in that directory."""
    d = c.guest_dir(sid, host)
    info = qemu_disks.image_info(d / "disk.qcow2")
    backing = Path(info["full-backing-filename"])
    assert backing.is_relative_to(c.instances(host) / "_base"), backing
    assert backing.exists()
    assert json.loads((d / "guest.json").read_text())["host"] == host


def test_shared_live_migration_without_shared_storage_fails_and_the_guest_stays(
        cloud: QemuCloud, vm: str) -> None:
    c = cloud
    s = c.wait(VM, "ACTIVE", timeout=20)
    source = s["OS-EXT-SRV-ATTR:host"]
    [pid] = _qemus(c, source)
    before = _last_tick(c)
    c.cli("server", "migrate", "--live-migration", "--shared-migration", VM)
    deadline = time.monotonic() + 120
    while (m := _migrations(c)) and m[0]["Status"] not in ("error", "completed"):
        assert time.monotonic() < deadline, m
        time.sleep(0.5)
    assert m[0]["Status"] == "error"
    s = c.wait(VM, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] == source
    assert _qemus(c, source) == [pid], "the source QEMU was touched"
    dest = _other(c, source)
    assert not _qemus(c, dest) and not c.guest_dir(vm, dest).exists()
    events = c.api.get(f"/servers/{vm}/os-instance-actions").json()["instanceActions"]
    assert events[0]["action"] == "live-migration"
    detail = c.api.get(f"/servers/{vm}/os-instance-actions/{events[0]['request_id']}",
                        headers={"OpenStack-API-Version": "compute 2.84"}).json()
    failed = [e for e in detail["instanceAction"]["events"] if e["result"] == "Error"]
    assert failed and "shared storage" in (failed[0].get("details") or ""), detail
    _kept_running(c, before, moved=False)


def test_block_live_migration_moves_disk_and_memory_of_the_running_guest(
        cloud: QemuCloud, vm: str) -> None:
    c = cloud
    s = c.wait(VM, "ACTIVE", timeout=20)
    source = s["OS-EXT-SRV-ATTR:host"]
    dest = _other(c, source)
    _standalone_here(c, vm, source)
    before = _last_tick(c)
    c.cli("server", "migrate", "--live-migration", "--block-migration", VM)
    mig = _wait_running(c, vm, memory=False)
    s = c.wait(VM, "ACTIVE", timeout=300)
    assert s["OS-EXT-SRV-ATTR:host"] == dest
    _kept_running(c, before, moved=True)
    assert not _qemus(c, source), "the source QEMU outlived the migration"
    assert len(_qemus(c, dest)) == 1
    assert not c.guest_dir(vm, source).exists(), "the source kept the guest's files"
    _standalone_here(c, vm, dest)
    [done] = [m for m in _migrations(c) if m["Id"] == mig["id"]]
    assert done["Status"] == "completed" and done["Source Compute"] == source
    row = _record(c, mig["id"])
    assert row["disk_total"] and row["disk_processed"] == row["disk_total"], row
    assert row["memory_total"] and row["memory_processed"], row


def test_auto_block_migration_shows_progress_then_completes(cloud: QemuCloud,
                                                            vm: str) -> None:
    c = cloud
    s = c.wait(VM, "ACTIVE", timeout=20)
    source = s["OS-EXT-SRV-ATTR:host"]
    dest = _other(c, source)
    before = _last_tick(c)
    r = c.api.post(f"/servers/{vm}/action", headers={"OpenStack-API-Version": "compute 2.25"},
                   json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    assert r.status_code == 202, r.text
    first = _wait_running(c, vm)
    listed = c.cli_json("server", "migration", "list", "--server", VM)
    assert [m["Status"] for m in listed if m["Id"] == first["id"]] == ["running"]
    assert first["memory_total_bytes"] >= 128 << 20
    # (by UUID: this python-openstackclient swaps server and migration when given an id)
    shown = c.cli_json("server", "migration", "show", VM, first["uuid"])
    assert shown["Status"] == "running"  # at the module's cap, memory takes ~15 s
    assert shown["Memory Processed Bytes"] > first["memory_processed_bytes"]
    assert 0 < shown["Memory Remaining Bytes"] < shown["Memory Total Bytes"]
    assert shown["Disk Total Bytes"], "a block migration copies the disk"
    s = c.wait(VM, "ACTIVE", timeout=300)
    assert s["OS-EXT-SRV-ATTR:host"] == dest
    _kept_running(c, before, moved=True)
    assert not c.guest_dir(vm, source).exists()
    _standalone_here(c, vm, dest)
    assert _record(c, first["id"])["status"] == "completed"


def test_abort_leaves_the_guest_running_on_its_source(cloud: QemuCloud, vm: str) -> None:
    c = cloud
    s = c.wait(VM, "ACTIVE", timeout=20)
    source = s["OS-EXT-SRV-ATTR:host"]
    dest = _other(c, source)
    [pid] = _qemus(c, source)
    before = _last_tick(c)
    c.cli("server", "migrate", "--live-migration", VM)
    mig = _wait_running(c, vm)
    assert _qemus(c, dest), "no destination QEMU while migrating"
    c.cli("server", "migration", "abort", VM, str(mig["id"]))
    s = c.wait(VM, "ACTIVE", timeout=120)
    assert s["OS-EXT-SRV-ATTR:host"] == source and "fault" not in s
    [m] = [m for m in _migrations(c) if m["Id"] == mig["id"]]
    assert m["Status"] == "cancelled"
    assert _qemus(c, source) == [pid]
    _kept_running(c, before, moved=False)
    deadline = time.monotonic() + 30
    while _qemus(c, dest) or c.guest_dir(vm, dest).exists():
        assert time.monotonic() < deadline, "the destination was not cleaned up"
        time.sleep(0.3)
    _standalone_here(c, vm, source)
    # Nothing is migrating any more: a second abort is refused (as Nova: 409).
    r = c.api.delete(f"/servers/{vm}/migrations/{mig['id']}")
    assert r.status_code == 409 and "conflictingRequest" in r.json(), r.text


def test_force_complete_finishes_a_slow_migration_on_the_destination(
        cloud: QemuCloud, vm: str) -> None:
    c = cloud
    s = c.wait(VM, "ACTIVE", timeout=20)
    source = s["OS-EXT-SRV-ATTR:host"]
    dest = _other(c, source)
    before = _last_tick(c)
    c.cli("server", "migrate", "--live-migration", VM)
    mig = _wait_running(c, vm)
    c.cli("server", "migration", "force", "complete", VM, str(mig["id"]))
    s = c.wait(VM, "ACTIVE", timeout=120)
    assert s["OS-EXT-SRV-ATTR:host"] == dest
    _kept_running(c, before, moved=True)
    assert not _qemus(c, source) and len(_qemus(c, dest)) == 1
    assert not c.guest_dir(vm, source).exists()
    _standalone_here(c, vm, dest)
    row = _record(c, mig["id"])
    assert row["status"] == "completed"
    # The guest ran to the end at its cap; forced, the rest went at full speed.
    assert row["memory_processed"] and row["memory_total"], row


def test_a_paused_guest_stays_paused_through_a_block_migration(cloud: QemuCloud,
                                                                vm: str) -> None:
    c = cloud
    s = c.wait(VM, "ACTIVE", timeout=20)
    source = s["OS-EXT-SRV-ATTR:host"]
    dest = _other(c, source)
    c.cli("server", "pause", VM)
    c.wait(VM, "PAUSED")
    frozen = _last_tick(c)
    c.cli("server", "migrate", "--live-migration", "--block-migration", VM)
    mig = _wait_running(c, vm, memory=False)
    s = c.wait(VM, "PAUSED", timeout=300)
    assert s["OS-EXT-SRV-ATTR:host"] == dest
    assert _record(c, mig["id"])["status"] == "completed"
    assert len(_qemus(c, dest)) == 1 and not _qemus(c, source)
    _standalone_here(c, vm, dest)
    time.sleep(3)  # a running guest would tick three times meanwhile
    assert not ticks(c.console(VM)), "the guest ran on the destination while paused"
    assert c.server(VM)["OS-EXT-STS:power_state"] == 3  # PAUSED
    c.cli("server", "unpause", VM)
    c.wait(VM, "ACTIVE")
    _kept_running(c, frozen, moved=True)


def test_an_unshelved_guest_block_migrates_with_its_disk_and_kernel(cloud: QemuCloud,
                                                                     vm: str) -> None:
    """Unshelved, the guest's disk sits on its shelve snapshot, which is deleted
    then: the destination cannot have it, so the whole disk moves, and the guest's
    kernel comes from its own kernel image, as on the source."""
    c = cloud
    c.wait(VM, "ACTIVE", timeout=20)
    image = c.image("stratus-guest")
    assert image is not None
    c.cli("server", "shelve", "--wait", VM)  # offloaded at once (shelved_offload_time 0)
    c.wait(VM, "SHELVED_OFFLOADED")
    c.cli("server", "unshelve", "--wait", VM)
    c.wait_console(VM, r"boot=2 (?s:.*)stratus-guest up ip=")
    source = c.host_of(VM)
    dest = _other(c, source)
    before = _last_tick(c)
    c.cli("server", "migrate", "--live-migration", "--block-migration", VM)
    # Its whole disk moves: 1 GiB, mostly zeroes, which QEMU counts against the
    # module's 4 MiB/s cap: once it mirrors, let it go at full speed.
    mig = _wait_running(c, vm, memory=False)
    deadline = time.monotonic() + 120
    while not _wait_running(c, vm, memory=False)["disk_total_bytes"]:
        assert time.monotonic() < deadline, "the disk mirror does not report progress"
        time.sleep(0.3)
    c.cli("server", "migration", "force", "complete", VM, str(mig["id"]))
    s = c.wait(VM, "ACTIVE", timeout=300)
    assert s["OS-EXT-SRV-ATTR:host"] == dest
    _kept_running(c, before, moved=True)
    assert not c.guest_dir(vm, source).exists()
    d = c.guest_dir(vm, dest)
    info = qemu_disks.image_info(d / "disk.qcow2")
    assert image["ID"] not in info.get("full-backing-filename", ""), \
        "the disk was put on the server's image, not on what it was written against"
    [pid] = _qemus(c, dest)
    args = qemu_argv(pid)  # the incoming QEMU itself boots the guest's kernel
    assert args[args.index("-kernel") + 1] == str(d / "kernel")
    assert "-append" in args and "-initrd" in args
    # Its state (the boot counter on its disk) came along: a hard reboot of that
    # same QEMU boots the kernel again and counts the third boot.
    mark = len(c.console(VM))
    c.cli("server", "reboot", "--hard", "--wait", VM)
    out = c.wait_console(VM, r"boot=3 (?s:.*)stratus-guest up ip=", after=mark)
    assert "boot=1 " not in out[mark:], "the disk lost the guest's state"
    assert _qemus(c, dest) == [pid]
