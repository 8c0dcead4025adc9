"""A real all-in-one on the QEMU driver for tests/vm, and what tests ask of it.

Actions go through the `openstack` CLI as a user types them; waiting polls the
compute API over HTTP (one CLI start costs ~1 s, a poll ~5 ms). Guest state
is read from the serial console (`console log show`), whose markers the guest
image prints: `boot=<n>` per boot (kept on its disk), `tick=<n>` per second.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from stratus.guest import qemu as gq
from stratus.guest.builder import GuestArtifacts
from tests.support.cloud import ADMIN_PASSWORD, CloudProcess
from tests.support.openstack import openstack

MICROVERSION = "2.80"


class QemuCloud:
    """`stratus up` with the QEMU driver and HOSTS compute hosts sharing one instances dir."""

    def __init__(self, guest_image: GuestArtifacts, vm_data_dir: Path, *, hosts: int = 1,
                 env: dict[str, str] | None = None, instances_path: str = "instances") -> None:
        """INSTANCES_PATH is ``compute.instances_path``: "instances/{host}" gives each
        host its own directory (no shared storage)."""
        self.data = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))  # short: unix sockets
        (self.data / "guest").symlink_to(guest_image.directory.parent)  # built and cached
        self.hosts = ["vmhost"] + [f"vmhost-{i}" for i in range(2, hosts + 1)]
        self.instances_path = instances_path
        self.cloud = CloudProcess(self.data, env={
            "STRATUS_HYPERVISOR": "qemu", "STRATUS_COMPUTE__HOST": self.hosts[0],
            "STRATUS_COMPUTE__FAKE_HOSTS": str(hosts),
            "STRATUS_COMPUTE__INSTANCES_PATH": instances_path, **(env or {})})
        self._api: httpx.Client | None = None
        self.keep_log = vm_data_dir / "last-cloud.log"

    def start(self) -> None:
        self.cloud.start()
        deadline = time.monotonic() + 120
        while self.image("stratus-guest") is None:
            assert time.monotonic() < deadline, self.cloud.log()[-3000:]
            time.sleep(0.3)

    def __enter__(self) -> QemuCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._api is not None:
            self._api.close()
        self.cloud.stop()
        if self.cloud.log_path.exists():  # for a post-mortem of the last run
            shutil.copyfile(self.cloud.log_path, self.keep_log)
        for pid in qemus_under(self.data):
            gq.Guest(spec=gq.GuestSpec(disk=self.data, workdir=self.data), pid=pid).kill()
        shutil.rmtree(self.data, ignore_errors=True)

    # --- talking to it -----------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> str:
        return openstack(self.cloud, "--os-compute-api-version", MICROVERSION, *args,
                         check=check).stdout

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "-f", "json"))

    @property
    def api(self) -> httpx.Client:
        if self._api is None:
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
            token = httpx.post(f"{self.cloud.url('identity')}/v3/auth/tokens",
                               json=body).headers["X-Subject-Token"]
            self._api = httpx.Client(
                base_url=f"{self.cloud.url('compute')}/v2.1", timeout=60, headers={
                    "X-Auth-Token": token, "OpenStack-API-Version": f"compute {MICROVERSION}"})
        return self._api

    def image(self, name: str) -> dict[str, Any] | None:
        images = json.loads(openstack(self.cloud, "image", "list", "--long", "-f",
                                      "json").stdout)
        return next((i for i in images if i["Name"] == name and i["Status"] == "active"), None)

    def server(self, name_or_id: str) -> dict[str, Any]:
        if not re.fullmatch(r"[0-9a-f-]{36}", name_or_id):
            found = self.api.get("/servers", params={"name": f"^{name_or_id}$"}).json()
            name_or_id = found["servers"][0]["id"]
        return dict(self.api.get(f"/servers/{name_or_id}").json()["server"])

    def wait(self, name: str, status: str, timeout: float = 120) -> dict[str, Any]:
        """The server once it is STATUS with no task in flight (fails fast on ERROR)."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.server(name)
            if s["status"] == status and not s.get("OS-EXT-STS:task_state"):
                return s
            assert s["status"] != "ERROR", s.get("fault")
            assert time.monotonic() < deadline, \
                f"{name} not {status}: {s['status']}/{s.get('OS-EXT-STS:task_state')}"
            time.sleep(0.2)

    def console(self, name: str) -> str:
        sid = self.server(name)["id"]
        r = self.api.post(f"/servers/{sid}/action", json={"os-getConsoleOutput": {}})
        return str(r.json()["output"]) if r.status_code == 200 else ""

    def wait_console(self, name: str, pattern: str, *, after: int = 0,
                     timeout: float = 120) -> str:
        """The console once regex PATTERN appears past character AFTER."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, (out := self.console(name))[after:]):
            assert time.monotonic() < deadline, f"{pattern!r} not in console:\n{out[-1500:]}"
            time.sleep(0.3)
        return out

    def host_of(self, name: str) -> str:
        return str(self.server(name)["OS-EXT-SRV-ATTR:host"])

    def instances(self, host: str = "") -> Path:
        """HOST's instances directory (the shared one needs no HOST)."""
        if "{host}" in self.instances_path and not host:
            raise ValueError("each host has its own instances directory: name the host")
        return self.data / self.instances_path.format(host=host)

    def guest_dir(self, server_id: str, host: str = "") -> Path:
        return self.instances(host) / server_id


def boots(console: str) -> list[int]:
    return [int(b) for b in gq.BOOT_RE.findall(console.encode())]


def ticks(console: str) -> list[int]:
    return [int(t) for t in gq.TICK_RE.findall(console.encode())]


def qemus_under(path: Path) -> list[int]:
    """Pids of the QEMU processes whose command line names a file under PATH."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and \
                str(path).encode() in b" ".join(argv):
            found.append(int(proc.name))
    return found


def qemu_argv(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def qemu_memory_mib(pid: int) -> int:
    """The guest memory QEMU PID was started with, in whole MiB (under TCG the driver
    pads it by a few KiB: see stratus.guest.qemu.TCG_RAM_PAD_KIB)."""
    argv = qemu_argv(pid)
    size = argv[argv.index("-m") + 1]
    return int(size[:-1]) // 1024 if size.endswith("K") else int(size.rstrip("M"))
