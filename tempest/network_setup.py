"""Prepare a Stratus for Tempest's network tests; print the tempest.conf sections they need.

Run by tempest/run-network.sh (through run.sh's TEMPEST_SETUP) with
STRATUS_AUTH_URL and STRATUS_ADMIN_PASSWORD set. As admin it makes sure an
external network ``public`` with a subnet (172.24.4.0/24) exists -- database
records only, no interface is created -- and reads the extension aliases the
network API implements, so Tempest's feature switches match the cloud.
"""

from __future__ import annotations

import os
import sys
import time

import httpx

PUBLIC_CIDR = os.environ.get("STRATUS_PUBLIC_CIDR", "172.24.4.0/24")


def admin_token(http: httpx.Client, auth_url: str, password: str) -> tuple[str, str]:
    """The admin token and the network endpoint of the catalog."""
    resp = http.post(f"{auth_url}/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "password": password, "domain": {"id": "default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    resp.raise_for_status()
    catalog = resp.json()["token"]["catalog"]
    network = next(e["url"] for s in catalog if s["type"] == "network"
                   for e in s["endpoints"] if e["interface"] == "public")
    return resp.headers["X-Subject-Token"], network.rstrip("/")


def wait_for(http: httpx.Client, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http.get(f"{url}/").status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"network API at {url} did not answer in {timeout}s")
        time.sleep(0.2)


def public_network(http: httpx.Client, url: str) -> str:
    found = http.get(f"{url}/v2.0/networks", params={"name": "public",
                                                     "router:external": "true"})
    found.raise_for_status()
    if found.json()["networks"]:
        return str(found.json()["networks"][0]["id"])
    net = http.post(f"{url}/v2.0/networks", json={"network": {
        "name": "public", "router:external": True}})
    net.raise_for_status()
    net_id = str(net.json()["network"]["id"])
    http.post(f"{url}/v2.0/subnets", json={"subnet": {
        "name": "public-subnet", "network_id": net_id, "ip_version": 4,
        "cidr": PUBLIC_CIDR, "enable_dhcp": False}}).raise_for_status()
    return net_id


def main() -> None:
    auth_url = os.environ["STRATUS_AUTH_URL"].rstrip("/")
    with httpx.Client(timeout=30) as http:
        token, url = admin_token(http, auth_url, os.environ["STRATUS_ADMIN_PASSWORD"])
        wait_for(http, url)
        http.headers["X-Auth-Token"] = token
        public_id = public_network(http, url)
        ext = http.get(f"{url}/v2.0/extensions")
        ext.raise_for_status()
        aliases = sorted(e["alias"] for e in ext.json()["extensions"])
    print(f"""[service_available]
neutron = true

[network]
catalog_type = network
endpoint_type = publicURL
public_network_id = {public_id}
floating_network_name = public
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64
shared_physical_network = false

[network-feature-enabled]
api_extensions = {",".join(aliases)}
ipv6 = true
ipv6_subnet_attributes = true
port_security = true
port_admin_state_change = true
floating_ips = true""")


if __name__ == "__main__":
    main()
