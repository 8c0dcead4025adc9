"""How images, members and tasks look on the wire (Glance v2 JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stratus.image.domain import Image, Status
from stratus.image.repo import Member, Task

STORE_ID = "file"


def stamp(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else None


def image(img: Image) -> dict[str, Any]:
    body: dict[str, Any] = dict(img.properties)
    body.update({
        "id": img.id,
        "name": img.name,
        "status": str(img.status),
        "visibility": str(img.visibility),
        "protected": img.protected,
        "os_hidden": img.os_hidden,
        "owner": img.owner,
        "disk_format": img.disk_format,
        "container_format": img.container_format,
        "min_disk": img.min_disk,
        "min_ram": img.min_ram,
        "size": img.size if img.status in (Status.ACTIVE, Status.DEACTIVATED, Status.UPLOADING,
                                           Status.IMPORTING) else None,
        "virtual_size": img.virtual_size,
        "checksum": img.checksum,
        "os_hash_algo": img.os_hash_algo,
        "os_hash_value": img.os_hash_value,
        "tags": list(img.tags),
        "created_at": stamp(img.created_at),
        "updated_at": stamp(img.updated_at),
        "self": f"/v2/images/{img.id}",
        "file": f"/v2/images/{img.id}/file",
        "schema": "/v2/schemas/image",
    })
    if img.has_data:
        body["stores"] = STORE_ID
    return body


def notification(img: Image) -> dict[str, Any]:
    body = image(img)
    for key in ("self", "file", "schema"):
        body.pop(key, None)
    return body


def member(m: Member) -> dict[str, Any]:
    return {"image_id": m.image_id, "member_id": m.member, "status": str(m.status),
            "created_at": stamp(m.created_at), "updated_at": stamp(m.updated_at),
            "schema": "/v2/schemas/member"}


def task(t: Task) -> dict[str, Any]:
    return {"id": t.id, "type": t.type, "status": t.status, "owner": t.owner,
            "user_id": t.user_id, "request_id": t.request_id, "image_id": t.image_id,
            "input": t.input, "result": t.result, "message": t.message,
            "created_at": stamp(t.created_at), "updated_at": stamp(t.updated_at),
            "expires_at": stamp(t.expires_at), "self": f"/v2/tasks/{t.id}",
            "schema": "/v2/schemas/task"}
