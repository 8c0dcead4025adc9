"""QMP jobs of the QEMU driver that suspend, snapshot and live migration share:
a migration of the guest's state to a URI (a file for suspend, TCP for a live
migration) with its pause budget, waiting for an incoming one, block jobs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratus.compute.virt.driver import DriverError, MigrationAborted
from stratus.guest import qemu as gq

if TYPE_CHECKING:
    from stratus.compute.virt.qemu import QemuDriver

MAX_BANDWIDTH = 8 << 30
DOWNTIME_LIMIT_MS = 300  # QEMU's default pause budget at switch-over
# A live migration's pause budget per RAM pass: QEMU switches over once what is left
# fits the budget at the measured speed. 300 ms at loopback speed lets it stop the
# guest with ~100 MiB unsent (pauses of ~110 ms here); 20 ms waits for the next pass
# (~3 ms). Each further pass (a guest dirtying memory fast) raises it, so it converges.
DOWNTIME_STEPS_MS = (20, 50, 100, 200, DOWNTIME_LIMIT_MS)
FORCED_DOWNTIME_MS = 2_000_000  # QEMU's maximum: switch over at the next pass
POLL = 0.02


class LiveRun:
    """A live migration in flight on the source, for progress, abort and force."""

    def __init__(self, guest: gq.Guest) -> None:
        self.guest = guest
        self.aborted = False
        self.forced = False


async def migrate(drv: QemuDriver, guest: gq.Guest, uri: str, timeout: float = 600,
                  run: LiveRun | None = None, bandwidth: int = 0) -> dict[str, Any]:
    """Run a QMP migration to URI until it completes; returns the final query-migrate.
    BANDWIDTH caps it (bytes/s; 0 or a forced RUN: as fast as it goes). A live RUN
    starts with a small pause budget, raised pass by pass (``DOWNTIME_STEPS_MS``)."""
    forced = run is not None and run.forced
    step = 0
    limit = (FORCED_DOWNTIME_MS if forced else
             DOWNTIME_STEPS_MS[0] if run is not None else DOWNTIME_LIMIT_MS)
    cap = bandwidth if bandwidth and not forced else MAX_BANDWIDTH
    await drv.qmp(guest, "migrate-set-parameters", **{"max-bandwidth": cap,
                                                      "downtime-limit": limit})
    await drv.qmp(guest, "migrate", uri=uri)
    deadline = time.monotonic() + timeout
    while True:
        info = await drv.qmp(guest, "query-migrate")
        status = info.get("status")
        if status == "completed":
            return dict(info)
        passes = int(info.get("ram", {}).get("dirty-sync-count", 0))
        wanted = min(max(passes - 2, 0), len(DOWNTIME_STEPS_MS) - 1)
        if run is not None and not run.forced and wanted > step and status == "active":
            step = wanted
            await drv.qmp(guest, "migrate-set-parameters",
                          **{"downtime-limit": DOWNTIME_STEPS_MS[step]})
            if run.forced:  # forced meanwhile: its budget wins
                await drv.qmp(guest, "migrate-set-parameters",
                              **{"downtime-limit": FORCED_DOWNTIME_MS})
        if status in ("failed", "cancelled"):
            if run is not None and run.aborted:
                raise MigrationAborted(f"live migration of {guest.spec.name} was aborted")
            raise DriverError(f"migration of {guest.spec.name} to {uri} {status}: "
                              f"{info.get('error-desc', 'no detail')}")
        if time.monotonic() > deadline:
            await drv.qmp(guest, "migrate_cancel")
            raise DriverError(f"migration of {guest.spec.name} did not finish in {timeout:.0f}s")
        await asyncio.sleep(POLL)


async def wait_incoming(drv: QemuDriver, guest: gq.Guest, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while (status := (await drv.qmp(guest, "query-status"))["status"]) == "inmigrate":
        if not guest.alive() or time.monotonic() > deadline:
            raise DriverError(f"incoming migration of {guest.spec.name} did not finish "
                              f"({status})")
        await asyncio.sleep(POLL)


async def wait_job(drv: QemuDriver, guest: gq.Guest, job: str, *, ready: bool,
                    timeout: float = 600) -> None:
    """Until JOB is ready (READY) or gone or concluded (not READY)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = {j["device"]: j for j in await drv.qmp(guest, "query-block-jobs")}
        found = jobs.get(job)
        if ready and found is not None and found.get("ready"):
            return
        if found is None or found.get("status") == "concluded":
            if ready:
                raise DriverError(f"block job {job} of {guest.spec.name} ended early")
            return
        if time.monotonic() > deadline:
            raise DriverError(f"block job {job} of {guest.spec.name} timed out")
        await asyncio.sleep(POLL)


async def block_commit(drv: QemuDriver, guest: gq.Guest, base: Path) -> None:
    """Fold the active layer of disk0 back into BASE (after a live snapshot)."""
    job = "stratus-commit"
    await drv.qmp(guest, "block-commit", device="disk0", base=str(base), **{"job-id": job})
    await wait_job(drv, guest, job, ready=True)
    await drv.qmp(guest, "block-job-complete", device=job)
    await wait_job(drv, guest, job, ready=False)
