"""Request helpers shared by the image handlers."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request

from stratus.errors import BadRequest, RangeNotSatisfiable, UnsupportedMediaType
from stratus.image.domain import PATCH_TYPES

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def patch_body(request: Request) -> tuple[Any, int]:
    ctype = media_type(request)
    if ctype not in PATCH_TYPES:
        allowed = ", ".join(sorted(PATCH_TYPES))
        raise UnsupportedMediaType(f"Image PATCH expects Content-Type one of: {allowed}",
                                   headers={"Accept-Patch": allowed})
    raw = await request.body()
    if not raw:
        raise BadRequest("Body expected in request.")
    try:
        return json.loads(raw), PATCH_TYPES[ctype]
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Malformed JSON in request body: {exc}") from None


def data_stream(request: Request) -> tuple[AsyncIterator[bytes], int | None]:
    """The request body as a stream of chunks, and its declared length."""
    ctype = media_type(request)
    if ctype != "application/octet-stream":
        raise UnsupportedMediaType("Image data must be sent as application/octet-stream.")
    length = request.headers.get("content-length")
    declared: int | None = None
    if length is not None:
        if not length.isdigit():
            raise BadRequest(f"Invalid Content-Length {length!r}.")
        declared = int(length)

    async def chunks() -> AsyncIterator[bytes]:
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                yield chunk
        except ClientDisconnect:
            raise ConnectionAbortedError("the client disconnected during the upload") from None
        if declared is not None and received != declared:
            raise ConnectionAbortedError(
                f"the upload ended after {received} of {declared} bytes")

    return chunks(), declared


def byte_range(request: Request) -> tuple[int | None, int | None] | None:
    header = request.headers.get("range")
    if not header:
        return None
    match = RANGE_RE.match(header.strip().replace(" ", ""))
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable(f"Unsupported Range header {header!r}; use a single "
                                  "'bytes=first-last' range.")
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(2)) if match.group(2) else None
    return first, last
