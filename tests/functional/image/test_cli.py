"""The must-show `openstack image ...` commands, run by the real python-openstackclient."""

from __future__ import annotations

import json
from pathlib import Path

from stratus.image.formats import qcow2_header
from tests.functional.image.conftest import ImageCloud


def test_image_lifecycle_with_the_openstack_cli(image_cloud: ImageCloud, tmp_path: Path) -> None:
    c, alice = image_cloud, image_cloud.alice
    source = tmp_path / "disk.qcow2"
    source.write_bytes(qcow2_header(1 << 30) + bytes(range(256)) * 8192)
    created = json.loads(c.openstack(alice, "image", "create", "--file", str(source),
                                     "--disk-format", "qcow2", "--container-format", "bare",
                                     "cli-img", "-f", "json").stdout)
    image_id = created["id"]
    assert created["status"] == "active" and created["size"] == source.stat().st_size
    assert created["virtual_size"] == 1 << 30

    listed = json.loads(c.openstack(alice, "image", "list", "-f", "json").stdout)
    assert image_id in [i["ID"] for i in listed]

    c.openstack(alice, "image", "set", "--property", "os_distro=cirros", "--property",
                "hw_disk_bus=virtio", "--tag", "golden", "--protected", image_id)
    shown = json.loads(c.openstack(alice, "image", "show", image_id, "-f", "json").stdout)
    assert shown["properties"]["os_distro"] == "cirros" and shown["protected"] is True
    assert shown["tags"] == ["golden"]

    c.openstack(alice, "image", "unset", "--property", "hw_disk_bus", image_id)
    out = tmp_path / "out.qcow2"
    c.openstack(alice, "image", "save", "--file", str(out), image_id)
    assert out.read_bytes() == source.read_bytes()
    with c.http(alice) as http:
        record = http.get(f"/v2/images/{image_id}").json()
        assert "hw_disk_bus" not in record and record["os_distro"] == "cirros"
        assert http.delete(f"/v2/images/{image_id}").status_code == 403  # protected

    c.openstack(c.admin, "image", "set", "--public", "--unprotected", image_id)
    with c.http(c.bob) as http:
        assert http.get(f"/v2/images/{image_id}").json()["visibility"] == "public"
    c.openstack(alice, "image", "delete", image_id)
    with c.http(alice) as http:
        assert http.get(f"/v2/images/{image_id}").status_code == 404


def test_sharing_with_add_project_and_accept(image_cloud: ImageCloud, tmp_path: Path) -> None:
    c = image_cloud
    data = tmp_path / "shared.raw"
    data.write_bytes(b"shared" * 1000)
    image = json.loads(c.openstack(c.alice, "image", "create", "--file", str(data),
                                   "--disk-format", "raw", "--container-format", "bare",
                                   "--shared", "shared-img", "-f", "json").stdout)
    c.openstack(c.alice, "image", "add", "project", image["id"], c.bob.project_id)
    with c.http(c.bob) as bob:
        listed = [i["id"] for i in bob.get("/v2/images").json()["images"]]
        assert image["id"] not in listed  # pending until accepted
    c.openstack(c.bob, "image", "set", "--accept", image["id"])
    with c.http(c.bob) as bob:
        listed = [i["id"] for i in bob.get("/v2/images").json()["images"]]
        assert image["id"] in listed
        assert bob.get(f"/v2/images/{image['id']}/file").content == data.read_bytes()
