"""The database layer on SQLite, MariaDB and PostgreSQL.

MariaDB (root, no password) and PostgreSQL (trust) are the real servers on
127.0.0.1, started if they are down. Each run creates a database with a name
of its own and drops it at the end.
"""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, String, Table, insert, inspect, select

from stratus.db import Database, compare_and_swap, migrate, normalize_url
from stratus.db.base import UTCDateTime, new_metadata
from stratus.db.cas import claim
from stratus.errors import Conflict
from stratus.network import agents
from stratus.network import messages as msg
from stratus.network.models import agents as agents_table
from stratus.network.store import Store
from stratus.settings import NetworkSettings
from tests.support.databases import mariadb_database, postgres_database


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    with mariadb_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(params=[
    "sqlite",
    pytest.param("mariadb", marks=pytest.mark.mysql),
    pytest.param("postgresql", marks=pytest.mark.postgres),
])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'stratus.sqlite'}"
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


metadata = new_metadata()
instances = Table(
    "cas_test_instances", metadata,
    Column("id", String(36), primary_key=True),
    Column("vm_state", String(32), nullable=False),
    Column("task_state", String(64), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=True),
)


@pytest.fixture
async def table(db: Database) -> AsyncIterator[Table]:
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield instances
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)


async def _add(db: Database, row_id: str, vm_state: str = "active",
               task_state: str | None = None) -> None:
    async with db.session() as session:
        await session.execute(insert(instances).values(id=row_id, vm_state=vm_state,
                                                       task_state=task_state))


async def _task_state(db: Database, row_id: str) -> str | None:
    async with db.session() as session:
        return (await session.execute(
            select(instances.c.task_state).where(instances.c.id == row_id))).scalar_one()


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///data/stratus.db", "sqlite+aiosqlite:///data/stratus.db"),
    ("sqlite+pysqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ("mysql://root@127.0.0.1:3306/nova", "mysql+aiomysql://root@127.0.0.1:3306/nova"),
    ("mariadb://root@h/nova", "mysql+aiomysql://root@h/nova"),
    ("mysql+pymysql://root@h/nova", "mysql+aiomysql://root@h/nova"),
    ("postgresql://postgres@h:5432/nova", "postgresql+asyncpg://postgres@h:5432/nova"),
    ("postgres://postgres@h/nova", "postgresql+asyncpg://postgres@h/nova"),
    ("postgresql+psycopg2://u:p@h/nova", "postgresql+asyncpg://u:p@h/nova"),
    ("postgresql+asyncpg://u@h/nova", "postgresql+asyncpg://u@h/nova"),
])
def test_normalize_url_gives_each_database_its_async_driver(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["oracle://scott@h/orcl", "not a url", "/var/lib/x.db"])
def test_normalize_url_rejects_what_it_cannot_serve(url: str) -> None:
    with pytest.raises(ValueError):
        normalize_url(url)


async def test_a_session_commits_when_the_block_succeeds(db: Database, table: Table) -> None:
    await _add(db, "i-1")
    assert await _task_state(db, "i-1") is None


async def test_a_session_rolls_back_when_the_block_raises(db: Database, table: Table) -> None:
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await session.execute(insert(table).values(id="i-1", vm_state="active"))
            raise RuntimeError("abort")
    async with db.session() as session:
        assert (await session.execute(select(table.c.id))).all() == []


async def test_exactly_one_of_fifty_concurrent_claimers_wins(db: Database, table: Table) -> None:
    await _add(db, "i-1")
    go = asyncio.Event()

    async def claimer(n: int) -> bool:
        await go.wait()
        async with db.session() as session:
            return await compare_and_swap(session, table, {"id": "i-1"}, {"task_state": None},
                                          {"task_state": f"claimer-{n}"})

    tasks = [asyncio.create_task(claimer(n)) for n in range(50)]
    go.set()
    results = await asyncio.gather(*tasks)
    assert results.count(True) == 1
    assert await _task_state(db, "i-1") == f"claimer-{results.index(True)}"


async def test_any_of_expected_values_includes_null(db: Database, table: Table) -> None:
    await _add(db, "idle")
    await _add(db, "rebooting", task_state="rebooting")
    await _add(db, "migrating", task_state="migrating")
    async with db.session() as session:
        for row_id in ("idle", "rebooting", "migrating"):
            await compare_and_swap(session, table, {"id": row_id},
                                   {"task_state": (None, "rebooting")},
                                   {"task_state": "rebooting_hard"})
        assert await compare_and_swap(session, table, {"id": "migrating"},
                                      {"task_state": ["migrating"], "vm_state": "active"},
                                      {"task_state": None})
    assert await _task_state(db, "idle") == "rebooting_hard"
    assert await _task_state(db, "rebooting") == "rebooting_hard"
    assert await _task_state(db, "migrating") is None


async def test_a_stale_expectation_or_unknown_key_changes_nothing(
        db: Database, table: Table) -> None:
    await _add(db, "i-1", task_state="spawning")
    async with db.session() as session:
        assert not await compare_and_swap(session, table, {"id": "i-1"}, {"task_state": None},
                                          {"task_state": "deleting"})
        assert not await compare_and_swap(session, table, {"id": "nope"}, {},
                                          {"task_state": "deleting"})
    assert await _task_state(db, "i-1") == "spawning"


async def test_claim_raises_conflict_naming_the_loser(db: Database, table: Table) -> None:
    await _add(db, "i-1", task_state="spawning")
    with pytest.raises(Conflict, match="busy: spawning"):
        async with db.session() as session:
            await claim(session, table, {"id": "i-1"}, {"task_state": None},
                        {"task_state": "deleting"}, conflict="Instance i-1 is busy: spawning")


async def test_datetimes_come_back_as_aware_utc(db: Database, table: Table) -> None:
    moment = datetime(2024, 5, 1, 14, 30, 15, tzinfo=timezone(timedelta(hours=2)))
    async with db.session() as session:
        await session.execute(insert(table).values(id="i-1", vm_state="active",
                                                   updated_at=moment))
    async with db.session() as session:
        got = (await session.execute(select(table.c.updated_at))).scalar_one()
    assert got == moment and got.tzinfo == UTC


def _toy_migrations(root: Path, table: str, revisions: int) -> Path:
    """A service's migrations folder: env.py plus ``revisions`` linear versions."""
    (root / "versions").mkdir(parents=True, exist_ok=True)
    (root / "env.py").write_text("from stratus.db import alembic_env\n\nalembic_env.run()\n")
    for n in range(1, revisions + 1):
        body = (f'op.create_table("{table}", sa.Column("id", sa.String(36), primary_key=True))'
                if n == 1 else f'op.add_column("{table}", sa.Column("c{n}", sa.String(10)))')
        (root / "versions" / f"{n:04d}_step.py").write_text(textwrap.dedent(f"""\
            import sqlalchemy as sa
            from alembic import op

            revision = "{n:04d}"
            down_revision = {f'"{n - 1:04d}"' if n > 1 else None}


            def upgrade() -> None:
                {body}
            """))
    return root


async def test_migrations_keep_one_version_table_per_service_and_are_idempotent(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suffix = uuid.uuid4().hex[:8]
    paths = {f"toy-{suffix}": _toy_migrations(tmp_path / "toy", f"toy_things_{suffix}", 1),
             f"pet-{suffix}": _toy_migrations(tmp_path / "pet", f"pet_things_{suffix}", 2)}
    monkeypatch.setattr(migrate, "migrations_dir", paths.get)
    toy, pet = paths

    assert await migrate.current(db, toy) is None
    assert await migrate.upgrade(db, [toy, pet, "no-such-service"]) == [toy, pet]
    assert await migrate.upgrade(db, [toy, pet]) == [toy, pet]
    assert await migrate.current(db, toy) == "0001"
    assert await migrate.current(db, pet) == "0002"

    async with db.engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        pet_columns = await conn.run_sync(
            lambda c: [col["name"] for col in inspect(c).get_columns(f"pet_things_{suffix}")])
    assert {f"alembic_version_toy_{suffix}", f"alembic_version_pet_{suffix}",
            f"toy_things_{suffix}", f"pet_things_{suffix}"} <= tables
    assert "alembic_version" not in tables
    assert pet_columns == ["id", "c2"]

    _toy_migrations(tmp_path / "toy", f"toy_things_{suffix}", 2)
    assert await migrate.upgrade(db, [toy]) == [toy]
    assert await migrate.current(db, toy) == "0002"
    assert await migrate.current(db, pet) == "0002"


async def test_every_service_migrates_into_one_shared_database(db: Database) -> None:
    services = [s for s in migrate.SERVICES_WITH_TABLES if migrate.migrations_dir(s)]
    assert await migrate.upgrade(db) == services
    assert await migrate.upgrade(db) == services
    for service in services:
        assert await migrate.current(db, service) is not None


async def test_sqlite_writers_queue_in_process_and_server_databases_do_not(db: Database) -> None:
    inside = 0
    most = 0

    async def writer() -> None:
        nonlocal inside, most
        async with db.writer():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(writer() for _ in range(5)))
    assert most == (1 if db.dialect == "sqlite" else 5)


async def test_concurrent_first_reports_of_a_network_agent_make_one_row(db: Database) -> None:
    await migrate.upgrade(db, ["network"])
    async with db.engine.connect() as conn:
        uniques = await conn.run_sync(
            lambda c: inspect(c).get_unique_constraints("network_agents"))
    assert [sorted(u["column_names"]) for u in uniques] == [["agent_type", "host"]]

    store = Store(db, NetworkSettings())
    host = f"host-{uuid.uuid4().hex[:8]}"
    state = msg.AgentState(agent_type="Stratus no-op agent", binary="stratus-network-agent",
                           host=host, topic="network-agent",
                           configurations={"dataplane": "noop", "ports": 3}, start_flag=True)
    statuses = await asyncio.gather(*(store.write(lambda tx: agents.report(tx, state))
                                      for _ in range(12)))
    assert Counter(statuses) == {msg.AGENT_NEW: 1, msg.AGENT_ALIVE: 11}
    async with db.session() as session:
        rows = (await session.execute(select(agents_table).where(agents_table.c.host == host))).all()
    assert len(rows) == 1
    row = rows[0]
    assert row.configurations == {"dataplane": "noop", "ports": 3}
    assert row.admin_state_up is True and row.description is None
    assert row.heartbeat_timestamp.tzinfo is not None
    assert row.created_at <= row.started_at <= row.heartbeat_timestamp
