"""Where a snapshot's time goes, stage by stage, without booting a guest.

    .venv/bin/python bench/snapshot_stages.py [--mib 256] [--runs 5]

Builds a disk like the QEMU driver's during a live snapshot (a base holding
MIB of data, the instance overlay on it, an empty snapshot overlay on top),
then times, each as the median of --runs, in one process:

* ``map``: ``qemu-img info --backing-chain`` + ``qemu-img map`` + the layout;
* ``stream_null``: :func:`stream_qcow2` to a sink that drops the bytes
  (the reads and the qcow2 framing);
* ``floor_hash``: one sequential read of the data + md5 + sha512 in two threads
  (what any correct upload must at least do on 2 cores), and ``fsync`` of that
  much freshly written data;
* ``store_add``: :meth:`FileStore.add` of chunks already in memory (hash,
  write, fsync, rename);
* ``upload_mem``: chunks already in memory through the image client, the
  in-process ASGI transport, the upload endpoint and the store;
* ``snapshot``: the whole path as the compute agent runs it: stream_qcow2 →
  the agent's queue → image client → in-process transport → image service →
  store, until the image is active; ``snapshot_http`` the same over real HTTP
  to a uvicorn server in this process.

Every stage checks the stored image's md5 against the streamed bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

# STAGES_ROOT: measure another checkout (its src/ and tests/), e.g. the code before a change.
ROOT = Path(os.environ.get("STAGES_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from stratus.compute.virt import qcow2stream as qs
from stratus.image.client import ImageClient
from tests.unit.image.conftest import make_api


def make_disk(work: Path, mib: int) -> Path:
    base, disk, top = work / "base.qcow2", work / "disk.qcow2", work / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), f"{mib + 64}M"],
                   check=True)
    subprocess.run(["qemu-io", "-c", f"write -P 0x5a 0 {mib}M", "-c",
                    f"write -P 0x33 {mib}M 1M", str(base)], check=True, capture_output=True)
    for under, over in ((base, disk), (disk, top)):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                        str(under), str(over)], check=True)
    # The instance has written a little of its own.
    subprocess.run(["qemu-io", "-c", "write -P 0x11 4M 2M", str(disk)], check=True,
                   capture_output=True)
    return top


CPU: dict[str, list[float]] = {}
GC: dict[str, list[float]] = {}  # seconds of garbage collection during each timed stage
_gc_start: list[float] = []
_gc_total: list[float] = [0.0]


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_start[:] = [time.perf_counter()]
    elif _gc_start:
        _gc_total[0] += time.perf_counter() - _gc_start[0]


gc.callbacks.append(_gc_timer)
RESERVE: list[float] = []  # seconds of each quota reservation


async def timed(fn: Callable[[], Awaitable[Any]], name: str = "") -> tuple[float, Any]:
    """Wall time of FN; its CPU time (every thread of this process) goes to CPU[name]."""
    c0, l0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    g0 = _gc_total[0]
    out = await fn()
    wall = time.perf_counter() - t0
    if name:
        GC.setdefault(name, []).append(_gc_total[0] - g0)
        CPU.setdefault(name, []).append(time.process_time() - c0)
        CPU.setdefault(name + "_loop", []).append(time.thread_time() - l0)
    return wall, out


async def stage_map(top: Path) -> float:
    t0 = time.perf_counter()
    size, extents = await asyncio.to_thread(qs.data_extents, top)
    qs.layout(size, qs._clusters(extents))
    return time.perf_counter() - t0


async def stage_stream_null(top: Path) -> tuple[float, str]:
    n = 0

    async def sink(chunk: bytes) -> None:
        nonlocal n
        n += len(chunk)

    c0, t0 = time.process_time(), time.perf_counter()
    await qs.stream_qcow2(top, sink)
    CPU.setdefault("stream_null", []).append(time.process_time() - c0)
    return time.perf_counter() - t0, str(n)


def floor_hash(top: Path, work: Path, data: bytes) -> tuple[float, float, float, str]:
    """qemu-img convert; md5 ‖ sha512 of the image bytes; fsync of as many fresh bytes."""
    out = work / "floor.qcow2"
    t0 = time.perf_counter()
    subprocess.run(["qemu-img", "convert", "-U", "-O", "qcow2", str(top), str(out)],
                   check=True)
    converted = time.perf_counter() - t0
    out.unlink()
    c0, t0 = time.process_time(), time.perf_counter()
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha512()
    step = 4 << 20
    th = threading.Thread(target=lambda: [md5.update(data[i:i + step])
                                          for i in range(0, len(data), step)])
    th.start()
    for i in range(0, len(data), step):
        sha.update(data[i:i + step])
    th.join()
    hashed = time.perf_counter() - t0
    CPU.setdefault("floor_md5_par_sha512", []).append(time.process_time() - c0)
    copy = work / "fsync.bin"
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for i in range(0, len(data), step):
        os.write(fd, data[i:i + step])
    t0 = time.perf_counter()
    os.fsync(fd)
    fsynced = time.perf_counter() - t0
    os.close(fd)
    copy.unlink()
    return converted, hashed, fsynced, md5.hexdigest()


async def collect(top: Path) -> list[bytes]:
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    await qs.stream_qcow2(top, sink)
    return chunks


async def agent_path(top: Path, upload: Callable[[AsyncIterator[bytes]], Awaitable[None]],
                     ) -> None:
    """The compute agent's stream_snapshot, minus the instance bookkeeping."""
    from stratus.compute.agent.snapshots import stream_snapshot

    class Driver:
        async def snapshot(self, uuid: str, sink: Any) -> int:
            return await qs.stream_qcow2(top, sink)

    class Images:
        async def upload(self, token: str, image_id: str, chunks: AsyncIterator[bytes]) -> None:
            await upload(chunks)

    async def progress(**_: Any) -> None:
        return None

    await stream_snapshot(Driver(), Images(), "uuid", "token",  # type: ignore[arg-type]
                          "image", progress)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--stages", default="map,stream_null,floor,store_add,upload_mem,snapshot,"
                                        "snapshot_http")
    args = ap.parse_args()
    stages = set(args.stages.split(","))
    work = Path(tempfile.mkdtemp(prefix="snapstages-", dir="/tmp"))
    results: dict[str, list[float]] = {}
    api = None
    server = None
    try:
        top = make_disk(work, args.mib)
        chunks = await collect(top)
        joined = b"".join(chunks)
        want_md5 = hashlib.md5(joined, usedforsecurity=False).hexdigest()
        total = sum(map(len, chunks))
        api = await make_api(work / "svc")
        store = api.runtime.services["image"].store  # type: ignore[attr-defined]
        ledger = api.runtime.services["image"].core.usage  # type: ignore[attr-defined]
        real_reserve = ledger.reserve

        async def reserve(*a: Any, **kw: Any) -> bool:
            t0 = time.perf_counter()
            try:
                return await real_reserve(*a, **kw)
            finally:
                RESERVE.append(time.perf_counter() - t0)

        ledger.reserve = reserve
        client = ImageClient.from_runtime(api.runtime, headers={"X-Auth-Token": "alice"})
        http_client = None
        if "snapshot_http" in stages:
            import uvicorn

            port = free_port()
            config = uvicorn.Config(api.runtime.services["image"].app, host="127.0.0.1",
                                    port=port, log_level="warning", lifespan="off")
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.01)
            http_client = ImageClient.from_runtime(
                api.runtime, headers={"X-Auth-Token": "alice"},
                base_url=f"http://127.0.0.1:{port}")

        async def fresh() -> str:
            return str((await api.create(disk_format="qcow2"))["id"])  # type: ignore[union-attr]

        async def check(image_id: str) -> None:
            got = (await api.show(image_id)).json()  # type: ignore[union-attr]
            assert got["status"] == "active", got
            assert got["checksum"] == want_md5 and got["size"] == total, got
            await api.http.delete(f"/v2/images/{image_id}",  # type: ignore[union-attr]
                                  headers=api.as_("alice"))  # type: ignore[union-attr]

        async def from_memory() -> AsyncIterator[bytes]:
            for c in chunks:
                yield c

        def add(name: str, value: float) -> None:
            results.setdefault(name, []).append(value)

        for _ in range(args.runs):
            if "map" in stages:
                add("map_s", await stage_map(top))
            if "stream_null" in stages:
                add("stream_null_s", (await stage_stream_null(top))[0])
            if "floor" in stages:
                converted, hashed, fsynced, md5 = await asyncio.to_thread(
                    floor_hash, top, work, joined)
                assert md5 == want_md5
                add("qemu_img_convert_s", converted)
                add("floor_md5_par_sha512_s", hashed)
                add("floor_fsync_s", fsynced)
            if "store_add" in stages:
                t, stored = await timed(lambda: store.add("x" * 36, from_memory(), tag="b"),
                                     "store_add")
                assert stored.checksum == want_md5
                await store.delete(stored.location)
                add("store_add_s", t)
            if "upload_mem" in stages:
                image_id = await fresh()
                t, _ = await timed(lambda i=image_id: client.upload(i, from_memory()),
                                   "upload_mem")
                await check(image_id)
                add("upload_mem_s", t)
            if "snapshot" in stages:
                image_id = await fresh()
                t, _ = await timed(lambda i=image_id: agent_path(
                    top, lambda c: client.upload(i, c)), "snapshot")
                await check(image_id)
                add("snapshot_s", t)
            if "snapshot_http" in stages and http_client is not None:
                image_id = await fresh()
                t, _ = await timed(lambda i=image_id: agent_path(
                    top, lambda c: http_client.upload(i, c)), "snapshot_http")
                await check(image_id)
                add("snapshot_http_s", t)
        await client.http.aclose()
        if http_client is not None:
            await http_client.http.aclose()
    finally:
        if server is not None:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await serving
        if api is not None:
            await api.http.aclose()
            await api.runtime.services["image"].stop()
            await api.runtime.bus.stop()
            await api.runtime.db.dispose()
        shutil.rmtree(work, ignore_errors=True)
    out: dict[str, Any] = {"mib": args.mib, "runs": args.runs, "image_bytes": total}
    for name, values in results.items():
        out[name] = round(statistics.median(values), 3)
        out[name[:-2] + "_runs"] = " ".join(f"{v:.3f}" for v in values)
    if RESERVE:
        out["reserve_calls_per_upload"] = round(len(RESERVE) / args.runs / max(
            1, len(stages & {"upload_mem", "snapshot", "snapshot_http"})), 1)
        out["reserve_median_ms"] = round(statistics.median(RESERVE) * 1000, 2)
    for name, values in GC.items():
        out[name + "_gc_ms"] = round(statistics.median(values) * 1000, 1)
    for name, values in CPU.items():
        out[name + "_cpu_s"] = round(statistics.median(values), 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
