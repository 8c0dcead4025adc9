"""Re-hash every stored image and compare with its record (``stratus image verify``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from stratus.image.domain import Image
from stratus.image.repo import ImageRepo
from stratus.image.store import DataCorrupt, FileStore, StoreError


@dataclass(frozen=True)
class Finding:
    image_id: str
    name: str | None
    ok: bool
    detail: str


async def verify_images(repo: ImageRepo, store: FileStore,
                        only: Sequence[str] = ()) -> AsyncIterator[Finding]:
    images = await repo.with_locations("file:")
    if only:
        images = [i for i in images if i.id in only]
    for image in images:
        yield await verify_one(store, image)


async def verify_one(store: FileStore, image: Image) -> Finding:
    assert image.location is not None
    try:
        size, md5, sha = await store.checksums(image.location)
    except (DataCorrupt, StoreError, OSError) as exc:
        return Finding(image.id, image.name, False, str(exc))
    problems = []
    if size != image.size:
        problems.append(f"size {size} != recorded {image.size}")
    if md5 != image.checksum:
        problems.append(f"md5 {md5} != recorded {image.checksum}")
    if image.os_hash_value and sha != image.os_hash_value:
        problems.append("sha512 does not match the recorded os_hash_value")
    if problems:
        return Finding(image.id, image.name, False, "; ".join(problems))
    return Finding(image.id, image.name, True, f"{size} bytes, md5 {md5}")
