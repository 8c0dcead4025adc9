"""Async SQLAlchemy engines for SQLite (WAL), MariaDB/MySQL and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "mysql": "mysql+aiomysql",
    "mariadb": "mysql+aiomysql",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def normalize_url(url: str) -> str:
    """Give a plain ``mysql://``/``postgresql://``/``sqlite://`` URL its async driver."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if "+" in scheme:
        base, driver = scheme.split("+", 1)
        if base in ("mysql", "mariadb") and driver != "aiomysql":
            scheme = "mysql+aiomysql"
        elif base in ("postgresql", "postgres") and driver != "asyncpg":
            scheme = "postgresql+asyncpg"
        elif base == "sqlite" and driver != "aiosqlite":
            scheme = "sqlite+aiosqlite"
        return f"{scheme}://{rest}"
    if scheme not in _DRIVERS:
        raise ValueError(f"unsupported database scheme {scheme!r}; use sqlite, mysql or postgresql")
    return f"{_DRIVERS[scheme]}://{rest}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Database:
    """One engine and its session factory; built by the wiring function."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            if parsed.database not in (None, "", ":memory:"):
                from pathlib import Path

                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_recycle=3600, pool_size=10, max_overflow=20)
            if self.dialect == "mysql":
                kwargs["isolation_level"] = "READ COMMITTED"
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    def writer(self) -> AbstractAsyncContextManager[object]:
        """Hold this around a write transaction to queue writers in-process on SQLite.

        SQLite has one writer at a time and its busy handler backs off with
        sleeps of up to 100 ms; queueing our own writers on one lock is far
        faster under contention. MariaDB/PostgreSQL need no queue.
        """
        return self._write_lock if self._write_lock is not None else nullcontext()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
