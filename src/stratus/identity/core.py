"""The identity service's shared state and the small helpers every module uses.

:class:`Identity` holds the database, the hasher, the token codec and the
in-memory caches (roles and implications, catalog, validated tokens). Every
write that can change what a token means calls :meth:`Identity.changed`,
which drops the caches; so a removed role, a disabled project or a deleted
user take effect on the next validation in this process. Other identity
processes see the change when their cache entries age out
(``identity.token_cache_ttl``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.db import Database
from stratus.errors import BadRequest, Conflict, NotFound
from stratus.identity.passwords import Hasher
from stratus.identity.tokens import KeyRepository, TokenCodec
from stratus.settings import Settings

Row = dict[str, Any]

DEFAULT_DOMAIN_ID = "default"


class Identity:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.config = settings.identity
        self.db = db
        self.hasher = Hasher(self.config.password_hash_rounds)
        self.keys = KeyRepository(settings.data_dir / "identity" / "fernet-keys",
                                  self.config.max_active_keys)
        self.codec = TokenCodec(self.keys)
        self.base_url = settings.endpoint("identity")
        self.generation = 0
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def changed(self) -> None:
        """Something a token depends on changed: drop every derived cache."""
        self.generation += 1
        for listener in self._listeners:
            listener()

    @asynccontextmanager
    async def write(self, kind: str = "") -> AsyncIterator[AsyncSession]:
        """A write transaction: duplicate keys become 409, caches are dropped afterwards."""
        try:
            async with self.db.session() as session:
                yield session
        except IntegrityError as exc:
            text = str(exc.orig) if exc.orig is not None else str(exc)
            if "FOREIGN KEY" in text.upper():
                raise BadRequest(f"The {kind or 'request'} refers to something that does not "
                                 "exist.") from None
            raise Conflict(f"Conflict occurred attempting to store {kind or 'resource'} - "
                           "Duplicate entry.") from None
        self.changed()

    def link(self, path: str) -> dict[str, str]:
        return {"self": f"{self.base_url}/v3/{path}"}


async def get_row(session: AsyncSession, table: Table, row_id: str, kind: str,
                  *, message: str | None = None) -> Row:
    row = (await session.execute(select(table).where(table.c.id == row_id))).mappings().first()
    if row is None:
        raise NotFound(message or f"Could not find {kind}: {row_id}.")
    return dict(row)


async def find_row(session: AsyncSession, table: Table, **where: Any) -> Row | None:
    stmt = select(table)
    for key, value in where.items():
        stmt = stmt.where(table.c[key] == value)
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


# --- request validation -----------------------------------------------------

_MISSING = object()


def text(body: Mapping[str, Any], key: str, *, required: bool = False, max_len: int = 255,
         nullable: bool = False, default: Any = _MISSING, strip: bool = False) -> Any:
    """A string field of a request body, with Keystone's 400s."""
    if key not in body:
        if required:
            raise BadRequest(f"Invalid input for field '{key}': '{key}' is a required property.")
        return None if default is _MISSING else default
    value = body[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{key}': {value!r} is not of type 'string'.")
    if strip:
        value = value.strip()
    if required and not value.strip():
        raise BadRequest(f"Invalid input for field '{key}': it must not be empty.")
    if len(value) > max_len:
        raise BadRequest(f"Invalid input for field '{key}': longer than {max_len} characters.")
    return value


def boolean(body: Mapping[str, Any], key: str, default: Any = _MISSING) -> Any:
    if key not in body:
        return None if default is _MISSING else default
    value = body[key]
    if not isinstance(value, bool):
        raise BadRequest(f"Invalid input for field '{key}': {value!r} is not of type 'boolean'.")
    return value


def query_bool(value: str | None) -> bool | None:
    """Keystone's truthiness for query strings: ``?enabled`` / ``=true`` / ``=0``."""
    if value is None:
        return None
    return value.lower() not in ("0", "false", "no", "off")


_NAME_BAD = re.compile(r"[\x00-\x1f]")


def check_name(name: str, kind: str) -> str:
    if _NAME_BAD.search(name):
        raise BadRequest(f"Invalid {kind} name: control characters are not allowed.")
    return name


def extras(body: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    """Unknown attributes Keystone keeps and returns as-is (``email`` on users...)."""
    return {k: v for k, v in body.items() if k not in known and k not in ("links", "id")}
