"""Metadefs persistence: namespaces and their child definitions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db import Database
from stratus.errors import Conflict
from stratus.image.metadefs.domain import (
    Association,
    Definition,
    Namespace,
    NamespaceContents,
    NamespaceVisibility,
)
from stratus.image.models import (
    metadef_associations,
    metadef_namespaces,
    metadef_objects,
    metadef_properties,
    metadef_resource_types,
    metadef_tags,
)
from stratus.image.repo import utcnow_aware

# The child tables by the word the API uses for them.
KINDS: dict[str, Table] = {"objects": metadef_objects, "properties": metadef_properties,
                           "tags": metadef_tags}


def _namespace(row: Any) -> Namespace:
    m = row._mapping
    return Namespace(id=m["id"], namespace=m["namespace"],
                     visibility=NamespaceVisibility(m["visibility"]), protected=m["protected"],
                     owner=m["owner"], created_at=m["created_at"], updated_at=m["updated_at"],
                     display_name=m["display_name"], description=m["description"])


def _definition(row: Any) -> Definition:
    m = row._mapping
    body = json.loads(m["body"]) if "body" in m else {}
    return Definition(m["name"], body, m["created_at"], m["updated_at"])


def _row(table: Table, namespace_id: str, d: Definition) -> dict[str, Any]:
    now = utcnow_aware()
    row: dict[str, Any] = {"namespace_id": namespace_id, "name": d.name, "created_at": now,
                           "updated_at": now}
    if "body" in table.c:
        row["body"] = json.dumps(d.body)
    return row


class MetadefRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- namespaces -----------------------------------------------------------
    async def get(self, name: str) -> Namespace | None:
        async with self.db.session() as session:
            row = (await session.execute(select(metadef_namespaces).where(
                metadef_namespaces.c.namespace == name))).first()
        return _namespace(row) if row else None

    async def list(self, *, project_id: str | None, sees_all: bool,
                   visibility: str | None, resource_types: Sequence[str],
                   sort_key: str, ascending: bool) -> list[Namespace]:
        c = metadef_namespaces.c
        stmt = select(metadef_namespaces)
        if not sees_all:
            stmt = stmt.where(or_(c.visibility == str(NamespaceVisibility.PUBLIC),
                                  c.owner == project_id))
        if visibility is not None:
            stmt = stmt.where(c.visibility == visibility)
        if resource_types:
            stmt = stmt.where(c.id.in_(select(metadef_associations.c.namespace_id).where(
                metadef_associations.c.name.in_(list(resource_types)))))
        column = c[sort_key]
        stmt = stmt.order_by(column.asc() if ascending else column.desc(), c.id.asc())
        async with self.db.session() as session:
            return [_namespace(r) for r in (await session.execute(stmt)).all()]

    async def create(self, ns: Namespace, contents: NamespaceContents) -> None:
        try:
            async with self.db.writer(), self.db.session() as session:
                await session.execute(insert(metadef_namespaces).values(
                    id=ns.id, namespace=ns.namespace, display_name=ns.display_name,
                    description=ns.description, visibility=str(ns.visibility),
                    protected=ns.protected, owner=ns.owner, created_at=ns.created_at,
                    updated_at=ns.updated_at))
                for assoc in contents.associations:
                    await self._associate(session, ns.id, assoc)
                for kind, items in (("properties", contents.properties),
                                    ("objects", contents.objects), ("tags", contents.tags)):
                    if items:
                        table = KINDS[kind]
                        await session.execute(insert(table),
                                              [_row(table, ns.id, d) for d in items])
        except IntegrityError:
            raise Conflict(f"A metadata definition namespace named {ns.namespace!r} already "
                           "exists, or the request repeats a definition name.") from None

    async def update(self, ns: Namespace) -> None:
        try:
            async with self.db.writer(), self.db.session() as session:
                await session.execute(update(metadef_namespaces)
                                      .where(metadef_namespaces.c.id == ns.id).values(
                    namespace=ns.namespace, display_name=ns.display_name,
                    description=ns.description, visibility=str(ns.visibility),
                    protected=ns.protected, owner=ns.owner, updated_at=ns.updated_at))
        except IntegrityError:
            raise Conflict(f"A metadata definition namespace named {ns.namespace!r} already "
                           "exists.") from None

    async def delete(self, namespace_id: str) -> bool:
        async with self.db.writer(), self.db.session() as session:
            for table in (metadef_associations, *KINDS.values()):
                await session.execute(delete(table).where(table.c.namespace_id == namespace_id))
            result = await session.execute(delete(metadef_namespaces)
                                           .where(metadef_namespaces.c.id == namespace_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- definitions (objects, properties, tags) --------------------------------
    async def definitions(self, kind: str, namespace_id: str) -> list[Definition]:
        table = KINDS[kind]
        async with self.db.session() as session:
            rows = (await session.execute(select(table).where(
                table.c.namespace_id == namespace_id).order_by(table.c.created_at,
                                                               table.c.name))).all()
        return [_definition(r) for r in rows]

    async def definition(self, kind: str, namespace_id: str, name: str) -> Definition | None:
        table = KINDS[kind]
        async with self.db.session() as session:
            row = (await session.execute(select(table).where(
                table.c.namespace_id == namespace_id, table.c.name == name))).first()
        return _definition(row) if row else None

    async def add(self, kind: str, namespace_id: str, items: Sequence[Definition], *,
                  replace: bool = False) -> None:
        """Insert definitions (after removing every existing one when ``replace``)."""
        table = KINDS[kind]
        try:
            async with self.db.writer(), self.db.session() as session:
                if replace:
                    await session.execute(delete(table)
                                          .where(table.c.namespace_id == namespace_id))
                if items:
                    await session.execute(insert(table),
                                          [_row(table, namespace_id, d) for d in items])
        except IntegrityError:
            names = ", ".join(d.name for d in items)
            raise Conflict(f"A {kind[:-1] if kind != 'properties' else 'property'} named "
                           f"{names} already exists in this namespace.") from None

    async def replace(self, kind: str, namespace_id: str, old_name: str,
                      new: Definition) -> bool:
        table = KINDS[kind]
        values: dict[str, Any] = {"name": new.name, "updated_at": utcnow_aware()}
        if "body" in table.c:
            values["body"] = json.dumps(new.body)
        try:
            async with self.db.writer(), self.db.session() as session:
                result = await session.execute(update(table).where(
                    table.c.namespace_id == namespace_id, table.c.name == old_name)
                    .values(**values))
                return bool(result.rowcount)  # type: ignore[attr-defined]
        except IntegrityError:
            raise Conflict(f"{new.name!r} already exists in this namespace.") from None

    async def remove(self, kind: str, namespace_id: str, name: str | None = None) -> bool:
        """Delete one definition, or all of a kind when ``name`` is None."""
        table = KINDS[kind]
        cond = table.c.namespace_id == namespace_id
        if name is not None:
            cond = and_(cond, table.c.name == name)
        async with self.db.writer(), self.db.session() as session:
            result = await session.execute(delete(table).where(cond))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- resource types -----------------------------------------------------------
    async def resource_types(self) -> list[Definition]:
        async with self.db.session() as session:
            rows = (await session.execute(select(metadef_resource_types)
                                          .order_by(metadef_resource_types.c.name))).all()
        return [_definition(r) for r in rows]

    async def associations(self, namespace_ids: Sequence[str]
                           ) -> dict[str, list[Association]]:
        found: dict[str, list[Association]] = {i: [] for i in namespace_ids}
        if not namespace_ids:
            return found
        t = metadef_associations
        async with self.db.session() as session:
            rows = (await session.execute(select(t).where(
                t.c.namespace_id.in_(list(namespace_ids))).order_by(t.c.created_at,
                                                                     t.c.name))).all()
        for r in rows:
            m = r._mapping
            found[m["namespace_id"]].append(Association(
                m["name"], m["prefix"], m["properties_target"], m["created_at"],
                m["updated_at"]))
        return found

    async def associate(self, namespace_id: str, assoc: Association) -> Association:
        try:
            async with self.db.writer(), self.db.session() as session:
                return await self._associate(session, namespace_id, assoc)
        except IntegrityError:
            raise Conflict(f"The namespace is already associated with resource type "
                           f"{assoc.name}.") from None

    async def _associate(self, session: AsyncSession, namespace_id: str,
                         assoc: Association) -> Association:
        now = utcnow_aware()
        known = await session.scalar(select(metadef_resource_types.c.name).where(
            metadef_resource_types.c.name == assoc.name))
        if known is None:  # resource types come into being on first use, as in Glance
            await session.execute(insert(metadef_resource_types).values(
                name=assoc.name, protected=False, created_at=now, updated_at=now))
        await session.execute(insert(metadef_associations).values(
            namespace_id=namespace_id, name=assoc.name, prefix=assoc.prefix,
            properties_target=assoc.properties_target, created_at=now, updated_at=now))
        return Association(assoc.name, assoc.prefix, assoc.properties_target, now, now)

    async def dissociate(self, namespace_id: str, name: str) -> bool:
        t = metadef_associations
        async with self.db.writer(), self.db.session() as session:
            result = await session.execute(delete(t).where(t.c.namespace_id == namespace_id,
                                                           t.c.name == name))
            return bool(result.rowcount)  # type: ignore[attr-defined]
