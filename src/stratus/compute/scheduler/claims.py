"""Resource claims on compute nodes: one conditional UPDATE, never a lock.

``claim`` adds a consumer's resources to a node only if they still fit
(allocation ratios and reservations included), in the same statement that
checks, so parallel builds never overcommit a host whatever the number of
schedulers. The allocation row records what to give back on ``release``.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.compute.models import Allocation, ComputeNode

N = ComputeNode


async def claim(session: AsyncSession, node_id: int, consumer: str, instance_uuid: str,
                vcpus: int, memory_mb: int, disk_gb: int) -> bool:
    stmt = update(N).where(
        N.id == node_id,
        N.vcpus_used + vcpus <= (N.vcpus - N.reserved_host_cpus) * N.cpu_allocation_ratio,
        N.memory_mb_used + memory_mb
        <= (N.memory_mb - N.reserved_host_memory_mb) * N.ram_allocation_ratio,
        N.local_gb_used + disk_gb
        <= (N.local_gb - N.reserved_host_disk_gb) * N.disk_allocation_ratio,
    ).values(vcpus_used=N.vcpus_used + vcpus, memory_mb_used=N.memory_mb_used + memory_mb,
             local_gb_used=N.local_gb_used + disk_gb, running_vms=N.running_vms + 1)
    result = await session.execute(stmt)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(Allocation(consumer_uuid=consumer, node_id=node_id, instance_uuid=instance_uuid,
                           vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb))
    await session.flush()
    return True


async def release(session: AsyncSession, consumer: str, node_id: int | None = None) -> int:
    """Give back what ``consumer`` holds (on one node, or all); returns rows released."""
    stmt = select(Allocation).where(Allocation.consumer_uuid == consumer)
    if node_id is not None:
        stmt = stmt.where(Allocation.node_id == node_id)
    released = 0
    for alloc in (await session.execute(stmt)).scalars().all():
        gone = await session.execute(delete(Allocation).where(
            Allocation.consumer_uuid == alloc.consumer_uuid, Allocation.node_id == alloc.node_id))
        if gone.rowcount != 1:  # type: ignore[attr-defined]
            continue  # released concurrently
        await session.execute(update(N).where(N.id == alloc.node_id).values(
            vcpus_used=N.vcpus_used - alloc.vcpus, memory_mb_used=N.memory_mb_used - alloc.memory_mb,
            local_gb_used=N.local_gb_used - alloc.disk_gb, running_vms=N.running_vms - 1))
        released += 1
    return released


async def move(session: AsyncSession, old_consumer: str, new_consumer: str,
               node_id: int | None = None) -> None:
    """Hand an allocation to another consumer (a resize's source side to its migration)."""
    stmt = update(Allocation).where(Allocation.consumer_uuid == old_consumer)
    if node_id is not None:
        stmt = stmt.where(Allocation.node_id == node_id)
    await session.execute(stmt.values(consumer_uuid=new_consumer))
