"""Console tokens: random, short-lived, and stored only as their sha256.

A token row says where one console is (host, port) and until when it may be
opened. The compute API writes rows (:func:`authorize`), the proxy reads
them (:func:`validate`) from the same compute database, so the proxy may run
in any process that reaches that database. Rows of a deleted server go with
it (``compute.teardown``); expired rows are swept whenever a token is issued.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import delete, select

from stratus.compute.models import ConsoleAuthToken, Instance
from stratus.db import Database
from stratus.settings import Settings


@dataclass(frozen=True)
class ConnectInfo:
    """What a valid token opens."""

    instance_uuid: str
    console_type: str
    host: str
    port: int
    internal_access_path: str | None
    compute_host: str | None  # the instance's host now (the proxy re-checks the port there)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def novnc_base_url(settings: Settings) -> str:
    """Nova's ``[vnc] novncproxy_base_url``; by default this cloud's own proxy."""
    return (settings.console.novncproxy_base_url
            or f"http://{settings.advertised_host}:{settings.ports.novncproxy}/vnc_lite.html")


def access_url(base: str, console_type: str, token: str) -> str:
    """The URL handed to the user, shaped as Nova shapes it.

    noVNC (since 1.1) takes the websocket path in its ``path`` parameter, so a
    novnc token rides inside it: ``vnc_lite.html?path=%3Ftoken%3D<token>``.
    """
    if console_type == "novnc":
        return f"{base}?{urlencode({'path': f'?token={token}'})}"
    return f"{base}?token={token}"


async def authorize(db: Database, *, instance_uuid: str, console_type: str, host: str,
                    port: int, internal_access_path: str | None, access_url_base: str,
                    ttl: int) -> str:
    """A new token for this console, valid for ``ttl`` seconds; only its hash is stored."""
    token = str(uuid.uuid4())
    now = int(time.time())
    async with db.session() as session:
        await session.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.expires <= now))
        session.add(ConsoleAuthToken(
            token_hash=digest(token), console_type=console_type, instance_uuid=instance_uuid,
            host=host, port=port, internal_access_path=internal_access_path,
            access_url_base=access_url_base, expires=now + ttl))
    return token


async def validate(db: Database, token: str) -> ConnectInfo | None:
    """What ``token`` opens, or None when it is unknown, expired, or its server is gone."""
    if not token or len(token) > 255:
        return None
    async with db.session() as session:
        row = (await session.execute(
            select(ConsoleAuthToken, Instance.host)
            .join(Instance, Instance.uuid == ConsoleAuthToken.instance_uuid)
            .where(ConsoleAuthToken.token_hash == digest(token),
                   ConsoleAuthToken.expires > int(time.time()),
                   Instance.deleted.is_(False)))).first()
    if row is None:
        return None
    tok, compute_host = row
    return ConnectInfo(instance_uuid=tok.instance_uuid, console_type=tok.console_type,
                       host=tok.host, port=tok.port,
                       internal_access_path=tok.internal_access_path,
                       compute_host=compute_host)

