"""Compute's view of the image service: its public REST API, with the caller's token.

Nova reads image records to boot, and creates/uploads/deletes snapshot
images; so do we, through :class:`ImageAPI`. :class:`RestImageAPI` talks to
the image service's ``/v2`` API (in-process in the all-in-one);
:class:`MemoryImageAPI` is the stand-in for tests without an image service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import httpx

from stratus.errors import BadRequest, ServiceUnavailable


class ImageAPI(Protocol):
    async def show(self, token: str, image_id: str) -> dict[str, Any] | None: ...

    async def create(self, token: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def upload(self, token: str, image_id: str, chunks: AsyncIterator[bytes]) -> None: ...

    async def delete(self, token: str, image_id: str) -> None: ...

    def download(self, token: str, image_id: str) -> AsyncIterator[bytes]: ...


class RestImageAPI:
    def __init__(self, client: Callable[[], httpx.AsyncClient]) -> None:
        self._client = client

    async def _request(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": token, **kwargs.pop("headers", {})}
        try:
            async with self._client() as client:
                return await client.request(method, path, headers=headers, timeout=None,
                                            **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"The image service cannot be reached: {exc}") from exc

    async def show(self, token: str, image_id: str) -> dict[str, Any] | None:
        resp = await self._request("GET", f"/v2/images/{image_id}", token)
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise BadRequest(f"Cannot read image {image_id}: HTTP {resp.status_code}")
        data: dict[str, Any] = resp.json()
        return data

    async def create(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self._request("POST", "/v2/images", token, json=body)
        if resp.status_code >= 400:
            raise BadRequest(f"The image service refused the snapshot image: {resp.text[:200]}")
        data: dict[str, Any] = resp.json()
        return data

    async def upload(self, token: str, image_id: str, chunks: AsyncIterator[bytes]) -> None:
        resp = await self._request("PUT", f"/v2/images/{image_id}/file", token, content=chunks,
                                   headers={"Content-Type": "application/octet-stream"})
        if resp.status_code >= 400:
            raise RuntimeError(f"uploading image {image_id} failed: HTTP {resp.status_code} "
                               f"{resp.text[:200]}")

    async def delete(self, token: str, image_id: str) -> None:
        await self._request("DELETE", f"/v2/images/{image_id}", token)

    async def download(self, token: str, image_id: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        async with self._client() as client:
            async with client.stream("GET", f"/v2/images/{image_id}/file",
                                     headers={"X-Auth-Token": token}, timeout=None) as resp:
                resp.raise_for_status()
                async for chunk in resp.aiter_bytes():
                    yield chunk


class MemoryImageAPI:
    """Images in a dict; every id is visible to every token."""

    def __init__(self) -> None:
        self.images: dict[str, dict[str, Any]] = {}
        self.data: dict[str, bytes] = {}

    def add(self, **fields: Any) -> str:
        image_id = fields.pop("id", None) or str(uuid.uuid4())
        self.images[image_id] = {"id": image_id, "status": "active", "min_disk": 0,
                                 "min_ram": 0, "disk_format": "qcow2",
                                 "container_format": "bare", "name": "image", **fields}
        return image_id

    async def show(self, token: str, image_id: str) -> dict[str, Any] | None:
        return self.images.get(image_id)

    async def create(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        image_id = self.add(**{**body, "status": "queued"})
        return self.images[image_id]

    async def upload(self, token: str, image_id: str, chunks: AsyncIterator[bytes]) -> None:
        data = b""
        async for chunk in chunks:
            data += chunk
        self.data[image_id] = data
        self.images[image_id].update(status="active", size=len(data))

    async def delete(self, token: str, image_id: str) -> None:
        self.images.pop(image_id, None)
        self.data.pop(image_id, None)

    async def download(self, token: str, image_id: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        yield self.data.get(image_id, b"")
