"""Compare-and-swap updates: the concurrency primitive of the design.

An action claims a row with ``UPDATE t SET task_state=:new WHERE id=:id AND
task_state IS NULL``; exactly one of many concurrent claimers sees one row
changed. No Python locks, so it holds across processes and hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, and_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from stratus.errors import Conflict

_ANY = object()


async def compare_and_swap(
    conn: AsyncSession | AsyncConnection,
    table: Table | Any,
    key: Mapping[str, Any],
    expected: Mapping[str, Any],
    values: Mapping[str, Any],
) -> bool:
    """Set ``values`` on the row matching ``key`` only if it still has ``expected``.

    ``table`` is a ``Table`` or an ORM class. An expected value may be a tuple
    or list, meaning "any of these" (``None`` inside it matches NULL).
    Returns whether the row was changed.
    """
    t: Table = getattr(table, "__table__", table)
    clauses = [t.c[name] == value for name, value in key.items()]
    for name, value in expected.items():
        col = t.c[name]
        if isinstance(value, (tuple, list, set, frozenset)):
            options = list(value)
            alts = [col.is_(None)] if None in options else []
            rest = [v for v in options if v is not None]
            if rest:
                alts.append(col.in_(rest))
            from sqlalchemy import or_

            clauses.append(or_(*alts))
        elif value is None:
            clauses.append(col.is_(None))
        else:
            clauses.append(col == value)
    stmt = update(t).where(and_(*clauses)).values(**values)
    result = await conn.execute(stmt)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def claim(
    conn: AsyncSession | AsyncConnection,
    table: Table | Any,
    key: Mapping[str, Any],
    expected: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    conflict: str,
) -> None:
    """Like :func:`compare_and_swap` but raises ``Conflict(conflict)`` when it loses."""
    if not await compare_and_swap(conn, table, key, expected, values):
        raise Conflict(conflict)
