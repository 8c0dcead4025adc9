"""Two fake hosts in one all-in-one: migrations, evacuate, affinity, and a
process killed in the middle of builds and snapshots."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.compute.helpers import User, upload_image
from tests.support.cloud import CloudProcess

ENV = {"STRATUS_COMPUTE__FAKE_HOSTS": "2", "STRATUS_COMPUTE__HEARTBEAT_INTERVAL": "0.5",
       "STRATUS_COMPUTE__FAKE_VCPUS": "4", "STRATUS_COMPUTE__FAKE_MEMORY_MB": "8192",
       "STRATUS_COMPUTE__FAKE_DISK_GB": "100"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CloudProcess, User]]:
    with CloudProcess(Path(tmp_path_factory.mktemp("pair")), env=ENV) as cloud:
        user = User(cloud, fork=True)
        upload_image(user)
        yield cloud, user


def _create(user: User, name: str, *extra: str) -> str:
    sid = user.osc("server", "create", "--flavor", "m1.tiny", "--image", "cirros", "--nic",
                   "none", *extra, name)["id"]
    return str(sid)


def test_cold_and_live_migration_with_the_cli(pair: tuple[CloudProcess, User]) -> None:
    _, user = pair
    sid = _create(user, "mover")
    first = user.wait(sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    user.osc("server", "migrate", sid, parse=False)
    s = user.wait(sid, "VERIFY_RESIZE")
    assert s["OS-EXT-SRV-ATTR:host"] != first
    user.osc("server", "resize", "confirm", sid, parse=False)
    second = user.wait(sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    user.osc("server", "migrate", "--live-migration", sid, parse=False)
    s = user.wait(sid, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] == first != second
    kinds = {m["Type"] for m in user.osc("server", "migration", "list")}
    assert {"migration", "live-migration"} <= kinds
    user.osc("server", "delete", sid, parse=False)


def test_evacuate_from_a_host_forced_down(pair: tuple[CloudProcess, User]) -> None:
    _, user = pair
    sid = _create(user, "evacuee")
    source = user.wait(sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    proc = user.osc("server", "evacuate", sid, parse=False, check=False)
    assert proc.returncode != 0  # its host is up
    user.osc("compute", "service", "set", "--down", source, "nova-compute", parse=False)
    try:
        user.osc("server", "evacuate", sid, parse=False)
        s = user.wait(sid, "ACTIVE")
        assert s["OS-EXT-SRV-ATTR:host"] != source
    finally:
        user.osc("compute", "service", "set", "--up", source, "nova-compute", parse=False)
    user.osc("server", "delete", sid, parse=False)


def test_anti_affinity_group_spreads_and_then_explains(pair: tuple[CloudProcess, User]) -> None:
    _, user = pair
    group = user.osc("server", "group", "create", "--policy", "anti-affinity", "spread")["id"]
    ids = [_create(user, f"spread-{i}", "--hint", f"group={group}") for i in range(3)]
    hosts = [user.wait(i, "ACTIVE")["OS-EXT-SRV-ATTR:host"] for i in ids[:2]]
    assert len(set(hosts)) == 2
    third = user.wait(ids[2], "ERROR")
    assert "ServerGroupAntiAffinityFilter removed 2 host(s)" in third["fault"]["message"]
    shown = user.osc("server", "show", ids[2])
    assert "ServerGroupAntiAffinityFilter" in json.dumps(shown.get("fault"))
    for i in ids:
        user.osc("server", "delete", i, parse=False)


def _transitional(user: User) -> list[dict[str, object]]:
    servers = user.api("GET", "/servers/detail?all_tenants=1").json()["servers"]
    return [s for s in servers if s["OS-EXT-STS:task_state"] is not None
            or s["status"] == "BUILD"]


def test_killed_in_the_middle_nothing_stays_transitional(tmp_path: Path) -> None:
    cloud = CloudProcess(tmp_path / "crash", env=ENV)
    cloud.start()
    try:
        user = User(cloud, fork=True)
        upload_image(user)
        done = _create(user, "snapshotted")
        user.wait(done, "ACTIVE")
        resized = _create(user, "resized")
        source = user.wait(resized, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
        control = cloud.data_dir / "fake-driver"
        control.mkdir(exist_ok=True)
        hostnames = [h["Hypervisor Hostname"] for h in user.osc("hypervisor", "list")]
        for host in hostnames:
            (control / f"{host}.json").write_text(json.dumps(
                {"latency": {"spawn": 30, "snapshot": 30, "migrate": 30}}))
        used_before = _used(user)
        user.osc("server", "image", "create", "--name", "interrupted", done)
        user.osc("server", "resize", "--flavor", "m1.small", resized, parse=False)
        building = [_create(user, f"b{i}") for i in range(3)]
        time.sleep(1.0)
        assert user.server(resized)["OS-EXT-STS:task_state"] == "resize_migrating"
        assert _transitional(user)
        assert cloud.proc is not None
        cloud.proc.send_signal(signal.SIGKILL)
        cloud.proc.wait()
        cloud.start()
        deadline = time.monotonic() + 15
        while _transitional(user) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _transitional(user)
        for sid in building:
            s = user.server(sid)
            assert s["status"] == "ERROR" and "Interrupted" in s["fault"]["message"]
        s = user.server(done)
        assert s["OS-EXT-STS:task_state"] is None and s["status"] in ("ACTIVE", "SHUTOFF")
        # the snapshot's half-made image is gone
        assert user.osc("image", "list", "--name", "interrupted") == []
        # the resize is rolled back: on its source, old flavor, migration closed in error,
        # nothing left claimed on the destination nor reserved in the quota
        s = user.server(resized)
        assert s["OS-EXT-SRV-ATTR:host"] == source and s["flavor"]["original_name"] == "m1.tiny"
        migs = user.api("GET", f"/os-migrations?instance_uuid={resized}").json()["migrations"]
        assert [m["status"] for m in migs] == ["error"]
        tiny = user.api("GET", "/flavors/1").json()["flavor"]  # builds since: 3 tiny
        assert _used(user) == (used_before[0] + 3 * tiny["ram"],
                               used_before[1] + 3 * tiny["vcpus"])
    finally:
        cloud.stop()


def _used(user: User) -> tuple[int, int]:
    absolute = user.api("GET", "/limits").json()["limits"]["absolute"]
    return absolute["totalRAMUsed"], absolute["totalCoresUsed"]
