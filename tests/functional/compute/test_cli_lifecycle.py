"""Every lifecycle action with the unchanged ``openstack`` CLI against a real
all-in-one (fake hypervisor), checking each state along the way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.compute.helpers import User, upload_image
from tests.support.cloud import CloudProcess


@pytest.fixture(scope="module")
def user(cloud: CloudProcess) -> Iterator[User]:
    u = User(cloud)
    u.image = upload_image(u)  # type: ignore[attr-defined]
    yield u


def test_server_lifecycle_with_the_cli(user: User) -> None:
    osc = user.osc
    sid = osc("server", "create", "--flavor", "m1.tiny", "--image", "cirros", "--nic",
              "none", "life")["id"]
    server = user.wait(sid, "ACTIVE")
    assert server["status"] == "ACTIVE" and server["OS-EXT-STS:power_state"] in (1, "Running")

    osc("server", "stop", sid, parse=False)
    s = user.wait(sid, "SHUTOFF")
    assert s["OS-EXT-STS:vm_state"] == "stopped" and s["OS-EXT-STS:power_state"] == 4
    osc("server", "start", sid, parse=False)
    user.wait(sid, "ACTIVE")
    osc("server", "reboot", sid, parse=False)
    user.wait(sid, "ACTIVE")
    osc("server", "reboot", "--hard", sid, parse=False)
    user.wait(sid, "ACTIVE")

    osc("server", "pause", sid, parse=False)
    assert user.wait(sid, "PAUSED")["OS-EXT-STS:power_state"] == 3
    osc("server", "unpause", sid, parse=False)
    user.wait(sid, "ACTIVE")
    osc("server", "suspend", sid, parse=False)
    assert user.wait(sid, "SUSPENDED")["OS-EXT-STS:power_state"] == 7
    osc("server", "resume", sid, parse=False)
    user.wait(sid, "ACTIVE")

    image = osc("server", "image", "create", "--name", "life-snap", sid)
    assert user.wait(sid, "ACTIVE")["_seen"][0][1] in ("image_snapshot_pending",
                                                       "image_snapshot", "image_uploading",
                                                       "image_pending_upload", None)
    image = osc("image", "show", image["id"])
    assert image["status"] == "active" and int(image["size"]) > 0

    osc("server", "resize", "--flavor", "m1.small", sid, parse=False)
    s = user.wait(sid, "VERIFY_RESIZE")
    assert s["flavor"]["original_name"] == "m1.small"
    osc("server", "resize", "confirm", sid, parse=False)
    user.wait(sid, "ACTIVE")
    osc("server", "resize", "--flavor", "m1.medium", sid, parse=False)
    user.wait(sid, "VERIFY_RESIZE")
    osc("server", "resize", "revert", sid, parse=False)
    assert user.wait(sid, "ACTIVE")["flavor"]["original_name"] == "m1.small"

    osc("server", "lock", "--reason", "maintenance", sid, parse=False)
    assert user.server(sid)["locked_reason"] == "maintenance"
    osc("server", "unlock", sid, parse=False)

    osc("server", "shelve", sid, parse=False)
    s = user.wait(sid, "SHELVED_OFFLOADED")
    assert s["OS-EXT-SRV-ATTR:host"] is None
    osc("server", "unshelve", sid, parse=False)
    user.wait(sid, "ACTIVE")

    osc("server", "rescue", sid, parse=False)
    user.wait(sid, "RESCUE")
    osc("server", "unrescue", sid, parse=False)
    user.wait(sid, "ACTIVE")

    osc("server", "rebuild", "--image", "life-snap", sid, parse=False)
    s = user.wait(sid, "ACTIVE")
    assert s["image"]["id"] == image["id"]

    log = osc("console", "log", "show", sid, parse=False).stdout
    assert "Linux version" in log

    events = osc("server", "event", "list", sid)
    actions = [e["Action"] for e in events]
    for expected in ("create", "stop", "start", "reboot", "pause", "suspend", "createImage",
                     "resize", "confirmResize", "revertResize", "shelve", "unshelve", "rescue",
                     "rebuild"):
        assert expected in actions, (expected, actions)

    osc("server", "delete", sid, parse=False)
    user.wait(sid, "DELETED")


def test_wrong_state_and_locked_server_are_refused_with_the_state_named(user: User) -> None:
    sid = user.osc("server", "create", "--flavor", "m1.tiny", "--image", "cirros", "--nic",
                   "none", "refused")["id"]
    user.wait(sid, "ACTIVE")
    proc = user.osc("server", "start", sid, parse=False, check=False)
    assert proc.returncode != 0 and "vm_state active" in proc.stderr
    resp = user.api("POST", f"/servers/{sid}/action", json={"unpause": None})
    assert resp.status_code == 409
    assert "vm_state active" in resp.json()["conflictingRequest"]["message"]
    user.osc("server", "delete", sid, parse=False)
    user.wait(sid, "DELETED")


def test_admin_views_with_the_cli(user: User) -> None:
    osc = user.osc
    hypervisors = osc("hypervisor", "list")
    assert hypervisors and hypervisors[0]["State"] == "up"
    osc("hypervisor", "show", hypervisors[0]["Hypervisor Hostname"])
    services = osc("compute", "service", "list")
    assert {s["Binary"] for s in services} >= {"nova-compute", "nova-scheduler",
                                                "nova-conductor"}
    compute = next(s for s in services if s["Binary"] == "nova-compute")
    osc("compute", "service", "set", "--disable", "--disable-reason", "maintenance",
        compute["Host"], "nova-compute", parse=False)
    svc = next(s for s in osc("compute", "service", "list", "--long")
               if s["Binary"] == "nova-compute")
    assert svc["Status"] == "disabled" and svc["Disabled Reason"] == "maintenance"
    osc("compute", "service", "set", "--enable", compute["Host"], "nova-compute", parse=False)

    project = osc("project", "show", "admin")["id"]
    osc("quota", "set", "--instances", "7", "--cores", "9", project, parse=False)
    quota = {q["Resource"]: q["Limit"] for q in osc("quota", "show", "--compute", project)}
    assert quota["instances"] == 7 and quota["cores"] == 9
    # (`limits show` also asks the volume service; read compute's limits directly.)
    limits = user.api("GET", "/limits").json()["limits"]["absolute"]
    assert limits["maxTotalInstances"] == 7

    group = osc("server", "group", "create", "--policy", "anti-affinity", "apart")
    assert group["policy"] == "anti-affinity"
    osc("server", "group", "delete", group["id"], parse=False)
    key = osc("keypair", "create", "--type", "ssh", "k1", parse=False).stdout
    assert "PRIVATE KEY" in key
    assert osc("keypair", "show", "k1")["name"] == "k1"
    osc("keypair", "delete", "k1", parse=False)
    flavor = osc("flavor", "create", "--ram", "96", "--disk", "1", "--vcpus", "1",
                 "--property", "hw:cpu_policy=shared", "f.custom")
    assert flavor["properties"] == {"hw:cpu_policy": "shared"}
    osc("flavor", "delete", "f.custom", parse=False)
    zones = osc("availability", "zone", "list", "--compute")
    assert any(z["Zone Name"] == "nova" for z in zones)


def test_server_password_and_inject_network_info(user: User) -> None:
    sid = user.osc("server", "create", "--flavor", "m1.tiny", "--image", "cirros", "--nic",
                   "none", "pw")["id"]
    user.wait(sid, "ACTIVE")
    # No guest agent here posts an encrypted password: empty, as Nova shows such a guest.
    assert user.api("GET", f"/servers/{sid}/os-server-password").json() == {"password": ""}
    assert user.api("DELETE", f"/servers/{sid}/os-server-password").status_code == 204
    missing = "00000000-0000-0000-0000-000000000000"
    assert user.api("GET", f"/servers/{missing}/os-server-password").status_code == 404
    resp = user.api("POST", f"/servers/{sid}/action", json={"injectNetworkInfo": None})
    assert resp.status_code == 202
    actions = user.api("GET", f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    assert "inject_network_info" in [a["action"] for a in actions]
    user.osc("server", "delete", "--wait", sid, parse=False)


def test_disk_config_is_kept_and_changed_by_update_rebuild_and_resize(user: User) -> None:
    image = user.osc("image", "show", "cirros")["id"]
    body = {"name": "dcf", "imageRef": image, "flavorRef": "1", "networks": "none",
            "OS-DCF:diskConfig": "AUTO"}
    created = user.api("POST", "/servers", json={"server": body}).json()["server"]
    sid = created["id"]
    assert created["OS-DCF:diskConfig"] == "AUTO"
    assert user.wait(sid, "ACTIVE")["OS-DCF:diskConfig"] == "AUTO"
    resp = user.api("PUT", f"/servers/{sid}", json={"server": {"OS-DCF:diskConfig": "MANUAL"}})
    assert resp.json()["server"]["OS-DCF:diskConfig"] == "MANUAL"
    rebuilt = user.api("POST", f"/servers/{sid}/action", json={"rebuild": {
        "imageRef": image, "OS-DCF:diskConfig": "AUTO"}})
    assert rebuilt.status_code == 202 and rebuilt.json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    user.wait(sid, "ACTIVE")
    assert user.api("POST", f"/servers/{sid}/action", json={"resize": {
        "flavorRef": "2", "OS-DCF:diskConfig": "MANUAL"}}).status_code == 202
    assert user.wait(sid, "VERIFY_RESIZE")["OS-DCF:diskConfig"] == "MANUAL"
    user.osc("server", "resize", "confirm", sid, parse=False)
    user.wait(sid, "ACTIVE")
    bad = user.api("PUT", f"/servers/{sid}", json={"server": {"OS-DCF:diskConfig": "auto"}})
    assert bad.status_code == 400 and "MANUAL" in bad.json()["badRequest"]["message"]
    assert user.server(sid)["OS-DCF:diskConfig"] == "MANUAL"
    user.osc("server", "delete", "--wait", sid, parse=False)
