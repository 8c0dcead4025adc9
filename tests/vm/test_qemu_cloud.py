"""A real all-in-one on the QEMU driver, driven with the `openstack` CLI as a user would."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from stratus.guest import qemu as gq
from tests.support.openstack import openstack
from tests.vm.qemu_cloud import QemuCloud, qemus_under, ticks

pytestmark = pytest.mark.vm
FLAVOR = "m1.small"  # 128 MiB: the guest's kernel does not boot in m1.tiny's 64


# Actions go through the CLI; waiting polls the API (a CLI start costs ~1 s).
def _image(c: QemuCloud, name: str) -> dict | None:  # type: ignore[type-arg]
    return c.image(name)


def _wait(c: QemuCloud, name: str, status: str, timeout: float = 120) -> dict:  # type: ignore[type-arg]
    return c.wait(name, status, timeout)


def _console(c: QemuCloud, name: str) -> str:
    return c.console(name)


def _wait_console(c: QemuCloud, name: str, text: str, after: int = 0,
                  timeout: float = 120) -> str:
    return c.wait_console(name, re.escape(text), after=after, timeout=timeout)


def _guest_dir(c: QemuCloud, server_id: str) -> Path:
    return c.guest_dir(server_id)


def test_a_server_lives_its_whole_life_on_a_real_guest(cloud: QemuCloud) -> None:
    c = cloud
    created = json.loads(openstack(c.cloud, "server", "create", "--image", "stratus-guest",
                                   "--flavor", FLAVOR, "--nic", "none", "--wait", "vm1",
                                   "-f", "json").stdout)
    assert created["status"] == "ACTIVE"
    sid = created["id"]
    _wait_console(c, "vm1", "stratus-guest up ip=")
    console = openstack(c.cloud, "console", "log", "show", "vm1").stdout
    assert "stratus-guest up ip=" in console and "hostname=vm1" in console

    openstack(c.cloud, "server", "pause", "vm1")
    _wait(c, "vm1", "PAUSED")
    frozen = _console(c, "vm1")
    time.sleep(2.5)
    assert _console(c, "vm1") == frozen, "ticks went on while paused"
    openstack(c.cloud, "server", "unpause", "vm1")
    _wait(c, "vm1", "ACTIVE")
    _wait_console(c, "vm1", "tick=", after=len(frozen))

    openstack(c.cloud, "server", "suspend", "vm1")
    _wait(c, "vm1", "SUSPENDED")
    suspended = _console(c, "vm1")
    before = ticks(suspended)[-1]
    assert not list(_guest_dir(c, sid).glob("run-*/qemu.pid")) or \
        gq.attach(gq.GuestSpec(disk=Path("/"), workdir=next(
            _guest_dir(c, sid).glob("run-*")))) is None
    openstack(c.cloud, "server", "resume", "vm1")
    _wait(c, "vm1", "ACTIVE")
    mark = len(suspended)
    out = _wait_console(c, "vm1", "tick=", after=mark)
    assert ticks(out[mark:])[0] in (before + 1, before + 2), "not the same boot"
    assert "stratus-guest up" not in out[mark:]

    openstack(c.cloud, "server", "stop", "vm1")
    _wait(c, "vm1", "SHUTOFF")
    openstack(c.cloud, "server", "start", "vm1")
    _wait(c, "vm1", "ACTIVE")
    _wait_console(c, "vm1", "boot=2")
    openstack(c.cloud, "server", "reboot", "--hard", "vm1")
    _wait(c, "vm1", "ACTIVE")
    _wait_console(c, "vm1", "boot=3")

    openstack(c.cloud, "server", "image", "create", "--name", "vm1-snap", "--wait", "vm1")
    assert _image(c, "vm1-snap") is not None
    _wait(c, "vm1", "ACTIVE")
    openstack(c.cloud, "server", "create", "--image", "vm1-snap", "--flavor", FLAVOR, "--nic",
              "none", "--wait", "vm2")
    console2 = _wait_console(c, "vm2", "stratus-guest up ip=")
    assert "boot=4" in console2, "the snapshot did not carry the disk over"

    for name in ("vm1", "vm2"):
        openstack(c.cloud, "server", "delete", "--wait", name)
    assert not _guest_dir(c, sid).exists()
    assert not [p for p in (c.data / "instances").iterdir() if p.name != "_base"]
    assert not qemus_under(c.data), "a QEMU process outlived its server"
