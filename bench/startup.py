"""All-in-one cold/warm start to every API answering, and idle memory.

Baselines measured in the same run:
* a bare ``python -c pass`` (the interpreter's own start-up),
* a minimal Starlette app under uvicorn answering on one port (the floor for
  "a Python HTTP service is up").

Usage: .venv/bin/python bench/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.cloud import CloudProcess  # noqa: E402

MINIMAL_APP = textwrap.dedent("""
    import sys, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    async def root(request): return JSONResponse({})
    uvicorn.run(Starlette(routes=[Route('/', root)]), host='127.0.0.1', port=int(sys.argv[1]),
                log_level='warning')
""")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_answering(urls: list[str], proc: subprocess.Popen[bytes], deadline: float) -> None:
    pending = list(urls)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not answering: {pending}")
        try:
            httpx.get(pending[0], timeout=0.5)
            pending.pop(0)
        except httpx.HTTPError:
            time.sleep(0.01)


def time_python() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def time_minimal_app() -> tuple[float, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", MINIMAL_APP, str(port)])
    try:
        wait_answering([f"http://127.0.0.1:{port}/"], proc, time.monotonic() + 30)
        elapsed = time.perf_counter() - t0
        time.sleep(1)
        return elapsed, rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def time_stratus(data_dir: Path) -> tuple[float, float, list[str]]:
    cloud = CloudProcess(data_dir)
    t0 = time.perf_counter()
    cloud.proc = subprocess.Popen([sys.executable, "-m", "stratus", "up"], env=cloud.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        urls = [cloud.url(name) + "/" for name in cloud.ports]
        wait_answering(urls, cloud.proc, time.monotonic() + 120)
        elapsed = time.perf_counter() - t0
        time.sleep(2)  # let start-up work settle before reading idle memory
        return elapsed, rss_mb(cloud.proc.pid), list(cloud.ports)
    finally:
        cloud.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    py = [time_python() for _ in range(args.runs)]
    minimal = [time_minimal_app() for _ in range(args.runs)]
    cold, warm, services = [], [], []
    for _ in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
        try:
            cold.append(time_stratus(tmp))
            warm.append(time_stratus(tmp))
            services = cold[-1][2]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    print(f"machine: {os.cpu_count()} cores; runs: {args.runs}; services: {', '.join(services)}")
    print(f"baseline python -c pass:              {med(py):6.3f} s")
    print(f"baseline minimal uvicorn app answers: {med(m[0] for m in minimal):6.3f} s, "
          f"RSS {med(m[1] for m in minimal):5.1f} MB")
    c_t, c_rss = med(c[0] for c in cold), med(c[1] for c in cold)
    w_t, w_rss = med(w[0] for w in warm), med(w[1] for w in warm)
    base_t = med(m[0] for m in minimal)
    print(f"stratus up, cold (first run, migrations + bootstrap): {c_t:6.3f} s "
          f"({c_t / base_t:.1f}x minimal app), idle RSS {c_rss:5.1f} MB")
    print(f"stratus up, warm (existing data dir):                 {w_t:6.3f} s "
          f"({w_t / base_t:.1f}x minimal app), idle RSS {w_rss:5.1f} MB")
    print("targets (TARGETS.md): cold start <= 5 s, idle RSS <= 300 MB")


if __name__ == "__main__":
    main()
