"""Junk over the real socket: every body, attribute and query gets a NeutronError, never a 500."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import httpx

from stratus.network import attributes as attrs
from tests.functional.network.conftest import NetCloud, created

JUNK_BODIES: list[bytes] = [
    b"", b"{", b"null", b"[]", b'"text"', b"1e999", b"\xff\xfe\x00", b'{"a": NaN}',
    b"[" * 5000 + b"]" * 5000, b'{"x": 1}',
]
JUNK_VALUES: list[Any] = [
    None, [], {}, "x" * 300, -1, 2**70, 1.5, True, "", {"a": [1]}, [{"b": None}],
    "\u0000", "10.0.0.0/33", "::/200", ["not-an-object"],
]
SPECS = {"network": attrs.NETWORK, "subnet": attrs.SUBNET, "port": attrs.PORT,
         "router": attrs.ROUTER, "floatingip": attrs.FLOATINGIP,
         "security_group": attrs.SECURITY_GROUP,
         "security_group_rule": attrs.SECURITY_GROUP_RULE}
PATHS = {"network": "networks", "subnet": "subnets", "port": "ports", "router": "routers",
         "floatingip": "floatingips", "security_group": "security-groups",
         "security_group_rule": "security-group-rules"}


def assert_fault(resp: httpx.Response, what: str) -> None:
    assert resp.status_code < 500, f"{what}: {resp.status_code} {resp.text[:300]}"
    if resp.status_code >= 400 and resp.status_code != 413:
        assert "NeutronError" in resp.json(), (what, resp.text[:300])


def world(http: httpx.Client, public: str) -> dict[str, dict[str, Any]]:
    """One of each resource, with a valid base body to create more."""
    net = created(http.post("/networks", json={"network": {"name": "junk"}}), "network")
    subnet = created(http.post("/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "10.99.0.0/24", "ip_version": 4}}), "subnet")
    port = created(http.post("/ports", json={"port": {"network_id": net["id"]}}), "port")
    router = created(http.post("/routers", json={"router": {"name": "junk"}}), "router")
    fip = created(http.post("/floatingips", json={"floatingip": {
        "floating_network_id": public}}), "floatingip")
    sg = created(http.post("/security-groups", json={"security_group": {"name": "junk"}}),
                 "security_group")
    rule = created(http.post("/security-group-rules", json={"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "protocol": "udp",
        "port_range_min": 53, "port_range_max": 53}}), "security_group_rule")
    return {
        "network": {"id": net["id"], "base": {"name": "j"}},
        "subnet": {"id": subnet["id"], "base": {"network_id": net["id"], "ip_version": 4,
                                                "cidr": "10.98.0.0/24"}},
        "port": {"id": port["id"], "base": {"network_id": net["id"]}},
        "router": {"id": router["id"], "base": {"name": "j"}},
        "floatingip": {"id": fip["id"], "base": {"floating_network_id": public}},
        "security_group": {"id": sg["id"], "base": {"name": "j"}},
        "security_group_rule": {"id": rule["id"], "base": {
            "security_group_id": sg["id"], "direction": "egress", "protocol": "tcp"}},
    }


def test_junk_bodies_and_attribute_values_never_500(net_cloud: NetCloud,
                                                    public_net: dict[str, Any]) -> None:
    c = net_cloud
    json_headers = {"Content-Type": "application/json"}
    with c.http(c.alice) as http:
        things = world(http, public_net["id"])
        router_id = things["router"]["id"]
        targets = [("POST", f"/{p}") for p in PATHS.values()]
        targets += [("PUT", f"/{PATHS[k]}/{v['id']}") for k, v in things.items()]
        targets += [("PUT", f"/routers/{router_id}/{a}") for a in (
            "add_router_interface", "remove_router_interface", "add_extraroutes",
            "remove_extraroutes")]
        targets += [("PUT", f"/quotas/{c.alice.project_id}"),
                    ("PUT", f"/networks/{things['network']['id']}/tags")]
        for method, path in targets:
            for body in JUNK_BODIES:
                assert_fault(http.request(method, path, content=body, headers=json_headers),
                             f"{method} {path} {body[:20]!r}")

        def attack(case: tuple[str, str, Any]) -> None:
            resource, name, value = case
            path, key = f"/{PATHS[resource]}", resource
            member = f"{path}/{things[resource]['id']}"
            resp = http.post(path, json={key: {**things[resource]["base"], name: value}})
            assert_fault(resp, f"POST {path} {name}={value!r}")
            if resp.status_code == 201:
                http.delete(f"{path}/{resp.json()[key]['id']}")
            assert_fault(http.put(member, json={key: {name: value}}),
                         f"PUT {member} {name}={value!r}")

        cases = [(r, n, v) for r, spec in SPECS.items() for n in spec for v in JUNK_VALUES]
        with ThreadPoolExecutor(4) as pool:  # concurrent junk is junk too
            list(pool.map(attack, cases))

        for resource in SPECS:
            path, key = f"/{PATHS[resource]}", resource
            member = f"{path}/{things[resource]['id']}"
            for value in JUNK_VALUES:
                assert_fault(http.post(path, json={key: value}), f"POST {path} {value!r}")
                assert_fault(http.put(member, json={key: value}), f"PUT {member} {value!r}")

        for value in JUNK_VALUES:
            for action in ("add_router_interface", "remove_router_interface"):
                for field in ("subnet_id", "port_id"):
                    assert_fault(http.put(f"/routers/{router_id}/{action}",
                                          json={field: value}), f"{action} {field}={value!r}")
            assert_fault(http.put(f"/routers/{router_id}/add_extraroutes",
                                  json={"router": {"routes": value}}), f"routes={value!r}")
            assert_fault(http.put(f"/networks/{things['network']['id']}/tags",
                                  json={"tags": value}), f"tags={value!r}")


def test_junk_queries_never_500(net_cloud: NetCloud) -> None:
    c = net_cloud
    queries = [{"limit": "x"}, {"limit": "-1"}, {"limit": "99999999999999999999"},
               {"marker": "nope", "limit": "1"}, {"sort_key": "nope"},
               {"sort_key": "name", "sort_dir": "sideways"}, {"page_reverse": "maybe"},
               {"fields": ""}, {"fields": "nope"}, {"admin_state_up": "perhaps"},
               {"shared": "x"}, {"fixed_ips": "ip_address"}, {"fixed_ips": "junk=1"},
               {"tags": ","}, {"id": "\x00"}, {"name": "%"}]
    with c.http(c.alice) as http:
        for path in [*PATHS.values(), "extensions", "quotas"]:
            for params in queries:
                assert_fault(http.get(f"/{path}", params=params), f"GET {path} {params}")
            assert_fault(http.get(f"/{path}/{'x' * 5000}"), f"GET {path}/long-id")


def test_malformed_http_on_the_socket_gets_an_answer(net_cloud: NetCloud) -> None:
    url = urlparse(net_cloud.url)
    token = net_cloud.alice.token
    for raw in (
        f"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"a\"",  # short body
        f"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\n{\"n\r\n0\r\n\r\n",
        f"GET /v2.0/networks/%ZZ HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n\r\n",
    ):
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(raw.encode())
            if "Content-Length: 5" in raw:
                sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(65536).decode(errors="replace")
        status = answer.split(" ", 2)[1] if answer.startswith("HTTP/1.1 ") else ""
        assert not status or not status.startswith("5"), answer[:300]


def test_junk_inside_nested_attributes_never_500(net_cloud: NetCloud,
                                                 public_net: dict[str, Any]) -> None:
    c = net_cloud
    with c.http(c.alice) as http:
        things = world(http, public_net["id"])
        net_id, sg_id = things["network"]["id"], things["security_group"]["base"]
        nested: list[tuple[str, str, dict[str, Any]]] = []
        for value in JUNK_VALUES:
            nested += [
                ("/routers", "router", {"external_gateway_info": {"network_id": value}}),
                ("/routers", "router", {"external_gateway_info": {
                    "network_id": public_net["id"], "external_fixed_ips": value}}),
                ("/routers", "router", {"external_gateway_info": {
                    "network_id": public_net["id"], "external_fixed_ips": [value]}}),
                ("/routers", "router", {"external_gateway_info": {
                    "network_id": public_net["id"], "enable_snat": value}}),
                ("/ports", "port", {"network_id": net_id, "fixed_ips": [value]}),
                ("/ports", "port", {"network_id": net_id, "fixed_ips": [{"subnet_id": value}]}),
                ("/ports", "port", {"network_id": net_id,
                                    "fixed_ips": [{"ip_address": value}]}),
                ("/ports", "port", {"network_id": net_id, "security_groups": [value]}),
                ("/ports", "port", {"network_id": net_id, "allowed_address_pairs": [value]}),
                ("/ports", "port", {"network_id": net_id,
                                    "allowed_address_pairs": [{"ip_address": value}]}),
                ("/ports", "port", {"network_id": net_id, "binding:profile": value}),
                ("/subnets", "subnet", {"network_id": net_id, "ip_version": 4,
                                        "cidr": "10.97.0.0/24", "allocation_pools": [value]}),
                ("/subnets", "subnet", {"network_id": net_id, "ip_version": 4,
                                        "cidr": "10.97.0.0/24",
                                        "allocation_pools": [{"start": value, "end": value}]}),
                ("/subnets", "subnet", {"network_id": net_id, "ip_version": 4,
                                        "cidr": "10.97.0.0/24", "host_routes": [value]}),
                ("/subnets", "subnet", {"network_id": net_id, "ip_version": 4,
                                        "cidr": "10.97.0.0/24", "dns_nameservers": [value]}),
                ("/security-group-rules", "security_group_rule", {
                    "security_group_id": sg_id, "direction": "ingress", "protocol": "tcp",
                    "port_range_min": value, "port_range_max": 80}),
            ]
        for path, key, body in nested:
            resp = http.post(path, json={key: body})
            assert_fault(resp, f"POST {path} {body}")
            if resp.status_code == 201:
                http.delete(f"{path}/{resp.json()[key]['id']}")
