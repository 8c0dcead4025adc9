"""Quotas: limits per project and usage changed only by conditional updates.

Admission reserves every counted resource in the same transaction that
creates the instances: ``UPDATE quota_usages SET in_use = in_use + :d WHERE
... AND in_use + :d <= :limit``. One statement per resource, each atomic on
every database, so 100 parallel creates into a quota of 50 admit exactly 50
no matter how many API workers race. Release is the same update with a
negative delta, in the transaction that deletes.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.compute.models import KeyPair, Quota, QuotaUsage, ServerGroup
from stratus.db import Database
from stratus.errors import OverQuota
from stratus.settings import ComputeSettings

# Resources counted in quota_usages (reserved at admission).
COUNTED = ("instances", "cores", "ram")
# Every resource of os-quota-sets, in the API's naming.
RESOURCES = ("instances", "cores", "ram", "key_pairs", "server_groups",
             "server_group_members", "metadata_items", "injected_files",
             "injected_file_content_bytes", "injected_file_path_bytes")
# Still shown before 2.57 / 2.36, never enforced (network quotas are Neutron's).
LEGACY = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")


def defaults(settings: ComputeSettings) -> dict[str, int]:
    return {r: int(getattr(settings, f"quota_{r}")) for r in RESOURCES}


# The ``default`` quota class (os-quota-class-sets) lives in the quotas table
# under this project id: it overrides the settings' defaults for every project.
CLASS_DEFAULT = "__class_default__"


async def class_defaults(session: AsyncSession, settings: ComputeSettings) -> dict[str, int]:
    """The settings' defaults with the ``default`` quota class applied."""
    return await limits(session, settings, CLASS_DEFAULT)


async def limits(session: AsyncSession, settings: ComputeSettings,
                 project_id: str) -> dict[str, int]:
    out = defaults(settings)
    rows = (await session.execute(select(Quota).where(
        Quota.project_id.in_((CLASS_DEFAULT, project_id))))).scalars().all()
    for row in sorted(rows, key=lambda r: r.project_id != CLASS_DEFAULT):
        out[row.resource] = int(row.hard_limit)
    return out


async def usage(session: AsyncSession, project_id: str) -> dict[str, int]:
    rows = await session.execute(select(QuotaUsage).where(QuotaUsage.project_id == project_id))
    out = {r: 0 for r in COUNTED}
    for row in rows.scalars():
        out[row.resource] = int(row.in_use)
    return out


async def counted_usage(session: AsyncSession, project_id: str, user_id: str) -> dict[str, int]:
    """In-use figures of resources counted on demand (no reservation needed)."""
    from sqlalchemy import func

    groups = await session.scalar(select(func.count()).select_from(ServerGroup).where(
        ServerGroup.project_id == project_id))
    keys = await session.scalar(select(func.count()).select_from(KeyPair).where(
        KeyPair.user_id == user_id))
    return {"server_groups": int(groups or 0), "key_pairs": int(keys or 0)}


async def ensure_rows(db: Database, project_id: str) -> None:
    """Create the usage rows once per project, outside the admission transaction."""
    async with db.session() as session:
        have = set((await session.execute(select(QuotaUsage.resource).where(
            QuotaUsage.project_id == project_id))).scalars())
    missing = [r for r in COUNTED if r not in have]
    for resource in missing:
        try:
            async with db.session() as session:
                session.add(QuotaUsage(project_id=project_id, resource=resource, in_use=0))
        except IntegrityError:
            pass  # another request created it first


async def reserve(session: AsyncSession, project_id: str, deltas: Mapping[str, int],
                  hard: Mapping[str, int]) -> None:
    """Add ``deltas`` to the project's usage or raise OverQuota naming the resource.

    Run inside the caller's transaction (after :func:`ensure_rows`); a raise
    rolls back whatever was reserved before it.
    """
    for resource, delta in deltas.items():
        if delta == 0:
            continue
        col = QuotaUsage.in_use
        stmt = update(QuotaUsage).where(QuotaUsage.project_id == project_id,
                                        QuotaUsage.resource == resource)
        limit = hard.get(resource, -1)
        if delta > 0 and limit >= 0:
            stmt = stmt.where(col + delta <= limit)
        result = await session.execute(stmt.values(in_use=col + delta))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            used = await session.scalar(select(col).where(
                QuotaUsage.project_id == project_id, QuotaUsage.resource == resource))
            raise OverQuota(
                f"Quota exceeded for {resource}: Requested {delta}, but already used "
                f"{used or 0} of {limit} {resource}")


async def release(session: AsyncSession, project_id: str, deltas: Mapping[str, int]) -> None:
    await reserve(session, project_id, {k: -v for k, v in deltas.items()}, {})


def instance_deltas(flavor: Mapping[str, int], count: int = 1) -> dict[str, int]:
    return {"instances": count, "cores": int(flavor["vcpus"]) * count,
            "ram": int(flavor["ram"]) * count}
