"""Real boots on the QEMU driver vs the physical baseline, measured in the same run.

    .venv/bin/python bench/qemu_boot.py [--runs 3]

* API (POST /servers) -> ACTIVE and -> the guest's up marker on the console,
  next to starting the same QEMU command by hand (`stratus.guest.qemu.start`
  of the same image, same accel, same kernel) -> up marker;
* snapshot (createImage -> image active) vs `qemu-img convert -O qcow2` of
  the same guest disk;
* N parallel boots (default 10): one POST /servers each, all at once, until
  every guest's up marker, vs N raw QEMUs started at once; then the host
  memory of each idle guest (RSS of its QEMU process, after the marker).
Needs root and QEMU (the tests/vm requirements).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stratus.guest import qemu as gq  # noqa: E402
from stratus.guest.builder import GuestArtifacts, build_guest  # noqa: E402
from tests.support.cloud import ADMIN_PASSWORD, CloudProcess  # noqa: E402


def token(c: CloudProcess) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    return httpx.post(f"{c.url('identity')}/v3/auth/tokens", json=body).headers["X-Subject-Token"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=10)
    args = ap.parse_args()
    cache = Path.home() / ".cache" / "stratus-test"
    art = build_guest(cache / "guest")
    data = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))
    (data / "guest").symlink_to(art.directory.parent)
    # 10 one-vCPU guests on 2 cores: above the default 4x CPU overcommit.
    c = CloudProcess(data, env={"STRATUS_HYPERVISOR": "qemu",
                                "STRATUS_COMPUTE__CPU_ALLOCATION_RATIO": "8"})
    c.start()
    raw, active, marker, snap, convert = [], [], [], [], []
    par: dict[str, float] = {}
    try:
        h = {"X-Auth-Token": token(c), "OpenStack-API-Version": "compute 2.96"}
        api = httpx.Client(base_url=f"{c.url('compute')}/v2.1", headers=h, timeout=60)
        img = httpx.Client(base_url=c.url("image"), headers=h, timeout=60)
        while not (found := img.get("/v2/images", params={"name": "stratus-guest"}).json()
                   ["images"]) or found[0]["status"] != "active":
            time.sleep(0.3)
        image_id = found[0]["id"]
        accel = gq.accel_for(cache)
        for i in range(args.runs):
            work = Path(tempfile.mkdtemp(prefix="raw-", dir="/tmp"))
            t0 = time.monotonic()
            g = gq.start(gq.GuestSpec(disk=art.disk, workdir=work, accel=accel, memory_mib=128,
                                      kernel=art.vmlinux, initrd=art.initrd, append=art.cmdline,
                                      vnc=False))
            g.wait_for_marker(120)
            raw.append(time.monotonic() - t0)
            g.kill()
            shutil.rmtree(work)

            t0 = time.monotonic()
            sid = api.post("/servers", json={"server": {
                "name": f"b{i}", "imageRef": image_id, "flavorRef": "2",
                "networks": "none"}}).json()["server"]["id"]
            while api.get(f"/servers/{sid}").json()["server"]["status"] != "ACTIVE":
                time.sleep(0.02)
            active.append(time.monotonic() - t0)
            log = next((data / "instances" / sid).glob("run-*/serial.log"))
            gq.wait_for_marker(log, 120)
            marker.append(time.monotonic() - t0)

            t0 = time.monotonic()
            r = api.post(f"/servers/{sid}/action", json={"createImage": {"name": f"s{i}"}})
            snap_id = r.json()["image_id"]
            while img.get(f"/v2/images/{snap_id}").json()["status"] != "active":
                time.sleep(0.01)
            snap.append(time.monotonic() - t0)
            disk = data / "instances" / sid / "disk.qcow2"
            out = data / "convert.qcow2"
            t0 = time.monotonic()
            subprocess.run(["qemu-img", "convert", "-U", "-O", "qcow2", str(disk), str(out)],
                           check=True)
            convert.append(time.monotonic() - t0)
            out.unlink()
            api.delete(f"/servers/{sid}")
            while api.get(f"/servers/{sid}").status_code != 404:
                time.sleep(0.05)
        par = parallel(api, data, art, accel, image_id, args.parallel)
    finally:
        c.stop()
        for pidfile in (data / "instances").glob("*/run-*/qemu.pid"):
            found = gq.attach(gq.GuestSpec(disk=pidfile, workdir=pidfile.parent))
            if found is not None:
                found.kill()
        shutil.rmtree(data, ignore_errors=True)
    m = statistics.median
    print(json.dumps({"runs": args.runs, "accel": gq.accel_for(cache),
                      "raw_qemu_to_marker_s": round(m(raw), 2),
                      "api_to_active_s": round(m(active), 2),
                      "api_to_marker_s": round(m(marker), 2),
                      "marker_ratio_vs_raw": round(m(marker) / m(raw), 2),
                      "snapshot_api_s": round(m(snap), 3),
                      "qemu_img_convert_s": round(m(convert), 3),
                      "snapshot_ratio": round(m(snap) / m(convert), 2), **par}, indent=1))


def parallel(api: httpx.Client, data: Path, art: GuestArtifacts, accel: str, image_id: str,
             n: int) -> dict[str, float]:
    """N boots at once through the API and by hand, to every up marker; idle RSS."""
    work = Path(tempfile.mkdtemp(prefix="rawpar-", dir="/tmp"))
    t0 = time.monotonic()
    guests = [gq.start(gq.GuestSpec(disk=art.disk, workdir=work / f"g{i}", accel=accel,
                                    memory_mib=128, kernel=art.vmlinux, initrd=art.initrd,
                                    append=art.cmdline, vnc=False)) for i in range(n)]
    try:
        for g in guests:
            g.wait_for_marker(300)
        raw_s = time.monotonic() - t0
    finally:
        for g in guests:
            g.kill()
        shutil.rmtree(work, ignore_errors=True)

    t0 = time.monotonic()
    ids = [api.post("/servers", json={"server": {
        "name": f"p{i}", "imageRef": image_id, "flavorRef": "2", "networks": "none"}}
    ).json()["server"]["id"] for i in range(n)]
    pending = set(ids)
    while pending:
        for sid in list(pending):
            logs = list((data / "instances" / sid).glob("run-*/serial.log"))
            if logs and gq.MARKER_RE.search(logs[0].read_bytes()):
                pending.discard(sid)
        if time.monotonic() - t0 > 300:
            states = [api.get(f"/servers/{sid}").json()["server"] for sid in pending]
            raise SystemExit(f"{len(pending)} guests not up: " + "; ".join(
                f"{s['status']} {s.get('fault', {}).get('message', '')}" for s in states)
                + "\n" + "\n".join(line for line in (data / "stratus.log").read_text()
                                    .splitlines() if "WARN" in line or "ERROR" in line)[-3000:])
        time.sleep(0.05)
    api_s = time.monotonic() - t0
    time.sleep(5)  # idle
    rss = []
    for sid in ids:
        pidfile = next((data / "instances" / sid).glob("run-*/qemu.pid"))
        status = Path(f"/proc/{pidfile.read_text().strip()}/status").read_text()
        rss.append(int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024)  # type: ignore[index]
    for sid in ids:
        api.delete(f"/servers/{sid}")
    for sid in ids:
        while api.get(f"/servers/{sid}").status_code != 404:
            time.sleep(0.05)
    return {f"parallel_{n}_raw_to_all_markers_s": round(raw_s, 2),
            f"parallel_{n}_api_to_all_markers_s": round(api_s, 2),
            "parallel_ratio_vs_raw": round(api_s / raw_s, 2),
            "idle_guest_rss_mib_median": round(statistics.median(rss), 1),
            "idle_guest_rss_mib_max": round(max(rss), 1)}


if __name__ == "__main__":
    main()
