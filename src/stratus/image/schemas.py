"""The JSON schema documents served at ``/v2/schemas/...`` (as Glance serves them)."""

from __future__ import annotations

from typing import Any

from stratus.image.domain import MemberStatus, Status, Visibility

UUID_PATTERN = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){12}$")


def _ro(kind: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "readOnly": True, "description": description, **extra}


def image_properties(disk_formats: tuple[str, ...],
                     container_formats: tuple[str, ...]) -> dict[str, Any]:
    return {
        "id": {"type": "string", "description": "An identifier for the image",
               "pattern": UUID_PATTERN},
        "name": {"type": ["null", "string"], "description": "Descriptive name for the image",
                 "maxLength": 255},
        "status": _ro("string", "Status of the image", enum=[s.value for s in Status]),
        "visibility": {"type": "string", "description": "Scope of image accessibility",
                       "enum": [v.value for v in Visibility]},
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean", "description": "If true, image will not appear in "
                      "default image list response."},
        "checksum": _ro(["null", "string"], "md5 hash of image contents.", maxLength=32),
        "os_hash_algo": _ro(["null", "string"], "Algorithm to calculate the os_hash_value",
                            maxLength=64),
        "os_hash_value": _ro(["null", "string"], "Hexdigest of the image contents using the "
                             "algorithm specified by the os_hash_algo", maxLength=128),
        "owner": {"type": ["null", "string"], "description": "Owner of the image",
                  "maxLength": 255},
        "size": _ro(["null", "integer"], "Size of image file in bytes"),
        "virtual_size": _ro(["null", "integer"], "Virtual size of image in bytes"),
        "container_format": {"type": ["null", "string"], "description": "Format of the container",
                             "enum": [None, *container_formats]},
        "disk_format": {"type": ["null", "string"], "description": "Format of the disk",
                        "enum": [None, *disk_formats]},
        "created_at": _ro("string", "Date and time of image registration"),
        "updated_at": _ro("string", "Date and time of the last image modification"),
        "tags": {"type": "array", "description": "List of strings related to the image",
                 "items": {"type": "string", "maxLength": 255}},
        "direct_url": _ro("string", "URL to access the image file kept in external store"),
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot "
                    "image."},
        "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required "
                     "to boot image."},
        "self": _ro("string", "An image self url"),
        "file": _ro("string", "An image file url"),
        "stores": _ro("string", "Store in which image data resides."),
        "schema": _ro("string", "An image schema url"),
        "locations": {"type": "array", "description": "A set of URLs to access the image file "
                      "kept in external store",
                      "items": {"type": "object", "required": ["url", "metadata"],
                                "properties": {"url": {"type": "string", "maxLength": 255},
                                               "metadata": {"type": "object"}}}},
        # Common custom properties (Glance's default schema-image.json).
        "kernel_id": {"type": ["null", "string"], "pattern": UUID_PATTERN,
                      "description": "ID of image stored in Glance that should be used as the "
                      "kernel when booting an AMI-style image.", "is_base": False},
        "ramdisk_id": {"type": ["null", "string"], "pattern": UUID_PATTERN,
                       "description": "ID of image stored in Glance that should be used as the "
                       "ramdisk when booting an AMI-style image.", "is_base": False},
        "instance_uuid": {"type": "string", "description": "Metadata which can be used to "
                          "record which instance this image is associated with.",
                          "is_base": False},
        "architecture": {"type": "string", "description": "Operating system architecture",
                         "is_base": False},
        "os_distro": {"type": "string", "description": "Common name of operating system "
                      "distribution", "is_base": False},
        "os_version": {"type": "string", "description": "Operating system version",
                       "is_base": False},
        "description": {"type": "string", "description": "A human-readable string describing "
                        "this image.", "is_base": False},
    }


LINKS = [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
         {"rel": "describedby", "href": "{schema}"}]


def image_schema(disk_formats: tuple[str, ...], container_formats: tuple[str, ...]
                 ) -> dict[str, Any]:
    return {"name": "image", "properties": image_properties(disk_formats, container_formats),
            "additionalProperties": {"type": "string"}, "links": LINKS}


def collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {name: {"type": "array", "items": item}, "first": {"type": "string"},
                       "next": {"type": "string"}, "schema": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


MEMBER = {
    "name": "member",
    "properties": {
        "created_at": {"type": "string", "description": "Date and time of image member creation"},
        "image_id": {"type": "string", "description": "An identifier for the image",
                     "pattern": UUID_PATTERN},
        "member_id": {"type": "string", "description": "An identifier for the image member "
                      "(tenantId)"},
        "status": {"type": "string", "description": "The status of this image member",
                   "enum": [s.value for s in MemberStatus]},
        "updated_at": {"type": "string", "description": "Date and time of last modification of "
                       "image member"},
        "schema": {"type": "string", "readOnly": True},
    },
}

TASK = {
    "name": "task",
    "properties": {
        "id": {"type": "string", "pattern": UUID_PATTERN},
        "type": {"type": "string", "enum": ["import", "api_image_import"]},
        "status": {"type": "string",
                   "enum": ["pending", "processing", "success", "failure"]},
        "input": {"type": ["null", "object"]},
        "result": {"type": ["null", "object"]},
        "owner": {"type": "string"},
        "message": {"type": "string"},
        "image_id": {"type": "string"},
        "request_id": {"type": "string"},
        "user_id": {"type": "string"},
        "expires_at": {"type": ["null", "string"]},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "self": {"type": "string"},
        "schema": {"type": "string"},
    },
}

# Metadata definition catalog schemas: names as Glance serves them.
METADEF_NAMES = {
    "metadefs/namespace": "namespace", "metadefs/namespaces": "namespaces",
    "metadefs/resource_type": "resource_type_association",
    "metadefs/resource_types": "resource_type_associations",
    "metadefs/object": "object", "metadefs/objects": "objects",
    "metadefs/property": "property", "metadefs/properties": "properties",
    "metadefs/tag": "tag", "metadefs/tags": "tags",
}


def all_schemas(disk_formats: tuple[str, ...], container_formats: tuple[str, ...]
                ) -> dict[str, dict[str, Any]]:
    img = image_schema(disk_formats, container_formats)
    out = {
        "image": img,
        "images": collection("images", img),
        "member": MEMBER,
        "members": {"name": "members",
                    "properties": {"members": {"type": "array", "items": MEMBER},
                                   "schema": {"type": "string"}},
                    "links": [{"rel": "schema", "href": "{schema}"}]},
        "task": TASK,
        "tasks": collection("tasks", TASK),
    }
    for path, name in METADEF_NAMES.items():
        out[path] = {"name": name, "properties": {}, "additionalProperties": True}
    return out
