"""Image upload and download throughput against the all-in-one, and server memory.

Baseline measured in the same run, on the same disk: ``cp`` of the same file
(and ``cp`` followed by ``sync`` of the copy, since an upload is only
acknowledged once its data is fsynced). The server's RSS is sampled during
the transfers; streaming means it must not grow with the image size.

Usage: .venv/bin/python bench/image_stream.py [--size-mib 2048] [--dir DIR]
                                              [--services identity,image]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.cloud import ADMIN_PASSWORD, CloudProcess

MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = rss_mib(pid)
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(self.interval)

    def stop(self) -> float:
        self.stop_flag.set()
        self.join()
        return self.peak


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_file(path: Path, size: int) -> None:
    block = os.urandom(16 * MIB)
    with path.open("wb") as out:
        left = size
        while left:
            n = min(left, len(block))
            out.write(block[:n])
            left -= n


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def cp(src: Path, dst: Path, sync: bool) -> None:
    subprocess.run(["cp", str(src), str(dst)], check=True)
    if sync:
        subprocess.run(["sync", str(dst)], check=True)


def token(identity: str) -> str:
    resp = httpx.post(f"{identity}/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "password": ADMIN_PASSWORD, "domain": {"id": "default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}, timeout=60)
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"]


def curl_upload(http: httpx.Client, image_id: str, src: Path) -> None:
    subprocess.run(["curl", "-sf", "-X", "PUT", "-T", str(src), "-H",
                    f"X-Auth-Token: {http.headers['X-Auth-Token']}", "-H",
                    "Content-Type: application/octet-stream", "-H", "Expect:",
                    f"{str(http.base_url).rstrip('/')}/v2/images/{image_id}/file"], check=True)


def curl_download(http: httpx.Client, image_id: str, dst: Path) -> None:
    subprocess.run(["curl", "-sf", "-o", str(dst), "-H",
                    f"X-Auth-Token: {http.headers['X-Auth-Token']}",
                    f"{str(http.base_url).rstrip('/')}/v2/images/{image_id}/file"], check=True)


def upload(http: httpx.Client, image_id: str, src: Path) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        with src.open("rb") as f:
            while block := f.read(4 * MIB):
                yield block

    resp = http.put(f"/v2/images/{image_id}/file", content=chunks(), headers={
        "Content-Type": "application/octet-stream", "Content-Length": str(src.stat().st_size)})
    resp.raise_for_status()


def download(http: httpx.Client, image_id: str, dst: Path) -> None:
    with http.stream("GET", f"/v2/images/{image_id}/file") as resp, dst.open("wb") as out:
        resp.raise_for_status()
        for block in resp.iter_raw(4 * MIB):
            out.write(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--dir", type=Path, default=None,
                        help="work dir (source file, copies and the cloud's data dir)")
    parser.add_argument("--client", choices=("curl", "httpx"), default="curl",
                        help="HTTP client driving the transfers (curl keeps the client's "
                        "CPU cost out of the figure)")
    parser.add_argument("--services", default="",
                        help="services to run (default: the whole all-in-one)")
    args = parser.parse_args()
    size = args.size_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="image-bench-", dir=args.dir))
    try:
        src, copy, saved = work / "source.img", work / "copy.img", work / "saved.img"
        print(f"work dir {work}: writing a {args.size_mib} MiB source file...", flush=True)
        make_file(src, size)
        subprocess.run(["sync"], check=True)
        services = tuple(s for s in args.services.split(",") if s) or None
        cloud = CloudProcess(work / "cloud", services=services)
        cloud.start()
        try:
            assert cloud.proc is not None
            pid = cloud.proc.pid
            http = httpx.Client(base_url=cloud.url("image"), timeout=600,
                                headers={"X-Auth-Token": token(cloud.url("identity"))})
            image = http.post("/v2/images", json={"name": "bench", "disk_format": "raw",
                                                  "container_format": "bare"}).json()
            results: dict[str, float] = {}
            results["cp"] = float("inf")
            for _ in range(2):  # best of two: the first may pay for cold reads
                results["cp"] = min(results["cp"], timed(cp, src, copy, False))
                copy.unlink()
            results["cp+sync"] = timed(cp, src, copy, True)
            copy.unlink()
            rss_before = rss_mib(pid)
            sampler = RssSampler(pid)
            sampler.start()
            cpu = {"start": cpu_seconds(pid)}
            put, get = ((curl_upload, curl_download) if args.client == "curl"
                        else (upload, download))
            results["upload"] = timed(put, http, image["id"], src)
            cpu["upload"] = cpu_seconds(pid)
            results["download"] = timed(get, http, image["id"], saved)
            cpu["download"] = cpu_seconds(pid)
            peak = sampler.stop()
            record = http.get(f"/v2/images/{image['id']}").json()
            assert record["size"] == size and saved.stat().st_size == size, record
            http.delete(f"/v2/images/{image['id']}")
        finally:
            cloud.stop()
        mbs = {k: size / MIB / v for k, v in results.items()}
        print(f"\nimage of {args.size_mib} MiB, same disk ({work}), client {args.client}")
        print(f"{'':10} {'seconds':>8} {'MiB/s':>8} {'vs cp':>6} {'vs cp+sync':>10}")
        for name in ("cp", "cp+sync", "upload", "download"):
            print(f"{name:10} {results[name]:8.2f} {mbs[name]:8.1f} "
                  f"{mbs[name] / mbs['cp']:6.2f} {mbs[name] / mbs['cp+sync']:10.2f}")
        print(f"server CPU: upload {cpu['upload'] - cpu['start']:.2f}s, "
              f"download {cpu['download'] - cpu['upload']:.2f}s")
        print(f"server RSS: {rss_before:.1f} MiB before, peak {peak:.1f} MiB during transfers, "
              f"growth {peak - rss_before:.1f} MiB (limit 64 MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
