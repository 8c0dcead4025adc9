"""Instance state changes: every write goes through a compare-and-swap.

``begin`` claims an action for an instance (the ``expected_task_state``
guard), ``advance`` moves it along the action's task_states, ``finish`` and
``fail`` end it in the table's success or failure state; ``fail`` records the
instance fault and the failed action event in the same transaction. The API,
the conductor and the agents all use these, so the rules live in one place.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stratus.compute.lifecycle import Action, Outcome, Transition, transition
from stratus.compute.models import (
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceFault,
    Migration,
)
from stratus.compute.states import PowerState, TaskState, VmState
from stratus.db import Database
from stratus.db.base import utcnow
from stratus.errors import Conflict, NotFound

log = logging.getLogger("stratus.compute")


class InstanceStore:
    """Reads and guarded writes of instances, their actions, events and faults."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, uuid: str, *, deleted: bool = False) -> Instance:
        async with self.db.session() as session:
            stmt = select(Instance).where(Instance.uuid == uuid)
            if not deleted:
                stmt = stmt.where(Instance.deleted.is_(False))
            inst = await session.scalar(stmt)
        if inst is None:
            raise NotFound(f"Instance {uuid} could not be found.")
        return inst

    async def begin(self, uuid: str, action: Action, *, extra: dict[str, Any] | None = None,
                    allow_task: bool = False) -> Instance:
        """Claim ``action``: set its first task_state if the instance may start it.

        Raises 409 naming the vm_state/task_state that forbids it. With
        ``allow_task`` (delete) a running task does not block the claim.
        """
        t = transition(action)
        inst = await self.get(uuid)
        if not allow_task:
            t.check_allowed(inst.vm_state, inst.task_state, uuid)
        elif inst.vm_state not in t.allowed:
            t.check_allowed(inst.vm_state, None, uuid)
        values: dict[str, Any] = {"task_state": t.first_task.value, "updated_at": utcnow()}
        values.update(extra or {})
        async with self.db.session() as session:
            stmt = update(Instance).where(Instance.uuid == uuid,
                                          Instance.deleted.is_(False),
                                          Instance.vm_state.in_([s.value for s in t.allowed]))
            if not allow_task:
                stmt = stmt.where(Instance.task_state.is_(None))
            else:
                stmt = stmt.where((Instance.task_state.is_(None))
                                  | (Instance.task_state != TaskState.DELETING.value))
            result = await session.execute(stmt.values(**values))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                fresh = await session.scalar(select(Instance).where(Instance.uuid == uuid))
                state = (f"task_state {fresh.task_state}" if fresh and fresh.task_state
                         else f"vm_state {fresh.vm_state if fresh else 'deleted'}")
                raise Conflict(f"Cannot '{action.value}' instance {uuid} while it is in {state}")
        inst.task_state = t.first_task.value
        for key, value in (extra or {}).items():
            setattr(inst, key, value)
        return inst

    async def advance(self, uuid: str, expected: TaskState | str | None, new: TaskState,
                      **values: Any) -> bool:
        """Move to the next task_state; False if someone else changed the task meanwhile."""
        async with self.db.session() as session:
            stmt = update(Instance).where(Instance.uuid == uuid)
            stmt = stmt.where(Instance.task_state.is_(None) if expected is None
                              else Instance.task_state == str(expected))
            result = await session.execute(stmt.values(task_state=new.value, updated_at=utcnow(),
                                                       **values))
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def advance_stable(self, uuid: str, vm_state: VmState, power: PowerState) -> bool:
        """Power sync: change a stable instance only if still no task runs on it."""
        async with self.db.session() as session:
            result = await session.execute(update(Instance).where(
                Instance.uuid == uuid, Instance.task_state.is_(None),
                Instance.deleted.is_(False)).values(vm_state=vm_state.value,
                                                    power_state=int(power), updated_at=utcnow()))
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def update(self, uuid: str, **values: Any) -> bool:
        """Change a live instance; False when it was deleted meanwhile (nothing written)."""
        async with self.db.session() as session:
            result = await session.execute(update(Instance).where(
                Instance.uuid == uuid, Instance.deleted.is_(False)).values(
                updated_at=utcnow(), **values))
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def finish(self, inst: Instance, t: Transition, *, started_from: VmState,
                     power: PowerState | None = None, **values: Any) -> VmState:
        """End ``t`` successfully: the table's success vm_state, task cleared."""
        vm = t.end_state(t.success, started_from=started_from,
                         prior=_vm_or_none(inst.prior_vm_state))
        changes: dict[str, Any] = {"vm_state": vm.value, "task_state": None}
        power = power if power is not None else t.power_on_success
        if power is not None:
            changes["power_state"] = int(power)
        if t.success is Outcome.PRIOR:
            changes["prior_vm_state"] = None
        changes.update(values)
        await self.update(inst.uuid, **changes)
        return vm

    async def fail(self, inst: Instance, t: Transition, *, started_from: VmState,
                   error: BaseException | str, request_id: str = "", host: str | None = None,
                   event: str | None = None, code: int = 500, **values: Any) -> VmState:
        """End ``t`` in its failure state, with an instance fault and a failed event."""
        vm = t.end_state(t.failure, started_from=started_from,
                         prior=_vm_or_none(inst.prior_vm_state))
        message = str(error) or type(error).__name__
        async with self.db.session() as session:
            await session.execute(update(Instance).where(
                Instance.uuid == inst.uuid, Instance.deleted.is_(False)).values(
                vm_state=vm.value, task_state=None, updated_at=utcnow(), **values))
            session.add(InstanceFault(instance_uuid=inst.uuid, code=code, message=message[:255],
                                      details=message if len(message) > 255 else "",
                                      host=host))
        if request_id and event:
            await self.event_finish(inst.uuid, request_id, event, error=message, host=host)
        log.warning("%s of instance %s failed: %s", t.action.value, inst.uuid, message)
        return vm

    async def fault(self, uuid: str, message: str, *, code: int = 500, host: str | None = None,
                    details: str = "") -> None:
        async with self.db.session() as session:
            session.add(InstanceFault(instance_uuid=uuid, code=code, message=message[:255],
                                      details=details or (message if len(message) > 255 else ""),
                                      host=host))

    # --- instance actions and their events ---------------------------------

    async def record_action(self, uuid: str, action: str, request_id: str, project_id: str,
                            user_id: str) -> None:
        async with self.db.session() as session:
            session.add(InstanceAction(instance_uuid=uuid, action=action, request_id=request_id,
                                       project_id=project_id, user_id=user_id))

    @staticmethod
    async def _action_id(session: Any, uuid: str, request_id: str) -> int | None:
        result: int | None = await session.scalar(select(InstanceAction.id).where(
            InstanceAction.instance_uuid == uuid, InstanceAction.request_id == request_id
        ).order_by(InstanceAction.id.desc()).limit(1))
        return result

    async def event_start(self, uuid: str, request_id: str, event: str,
                          host: str | None = None) -> None:
        if not request_id:
            return
        async with self.db.session() as session:
            action_id = await self._action_id(session, uuid, request_id)
            if action_id is not None:
                session.add(InstanceActionEvent(action_id=action_id, event=event, host=host))

    async def event_finish(self, uuid: str, request_id: str, event: str, *,
                           error: str | None = None, host: str | None = None) -> None:
        if not request_id:
            return
        now = utcnow()
        async with self.db.session() as session:
            action_id = await self._action_id(session, uuid, request_id)
            if action_id is None:
                return
            ev = await session.scalar(select(InstanceActionEvent).where(
                InstanceActionEvent.action_id == action_id, InstanceActionEvent.event == event,
                InstanceActionEvent.finish_time.is_(None)))
            if ev is None:
                ev = InstanceActionEvent(action_id=action_id, event=event, host=host)
                session.add(ev)
            ev.finish_time = now
            ev.result = "Error" if error else "Success"
            if error:
                ev.traceback = error
                ev.details = error[:255]
            values: dict[str, Any] = {"finish_time": now, "updated_at": now}
            if error:
                values["message"] = "Error"
            await session.execute(update(InstanceAction).where(
                InstanceAction.id == action_id).values(**values))


def _vm_or_none(value: str | None) -> VmState | None:
    return VmState(value) if value else None


def notification_payload(inst: Instance, **extra: Any) -> dict[str, Any]:
    """The versioned payload of ``instance.*`` notifications."""
    return {"version": "1.0", "instance_id": inst.uuid, "project_id": inst.project_id,
            "user_id": inst.user_id, "host": inst.host, "state": inst.vm_state,
            "task_state": inst.task_state, "power_state": inst.power_state,
            "flavor": inst.flavor.get("name"), "image_uuid": inst.image_ref,
            "at": datetime.now(UTC).isoformat(), **extra}


async def migration_record(db: Database, migration_uuid: str | None, **values: Any) -> None:
    """Update a migration record (status, destination, progress); no-op without one."""
    if not migration_uuid:
        return
    async with db.session() as session:
        await session.execute(update(Migration).where(Migration.uuid == migration_uuid)
                              .values(updated_at=utcnow(), **values))


MIGRATION_IN_PROGRESS = ("pre-migrating", "migrating", "post-migrating", "queued", "preparing",
                         "running", "accepted")


async def close_migration(session: AsyncSession, migration_uuid: str) -> bool:
    """Mark an in-progress migration ``error``; False when someone closed it first
    (whoever closes it gives back what it held, exactly once)."""
    result = await session.execute(update(Migration).where(
        Migration.uuid == migration_uuid, Migration.status.in_(MIGRATION_IN_PROGRESS)).values(
        status="error", updated_at=utcnow()))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
