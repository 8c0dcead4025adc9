"""Guest boot time: QEMU start to the `stratus-guest up` marker on the serial console.

Three ways to boot the same guest, each N times, one at a time:
* disk     - the qcow2 image alone: SeaBIOS -> syslinux -> vmlinuz + initramfs
* vmlinux  - direct kernel boot of the uncompressed kernel (PVH entry) + initramfs
* vmlinuz  - direct kernel boot of the compressed bzImage + initramfs
Each boot includes DHCP on QEMU user-mode networking (restrict=on, no host
traffic). Prints wall time and the QEMU process's CPU seconds at the marker,
and the KVM probe result that picks the accelerator (--reprobe to redo it).

Usage: .venv/bin/python bench/guest_boot.py [--runs 3] [--data-dir DIR] [--reprobe]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stratus.guest.builder import GuestArtifacts, build_guest
from stratus.guest.qemu import GuestSpec, probe_accel, start

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def boot_once(image: GuestArtifacts, how: str, accel: str, workdir: Path) -> tuple[float, float]:
    kernel = {"disk": None, "vmlinux": image.vmlinux, "vmlinuz": image.kernel}[how]
    spec = GuestSpec(disk=image.disk, workdir=workdir, accel=accel, vnc=False, kernel=kernel,
                     initrd=image.initrd if kernel else None,
                     append=image.cmdline if kernel else None)
    t0 = time.monotonic()
    with start(spec) as guest:
        guest.wait_for_marker(180)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(guest.pid)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get(
        "STRATUS_TEST_DATA_DIR", Path.home() / ".cache" / "stratus-test")))
    parser.add_argument("--reprobe", action="store_true", help="Probe KVM again (~20 s).")
    args = parser.parse_args()

    t0 = time.monotonic()
    image = build_guest(args.data_dir / "guest")
    print(f"guest image: {'cached' if image.cached else 'built'} in {time.monotonic() - t0:.1f}s"
          f" ({image.manifest['kernel']}, disk {image.disk.stat().st_size / 2**20:.1f} MiB "
          f"qcow2, initramfs {image.initrd.stat().st_size / 2**20:.2f} MiB)")
    probe = probe_accel(args.data_dir, image.disk, force=args.reprobe)
    print(f"accelerator: {probe.accel} - {probe.detail}"
          f"{' (cached probe)' if probe.cached else f' (probe took {probe.seconds:.1f}s)'}")
    print(f"{'boot':8} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>6}")
    ways = ["disk", "vmlinux", "vmlinuz"] if image.vmlinux else ["disk", "vmlinuz"]
    with tempfile.TemporaryDirectory(prefix="stratus-boot-bench-") as tmp:
        for how in ways:
            results = [boot_once(image, how, probe.accel, Path(tmp) / f"{how}{i}")
                       for i in range(args.runs)]
            walls = [w for w, _ in results]
            print(f"{how:8} {args.runs:>4} {statistics.median(walls):>9.2f} {min(walls):>7.2f} "
                  f"{max(walls):>7.2f} {statistics.median(c for _, c in results):>6.2f}")


if __name__ == "__main__":
    main()
