"""`stratus up` as a user runs it: every API answers, status shows it, it stops cleanly."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.cloud import CloudProcess


def stratus(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stratus", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def test_up_serves_every_api_then_stops_on_sigterm(tmp_path: Path) -> None:
    proc = CloudProcess(tmp_path / "data")
    proc.start()
    try:
        assert set(proc.started_services) >= {"identity", "image", "compute", "network", "volume"}
        for name in proc.started_services:
            r = httpx.get(proc.url(name) + "/", timeout=5)
            assert r.status_code in (200, 300), (name, r.status_code)
            assert r.headers["x-openstack-request-id"].startswith("req-")
        status = stratus("status", env=proc.env)
        assert status.returncode == 0, status.stderr
        assert "identity" in status.stdout and " up" in status.stdout
    finally:
        code = proc.stop()
    assert code == 0, proc.log()
    assert not list((tmp_path / "data" / "run").glob("*.json")), "runfile left behind"
    with socket.socket() as sock:  # the ports are free again
        sock.bind(("127.0.0.1", proc.ports["identity"]))
    assert stratus("status", env=proc.env).returncode == 3


def test_oversized_body_on_a_real_socket_gets_413_not_a_hang(cloud: CloudProcess) -> None:
    body = b'{"auth": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    r = httpx.post(cloud.url("identity") + "/v3/auth/tokens", content=body,
                   headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == 413


def test_unknown_route_and_wrong_method_on_a_real_socket(cloud: CloudProcess) -> None:
    r = httpx.get(cloud.url("compute") + "/v2.1/no-such-thing", timeout=5)
    assert r.status_code in (401, 404)  # 401 once compute requires a token first
    r = httpx.request("PATCH", cloud.url("identity") + "/", timeout=5)
    assert r.status_code == 405 and r.json()["error"]["code"] == 405


def test_bad_config_value_stops_startup_naming_the_setting(tmp_path: Path) -> None:
    env = dict(os.environ, STRATUS_DATA_DIR=str(tmp_path), STRATUS_PORTS__IDENTITY="fivethousand")
    result = stratus("up", env=env)
    assert result.returncode == 2
    assert "setting 'ports.identity'" in result.stderr
    assert "STRATUS_PORTS__IDENTITY" in result.stderr


def test_port_in_use_stops_startup_naming_the_port_setting(tmp_path: Path) -> None:
    proc = CloudProcess(tmp_path / "data")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", proc.ports["image"]))
        busy.listen()
        result = stratus("up", env=proc.env, timeout=60)
    assert result.returncode == 1
    assert "setting 'ports.image'" in result.stderr


def test_doctor_reports_each_capability(tmp_path: Path) -> None:
    env = dict(os.environ, STRATUS_DATA_DIR=str(tmp_path))
    result = stratus("doctor", "--json", env=env)
    assert result.returncode == 0, result.stderr
    import json

    names = {c["name"]: c for c in json.loads(result.stdout)}
    assert {"root", "qemu", "kvm", "dnsmasq", "nftables", "netns", "bus"} <= set(names)
    for check in names.values():
        assert check["state"] in ("ok", "warn", "missing")
        if check["state"] == "missing":
            assert check["fix"], check
