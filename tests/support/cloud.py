"""A real all-in-one Stratus in a child process, for tests driven over HTTP.

``CloudProcess`` runs ``python -m stratus up`` with its own data dir and free
ports, waits until every API answers, and stops it by pid. Tests talk to it
exactly as a user would: HTTP, openstacksdk, the ``openstack`` CLI.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from stratus.settings import API_SERVICES

ADMIN_PASSWORD = "stratus-test-admin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CloudProcess:
    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None,
                 services: tuple[str, ...] | None = None) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in API_SERVICES}
        self.env = dict(os.environ)
        self.env.update({f"STRATUS_PORTS__{n.upper()}": str(p) for n, p in self.ports.items()})
        self.env["STRATUS_DATA_DIR"] = str(data_dir)
        self.env["STRATUS_IDENTITY__ADMIN_PASSWORD"] = ADMIN_PASSWORD
        self.env.setdefault("STRATUS_HYPERVISOR", "fake")
        self.env.setdefault("STRATUS_DATAPLANE", "noop")
        if services:
            self.env["STRATUS_SERVICES"] = ",".join(services)
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "stratus.log"
        self.started_services: list[str] = []

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stratus", "up"], env=self.env, stdout=log, stderr=log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stratus up exited {self.proc.returncode}:\n{self.log()}")
            if self._ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"stratus up not ready in {timeout}s:\n{self.log()}")

    def _ready(self) -> bool:
        runfiles = list((self.data_dir / "run").glob("*.json")) if (
            self.data_dir / "run").exists() else []
        if not runfiles:
            return False
        import json

        info = json.loads(runfiles[0].read_text())
        self.started_services = list(info["endpoints"])
        try:
            for name in self.started_services:
                httpx.get(f"{self.url(name)}/healthz", timeout=1).raise_for_status()
        except httpx.HTTPError:
            return False
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> CloudProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
