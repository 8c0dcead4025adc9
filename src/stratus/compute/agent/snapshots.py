"""Snapshot images of the compute agent: a guest's disk streamed into the image service.

createImage, createBackup and shelve all stream the guest's disk from the
driver into an image upload (:func:`stream_snapshot`), chunk by chunk, so a
snapshot never needs a full temporary copy on the host. A snapshot that fails
deletes its half-made image (:func:`delete_image`), and a backup rotates out
the oldest backups of its type (:func:`rotate_backups`). The agent's
:class:`~stratus.compute.agent.manager.AgentManager` runs these inside its
actions, which own the instance's task_states and faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from stratus.compute.images import ImageAPI
from stratus.compute.virt.driver import Driver

log = logging.getLogger("stratus.compute.agent")


async def rotate_backups(images: ImageAPI, token: str, uuid: str, backup_type: str,
                         rotation: int) -> None:
    """Keep the newest ``rotation`` backups of this type of the instance (as Nova)."""
    backups = await images.list(token, instance_uuid=uuid, image_type="backup",
                                backup_type=backup_type)
    backups.sort(key=lambda i: str(i.get("created_at") or ""), reverse=True)
    for old in backups[rotation:]:
        log.info("rotating out backup %s of instance %s", old["id"], uuid)
        await delete_image(images, token, old["id"])


async def stream_snapshot(driver: Driver, images: ImageAPI, uuid: str, token: str,
                          image_id: str, progress: Callable[..., Awaitable[None]]) -> None:
    """Driver → queue → image upload, chunk by chunk: never a full temporary copy."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)  # chunks of ~4 MiB

    async def chunks() -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    await progress()  # image_pending_upload
    upload = asyncio.create_task(images.upload(token, image_id, chunks()))

    async def send(item: bytes | None) -> None:
        # An upload that ends early (refused: over quota, image deleted) reads no
        # more: the driver gets its error instead of waiting on a full queue.
        if not queue.full() and not upload.done():
            queue.put_nowait(item)  # the usual case: no task, no wait
            return
        putting = asyncio.ensure_future(queue.put(item))
        await asyncio.wait((putting, upload), return_when=asyncio.FIRST_COMPLETED)
        if not putting.done():
            putting.cancel()
            raise upload.exception() or RuntimeError(
                f"the upload of image {image_id} ended before the snapshot did")

    try:
        await progress()  # image_uploading
        await driver.snapshot(uuid, send)
        await send(None)
        await upload
    except BaseException:
        upload.cancel()
        with contextlib.suppress(BaseException):
            await upload
        cause = None if upload.cancelled() else upload.exception()
        if cause is not None:  # the upload's refusal, not the driver's echo of it
            raise cause from None
        raise


async def delete_image(images: ImageAPI, token: str, image_id: str) -> None:
    try:
        await images.delete(token, image_id)
    except Exception:  # noqa: BLE001 - best effort; the fault names the real error
        log.warning("could not delete failed snapshot image %s", image_id)
