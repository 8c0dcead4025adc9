"""Image data over the API: upload, download, ranges, staging, quotas, failures."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from pathlib import Path
from typing import Any

from stratus.image.domain import Status
from stratus.image.formats import qcow2_header
from tests.unit.image.conftest import ImageAPI, make_api

OCTETS = {"Content-Type": "application/octet-stream"}


def data_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def call_raw(app: Any, method: str, path: str, headers: dict[str, str],
                   body_parts: list[bytes], *, disconnect: bool) -> list[dict[str, Any]]:
    """Drive the ASGI app by hand, so the client can vanish mid-body."""
    queue = [{"type": "http.request", "body": part, "more_body": True} for part in body_parts]
    if disconnect:
        queue.append({"type": "http.disconnect"})
    else:
        queue.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(k.lower().encode(), v.encode())
                                              for k, v in headers.items()],
             "scheme": "http", "server": ("image.test", 80), "client": ("127.0.0.1", 1),
             "http_version": "1.1", "root_path": ""}
    with contextlib.suppress(Exception):  # the app may raise once the client is gone
        await app(scope, receive, send)
    return sent


async def test_upload_records_checksums(api: ImageAPI) -> None:
    data = b"payload" * 10_000
    image = await api.create()
    assert (await api.upload(image["id"], data)).status_code == 204
    shown = (await api.show(image["id"])).json()
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["size"] == shown["virtual_size"] == len(data)
    assert shown["stores"] == "file"


async def test_queued_image_download_is_204(api: ImageAPI) -> None:
    image = await api.create()
    resp = await api.http.get(f"/v2/images/{image['id']}/file", headers=api.as_("alice"))
    assert resp.status_code == 204 and resp.content == b""


async def test_second_upload_conflicts(api: ImageAPI) -> None:
    image = await api.create()
    await api.upload(image["id"], b"one")
    resp = await api.upload(image["id"], b"two")
    assert resp.status_code == 409


async def test_upload_needs_formats_and_octet_stream(api: ImageAPI) -> None:
    resp = await api.http.post("/v2/images", json={"name": "bare"}, headers=api.as_("alice"))
    image_id = resp.json()["id"]
    assert (await api.upload(image_id, b"x")).status_code == 400
    ok = await api.create()
    resp = await api.http.put(f"/v2/images/{ok['id']}/file", content=b"x",
                              headers={**api.as_("alice"), "Content-Type": "text/plain"})
    assert resp.status_code == 415


async def test_qcow2_virtual_size_and_backing_file_refusal(api: ImageAPI) -> None:
    image = await api.create(disk_format="qcow2")
    await api.upload(image["id"], qcow2_header(1 << 30) + b"\0" * 8192)
    assert (await api.show(image["id"])).json()["virtual_size"] == 1 << 30
    evil = await api.create(disk_format="qcow2")
    resp = await api.upload(evil["id"], qcow2_header(1 << 30, backing_file="/etc/shadow")
                            + b"\0" * 8192)
    assert resp.status_code == 400 and "backing file" in resp.text
    assert (await api.show(evil["id"])).json()["status"] == "queued"


async def test_range_requests(api: ImageAPI) -> None:
    data = bytes(range(256)) * 100
    image = await api.create()
    await api.upload(image["id"], data)
    url = f"/v2/images/{image['id']}/file"
    resp = await api.http.get(url, headers={**api.as_("alice"), "Range": "bytes=10-19"})
    assert resp.status_code == 206 and resp.content == data[10:20]
    assert resp.headers["content-range"] == f"bytes 10-19/{len(data)}"
    resp = await api.http.get(url, headers={**api.as_("alice"), "Range": "bytes=-5"})
    assert resp.content == data[-5:]
    resp = await api.http.get(url, headers={**api.as_("alice"), "Range": "bytes=100000-"})
    assert resp.status_code == 416
    assert resp.headers["content-range"] == f"bytes */{len(data)}"


async def test_corrupted_file_is_detected_on_download(api: ImageAPI) -> None:
    data = b"A" * 3_000_000
    image = await api.create()
    await api.upload(image["id"], data)
    (path,) = data_files(api.store_root / "images")
    raw = bytearray(path.read_bytes())
    raw[10] = ord("B")
    path.write_bytes(bytes(raw))
    sent = await call_raw(api.runtime.services["image"].app, "GET",
                          f"/v2/images/{image['id']}/file", api.as_("alice"), [],
                          disconnect=False)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert len(body) < len(data)  # the transfer was cut short, never completed
    path.write_bytes(b"short")
    resp = await api.http.get(f"/v2/images/{image['id']}/file", headers=api.as_("alice"))
    assert resp.status_code == 500 and "verification" in resp.json()["error"]["message"]


async def test_dropped_connection_leaves_image_queued_and_no_file(api: ImageAPI) -> None:
    image = await api.create()
    app = api.runtime.services["image"].app
    await call_raw(app, "PUT", f"/v2/images/{image['id']}/file",
                   {**api.as_("alice"), **OCTETS, "Content-Length": str(10_000_000)},
                   [b"z" * 1_000_000, b"z" * 1_000_000], disconnect=True)
    assert (await api.show(image["id"])).json()["status"] == "queued"
    assert data_files(api.store_root) == []
    assert (await api.upload(image["id"], b"retry")).status_code == 204


async def test_size_quota_cuts_off_streaming_upload(tmp_path: Path) -> None:
    api = await make_api(tmp_path, image_size_total_quota=1_000_000)
    try:
        first = await api.create()
        assert (await api.upload(first["id"], b"a" * 600_000)).status_code == 204

        async def endless() -> Any:
            for _ in range(10):
                yield b"b" * 100_000

        second = await api.create()
        resp = await api.http.put(f"/v2/images/{second['id']}/file", content=endless(),
                                  headers={**api.as_("alice"), **OCTETS})
        assert resp.status_code == 413, resp.text
        assert (await api.show(second["id"])).json()["status"] == "queued"
        assert len(data_files(api.store_root)) == 1
        resp = await api.http.put(f"/v2/images/{second['id']}/file", content=b"c" * 500_000,
                                  headers={**api.as_("alice"), **OCTETS})
        assert resp.status_code == 413  # refused from Content-Length, before reading
        assert (await api.upload(second["id"], b"c" * 400_000)).status_code == 204
    finally:
        await api.http.aclose()
        await api.runtime.services["image"].stop()
        await api.runtime.db.dispose()


async def test_image_count_quota(tmp_path: Path) -> None:
    api = await make_api(tmp_path, image_count_quota=2)
    try:
        await api.create()
        await api.create()
        resp = await api.http.post("/v2/images", json={}, headers=api.as_("alice"))
        assert resp.status_code == 413
        await api.create(who="bob")
    finally:
        await api.http.aclose()
        await api.runtime.services["image"].stop()
        await api.runtime.db.dispose()


async def test_glance_direct_import(api: ImageAPI) -> None:
    image = await api.create()
    url = f"/v2/images/{image['id']}"
    resp = await api.http.post(f"{url}/import", json={"method": {"name": "glance-direct"}},
                               headers=api.as_("alice"))
    assert resp.status_code == 409  # nothing staged yet
    resp = await api.http.put(f"{url}/stage", content=b"staged-bytes",
                              headers={**api.as_("alice"), **OCTETS})
    assert resp.status_code == 204
    assert (await api.show(image["id"])).json()["status"] == "uploading"
    resp = await api.http.post(f"{url}/import", json={"method": {"name": "glance-direct"}},
                               headers=api.as_("alice"))
    assert resp.status_code == 202
    request_id = resp.headers["x-openstack-request-id"]
    for _ in range(100):
        if (await api.show(image["id"])).json()["status"] == "active":
            break
        await asyncio.sleep(0.01)
    shown = (await api.show(image["id"])).json()
    assert shown["status"] == "active" and shown["size"] == 12
    assert shown["checksum"] == hashlib.md5(b"staged-bytes").hexdigest()
    got = await api.http.get(f"{url}/file", headers=api.as_("alice"))
    assert got.content == b"staged-bytes"
    tasks = (await api.http.get(f"{url}/tasks", headers=api.as_("alice"))).json()["tasks"]
    assert [t["status"] for t in tasks] == ["success"]
    assert tasks[0]["request_id"] == request_id
    assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct"
    assert not any((api.store_root / "staging").iterdir())


async def test_unknown_import_method_is_400(api: ImageAPI) -> None:
    image = await api.create()
    resp = await api.http.post(f"/v2/images/{image['id']}/import",
                               json={"method": {"name": "web-download"}},
                               headers=api.as_("alice"))
    assert resp.status_code == 400


async def test_info_documents(api: ImageAPI) -> None:
    resp = await api.http.get("/v2/info/import", headers=api.as_("alice"))
    assert resp.json()["import-methods"]["value"] == ["glance-direct"]
    stores = (await api.http.get("/v2/info/stores", headers=api.as_("alice"))).json()
    assert stores["stores"][0]["id"] == "file" and stores["stores"][0]["default"] is True
    resp = await api.http.get("/v2/info/stores/detail", headers=api.as_("alice"))
    assert resp.status_code == 403
    resp = await api.http.get("/v2/info/stores/detail", headers=api.as_("admin"))
    assert resp.status_code == 200


async def test_delete_removes_the_data_file(api: ImageAPI) -> None:
    image = await api.create()
    await api.upload(image["id"], b"bye")
    assert len(data_files(api.store_root)) == 1
    await api.http.delete(f"/v2/images/{image['id']}", headers=api.as_("alice"))
    assert data_files(api.store_root) == []


async def test_restart_undoes_uploads_of_dead_processes(tmp_path: Path) -> None:
    api = await make_api(tmp_path)
    image = await api.create()
    core = api.runtime.services["image"].core  # type: ignore[attr-defined]

    # A process that died while writing: the image says saving, a .part file remains.
    tag = f"{socket.gethostname()}.99999999"
    await core.repo.transition(image["id"], Status.QUEUED, status=Status.SAVING,
                               location=f"upload:{tag}")
    part = core.store.tmp_path(image["id"], tag)
    part.write_bytes(b"half")
    await api.http.aclose()
    await api.runtime.services["image"].stop()
    await api.runtime.db.dispose()

    again = await make_api(tmp_path)
    try:
        assert (await again.show(image["id"])).json()["status"] == "queued"
        assert not part.exists()
    finally:
        await again.http.aclose()
        await again.runtime.services["image"].stop()
        await again.runtime.db.dispose()
