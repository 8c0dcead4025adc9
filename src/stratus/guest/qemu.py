"""Start a QEMU guest, watch its serial console, talk QMP: for the QEMU driver and tests.

    guest = start(GuestSpec(disk=artifacts.disk, workdir=tmp, accel=accel_for(data_dir),
                            hostfwd=((free_port(), 80),)))
    up = guest.wait_for_marker(timeout=120)     # Marker(ip="10.0.2.15", hostname=...)
    guest.qmp_sync("system_powerdown"); guest.wait(60)

Each guest gets a qcow2 overlay on its base image, a serial console (a unix
socket for interactive use, everything also appended to `serial.log`), a QMP
socket, VNC on 127.0.0.1 and a pidfile, all in its work directory.

Networking here is QEMU's user mode (slirp) with `restrict=on`: DHCP and the
10.0.2.0/24 network live inside the QEMU process and the guest cannot open
connections to anything outside it; `hostfwd` ports bind 127.0.0.1 only.
Taps on bridges belong to the network dataplane, not to this helper.

KVM is used only when `probe_accel` has booted the guest under KVM on this host
and seen its marker; the answer is cached per host in `<data_dir>/guest/`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from qemu.qmp import QMPClient
from qemu.qmp.protocol import ConnectError

from stratus.guest.scripts import MARKER_PREFIX

QEMU = "qemu-system-x86_64"
MARKER_RE = re.compile(rb"stratus-guest up ip=(\S+) hostname=(\S+)")
TICK_RE = re.compile(rb"stratus-guest tick=(\d+)")
BOOT_RE = re.compile(rb"stratus-guest boot=(\d+)")
PROBE_DEADLINE = 20.0
_SOCKET_MAX = 107


class GuestError(RuntimeError):
    """QEMU could not start, died, or the guest did not say what was expected in time."""


@dataclass(frozen=True)
class Marker:
    ip: str | None
    hostname: str
    offset: int  # byte offset just past the marker line in the serial log
    seconds: float  # time spent waiting for it


@dataclass(frozen=True)
class GuestSpec:
    disk: Path  # base image; the guest writes to an overlay in workdir
    workdir: Path
    name: str = "guest"
    memory_mib: int = 128
    vcpus: int = 1
    accel: str = "tcg"
    kernel: Path | None = None  # direct kernel boot (vmlinux or vmlinuz) ...
    initrd: Path | None = None
    append: str | None = None  # ... with this command line
    network: bool = True
    mac: str = "52:54:00:12:34:56"
    hostfwd: tuple[tuple[int, int], ...] = ()  # (port on 127.0.0.1, guest port)
    guestfwd: tuple[tuple[str, int, str], ...] = ()  # (guest ip, port, local command)
    writable_disks: tuple[Path, ...] = ()  # qcow2 disks after the boot disk (a rescued disk)
    extra_disks: tuple[Path, ...] = ()  # raw images (a config drive), read-only, after those
    overlay: Path | None = None  # the boot disk; default workdir/disk.qcow2
    vnc: bool = True
    fresh_overlay: bool = True  # False: keep an overlay left by a previous run (reboot)
    extra_args: tuple[str, ...] = ()
    netns: str | None = None  # run QEMU inside this network namespace (its taps live there)


@dataclass
class Guest:
    spec: GuestSpec
    pid: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_start: int = 0  # serial.log size when this QEMU started (the log is appended to)

    @property
    def overlay(self) -> Path:
        return self.spec.overlay or self.spec.workdir / "disk.qcow2"

    @property
    def serial_log(self) -> Path:
        return self.spec.workdir / "serial.log"

    @property
    def qmp_socket(self) -> Path:
        return self.spec.workdir / "qmp.sock"

    @property
    def stderr_log(self) -> Path:
        return self.spec.workdir / "qemu.log"

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def wait(self, timeout: float) -> bool:
        """True once the QEMU process has ended, False if still running after TIMEOUT."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.1)
        return not self.alive()

    def kill(self) -> None:
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait(10)

    def log_size(self) -> int:
        return _size(self.serial_log)

    def wait_for_marker(self, timeout: float, *, since: int | None = None) -> Marker:
        """The up marker printed by this run of QEMU (or after byte SINCE of the log)."""
        start = self.log_start if since is None else since
        return wait_for_marker(self.serial_log, timeout, since=start, guest=self)

    def console(self, since: int | None = None) -> str:
        start = self.log_start if since is None else since
        return _read_from(self.serial_log, start).decode(errors="replace")

    def ticks(self, since: int | None = None) -> list[int]:
        start = self.log_start if since is None else since
        return [int(m) for m in TICK_RE.findall(_read_from(self.serial_log, start))]

    async def qmp(self, command: str, **arguments: Any) -> Any:
        client = await self._qmp_client()
        try:
            return await client.execute(command, arguments or None)
        finally:
            await client.disconnect()

    async def _qmp_client(self, patience: float = 5.0) -> QMPClient:
        """A connected QMP client. QEMU serves one QMP client at a time (another
        one is refused, not queued) and its socket exists a moment before it
        listens: both are retried for up to PATIENCE seconds."""
        deadline = time.monotonic() + patience
        while True:
            client = QMPClient(self.spec.name)
            try:
                await client.connect(str(self.qmp_socket))
                return client
            except ConnectError:
                if time.monotonic() > deadline or not self.alive():
                    raise
            await asyncio.sleep(0.005)

    def qmp_sync(self, command: str, **arguments: Any) -> Any:
        """`qmp` for code without an event loop (tests, benches)."""
        return asyncio.run(self.qmp(command, **arguments))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_overlay(base: Path, overlay: Path) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", _format(base), "-b",
                    str(base.resolve()), str(overlay)], check=True, capture_output=True)


def _format(image: Path) -> str:
    with image.open("rb") as f:
        return "qcow2" if f.read(4) == b"QFI\xfb" else "raw"


# QEMU 7.2 under TCG loses guest writes during a live migration that runs long enough
# for the guest to write between RAM passes: the destination gets stale pages and its
# kernel soon breaks (timer-list and list_del corruption, panics). Measured here with
# migrations capped at 16 MiB/s (~4 s of passes): 6 of 62 guests broke; uncapped ones
# (~0.2 s) never did. Our reading of QEMU: its fast dirty-bitmap sync, taken when a RAM
# block is a whole number of 64-page words, clears the migration bits without making
# the vCPUs' TLB entries note the next write to those pages; the per-page path it
# takes otherwise does. With the RAM 4 KiB past a multiple of 256 KiB: 0 of 150 broke
# (bench/qemu_migrate_soak.py measures both in one run). KVM tracks dirty pages itself.
TCG_RAM_PAD_KIB = 4


def memory_arg(spec: GuestSpec) -> str:
    """QEMU's -m for SPEC: its memory in MiB, padded under TCG (see TCG_RAM_PAD_KIB)."""
    if spec.accel == "tcg" and TCG_RAM_PAD_KIB:
        return f"{spec.memory_mib * 1024 + TCG_RAM_PAD_KIB}K"
    return str(spec.memory_mib)


def qemu_command(spec: GuestSpec) -> list[str]:
    work = spec.workdir
    for sock in ("qmp.sock", "serial.sock"):
        if len(str(work / sock)) > _SOCKET_MAX:
            raise GuestError(f"work directory path too long for a unix socket: {work}")
    cmd = [QEMU, "-name", spec.name, "-nodefaults", "-no-user-config",
           "-machine", "pc", "-accel", spec.accel, "-m", memory_arg(spec),
           "-smp", str(spec.vcpus), "-pidfile", str(work / "qemu.pid"),
           "-qmp", f"unix:{work / 'qmp.sock'},server=on,wait=off",
           "-chardev", (f"socket,id=serial0,path={work / 'serial.sock'},server=on,wait=off,"
                        f"logfile={work / 'serial.log'},logappend=on"),
           "-serial", "chardev:serial0",
           "-drive", f"file={spec.overlay or work / 'disk.qcow2'},if=none,id=disk0,"
                     "format=qcow2,cache=writeback",
           "-device", "virtio-blk-pci,drive=disk0"
                      + (",bootindex=0" if spec.kernel is None else "")]
    for i, disk in enumerate(spec.writable_disks, start=1):
        cmd += ["-drive", f"file={disk},if=none,id=disk{i},format={_format(disk)},"
                          "cache=writeback",
                "-device", f"virtio-blk-pci,drive=disk{i}"]
    for i, extra in enumerate(spec.extra_disks, start=1 + len(spec.writable_disks)):
        cmd += ["-drive", f"file={extra},if=none,id=disk{i},format={_format(extra)},readonly=on",
                "-device", f"virtio-blk-pci,drive=disk{i}"]
    if spec.kernel is not None:
        cmd += ["-kernel", str(spec.kernel)]
        if spec.initrd is not None:
            cmd += ["-initrd", str(spec.initrd)]
        if spec.append:
            cmd += ["-append", spec.append]
    if spec.network:
        netdev = "user,id=net0,restrict=on"
        for host_port, guest_port in spec.hostfwd:
            netdev += f",hostfwd=tcp:127.0.0.1:{host_port}-:{guest_port}"
        for ip, port, command in spec.guestfwd:
            if "," in command:
                raise GuestError("guestfwd commands cannot contain commas")
            netdev += f",guestfwd=tcp:{ip}:{port}-cmd:{command}"
        cmd += ["-netdev", netdev,
                "-device", f"virtio-net-pci,netdev=net0,mac={spec.mac},romfile="]
    cmd += ["-vga", "std", "-vnc", "127.0.0.1:0,to=99"] if spec.vnc else ["-display", "none"]
    return cmd + list(spec.extra_args)


def start(spec: GuestSpec) -> Guest:
    """Start QEMU for SPEC (a new overlay unless `fresh_overlay` is False)."""
    spec.workdir.mkdir(parents=True, exist_ok=True)
    overlay = spec.overlay or spec.workdir / "disk.qcow2"
    if spec.fresh_overlay or not overlay.exists():
        overlay.unlink(missing_ok=True)
        make_overlay(spec.disk, overlay)
    for stale in ("qmp.sock", "serial.sock", "qemu.pid"):
        (spec.workdir / stale).unlink(missing_ok=True)
    log_start = _size(spec.workdir / "serial.log")
    with (spec.workdir / "qemu.log").open("ab") as err:
        argv = qemu_command(spec)
        if spec.netns:  # `ip netns exec` execs QEMU: the pid stays the same
            argv = ["ip", "netns", "exec", spec.netns, *argv]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                                stderr=err, start_new_session=True)
    guest = Guest(spec=spec, pid=proc.pid, proc=proc, log_start=log_start)
    deadline = time.monotonic() + 10
    while not guest.qmp_socket.exists():
        if not guest.alive() or time.monotonic() > deadline:
            guest.kill()
            raise GuestError(f"QEMU did not start: {_tail(guest.stderr_log)}")
        time.sleep(0.02)
    return guest


def attach(spec: GuestSpec) -> Guest | None:
    """The QEMU already running for SPEC (after an agent restart), found by its pidfile."""
    try:
        pid = int((spec.workdir / "qemu.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if str(spec.workdir / "qmp.sock").encode() not in b" ".join(cmdline):
        return None  # the pid was reused by another process
    return Guest(spec=spec, pid=pid, log_start=_size(spec.workdir / "serial.log"))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def _tail(path: Path, lines: int = 15) -> str:
    text = _read_from(path, 0).decode(errors="replace").strip().splitlines()
    return "\n".join(text[-lines:]) or "(empty)"


def wait_for_marker(log: Path, timeout: float, *, since: int = 0,
                    pattern: re.Pattern[bytes] = MARKER_RE, guest: Guest | None = None) -> Marker:
    """Wait until LOG (from byte SINCE) has the guest's up marker; fail fast if QEMU dies."""
    t0 = time.monotonic()
    while True:
        data = _read_from(log, since)
        match = pattern.search(data)
        if match:
            ip = match.group(1).decode() if match.groups() else None
            host = match.group(2).decode() if len(match.groups()) > 1 else ""
            end = data.find(b"\n", match.end())
            return Marker(ip=None if ip == "none" else ip, hostname=host,
                          offset=since + (end + 1 if end >= 0 else len(data)),
                          seconds=time.monotonic() - t0)
        if guest is not None and not guest.alive():
            raise GuestError(f"QEMU exited before the {MARKER_PREFIX} marker:\n"
                             f"{_tail(guest.stderr_log)}\nserial:\n{_tail(log)}")
        if time.monotonic() - t0 > timeout:
            raise GuestError(f"no {MARKER_PREFIX} marker in {log} after {timeout:.0f}s; "
                             f"last lines:\n{_tail(log)}")
        time.sleep(0.1)


# --- KVM or TCG ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AccelProbe:
    accel: str  # "kvm" or "tcg"
    detail: str
    seconds: float
    cached: bool = False


def _host_id() -> str:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        version = subprocess.run([QEMU, "--version"], capture_output=True, text=True,
                                 check=False).stdout.split("\n", 1)[0]
    except FileNotFoundError:
        version = "no qemu"
    return f"{platform.node()}|{platform.release()}|{model}|{version}"


def _probe_file(data_dir: Path) -> Path:
    return data_dir / "guest" / "accel.json"


def cached_accel(data_dir: Path) -> AccelProbe | None:
    try:
        entry = json.loads(_probe_file(data_dir).read_text()).get(_host_id())
    except (OSError, ValueError):
        return None
    if not entry:
        return None
    return AccelProbe(entry["accel"], entry["detail"], entry["seconds"], cached=True)


def accel_for(data_dir: Path) -> str:
    """"kvm" if this host's cached probe says KVM boots the guest, else "tcg"."""
    probe = cached_accel(data_dir)
    return probe.accel if probe else "tcg"


def probe_accel(data_dir: Path, disk: Path, *, deadline: float = PROBE_DEADLINE,
                force: bool = False) -> AccelProbe:
    """Boot DISK under KVM; "kvm" if its marker shows within DEADLINE s, else "tcg". Cached."""
    if not force and (cached := cached_accel(data_dir)) is not None:
        return cached
    t0 = time.monotonic()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        result = AccelProbe("tcg", "/dev/kvm is absent or not usable", 0.0)
    else:
        workdir = data_dir / "guest" / f".probe-{os.getpid()}"
        guest = start(GuestSpec(disk=disk, workdir=workdir, name="stratus-kvm-probe",
                                accel="kvm", network=False, vnc=False))
        try:
            marker = guest.wait_for_marker(deadline)
            result = AccelProbe("kvm", f"guest booted under KVM in {marker.seconds:.1f}s",
                                time.monotonic() - t0)
        except GuestError:
            why = _tail(guest.stderr_log, 2) if not guest.alive() else \
                f"no boot marker within {deadline:.0f}s"
            result = AccelProbe("tcg", f"KVM did not boot the guest ({why})",
                                time.monotonic() - t0)
        finally:
            guest.kill()
            for leftover in workdir.iterdir():
                leftover.unlink()
            workdir.rmdir()
    path = _probe_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    table[_host_id()] = {"accel": result.accel, "detail": result.detail,
                         "seconds": round(result.seconds, 2), "at": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=2) + "\n")
    tmp.replace(path)
    return result
