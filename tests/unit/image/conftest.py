"""The image API in-process over ASGI, with a stand-in token validator.

These are unit tests of the image service: identity is replaced by a table
of tokens, everything else (database, migrations, store, bus) is real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratus.api.context import RequestContext
from stratus.errors import Unauthorized
from stratus.runtime import Runtime, build
from stratus.settings import load_settings

PERSONAS = {
    "admin": RequestContext(user_id="u-admin", project_id="p-admin", roles=("admin",)),
    "alice": RequestContext(user_id="u-alice", project_id="p-alice", roles=("member",)),
    "bob": RequestContext(user_id="u-bob", project_id="p-bob", roles=("member",)),
    "carol": RequestContext(user_id="u-carol", project_id="p-carol", roles=("member",)),
    "reader": RequestContext(user_id="u-reader", project_id="p-alice", roles=("reader",)),
}


class TableValidator:
    async def validate(self, token: str) -> RequestContext:
        if token not in PERSONAS:
            raise Unauthorized("The request you have made requires authentication.")
        return PERSONAS[token]


@dataclass
class ImageAPI:
    runtime: Runtime
    http: httpx.AsyncClient
    store_root: Path
    events: list[tuple[str, dict[str, Any]]]

    def as_(self, who: str) -> dict[str, str]:
        return {"X-Auth-Token": who}

    async def create(self, who: str = "alice", **body: Any) -> dict[str, Any]:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        resp = await self.http.post("/v2/images", json=body, headers=self.as_(who))
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    async def upload(self, image_id: str, data: bytes, who: str = "alice") -> httpx.Response:
        return await self.http.put(f"/v2/images/{image_id}/file", content=data,
                                   headers={**self.as_(who),
                                            "Content-Type": "application/octet-stream"})

    async def show(self, image_id: str, who: str = "alice") -> httpx.Response:
        return await self.http.get(f"/v2/images/{image_id}", headers=self.as_(who))

    async def patch(self, image_id: str, ops: list[dict[str, Any]],
                    who: str = "alice") -> httpx.Response:
        return await self.http.patch(
            f"/v2/images/{image_id}", json=ops,
            headers={**self.as_(who),
                     "Content-Type": "application/openstack-images-v2.1-json-patch"})


async def make_api(tmp_path: Path, **image_settings: Any) -> ImageAPI:
    settings = load_settings(environ={}, data_dir=tmp_path, services="image",
                             image=image_settings or None)
    runtime = await build(settings)
    runtime.token_validator = TableValidator()
    await runtime.bus.start()
    events: list[tuple[str, dict[str, Any]]] = []

    async def record(event: str, payload: dict[str, Any]) -> None:
        events.append((event, payload))

    await runtime.bus.subscribe("image.*", record)
    service = runtime.services["image"]
    await service.start()
    assert service.app is not None
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app),
                             base_url="http://image.test")
    return ImageAPI(runtime, http, tmp_path / "images", events)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ImageAPI]:
    made = await make_api(tmp_path)
    yield made
    await made.http.aclose()
    await made.runtime.services["image"].stop()
    await made.runtime.bus.stop()
    await made.runtime.db.dispose()
