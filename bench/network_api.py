"""Network API on the all-in-one: port create throughput and port listing latency.

* baseline: ``GET /`` of the network API (same process, same middleware and
  auth-free path) -- the HTTP floor every figure below is compared with.
* port create: ``POST /v2.0/ports`` on one network with a /16 subnet, from
  several keep-alive connections (IPAM, MAC, default security group, quota
  check and the agent notification, each in one transaction).
* then the network is filled up to ``--ports`` with bulk creates, and
  ``GET /v2.0/ports`` (everything), ``?limit=100`` (one page),
  ``?device_id=...`` (a filter clients use) and ``GET /v2.0/ports/{id}`` are timed.

The load generator is the raw-asyncio one of bench/identity_tokens.py, in its
own process, so that the client is not what is measured.

Usage: .venv/bin/python bench/network_api.py [--seconds 5] [--connections 8] [--ports 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from identity_tokens import load, show

from tests.support.cloud import ADMIN_PASSWORD, CloudProcess

BULK = 100


def admin_token(identity: str) -> tuple[str, str]:
    resp = httpx.post(f"{identity}/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    resp.raise_for_status()
    return resp.headers["x-subject-token"], resp.json()["token"]["project"]["id"]


def prepare(http: httpx.Client, project_id: str) -> str:
    """Unlimited port quota and a network with a /16 for the ports; returns the network id."""
    http.put(f"/v2.0/quotas/{project_id}", json={"quota": {"port": -1}}).raise_for_status()
    net = http.post("/v2.0/networks", json={"network": {"name": "bench"}})
    net.raise_for_status()
    net_id = str(net.json()["network"]["id"])
    http.post("/v2.0/subnets", json={"subnet": {
        "network_id": net_id, "cidr": "10.200.0.0/16", "ip_version": 4}}).raise_for_status()
    return net_id


def count_ports(http: httpx.Client, net_id: str) -> int:
    resp = http.get("/v2.0/ports", params={"network_id": net_id, "fields": "id"})
    resp.raise_for_status()
    return len(resp.json()["ports"])


def fill(http: httpx.Client, net_id: str, target: int) -> float:
    """Bulk-create ports until the network has ``target``; returns ports/s of the bulk path."""
    have = count_ports(http, net_id)
    made, t0 = 0, time.perf_counter()
    while have < target:
        n = min(BULK, target - have)
        resp = http.post("/v2.0/ports", json={"ports": [
            {"network_id": net_id, "device_id": f"bench-{have + i}"} for i in range(n)]})
        resp.raise_for_status()
        have += n
        made += n
    return made / (time.perf_counter() - t0) if made else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--ports", type=int, default=1000,
                        help="ports on the network when listing (the issue asks 10000)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, \
            CloudProcess(Path(tmp) / "cloud", services=("identity", "network")) as cloud:
        url = cloud.url("network")
        token, project_id = admin_token(cloud.url("identity"))
        auth = {"X-Auth-Token": token}
        with httpx.Client(base_url=url, headers=auth, timeout=600) as http:
            net_id = prepare(http, project_id)

            print(f"network API benchmark: {os.cpu_count()} CPUs, {args.seconds:.0f}s per run, "
                  f"{args.connections} connections, SQLite, services identity,network")
            floor = load(url, "GET", "/", seconds=args.seconds, conns=args.connections)
            show("baseline: GET / (network API)", floor)
            body = json.dumps({"port": {"network_id": net_id}})
            create = load(url, "POST", "/v2.0/ports", headers=auth, body=body,
                          seconds=args.seconds, conns=args.connections)
            show("port create POST /v2.0/ports", create, floor)
            created = create["statuses"].get("201", 0)
            bulk_rate = fill(http, net_id, args.ports)
            total = count_ports(http, net_id)
            print(f"{'bulk create (' + str(BULK) + ' per POST) to fill':44} "
                  f"{bulk_rate:9.1f} ports/s   ({created} single + bulk = {total} ports)")

            some = http.get("/v2.0/ports", params={"limit": 1}).json()["ports"][0]
            conns = max(1, min(args.connections, 4))
            for name, path in (
                (f"list GET /v2.0/ports ({total} ports)", "/v2.0/ports"),
                ("list GET /v2.0/ports?limit=100", "/v2.0/ports?limit=100"),
                ("filter GET /v2.0/ports?device_id=", f"/v2.0/ports?device_id={some['device_id']}"
                 if some["device_id"] else f"/v2.0/ports?mac_address={some['mac_address']}"),
                ("show GET /v2.0/ports/{id}", f"/v2.0/ports/{some['id']}"),
            ):
                r = load(url, "GET", path, headers=auth, seconds=args.seconds,
                         conns=conns if "limit" in path or "{id}" in name else 2)
                show(name, r, floor)


if __name__ == "__main__":
    main()
