"""Isolation, bad input and data safety against the real all-in-one, over HTTP."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.functional.image.conftest import ImageCloud

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTETS = {"Content-Type": "application/octet-stream"}


def new_image(c: ImageCloud, who: Any, data: bytes | None = None, **body: Any) -> dict[str, Any]:
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    with c.http(who) as http:
        resp = http.post("/v2/images", json=body)
        assert resp.status_code == 201, resp.text
        image = dict(resp.json())
        if data is not None:
            assert http.put(f"/v2/images/{image['id']}/file", content=data,
                            headers=OCTETS).status_code == 204
    return image


def fault(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == status and body["title"] and body["message"]
    return str(body["message"])


def test_projects_are_isolated(image_cloud: ImageCloud) -> None:
    c = image_cloud
    private = new_image(c, c.alice, b"alice's secret", visibility="private")
    shared = new_image(c, c.alice, b"alice's shared")
    with c.http(c.bob) as bob:
        assert fault(bob.get(f"/v2/images/{private['id']}"), 404)
        fault(bob.get(f"/v2/images/{private['id']}/file"), 404)
        fault(bob.get(f"/v2/images/{shared['id']}/file"), 404)
        fault(bob.delete(f"/v2/images/{private['id']}"), 404)
        listed = [i["id"] for i in bob.get("/v2/images").json()["images"]]
        assert private["id"] not in listed and shared["id"] not in listed
        fault(bob.patch(f"/v2/images/{private['id']}", headers=PATCH,
                        json=[{"op": "replace", "path": "/name", "value": "mine"}]), 404)
    public = new_image(c, c.admin, b"for everyone", visibility="public")
    with c.http(c.bob) as bob:
        assert bob.get(f"/v2/images/{public['id']}/file").content == b"for everyone"
        fault(bob.delete(f"/v2/images/{public['id']}"), 403)
    with c.http(c.alice) as alice:
        assert alice.get(f"/v2/images/{private['id']}/file").content == b"alice's secret"


@pytest.mark.parametrize("ops, status", [
    ([{"op": "add", "path": "/a/b/c", "value": "x"}], 400),
    ([{"op": "add", "path": "name", "value": "x"}], 400),
    ([{"op": "replace", "path": "/status", "value": "active"}], 403),
    ([{"op": "replace", "path": "/missing", "value": "x"}], 409),
    ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400),
    ([{"op": "replace", "path": "/min_ram", "value": -1}], 400),
    ([{"op": "replace", "path": "/name", "value": "n" * 256}], 400),
    ({"not": "a list"}, 400),
])
def test_bad_patches_get_4xx_bodies(image_cloud: ImageCloud, ops: Any, status: int) -> None:
    image = new_image(image_cloud, image_cloud.alice)
    with image_cloud.http(image_cloud.alice) as http:
        fault(http.patch(f"/v2/images/{image['id']}", json=ops, headers=PATCH), status)


@pytest.mark.parametrize("body, status", [
    ({"disk_format": "floppy"}, 400),
    ({"container_format": "crate"}, 400),
    ({"min_disk": -10}, 400),
    ({"min_ram": -1}, 400),
    ({"name": "x" * 1000}, 400),
    ({"checksum": "0" * 32}, 403),
    ({"visibility": "public"}, 403),
])
def test_bad_creates_get_4xx_bodies(image_cloud: ImageCloud, body: Any, status: int) -> None:
    with image_cloud.http(image_cloud.alice) as http:
        fault(http.post("/v2/images", json=body), status)
        fault(http.post("/v2/images", content=b"[1,", headers={"Content-Type":
                                                               "application/json"}), 400)


def test_dropped_connection_mid_upload_leaves_queued_and_no_data(image_cloud: ImageCloud
                                                                  ) -> None:
    c = image_cloud
    image = new_image(c, c.alice)
    url = urlparse(c.url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall((f"PUT /v2/images/{image['id']}/file HTTP/1.1\r\n"
                      f"Host: {url.hostname}\r\nX-Auth-Token: {c.alice.token}\r\n"
                      "Content-Type: application/octet-stream\r\n"
                      f"Content-Length: {64 << 20}\r\n\r\n").encode())
        for _ in range(16):
            sock.sendall(b"\x00" * (1 << 20))
        with c.http(c.alice) as http:
            deadline = time.monotonic() + 10
            while http.get(f"/v2/images/{image['id']}").json()["status"] != "saving":
                assert time.monotonic() < deadline
                time.sleep(0.05)
    with c.http(c.alice) as http:
        deadline = time.monotonic() + 10
        while (status := http.get(f"/v2/images/{image['id']}").json()["status"]) != "queued":
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert not list(c.store_root.rglob(f"{image['id']}*"))
        assert http.get(f"/v2/images/{image['id']}/file").status_code == 204
        # The image is usable again.
        assert http.put(f"/v2/images/{image['id']}/file", content=b"again",
                        headers=OCTETS).status_code == 204


def test_download_checksum_and_ranges(image_cloud: ImageCloud) -> None:
    data = bytes(range(256)) * 4096
    image = new_image(image_cloud, image_cloud.alice, data)
    with image_cloud.http(image_cloud.alice) as http:
        resp = http.get(f"/v2/images/{image['id']}/file")
        assert resp.content == data
        assert resp.headers["content-md5"] == hashlib.md5(data).hexdigest()
        part = http.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]


def test_verify_command_detects_a_corrupted_store_file(image_cloud: ImageCloud) -> None:
    c = image_cloud
    image = new_image(c, c.alice, b"pristine" * 1000)
    (path,) = [p for p in c.store_root.rglob(image["id"]) if p.is_file()]
    path.write_bytes(b"tampered" * 1000)
    result = subprocess.run([sys.executable, "-m", "stratus", "--data-dir", str(c.cloud.data_dir),
                             "image", "verify", image["id"]], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1 and "CORRUPT" in result.stdout, result.stdout + result.stderr
    with c.http(c.alice) as http, pytest.raises(httpx.HTTPError):
        http.get(f"/v2/images/{image['id']}/file").read()
