"""Console tokens and the proxy's checks, on the in-process compute cloud (fake driver)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from stratus.api.app import build_app
from stratus.api.faults import FaultStyle
from stratus.api.metrics import Metrics
from stratus.compute.models import ConsoleAuthToken
from stratus.console import tokens
from stratus.console.proxy import ConsoleProxy
from stratus.console.service import page_routes
from tests.unit.compute.conftest import Cloud

VNC = {"remote_console": {"protocol": "vnc", "type": "novnc"}}


async def _console_token(cloud: Cloud) -> tuple[str, str]:
    async with cloud.client() as c:
        server = await cloud.create(c)
        resp = await c.post(f"/servers/{server['id']}/remote-consoles", json=VNC)
    assert resp.status_code == 200, resp.text
    path = parse_qs(urlsplit(resp.json()["remote_console"]["url"]).query)["path"][0]
    return server["id"], parse_qs(urlsplit(path).query)["token"][0]


def _close_fake_vnc(cloud: Cloud) -> None:
    server = cloud.driver()._vnc
    if server is not None:
        server.close()


async def test_a_console_token_is_stored_only_as_its_sha256(cloud: Cloud) -> None:
    server_id, token = await _console_token(cloud)
    _close_fake_vnc(cloud)
    async with cloud.runtime.db.session() as session:
        rows = list(await session.scalars(select(ConsoleAuthToken)))
    assert len(rows) == 1
    row = rows[0]
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(getattr(row, c.key)) for c in ConsoleAuthToken.__table__.columns}
    assert row.instance_uuid == server_id and row.console_type == "novnc"


async def test_a_console_token_expires_after_token_ttl(cloud: Cloud,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _, token = await _console_token(cloud)
    _close_fake_vnc(cloud)
    db = cloud.runtime.db
    assert await tokens.validate(db, token) is not None
    now = time.time()
    monkeypatch.setattr(tokens.time, "time", lambda: now + 590)
    assert await tokens.validate(db, token) is not None
    monkeypatch.setattr(tokens.time, "time", lambda: now + 610)  # the default ttl is 600 s
    assert await tokens.validate(db, token) is None


async def test_the_proxy_refuses_a_token_whose_port_another_guest_may_have_now(
        cloud: Cloud) -> None:
    _, token = await _console_token(cloud)
    db = cloud.runtime.db
    info = await tokens.validate(db, token)
    assert info is not None
    proxy = ConsoleProxy(db, cloud.runtime.bus, cloud.runtime.settings)
    assert await proxy._still_listening(info)
    stale = await tokens.authorize(db, instance_uuid=info.instance_uuid, console_type="novnc",
                                   host=info.host, port=info.port + 1,
                                   internal_access_path=None, access_url_base="", ttl=60)
    stale_info = await tokens.validate(db, stale)
    assert stale_info is not None and not await proxy._still_listening(stale_info)
    _close_fake_vnc(cloud)


def _pages(root: Path) -> httpx.AsyncClient:
    app = build_app("novncproxy", page_routes(root), metrics=Metrics(),
                    style=FaultStyle.KEYSTONE)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy")


async def test_without_novnc_installed_its_pages_say_how_to_get_it(tmp_path: Path) -> None:
    async with _pages(tmp_path / "absent") as client:
        page = await client.get("/vnc_lite.html")
        assert page.status_code == 404 and "apt-get install novnc" in page.text
        assert (await client.get("/")).status_code == 200


async def test_novnc_files_are_served_from_the_configured_directory(tmp_path: Path) -> None:
    (tmp_path / "vnc_lite.html").write_text("<title>noVNC</title>")
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "rfb.js").write_text("export default class RFB {}")
    async with _pages(tmp_path) as client:
        assert "noVNC" in (await client.get("/vnc_lite.html")).text
        assert (await client.get("/core/rfb.js")).status_code == 200
        assert (await client.get("/core/%2e%2e/%2e%2e/etc/passwd")).status_code == 404
