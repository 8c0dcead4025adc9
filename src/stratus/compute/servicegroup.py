"""The service registry: a row per (host, binary) kept alive by heartbeats.

A service is *up* while its last heartbeat is younger than
``service_down_time`` and it is not forced down; evacuate needs the source
host's compute service to be down.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from stratus.compute.models import Service
from stratus.db import Database
from stratus.db.base import utcnow

BINARIES = {"compute": "nova-compute", "scheduler": "nova-scheduler",
            "conductor": "nova-conductor"}


async def heartbeat(db: Database, host: str, binary: str, topic: str,
                    zone: str = "internal") -> None:
    now = utcnow()
    async with db.session() as session:
        result = await session.execute(update(Service).where(
            Service.host == host, Service.binary == binary).values(
            last_seen_up=now, report_count=Service.report_count + 1))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return
    try:
        async with db.session() as session:
            session.add(Service(host=host, binary=binary, topic=topic, zone=zone,
                                last_seen_up=now, report_count=1))
    except IntegrityError:
        pass


def is_up(service: Service, down_time: float) -> bool:
    if service.forced_down or service.last_seen_up is None:
        return False
    return bool(utcnow() - service.last_seen_up.replace(tzinfo=None)
                <= timedelta(seconds=down_time))


async def compute_service(db: Database, host: str) -> Service | None:
    async with db.session() as session:
        return await session.scalar(select(Service).where(
            Service.host == host, Service.binary == "nova-compute"))
