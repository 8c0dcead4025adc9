"""Alembic migrations, one history per service.

Each service with tables has ``stratus/<service>/migrations/`` holding an
``env.py`` that calls :func:`stratus.db.alembic_env.run` and a ``versions/``
folder. Every history keeps its own version table
(``alembic_version_<service>``), so services migrate independently even when
they share one database.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection

from stratus.db.engine import Database

SERVICES_WITH_TABLES = ("identity", "image", "compute", "network", "volume")


def migrations_dir(service: str) -> Path | None:
    try:
        path = Path(str(resources.files(f"stratus.{service.replace('-', '_')}") / "migrations"))
    except ModuleNotFoundError:
        return None
    return path if (path / "env.py").exists() else None


def _config(service: str, path: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(path))
    cfg.set_main_option("version_table", f"alembic_version_{service.replace('-', '_')}")
    cfg.attributes["service"] = service
    return cfg


async def upgrade(db: Database, services: tuple[str, ...] | list[str] = SERVICES_WITH_TABLES,
                  revision: str = "head") -> list[str]:
    """Bring every named service's tables to ``revision``; returns those migrated."""
    done = []
    for service in services:
        path = migrations_dir(service)
        if path is None:
            continue
        cfg = _config(service, path)

        def run(sync_conn: object, cfg: Config = cfg) -> None:
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, revision)

        async with db.engine.begin() as conn:
            await conn.run_sync(run)
        done.append(service)
    return done


async def current(db: Database, service: str) -> str | None:
    """The revision a service's tables are at, or None if never migrated."""
    from alembic.runtime.migration import MigrationContext

    def read(sync_conn: object) -> str | None:
        ctx = MigrationContext.configure(
            sync_conn, opts={"version_table": f"alembic_version_{service.replace('-', '_')}"}
        )
        return ctx.get_current_revision()

    conn: AsyncConnection
    async with db.engine.connect() as conn:
        return await conn.run_sync(read)
