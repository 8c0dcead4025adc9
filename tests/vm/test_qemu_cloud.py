"""A real all-in-one on the QEMU driver, driven with the `openstack` CLI as a user would."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.guest import qemu as gq
from stratus.guest.builder import GuestArtifacts
from tests.support.cloud import CloudProcess
from tests.support.openstack import openstack

pytestmark = pytest.mark.vm
FLAVOR = "m1.small"  # 128 MiB: the guest's kernel does not boot in m1.tiny's 64


@pytest.fixture(scope="module")
def cloud(vm_data_dir: Path, guest_image: GuestArtifacts) -> Iterator[CloudProcess]:
    data = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))  # short: unix socket paths
    (data / "guest").symlink_to(guest_image.directory.parent)  # the built guest, cached
    shutil.copy(vm_data_dir / "guest" / "accel.json", data / "guest" / "accel.json") \
        if not (data / "guest" / "accel.json").exists() else None
    c = CloudProcess(data, env={"STRATUS_HYPERVISOR": "qemu"})
    c.start()
    try:
        deadline = time.monotonic() + 120
        while not _image(c, "stratus-guest"):
            assert time.monotonic() < deadline, c.log()[-3000:]
            time.sleep(0.5)
        yield c
    finally:
        c.stop()
        for pidfile in (data / "instances").glob("*/run-*/qemu.pid"):
            found = gq.attach(gq.GuestSpec(disk=pidfile, workdir=pidfile.parent))
            if found is not None:
                found.kill()
        shutil.rmtree(data, ignore_errors=True)


def _image(c: CloudProcess, name: str) -> dict | None:  # type: ignore[type-arg]
    images = json.loads(openstack(c, "image", "list", "--long", "-f", "json").stdout)
    return next((i for i in images if i["Name"] == name and i["Status"] == "active"), None)


def _server(c: CloudProcess, name: str) -> dict:  # type: ignore[type-arg]
    return dict(json.loads(openstack(c, "server", "show", name, "-f", "json").stdout))


def _wait(c: CloudProcess, name: str, status: str, timeout: float = 120) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        s = _server(c, name)
        if s["status"] == status and not s.get("OS-EXT-STS:task_state"):
            return s
        assert s["status"] != "ERROR", s.get("fault")
        assert time.monotonic() < deadline, f"{name} not {status}: {s['status']}"
        time.sleep(0.5)


def _console(c: CloudProcess, name: str) -> str:
    return openstack(c, "console", "log", "show", name).stdout


def _wait_console(c: CloudProcess, name: str, text: str, after: int = 0,
                  timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while text not in (out := _console(c, name))[after:]:
        assert time.monotonic() < deadline, f"{text!r} not in console:\n{out[-1500:]}"
        time.sleep(1)
    return out


def _guest_dir(c: CloudProcess, server_id: str) -> Path:
    return c.data_dir / "instances" / server_id


def _ticks(text: str) -> list[int]:
    return [int(t) for t in gq.TICK_RE.findall(text.encode())]


def test_a_server_lives_its_whole_life_on_a_real_guest(cloud: CloudProcess) -> None:
    c = cloud
    created = json.loads(openstack(c, "server", "create", "--image", "stratus-guest",
                                   "--flavor", FLAVOR, "--nic", "none", "--wait", "vm1",
                                   "-f", "json").stdout)
    assert created["status"] == "ACTIVE"
    sid = created["id"]
    console = _wait_console(c, "vm1", "stratus-guest up ip=")
    assert "hostname=vm1" in console

    openstack(c, "server", "pause", "vm1")
    _wait(c, "vm1", "PAUSED")
    frozen = _console(c, "vm1")
    time.sleep(2.5)
    assert _console(c, "vm1") == frozen, "ticks went on while paused"
    openstack(c, "server", "unpause", "vm1")
    _wait(c, "vm1", "ACTIVE")
    _wait_console(c, "vm1", "tick=", after=len(frozen))

    openstack(c, "server", "suspend", "vm1")
    _wait(c, "vm1", "SUSPENDED")
    suspended = _console(c, "vm1")
    before = _ticks(suspended)[-1]
    assert not list(_guest_dir(c, sid).glob("run-*/qemu.pid")) or \
        gq.attach(gq.GuestSpec(disk=Path("/"), workdir=next(
            _guest_dir(c, sid).glob("run-*")))) is None
    openstack(c, "server", "resume", "vm1")
    _wait(c, "vm1", "ACTIVE")
    mark = len(suspended)
    out = _wait_console(c, "vm1", "tick=", after=mark)
    assert _ticks(out[mark:])[0] in (before + 1, before + 2), "not the same boot"
    assert "stratus-guest up" not in out[mark:]

    openstack(c, "server", "stop", "vm1")
    _wait(c, "vm1", "SHUTOFF")
    openstack(c, "server", "start", "vm1")
    _wait(c, "vm1", "ACTIVE")
    _wait_console(c, "vm1", "boot=2")
    openstack(c, "server", "reboot", "--hard", "vm1")
    _wait(c, "vm1", "ACTIVE")
    _wait_console(c, "vm1", "boot=3")

    openstack(c, "server", "image", "create", "--name", "vm1-snap", "--wait", "vm1")
    assert _image(c, "vm1-snap") is not None
    _wait(c, "vm1", "ACTIVE")
    openstack(c, "server", "create", "--image", "vm1-snap", "--flavor", FLAVOR, "--nic",
              "none", "--wait", "vm2")
    console2 = _wait_console(c, "vm2", "stratus-guest up ip=")
    assert "boot=4" in console2, "the snapshot did not carry the disk over"

    for name in ("vm1", "vm2"):
        openstack(c, "server", "delete", "--wait", name)
    assert not _guest_dir(c, sid).exists()
    assert not [p for p in (c.data_dir / "instances").iterdir() if p.name != "_base"]
    assert not _qemus_under(c.data_dir), "a QEMU process outlived its server"


def _qemus_under(path: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and str(path).encode() in b" ".join(argv):
            found.append(int(proc.name))
    return found
