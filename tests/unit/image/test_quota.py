"""The image storage quota holds under concurrent uploads (bytes are reserved as they stream)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stratus.image.domain import Status
from stratus.image.usage import UsageLedger
from tests.unit.image.conftest import ImageAPI, make_api

OCTETS = {"Content-Type": "application/octet-stream"}
QUOTA = 1_000_000


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ImageAPI]:
    made = await make_api(tmp_path, image_size_total_quota=QUOTA)
    yield made
    await made.http.aclose()
    await made.runtime.services["image"].stop()
    await made.runtime.bus.stop()
    await made.runtime.db.dispose()


async def _used(api: ImageAPI, project: str = "p-alice") -> int:
    return await UsageLedger(api.runtime.db).used(project)


def _interleaved(total: int, piece: int = 50_000) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for _ in range(total // piece):
            await asyncio.sleep(0.001)  # let the other upload take its turn
            yield b"x" * piece
    return gen()


async def test_concurrent_uploads_cannot_overshoot_the_quota_together(api: ImageAPI) -> None:
    # Each upload alone fits the quota; both together do not. Before bytes
    # were reserved as they streamed, both passed the size check and stored
    # 1.4 MB against a 1 MB quota.
    images = [await api.create() for _ in range(2)]
    results = await asyncio.gather(*(
        api.http.put(f"/v2/images/{img['id']}/file", content=_interleaved(700_000),
                     headers={**api.as_("alice"), **OCTETS}) for img in images))
    # Interleaved this tightly, both may be refused (each holds half when the
    # other asks for more); what must never happen is both succeeding.
    codes = sorted(r.status_code for r in results)
    assert codes in ([204, 413], [413, 413]), [r.text for r in results]
    statuses = sorted([(await api.show(img["id"])).json()["status"] for img in images])
    assert statuses == (["active", "queued"] if codes[0] == 204 else ["queued", "queued"])
    # The refused uploads gave their bytes back.
    assert await _used(api) == (700_000 if codes[0] == 204 else 0)


async def test_many_concurrent_uploads_store_at_most_the_quota(api: ImageAPI) -> None:
    images = [await api.create() for _ in range(5)]
    results = await asyncio.gather(*(
        api.http.put(f"/v2/images/{img['id']}/file", content=_interleaved(300_000),
                     headers={**api.as_("alice"), **OCTETS}) for img in images))
    stored = sum(300_000 for r in results if r.status_code == 204)
    assert stored <= QUOTA
    assert {r.status_code for r in results} <= {204, 413}
    assert await _used(api) == stored


async def test_declared_length_is_reserved_before_reading(api: ImageAPI) -> None:
    first, second = await api.create(), await api.create()
    assert (await api.upload(first["id"], b"a" * 600_000)).status_code == 204
    resp = await api.upload(second["id"], b"b" * 500_000)
    assert resp.status_code == 413
    assert await _used(api) == 600_000
    assert (await api.upload(second["id"], b"b" * 400_000)).status_code == 204
    assert await _used(api) == QUOTA


async def test_deleting_an_image_frees_its_bytes(api: ImageAPI) -> None:
    img = await api.create()
    assert (await api.upload(img["id"], b"a" * 900_000)).status_code == 204
    assert (await api.http.delete(f"/v2/images/{img['id']}",
                                  headers=api.as_("alice"))).status_code == 204
    assert await _used(api) == 0
    again = await api.create()
    assert (await api.upload(again["id"], b"a" * 900_000)).status_code == 204


async def test_quota_is_per_project(api: ImageAPI) -> None:
    mine, theirs = await api.create(), await api.create(who="bob")
    assert (await api.upload(mine["id"], b"a" * 900_000)).status_code == 204
    assert (await api.upload(theirs["id"], b"b" * 900_000, who="bob")).status_code == 204
    assert await _used(api, "p-bob") == 900_000


async def test_an_interrupted_upload_releases_its_reservation(api: ImageAPI) -> None:
    img = await api.create()

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 300_000
        raise ConnectionResetError("client went away")

    with contextlib.suppress(Exception):  # the in-process transport re-raises it
        await api.http.put(f"/v2/images/{img['id']}/file", content=broken(),
                           headers={**api.as_("alice"), **OCTETS})
    assert (await api.show(img["id"])).json()["status"] == "queued"
    assert await _used(api) == 0


async def test_restart_gives_back_the_bytes_a_dead_upload_reserved(tmp_path: Path) -> None:
    api = await make_api(tmp_path, image_size_total_quota=QUOTA)
    image = await api.create()
    core = api.runtime.services["image"].core  # type: ignore[attr-defined]
    tag = f"{socket.gethostname()}.99999999"  # a writer process that no longer exists
    await core.repo.transition(image["id"], Status.QUEUED, status=Status.SAVING,
                               location=f"upload:{tag}")
    assert await core.usage.reserve(image["id"], "p-alice", 800_000, QUOTA)
    await api.http.aclose()
    await api.runtime.services["image"].stop()
    await api.runtime.db.dispose()

    again = await make_api(tmp_path, image_size_total_quota=QUOTA)
    try:
        assert await _used(again) == 0
        assert (await again.upload(image["id"], b"a" * 900_000)).status_code == 204
    finally:
        await again.http.aclose()
        await again.runtime.services["image"].stop()
        await again.runtime.db.dispose()
