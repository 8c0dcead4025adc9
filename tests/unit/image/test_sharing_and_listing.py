"""Members, visibility in lists, filters, sorting and pagination."""

from __future__ import annotations

from typing import Any

from tests.unit.image.conftest import ImageAPI


async def ids(api: ImageAPI, who: str = "alice", **params: Any) -> list[str]:
    resp = await api.http.get("/v2/images", params=params, headers=api.as_(who))
    assert resp.status_code == 200, resp.text
    return [i["id"] for i in resp.json()["images"]]


async def test_share_accept_reject_and_remove(api: ImageAPI) -> None:
    image = await api.create()
    url = f"/v2/images/{image['id']}/members"
    resp = await api.http.post(url, json={"member": "p-bob"}, headers=api.as_("alice"))
    assert resp.status_code == 200
    assert resp.json()["status"] == "pending" and resp.json()["member_id"] == "p-bob"
    assert (await api.http.post(url, json={"member": "p-bob"},
                                headers=api.as_("alice"))).status_code == 409
    # Pending: bob can look at it but does not list it by default.
    assert (await api.show(image["id"], who="bob")).status_code == 200
    assert image["id"] not in await ids(api, "bob")
    assert await ids(api, "bob", visibility="shared", member_status="pending") == [image["id"]]
    # Only the member decides; the owner may not accept for it.
    resp = await api.http.put(f"{url}/p-bob", json={"status": "accepted"},
                              headers=api.as_("alice"))
    assert resp.status_code == 403
    resp = await api.http.put(f"{url}/p-bob", json={"status": "maybe"}, headers=api.as_("bob"))
    assert resp.status_code == 400
    resp = await api.http.put(f"{url}/p-bob", json={"status": "accepted"},
                              headers=api.as_("bob"))
    assert resp.status_code == 200 and resp.json()["status"] == "accepted"
    assert image["id"] in await ids(api, "bob")
    assert (await api.http.get(f"{url}/p-bob", headers=api.as_("bob"))).status_code == 200
    # Members see only themselves; others see nothing.
    members = (await api.http.get(url, headers=api.as_("alice"))).json()["members"]
    assert [m["member_id"] for m in members] == ["p-bob"]
    assert (await api.show(image["id"], who="carol")).status_code == 404
    # Rejecting hides it again; removing the member takes it away.
    await api.http.put(f"{url}/p-bob", json={"status": "rejected"}, headers=api.as_("bob"))
    assert image["id"] not in await ids(api, "bob")
    assert (await api.http.delete(f"{url}/p-bob", headers=api.as_("bob"))).status_code == 403
    assert (await api.http.delete(f"{url}/p-bob", headers=api.as_("alice"))).status_code == 204
    assert (await api.show(image["id"], who="bob")).status_code == 404


async def test_only_shared_images_have_members(api: ImageAPI) -> None:
    image = await api.create(visibility="private")
    resp = await api.http.post(f"/v2/images/{image['id']}/members", json={"member": "p-bob"},
                               headers=api.as_("alice"))
    assert resp.status_code == 403


async def test_default_list_visibility(api: ImageAPI) -> None:
    mine = await api.create(visibility="private")
    public = await api.create(who="admin", visibility="public")
    community = await api.create(who="bob", visibility="community")
    others = await api.create(who="bob", visibility="private")
    hidden = await api.create(os_hidden=True)
    listed = await ids(api, "alice")
    assert mine["id"] in listed and public["id"] in listed
    assert community["id"] not in listed and others["id"] not in listed
    assert hidden["id"] not in listed
    assert await ids(api, "alice", visibility="community") == [community["id"]]
    assert await ids(api, "alice", os_hidden="true") == [hidden["id"]]
    assert others["id"] in await ids(api, "admin")


async def test_filters(api: ImageAPI) -> None:
    a = await api.create(name="alpha", disk_format="qcow2", tags=["x", "y"], os_distro="deb")
    b = await api.create(name="beta", container_format="ovf")
    await api.upload(b["id"], b"b" * 2000)
    assert await ids(api, name="alpha") == [a["id"]]
    assert set(await ids(api, name="in:alpha,beta")) == {a["id"], b["id"]}
    assert await ids(api, id=f"in:{b['id']}") == [b["id"]]
    assert await ids(api, disk_format="qcow2") == [a["id"]]
    assert await ids(api, container_format="ovf") == [b["id"]]
    assert await ids(api, status="active") == [b["id"]]
    assert await ids(api, tag="x") == [a["id"]]
    assert await ids(api, os_distro="deb") == [a["id"]]
    assert await ids(api, size_min=1000, size_max=3000) == [b["id"]]
    assert await ids(api, size=2000) == [b["id"]]
    assert set(await ids(api, owner="p-alice")) == {a["id"], b["id"]}
    assert await ids(api, created_at="lt:2000-01-01T00:00:00Z") == []


async def test_sorting_and_pagination(api: ImageAPI) -> None:
    made = []
    for i in range(5):
        image = await api.create(name=f"img-{i}")
        await api.upload(image["id"], b"x" * (100 * (i + 1)))
        made.append(image["id"])
    assert await ids(api, sort="size:asc") == made
    assert await ids(api, sort_key="size", sort_dir="desc") == made[::-1]
    assert await ids(api, sort="name:desc,size:asc") == made[::-1]
    resp = await api.http.get("/v2/images", params={"limit": 2, "sort": "name:asc"},
                              headers=api.as_("alice"))
    body = resp.json()
    assert [i["id"] for i in body["images"]] == made[:2]
    assert body["first"].startswith("/v2/images") and body["schema"] == "/v2/schemas/images"
    seen = [i["id"] for i in body["images"]]
    while "next" in body:
        body = (await api.http.get(body["next"], headers=api.as_("alice"))).json()
        seen += [i["id"] for i in body["images"]]
    assert seen == made


async def test_bad_list_parameters_are_400(api: ImageAPI) -> None:
    for params in ({"limit": "-1"}, {"limit": "x"}, {"sort_key": "bogus"},
                   {"sort_dir": "sideways"}, {"visibility": "nope"},
                   {"marker": "0bd7e1b8-3e7e-4d3c-9c6e-000000000000"}, {"size_min": "big"},
                   {"member_status": "meh"}, {"created_at": "gt:yesterday"}):
        resp = await api.http.get("/v2/images", params=params, headers=api.as_("alice"))
        assert resp.status_code == 400, (params, resp.text)
