"""The metadata definitions catalog: namespaces and what they define.

A namespace groups property definitions, objects (named sets of
properties), tags and the resource types (``OS::Glance::Image``...) they
apply to. Definitions are JSON-schema fragments that clients such as Horizon
use to offer metadata; the cloud stores them and never interprets them.

No SQL and no HTTP here: the parse functions turn request bodies into these
records or raise 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from stratus.errors import BadRequest

MAX_NAME = 80
PROPERTY_TYPES = frozenset({"array", "boolean", "integer", "number", "object", "string",
                            "null"})
# Keys a property definition may carry besides name, title and type.
PROPERTY_KEYS = frozenset({"title", "type", "description", "default", "enum", "readonly",
                           "minimum", "maximum", "minLength", "maxLength", "pattern",
                           "items", "minItems", "maxItems", "uniqueItems", "additionalItems",
                           "operators"})


class NamespaceVisibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


@dataclass
class Namespace:
    id: str
    namespace: str
    visibility: NamespaceVisibility
    protected: bool
    owner: str | None
    created_at: datetime
    updated_at: datetime
    display_name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Association:
    """A namespace applies to a resource type, optionally with a property prefix."""

    name: str
    prefix: str | None = None
    properties_target: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Definition:
    """A named JSON document in a namespace: a property, an object or a tag."""

    name: str
    body: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class NamespaceContents:
    """What a namespace create request may carry besides the namespace itself."""

    associations: list[Association] = field(default_factory=list)
    properties: list[Definition] = field(default_factory=list)
    objects: list[Definition] = field(default_factory=list)
    tags: list[Definition] = field(default_factory=list)


# -- parsing ------------------------------------------------------------------

def name_of(body: dict[str, Any], key: str = "name", what: str = "name") -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{what}' is required and must be a non-empty string.")
    if len(value) > MAX_NAME:
        raise BadRequest(f"'{what}' is longer than {MAX_NAME} characters.")
    if "/" in value:
        raise BadRequest(f"'{what}' may not contain '/'.")
    return value


def _optional_str(body: dict[str, Any], key: str, limit: int | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string.")
    if limit is not None and len(value) > limit:
        raise BadRequest(f"'{key}' is longer than {limit} characters.")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object.")
    return value


def parse_namespace(body: Any, *, current: Namespace | None = None
                    ) -> tuple[dict[str, Any], NamespaceContents]:
    """Namespace columns from a create (or, with ``current``, an update) body."""
    body = _object(body, "The request body")
    fields: dict[str, Any] = {"namespace": name_of(body, "namespace", "namespace")}
    fields["display_name"] = _optional_str(body, "display_name", MAX_NAME)
    fields["description"] = _optional_str(body, "description", 500)
    visibility = body.get("visibility", current.visibility if current else "private")
    if visibility not in set(NamespaceVisibility):
        raise BadRequest(f"Invalid visibility {visibility!r}; expected public or private.")
    fields["visibility"] = NamespaceVisibility(visibility)
    protected = body.get("protected", current.protected if current else False)
    if not isinstance(protected, bool):
        raise BadRequest("'protected' must be a boolean.")
    fields["protected"] = protected
    if "owner" in body:
        owner = body["owner"]
        if owner is not None and (not isinstance(owner, str) or len(owner) > 255):
            raise BadRequest("'owner' must be a project id.")
        fields["owner"] = owner
    contents = NamespaceContents()
    if current is None:
        assocs = body.get("resource_type_associations") or []
        if not isinstance(assocs, list):
            raise BadRequest("'resource_type_associations' must be a list.")
        contents.associations = [parse_association(a) for a in assocs]
        props = _object(body.get("properties") or {}, "'properties'")
        contents.properties = [parse_property({**_object(v, f"Property {k!r}"), "name": k})
                               for k, v in props.items()]
        objects = body.get("objects") or []
        if not isinstance(objects, list):
            raise BadRequest("'objects' must be a list.")
        contents.objects = [parse_object(o) for o in objects]
        contents.tags = parse_tags(body.get("tags") or [])
    return fields, contents


def parse_association(body: Any) -> Association:
    body = _object(body, "A resource type association")
    return Association(name=name_of(body), prefix=_optional_str(body, "prefix", MAX_NAME),
                       properties_target=_optional_str(body, "properties_target", MAX_NAME))


def parse_property(body: Any) -> Definition:
    body = _object(body, "A property definition")
    name = name_of(body)
    unknown = set(body) - PROPERTY_KEYS - {"name"}
    if unknown:
        raise BadRequest(f"Unknown property definition keys: {', '.join(sorted(unknown))}.")
    if not isinstance(body.get("title"), str):
        raise BadRequest(f"Property {name!r}: 'title' is required and must be a string.")
    if body.get("type") not in PROPERTY_TYPES:
        raise BadRequest(f"Property {name!r}: 'type' must be one of "
                         f"{', '.join(sorted(PROPERTY_TYPES))}.")
    if "enum" in body and not isinstance(body["enum"], list):
        raise BadRequest(f"Property {name!r}: 'enum' must be a list.")
    return Definition(name, {k: v for k, v in body.items() if k != "name"})


def parse_object(body: Any) -> Definition:
    body = _object(body, "An object definition")
    name = name_of(body)
    description = _optional_str(body, "description", 500)
    required = body.get("required") or []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise BadRequest(f"Object {name!r}: 'required' must be a list of property names.")
    props = _object(body.get("properties") or {}, f"Object {name!r}: 'properties'")
    checked = {k: parse_property({**_object(v, f"Property {k!r}"), "name": k}).body
               for k, v in props.items()}
    doc: dict[str, Any] = {"required": required, "properties": checked}
    if description is not None:
        doc["description"] = description
    return Definition(name, doc)


def parse_tags(items: Any) -> list[Definition]:
    if not isinstance(items, list):
        raise BadRequest("'tags' must be a list of {\"name\": ...} objects.")
    tags = [Definition(name_of(_object(t, "A tag"))) for t in items]
    names = [t.name for t in tags]
    if len(set(names)) != len(names):
        raise BadRequest("Duplicate tag names in the request.")
    return tags
