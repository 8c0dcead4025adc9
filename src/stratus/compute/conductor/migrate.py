"""Flows that move an instance: resize/cold migrate (+confirm/revert), live
migration, evacuate, unshelve.

Allocation bookkeeping, the same in every flow: the source side's claim is
first handed to the migration (consumer = migration uuid), the destination
is claimed for the instance, and whichever side loses at the end (source on
success/confirm, destination on failure/revert) is released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stratus.compute import quotas
from stratus.compute.conductor.flow import Flow
from stratus.compute.instances import close_migration
from stratus.compute.lifecycle import Action, Transition, transition
from stratus.compute.states import PowerState, TaskState, VmState
from stratus.compute.virt.driver import MigrationAborted
from stratus.db.base import utcnow
from stratus.errors import RemoteError

if TYPE_CHECKING:
    from stratus.compute.conductor.manager import ConductorManager

T = TaskState


def _spec_for(spec: dict[str, Any], flavor: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "vcpus": int(flavor["vcpus"]), "memory_mb": int(flavor["ram"]),
            "disk_gb": int(flavor["disk"]) + int(flavor.get("ephemeral", 0))}


def _delta(old: dict[str, Any], new: dict[str, Any]) -> dict[str, int]:
    return {"cores": int(new["vcpus"]) - int(old["vcpus"]),
            "ram": int(new["ram"]) - int(old["ram"])}


async def _give_back(c: ConductorManager, project_id: str, deltas: dict[str, int]) -> None:
    """Release the positive part of ``deltas`` from the project's usage."""
    back = {k: v for k, v in deltas.items() if v > 0}
    if back:
        async with c.db.session() as session:
            await quotas.release(session, project_id, back)


async def _fail(c: ConductorManager, uuid: str, t: Transition, started_from: VmState,
                request_id: str, exc: BaseException, migration_uuid: str | None,
                event: str, **values: Any) -> None:
    from stratus.compute.conductor.manager import _message

    inst = await c.store.get(uuid)
    await c._set_migration(migration_uuid, status="error")
    await c.store.fail(inst, t, started_from=started_from, error=_message(exc),
                       request_id=request_id, event=event, **values)
    await c._notify(uuid, f"{t.action.value.lower()}.error", fault=_message(exc))


def _aborted(exc: BaseException) -> bool:
    return isinstance(exc, MigrationAborted) or (
        isinstance(exc, RemoteError) and exc.exc_type == MigrationAborted.__name__)


async def _cancelled(c: ConductorManager, uuid: str, t: Transition, started_from: VmState,
                     request_id: str, migration_uuid: str, event: str) -> None:
    """A live migration aborted by the operator (Nova: status ``cancelled``)."""
    inst = await c.store.get(uuid)
    await c._set_migration(migration_uuid, status="cancelled")
    await c.store.finish(inst, t, started_from=started_from)
    await c.store.event_finish(uuid, request_id, event, error="live migration aborted")
    await c._notify(uuid, "live_migration_abort.end")


async def _claim_destination(c: ConductorManager, uuid: str, spec: dict[str, Any],
                             host: str | None) -> dict[str, Any]:
    if host:
        return await c.scheduler.claim_on(host, spec, uuid, uuid)
    return (await c.scheduler.select_destinations(spec, [uuid], alternates=0))[0]


async def cold_migrate(c: ConductorManager, uuid: str, request_id: str, migration_uuid: str,
                       spec: dict[str, Any], new_flavor: dict[str, Any] | None,
                       host: str | None) -> None:
    inst = await c.store.get(uuid)
    t = transition(Action.RESIZE if new_flavor else Action.MIGRATE)
    event = "conductor_migrate_server"
    started_from = VmState(inst.prior_vm_state or inst.vm_state)
    old_flavor = inst.flavor
    flavor = new_flavor or old_flavor
    source = inst.host or ""
    ignore = [] if (new_flavor and c.settings.allow_resize_to_same_host) else [source]
    dest_spec = _spec_for({**spec, "ignore_hosts": ignore}, flavor)
    state: dict[str, Any] = {"moved": False}
    await c.store.event_start(uuid, request_id, event)

    async def hand_source_to_migration() -> None:
        await c.scheduler.move(uuid, migration_uuid, source)

    async def take_source_back() -> None:
        await c.scheduler.move(migration_uuid, uuid, source)

    async def claim() -> None:
        state["pick"] = await _claim_destination(c, uuid, dest_spec, host)
        await c._set_migration(migration_uuid, dest_compute=state["pick"]["host"],
                               dest_node=state["pick"]["node"], dest_host="127.0.0.1",
                               status="pre-migrating")

    async def unclaim() -> None:
        await c.scheduler.release(uuid, state["pick"]["host"])

    async def prepare() -> None:
        await c.store.advance(uuid, T.RESIZE_PREP, T.RESIZE_MIGRATING)
        await c._set_migration(migration_uuid, status="migrating")
        described = await c.agents.call(source, "migration_source", uuid=uuid)
        state["target"] = await c.agents.long_call(state["pick"]["host"], "prepare_incoming",
                                                   uuid=uuid, flavor=flavor, live=False,
                                                   block_migration=True, source=described)

    async def abort() -> None:
        await c.agents.call(state["pick"]["host"], "abort_incoming", uuid=uuid)

    async def move_guest() -> None:
        if started_from == VmState.ACTIVE:
            await c.agents.call(source, "power_off", uuid=uuid)
        await c.agents.long_call(source, "migrate_out", uuid=uuid, dest=state["target"],
                                 live=False)
        state["moved"] = True
        await c.store.advance(uuid, T.RESIZE_MIGRATING, T.RESIZE_MIGRATED)
        await c._set_migration(migration_uuid, status="post-migrating")

    async def finish() -> None:
        dest = state["pick"]
        await c.store.advance(uuid, T.RESIZE_MIGRATED, T.RESIZE_FINISH, host=dest["host"],
                              node=dest["node"])
        state["power"] = await c.agents.long_call(
            dest["host"], "finish_incoming", uuid=uuid, dest=state["target"], flavor=flavor,
            power_on=started_from == VmState.ACTIVE)

    flow = Flow(t.action.value)
    flow.step("hand source allocation to the migration", hand_source_to_migration,
              take_source_back)
    flow.step("claim destination", claim, unclaim)
    flow.step("prepare destination", prepare, abort)
    flow.step("move guest", move_guest)
    flow.step("finish on destination", finish)
    try:
        await flow.run()
    except Exception as exc:  # noqa: BLE001
        async with c.db.session() as session:  # an agent's recovery may have closed it
            closed = await close_migration(session, migration_uuid)
        if closed:
            await _give_back(c, inst.project_id, _delta(old_flavor, flavor))
        extra: dict[str, Any] = {"prior_vm_state": None}
        if state["moved"]:  # the guest left the source: the instance is broken, say so
            extra.update(vm_state=VmState.ERROR.value)
        await _fail(c, uuid, t, started_from, request_id, exc, migration_uuid, event, **extra)
        return
    inst = await c.store.get(uuid)
    await c.store.finish(inst, t, started_from=started_from,
                         power=PowerState(state["power"]), flavor=flavor, old_flavor=old_flavor,
                         new_flavor=None, vcpus=int(flavor["vcpus"]),
                         memory_mb=int(flavor["ram"]), root_gb=int(flavor["disk"]))
    await c._set_migration(migration_uuid, status="finished")
    await c.store.event_finish(uuid, request_id, event)
    await c._notify(uuid, "resize.end")


async def confirm(c: ConductorManager, uuid: str, request_id: str, migration_uuid: str) -> None:
    inst = await c.store.get(uuid)
    t = transition(Action.CONFIRM_RESIZE)
    mig = await _migration(c, migration_uuid)
    try:
        if mig is not None and mig.source_compute:  # the copy kept for a revert goes
            await c.agents.call(mig.source_compute, "confirm_migration", uuid=uuid)
        await c.scheduler.release(migration_uuid)
    except Exception as exc:  # noqa: BLE001
        await _fail(c, uuid, t, VmState.RESIZED, request_id, exc, migration_uuid,
                    "compute_confirm_resize")
        return
    if inst.old_flavor:  # a downsize frees quota only now
        await _give_back(c, inst.project_id, _delta(inst.flavor, inst.old_flavor))
    await c.store.finish(inst, t, started_from=VmState.RESIZED, old_flavor=None)
    await c._set_migration(migration_uuid, status="confirmed")
    await c.store.event_finish(uuid, request_id, "compute_confirm_resize")


async def revert(c: ConductorManager, uuid: str, request_id: str, migration_uuid: str) -> None:
    inst = await c.store.get(uuid)
    t = transition(Action.REVERT_RESIZE)
    mig = await _migration(c, migration_uuid)
    source = mig.source_compute if mig and mig.source_compute else inst.host or ""
    dest = inst.host or ""
    old = inst.old_flavor or inst.flavor
    prior = VmState(inst.prior_vm_state or VmState.ACTIVE)
    try:
        # The source kept its copy (disk at the old size): drop the new one, run that.
        await c.agents.call(dest, "destroy", uuid=uuid)
        power = await c.agents.long_call(source, "revert_migration", uuid=uuid, flavor=old,
                                         power_on=prior == VmState.ACTIVE)
        await c.scheduler.release(uuid, dest)
        await c.scheduler.move(migration_uuid, uuid)
    except Exception as exc:  # noqa: BLE001
        await _fail(c, uuid, t, VmState.RESIZED, request_id, exc, migration_uuid,
                    "compute_revert_resize")
        return
    await _give_back(c, inst.project_id, _delta(old, inst.flavor))
    await c.store.finish(inst, t, started_from=VmState.RESIZED, power=PowerState(power),
                         host=source, node=mig.source_node if mig else inst.node, flavor=old,
                         old_flavor=None, vcpus=int(old["vcpus"]), memory_mb=int(old["ram"]),
                         root_gb=int(old["disk"]))
    await c._set_migration(migration_uuid, status="reverted")
    await c.store.event_finish(uuid, request_id, "compute_revert_resize")


async def _migration(c: ConductorManager, migration_uuid: str) -> Any:
    from sqlalchemy import select

    from stratus.compute.models import Migration

    async with c.db.session() as session:
        return await session.scalar(select(Migration).where(Migration.uuid == migration_uuid))


async def live_migrate(c: ConductorManager, uuid: str, request_id: str, migration_uuid: str,
                       spec: dict[str, Any], host: str | None, block_migration: bool | None,
                       token: str | None = None) -> None:
    """``block_migration`` None is the API's "auto": the destination decides from
    whether it shares the source's storage (and fails when True/False cannot be
    honoured: the server then stays ACTIVE on its source, the migration in error).
    ``token`` lets the destination fetch the image a block migration's disk
    sits on."""
    inst = await c.store.get(uuid)
    t = transition(Action.LIVE_MIGRATE)
    started_from = VmState(inst.vm_state)
    source = inst.host or ""
    dest_spec = _spec_for({**spec, "ignore_hosts": [source]}, inst.flavor)
    state: dict[str, Any] = {}
    event = "conductor_live_migrate_instance"
    await c.store.event_start(uuid, request_id, event)

    async def claim() -> None:
        state["pick"] = await _claim_destination(c, uuid, dest_spec, host)
        await c._set_migration(migration_uuid, dest_compute=state["pick"]["host"],
                               dest_node=state["pick"]["node"], status="preparing")

    async def prepare() -> None:
        described = await c.agents.call(source, "migration_source", uuid=uuid)
        state["target"] = await c.agents.long_call(state["pick"]["host"], "prepare_incoming",
                                                   uuid=uuid, flavor=inst.flavor, live=True,
                                                   block_migration=block_migration, token=token,
                                                   source=described)

    async def migrate() -> None:
        await c._set_migration(migration_uuid, status="running")
        stats = await c.agents.long_call(source, "migrate_out", uuid=uuid,
                                         dest=state["target"], live=True,
                                         migration_uuid=migration_uuid)
        await c._set_migration(migration_uuid, **(stats or {}))

    async def finish() -> None:
        state["power"] = await c.agents.long_call(
            state["pick"]["host"], "finish_incoming", uuid=uuid, dest=state["target"],
            flavor=inst.flavor, power_on=True, paused=started_from == VmState.PAUSED)

    flow = Flow("live-migration")
    flow.step("hand source allocation to the migration",
              lambda: c.scheduler.move(uuid, migration_uuid, source),
              lambda: c.scheduler.move(migration_uuid, uuid, source))
    flow.step("claim destination", claim,
              lambda: c.scheduler.release(uuid, state["pick"]["host"]))
    flow.step("prepare destination", prepare,
              lambda: c.agents.call(state["pick"]["host"], "abort_incoming", uuid=uuid))
    flow.step("migrate", migrate)
    flow.step("start on destination", finish)
    try:
        await flow.run()
    except Exception as exc:  # noqa: BLE001
        if _aborted(exc):  # on request: no fault, the server just stays where it was
            await _cancelled(c, uuid, t, started_from, request_id, migration_uuid, event)
            return
        await _fail(c, uuid, t, started_from, request_id, exc, migration_uuid, event)
        return
    await c.scheduler.release(migration_uuid)
    await c.store.finish(inst, t, started_from=started_from, power=PowerState(state["power"]),
                         host=state["pick"]["host"], node=state["pick"]["node"])
    await c._set_migration(migration_uuid, status="completed")
    await c.store.event_finish(uuid, request_id, event)
    await c._notify(uuid, "live_migration.end")


async def evacuate(c: ConductorManager, uuid: str, request_id: str, migration_uuid: str,
                   spec: dict[str, Any], host: str | None, token: str) -> None:
    inst = await c.store.get(uuid)
    t = transition(Action.EVACUATE)
    started_from = VmState(inst.vm_state)
    source = inst.host or ""
    dest_spec = _spec_for({**spec, "ignore_hosts": [source]}, inst.flavor)
    state: dict[str, Any] = {}
    event = "conductor_rebuild_server"
    await c.store.event_start(uuid, request_id, event)

    async def claim() -> None:
        state["pick"] = await _claim_destination(c, uuid, dest_spec, host)
        await c._set_migration(migration_uuid, dest_compute=state["pick"]["host"],
                               dest_node=state["pick"]["node"], status="accepted")

    async def rebuild() -> None:
        await c.store.advance(uuid, T.REBUILDING, T.REBUILD_BLOCK_DEVICE_MAPPING)
        await c.store.advance(uuid, T.REBUILD_BLOCK_DEVICE_MAPPING, T.REBUILD_SPAWNING)
        state["power"] = await c.agents.long_call(state["pick"]["host"], "spawn", uuid=uuid,
                                                  request_id=request_id, token=token,
                                                  power_on=started_from != VmState.STOPPED)

    flow = Flow("evacuate")
    flow.step("hand source allocation to the migration",
              lambda: c.scheduler.move(uuid, migration_uuid, source),
              lambda: c.scheduler.move(migration_uuid, uuid, source))
    flow.step("claim destination", claim,
              lambda: c.scheduler.release(uuid, state["pick"]["host"]))
    flow.step("rebuild on destination", rebuild)
    try:
        await flow.run()
    except Exception as exc:  # noqa: BLE001
        await _fail(c, uuid, t, started_from, request_id, exc, migration_uuid, event)
        return
    await c.scheduler.release(migration_uuid)
    await c.store.finish(inst, t, started_from=started_from, power=PowerState(state["power"]),
                         host=state["pick"]["host"], node=state["pick"]["node"])
    await c._set_migration(migration_uuid, status="done")
    await c.store.event_finish(uuid, request_id, event)


async def unshelve(c: ConductorManager, uuid: str, request_id: str, spec: dict[str, Any],
                   host: str | None, token: str) -> None:
    inst = await c.store.get(uuid)
    t = transition(Action.UNSHELVE)
    started_from = VmState(inst.vm_state)
    event = "conductor_unshelve_instance"
    await c.store.event_start(uuid, request_id, event)
    try:
        if started_from == VmState.SHELVED and inst.host:
            await c.store.advance(uuid, T.UNSHELVING, T.SPAWNING)
            await c.agents.call(inst.host, "power_on", uuid=uuid)
            values: dict[str, Any] = {}
        else:
            pick = await _claim_destination(c, uuid, _spec_for(spec, inst.flavor), host)
            try:
                await c.store.advance(uuid, T.UNSHELVING, T.SPAWNING, host=pick["host"],
                                      node=pick["node"])
                await c.agents.long_call(pick["host"], "spawn", uuid=uuid, request_id=request_id,
                                         token=token)
            except Exception:
                await c.scheduler.release(uuid, pick["host"])
                await c.store.update(uuid, host=None, node=None)
                raise
            values = {"availability_zone": spec.get("availability_zone")
                      or await c._zone_of(pick["host"])}
    except Exception as exc:  # noqa: BLE001
        await _fail(c, uuid, t, started_from, request_id, exc, None, event)
        return
    await c.store.finish(inst, t, started_from=started_from, launched_at=utcnow(),
                         shelved_image_id=None, **values)
    if inst.shelved_image_id:  # the shelved image has served its purpose (as Nova)
        await c.delete_image(token, inst.shelved_image_id)
    await c.store.event_finish(uuid, request_id, event)
    await c._notify(uuid, "unshelve.end")
