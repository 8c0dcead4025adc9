"""Deleting servers while they build leaves no ports behind (the network can go).

The fake driver takes 1.5 s per spawn here, so deletes land both before a
host is chosen and while the host is creating ports and starting the guest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.compute.helpers import User, upload_image
from tests.support.cloud import CloudProcess

ENV = {"STRATUS_COMPUTE__FAKE_LATENCY__SPAWN": "1.5",
       "STRATUS_COMPUTE__HEARTBEAT_INTERVAL": "0.5"}


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    with CloudProcess(Path(tmp_path_factory.mktemp("delbuild")), env=ENV) as cloud:
        u = User(cloud, fork=True)
        upload_image(u)
        yield u


def test_servers_deleted_mid_build_release_their_ports(user: User) -> None:
    net = user.osc("network", "create", "racy")["id"]
    user.osc("subnet", "create", "--network", net, "--subnet-range", "10.30.0.0/24", "racy-v4")
    image = user.osc("image", "show", "cirros")["id"]
    ids = []
    for pause in (0.0, 0.3, 0.8, 1.2):  # before scheduling, during port creation and spawn
        resp = user.api("POST", "/servers", json={"server": {
            "name": f"racy-{pause}", "imageRef": image, "flavorRef": "1",
            "networks": [{"uuid": net}]}})
        assert resp.status_code == 202, resp.text
        sid = resp.json()["server"]["id"]
        time.sleep(pause)
        assert user.api("DELETE", f"/servers/{sid}").status_code == 204
        ids.append(sid)
    for sid in ids:
        user.wait(sid, "DELETED", timeout=30)
    deadline = time.monotonic() + 15  # a build that was mid-spawn cleans up after itself
    while user.osc("port", "list", "--network", net, "--device-owner", "compute:nova"):
        assert time.monotonic() < deadline, user.osc("port", "list", "--network", net,
                                                      "--long")
        time.sleep(0.3)
    user.osc("subnet", "delete", "racy-v4", parse=False)  # SubnetInUse if a port leaked
    user.osc("network", "delete", net, parse=False)
