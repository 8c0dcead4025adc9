"""Network service wiring: the Neutron v2.0 API, the agent RPC endpoint, an embedded agent."""

from __future__ import annotations

import logging
import socket

from stratus.api.app import build_app
from stratus.api.auth import auth_middleware
from stratus.api.faults import FaultStyle
from stratus.bus.base import Listener, Target
from stratus.network import messages
from stratus.network.access import policy_for
from stratus.network.agent import AgentRunner
from stratus.network.api import NetworkAPI
from stratus.network.nova import ComputeNotifier
from stratus.network.rpc import Notifier, ServerEndpoint
from stratus.network.store import Store
from stratus.runtime import Runtime, Service
from stratus.settings import Dataplane

log = logging.getLogger("stratus.network")


class NetworkService(Service):
    name = "network"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        ref: list[Store] = []
        compute = ComputeNotifier(runtime) if settings.network.notify_compute else None
        self.store = Store(runtime.db, settings.network, Notifier(runtime.bus, ref, compute))
        ref.append(self.store)
        api = NetworkAPI(self.store, policy_for(settings), settings.endpoint("network"),
                         settings.network.list_limit_max)
        self.app = build_app(
            "network", api.routes(), metrics=runtime.metrics, style=FaultStyle.NEUTRON,
            max_body=settings.max_request_body,
            middleware=[auth_middleware(lambda: runtime.token_validator)])
        self.endpoint = ServerEndpoint(self.store, runtime.bus, compute)
        self.listener: Listener | None = None
        embedded = (settings.network.embedded_agent and "network-agent" not in settings.services
                    and settings.dataplane in (Dataplane.NOOP, Dataplane.AUTO))
        interval = settings.network.report_interval
        self.agents = [AgentRunner(runtime.bus, host, interval)
                       for host in _agent_hosts(runtime)] if embedded else []

    async def start(self) -> None:
        self.listener = await self.runtime.bus.serve(Target(messages.SERVER_TOPIC),
                                                     self.endpoint)
        for agent in self.agents:
            await agent.start()

    async def stop(self) -> None:
        for agent in self.agents:
            await agent.stop()
        if self.listener is not None:
            await self.listener.stop()


def _agent_hosts(runtime: Runtime) -> list[str]:
    """This host, plus every compute host of this all-in-one (fake hosts included):
    a port bound to any of them must find an agent."""
    settings = runtime.settings
    hosts = [settings.network.host or socket.gethostname()]
    if "compute-agent" in settings.services:
        base = settings.compute.host or socket.gethostname()
        hosts += [base] + [f"{base}-{i}" for i in range(2, settings.compute.fake_hosts + 1)]
    return list(dict.fromkeys(hosts))


class NetworkAgentService(Service):
    """``stratus serve network-agent``: the per-host agent (no-op dataplane for now)."""

    name = "network-agent"

    def __init__(self, runtime: Runtime) -> None:
        network = runtime.settings.network
        self.runner = AgentRunner(runtime.bus, network.host, network.report_interval)

    async def start(self) -> None:
        await self.runner.start()
        try:
            await self.runner.agent.resync()
        except Exception:  # the server may start later; messages still arrive
            log.warning("network agent could not resync at start", exc_info=True)

    async def stop(self) -> None:
        await self.runner.stop()


async def build(runtime: Runtime) -> Service:
    return NetworkService(runtime)


async def build_agent(runtime: Runtime) -> Service:
    return NetworkAgentService(runtime)
