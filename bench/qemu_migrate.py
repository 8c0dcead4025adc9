"""Live migration through Stratus vs a raw QMP migrate of the same guest, same run.

    .venv/bin/python bench/qemu_migrate.py [--runs 5]

* raw: two QEMUs started by hand (same image, accel, kernel, 128 MiB) sharing
  one overlay; `migrate` to `tcp:127.0.0.1:PORT` and `query-migrate` until
  completed, back and forth. Twice: with QEMU 7.2's defaults (max-bandwidth
  32 MiB/s, downtime-limit 300 ms) and with the parameters the driver starts a
  live migration with (max-bandwidth 8 GiB/s, downtime-limit 20 ms; the driver
  raises the limit pass by pass, which an idle guest never needs).
* stratus: an all-in-one with two QEMU compute hosts on one shared instances
  directory; `os-migrateLive` (host chosen by the scheduler) until the server
  is ACTIVE again, back and forth. Downtime and QEMU's total time are QEMU's
  own figures (`query-migrate`, logged by the driver); API time is the wall
  time from the POST to ACTIVE with no task.
Needs root and QEMU (the tests/vm requirements).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stratus.compute.virt.qemu_jobs import DOWNTIME_STEPS_MS, MAX_BANDWIDTH  # noqa: E402
from stratus.guest import qemu as gq  # noqa: E402
from stratus.guest.builder import GuestArtifacts, build_guest  # noqa: E402
from tests.vm.qemu_cloud import QemuCloud  # noqa: E402

CACHE = Path.home() / ".cache" / "stratus-test"


def raw(art: GuestArtifacts, runs: int, tuned: bool) -> dict[str, list[float]]:
    work = Path(tempfile.mkdtemp(prefix="rawmig-", dir="/tmp"))
    accel = gq.accel_for(CACHE)
    overlay = work / "disk.qcow2"

    def spec(name: str, extra: tuple[str, ...] = ()) -> gq.GuestSpec:
        return gq.GuestSpec(disk=art.disk, workdir=work / name, name=name, accel=accel,
                            memory_mib=128, kernel=art.vmlinux, initrd=art.initrd,
                            append=art.cmdline, vnc=False, overlay=overlay,
                            fresh_overlay=False, extra_args=extra)

    gq.make_overlay(art.disk, overlay)
    out: dict[str, list[float]] = {"downtime_ms": [], "total_ms": [], "wall_s": []}
    src = gq.start(spec("a"))
    guests = [src]
    try:
        src.wait_for_marker(120)
        time.sleep(2)  # ticking, like the Stratus guest
        for i in range(runs):
            port = gq.free_port()
            dst = gq.start(spec("b" if i % 2 == 0 else "a",
                                ("-incoming", f"tcp:127.0.0.1:{port}")))
            guests.append(dst)
            dst.qmp_sync("query-status")  # listening
            if tuned:
                src.qmp_sync("migrate-set-parameters", **{
                    "max-bandwidth": MAX_BANDWIDTH, "downtime-limit": DOWNTIME_STEPS_MS[0]})
            t0 = time.monotonic()
            src.qmp_sync("migrate", uri=f"tcp:127.0.0.1:{port}")
            while (info := src.qmp_sync("query-migrate"))["status"] != "completed":
                assert info["status"] not in ("failed", "cancelled"), info
                time.sleep(0.005)
            out["wall_s"].append(time.monotonic() - t0)
            out["downtime_ms"].append(info["downtime"])
            out["total_ms"].append(info["total-time"])
            src.kill()  # (QMP `quit` drops the connection before answering)
            src = dst
            time.sleep(1)
    finally:
        for g in guests:
            g.kill()
        shutil.rmtree(work, ignore_errors=True)
    return out


def stratus(art: GuestArtifacts, runs: int) -> dict[str, list[float]]:
    c = QemuCloud(art, CACHE, hosts=2)
    c.start()
    out: dict[str, list[float]] = {"downtime_ms": [], "total_ms": [], "wall_s": [],
                                   "api_s": []}
    try:
        c.cli("server", "create", "--image", "stratus-guest", "--flavor", "m1.small",
              "--nic", "none", "--wait", "mig")
        c.wait_console("mig", "stratus-guest up")
        time.sleep(2)
        sid = c.server("mig")["id"]
        for _ in range(runs):
            seen = len(_driver_stats(c))
            t0 = time.monotonic()
            r = c.api.post(f"/servers/{sid}/action", json={"os-migrateLive": {
                "host": None, "block_migration": "auto"}})
            assert r.status_code == 202, r.text
            while True:
                s = c.api.get(f"/servers/{sid}").json()["server"]
                if s["status"] == "ACTIVE" and not s["OS-EXT-STS:task_state"]:
                    break
                assert s["status"] != "ERROR", s.get("fault")
                time.sleep(0.01)
            out["api_s"].append(time.monotonic() - t0)
            stats = _driver_stats(c)[seen]
            out["downtime_ms"].append(stats["downtime_ms"])
            out["total_ms"].append(stats["total_ms"])
            out["wall_s"].append(stats["wall_s"])
            time.sleep(1)
        c.cli("server", "delete", "--wait", "mig")
    finally:
        c.stop()
    return out


def _driver_stats(c: QemuCloud) -> list[dict[str, Any]]:
    """What the driver logged for each live migration (QEMU's query-migrate figures)."""
    found = re.findall(r"migrated to \S+: (\{.*\})", c.cloud.log())
    return [ast.literal_eval(f) for f in found]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    art = build_guest(CACHE / "guest")
    m = statistics.median
    raw_default = raw(art, args.runs, tuned=False)
    raw_tuned = raw(art, args.runs, tuned=True)
    ours = stratus(art, args.runs)
    result = {
        "runs": args.runs, "accel": gq.accel_for(CACHE), "guest_mib": 128,
        "raw_default_downtime_ms": m(raw_default["downtime_ms"]),
        "raw_default_total_ms": m(raw_default["total_ms"]),
        "raw_tuned_downtime_ms": m(raw_tuned["downtime_ms"]),
        "raw_tuned_total_ms": m(raw_tuned["total_ms"]),
        "stratus_downtime_ms": m(ours["downtime_ms"]),
        "stratus_qemu_total_ms": m(ours["total_ms"]),
        "stratus_driver_wall_s": round(m(ours["wall_s"]), 3),
        "stratus_api_to_active_s": round(m(ours["api_s"]), 3),
        "downtime_ratio_vs_raw_default": round(m(ours["downtime_ms"])
                                               / m(raw_default["downtime_ms"]), 2),
        "downtime_ratio_vs_raw_tuned": round(m(ours["downtime_ms"])
                                             / m(raw_tuned["downtime_ms"]), 2),
        "all": {"raw_default": raw_default, "raw_tuned": raw_tuned, "stratus": ours},
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
