"""Faults on real guests, through the API: hosts dying, agents restarting, QEMU
vanishing, snapshots failing.

One multi-process deployment on MariaDB and RabbitMQ (tests/vm/deployment.py):
the all-in-one is compute host ``vmhost``, and ``node2`` is a compute agent in
its own process (`stratus serve compute-agent --host node2`) sharing the
instances directory (shared storage). Heartbeats, the down time and the power
sync are short so a dead host shows up quickly.

One server lives on node2 through the module (each boot costs seconds under
TCG); every test starts from it ACTIVE and checks, from inside the guest, what
the fault must (not) do to it: its boot counter (kept on its disk) and its
tick counter (one a second) on the serial console.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratus.guest import qemu as gq
from stratus.guest.builder import GuestArtifacts
from tests.support.openstack import openstack
from tests.vm.deployment import QemuDeployment
from tests.vm.qemu_cloud import QemuCloud, boots, qemus_under, ticks

pytestmark = pytest.mark.vm
FLAVOR = "m1.small"  # 128 MiB
UP = r"stratus-guest up ip="
MIB = 1 << 20
IMAGE_QUOTA = 256 * MIB  # per project: more than the seeded guest images need


@pytest.fixture(scope="module")
def deployment(vm_data_dir: Path, guest_image: GuestArtifacts) -> Iterator[QemuDeployment]:
    d = QemuDeployment(guest_image, vm_data_dir, agents=("node2",), env={
        "STRATUS_COMPUTE__HEARTBEAT_INTERVAL": "1",
        "STRATUS_COMPUTE__SERVICE_DOWN_TIME": "10",
        "STRATUS_COMPUTE__POWER_SYNC_INTERVAL": "2",
        "STRATUS_IMAGE__IMAGE_SIZE_TOTAL_QUOTA": str(IMAGE_QUOTA)})
    d.start()
    try:
        yield d
    finally:
        d.stop()


class Victim:
    """The module's server and its boot count as last seen on its console."""

    def __init__(self, cloud: QemuCloud, name: str) -> None:
        self.cloud, self.name, self.boot = cloud, name, 0

    def booted_again(self) -> str:
        self.boot += 1
        return self.cloud.wait_console(self.name, rf"boot={self.boot} (?s:.*){UP}")

    @property
    def id(self) -> str:
        return str(self.cloud.server(self.name)["id"])


@pytest.fixture(scope="module")
def victim(deployment: QemuDeployment) -> Iterator[Victim]:
    c = deployment.cloud
    created = c.cli_json("server", "create", "--image", "stratus-guest", "--flavor", FLAVOR,
                         "--nic", "none", "--host", "node2", "--wait", "victim")
    assert created["OS-EXT-SRV-ATTR:host"] == "node2"
    v = Victim(c, "victim")
    v.booted_again()
    yield v
    c.cli("server", "delete", "--wait", "victim")


def _run_dir(c: QemuCloud, server_id: str, host: str) -> Path:
    return c.guest_dir(server_id) / f"run-{hashlib.sha1(host.encode()).hexdigest()[:8]}"


def _qemu_of(c: QemuCloud, server_id: str, host: str) -> list[int]:
    return qemus_under(_run_dir(c, server_id, host))


def _ticking_on(c: QemuCloud, name: str, after: int) -> list[int]:
    """The ticks printed past console offset AFTER, once there are some."""
    return ticks(c.wait_console(name, r"tick=\d+", after=after)[after:])


# --- a compute agent restarts while its guests run -----------------------------------

def test_restarted_agent_keeps_managing_its_running_guest(deployment: QemuDeployment,
                                                          victim: Victim) -> None:
    c, agent = deployment.cloud, deployment.agents["node2"]
    s = c.wait(victim.name, "ACTIVE", timeout=20)
    [pid] = _qemu_of(c, s["id"], "node2")
    for end in (agent.stop, agent.kill):  # a service restart, then a crash
        end()
        deployment.start_agent("node2")
        mark = len(c.console(victim.name))
        assert _ticking_on(c, victim.name, mark), "the guest stopped ticking"
        assert _qemu_of(c, s["id"], "node2") == [pid], "the restart replaced the guest's QEMU"
        assert not boots(c.console(victim.name)[mark:]), "the restart rebooted the guest"
        assert c.server(victim.name)["status"] == "ACTIVE"

    c.cli("server", "stop", victim.name)
    c.wait(victim.name, "SHUTOFF")
    assert not _qemu_of(c, s["id"], "node2")
    c.cli("server", "start", victim.name)
    s = c.wait(victim.name, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] == "node2"
    victim.booted_again()


# --- QEMU killed behind our back -----------------------------------------------------

def test_a_killed_qemu_shows_shutoff_after_the_power_sync(deployment: QemuDeployment,
                                                          victim: Victim) -> None:
    c = deployment.cloud
    s = c.wait(victim.name, "ACTIVE", timeout=20)
    [pid] = _qemu_of(c, s["id"], s["OS-EXT-SRV-ATTR:host"])
    os.kill(pid, signal.SIGKILL)  # an OOM kill, or a QEMU crash
    s = c.wait(victim.name, "SHUTOFF", timeout=60)
    assert s["OS-EXT-STS:power_state"] == 4  # Nova's SHUTDOWN
    c.cli("server", "start", victim.name)
    c.wait(victim.name, "ACTIVE")
    victim.booted_again()


# --- a snapshot whose upload fails ---------------------------------------------------

def _images(c: QemuCloud, **params: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{c.cloud.url('image')}/v2/images", params=params, timeout=30,
                  headers={"X-Auth-Token": c.api.headers["X-Auth-Token"]})
    assert r.status_code == 200, r.text
    return list(r.json()["images"])


def _fill_image_quota(c: QemuCloud, project_id: str, leave: int) -> str:
    """An image that leaves only LEAVE bytes of the project's image storage quota."""
    used = sum(i.get("size") or 0 for i in _images(c, owner=project_id))
    filler = c.data / "filler.raw"
    with filler.open("wb") as f:
        f.truncate(IMAGE_QUOTA - used - leave)
    try:
        image = c.cli_json("image", "create", "--disk-format", "raw", "--file", str(filler),
                           "quota-filler")
    finally:
        filler.unlink()
    return str(image["id"])


def _disk_chain(disk: Path) -> list[str]:
    out = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output", "json",
                          str(disk)], capture_output=True, text=True, check=True).stdout
    return [Path(i["filename"]).name for i in json.loads(out)]


def test_a_snapshot_over_the_image_quota_is_deleted_and_the_server_runs_on(
        deployment: QemuDeployment, victim: Victim) -> None:
    c = deployment.cloud
    s = c.wait(victim.name, "ACTIVE", timeout=20)
    guest_dir, host = c.guest_dir(s["id"]), s["OS-EXT-SRV-ATTR:host"]
    chain = _disk_chain(guest_dir / "disk.qcow2")
    files = sorted(p.name for p in guest_dir.iterdir())
    filler = _fill_image_quota(c, s["tenant_id"], leave=1 * MIB)
    mark = len(c.console(victim.name))

    proc = openstack(c.cloud, "server", "image", "create", "--name", "over-quota", "--wait",
                     victim.name, check=False)
    assert proc.returncode != 0, proc.stdout
    out = proc.stdout + proc.stderr
    s = c.wait(victim.name, "ACTIVE")
    assert not s["OS-EXT-STS:task_state"]
    assert "fault" not in s, "an ACTIVE server shows no fault (as Nova)"
    assert not _images(c, name="over-quota"), "the failed snapshot's image remained"
    assert not _images(c, instance_uuid=s["id"]), out

    # The failure and its reason are in the server's action log.
    actions = c.cli_json("server", "event", "list", victim.name)
    snap = next(a for a in actions if a["Action"] == "createImage")
    r = c.api.get(f"/servers/{s['id']}/os-instance-actions/{snap['Request ID']}",
                  headers={"OpenStack-API-Version": "compute 2.84"})
    [event] = r.json()["instanceAction"]["events"]
    assert event["event"] == "compute_snapshot_instance" and event["result"] == "Error"
    assert "quota" in event["details"].lower(), event

    # The guest ran on, same boot, on its own disk: the temporary overlay is gone.
    assert _ticking_on(c, victim.name, mark)
    assert not boots(c.console(victim.name)[mark:]), "the guest rebooted"
    assert sorted(p.name for p in guest_dir.iterdir()) == files
    assert _disk_chain(guest_dir / "disk.qcow2") == chain
    [pid] = _qemu_of(c, s["id"], host)
    guest = gq.attach(gq.GuestSpec(disk=guest_dir, workdir=_run_dir(c, s["id"], host)))
    assert guest is not None and guest.pid == pid
    [block] = [b for b in guest.qmp_sync("query-block") if b["device"] == "disk0"]
    assert Path(block["inserted"]["file"]).name == "disk.qcow2"

    # With room made, the same snapshot works and boots this disk.
    c.cli("image", "delete", filler)
    c.cli("server", "image", "create", "--name", "after-quota", "--wait", victim.name)
    assert c.image("after-quota") is not None
    c.wait(victim.name, "ACTIVE")
    c.cli("server", "create", "--image", "after-quota", "--flavor", FLAVOR, "--nic", "none",
          "--wait", "from-snapshot")
    try:
        out = c.wait_console("from-snapshot", UP)
        assert f"boot={victim.boot + 1}" in out, "the snapshot did not carry the disk over"
    finally:
        c.cli("server", "delete", "--wait", "from-snapshot")
        c.cli("image", "delete", "after-quota")


# --- evacuate after the host's agent process dies ------------------------------------

def test_evacuate_is_refused_while_the_source_service_is_up(deployment: QemuDeployment,
                                                           victim: Victim) -> None:
    c = deployment.cloud
    s = c.wait(victim.name, "ACTIVE", timeout=20)
    assert deployment.services()[s["OS-EXT-SRV-ATTR:host"]]["State"] == "up"
    r = c.api.post(f"/servers/{s['id']}/action", json={"evacuate": {}})
    assert r.status_code == 409, r.text
    assert "still in use" in r.json()["conflictingRequest"]["message"]
    proc = openstack(c.cloud, "server", "evacuate", victim.name, check=False)
    assert proc.returncode != 0 and "409" in proc.stderr, proc.stderr
    assert c.server(victim.name)["status"] == "ACTIVE"
    assert not c.cli_json("server", "migration", "list", "--server", victim.name,
                          "--type", "evacuation")


def test_evacuate_after_the_host_dies_boots_the_shared_disk_on_the_other_host(
        deployment: QemuDeployment, victim: Victim) -> None:
    c, agent = deployment.cloud, deployment.agents["node2"]
    s = c.wait(victim.name, "ACTIVE", timeout=20)
    sid = s["id"]
    assert s["OS-EXT-SRV-ATTR:host"] == "node2"
    agent.kill()  # the host dies, and its guests with it
    for pid in _qemu_of(c, sid, "node2"):
        os.kill(pid, signal.SIGKILL)
    deployment.wait_service("node2", "down")

    # (no --wait: python-openstackclient 10.5 waits for 'ACTIVE' against a lowercased
    # status, so it never returns)
    c.cli("server", "evacuate", victim.name)
    s = c.wait(victim.name, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] == "vmhost"
    victim.booted_again()  # shared storage: the same disk, not a fresh one from the image
    assert _qemu_of(c, sid, "vmhost")
    [mig] = c.cli_json("server", "migration", "list", "--server", victim.name,
                       "--type", "evacuation")
    assert (mig["Status"], mig["Source Compute"], mig["Dest Compute"]) == \
        ("done", "node2", "vmhost")


def test_the_dead_host_back_up_leaves_the_evacuated_guest_alone(deployment: QemuDeployment,
                                                               victim: Victim) -> None:
    c, agent = deployment.cloud, deployment.agents["node2"]
    s = c.wait(victim.name, "ACTIVE", timeout=20)
    sid = s["id"]
    assert s["OS-EXT-SRV-ATTR:host"] == "vmhost", "run after the evacuation test"
    [pid] = _qemu_of(c, sid, "vmhost")
    # What the dead host may have left on the shared storage: its run directory for the
    # guest (the adopting host removes the one it saw; this one appeared after).
    leftover = _run_dir(c, sid, "node2")
    leftover.mkdir(exist_ok=True)
    (leftover / "serial.log").write_text("boot=0\n")
    mark = len(c.console(victim.name))

    deployment.start_agent("node2")
    deadline = time.monotonic() + 60
    while leftover.exists():
        assert time.monotonic() < deadline, f"{leftover} is still there\n{agent.log()[-3000:]}"
        time.sleep(0.3)
    # Nova: the source host, back, finishes the evacuation's clean-up.
    [mig] = c.cli_json("server", "migration", "list", "--server", victim.name,
                       "--type", "evacuation")
    assert mig["Status"] == "completed"

    s = c.wait(victim.name, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] == "vmhost"
    assert not _qemu_of(c, sid, "node2"), "the old host started the evacuated guest"
    assert _qemu_of(c, sid, "vmhost") == [pid]
    assert _ticking_on(c, victim.name, mark)
    assert not boots(c.console(victim.name)[mark:]), "the evacuated guest rebooted"
    assert (c.guest_dir(sid) / "disk.qcow2").exists()
    assert "Traceback" not in agent.log(), agent.log()[-3000:]
