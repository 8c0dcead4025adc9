"""The websocket end of the noVNC proxy: check the token, then relay bytes.

noVNC opens ``ws://<proxy>/?token=<token>`` (the console URL's ``path``
parameter); the token may also come in a ``path`` query parameter or a
``token`` cookie, as Nova's proxy accepts. Before the handshake completes the
proxy checks, in order:

1. the ``Origin`` header, when a browser sends one: its host must be the
   host the proxy was reached as (or one of ``console.allowed_origins``), so
   another site's page cannot open a console with a leaked token;
2. the token (hash, expiry, server not deleted);
3. with the guest's compute agent, that the console still listens where the
   token says: a port freed by a stopped guest may be another guest's now
   (Nova's ``validate_console_port``).

Any failure refuses the handshake (HTTP 403). Then the proxy connects to the
VNC server and copies bytes both ways in binary frames until either side
closes; it never reads the RFB stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect

from stratus.bus import Bus
from stratus.compute.rpc import AgentAPI
from stratus.console import tokens
from stratus.db import Database
from stratus.errors import StratusError
from stratus.settings import Settings

log = logging.getLogger("stratus.console")

CHUNK = 64 * 1024
# Seconds to reach the guest's VNC server or its agent before refusing.
CONNECT_TIMEOUT = 10.0
POLICY_VIOLATION = 1008


def token_of(websocket: WebSocket) -> str:
    query = websocket.query_params
    token = query.get("token", "")
    if not token and query.get("path"):
        token = parse_qs(urlsplit(query["path"]).query).get("token", [""])[0]
    return token or websocket.cookies.get("token", "")


def origin_refusal(websocket: WebSocket, allowed: tuple[str, ...]) -> str | None:
    """Why the ``Origin`` header rules this handshake out, or None (no header: not a
    browser, nothing to protect against)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin)
    if not parts.hostname or parts.scheme not in ("http", "https"):
        return f"Origin header {origin!r} is not valid"
    host = urlsplit("//" + websocket.headers.get("host", "")).hostname
    if parts.hostname != host and parts.hostname not in allowed:
        return f"Origin {origin!r} does not match this host"
    return None


class ConsoleProxy:
    """The websocket endpoint (``handle``), one per proxy service."""

    def __init__(self, db: Database, bus: Bus, settings: Settings) -> None:
        self.db = db
        self.agents = AgentAPI(bus, timeout=CONNECT_TIMEOUT)
        self.settings = settings

    async def handle(self, websocket: WebSocket) -> None:
        peer = websocket.client.host if websocket.client else "-"
        why = origin_refusal(websocket, self.settings.console.allowed_origins)
        info = None
        if why is None:
            info = await tokens.validate(self.db, token_of(websocket))
            why = "unknown or expired token" if info is None else None
        if info is not None and not await self._still_listening(info):
            why = f"the console of {info.instance_uuid} is no longer there"
        conn = None
        if info is not None and why is None:
            try:
                conn = await asyncio.wait_for(
                    asyncio.open_connection(info.host, info.port), CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as exc:
                why = f"cannot reach the VNC server of {info.instance_uuid}: {exc}"
        if conn is None or info is None:
            log.info("console proxy refused %s: %s", peer, why)
            await websocket.close(code=POLICY_VIOLATION)  # before accept: HTTP 403
            return
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol="binary" if "binary" in offered else None)
        log.info("console proxy: %s to %s (%s:%s)", peer, info.instance_uuid, info.host,
                 info.port)
        await relay(websocket, *conn)

    async def _still_listening(self, info: tokens.ConnectInfo) -> bool:
        if not info.compute_host:
            return False
        try:
            where = await self.agents.call(info.compute_host, "get_vnc_console",
                                           uuid=info.instance_uuid)
        except StratusError as exc:
            log.info("console of %s not confirmed by %s: %s", info.instance_uuid,
                     info.compute_host, exc)
            return False
        return bool(where.get("host") == info.host and int(where.get("port", 0)) == info.port)


async def relay(websocket: WebSocket, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    """Copy bytes both ways until one side closes, then close the other."""

    async def to_guest() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            writer.write(data)
            await writer.drain()

    async def to_browser() -> None:
        while chunk := await reader.read(CHUNK):
            await websocket.send_bytes(chunk)

    tasks = [asyncio.create_task(_quietly(to_guest())),
             asyncio.create_task(_quietly(to_browser()))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        with contextlib.suppress(Exception):  # already closed by the browser is fine
            await websocket.close()


async def _quietly(work: Coroutine[Any, Any, None]) -> None:
    """A relay direction ends when its peer goes away; that is not an error."""
    with contextlib.suppress(OSError, WebSocketDisconnect, RuntimeError,
                             asyncio.IncompleteReadError):
        await work
