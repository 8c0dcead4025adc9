"""The scheduler role: host states in memory, claims in the database.

The host-state cache is filled from ``compute_nodes`` (what agents report and
claims change) and refreshed at most once per ``refresh`` seconds, reading
only the nodes whose row changed since the last read (a full read every
``full_refresh`` seconds catches deleted nodes); service up/down, aggregates
and zones are cheap column reads. A decision is then a pass over that list in
memory (see :func:`~stratus.compute.scheduler.select.filter_hosts`). The
claim that follows is a conditional UPDATE, so a stale cache can never
overcommit: a lost claim refreshes and tries the next host.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from stratus.compute.aggregates import AZ_KEY, host_metadata
from stratus.compute.models import ComputeNode, Service
from stratus.compute.scheduler import claims
from stratus.compute.scheduler.hoststate import HostState, RequestSpec
from stratus.compute.scheduler.select import NoValidHost, candidates, rank
from stratus.compute.scheduler.weighers import (
    CPUWeigher,
    DiskWeigher,
    RAMWeigher,
    ServerGroupSoftAffinityWeigher,
    ServerGroupSoftAntiAffinityWeigher,
    Weigher,
)
from stratus.db import Database
from stratus.db.base import utcnow
from stratus.settings import ComputeSettings

log = logging.getLogger("stratus.compute.scheduler")


class SchedulerManager:
    """Bus endpoint of ``compute-scheduler``."""

    def __init__(self, db: Database, settings: ComputeSettings, *, refresh: float = 1.0,
                 full_refresh: float = 60.0) -> None:
        self.db = db
        self.settings = settings
        self.refresh = refresh
        self.full_refresh = full_refresh
        self.weighers: tuple[Weigher, ...] = (
            RAMWeigher(settings.ram_weight_multiplier), CPUWeigher(settings.cpu_weight_multiplier),
            DiskWeigher(settings.disk_weight_multiplier), ServerGroupSoftAffinityWeigher(10.0),
            ServerGroupSoftAntiAffinityWeigher(10.0))
        self._by_id: dict[int, HostState] = {}
        self._hosts: list[HostState] = []
        self._loaded = 0.0
        self._full_loaded = 0.0
        self._since: datetime | None = None
        self.rng = random.Random()
        self._start = 0  # where the next candidate search begins (spreads the scans)

    async def hosts(self, *, force: bool = False) -> list[HostState]:
        now = time.monotonic()
        if force or now - self._loaded > self.refresh:
            full = self._since is None or now - self._full_loaded > self.full_refresh
            await self._load(full)
            self._loaded = now
            if full:
                self._full_loaded = now
        return self._hosts

    async def _load(self, full: bool) -> None:
        # Rows changed within a second of the last read are read again: clocks
        # of other processes and the database's timestamp precision differ.
        started = utcnow()
        stmt = select(ComputeNode)
        if not full and self._since is not None:
            stmt = stmt.where(ComputeNode.updated_at >= self._since - timedelta(seconds=1))
        async with self.db.session() as session:
            nodes = (await session.execute(stmt)).scalars().all()
            services = {row.host: row for row in (await session.execute(select(
                Service.host, Service.disabled, Service.forced_down, Service.last_seen_up).where(
                Service.binary == "nova-compute"))).all()}
            meta = await host_metadata(session)
        by_id = {} if full else self._by_id
        for n in nodes:
            by_id[n.id] = HostState(
                node_id=n.id, host=n.host, node=n.hypervisor_hostname,
                availability_zone=n.availability_zone, vcpus=n.vcpus, memory_mb=n.memory_mb,
                disk_gb=n.local_gb, vcpus_used=n.vcpus_used, memory_mb_used=n.memory_mb_used,
                disk_gb_used=n.local_gb_used, cpu_ratio=n.cpu_allocation_ratio,
                ram_ratio=n.ram_allocation_ratio, disk_ratio=n.disk_allocation_ratio,
                reserved_cpus=n.reserved_host_cpus, reserved_memory_mb=n.reserved_host_memory_mb,
                reserved_disk_gb=n.reserved_host_disk_gb, running_vms=n.running_vms,
                hypervisor_type=n.hypervisor_type)
        default = self.settings.default_availability_zone
        down = timedelta(seconds=self.settings.service_down_time)
        for h in by_id.values():
            svc = services.get(h.host)
            h.enabled = bool(svc and not svc.disabled)
            h.up = bool(svc and not svc.forced_down and svc.last_seen_up is not None
                        and started - svc.last_seen_up.replace(tzinfo=None) <= down)
            h.aggregate_metadata = meta.get(h.host, {})
            h.availability_zone = h.aggregate_metadata.get(AZ_KEY) or default
        self._by_id = by_id
        self._hosts = list(by_id.values())
        self._since = started

    # --- bus API ----------------------------------------------------------

    async def select_destinations(self, spec: dict[str, Any], instance_uuids: list[str],
                                  alternates: int = 2) -> list[dict[str, Any]]:
        """Claim a host for each instance; each answer lists alternates for reschedules."""
        req = RequestSpec.from_dict(spec)
        out = []
        for uuid in instance_uuids:
            out.append(await self._place(req, uuid, uuid, alternates))
            req.group_hosts.append(out[-1]["host"])
        return out

    async def _place(self, req: RequestSpec, instance_uuid: str, consumer: str,
                     alternates: int) -> dict[str, Any]:
        for attempt in range(3):
            hosts = await self.hosts(force=attempt > 0)
            # soft-affinity must see the members' hosts, wherever they are: all hosts
            limit = 0 if req.group_policy == "soft-affinity" \
                else self.settings.scheduler_max_candidates
            self._start += limit
            passed, rejections = candidates(hosts, req, start=self._start, limit=limit)
            if not passed:
                raise NoValidHost(rejections.explain(), kind="NoValidHost")
            ranked = rank(passed, req, self.weighers, self.settings.scheduler_host_subset_size,
                          self.rng, top=self.settings.scheduler_host_subset_size + 8)
            for i, host in enumerate(ranked):
                async with self.db.session() as session:
                    ok = await claims.claim(session, host.node_id, consumer, instance_uuid,
                                            req.vcpus, req.memory_mb, req.disk_gb)
                if ok:
                    host.consume(req)
                    alts = [h.host for h in ranked[i + 1:i + 1 + alternates]]
                    return {"host": host.host, "node": host.node, "node_id": host.node_id,
                            "availability_zone": host.availability_zone, "alternates": alts}
                if i >= 4:  # the cache is stale; reload and filter again
                    break
        raise NoValidHost("No valid host was found. Every candidate host was claimed by "
                          "concurrent requests.", kind="NoValidHost")

    async def claim_on(self, host: str, spec: dict[str, Any], instance_uuid: str,
                       consumer: str) -> dict[str, Any]:
        """Claim on one named host (forced destination, reschedule to an alternate)."""
        req = RequestSpec.from_dict({**spec, "force_host": host})
        return await self._place(req, instance_uuid, consumer, 0)

    async def release(self, consumer: str, host: str | None = None) -> int:
        async with self.db.session() as session:
            node_id = await self._node_id(session, host)
            count = await claims.release(session, consumer, node_id)
        self._loaded = 0.0
        return count

    async def move(self, old_consumer: str, new_consumer: str, host: str | None = None) -> None:
        async with self.db.session() as session:
            await claims.move(session, old_consumer, new_consumer,
                              await self._node_id(session, host))

    async def _node_id(self, session: Any, host: str | None) -> int | None:
        if host is None:
            return None
        return await session.scalar(select(ComputeNode.id).where(ComputeNode.host == host))
