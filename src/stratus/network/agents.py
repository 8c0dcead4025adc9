"""The agents that report to this service (Neutron's ``agent`` extension, ``/v2.0/agents``).

An agent's row is created by its first state report and kept current by the
next ones (:func:`report`); ``alive`` is whether the last report is younger
than ``network.agent_down_time``. Admins may disable an agent, describe it or
delete its row; a live agent's next report registers it again, as in Neutron.
The policy rules ``get_agent``, ``update_agent`` and ``delete_agent`` are
admin-only by default, so others list nothing and get 404 for one agent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy import update as sa_update

from stratus.db.base import new_id, utcnow
from stratus.network import messages as msg
from stratus.network import models as m
from stratus.network.access import Caller, not_found
from stratus.network.store import Tx


def _time(value: datetime) -> str:
    # Neutron shows agent times as "2017-09-12 19:40:38" (UTC).
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _alive(heartbeat: datetime, down_time: float) -> bool:
    if heartbeat.tzinfo is None:
        heartbeat = heartbeat.replace(tzinfo=UTC)
    return datetime.now(UTC) - heartbeat <= timedelta(seconds=down_time)


def view(row: Any, down_time: float) -> dict[str, Any]:
    return {
        "id": row.id, "agent_type": row.agent_type, "binary": row.binary, "topic": row.topic,
        "host": row.host, "availability_zone": row.availability_zone,
        "admin_state_up": row.admin_state_up, "description": row.description,
        "configurations": row.configurations, "created_at": _time(row.created_at),
        "started_at": _time(row.started_at),
        "heartbeat_timestamp": _time(row.heartbeat_timestamp),
        "alive": _alive(row.heartbeat_timestamp, down_time),
        # Only agents that report resources to placement have one; ours do not.
        "resources_synced": None,
    }


def _target(row: Any) -> dict[str, Any]:
    return {"id": row.id}


async def _row(tx: Tx, caller: Caller, agent_id: str) -> Any:
    row = (await tx.s.execute(select(m.agents).where(m.agents.c.id == agent_id))).first()
    if row is None:
        raise not_found("agent", agent_id)
    caller.visible_or_404("agent", _target(row))
    return row


async def listing(tx: Tx, caller: Caller) -> list[dict[str, Any]]:
    rows = caller.visible("agent", await tx.s.execute(select(m.agents)), _target)
    return [view(r, tx.cfg.agent_down_time) for r in rows]


async def show(tx: Tx, caller: Caller, agent_id: str) -> dict[str, Any]:
    return view(await _row(tx, caller, agent_id), tx.cfg.agent_down_time)


async def update(tx: Tx, caller: Caller, agent_id: str, body: dict[str, Any]
                 ) -> dict[str, Any]:
    caller.enforce("update", "agent", _target(await _row(tx, caller, agent_id)))
    if body:
        await tx.s.execute(sa_update(m.agents).where(m.agents.c.id == agent_id).values(**body))
    return await show(tx, caller, agent_id)


async def delete_(tx: Tx, caller: Caller, agent_id: str) -> None:
    caller.enforce("delete", "agent", _target(await _row(tx, caller, agent_id)))
    await tx.s.execute(delete(m.agents).where(m.agents.c.id == agent_id))


async def report(tx: Tx, state: msg.AgentState) -> str:
    """Record one state report: insert or refresh the agent's row; what the agent is now."""
    now = utcnow()
    a = m.agents.c
    row = (await tx.s.execute(select(a.id, a.heartbeat_timestamp).where(
        a.agent_type == state.agent_type, a.host == state.host))).first()
    values: dict[str, Any] = {
        "binary": state.binary, "topic": state.topic, "configurations": state.configurations,
        "availability_zone": state.availability_zone, "heartbeat_timestamp": now}
    if row is None:
        # A concurrent first report of the same agent fails on the unique key; the
        # retried transaction then finds this row.
        await tx.s.execute(insert(m.agents).values(
            id=new_id(), agent_type=state.agent_type, host=state.host, admin_state_up=True,
            description=None, created_at=now, started_at=now, **values))
        return msg.AGENT_NEW
    if state.start_flag:
        values["started_at"] = now
    await tx.s.execute(sa_update(m.agents).where(a.id == row.id).values(**values))
    return msg.AGENT_ALIVE if _alive(row.heartbeat_timestamp, tx.cfg.agent_down_time) \
        else msg.AGENT_REVIVED
