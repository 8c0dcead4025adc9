"""The end of an instance: one transaction marks it deleted and gives back what it held."""

from __future__ import annotations

from sqlalchemy import delete, update

from stratus.compute import quotas
from stratus.compute.models import ConsoleAuthToken, Instance, ServerGroupMember
from stratus.compute.scheduler import claims
from stratus.compute.states import PowerState, VmState
from stratus.db import Database
from stratus.db.base import utcnow


async def finalize_delete(db: Database, inst: Instance) -> bool:
    """Mark deleted, release quota, allocations and group membership; False if already gone."""
    now = utcnow()
    async with db.session() as session:
        result = await session.execute(update(Instance).where(
            Instance.uuid == inst.uuid, Instance.deleted.is_(False)).values(
            deleted=True, deleted_at=now, terminated_at=now, vm_state=VmState.DELETED.value,
            task_state=None, power_state=int(PowerState.NOSTATE), updated_at=now))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        await quotas.release(session, inst.project_id,
                             {"instances": 1, "cores": inst.vcpus, "ram": inst.memory_mb})
        await claims.release(session, inst.uuid)
        await session.execute(delete(ServerGroupMember).where(
            ServerGroupMember.instance_uuid == inst.uuid))
        await session.execute(delete(ConsoleAuthToken).where(
            ConsoleAuthToken.instance_uuid == inst.uuid))
    return True
