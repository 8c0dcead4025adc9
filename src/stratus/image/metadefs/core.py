"""Metadefs use cases: visibility, policy and protection around the repository.

Who sees a namespace is data (public, or owned by the caller's project, or
the caller sees everything); who may change the catalog is policy (admins by
default). A protected namespace cannot be deleted, nor can anything in it,
until an update clears ``protected``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from stratus.api.context import RequestContext
from stratus.errors import BadRequest, Forbidden, NotFound
from stratus.image.metadefs.domain import (
    Association,
    Definition,
    Namespace,
    NamespaceVisibility,
    parse_association,
    parse_namespace,
    parse_object,
    parse_property,
    parse_tags,
)
from stratus.image.metadefs.repo import MetadefRepo
from stratus.image.policy import ImagePolicy
from stratus.image.repo import utcnow_aware

# Per kind of definition: its singular noun and the rules guarding it
# (read one, read all, add, modify, delete).
RULES: dict[str, tuple[str, str, str, str, str, str]] = {
    "objects": ("object", "get_metadef_object", "get_metadef_objects", "add_metadef_object",
                "modify_metadef_object", "delete_metadef_object"),
    "properties": ("property", "get_metadef_property", "get_metadef_properties",
                   "add_metadef_property", "modify_metadef_property",
                   "remove_metadef_property"),
    "tags": ("tag", "get_metadef_tag", "get_metadef_tags", "add_metadef_tag",
             "modify_metadef_tag", "delete_metadef_tag"),
}
SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name")


@dataclass
class NamespaceDetail:
    namespace: Namespace
    associations: list[Association]
    properties: list[Definition] | None = None
    objects: list[Definition] | None = None
    tags: list[Definition] | None = None


def _target(ns: Namespace) -> dict[str, Any]:
    return {"project_id": ns.owner, "owner": ns.owner, "visibility": str(ns.visibility)}


class MetadefCore:
    def __init__(self, repo: MetadefRepo, policy: ImagePolicy) -> None:
        self.repo = repo
        self.policy = policy

    async def visible(self, ctx: RequestContext, name: str) -> Namespace:
        """The namespace if the caller may see it; 404 otherwise (no leaks)."""
        ns = await self.repo.get(name)
        if ns is None or not (ns.visibility is NamespaceVisibility.PUBLIC
                              or (ctx.project_id is not None and ns.owner == ctx.project_id)
                              or self.policy.sees_all(ctx)):
            raise NotFound(f"Metadata definition namespace={name} was not found.")
        return ns

    async def _changeable(self, ctx: RequestContext, name: str, rule: str) -> Namespace:
        ns = await self.visible(ctx, name)
        self.policy.enforce(rule, ctx, _target(ns))
        return ns

    # -- namespaces -----------------------------------------------------------
    async def list_namespaces(self, ctx: RequestContext, params: dict[str, str]
                              ) -> tuple[list[NamespaceDetail], bool]:
        """One page of namespaces, and whether more follow."""
        self.policy.enforce("get_metadef_namespaces", ctx)
        sort_key = params.get("sort_key", "created_at")
        sort_dir = params.get("sort_dir", "desc")
        if sort_key not in SORT_KEYS or sort_dir not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort: sort_key one of {', '.join(SORT_KEYS)}, "
                             "sort_dir asc or desc.")
        visibility = params.get("visibility")
        if visibility is not None and visibility not in set(NamespaceVisibility):
            raise BadRequest(f"Invalid visibility {visibility!r}.")
        limit = _limit(params.get("limit"))
        types = [t for t in params.get("resource_types", "").split(",") if t]
        found = await self.repo.list(project_id=ctx.project_id,
                                     sees_all=self.policy.sees_all(ctx),
                                     visibility=visibility, resource_types=types,
                                     sort_key=sort_key, ascending=sort_dir == "asc")
        marker = params.get("marker")
        if marker is not None:
            names = [n.namespace for n in found]
            if marker not in names:
                raise NotFound(f"Metadata definition namespace={marker} was not found.")
            found = found[names.index(marker) + 1:]
        page = found[:limit]
        assocs = await self.repo.associations([n.id for n in page])
        return [NamespaceDetail(n, assocs[n.id]) for n in page], len(found) > limit

    async def create_namespace(self, ctx: RequestContext, body: Any) -> NamespaceDetail:
        fields, contents = parse_namespace(body)
        owner = fields.pop("owner", ctx.project_id)
        self.policy.enforce("add_metadef_namespace", ctx, {"project_id": owner})
        now = utcnow_aware()
        ns = Namespace(id=str(uuid.uuid4()), owner=owner, created_at=now, updated_at=now,
                       **fields)
        await self.repo.create(ns, contents)
        return await self.show_namespace(ctx, ns.namespace)

    async def show_namespace(self, ctx: RequestContext, name: str,
                             resource_type: str | None = None) -> NamespaceDetail:
        ns = await self.visible(ctx, name)
        self.policy.enforce("get_metadef_namespace", ctx, _target(ns))
        assocs = (await self.repo.associations([ns.id]))[ns.id]
        props = await self.repo.definitions("properties", ns.id)
        if resource_type is not None:
            # Show property names as that resource type spells them.
            prefix = next((a.prefix for a in assocs if a.name == resource_type), None) or ""
            props = [replace(p, name=prefix + p.name) for p in props]
        return NamespaceDetail(ns, assocs, props, await self.repo.definitions("objects", ns.id),
                               await self.repo.definitions("tags", ns.id))

    async def update_namespace(self, ctx: RequestContext, name: str,
                               body: Any) -> NamespaceDetail:
        ns = await self._changeable(ctx, name, "modify_metadef_namespace")
        fields, _ = parse_namespace(body, current=ns)
        if "owner" in fields and fields["owner"] != ns.owner:
            self.policy.enforce("metadef_admin", ctx, _target(ns))
        updated = replace(ns, updated_at=utcnow_aware(), **fields)
        await self.repo.update(updated)
        return await self.show_namespace(ctx, updated.namespace)

    async def delete_namespace(self, ctx: RequestContext, name: str) -> None:
        ns = await self._changeable(ctx, name, "delete_metadef_namespace")
        if ns.protected:
            raise Forbidden(f"Namespace {name} is protected and cannot be deleted.")
        if not await self.repo.delete(ns.id):
            raise NotFound(f"Metadata definition namespace={name} was not found.")

    # -- objects, properties, tags --------------------------------------------
    def _parse(self, kind: str, body: Any) -> Definition:
        if kind == "objects":
            return parse_object(body)
        if kind == "properties":
            return parse_property(body)
        return parse_tags([body])[0]

    async def list_definitions(self, ctx: RequestContext, name: str,
                               kind: str) -> list[Definition]:
        ns = await self.visible(ctx, name)
        self.policy.enforce(RULES[kind][2], ctx, _target(ns))
        return await self.repo.definitions(kind, ns.id)

    async def show_definition(self, ctx: RequestContext, name: str, kind: str,
                              item: str) -> Definition:
        ns = await self.visible(ctx, name)
        self.policy.enforce(RULES[kind][1], ctx, _target(ns))
        found = await self.repo.definition(kind, ns.id, item)
        if found is None:
            raise NotFound(f"Metadata definition {RULES[kind][0]} {item} was not found in "
                           f"namespace {name}.")
        return found

    async def create_definition(self, ctx: RequestContext, name: str, kind: str,
                                body: Any) -> Definition:
        ns = await self._changeable(ctx, name, RULES[kind][3])
        new = self._parse(kind, body)
        await self.repo.add(kind, ns.id, [new])
        return await self.show_definition(ctx, name, kind, new.name)

    async def update_definition(self, ctx: RequestContext, name: str, kind: str, item: str,
                                body: Any) -> Definition:
        ns = await self._changeable(ctx, name, RULES[kind][4])
        new = self._parse(kind, body)
        if not await self.repo.replace(kind, ns.id, item, new):
            raise NotFound(f"Metadata definition {RULES[kind][0]} {item} was not found in "
                           f"namespace {name}.")
        return await self.show_definition(ctx, name, kind, new.name)

    async def delete_definition(self, ctx: RequestContext, name: str, kind: str,
                                item: str | None) -> None:
        """Delete one definition, or every one of ``kind`` when ``item`` is None."""
        rule = RULES[kind][5] if item is not None or kind != "tags" else "delete_metadef_tags"
        ns = await self._changeable(ctx, name, rule)
        if ns.protected:
            raise Forbidden(f"Namespace {name} is protected; its {kind} cannot be deleted.")
        if not await self.repo.remove(kind, ns.id, item) and item is not None:
            raise NotFound(f"Metadata definition {RULES[kind][0]} {item} was not found in "
                           f"namespace {name}.")

    async def create_tags(self, ctx: RequestContext, name: str, body: Any,
                          append: bool) -> list[Definition]:
        ns = await self._changeable(ctx, name, "add_metadef_tags")
        tags = parse_tags(body.get("tags") if isinstance(body, dict) else None)
        await self.repo.add("tags", ns.id, tags, replace=not append)
        return await self.repo.definitions("tags", ns.id)

    # -- resource types ---------------------------------------------------------
    async def resource_types(self, ctx: RequestContext) -> list[Definition]:
        self.policy.enforce("list_metadef_resource_types", ctx)
        return await self.repo.resource_types()

    async def associations(self, ctx: RequestContext, name: str) -> list[Association]:
        ns = await self.visible(ctx, name)
        self.policy.enforce("get_metadef_resource_type", ctx, _target(ns))
        return (await self.repo.associations([ns.id]))[ns.id]

    async def associate(self, ctx: RequestContext, name: str, body: Any) -> Association:
        ns = await self._changeable(ctx, name, "add_metadef_resource_type_association")
        return await self.repo.associate(ns.id, parse_association(body))

    async def dissociate(self, ctx: RequestContext, name: str, resource_type: str) -> None:
        ns = await self._changeable(ctx, name, "remove_metadef_resource_type_association")
        if ns.protected:
            raise Forbidden(f"Namespace {name} is protected; its resource type associations "
                            "cannot be removed.")
        if not await self.repo.dissociate(ns.id, resource_type):
            raise NotFound(f"Resource type {resource_type} is not associated with namespace "
                           f"{name}.")


def _limit(raw: str | None, default: int = 25, maximum: int = 1000) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest(f"Invalid limit {raw!r}; expected a positive integer.")
    return min(int(raw), maximum)
