"""The session's all-in-one cloud seen by an admin and two ordinary projects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cloud import CloudProcess
from tests.support.openstack import IdentityAdmin, Persona, Script, script, write_clouds_yaml


@dataclass
class NetCloud:
    cloud: CloudProcess
    clouds_yaml: Path
    admin: Persona
    alice: Persona
    bob: Persona
    carol: Persona  # a project that only quota tests change

    @property
    def url(self) -> str:
        return self.cloud.url("network")

    def http(self, who: Persona | None) -> httpx.Client:
        headers = {"X-Auth-Token": who.token} if who else {}
        return httpx.Client(base_url=self.url + "/v2.0", headers=headers, timeout=30)

    def cli(self, who: Persona, lines: list[str]) -> Script:
        name = {id(self.admin): "admin", id(self.alice): "alice", id(self.bob): "bob"}[id(who)]
        return script(self.cloud, lines, cloud_name=name, clouds_yaml=self.clouds_yaml)


def created(resp: httpx.Response, key: str) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    return dict(resp.json()[key])


def fault(resp: httpx.Response, status: int) -> str:
    """The NeutronError type of a fault with ``status``."""
    assert resp.status_code == status, resp.text
    err = resp.json()["NeutronError"]
    assert err["message"] and "detail" in err
    return str(err["type"])


@pytest.fixture(scope="session")
def net_cloud(cloud: CloudProcess, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[NetCloud]:
    identity = IdentityAdmin(cloud)
    admin = identity.admin_persona()
    alice, bob = identity.persona("net-alice"), identity.persona("net-bob")
    carol = identity.persona("net-carol")
    identity.close()
    path = write_clouds_yaml(tmp_path_factory.mktemp("net-clients") / "clouds.yaml",
                             {"admin": admin, "alice": alice, "bob": bob})
    yield NetCloud(cloud, path, admin, alice, bob, carol)


@pytest.fixture(scope="session")
def public_net(net_cloud: NetCloud) -> dict[str, Any]:
    """An external network (database records only) with a /24 for floating IPs."""
    with net_cloud.http(net_cloud.admin) as http:
        net = created(http.post("/networks", json={"network": {
            "name": "public-fixture", "router:external": True}}), "network")
        created(http.post("/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "198.51.100.0/24", "ip_version": 4,
            "enable_dhcp": False}}), "subnet")
    return net
