from tests.unit.image.conftest import ImageAPI


async def test_create_upload_download_round_trip(api: ImageAPI) -> None:
    image = await api.create(name="cirros")
    assert image["status"] == "queued"
    resp = await api.upload(image["id"], b"x" * 5000)
    assert resp.status_code == 204, resp.text
    shown = (await api.show(image["id"])).json()
    assert shown["status"] == "active" and shown["size"] == 5000
    got = await api.http.get(f"/v2/images/{image['id']}/file", headers=api.as_("alice"))
    assert got.status_code == 200 and got.content == b"x" * 5000
    assert got.headers["content-md5"] == shown["checksum"]
