"""Compute control plane on the all-in-one with the fake driver (2 cores).

* boot: N servers created with concurrency C through the public API (real
  tokens, real HTTP), time until every one is ACTIVE, and servers/s;
  baseline: the same number of ``GET /v2.1/flavors`` round trips at the same
  concurrency (what the HTTP edge alone costs per request).
* list: ``GET /servers/detail`` p50/p99 with those N servers (1,000 per page).
* scheduler: one host decision (filter + weigh) among 10,000 simulated hosts,
  in memory, p50/p99 over 200 decisions: the scheduler's path (a bounded
  candidate search, see scheduler/select.py) next to a full scan of every host
  as the baseline; the database claim that follows is one conditional UPDATE.

Usage: .venv/bin/python bench/compute_boot.py [--servers 1000] [--concurrency 50]
       .venv/bin/python bench/compute_boot.py --scheduler-only
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.cloud import ADMIN_PASSWORD, CloudProcess


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def token(cloud: CloudProcess) -> str:
    user = {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                     "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    async with httpx.AsyncClient() as c:
        resp = await c.post(f"{cloud.url('identity')}/v3/auth/tokens", json=body)
        resp.raise_for_status()
        return resp.headers["X-Subject-Token"]


async def run(args: argparse.Namespace) -> None:
    env = {"STRATUS_COMPUTE__FAKE_VCPUS": "4096", "STRATUS_COMPUTE__FAKE_MEMORY_MB": "10000000",
           "STRATUS_COMPUTE__FAKE_DISK_GB": "100000", "STRATUS_LOG_LEVEL": "warning"}
    with tempfile.TemporaryDirectory() as tmp, CloudProcess(Path(tmp), env=env) as cloud:
        tok = await token(cloud)
        headers = {"X-Auth-Token": tok, "OpenStack-API-Version": "compute 2.96"}
        limits = httpx.Limits(max_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=f"{cloud.url('compute')}/v2.1", headers=headers,
                                     timeout=120, limits=limits) as c:
            async with httpx.AsyncClient(headers={"X-Auth-Token": tok}) as img:
                resp = await img.post(f"{cloud.url('image')}/v2/images", json={
                    "name": "bench", "disk_format": "qcow2", "container_format": "bare"})
                image_id = resp.json()["id"]
                await img.put(f"{cloud.url('image')}/v2/images/{image_id}/file",
                              content=b"x" * 4096,
                              headers={"Content-Type": "application/octet-stream"})
            project = (await c.get("/servers")).request.headers  # warm up
            del project
            me = await _project_id(cloud, tok)
            await c.put(f"/os-quota-sets/{me}", json={"quota_set": {
                "instances": -1, "cores": -1, "ram": -1}})
            sem = asyncio.Semaphore(args.concurrency)

            async def timed(coro_fn) -> float:  # type: ignore[no-untyped-def]
                async with sem:
                    start = time.perf_counter()
                    await coro_fn()
                    return time.perf_counter() - start

            # Baseline: plain authenticated GETs at the same concurrency.
            t0 = time.perf_counter()
            await asyncio.gather(*(timed(lambda: c.get("/flavors"))
                                   for _ in range(args.servers)))
            base = time.perf_counter() - t0

            body = {"server": {"name": "b", "imageRef": image_id, "flavorRef": "1",
                               "networks": "none"}}
            codes: list[int] = []

            async def create() -> None:
                codes.append((await c.post("/servers", json=body)).status_code)

            t0 = time.perf_counter()
            await asyncio.gather(*(timed(create) for _ in range(args.servers)))
            accepted = time.perf_counter() - t0
            while True:
                servers = (await c.get("/servers/detail")).json()["servers"]
                active = sum(1 for s in servers if s["status"] == "ACTIVE")
                errors = sum(1 for s in servers if s["status"] == "ERROR")
                if active + errors >= args.servers:
                    break
                await asyncio.sleep(0.2)
            boot = time.perf_counter() - t0
            lat = []
            for _ in range(args.list_samples):
                start = time.perf_counter()
                resp = await c.get("/servers/detail")
                lat.append(time.perf_counter() - start)
                assert len(resp.json()["servers"]) == args.servers
    sched = scheduler_figures()
    print(f"boot: {args.servers} servers ACTIVE in {boot:.1f}s ({args.servers / boot:.0f} "
          f"servers/s; accepted in {accepted:.1f}s; {active} active, {errors} error, "
          f"non-202: {sum(1 for x in codes if x != 202)})")
    print(f"  baseline: {args.servers} GET /flavors at the same concurrency in {base:.1f}s "
          f"-> boot/baseline ratio {boot / base:.1f}x")
    print(f"list: GET /servers/detail with {args.servers} servers: p50 "
          f"{statistics.median(lat) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms")
    print_scheduler(sched)


def print_scheduler(sched: dict[str, tuple[float, float]]) -> None:
    for name, (p50, p99) in sched.items():
        print(f"scheduler: decision among 10,000 hosts, {name}: p50 {p50 * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms (target <= 10 ms)")


async def _project_id(cloud: CloudProcess, tok: str) -> str:
    async with httpx.AsyncClient() as c:
        resp = await c.get(f"{cloud.url('identity')}/v3/auth/tokens",
                           headers={"X-Auth-Token": tok, "X-Subject-Token": tok})
        return str(resp.json()["token"]["project"]["id"])


def scheduler_figures() -> dict[str, tuple[float, float]]:
    """p50/p99 seconds of one decision among 10,000 hosts: the scheduler's path
    (bounded candidate search, then weighing) and a full scan of every host."""
    import gc

    from stratus.compute.scheduler.hoststate import HostState, RequestSpec
    from stratus.compute.scheduler.select import candidates, filter_hosts, rank
    from stratus.compute.scheduler.weighers import CPUWeigher, DiskWeigher, RAMWeigher

    rng = random.Random(7)
    hosts = [HostState(node_id=i, host=f"h{i}", node=f"h{i}", availability_zone="nova",
                       vcpus=32, memory_mb=131072, disk_gb=2000,
                       vcpus_used=rng.randrange(120), memory_mb_used=rng.randrange(131072),
                       disk_gb_used=rng.randrange(2000)) for i in range(10_000)]
    spec = RequestSpec(vcpus=2, memory_mb=4096, disk_gb=20)
    weighers = (RAMWeigher(1.0), CPUWeigher(1.0), DiskWeigher(1.0))
    gc.freeze()  # the host states live as long as the scheduler: keep them out of GC passes
    out = {}
    for name, pick in (
            ("scheduler (1,000 candidates)",
             lambda i: candidates(hosts, spec, limit=1000, start=i * 1000)[0]),
            ("full scan", lambda i: filter_hosts(hosts, spec)[0])):
        times = []
        for i in range(200):
            start = time.perf_counter()
            rank(pick(i), spec, weighers, top=10)
            times.append(time.perf_counter() - start)
        out[name] = (statistics.median(times), pct(times, 0.99))
    gc.unfreeze()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--list-samples", type=int, default=20)
    parser.add_argument("--scheduler-only", action="store_true",
                        help="only the 10,000-host decision (no cloud started)")
    args = parser.parse_args()
    if args.scheduler_only:
        print_scheduler(scheduler_figures())
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
