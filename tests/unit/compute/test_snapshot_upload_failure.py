"""A snapshot whose image upload is refused part-way (as the image service does
over its storage quota) ends like Nova's: image deleted, server ACTIVE, the
refusal recorded. Regression: the driver used to wait forever on a full chunk
queue nobody read any more, leaving the server in image_uploading."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tests.unit.compute.conftest import Cloud


class Refused(Exception):
    pass


async def test_an_upload_refused_midway_ends_the_snapshot_with_its_reason(cloud: Cloud) -> None:
    async with cloud.client() as c, cloud.client("admin-p1") as admin:
        s = await cloud.create(c)
        driver = cloud.driver()
        driver.guests[s["id"]].disk = b"x" * (64 * 1024 * 40)  # 40 chunks: beyond the queue

        async def refuse(token: str, image_id: str, chunks: AsyncIterator[bytes]) -> None:
            async for _ in chunks:
                raise Refused("Denying upload: image storage quota exceeded")

        cloud.images.upload = refuse  # type: ignore[method-assign]
        resp = await cloud.action(c, s["id"], "createImage", {"name": "snap"})
        image_id = resp.json()["image_id"]
        s = await cloud.wait(c, s["id"], "ACTIVE")
        assert image_id not in cloud.images.images
        actions = (await admin.get(f"/servers/{s['id']}/os-instance-actions")).json()
        snap = next(a for a in actions["instanceActions"] if a["action"] == "createImage")
        detail = (await admin.get(
            f"/servers/{s['id']}/os-instance-actions/{snap['request_id']}")).json()
        [event] = detail["instanceAction"]["events"]
        assert event["result"] == "Error" and "quota exceeded" in event["details"]
