"""Soak: do long live migrations keep the guest's memory intact under TCG?

    .venv/bin/python bench/qemu_migrate_soak.py [--runs 40] [--bandwidth-mib 16]

A running guest (the test image, 128 MiB, ticking once a second with a disk
sync) is live-migrated back and forth between two QEMU driver hosts on one
shared instances directory, each migration capped at BANDWIDTH so it takes
~4 s of RAM passes while the guest runs. After each one the destination's
console must show two fresh ticks and no kernel oops/panic; a broken guest is
counted and replaced by a fresh one. Done twice in one run: with the driver's
RAM padding under TCG (``stratus.guest.qemu.TCG_RAM_PAD_KIB``) and without it
(the baseline), in alternating rounds so both see the same machine load.
Prints migrations and broken guests per variant. Needs root and QEMU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stratus.compute.virt.driver import GuestSpec  # noqa: E402
from stratus.compute.virt.qemu import QemuDriver  # noqa: E402
from stratus.guest import qemu as gq  # noqa: E402
from stratus.guest.builder import build_guest  # noqa: E402
from tests.vm.test_qemu_driver import images  # noqa: E402

CACHE = Path.home() / ".cache" / "stratus-test"
BROKEN = re.compile(rb"Oops|BUG:|Kernel panic|corruption|general protection")
PAD = gq.TCG_RAM_PAD_KIB


class Pair:
    """Two driver hosts sharing one instances directory, and one guest between them."""

    def __init__(self, root: Path, art: Any, bandwidth: int, accel: str) -> None:
        self.hosts = [QemuDriver(h, instances_dir=root / "instances", base_dir=root / "base",
                                 accel=accel, vnc=False) for h in ("a", "b")]
        for d in self.hosts:
            d.migration_bandwidth = bandwidth
        self.images = images(art)
        self.n = 0
        self.uuid = ""

    def spec(self) -> GuestSpec:
        return GuestSpec(uuid=self.uuid, name=f"soak-{self.uuid}", vcpus=1, memory_mb=128,
                         root_gb=1, image_id="guest", hostname=self.uuid)

    async def boot(self) -> None:
        if self.uuid:
            await self.hosts[0].destroy(self.uuid)
        self.n += 1
        self.uuid = f"g{self.n}"
        await self.hosts[0].spawn(self.spec(), self.images)
        await asyncio.to_thread(gq.wait_for_marker, self.log(self.hosts[0]), 120)

    def log(self, d: QemuDriver) -> Path:
        return d.run_dir(self.uuid) / "serial.log"

    async def migrate(self) -> bool:
        """One migration a -> b; the hosts swap. True when the guest came through."""
        src, dst = self.hosts
        target = await dst.prepare_incoming(self.spec(), live=True, block_migration=None)
        await src.migrate_out(self.uuid, target, live=True)
        await dst.finish_incoming(self.spec(), target, power_on=True)
        self.hosts.reverse()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            out = gq._read_from(self.log(dst), 0)
            if BROKEN.search(out):
                return False
            if len(gq.TICK_RE.findall(out)) >= 2:
                return True
            await asyncio.sleep(0.2)
        return False


async def soak(runs: int, bandwidth: int) -> dict[str, list[int]]:
    art = build_guest(CACHE / "guest")
    accel = gq.accel_for(CACHE)
    roots = {v: Path(tempfile.mkdtemp(prefix=f"soak-{v}-", dir="/tmp")) for v in ("pad", "base")}
    pairs = {v: Pair(roots[v], art, bandwidth, accel) for v in roots}
    counts = {v: [0, 0] for v in roots}  # migrations, broken guests
    try:
        for variant, pair in pairs.items():
            gq.TCG_RAM_PAD_KIB = PAD if variant == "pad" else 0
            await pair.boot()
        for i in range(runs):
            for variant, pair in pairs.items():
                gq.TCG_RAM_PAD_KIB = PAD if variant == "pad" else 0
                ok = await pair.migrate()
                counts[variant][0] += 1
                if not ok:
                    counts[variant][1] += 1
                    print(f"  {variant}: guest broken after migration {counts[variant][0]}",
                          flush=True)
                    await pair.boot()
            if (i + 1) % 10 == 0:
                print(f"after {i + 1} rounds: {counts}", flush=True)
    finally:
        for variant, pair in pairs.items():
            for d in pair.hosts:
                if pair.uuid:
                    with contextlib.suppress(Exception):  # the guest is on one of them
                        await d.destroy(pair.uuid)
            shutil.rmtree(roots[variant], ignore_errors=True)
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=40, help="migrations per variant")
    p.add_argument("--bandwidth-mib", type=int, default=16, help="cap per migration, MiB/s")
    args = p.parse_args()
    if gq.accel_for(CACHE) != "tcg":
        print("this host boots guests under KVM: the TCG padding is not used there")
    counts = asyncio.run(soak(args.runs, args.bandwidth_mib << 20))
    for variant, (done, broken) in counts.items():
        label = f"padded RAM (+{PAD} KiB)" if variant == "pad" else "baseline (no padding)"
        print(f"{label:24} {done} live migrations at {args.bandwidth_mib} MiB/s: "
              f"{broken} guests broken")


if __name__ == "__main__":
    main()
