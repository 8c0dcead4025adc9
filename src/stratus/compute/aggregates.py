"""Host aggregates as the rest of compute sees them: which zone a host is in,
and the metadata the scheduler's aggregate filters match against.

A host's availability zone is the ``availability_zone`` metadata of an
aggregate it belongs to, else the default zone (as Nova). A host can be in
several aggregates but in only one zone; the API refuses a membership or a
metadata change that would put it in two.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.compute.models import Aggregate, AggregateHost

AZ_KEY = "availability_zone"


async def host_metadata(session: AsyncSession) -> dict[str, dict[str, str]]:
    """Per host, the merged metadata of its aggregates (one query)."""
    rows = (await session.execute(select(AggregateHost.host, Aggregate.metadata_).join(
        Aggregate, Aggregate.id == AggregateHost.aggregate_id))).all()
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for host, meta in rows:
        out[host].update(meta or {})
    return dict(out)


async def host_zones(session: AsyncSession, default: str) -> dict[str, str]:
    """Hosts that are in a zone other than ``default``, with that zone."""
    return {h: m[AZ_KEY] for h, m in (await host_metadata(session)).items()
            if m.get(AZ_KEY) and m[AZ_KEY] != default}


async def zone_of(session: AsyncSession, host: str, default: str) -> str:
    rows = (await session.execute(select(Aggregate.metadata_).join(
        AggregateHost, Aggregate.id == AggregateHost.aggregate_id).where(
        AggregateHost.host == host))).scalars().all()
    for meta in rows:
        if (meta or {}).get(AZ_KEY):
            return str(meta[AZ_KEY])
    return default


async def zone_names(session: AsyncSession) -> set[str]:
    """Every zone an aggregate defines."""
    rows = (await session.execute(select(Aggregate.metadata_))).scalars().all()
    return {str(m[AZ_KEY]) for m in rows if m and m.get(AZ_KEY)}
