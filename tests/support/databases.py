"""Fresh, uniquely named databases on the real MariaDB and PostgreSQL servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from stratus.db import normalize_url
from tests.support.services import ensure_mariadb, ensure_postgres

MARIADB_SERVER = "mysql://root@127.0.0.1:3306/"
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def _server_database(server_url: str, create: str, drop: str) -> Iterator[str]:
    """Create a uniquely named database for this run, yield its name, drop it."""
    name = f"stratus_test_{uuid.uuid4().hex[:12]}"

    async def run(statement: str) -> None:
        engine = create_async_engine(normalize_url(server_url), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement.format(name=name)))
        finally:
            await engine.dispose()

    asyncio.run(run(create))
    try:
        yield name
    finally:
        asyncio.run(run(drop))


@contextmanager
def mariadb_database() -> Iterator[str]:
    """The URL of a new empty MariaDB database, dropped afterwards."""
    ensure_mariadb()
    with _server_database(MARIADB_SERVER, "CREATE DATABASE {name}",
                          "DROP DATABASE IF EXISTS {name}") as name:
        yield f"mysql://root@127.0.0.1:3306/{name}"


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new empty PostgreSQL database, dropped afterwards."""
    ensure_postgres()
    with _server_database(POSTGRES_SERVER, "CREATE DATABASE {name}",
                          "DROP DATABASE IF EXISTS {name} WITH (FORCE)") as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
