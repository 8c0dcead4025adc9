"""What an agent restart rolls back besides the instance's own state: the
migration record and allocations of an interrupted resize/migration, the
image record of an interrupted snapshot, and what is left here of guests
evacuated while this host was down.

All are keyed by the instance and safe to run twice: migrations are closed
with a compare-and-swap on their status (only the first closer gives quota
back and moves allocations), and images are found again by their
``instance_uuid`` property.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.compute import quotas
from stratus.compute.images import ImageAPI
from stratus.compute.instances import MIGRATION_IN_PROGRESS, close_migration
from stratus.compute.models import ComputeNode, Flavor, Instance, Migration
from stratus.compute.scheduler import claims
from stratus.compute.states import TaskState
from stratus.compute.virt.driver import Driver
from stratus.db import Database
from stratus.db.base import utcnow

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


async def finish_evacuations(db: Database, driver: Driver, host: str) -> set[str]:
    """Clean up after the evacuations that moved guests off ``host`` while it was down
    (Nova's ``_destroy_evacuated_instances``); returns the uuids of instances
    evacuated from here, which the rest of recovery must leave alone.

    The guest now runs elsewhere, so this host must neither start nor adopt it:
    whatever this host still holds of it (a QEMU, its run directory, and, without
    shared storage, its files) is destroyed, and the ``done`` evacuation becomes
    ``completed``. A guest that has come back here since is left alone; one in the
    middle of another move keeps its migration ``done`` for the next restart; one
    still being evacuated (``accepted``, ``pre-migrating``) is not touched at all.
    """
    async with db.session() as session:
        rows = (await session.execute(
            select(Migration.uuid, Migration.instance_uuid, Migration.status, Instance).join(
                Instance, Instance.uuid == Migration.instance_uuid, isouter=True).where(
                Migration.source_compute == host, Migration.migration_type == "evacuation",
                Migration.status.in_(("accepted", "pre-migrating", "done"))))).all()
    evacuated = set()
    for migration_uuid, uuid, status, inst in rows:
        live = inst is not None and not inst.deleted
        if status != "done":
            # Still being rebuilt elsewhere (the instance names this host until then):
            # hands off. On shared storage its files are the destination's to adopt.
            log.info("instance %s is being evacuated from %s: left alone", uuid, host)
            evacuated.add(uuid)
            continue
        if live and inst.host != host and inst.task_state is not None:
            continue  # moving again: its files may be between owners; next restart
        if not live or inst.host != host:  # else it moved back here: ours again
            evacuated.add(uuid)
            log.info("destroying what is left on %s of instance %s: it was evacuated to %s",
                     host, uuid, inst.host if inst else "another host")
            try:
                await driver.destroy(uuid)
            except Exception:  # the next restart tries again
                log.exception("could not destroy what is left of evacuated instance %s", uuid)
                continue
        async with db.session() as session:
            await session.execute(update(Migration).where(
                Migration.uuid == migration_uuid, Migration.status == "done").values(
                status="completed", updated_at=utcnow()))
    return evacuated
