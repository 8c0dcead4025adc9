"""The storage ledger behind the image size quota.

``image_usage.used_bytes`` of a project is always the sum of the sizes of
its images plus the bytes its in-flight uploads have reserved
(``image_reservations``). An upload reserves bytes *before* writing them,
with one conditional UPDATE (``used_bytes + n <= limit``), so two concurrent
uploads cannot both squeeze under the quota: the database serialises the
two UPDATEs and the second one sees the first one's bytes.

Every change of an image's ``size`` or owner adjusts the ledger in the same
transaction (see :class:`stratus.image.repo.ImageRepo`); an upload's
reservation is dropped in the transaction that ends it, whether it stored
the image or failed.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db import Database
from stratus.image.models import image_reservations, image_usage


def project_key(owner: str | None) -> str:
    return owner or ""


async def _ensure_row(session: AsyncSession, project: str) -> None:
    found = await session.scalar(select(image_usage.c.project_id)
                                 .where(image_usage.c.project_id == project))
    if found is None:
        try:
            async with session.begin_nested():
                await session.execute(insert(image_usage).values(project_id=project,
                                                                 used_bytes=0))
        except IntegrityError:
            pass  # a concurrent first upload of the project made it


async def adjust(session: AsyncSession, owner: str | None, delta: int) -> None:
    """Add ``delta`` bytes (negative to free) to the owner's usage."""
    if not delta:
        return
    project = project_key(owner)
    await _ensure_row(session, project)
    await session.execute(update(image_usage).where(image_usage.c.project_id == project)
                          .values(used_bytes=image_usage.c.used_bytes + delta))


async def release(session: AsyncSession, image_id: str) -> int:
    """Drop the reservation of ``image_id``'s upload; returns the bytes it held."""
    row = (await session.execute(select(image_reservations.c.project_id,
                                        image_reservations.c.bytes)
                                 .where(image_reservations.c.image_id == image_id))).first()
    if row is None:
        return 0
    await session.execute(image_reservations.delete()
                          .where(image_reservations.c.image_id == image_id))
    await session.execute(update(image_usage).where(image_usage.c.project_id == row[0])
                          .values(used_bytes=image_usage.c.used_bytes - row[1]))
    return int(row[1])


class UsageLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def reserve(self, image_id: str, owner: str | None, nbytes: int, limit: int) -> bool:
        """Reserve ``nbytes`` more for the upload of ``image_id``; False if over ``limit``.

        ``limit`` < 0 means unlimited: the bytes are still counted.
        """
        project = project_key(owner)
        async with self.db.writer(), self.db.session() as session:
            await _ensure_row(session, project)
            used = image_usage.c.used_bytes
            stmt = (update(image_usage).where(image_usage.c.project_id == project)
                    .values(used_bytes=used + nbytes))
            if limit >= 0:
                stmt = stmt.where(used + nbytes <= limit)
            if not (await session.execute(stmt)).rowcount:  # type: ignore[attr-defined]
                return False
            held = image_reservations.c.bytes
            grown = await session.execute(update(image_reservations)
                                          .where(image_reservations.c.image_id == image_id)
                                          .values(bytes=held + nbytes))
            if not grown.rowcount:  # type: ignore[attr-defined]
                await session.execute(insert(image_reservations).values(
                    image_id=image_id, project_id=project, bytes=nbytes))
            return True

    async def used(self, owner: str | None) -> int:
        async with self.db.session() as session:
            value = await session.scalar(select(image_usage.c.used_bytes).where(
                image_usage.c.project_id == project_key(owner)))
        return int(value or 0)
