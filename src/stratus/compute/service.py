"""Wiring of the compute roles: compute (the API), scheduler, conductor, compute-agent.

Each role is a :class:`~stratus.runtime.Service` built from the runtime; they
talk over ``runtime.bus`` only. In the all-in-one all four run in one process
(memory bus); multi-node runs them anywhere (``stratus serve compute-agent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
from typing import Any

from stratus.api.policy import Policy
from stratus.bus import Listener, Target
from stratus.compute import flavors, rpc, servicegroup
from stratus.compute.api.common import POLICY_DEFAULTS, Deps
from stratus.compute.images import ImageAPI, RestImageAPI
from stratus.compute.network import RestNetworkAPI
from stratus.runtime import Runtime, Service
from stratus.settings import Hypervisor

log = logging.getLogger("stratus.compute")


def host_name(runtime: Runtime) -> str:
    return runtime.settings.compute.host or socket.gethostname()


def image_api(runtime: Runtime) -> ImageAPI:
    """The image service's REST API; tests put a stand-in in ``runtime.extras``."""
    override = runtime.extras.get("compute.images")
    if override is not None:
        return override  # type: ignore[no-any-return]
    return RestImageAPI(runtime)


def network_api(runtime: Runtime) -> RestNetworkAPI | None:
    """The network service's REST API; tests without one put None in ``runtime.extras``."""
    if "compute.network" in runtime.extras:
        return runtime.extras["compute.network"]  # type: ignore[no-any-return]
    return RestNetworkAPI(runtime)


class ComputeAPIService(Service):
    name = "compute"

    def __init__(self, runtime: Runtime) -> None:
        from stratus.compute.api import routes

        self.runtime = runtime
        policy = Policy.for_service(runtime.settings, "compute", POLICY_DEFAULTS)
        self.deps = Deps(runtime.settings, runtime.db, runtime.bus, policy, image_api(runtime),
                         network_api(runtime))
        self.app = routes.build(runtime, self.deps)

    async def start(self) -> None:
        await flavors.bootstrap(self.runtime.db)


class _Role(Service):
    """A bus endpoint on a topic plus a heartbeat in os-services."""

    binary = ""
    topic = ""

    def __init__(self, runtime: Runtime, endpoint: object) -> None:
        self.runtime = runtime
        self.endpoint = endpoint
        self._listener: Listener | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = await self.runtime.bus.serve(Target(self.topic, host_name(
            self.runtime)), self.endpoint)
        self._task = asyncio.create_task(self._beat(), name=f"{self.binary}-heartbeat")

    async def _beat(self) -> None:
        settings = self.runtime.settings.compute
        while True:
            try:
                await servicegroup.heartbeat(self.runtime.db, host_name(self.runtime),
                                             self.binary, self.topic)
                await self.periodic()
            except Exception:
                log.exception("%s periodic work failed", self.binary)
            await asyncio.sleep(settings.heartbeat_interval)

    async def periodic(self) -> None:
        return None

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener:
            await self._listener.stop()


class SchedulerService(_Role):
    name = "scheduler"
    binary = "nova-scheduler"
    topic = rpc.SCHEDULER

    def __init__(self, runtime: Runtime) -> None:
        from stratus.compute.scheduler.manager import SchedulerManager

        super().__init__(runtime, SchedulerManager(runtime.db, runtime.settings.compute))


class ConductorService(_Role):
    name = "conductor"
    binary = "nova-conductor"
    topic = rpc.CONDUCTOR

    def __init__(self, runtime: Runtime) -> None:
        from stratus.compute.conductor.manager import ConductorManager

        self.manager = ConductorManager(
            runtime.db, runtime.bus, runtime.settings.compute,
            volatile_bus=runtime.settings.bus_url.startswith("memory://"),
            images=image_api(runtime))
        super().__init__(runtime, self.manager)

    async def start(self) -> None:
        await super().start()
        await self.manager.recover()

    async def periodic(self) -> None:
        await self.manager.periodic()


class ComputeAgentService(Service):
    """One compute host per configured fake host (or the one real host)."""

    name = "compute-agent"

    def __init__(self, runtime: Runtime) -> None:
        from stratus.compute.agent.host import ComputeHost

        self.runtime = runtime
        settings = runtime.settings
        base = host_name(runtime)
        count = settings.compute.fake_hosts
        names = [base] + [f"{base}-{i}" for i in range(2, count + 1)]
        from stratus.compute.virt.select import choose

        self.hypervisor = choose(settings)
        images = image_api(runtime)
        self.hosts = [ComputeHost(name, self._driver(name), runtime.db, runtime.bus, images,
                                  settings.compute) for name in names]
        runtime.extras["compute.hosts"] = {h.host: h for h in self.hosts}
        for h in self.hosts:
            h.manager.network = network_api(runtime)

    def _driver(self, name: str) -> Any:
        if self.hypervisor == Hypervisor.QEMU:
            from stratus.compute.virt.select import qemu_driver

            return qemu_driver(self.runtime.settings, name)
        from stratus.compute.virt.fake import FakeDriver

        c = self.runtime.settings.compute
        mem = c.fake_memory_mb or _machine_memory_mb()
        disk = c.fake_disk_gb or shutil.disk_usage(self.runtime.settings.data_dir).total // 2**30
        return FakeDriver(name, vcpus=c.fake_vcpus or os.cpu_count() or 2, memory_mb=mem,
                          local_gb=int(disk), latency=dict(c.fake_latency),
                          control_dir=self.runtime.settings.data_dir / "fake-driver")

    async def start(self) -> None:
        await asyncio.gather(*(h.start() for h in self.hosts))

    async def stop(self) -> None:
        for h in self.hosts:
            await h.stop()


def _machine_memory_mb() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 8192


async def build(runtime: Runtime) -> Service:
    return ComputeAPIService(runtime)


async def build_scheduler(runtime: Runtime) -> Service:
    return SchedulerService(runtime)


async def build_conductor(runtime: Runtime) -> Service:
    return ConductorService(runtime)


async def build_agent(runtime: Runtime) -> Service:
    return ComputeAgentService(runtime)
