"""Servers on networks, driven with the unchanged ``openstack`` CLI against a real
all-in-one: ports created and bound for the build, addresses in the server body,
floating IPs, interface attach/detach, clean-up on delete and on a failed build."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.compute.helpers import User, upload_image
from tests.support.cloud import CloudProcess

ENV = {"STRATUS_COMPUTE__VIF_PLUGGING_TIMEOUT": "2",
       "STRATUS_COMPUTE__HEARTBEAT_INTERVAL": "0.5"}


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    with CloudProcess(Path(tmp_path_factory.mktemp("netcompute")), env=ENV) as cloud:
        u = User(cloud, fork=True)
        upload_image(u)
        yield u


def _boot(user: User, name: str, *nic: str) -> str:
    return str(user.osc("server", "create", "--flavor", "m1.tiny", "--image", "cirros",
                        *nic, name)["id"])


def _ports_of(user: User, server_id: str) -> list[dict[str, Any]]:
    return list(user.osc("port", "list", "--device-id", server_id, "--long"))


def test_nic_auto_gets_a_network_made_for_the_project(user: User) -> None:
    ext = user.osc("network", "create", "--external", "public")["id"]
    user.osc("subnet", "create", "--network", ext, "--subnet-range", "172.24.4.0/24",
             "public-v4")
    sid = _boot(user, "auto-vm", "--nic", "auto")
    server = user.wait(sid, "ACTIVE")
    (name, addrs), = server["addresses"].items()
    assert name == "auto_allocated_network"
    assert addrs[0]["OS-EXT-IPS:type"] == "fixed" and addrs[0]["addr"].startswith("10.0.0.")
    topo = user.osc("network", "auto", "allocated", "topology", "create")
    assert topo["id"] == user.osc("network", "show", "auto_allocated_network")["id"]
    routers = user.osc("router", "list", "--long")
    assert any(r["Name"] == "auto_allocated_router" and r["External gateway info"]
               for r in routers)
    user.osc("server", "delete", "--wait", sid, parse=False)


def test_nic_net_id_port_id_and_none(user: User) -> None:
    net = user.osc("network", "create", "private")["id"]
    user.osc("subnet", "create", "--network", net, "--subnet-range", "10.1.0.0/24", "priv-v4")
    router = user.osc("router", "create", "--external-gateway", "public", "r1")["id"]
    user.osc("router", "add", "subnet", router, "priv-v4", parse=False)

    sid = _boot(user, "by-net", "--nic", f"net-id={net},v4-fixed-ip=10.1.0.50")
    server = user.wait(sid, "ACTIVE")
    port, = _ports_of(user, sid)
    assert port["Status"] == "ACTIVE"
    shown = user.osc("port", "show", port["ID"])
    assert shown["device_owner"] == "compute:nova"
    assert shown["binding_host_id"] == server["OS-EXT-SRV-ATTR:host"]
    assert server["addresses"] == {"private": [{
        "version": 4, "addr": "10.1.0.50", "OS-EXT-IPS:type": "fixed",
        "OS-EXT-IPS-MAC:mac_addr": shown["mac_address"]}]}
    assert server["security_groups"] == [{"name": "default"}]
    console = user.api("POST", f"/servers/{sid}/action",
                       json={"os-getConsoleOutput": {}}).json()["output"]
    assert shown["mac_address"] in console  # the fake driver got the port's MAC

    fip = user.osc("floating", "ip", "create", "public")["floating_ip_address"]
    user.osc("server", "add", "floating", "ip", sid, fip, parse=False)
    addrs = user.server(sid)["addresses"]["private"]
    assert {a["addr"]: a["OS-EXT-IPS:type"] for a in addrs} == {"10.1.0.50": "fixed",
                                                                 fip: "floating"}
    ips = user.api("GET", f"/servers/{sid}/ips").json()
    assert ips == {"addresses": {"private": [{"version": 4, "addr": "10.1.0.50"},
                                             {"version": 4, "addr": fip}]}}
    assert user.api("GET", f"/servers/{sid}/ips/private").json() == ips["addresses"]
    missing = user.api("GET", f"/servers/{sid}/ips/public")
    assert missing.status_code == 404
    assert "not a member" in missing.json()["itemNotFound"]["message"]

    mine = user.osc("port", "create", "--network", net, "my-port")["id"]
    sid2 = _boot(user, "by-port", "--nic", f"port-id={mine}")
    user.wait(sid2, "ACTIVE")
    assert user.osc("port", "show", mine)["device_id"] == sid2

    none = _boot(user, "no-nic", "--nic", "none")
    assert user.wait(none, "ACTIVE")["addresses"] == {}

    user.osc("server", "add", "port", none, mine, parse=False, check=False)  # in use: refused
    extra = user.osc("port", "create", "--network", net, "extra")["id"]
    user.osc("server", "add", "port", none, extra, parse=False)
    assert [p["ID"] for p in _ports_of(user, none)] == [extra]
    assert "private" in user.server(none)["addresses"]
    user.osc("server", "remove", "port", none, extra, parse=False)
    assert _ports_of(user, none) == []
    assert user.osc("port", "show", extra)["device_id"] == ""

    created = port["ID"]
    for s in (sid, sid2, none):
        user.osc("server", "delete", "--wait", s, parse=False)
    assert user.osc("port", "list", "--network", net, "--device-owner",
                    "compute:nova") == []
    assert created not in [p["ID"] for p in user.osc("port", "list")]
    left = user.osc("port", "show", mine)
    assert left["device_id"] == "" and left["binding_host_id"] in ("", None)


def test_vif_plugging_timeout_fails_the_build_cleanly(user: User) -> None:
    net = user.osc("network", "create", "slow-net")["id"]
    user.osc("subnet", "create", "--network", net, "--subnet-range", "10.8.0.0/24", "s-v4")
    down = user.osc("port", "create", "--network", net, "--disable", "stays-down")["id"]
    sid = _boot(user, "never-plugged", "--nic", f"port-id={down}", "--nic", f"net-id={net}")
    deadline = time.monotonic() + 30
    while user.server(sid)["status"] != "ERROR":
        assert time.monotonic() < deadline, user.server(sid)
        time.sleep(0.2)
    fault = user.server(sid)["fault"]
    assert "network-vif-plugged" in fault["message"] or "network-vif-plugged" in fault.get(
        "details", "")
    assert _ports_of(user, sid) == []
    assert user.osc("port", "show", down)["device_id"] == ""
    user.osc("server", "delete", "--wait", sid, parse=False)


def test_port_quota_is_the_network_services(user: User) -> None:
    net = user.osc("network", "create", "quota-net")["id"]
    user.osc("subnet", "create", "--network", net, "--subnet-range", "10.9.0.0/24", "q-v4")
    project = user.osc("project", "show", "admin")["id"]
    used = httpx.get(f"{user.cloud.url('network')}/v2.0/quotas/{project}/details",
                     headers={"X-Auth-Token": user.token}).json()["quota"]["port"]["used"]
    user.osc("quota", "set", "--ports", str(used), project, parse=False)  # full
    try:
        proc = user.osc("server", "create", "--flavor", "m1.tiny", "--image", "cirros",
                        "--nic", f"net-id={net}", "over", parse=False, check=False)
        assert proc.returncode != 0, proc.stdout
        assert "maximum number of ports" in proc.stderr.lower(), proc.stderr
    finally:
        user.osc("quota", "set", "--ports", "500", project, parse=False)


def _v21(user: User, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The compute API at 2.1, where Nova still proxies floating IPs and tenant networks."""
    return user.api(method, path, headers={"OpenStack-API-Version": "compute 2.1"}, **kwargs)


def test_nova_floating_ip_and_tenant_network_proxies(user: User) -> None:
    ext = user.osc("network", "create", "--external", "pool-b")["id"]
    user.osc("subnet", "create", "--network", ext, "--subnet-range", "172.25.0.0/24", "pb-v4")
    net = user.osc("network", "create", "proxied")["id"]
    user.osc("subnet", "create", "--network", net, "--subnet-range", "10.12.0.0/24", "px-v4")
    router = user.osc("router", "create", "--external-gateway", "pool-b", "r-pb")["id"]
    user.osc("router", "add", "subnet", router, "px-v4", parse=False)

    pools = _v21(user, "GET", "/os-floating-ip-pools").json()["floating_ip_pools"]
    assert {"name": "pool-b"} in pools
    assert _v21(user, "POST", "/os-floating-ips", json={"pool": "no-such"}).status_code == 404
    assert _v21(user, "POST", "/os-floating-ips").status_code == 404  # no pool called "nova"
    fip = _v21(user, "POST", "/os-floating-ips", json={"pool": "pool-b"}).json()["floating_ip"]
    assert fip["pool"] == "pool-b" and fip["instance_id"] is None and fip["fixed_ip"] is None
    assert fip["ip"].startswith("172.25.0.")
    assert fip in _v21(user, "GET", "/os-floating-ips").json()["floating_ips"]

    a = _boot(user, "fip-a", "--nic", f"net-id={net}")
    b = _boot(user, "fip-b", "--nic", f"net-id={net}")
    user.wait(a, "ACTIVE")
    user.wait(b, "ACTIVE")
    action = {"addFloatingIp": {"address": fip["ip"]}}
    assert _v21(user, "POST", f"/servers/{a}/action", json=action).status_code == 202
    shown = _v21(user, "GET", f"/os-floating-ips/{fip['id']}").json()["floating_ip"]
    assert shown["instance_id"] == a and shown["fixed_ip"].startswith("10.12.0.")
    exact = shown["fixed_ip"].replace(".", r"\.") + "$"
    assert [s["ID"] for s in user.osc("server", "list", "--ip", exact)] == [a]
    assert [s["ID"] for s in user.osc("server", "list", "--ip", r"^10\.12\.")] in ([a, b], [b, a])
    assert user.osc("server", "list", "--ip6", ".") == []
    assert user.api("GET", "/servers?ip=(").status_code == 400
    assert {"version": 4, "addr": fip["ip"]} in user.api(
        "GET", f"/servers/{a}/ips").json()["addresses"]["proxied"]
    # Associating an associated address moves it, as Nova does; both servers' views follow.
    assert _v21(user, "POST", f"/servers/{b}/action", json=action).status_code == 202
    assert _v21(user, "GET", f"/os-floating-ips/{fip['id']}").json()[
        "floating_ip"]["instance_id"] == b
    assert fip["ip"] not in str(user.server(a)["addresses"])
    assert fip["ip"] in str(user.server(b)["addresses"])
    remove = {"removeFloatingIp": {"address": fip["ip"]}}
    refused = _v21(user, "POST", f"/servers/{a}/action", json=remove)
    assert refused.status_code == 409 and "not associated" in refused.text
    assert _v21(user, "POST", f"/servers/{b}/action", json=remove).status_code == 202
    assert _v21(user, "GET", f"/os-floating-ips/{fip['id']}").json()[
        "floating_ip"]["instance_id"] is None

    # Bad input: clear 4xx, never a 500.
    assert _v21(user, "POST", f"/servers/{a}/action",
                json={"addFloatingIp": {}}).status_code == 400
    assert _v21(user, "POST", f"/servers/{a}/action",
                json={"addFloatingIp": {"address": "0.0.0.77"}}).status_code == 404
    assert _v21(user, "POST", f"/servers/{a}/action", json={"addFloatingIp": {
        "address": fip["ip"], "fixed_address": "10.99.0.1"}}).status_code == 400
    assert _v21(user, "GET", "/os-floating-ips/not-a-uuid").status_code == 404
    assert user.api("GET", "/os-floating-ips").status_code == 404  # removed in 2.36
    assert user.api("POST", f"/servers/{a}/action", json=action).status_code == 404  # 2.44

    assert _v21(user, "DELETE", f"/os-floating-ips/{fip['id']}").status_code == 202
    assert _v21(user, "DELETE", f"/os-floating-ips/{fip['id']}").status_code == 404

    nets = _v21(user, "GET", "/os-tenant-networks").json()["networks"]
    assert {"id": net, "label": "proxied", "cidr": "None"} in nets
    assert _v21(user, "GET", f"/os-tenant-networks/{net}").json()["network"]["label"] == "proxied"
    assert _v21(user, "GET", "/os-tenant-networks/nope").status_code == 404
    for s in (a, b):
        user.osc("server", "delete", "--wait", s, parse=False)


def test_an_unknown_security_group_is_refused_before_anything_is_made(user: User) -> None:
    # (the CLI looks groups up itself first, so the API is asked directly, as Tempest does)
    image = user.osc("image", "show", "cirros")["id"]
    before = user.osc("server", "list")
    resp = user.api("POST", "/servers", json={"server": {
        "name": "sg-vm", "imageRef": image, "flavorRef": "1", "networks": "none",
        "security_groups": [{"name": "no-such-group"}]}})
    assert resp.status_code == 400, resp.text
    assert "no-such-group not found" in resp.json()["badRequest"]["message"]
    assert user.osc("server", "list") == before
