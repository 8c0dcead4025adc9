"""Token issue and token validation throughput on the all-in-one.

* validate: ``GET /v3/auth/tokens`` (X-Auth-Token + X-Subject-Token), what
  every API call of a client costs a Keystone-backed cloud; baseline: a
  minimal Starlette app under uvicorn answering ``GET /`` with the same load
  generator (the floor for "a Python HTTP service answers").
* validate in-process: what another Stratus service of the same process pays
  per request (``runtime.token_validator.validate``), cached.
* issue: ``POST /v3/auth/tokens`` with a password (bcrypt at the configured
  cost); baseline: bare ``bcrypt.checkpw`` at the same cost on as many threads.

The load generator is a small keep-alive HTTP/1.1 client on raw asyncio
streams, in its own process, so that the client is not what is measured.

The machine may be shared: the 1-minute load average is printed before and
after each measurement, so that figures taken under load can be told apart.

Usage: .venv/bin/python bench/identity_tokens.py [--seconds 5] [--connections 8]
       [--services identity]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import bcrypt
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.cloud import ADMIN_PASSWORD, CloudProcess, free_port  # noqa: E402

LOADGEN = textwrap.dedent(r'''
    import asyncio, json, sys, time
    host, port, method, path, headers, body, seconds, conns = json.loads(sys.argv[1])
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    for k, v in headers.items():
        head += f"{k}: {v}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    request = (head + "\r\n").encode() + body.encode()
    latencies, statuses = [], {}

    async def worker(deadline):
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            code = status_line.split()[1].decode()
            statuses[code] = statuses.get(code, 0) + 1
        writer.close()

    async def main():
        deadline = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(deadline) for _ in range(conns)))
        elapsed = time.perf_counter() - t0
        latencies.sort()
        n = len(latencies)
        print(json.dumps({"n": n, "rps": n / elapsed, "statuses": statuses,
                          "p50": latencies[n // 2] * 1000 if n else None,
                          "p99": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else None}))
    asyncio.run(main())
''')

MINIMAL_APP = textwrap.dedent("""
    import sys, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    async def root(request): return JSONResponse({"ok": True})
    uvicorn.run(Starlette(routes=[Route('/', root)]), host='127.0.0.1', port=int(sys.argv[1]),
                log_level='warning', access_log=False)
""")


def load(url: str, method: str, path: str, *, headers: dict[str, str] | None = None,
         body: str = "", seconds: float, conns: int) -> dict[str, float]:
    host, port = url.split("//")[1].split(":")
    spec = json.dumps([host, int(port), method, path, headers or {}, body, seconds, conns])
    out = subprocess.run([sys.executable, "-c", LOADGEN, spec], capture_output=True, text=True,
                         check=True)
    return dict(json.loads(out.stdout))


def loadavg() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def show(name: str, r: dict[str, float], baseline: dict[str, float] | None = None) -> None:
    ratio = f"  ({r['rps'] / baseline['rps']:.2f}x baseline)" if baseline else ""
    print(f"{name:44} {r['rps']:9.1f} req/s   p50 {r['p50']:7.2f} ms   p99 {r['p99']:7.2f} ms"
          f"   statuses {r['statuses']}{ratio}   [{loadavg()}]")


def bcrypt_rate(rounds: int, threads: int, seconds: float) -> float:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds))
    count = [0]
    deadline = time.perf_counter() + seconds

    def spin() -> None:
        while time.perf_counter() < deadline:
            bcrypt.checkpw(b"pw", hashed)
            count[0] += 1

    pool = [threading.Thread(target=spin) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return count[0] / (time.perf_counter() - t0)


async def in_process(seconds: float) -> tuple[float, float]:
    """Validations/s and p50 µs of the in-process validator, on a fresh data dir."""
    from stratus.runtime import build
    from stratus.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={}, data_dir=tmp, services="identity",
                                 identity={"admin_password": "bench-admin"})
        runtime = await build(settings)
        try:
            issue = runtime.extras["identity.service_token"]
            token, _ = await issue("compute")
            validator = runtime.token_validator
            assert validator is not None
            await validator.validate(token)
            lat: list[float] = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                await validator.validate(token)
                lat.append(time.perf_counter() - t)
            return len(lat) / seconds, statistics.median(lat) * 1e6
        finally:
            await runtime.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--services", default="identity",
                        help="services of the all-in-one (default identity: the others idle)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        services = tuple(s for s in args.services.split(",") if s)
        with CloudProcess(Path(tmp) / "cloud", services=services) as cloud:
            url = cloud.url("identity")
            auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
            resp = httpx.post(url + "/v3/auth/tokens", json=auth)
            resp.raise_for_status()
            token = resp.headers["x-subject-token"]
            rounds = int(cloud.env.get("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "12"))

            port = free_port()
            app = subprocess.Popen([sys.executable, "-c", MINIMAL_APP, str(port)])
            try:
                floor_url = f"http://127.0.0.1:{port}"
                for _ in range(100):
                    try:
                        httpx.get(floor_url + "/")
                        break
                    except httpx.HTTPError:
                        time.sleep(0.05)
                floor = load(floor_url, "GET", "/", seconds=args.seconds,
                             conns=args.connections)
            finally:
                app.terminate()
                app.wait()

            print(f"identity token benchmark: {os.cpu_count()} CPUs, {args.seconds:.0f}s per "
                  f"run, {args.connections} connections, services: {','.join(services)}, "
                  f"{loadavg()} (1/5 min) at start")
            show("baseline: minimal Starlette GET /", floor)
            load(url, "GET", "/v3/auth/tokens", headers={  # warm-up, not shown
                "X-Auth-Token": token, "X-Subject-Token": token}, seconds=1,
                conns=args.connections)
            validate = load(url, "GET", "/v3/auth/tokens", headers={
                "X-Auth-Token": token, "X-Subject-Token": token}, seconds=args.seconds,
                conns=args.connections)
            show("validate GET /v3/auth/tokens", validate, floor)
            nocat = load(url, "GET", "/v3/auth/tokens?nocatalog", headers={
                "X-Auth-Token": token, "X-Subject-Token": token}, seconds=args.seconds,
                conns=args.connections)
            show("validate GET /v3/auth/tokens?nocatalog", nocat, floor)

            threads = os.cpu_count() or 1
            raw = bcrypt_rate(rounds, threads, args.seconds)
            issue = load(url, "POST", "/v3/auth/tokens", body=json.dumps(auth),
                         seconds=max(args.seconds, 8), conns=threads * 2)
            show(f"issue POST /v3/auth/tokens (bcrypt {rounds})", issue)
            print(f"{'baseline: bcrypt.checkpw, ' + str(threads) + ' threads':44} {raw:9.1f} "
                  f"checks/s  -> issue is {issue['rps'] / raw:.2f}x the bare hash rate; "
                  f"Keystone anchor 4.4 req/s -> {issue['rps'] / 4.4:.2f}x   [{loadavg()}]")

    rate, p50 = asyncio.run(in_process(min(args.seconds, 2)))
    print(f"{'validate in-process (runtime.token_validator)':44} {rate:9.0f} /s      "
          f"p50 {p50:7.1f} µs   [{loadavg()}]")


if __name__ == "__main__":
    main()
