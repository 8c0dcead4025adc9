"""Compute's view of the image service: its public REST API, with the caller's token.

Nova reads image records to boot, and creates/uploads/deletes snapshot
images; so do we, through :class:`ImageAPI`. :class:`RestImageAPI` talks to
the image service's ``/v2`` API (in-process in the all-in-one);
:class:`MemoryImageAPI` is the stand-in for tests without an image service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx

from stratus.errors import BadRequest, ServiceUnavailable


class ImageAPI(Protocol):
    async def show(self, token: str, image_id: str) -> dict[str, Any] | None: ...

    async def create(self, token: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def upload(self, token: str, image_id: str, chunks: AsyncIterator[bytes]) -> None: ...

    async def delete(self, token: str, image_id: str) -> None: ...

    async def list(self, token: str, **filters: str) -> list[dict[str, Any]]: ...

    async def update(self, token: str, image_id: str,
                     ops: list[dict[str, Any]]) -> dict[str, Any]: ...

    async def service_token(self) -> str:
        """This process's service-user token, for work no user token covers
        (cleaning up after a restart)."""
        ...

    def download(self, token: str, image_id: str) -> AsyncIterator[bytes]: ...


class RestImageAPI:
    """The image service through :class:`stratus.image.client.ImageClient` (streaming)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def _client(self, token: str) -> Any:
        from stratus.image.client import ImageClient

        return ImageClient.from_runtime(self.runtime, headers={"X-Auth-Token": token})

    async def show(self, token: str, image_id: str) -> dict[str, Any] | None:
        from stratus.image.client import ImageServiceError

        try:
            async with self._client(token) as images:
                return await images.get(image_id)  # type: ignore[no-any-return]
        except ImageServiceError as exc:
            if exc.status == 404:
                return None
            raise BadRequest(f"Cannot read image {image_id}: {exc.message}") from None
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"The image service cannot be reached: {exc}") from exc

    async def create(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        from stratus.image.client import ImageServiceError

        try:
            async with self._client(token) as images:
                return await images.create(**body)  # type: ignore[no-any-return]
        except ImageServiceError as exc:
            raise BadRequest(f"The image service refused the image: {exc.message}") from None
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"The image service cannot be reached: {exc}") from exc

    async def upload(self, token: str, image_id: str, chunks: AsyncIterator[bytes]) -> None:
        async with self._client(token) as images:
            await images.upload(image_id, chunks)

    async def delete(self, token: str, image_id: str) -> None:
        from stratus.image.client import ImageServiceError

        try:
            async with self._client(token) as images:
                await images.delete(image_id)
        except ImageServiceError as exc:
            raise _refusal(exc.status, exc.message) from None

    async def list(self, token: str, **filters: str) -> list[dict[str, Any]]:
        async with self._client(token) as images:
            return await images.list(**filters)  # type: ignore[no-any-return]

    async def update(self, token: str, image_id: str,
                     ops: list[dict[str, Any]]) -> dict[str, Any]:
        """A JSON-patch update; the image service's refusal comes back as its status."""
        from stratus.image.client import ImageServiceError

        try:
            async with self._client(token) as images:
                return await images.update(image_id, ops)  # type: ignore[no-any-return]
        except ImageServiceError as exc:
            raise _refusal(exc.status, exc.message) from None

    async def service_token(self) -> str:
        return str((await self.runtime.service_headers())["X-Auth-Token"])

    async def download(self, token: str, image_id: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        async with self._client(token) as images:
            async for chunk in images.read(image_id):
                yield chunk


def _refusal(status: int, message: str) -> Exception:
    from stratus.errors import Forbidden, NotFound, OverQuota

    kind = {403: Forbidden, 404: NotFound, 413: OverQuota}.get(status, BadRequest)
    return kind(message)


class MemoryImageAPI:
    """Images in a dict; every id is visible to every token."""

    def __init__(self) -> None:
        self.images: dict[str, dict[str, Any]] = {}
        self.data: dict[str, bytes] = {}

    def add(self, **fields: Any) -> str:
        image_id = fields.pop("id", None) or str(uuid.uuid4())
        self._count = getattr(self, "_count", 0) + 1
        created = f"2026-01-01T00:00:{self._count // 1000000:02d}.{self._count % 1000000:06d}Z"
        self.images[image_id] = {"id": image_id, "status": "active", "min_disk": 0,
                                 "created_at": created, "updated_at": created,
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

    async def list(self, token: str, **filters: str) -> list[dict[str, Any]]:
        return [dict(i) for i in self.images.values()
                if all(str(i.get(k)) == v for k, v in filters.items())]

    async def update(self, token: str, image_id: str,
                     ops: list[dict[str, Any]]) -> dict[str, Any]:
        image = self.images[image_id]
        for op in ops:
            key = op["path"].lstrip("/")
            if op["op"] == "remove":
                image.pop(key, None)
            else:
                image[key] = op["value"]
        return dict(image)

    async def service_token(self) -> str:
        return "service"

    async def download(self, token: str, image_id: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        yield self.data.get(image_id, b"")
