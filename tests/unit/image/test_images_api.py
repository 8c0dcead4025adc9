"""The Glance v2 image API: records, updates, visibility, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.unit.image.conftest import ImageAPI

PATCH = "application/openstack-images-v2.1-json-patch"


def error_of(resp: Any) -> str:
    body = resp.json()
    assert set(body["error"]) == {"code", "title", "message"}, body
    assert body["error"]["code"] == resp.status_code
    return str(body["error"]["message"])


async def test_version_document_lists_v2(api: ImageAPI) -> None:
    resp = await api.http.get("/")
    assert resp.status_code == 300
    versions = resp.json()["versions"]
    assert versions[0]["status"] == "CURRENT"
    assert all({"id", "status", "links"} <= set(v) for v in versions)


async def test_requests_without_token_are_401(api: ImageAPI) -> None:
    resp = await api.http.get("/v2/images")
    assert resp.status_code == 401
    error_of(resp)


async def test_new_image_record_has_every_glance_field(api: ImageAPI) -> None:
    image = await api.create(name="n", os_distro="debian", tags=["a", "b"], min_ram=64)
    for key in ("id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
                "os_hash_algo", "os_hash_value", "size", "virtual_size", "disk_format",
                "container_format", "owner", "min_disk", "min_ram", "tags", "created_at",
                "updated_at", "self", "file", "schema"):
        assert key in image, key
    assert image["status"] == "queued" and image["visibility"] == "shared"
    assert image["owner"] == "p-alice" and image["os_distro"] == "debian"
    assert image["tags"] == ["a", "b"] and image["min_ram"] == 64
    assert image["created_at"].endswith("Z")


@pytest.mark.parametrize("body, status, words", [
    ({"disk_format": "floppy"}, 400, "disk_format"),
    ({"container_format": "wrong"}, 400, "container_format"),
    ({"name": "x" * 256}, 400, "name"),
    ({"min_ram": -1}, 400, "negative"),
    ({"min_disk": "big"}, 400, "integer"),
    ({"visibility": "everyone"}, 400, "visibility"),
    ({"protected": "yes"}, 400, "boolean"),
    ({"size": 10}, 403, "read-only"),
    ({"status": "active"}, 403, "read-only"),
    ({"os_glance_foo": "bar"}, 403, "reserved"),
    ({"location": "file:///etc/passwd"}, 403, "reserved"),
    ({"custom": 5}, 400, "strings"),
    ({"id": "not-a-uuid"}, 400, "UUID"),
    ({"tags": "notalist"}, 400, "tags"),
    ({"visibility": "public"}, 403, "public"),
])
async def test_bad_create_bodies_are_refused(api: ImageAPI, body: dict[str, Any], status: int,
                                             words: str) -> None:
    resp = await api.http.post("/v2/images", json=body, headers=api.as_("alice"))
    assert resp.status_code == status, resp.text
    assert words in error_of(resp)


async def test_malformed_json_is_400(api: ImageAPI) -> None:
    resp = await api.http.post("/v2/images", content=b"{nope", headers={
        **api.as_("alice"), "Content-Type": "application/json"})
    assert resp.status_code == 400
    error_of(resp)


async def test_client_chosen_id_and_duplicate(api: ImageAPI) -> None:
    image_id = "12345678-1234-1234-1234-123456789abc"
    assert (await api.create(id=image_id))["id"] == image_id
    resp = await api.http.post("/v2/images", json={"id": image_id}, headers=api.as_("alice"))
    assert resp.status_code == 409


async def test_patch_sets_custom_properties_at_top_level(api: ImageAPI) -> None:
    image = await api.create()
    resp = await api.patch(image["id"], [
        {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/tags", "value": ["t1"]},
    ])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["hw_disk_bus"] == "virtio" and body["name"] == "renamed"
    assert body["tags"] == ["t1"]
    resp = await api.patch(image["id"], [{"op": "remove", "path": "/hw_disk_bus"}])
    assert "hw_disk_bus" not in resp.json()


async def test_old_style_patch_media_type(api: ImageAPI) -> None:
    image = await api.create()
    resp = await api.http.patch(f"/v2/images/{image['id']}", json=[
        {"replace": "/name", "value": "v20"}], headers={
        **api.as_("alice"), "Content-Type": "application/openstack-images-v2.0-json-patch"})
    assert resp.status_code == 200 and resp.json()["name"] == "v20"


@pytest.mark.parametrize("ops, status", [
    ([{"op": "replace", "path": "/status", "value": "active"}], 403),
    ([{"op": "replace", "path": "/checksum", "value": "x"}], 403),
    ([{"op": "add", "path": "/os_glance_x", "value": "x"}], 403),
    ([{"op": "remove", "path": "/name"}], 403),
    ([{"op": "replace", "path": "/nothere", "value": "x"}], 409),
    ([{"op": "remove", "path": "/nothere"}], 409),
    ([{"op": "add", "path": "/a/b", "value": "x"}], 400),
    ([{"op": "add", "path": "noslash", "value": "x"}], 400),
    ([{"op": "add", "path": "//", "value": "x"}], 400),
    ([{"op": "move", "path": "/name", "value": "x"}], 400),
    ([{"op": "add", "path": "/name"}], 400),
    ([{"op": "add", "path": "/disk_format", "value": "floppy"}], 400),
    ([{"op": "replace", "path": "/min_disk", "value": -5}], 400),
    ([{"op": "replace", "path": "/name", "value": "n" * 300}], 400),
    ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
    ([{"op": "add", "path": "/prop", "value": 1}], 400),
    ({"op": "add"}, 400),
    (["notanobject"], 400),
])
async def test_bad_patches_are_refused(api: ImageAPI, ops: Any, status: int) -> None:
    image = await api.create()
    resp = await api.patch(image["id"], ops)
    assert resp.status_code == status, resp.text
    error_of(resp)


async def test_patch_needs_the_json_patch_media_type(api: ImageAPI) -> None:
    image = await api.create()
    resp = await api.http.patch(f"/v2/images/{image['id']}", json=[],
                                headers=api.as_("alice"))
    assert resp.status_code == 415
    assert "openstack-images-v2.1-json-patch" in resp.headers["accept-patch"]


async def test_admin_may_publicize_and_change_owner(api: ImageAPI) -> None:
    image = await api.create()
    resp = await api.patch(image["id"], [{"op": "replace", "path": "/visibility",
                                          "value": "public"},
                                         {"op": "replace", "path": "/owner", "value": "p-x"}],
                           who="admin")
    assert resp.status_code == 200, resp.text
    assert resp.json()["visibility"] == "public" and resp.json()["owner"] == "p-x"


async def test_members_may_make_images_community(api: ImageAPI) -> None:
    image = await api.create(visibility="community")
    assert image["visibility"] == "community"


async def test_delete_and_protected(api: ImageAPI) -> None:
    image = await api.create(protected=True)
    resp = await api.http.delete(f"/v2/images/{image['id']}", headers=api.as_("alice"))
    assert resp.status_code == 403
    await api.patch(image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    resp = await api.http.delete(f"/v2/images/{image['id']}", headers=api.as_("alice"))
    assert resp.status_code == 204
    assert (await api.show(image["id"])).status_code == 404
    resp = await api.http.delete(f"/v2/images/{image['id']}", headers=api.as_("alice"))
    assert resp.status_code == 404


async def test_unknown_and_malformed_ids_are_404(api: ImageAPI) -> None:
    for image_id in ("0bd7e1b8-3e7e-4d3c-9c6e-000000000000", "nonsense"):
        resp = await api.show(image_id)
        assert resp.status_code == 404
        error_of(resp)


async def test_private_images_are_invisible_to_other_projects(api: ImageAPI) -> None:
    image = await api.create(visibility="private")
    await api.upload(image["id"], b"secret")
    assert (await api.show(image["id"], who="bob")).status_code == 404
    resp = await api.http.get(f"/v2/images/{image['id']}/file", headers=api.as_("bob"))
    assert resp.status_code == 404
    listed = (await api.http.get("/v2/images", headers=api.as_("bob"))).json()["images"]
    assert image["id"] not in [i["id"] for i in listed]
    resp = await api.http.delete(f"/v2/images/{image['id']}", headers=api.as_("bob"))
    assert resp.status_code == 404
    assert (await api.show(image["id"], who="admin")).status_code == 200


async def test_non_owner_cannot_change_a_public_image(api: ImageAPI) -> None:
    image = await api.create(who="admin", visibility="public")
    assert (await api.show(image["id"], who="bob")).status_code == 200
    resp = await api.http.delete(f"/v2/images/{image['id']}", headers=api.as_("bob"))
    assert resp.status_code == 403
    resp = await api.patch(image["id"], [{"op": "replace", "path": "/name", "value": "x"}],
                           who="bob")
    assert resp.status_code == 403


async def test_readers_cannot_write(api: ImageAPI) -> None:
    image = await api.create()
    assert (await api.show(image["id"], who="reader")).status_code == 200
    resp = await api.patch(image["id"], [{"op": "replace", "path": "/name", "value": "x"}],
                           who="reader")
    assert resp.status_code == 403
    resp = await api.http.post("/v2/images", json={}, headers=api.as_("reader"))
    assert resp.status_code == 403


async def test_tags(api: ImageAPI) -> None:
    image = await api.create()
    url = f"/v2/images/{image['id']}/tags"
    assert (await api.http.put(f"{url}/blue", headers=api.as_("alice"))).status_code == 204
    assert (await api.http.put(f"{url}/blue", headers=api.as_("alice"))).status_code == 204
    assert (await api.show(image["id"])).json()["tags"] == ["blue"]
    assert (await api.http.delete(f"{url}/blue", headers=api.as_("alice"))).status_code == 204
    assert (await api.http.delete(f"{url}/blue", headers=api.as_("alice"))).status_code == 404
    missing = "0bd7e1b8-3e7e-4d3c-9c6e-000000000000"
    resp = await api.http.put(f"/v2/images/{missing}/tags/x", headers=api.as_("alice"))
    assert resp.status_code == 404


async def test_deactivate_and_reactivate(api: ImageAPI) -> None:
    image = await api.create()
    url = f"/v2/images/{image['id']}"
    resp = await api.http.post(f"{url}/actions/deactivate", headers=api.as_("alice"))
    assert resp.status_code == 403  # queued images cannot be deactivated
    await api.upload(image["id"], b"data")
    assert (await api.http.post(f"{url}/actions/deactivate",
                                headers=api.as_("alice"))).status_code == 204
    assert (await api.show(image["id"])).json()["status"] == "deactivated"
    assert (await api.http.get(f"{url}/file", headers=api.as_("alice"))).status_code == 403
    assert (await api.http.get(f"{url}/file", headers=api.as_("admin"))).status_code == 200
    assert (await api.http.post(f"{url}/actions/reactivate",
                                headers=api.as_("alice"))).status_code == 204
    assert (await api.http.get(f"{url}/file", headers=api.as_("alice"))).content == b"data"


async def test_schemas(api: ImageAPI) -> None:
    for name in ("image", "images", "member", "members", "metadefs/namespace"):
        resp = await api.http.get(f"/v2/schemas/{name}", headers=api.as_("alice"))
        assert resp.status_code == 200
    image = (await api.http.get("/v2/schemas/image", headers=api.as_("alice"))).json()
    assert image["name"] == "image" and "qcow2" in image["properties"]["disk_format"]["enum"]
    assert (await api.http.get("/v2/schemas/nope", headers=api.as_("alice"))).status_code == 404


async def test_notifications_are_published(api: ImageAPI) -> None:
    image = await api.create()
    await api.upload(image["id"], b"abc")
    await api.http.delete(f"/v2/images/{image['id']}", headers=api.as_("alice"))
    await asyncio.sleep(0.05)  # delivery is asynchronous
    kinds = [e for e, _ in api.events]
    for expected in ("image.create", "image.prepare", "image.upload", "image.activate",
                     "image.delete"):
        assert expected in kinds
    assert api.events[0][1]["id"] == image["id"]


async def test_empty_image_id_is_404_not_the_list(api: ImageAPI) -> None:
    for method in ("GET", "DELETE"):
        resp = await api.http.request(method, "/v2/images/", headers=api.as_("alice"))
        assert resp.status_code == 404


async def test_url_import_tasks_are_refused(api: ImageAPI) -> None:
    resp = await api.http.post("/v2/tasks", json={"type": "import", "input": {}},
                               headers=api.as_("admin"))
    assert resp.status_code == 400
