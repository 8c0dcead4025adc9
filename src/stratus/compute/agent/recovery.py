"""What an agent restart rolls back besides the instance's own state: the
migration record and allocations of an interrupted resize/migration, and the
image record of an interrupted snapshot.

Both are keyed by the instance and safe to run twice: the migration is
closed with a compare-and-swap on its status (only the first closer gives
quota back and moves allocations), and images are found again by their
``instance_uuid`` property.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.compute import quotas
from stratus.compute.images import ImageAPI
from stratus.compute.instances import MIGRATION_IN_PROGRESS, close_migration
from stratus.compute.models import ComputeNode, Flavor, Instance, Migration
from stratus.compute.scheduler import claims
from stratus.compute.states import TaskState
from stratus.db import Database

log = logging.getLogger("stratus.compute.agent")
T = TaskState

# Until these are passed the guest has not left its source host.
_BEFORE_MOVE = {T.RESIZE_PREP.value, T.RESIZE_MIGRATING.value, T.MIGRATING.value}
SNAPSHOT_TASKS = {T.IMAGE_SNAPSHOT_PENDING.value, T.IMAGE_SNAPSHOT.value,
                  T.IMAGE_BACKUP.value, T.IMAGE_PENDING_UPLOAD.value, T.IMAGE_UPLOADING.value,
                  T.SHELVING_IMAGE_PENDING_UPLOAD.value, T.SHELVING_IMAGE_UPLOADING.value}
MIGRATION_TASKS = {T.RESIZE_PREP.value, T.RESIZE_MIGRATING.value, T.RESIZE_MIGRATED.value,
                   T.RESIZE_FINISH.value, T.MIGRATING.value}


async def abandon_migration(db: Database, inst: Instance) -> dict[str, Any]:
    """Roll back the bookkeeping of the instance's interrupted migration.

    Before the guest left its source (``resize_prep``, ``resize_migrating``,
    ``migrating``) the instance stays on the source: the destination claim is
    released, the source allocation goes back from the migration to the
    instance, and a resize's extra quota is given back. After that the guest
    may be on either side and neither is known good: the instance keeps the
    destination claim (where the conductor was finishing it), the source's is
    released, and the caller marks the instance ``error``.

    Returns the instance values to write (``host``/``node`` after a move)
    plus ``moved``: whether the guest had left the source.
    """
    moved = inst.task_state not in _BEFORE_MOVE
    async with db.session() as session:
        mig = await session.scalar(select(Migration).where(
            Migration.instance_uuid == inst.uuid, Migration.status.in_(MIGRATION_IN_PROGRESS)
        ).order_by(Migration.id.desc()))
        if mig is None or not await close_migration(session, mig.uuid):
            return {"moved": moved}
        nodes = dict((await session.execute(select(ComputeNode.host, ComputeNode.id))).all())
        source = nodes.get(mig.source_compute or "")
        dest = nodes.get(mig.dest_compute or "")
        if not moved:
            if dest is not None and dest != source:
                await claims.release(session, inst.uuid, dest)
            await claims.move(session, mig.uuid, inst.uuid, source)
            await _give_back_resize(session, inst, mig)
            log.warning("instance %s: interrupted %s %s rolled back to %s", inst.uuid,
                        mig.migration_type, mig.uuid, mig.source_compute)
            return {"moved": False}
        await claims.release(session, mig.uuid)
        log.warning("instance %s: interrupted %s %s left the guest between %s and %s",
                    inst.uuid, mig.migration_type, mig.uuid, mig.source_compute,
                    mig.dest_compute)
        values: dict[str, Any] = {"moved": True}
        if mig.dest_compute:
            values.update(host=mig.dest_compute, node=mig.dest_node)
        return values


async def _give_back_resize(session: AsyncSession, inst: Instance, mig: Migration) -> None:
    if mig.migration_type != "resize" or not mig.new_flavor_id \
            or mig.new_flavor_id == mig.old_flavor_id:
        return
    new = await session.get(Flavor, mig.new_flavor_id)
    if new is None:
        return
    back = {"cores": max(0, new.vcpus - int(inst.flavor["vcpus"])),
            "ram": max(0, new.memory_mb - int(inst.flavor["ram"]))}
    back = {k: v for k, v in back.items() if v > 0}
    if back:
        await quotas.release(session, inst.project_id, back)


async def abandon_snapshot_images(images: ImageAPI, uuid: str) -> list[str]:
    """Delete the images an interrupted snapshot/backup/shelve of ``uuid`` left
    ``queued`` or ``saving`` (with the service token: the user's is gone).
    Returns the ids it could not delete."""
    token = await images.service_token()
    left = []
    for status in ("queued", "saving"):
        for image in await images.list(token, instance_uuid=uuid, status=status):
            try:
                await images.delete(token, image["id"])
                log.warning("deleted image %s left %s by an interrupted snapshot of %s",
                            image["id"], status, uuid)
            except Exception:  # noqa: BLE001 - reported in the fault
                left.append(str(image["id"]))
    return left
