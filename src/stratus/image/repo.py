"""The image repository: images, their properties, tags, members and tasks in SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db import Database, compare_and_swap
from stratus.db.base import utcnow
from stratus.errors import BadRequest, Conflict
from stratus.image import usage
from stratus.image.domain import Image, MemberStatus, Status, Visibility
from stratus.image.listing import ListQuery
from stratus.image.models import image_members, image_properties, image_tags, image_tasks, images

COLUMNS = ("name", "status", "visibility", "protected", "os_hidden", "owner", "disk_format",
           "container_format", "min_disk", "min_ram", "size", "virtual_size", "checksum",
           "os_hash_algo", "os_hash_value", "location", "created_at", "updated_at")


@dataclass
class Member:
    image_id: str
    member: str
    status: MemberStatus
    created_at: datetime
    updated_at: datetime


@dataclass
class Task:
    id: str
    image_id: str
    type: str
    status: str
    owner: str | None
    user_id: str | None
    request_id: str | None
    input: dict[str, Any]
    result: dict[str, Any] | None
    message: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


def _image(row: Any, props: dict[str, str], tags: list[str]) -> Image:
    m = row._mapping
    return Image(id=m["id"], status=Status(m["status"]), visibility=Visibility(m["visibility"]),
                 owner=m["owner"], created_at=m["created_at"], updated_at=m["updated_at"],
                 name=m["name"], protected=bool(m["protected"]), os_hidden=bool(m["os_hidden"]),
                 disk_format=m["disk_format"], container_format=m["container_format"],
                 min_disk=m["min_disk"], min_ram=m["min_ram"], size=m["size"],
                 virtual_size=m["virtual_size"], checksum=m["checksum"],
                 os_hash_algo=m["os_hash_algo"], os_hash_value=m["os_hash_value"],
                 location=m["location"], properties=props, tags=tags)


def _values(image: Image) -> dict[str, Any]:
    return {name: getattr(image, name) for name in COLUMNS}


class ImageRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- images ---------------------------------------------------------------
    async def _load(self, session: AsyncSession, ids: Sequence[str]) -> list[Image]:
        if not ids:
            return []
        rows = (await session.execute(select(images).where(images.c.id.in_(ids)))).all()
        props: dict[str, dict[str, str]] = {i: {} for i in ids}
        tags: dict[str, list[tuple[int, str]]] = {i: [] for i in ids}
        for image_id, name, value in (await session.execute(
                select(image_properties.c.image_id, image_properties.c.name,
                       image_properties.c.value).where(image_properties.c.image_id.in_(ids)))):
            props[image_id][name] = value
        for image_id, value, position in (await session.execute(
                select(image_tags.c.image_id, image_tags.c.value, image_tags.c.position)
                .where(image_tags.c.image_id.in_(ids)))):
            tags[image_id].append((position, value))
        by_id = {r.id: _image(r, props[r.id], [v for _, v in sorted(tags[r.id])]) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def get(self, image_id: str) -> Image | None:
        async with self.db.session() as session:
            found = await self._load(session, [image_id])
        return found[0] if found else None

    async def get_many(self, ids: Sequence[str]) -> list[Image]:
        async with self.db.session() as session:
            return await self._load(session, ids)

    async def create(self, image: Image) -> None:
        try:
            async with self.db.session() as session:
                await session.execute(insert(images).values(id=image.id, **_values(image)))
                await self._write_children(session, image)
        except IntegrityError:
            raise Conflict(f"An image with identifier {image.id} already exists.") from None

    async def _write_children(self, session: AsyncSession, image: Image) -> None:
        await session.execute(delete(image_properties)
                              .where(image_properties.c.image_id == image.id))
        await session.execute(delete(image_tags).where(image_tags.c.image_id == image.id))
        if image.properties:
            await session.execute(insert(image_properties), [
                {"image_id": image.id, "name": k, "value": v}
                for k, v in image.properties.items()])
        if image.tags:
            await session.execute(insert(image_tags), [
                {"image_id": image.id, "value": t, "position": i}
                for i, t in enumerate(image.tags)])

    async def save(self, before: Image, after: Image) -> Image:
        """Write ``after``; 409 if the image changed status since ``before`` was read."""
        after.updated_at = utcnow_aware()
        values = {k: v for k, v in _values(after).items() if k not in ("status", "location")}
        async with self.db.writer(), self.db.session() as session:
            ok = await compare_and_swap(session, images, {"id": before.id},
                                        {"status": str(before.status)}, values)
            if not ok:
                raise Conflict(f"Image {before.id} changed while it was being updated; "
                               "retry the request.")
            if after.properties != before.properties or after.tags != before.tags:
                await self._write_children(session, after)
            if after.owner != before.owner and before.size:
                await usage.adjust(session, before.owner, -before.size)
                await usage.adjust(session, after.owner, before.size)
        return after

    async def transition(self, image_id: str, expected: Status | Iterable[Status], *,
                         end_upload: bool = False, **values: Any) -> bool:
        """Compare-and-swap on status: set ``values`` only if the status is ``expected``.

        A change of ``size`` is booked on the owner's storage usage, and with
        ``end_upload`` the upload's byte reservation is dropped (whether the
        swap happened or not), all in the same transaction.
        """
        want: Any = (str(expected) if isinstance(expected, Status)
                     else tuple(str(s) for s in expected))
        values.setdefault("updated_at", utcnow_aware())
        for key in ("status",):
            if key in values:
                values[key] = str(values[key])
        async with self.db.writer(), self.db.session() as session:
            before = None
            if "size" in values:
                before = (await session.execute(select(images.c.owner, images.c.size)
                                                .where(images.c.id == image_id))).first()
            ok = await compare_and_swap(session, images, {"id": image_id}, {"status": want},
                                        values)
            if ok and before is not None:
                await usage.adjust(session, before[0], (values["size"] or 0) - (before[1] or 0))
            if end_upload:
                await usage.release(session, image_id)
            return ok

    async def set_tag(self, image_id: str, tag: str) -> None:
        async with self.db.session() as session:
            present = await session.scalar(select(func.count()).select_from(image_tags).where(
                image_tags.c.image_id == image_id, image_tags.c.value == tag))
            if not present:
                position = await session.scalar(
                    select(func.coalesce(func.max(image_tags.c.position), -1) + 1)
                    .where(image_tags.c.image_id == image_id))
                await session.execute(insert(image_tags).values(image_id=image_id, value=tag,
                                                                position=position))
            await session.execute(update(images).where(images.c.id == image_id)
                                  .values(updated_at=utcnow_aware()))

    async def delete_tag(self, image_id: str, tag: str) -> bool:
        async with self.db.session() as session:
            result = await session.execute(delete(image_tags).where(
                image_tags.c.image_id == image_id, image_tags.c.value == tag))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def delete(self, image_id: str) -> bool:
        async with self.db.writer(), self.db.session() as session:
            row = (await session.execute(select(images.c.owner, images.c.size)
                                         .where(images.c.id == image_id))).first()
            for table in (image_properties, image_tags, image_members):
                await session.execute(delete(table).where(table.c.image_id == image_id))
            result = await session.execute(delete(images).where(images.c.id == image_id))
            if result.rowcount and row is not None and row[1]:  # type: ignore[attr-defined]
                await usage.adjust(session, row[0], -row[1])
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def usage(self, owner: str | None) -> tuple[int, int]:
        """(image count, bytes stored or being stored) of one owner."""
        async with self.db.session() as session:
            row = (await session.execute(
                select(func.count(), func.coalesce(func.sum(images.c.size), 0))
                .where(images.c.owner == owner))).one()
        return int(row[0]), int(row[1])

    async def with_locations(self, prefix: str) -> list[Image]:
        async with self.db.session() as session:
            ids = list((await session.scalars(
                select(images.c.id).where(images.c.location.like(f"{prefix}%"))
                .order_by(images.c.created_at))).all())
            return await self._load(session, ids)

    # -- listing --------------------------------------------------------------
    async def list_page(self, query: ListQuery, *, project_id: str | None,
                        sees_all: bool) -> list[Image]:
        """One page of images the caller can see, in the requested order."""
        conditions = self._conditions(query, project_id, sees_all)
        order = []
        for key, direction in query.sort:
            column = images.c[key]
            order.append(column.asc() if direction == "asc" else column.desc())
        stmt = select(images.c.id).where(and_(*conditions)).order_by(*order)
        async with self.db.session() as session:
            ids = list((await session.scalars(stmt)).all())
            if query.marker is not None:
                try:
                    start = ids.index(query.marker) + 1
                except ValueError:
                    raise BadRequest(f"Marker {query.marker} could not be found.") from None
                ids = ids[start:]
            return await self._load(session, ids[:query.limit])

    def _conditions(self, query: ListQuery, project_id: str | None,
                    sees_all: bool) -> list[Any]:
        c = images.c
        conds: list[Any] = [c.status != str(Status.DELETED)]

        def membership(status: str) -> Any:
            member = and_(image_members.c.image_id == c.id, image_members.c.member == project_id)
            if status != "all":
                member = and_(member, image_members.c.status == status)
            return exists().where(member)

        mine = c.owner == project_id if project_id is not None else c.id.is_(None)
        vis = query.visibility
        if vis is not None:
            conds.append(c.visibility == str(vis))
        if vis is Visibility.SHARED:
            # Shared images I own, and those shared with me (accepted by default).
            if not sees_all or query.member_status != MemberStatus.ACCEPTED:
                conds.append(or_(mine, membership(query.member_status)))
        elif vis is Visibility.PRIVATE:
            if not sees_all:
                conds.append(mine)
        elif vis is None and not sees_all:
            conds.append(or_(mine, c.visibility == str(Visibility.PUBLIC),
                             and_(c.visibility == str(Visibility.SHARED),
                                  membership(query.member_status))))
        if query.os_hidden is None:
            conds.append(c.os_hidden.is_(False))
        else:
            conds.append(c.os_hidden.is_(query.os_hidden))
        if query.protected is not None:
            conds.append(c.protected.is_(query.protected))
        for key, values in query.equals.items():
            conds.append(c[key].in_(values))
        if query.size_min is not None:
            conds.append(c.size >= query.size_min)
        if query.size_max is not None:
            conds.append(c.size <= query.size_max)
        for tag in query.tags:
            conds.append(exists().where(image_tags.c.image_id == c.id, image_tags.c.value == tag))
        for name, values in query.properties.items():
            conds.append(exists().where(image_properties.c.image_id == c.id,
                                        image_properties.c.name == name,
                                        image_properties.c.value.in_(values)))
        for key, op, when in query.times:
            column = c[key]
            conds.append({"gt": column > when, "gte": column >= when, "lt": column < when,
                          "lte": column <= when, "eq": column == when,
                          "neq": column != when}[op])
        return conds

    # -- members --------------------------------------------------------------
    async def members(self, image_id: str) -> list[Member]:
        async with self.db.session() as session:
            rows = (await session.execute(select(image_members)
                                          .where(image_members.c.image_id == image_id)
                                          .order_by(image_members.c.created_at))).all()
        return [_member(r) for r in rows]

    async def member(self, image_id: str, member: str) -> Member | None:
        async with self.db.session() as session:
            row = (await session.execute(select(image_members).where(
                image_members.c.image_id == image_id,
                image_members.c.member == member))).first()
        return _member(row) if row else None

    async def membership_status(self, image_id: str, project_id: str | None) -> str | None:
        if project_id is None:
            return None
        found = await self.member(image_id, project_id)
        return str(found.status) if found else None

    async def add_member(self, image_id: str, member: str, limit: int) -> Member:
        now = utcnow_aware()
        try:
            async with self.db.session() as session:
                if limit >= 0:
                    count = await session.scalar(select(func.count()).select_from(image_members)
                                                 .where(image_members.c.image_id == image_id))
                    if (count or 0) >= limit:
                        from stratus.errors import OverQuota

                        raise OverQuota(f"The limit of {limit} members per image is reached.")
                await session.execute(insert(image_members).values(
                    image_id=image_id, member=member, status=str(MemberStatus.PENDING),
                    created_at=now, updated_at=now))
        except IntegrityError:
            raise Conflict(f"Project {member} is already a member of image {image_id}.") from None
        return Member(image_id, member, MemberStatus.PENDING, now, now)

    async def set_member_status(self, image_id: str, member: str,
                                status: MemberStatus) -> Member | None:
        async with self.db.session() as session:
            await session.execute(update(image_members).where(
                image_members.c.image_id == image_id, image_members.c.member == member)
                .values(status=str(status), updated_at=utcnow_aware()))
        return await self.member(image_id, member)

    async def delete_member(self, image_id: str, member: str) -> bool:
        async with self.db.session() as session:
            result = await session.execute(delete(image_members).where(
                image_members.c.image_id == image_id, image_members.c.member == member))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- tasks ----------------------------------------------------------------
    async def add_task(self, task: Task) -> None:
        async with self.db.session() as session:
            await session.execute(insert(image_tasks).values(
                id=task.id, image_id=task.image_id, type=task.type, status=task.status,
                owner=task.owner, user_id=task.user_id, request_id=task.request_id,
                input=json.dumps(task.input), result=None, message=task.message,
                created_at=task.created_at, updated_at=task.updated_at,
                expires_at=task.expires_at))

    async def update_task(self, task_id: str, **values: Any) -> None:
        if "result" in values and values["result"] is not None:
            values["result"] = json.dumps(values["result"])
        values["updated_at"] = utcnow_aware()
        async with self.db.session() as session:
            await session.execute(update(image_tasks).where(image_tasks.c.id == task_id)
                                  .values(**values))

    async def tasks(self, image_id: str) -> list[Task]:
        async with self.db.session() as session:
            rows = (await session.execute(select(image_tasks)
                                          .where(image_tasks.c.image_id == image_id)
                                          .order_by(image_tasks.c.created_at))).all()
        return [_task(r._mapping) for r in rows]


def _member(row: Any) -> Member:
    m = row._mapping
    return Member(m["image_id"], m["member"], MemberStatus(m["status"]), m["created_at"],
                  m["updated_at"])


def _task(m: Mapping[str, Any]) -> Task:
    return Task(id=m["id"], image_id=m["image_id"], type=m["type"], status=m["status"],
                owner=m["owner"], user_id=m["user_id"], request_id=m["request_id"],
                input=json.loads(m["input"]),
                result=json.loads(m["result"]) if m["result"] else None,
                message=m["message"], created_at=m["created_at"], updated_at=m["updated_at"],
                expires_at=m["expires_at"])


def utcnow_aware() -> datetime:
    from datetime import UTC

    return utcnow().replace(tzinfo=UTC)
