"""The service runtime: one wiring function builds a process from its settings.

A process runs a set of services (``stratus up`` runs them all; ``stratus
serve identity image`` runs two). Each service is a :class:`Service`: an
optional HTTP app served on the service's port, plus ``start``/``stop`` for
its background work (bus listeners, agents, periodic tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from stratus.api.context import TokenValidator
from stratus.api.metrics import Metrics
from stratus.bus import Bus, connect
from stratus.db import Database, migrate
from stratus.settings import API_SERVICES, Settings

log = logging.getLogger("stratus.runtime")

# Services are built in this order; identity first, since the others validate
# tokens through it.
BUILD_ORDER = ("identity", "image", "network", "volume", "compute", "scheduler", "conductor",
               "compute-agent", "network-agent", "dashboard", "novncproxy", "guest-seed")


class StartupError(Exception):
    """The process cannot start; the message says why and what to change."""


class Service:
    """A component of a process. Override what applies.

    ``app`` is served on ``settings.ports.<name>`` when the service is an API.
    """

    name: str = ""
    app: ASGIApp | None = None

    async def start(self) -> None:
        """Begin background work (listeners, loops). Called after every build."""

    async def stop(self) -> None:
        """Stop background work; called in reverse start order."""


@dataclass
class Runtime:
    """Everything the services of one process share; built once by :func:`build`."""

    settings: Settings
    metrics: Metrics
    db: Database
    bus: Bus
    services: dict[str, Service] = field(default_factory=dict)
    # Set by the identity service in this process, or a remote validator otherwise.
    token_validator: TokenValidator | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    _service_token: tuple[str, float] | None = field(default=None, repr=False)
    _service_token_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def service_headers(self) -> dict[str, str]:
        """``{"X-Auth-Token": ...}`` of this process's service user, for calls to other APIs.

        Cached until two minutes before expiry. With identity in this process
        the token is issued in-process; otherwise the service user logs in.
        """
        async with self._service_token_lock:
            cached = self._service_token
            if cached is None or cached[1] - time.time() < 120:
                user = next((s for s in ("compute", "image", "network", "volume")
                             if s in self.settings.services), "compute")
                issuer = self.extras.get("identity.service_token")
                if issuer is not None:
                    token, expires = await issuer(user)
                else:
                    from stratus.identity.client import fetch_service_token

                    token, expires = await fetch_service_token(self.settings, user)
                cached = (token, expires.timestamp())
                self._service_token = cached
        return {"X-Auth-Token": cached[0]}

    def client(self, service: str, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client for another service's public API.

        In the all-in-one the request goes through an in-process ASGI
        transport: the same request, without the socket.
        """
        base = self.settings.endpoint(service)
        local = self.services.get(service)
        if local is not None and local.app is not None:
            transport = httpx.ASGITransport(app=local.app)
            return httpx.AsyncClient(transport=transport, base_url=base, **kwargs)
        return httpx.AsyncClient(base_url=base, **kwargs)


ServiceBuilder = Callable[[Runtime], Awaitable[Service]]


def builder_for(name: str) -> ServiceBuilder:
    """The explicit table of services; imports only what a process runs."""
    match name:
        case "identity":
            from stratus.identity.service import build
        case "image":
            from stratus.image.service import build
        case "compute":
            from stratus.compute.service import build
        case "scheduler":
            from stratus.compute.service import build_scheduler as build
        case "conductor":
            from stratus.compute.service import build_conductor as build
        case "compute-agent":
            from stratus.compute.service import build_agent as build
        case "network":
            from stratus.network.service import build
        case "network-agent":
            from stratus.network.service import build_agent as build
        case "volume":
            from stratus.volume.service import build
        case "dashboard":
            from stratus.dashboard.service import build
        case "guest-seed":
            from stratus.guest.seed import build
        case "novncproxy":
            from stratus.console.service import build
        case _:
            raise StartupError(f"service {name!r} is not available in this version of Stratus")
    return build


def available_services() -> tuple[str, ...]:
    out = []
    for name in BUILD_ORDER:
        try:
            builder_for(name)
        except (StartupError, ImportError):
            continue
        out.append(name)
    return tuple(out)


async def build(settings: Settings, *, migrate_db: bool = True) -> Runtime:
    """The wiring function: settings in, a ready (not yet started) runtime out."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    metrics.describe("stratus_http_requests_total", "HTTP requests by route and status")
    metrics.describe("stratus_http_request_duration_seconds", "HTTP request latency")
    try:
        db = Database(settings.db_url)
    except Exception as exc:  # noqa: BLE001 - translate to one clear message
        raise StartupError(f"setting 'database_url': cannot use {settings.db_url!r}: {exc}") from exc
    if migrate_db:
        wanted = [s for s in settings.services if s in migrate.SERVICES_WITH_TABLES]
        try:
            await migrate.upgrade(db, wanted)
        except Exception as exc:  # noqa: BLE001
            await db.dispose()
            raise StartupError(
                f"setting 'database_url': migrating {db.url.split('@')[-1]} failed: {exc}"
            ) from exc
    bus = connect(settings.bus_url, metrics=metrics, default_timeout=settings.rpc_timeout)
    runtime = Runtime(settings=settings, metrics=metrics, db=db, bus=bus)
    order = [s for s in BUILD_ORDER if s in settings.services]
    if "identity" not in order:
        # Validate tokens against the identity service of another process.
        from stratus.identity.client import RemoteValidator

        runtime.token_validator = RemoteValidator(settings, runtime.service_headers)
    for name in order:
        runtime.services[name] = await builder_for(name)(runtime)
    return runtime


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def bind(self) -> None:
        """Load the config and open the listening socket (what ``serve`` does first)."""
        if not self.config.loaded:
            self.config.load()
        self.lifespan = self.config.lifespan_class(self.config)
        await self.startup()


@dataclass
class RunningProcess:
    runtime: Runtime
    servers: dict[str, _Server]
    tasks: list[asyncio.Task[None]]
    runfile: Path | None
    started_at: float

    async def stop(self) -> None:
        for server in self.servers.values():
            server.should_exit = True
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10)
        for service in reversed(list(self.runtime.services.values())):
            try:
                await service.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("stopping %s failed", service.name)
        await self.runtime.bus.stop()
        await self.runtime.db.dispose()
        if self.runfile is not None:
            self.runfile.unlink(missing_ok=True)


def run_dir(settings: Settings) -> Path:
    return settings.data_dir / "run"


async def start(runtime: Runtime, *, write_runfile: bool = True) -> RunningProcess:
    """Start the bus, the services and an HTTP server per API service."""
    settings = runtime.settings
    started_at = time.monotonic()
    try:
        await runtime.bus.start()
    except Exception as exc:  # noqa: BLE001
        raise StartupError(f"setting 'bus_url': cannot connect: {exc}") from exc
    for service in runtime.services.values():
        await service.start()
    servers: dict[str, _Server] = {}
    tasks: list[asyncio.Task[None]] = []
    for name, service in runtime.services.items():
        if service.app is None or name not in API_SERVICES:
            continue
        port = settings.ports.of(name)
        config = uvicorn.Config(service.app, host=settings.bind_host, port=port, log_config=None,
                                access_log=False, lifespan="off", timeout_graceful_shutdown=5)
        server = _Server(config)
        try:
            await server.bind()
        except SystemExit:
            for other in servers.values():
                await other.shutdown()
            raise StartupError(
                f"setting 'ports.{name}': cannot listen on {settings.bind_host}:{port} "
                "(is the port in use or the address wrong?)"
            ) from None
        servers[name] = server
    for name, server in servers.items():
        tasks.append(asyncio.create_task(_serve_loop(server), name=f"http-{name}"))
    runfile = None
    if write_runfile:
        rdir = run_dir(settings)
        rdir.mkdir(parents=True, exist_ok=True)
        runfile = rdir / f"{os.getpid()}.json"
        runfile.write_text(json.dumps({
            "pid": os.getpid(),
            "services": list(runtime.services),
            "endpoints": {n: settings.endpoint(n) for n in servers},
            "bus_url": settings.bus_url.split("@")[-1],
            "started": time.time(),
        }))
    return RunningProcess(runtime, servers, tasks, runfile, started_at)


async def _serve_loop(server: _Server) -> None:
    await server.main_loop()
    await server.shutdown()


async def run_until_signal(process: RunningProcess) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await process.stop()


def running_processes(settings: Settings) -> list[dict[str, Any]]:
    """What ``stratus status`` shows: live processes of this data dir."""
    found = []
    rdir = run_dir(settings)
    if not rdir.exists():
        return found
    for path in sorted(rdir.glob("*.json")):
        try:
            info = json.loads(path.read_text())
            os.kill(int(info["pid"]), 0)
        except (ProcessLookupError, ValueError, KeyError, json.JSONDecodeError):
            path.unlink(missing_ok=True)
            continue
        except PermissionError:
            pass
        found.append(info)
    return found
