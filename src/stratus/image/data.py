"""Image data in and out: upload, staging and download of an image's bytes.

The data use cases of :class:`~stratus.image.core.ImageCore`, whose methods of
the same names delegate here; like the core's other use cases, each first
checks the caller's visibility and policy through the core. An upload or a
stage claims the queued image with a compare-and-swap (to ``saving`` or
``uploading``), books quota as the data arrives (:func:`_reserver`), refuses
unsafe data by its first bytes, and lets the store write and hash it; a
failure puts the image back to ``queued``. A download checks the stored size
against the record, resolves a byte range and streams the file (verifying its
md5 when configured), and reports data found corrupt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from stratus.api.context import RequestContext
from stratus.errors import BadRequest, Conflict, Forbidden, OverQuota, StratusError
from stratus.image.domain import Image, Status
from stratus.image.formats import inspect, virtual_size
from stratus.image.policy import target
from stratus.image.store import DataCorrupt, StoredData, upload_tag

if TYPE_CHECKING:
    from stratus.image.core import ImageCore

log = logging.getLogger("stratus.image")

UPLOAD_PREFIX = "upload:"  # location while a write is in flight: upload:<host>.<pid>
STAGED_PREFIX = "staged:"  # location of staged data: staged:file:///...
# An upload of unknown length reserves quota in steps of at least this much,
# so that a 2 GiB upload costs a few dozen quota updates, not thousands.
RESERVE_STEP = 64 * 1024 * 1024


class Reserver(Protocol):
    async def __call__(self, needed: int, exact: bool = False) -> int: ...


class ImageDataCorrupt(StratusError):
    status = 500


@dataclass(frozen=True)
class Download:
    image: Image
    chunks: AsyncIterator[bytes]
    start: int
    end: int  # inclusive
    partial: bool


# -- upload and staging -------------------------------------------------------
def _reserver(core: ImageCore, image: Image) -> Reserver:
    """Book quota for an upload of ``image`` as its data arrives (see usage.py)."""
    limit = core.settings.image_size_total_quota
    held = 0

    async def reserve(needed: int, exact: bool = False) -> int:
        nonlocal held
        if needed <= held:
            return held
        tries = (needed - held,) if exact else (max(needed - held, RESERVE_STEP),
                                                needed - held)
        for more in dict.fromkeys(tries):
            if await core.usage.reserve(image.id, image.owner, more, limit):
                held += more
                return held
        raise OverQuota(f"Denying upload of image {image.id}: {needed} bytes exceed the "
                        f"image storage quota of project {image.owner} ({limit} bytes).")

    return reserve


def _check_prefix(disk_format: str | None, prefix: bytes) -> None:
    found = inspect(prefix)
    if found.unsafe and disk_format in ("qcow2", None):
        raise BadRequest(f"Image data rejected: {found.unsafe}.")


async def _begin_write(core: ImageCore, ctx: RequestContext, image_id: str, to: Status,
                       content_length: int | None) -> tuple[Image, Reserver, str]:
    image = await core.owned(ctx, image_id, "upload_image")
    if image.disk_format is None or image.container_format is None:
        raise BadRequest("Properties disk_format, container_format must be set prior to "
                         "saving data.")
    if image.status != Status.QUEUED:
        raise Conflict(f"Image status transition from '{image.status}' to '{to}' is not "
                       "allowed; data can only be uploaded to a queued image.")
    tag = upload_tag()
    if not await core.repo.transition(image.id, Status.QUEUED, status=to,
                                      location=UPLOAD_PREFIX + tag):
        raise Conflict(f"Image {image_id} is already receiving data.")
    reserve = _reserver(core, image)
    if content_length:
        # Refuse an upload that cannot fit before reading any of it.
        try:
            await reserve(content_length, exact=True)
        except BaseException:
            await asyncio.shield(core.repo.transition(
                image.id, to, status=Status.QUEUED, location=None, end_upload=True))
            raise
    return image, reserve, tag


async def _write(core: ImageCore, image: Image, chunks: AsyncIterable[bytes], area: str,
                 reserve: Reserver, tag: str,
                 status: Status) -> StoredData:
    try:
        return await core.store.add(image.id, chunks, area=area, reserve=reserve,
                                    check_prefix=partial(_check_prefix, image.disk_format),
                                    tag=tag)
    except BaseException as exc:
        await asyncio.shield(core.repo.transition(image.id, status, status=Status.QUEUED,
                                                  location=None, end_upload=True))
        log.info("upload of image %s did not complete: %r", image.id, exc)
        raise


async def upload(core: ImageCore, ctx: RequestContext, image_id: str,
                 chunks: AsyncIterable[bytes], content_length: int | None) -> Image:
    image, reserve, tag = await _begin_write(core, ctx, image_id, Status.SAVING,
                                             content_length)
    await core.notify("image.prepare", image)
    data = await _write(core, image, chunks, "images", reserve, tag, Status.SAVING)
    return await _activate(core, image, data, Status.SAVING, data.location)


async def _activate(core: ImageCore, image: Image, data: StoredData, source: Status,
                    location: str) -> Image:
    vsize = virtual_size(image.disk_format, inspect(data.prefix), data.size)
    ok = await core.repo.transition(
        image.id, source, status=Status.ACTIVE, location=location, size=data.size,
        checksum=data.checksum, os_hash_algo=data.hash_algo, os_hash_value=data.hash_value,
        virtual_size=vsize, end_upload=True)
    if not ok:
        await core.store.delete(location)
        raise Conflict(f"Image {image.id} was deleted or changed while its data was "
                       "being written; the data was discarded.")
    saved = await core.repo.get(image.id)
    assert saved is not None
    await core.notify("image.upload", saved)
    await core.notify("image.activate", saved)
    return saved


async def stage(core: ImageCore, ctx: RequestContext, image_id: str,
                chunks: AsyncIterable[bytes], content_length: int | None) -> None:
    image, reserve, tag = await _begin_write(core, ctx, image_id, Status.UPLOADING,
                                             content_length)
    data = await _write(core, image, chunks, "staging", reserve, tag, Status.UPLOADING)
    # Keep the hashes computed while staging; import only moves the file.
    ok = await core.repo.transition(
        image.id, Status.UPLOADING, location=STAGED_PREFIX + data.location, size=data.size,
        checksum=data.checksum, os_hash_algo=data.hash_algo, os_hash_value=data.hash_value,
        virtual_size=virtual_size(image.disk_format, inspect(data.prefix), data.size),
        end_upload=True)
    if not ok:
        await core.store.delete(data.location)
        raise Conflict(f"Image {image_id} was deleted while its data was being staged.")


# -- download -----------------------------------------------------------------
async def download(core: ImageCore, ctx: RequestContext, image_id: str,
                   byte_range: tuple[int | None, int | None] | None) -> Download | None:
    """What to send for ``GET .../file``; None when the image has no data (204)."""
    image = await core.visible(ctx, image_id)
    core.policy.enforce("download_image", ctx, target(image))
    if image.status == Status.DEACTIVATED and not core.policy.check(
            "download_deactivated_image", ctx, target(image)):
        raise Forbidden("The requested image has been deactivated. Image data download is "
                        "forbidden.")
    if not image.has_data or image.location is None:
        return None
    size = image.size or 0
    try:
        on_disk = await core.store.size_of(image.location)
    except DataCorrupt as exc:
        await _corrupt(core, image, str(exc))
    if on_disk != size:
        await _corrupt(core, image, f"the stored file has {on_disk} bytes, the image "
                                    f"{size}")
    start, end, is_partial = 0, size - 1, False
    if byte_range is not None:
        start, end = _resolve_range(byte_range, size)
        is_partial = True
    expect = (image.checksum if core.settings.verify_on_download and not is_partial
              else None)
    chunks = _guarded(core, image, core.store.open(image.location, start=start, end=end,
                                                   expect_md5=expect))
    await core.notify("image.send", image, bytes_sent=end - start + 1,
                      receiver_tenant_id=ctx.project_id, receiver_user_id=ctx.user_id)
    return Download(image, chunks, start, end, is_partial)


async def _guarded(core: ImageCore, image: Image,
                   chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    except DataCorrupt as exc:
        log.error("image %s: %s; the transfer was aborted", image.id, exc)
        await core.notify("image.data.corrupt", image, reason=str(exc))
        raise


async def _corrupt(core: ImageCore, image: Image, why: str) -> Any:
    log.error("image %s: %s", image.id, why)
    await core.notify("image.data.corrupt", image, reason=why)
    raise ImageDataCorrupt(f"The data of image {image.id} failed verification ({why}); "
                           "the operator should run `stratus image verify`.")


def _resolve_range(byte_range: tuple[int | None, int | None], size: int) -> tuple[int, int]:
    from stratus.errors import RangeNotSatisfiable

    first, last = byte_range
    if first is None:  # suffix range: the last N bytes
        if not last:
            raise RangeNotSatisfiable("Requested range not satisfiable.",
                                      headers={"Content-Range": f"bytes */{size}"})
        return max(size - last, 0), size - 1
    if first >= size or (last is not None and last < first):
        raise RangeNotSatisfiable("Requested range not satisfiable.",
                                  headers={"Content-Range": f"bytes */{size}"})
    return first, min(last if last is not None else size - 1, size - 1)
