"""The internal client other services use, over the in-process streaming transport."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from stratus.image.client import ImageClient, ImageIntegrityError, ImageServiceError
from tests.unit.image.conftest import ImageAPI


async def chunks(n: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(n):
        yield bytes([i % 256]) * size


def client_for(api: ImageAPI, who: str = "alice") -> ImageClient:
    return ImageClient.from_runtime(api.runtime, headers={"X-Auth-Token": who})


async def test_snapshot_upload_and_streamed_read(api: ImageAPI, tmp_path: Path) -> None:
    async with client_for(api) as images:
        snap = await images.create_snapshot("snap", chunks(20), disk_format="raw",
                                            size=20 * 256 * 1024)
        assert snap["status"] == "active" and snap["size"] == 20 * 256 * 1024
        md5 = hashlib.md5()
        async for chunk in images.read(snap["id"]):
            md5.update(chunk)
        assert md5.hexdigest() == snap["checksum"]
        out = await images.download_to(snap["id"], tmp_path / "disk")
        assert out.stat().st_size == snap["size"]


async def test_failed_snapshot_leaves_no_image(api: ImageAPI) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise RuntimeError("guest disk went away")

    async with client_for(api) as images:
        with pytest.raises((RuntimeError, httpx.HTTPError, ImageServiceError)):
            await images.create_snapshot("snap", broken(), disk_format="raw")
    listed = (await api.http.get("/v2/images", headers=api.as_("alice"))).json()["images"]
    assert listed == []


async def test_read_detects_corruption(api: ImageAPI) -> None:
    async with client_for(api) as images:
        snap = await images.create_snapshot("snap", chunks(12), disk_format="raw")
        (path,) = [p for p in (api.store_root / "images").rglob("*") if p.is_file()]
        raw = bytearray(path.read_bytes())
        raw[5] ^= 1
        path.write_bytes(bytes(raw))
        with pytest.raises(ImageIntegrityError):
            async for _ in images.read(snap["id"]):
                pass


async def test_errors_carry_the_status(api: ImageAPI) -> None:
    async with client_for(api, who="bob") as images:
        with pytest.raises(ImageServiceError) as info:
            await images.get("0bd7e1b8-3e7e-4d3c-9c6e-000000000000")
        assert info.value.status == 404
