"""Drive a real all-in-one cloud the way a user does: the ``openstack`` CLI,
with plain HTTP (a real token) only to poll states quickly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.cloud import ADMIN_PASSWORD, CloudProcess

OPENSTACK = str(Path(sys.executable).with_name("openstack"))
TRANSITIONAL_TASK = object()


class User:
    def __init__(self, cloud: CloudProcess, *, fork: bool = False) -> None:
        # The in-process CLI keeps some state per process: a second cloud in the
        # same pytest process is driven with a forked CLI (``fork=True``).
        self.fork = fork or bool(os.environ.get("STRATUS_TEST_OSC_SUBPROCESS"))
        self.cloud = cloud
        self.env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.data_dir / "clouds.yaml"))
        self._token: str | None = None

    def osc(self, *args: str, parse: bool = True, check: bool = True) -> Any:
        """Run ``openstack ARGS``: the unchanged CLI, in this process to skip ~1.5 s of
        interpreter start per command (``fork`` runs ``openstack`` as a child process)."""
        argv = ["--os-cloud", "stratus", *args] + (["-f", "json"] if parse else [])
        if self.fork:
            proc = subprocess.run([OPENSTACK, *argv], env=self.env, capture_output=True,
                                  text=True, timeout=120)
        else:
            proc = _in_process(argv, self.env["OS_CLIENT_CONFIG_FILE"])
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stderr[-2000:]}")
        if not parse:
            return proc
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    @property
    def token(self) -> str:
        if self._token is None:
            user = {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}
            body = {"auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
            resp = httpx.post(f"{self.cloud.url('identity')}/v3/auth/tokens", json=body)
            resp.raise_for_status()
            self._token = resp.headers["X-Subject-Token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, "OpenStack-API-Version": "compute 2.96",
                   **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.cloud.url('compute')}/v2.1{path}",
                             headers=headers, timeout=30, **kwargs)

    def server(self, server_id: str) -> dict[str, Any]:
        resp = self.api("GET", f"/servers/{server_id}")
        resp.raise_for_status()
        return resp.json()["server"]  # type: ignore[no-any-return]

    def wait(self, server_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
        """Until ``status`` with no task (Tempest's rule); records the states seen."""
        deadline = time.monotonic() + timeout
        seen: list[tuple[str, str | None]] = []
        while time.monotonic() < deadline:
            resp = self.api("GET", f"/servers/{server_id}")
            if status == "DELETED" and resp.status_code == 404:
                return {}
            server = resp.json()["server"]
            state = (server["status"], server["OS-EXT-STS:task_state"])
            if not seen or seen[-1] != state:
                seen.append(state)
            if state == (status, None):
                server["_seen"] = seen
                return server  # type: ignore[no-any-return]
            if server["status"] == "ERROR" and status != "ERROR":
                raise AssertionError(f"{server_id} went to ERROR: {server.get('fault')}")
            time.sleep(0.05)
        raise AssertionError(f"{server_id} not {status} after {timeout}s: saw {seen}")


def _in_process(argv: list[str], clouds_yaml: str) -> subprocess.CompletedProcess[str]:
    import contextlib
    import io

    from openstackclient import shell

    out, err = io.StringIO(), io.StringIO()
    old = os.environ.get("OS_CLIENT_CONFIG_FILE")
    os.environ["OS_CLIENT_CONFIG_FILE"] = clouds_yaml
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = shell.OpenStackShell().run(argv)
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        if old is None:
            os.environ.pop("OS_CLIENT_CONFIG_FILE", None)
        else:
            os.environ["OS_CLIENT_CONFIG_FILE"] = old
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def upload_image(user: User, name: str = "cirros") -> str:
    path = user.cloud.data_dir / f"{name}.img"
    path.write_bytes(os.urandom(64 * 1024))
    image = user.osc("image", "create", "--file", str(path), "--disk-format", "qcow2",
                     "--container-format", "bare", "--public", name)
    return str(image["id"])
