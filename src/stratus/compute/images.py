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


# Glance v2 fields of an image record that are not properties a snapshot can inherit:
# what the image service computes, the base attributes the snapshot sets itself, and
# what says which server or image a snapshot came from (the new snapshot says its own).
_NOT_PROPERTIES = frozenset({
    "id", "name", "status", "visibility", "protected", "os_hidden", "owner", "tags",
    "disk_format", "container_format", "size", "virtual_size", "checksum", "os_hash_algo",
    "os_hash_value", "created_at", "updated_at", "file", "schema", "self", "direct_url",
    "locations", "stores", "properties", "instance_uuid", "image_type", "base_image_ref",
    "backup_type", "user_id", "image_location", "image_state", "owner_id", "owner_user_name",
    "owner_project_name"})
# Nova's ``non_inheritable_image_properties`` default, and the signature keys it never
# lets a snapshot inherit (the snapshot's data is not what was signed).
NON_INHERITABLE = frozenset({"cache_in_nova", "bittorrent", "img_signature",
                             "img_signature_hash_method", "img_signature_key_type",
                             "img_signature_certificate_uuid", "cinder_encryption_key_id",
                             "cinder_encryption_key_deletion_policy"})


def inherited_properties(image: dict[str, Any] | None) -> dict[str, Any]:
    """What a snapshot (or shelve image) of a server inherits from the server's image.

    As Nova: every custom property of the image (so ``kernel_id``, ``ramdisk_id``,
    ``os_command_line``, ``hw_*``, ``os_distro``, ... and a server booted from the
    snapshot boots as the original did) except the non-inheritable ones, plus
    ``min_ram``/``min_disk``. Nova reads them from the ``image_*`` system metadata
    it saved at boot; we read the image record (the caller's fallback when the image
    is gone is the properties the request spec kept)."""
    if not image:
        return {}
    props = {k: v for k, v in image.items() if k not in _NOT_PROPERTIES
             and k not in NON_INHERITABLE and not k.startswith(("os_glance", "owner_specified."))
             and isinstance(v, str) and v != ""}
    props.update({k: v for k, v in (image.get("properties") or {}).items()
                  if k not in _NOT_PROPERTIES and k not in NON_INHERITABLE
                  and isinstance(v, str)})
    for key in ("min_ram", "min_disk"):
        if isinstance(image.get(key), int) and image[key] > 0:
            props[key] = image[key]
    return props


class TokenImages:
    """An :class:`~stratus.compute.virt.driver.ImageSource`: images read with one token."""

    def __init__(self, api: ImageAPI, token: str) -> None:
        self.api, self.token = api, token

    def __call__(self, image_id: str) -> AsyncIterator[bytes]:
        return self.api.download(self.token, image_id)

    async def show(self, image_id: str) -> dict[str, Any] | None:
        return await self.api.show(self.token, image_id)


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
