"""Images as the API sees them: states, fields and the rules for changing them.

No SQL and no HTTP here. The HTTP edge turns requests into calls on these
functions; the repository stores what they return.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from stratus.errors import BadRequest, Conflict, Forbidden


class Status(StrEnum):
    QUEUED = "queued"
    SAVING = "saving"
    ACTIVE = "active"
    KILLED = "killed"
    DELETED = "deleted"
    PENDING_DELETE = "pending_delete"
    DEACTIVATED = "deactivated"
    UPLOADING = "uploading"  # data staged (glance-direct), waiting for import
    IMPORTING = "importing"


class Visibility(StrEnum):
    PUBLIC = "public"
    COMMUNITY = "community"
    SHARED = "shared"
    PRIVATE = "private"


class MemberStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


# Fields the server computes; a client may never set them.
READ_ONLY = frozenset({"created_at", "updated_at", "status", "checksum", "size", "virtual_size",
                       "direct_url", "self", "file", "schema", "id", "os_hash_algo",
                       "os_hash_value", "stores"})
RESERVED = frozenset({"location", "deleted", "deleted_at"})
RESERVED_PREFIX = "os_glance"
# Base fields, stored as columns; everything else is a custom property.
BASE = ("name", "visibility", "protected", "os_hidden", "owner", "disk_format",
        "container_format", "min_disk", "min_ram", "tags")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
MAX_STRING = 255
MAX_INT32 = 2**31 - 1


@dataclass(frozen=True)
class Formats:
    disk: tuple[str, ...]
    container: tuple[str, ...]


@dataclass
class Image:
    id: str
    status: Status
    visibility: Visibility
    owner: str | None
    created_at: datetime
    updated_at: datetime
    name: str | None = None
    protected: bool = False
    os_hidden: bool = False
    disk_format: str | None = None
    container_format: str | None = None
    min_disk: int = 0
    min_ram: int = 0
    size: int | None = None
    virtual_size: int | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    location: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return self.status in (Status.ACTIVE, Status.DEACTIVATED) and self.location is not None

    def copy(self) -> Image:
        return replace(self, properties=dict(self.properties), tags=list(self.tags))


def is_image_id(value: str) -> bool:
    return bool(UUID_RE.match(value))


def new_image_id() -> str:
    return str(uuid.uuid4())


# -- validation of single fields ----------------------------------------------

def check_field(name: str, value: Any, formats: Formats) -> Any:
    """Validate one base field's value; return it normalized or raise 400."""
    if name == "name":
        if value is not None and not isinstance(value, str):
            raise BadRequest("Invalid value for 'name': must be a string or null.")
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise BadRequest(f"Invalid value for 'name': longer than {MAX_STRING} characters.")
        return value
    if name == "visibility":
        if value not in set(Visibility):
            raise BadRequest(f"Invalid visibility {value!r}; expected one of "
                             f"{', '.join(v.value for v in Visibility)}.")
        return Visibility(value)
    if name in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise BadRequest(f"Invalid value for {name!r}: must be a boolean.")
        return value
    if name == "owner":
        if value is not None and (not isinstance(value, str) or len(value) > MAX_STRING):
            raise BadRequest("Invalid value for 'owner': must be a string of at most 255 "
                             "characters or null.")
        return value
    if name in ("disk_format", "container_format"):
        allowed = formats.disk if name == "disk_format" else formats.container
        if value is not None and value not in allowed:
            raise BadRequest(f"Invalid {name} {value!r}; expected one of {', '.join(allowed)}.")
        return value
    if name in ("min_disk", "min_ram"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"Invalid value for {name!r}: must be an integer.")
        if value < 0:
            raise BadRequest(f"Invalid value for {name!r}: cannot be a negative value.")
        if value > MAX_INT32:
            raise BadRequest(f"Invalid value for {name!r}: too large.")
        return value
    if name == "tags":
        if not isinstance(value, list):
            raise BadRequest("Invalid value for 'tags': must be a list of strings.")
        out: list[str] = []
        for tag in value:
            out.append(check_tag(tag))
        return list(dict.fromkeys(out))
    raise AssertionError(name)


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag:
        raise BadRequest("Invalid tag: must be a non-empty string.")
    if len(tag) > MAX_STRING:
        raise BadRequest(f"Invalid tag: longer than {MAX_STRING} characters.")
    return tag


def check_property(name: str, value: Any) -> str:
    check_attribute_name(name)
    if not isinstance(value, str):
        raise BadRequest(f"Invalid value for property {name!r}: custom properties must be "
                         "strings.")
    if name in ("kernel_id", "ramdisk_id") and value and not is_image_id(value):
        raise BadRequest(f"Invalid value for {name!r}: must be an image id (UUID).")
    return value


def check_attribute_name(name: str) -> None:
    if name in READ_ONLY:
        raise Forbidden(f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{name}' is reserved.")
    if not name or len(name) > MAX_STRING:
        raise BadRequest("Custom property names must be 1 to 255 characters long.")


# -- create ----------------------------------------------------------------

@dataclass(frozen=True)
class NewImage:
    id: str
    fields: dict[str, Any]
    properties: dict[str, str]
    tags: list[str]


def parse_create(body: dict[str, Any], formats: Formats) -> NewImage:
    """Split and validate a ``POST /v2/images`` body."""
    body = dict(body)
    image_id = body.pop("id", None)
    if image_id is None:
        image_id = new_image_id()
    elif not isinstance(image_id, str) or not is_image_id(image_id):
        raise BadRequest("Invalid value for 'id': must be a UUID.")
    for key in ("self", "file", "schema", "direct_url", "stores"):
        if key in body:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    fields: dict[str, Any] = {}
    tags: list[str] = []
    properties: dict[str, str] = {}
    for key, value in body.items():
        if key == "tags":
            tags = check_field("tags", value, formats)
        elif key in BASE:
            fields[key] = check_field(key, value, formats)
        else:
            properties[key] = check_property(key, value)
    return NewImage(image_id.lower(), fields, properties, tags)


# -- JSON patch --------------------------------------------------------------

PATCH_TYPES = {
    "application/openstack-images-v2.0-json-patch": 4,
    "application/openstack-images-v2.1-json-patch": 10,
}
OPS = ("add", "remove", "replace")


@dataclass(frozen=True)
class Change:
    op: str
    path: str  # the one attribute the change is about
    value: Any = None


def decode_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise BadRequest("A JSON pointer must be a string.")
    if not pointer.startswith("/"):
        raise BadRequest(f"Pointer `{pointer}` does not start with \"/\".")
    if re.search(r"/\s*?/", pointer[1:]):
        raise BadRequest(f"Pointer `{pointer}` contains adjacent \"/\".")
    if len(pointer) > 1 and pointer.endswith("/"):
        raise BadRequest(f"Pointer `{pointer}` ends with \"/\".")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise BadRequest(f"Pointer `{pointer}` contains \"~\" not part of a recognized escape "
                         "sequence.")
    parts = [p.replace("~1", "/").replace("~0", "~").strip()
             for p in pointer.lstrip("/").split("/")]
    if parts == [""]:
        raise BadRequest(f"Pointer `{pointer}` does not contain a valid token.")
    return parts


def parse_patch(body: Any, draft: int) -> list[Change]:
    """Read a JSON-patch document of either image media type."""
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        if draft == 10:
            op = raw.get("op")
            if op not in OPS:
                raise BadRequest(f"Invalid operation: `{op}`. It must be one of the following: "
                                 f"{', '.join(OPS)}.")
            if "path" not in raw:
                raise BadRequest("Unable to find 'path' in JSON Schema change.")
            pointer = raw["path"]
        else:
            present = [k for k in OPS if k in raw]
            if len(present) != 1:
                raise BadRequest('Operation objects must contain exactly one member named '
                                 '"add", "remove", or "replace".')
            op = present[0]
            pointer = raw[op]
        path = decode_pointer(pointer)
        if len(path) != 1:
            raise BadRequest(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
        if op != "remove" and "value" not in raw:
            raise BadRequest(f'Operation "{op}" requires a member named "value".')
        changes.append(Change(op, path[0], raw.get("value")))
    return changes


def apply_changes(image: Image, changes: list[Change], formats: Formats) -> Image:
    """The image after ``changes``; the input is left untouched.

    Mirrors Glance: read-only and reserved attributes are 403, removing a
    base attribute is 403, replacing or removing a property that does not
    exist is 409, values are validated like on create.
    """
    out = image.copy()
    for change in changes:
        name = change.path
        check_attribute_name(name)
        if name == "locations":
            raise Forbidden("It's not allowed to update locations if locations are invisible.")
        if change.op == "remove":
            if name in BASE:
                raise Forbidden(f"Property {name} may not be removed.")
            if name not in out.properties:
                raise Conflict(f"Property {name} does not exist.")
            del out.properties[name]
            continue
        if name in BASE:
            value = check_field(name, change.value, formats)
            if name == "tags":
                out.tags = value
            else:
                setattr(out, name, value)
            continue
        if change.op == "replace" and name not in out.properties:
            raise Conflict(f"Property {name} does not exist.")
        out.properties[name] = check_property(name, change.value)
    return out
