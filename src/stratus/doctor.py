"""``stratus doctor``: what this machine allows, and what to install."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from urllib.parse import urlparse

from stratus.settings import Settings

APT = "apt-get update && apt-get install -y"


@dataclass
class Check:
    name: str
    state: str  # ok | warn | missing
    detail: str
    fix: str = ""


def _run(*cmd: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def check_root() -> Check:
    if os.geteuid() == 0:
        return Check("root", "ok", "running as root (namespaces, bridges, taps allowed)")
    return Check("root", "warn", "not root: the Linux dataplane and QEMU taps are unavailable",
                 "run as root, or use hypervisor=fake and dataplane=noop")


def check_qemu() -> Check:
    path = shutil.which("qemu-system-x86_64")
    if not path:
        return Check("qemu", "missing", "qemu-system-x86_64 not found (fake driver only)",
                     f"{APT} qemu-system-x86 qemu-utils")
    out = _run(path, "--version").stdout.splitlines()
    return Check("qemu", "ok", out[0] if out else path)


def check_kvm() -> Check:
    if not os.path.exists("/dev/kvm"):
        return Check("kvm", "warn", "/dev/kvm absent: guests run under TCG (slower, works)")
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        return Check("kvm", "warn", f"/dev/kvm not usable ({exc.strerror}): TCG will be used")
    # Whether KVM really boots a guest is only known by booting one; the QEMU
    # driver probes with the built guest image and caches the answer per host.
    return Check("kvm", "warn", "/dev/kvm opens; KVM is used only after a probe boot of the "
                 "guest image succeeds, TCG otherwise")


def check_tool(name: str, binary: str, package: str, purpose: str) -> Check:
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/sbin/{binary}") if os.path.exists(p)), None)
    if path:
        return Check(name, "ok", f"{path} ({purpose})")
    return Check(name, "missing", f"{binary} not found: needed for {purpose}",
                 f"{APT} {package}")


def check_netns() -> Check:
    if os.geteuid() != 0 or not shutil.which("ip"):
        return Check("netns", "warn", "cannot create network namespaces (needs root and iproute2)",
                     f"run as root; {APT} iproute2")
    name = f"stratus-doctor-{os.getpid()}"
    made = _run("ip", "netns", "add", name)
    if made.returncode != 0:
        return Check("netns", "missing", f"ip netns add failed: {made.stderr.strip()}")
    _run("ip", "netns", "delete", name)
    return Check("netns", "ok", "network namespaces can be created")


def check_bus(settings: Settings) -> Check:
    if settings.bus_url.startswith("memory://"):
        return Check("bus", "ok", "in-process memory bus (all-in-one)")
    url = urlparse(settings.bus_url)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5672), 3):
            pass
    except OSError as exc:
        return Check("bus", "missing", f"RabbitMQ at {url.hostname}:{url.port} unreachable: {exc}",
                     "rabbitmq-server -detached")
    return Check("bus", "ok", f"RabbitMQ reachable at {url.hostname}:{url.port or 5672}")


def check_data_dir(settings: Settings) -> Check:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".doctor"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check("data dir", "missing", f"{settings.data_dir} not writable: {exc}",
                     "set data_dir (or STRATUS_DATA_DIR) to a writable folder")
    free = shutil.disk_usage(settings.data_dir).free // 2**20
    return Check("data dir", "ok" if free > 2048 else "warn", f"{settings.data_dir} ({free} MiB free)")


def run_checks(settings: Settings) -> list[Check]:
    return [
        check_root(),
        check_data_dir(settings),
        check_qemu(),
        check_tool("qemu-img", "qemu-img", "qemu-utils", "disk images"),
        check_kvm(),
        check_tool("dnsmasq", "dnsmasq", "dnsmasq-base", "DHCP for tenant networks"),
        check_tool("nftables", "nft", "nftables", "NAT and security groups"),
        check_tool("iproute2", "ip", "iproute2", "bridges, taps, veths"),
        check_netns(),
        check_bus(settings),
    ]
