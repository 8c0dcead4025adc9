"""The fake driver: guests are entries in a dict, operations are instant.

It honours the whole contract of :class:`~stratus.compute.virt.driver.Driver`
(power state transitions, idempotent destroy, snapshot streaming, migration
in three steps), so the control plane can be tested and benchmarked without
a hypervisor. Two knobs for tests and benchmarks:

* ``latency``: seconds to sleep per operation (``{"spawn": 0.5}``; key
  ``"*"`` for all), to widen race windows or mimic a real host; a live
  migration with ``{"migrate": 5}`` stays in progress for five seconds,
  reporting progress, and can be forced to complete or aborted meanwhile;
* ``fetch_images``: read the image through the agent's image source at
  spawn (off by default: a fake guest's disk is a few bytes, not a copy);
* failure injection: ``fail_next("spawn", 2)`` makes the next two spawns on
  this host raise :class:`DriverError`. A process running the fake driver
  also reads ``<data_dir>/fake-driver/<host>.json`` (``{"spawn": 2}``) before
  each operation and consumes it, so a test can inject failures into a cloud
  running in another process.

Migration between fake hosts of one process moves the guest record through a
shared registry; across processes the destination simply creates the guest.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stratus.compute.states import PowerState
from stratus.compute.virt.driver import (
    ConsoleEndpoint,
    Driver,
    DriverError,
    GuestExists,
    GuestInfo,
    GuestNotFound,
    GuestSpec,
    HostResources,
    ImageSource,
    MigrationAborted,
    MigrationStats,
    MigrationTarget,
    NotSupported,
    SnapshotSink,
)

_P = PowerState
SNAPSHOT_CHUNK = 64 * 1024


@dataclass
class FakeGuest:
    spec: GuestSpec
    power: PowerState = PowerState.RUNNING
    disk: bytes = b""
    rescued: bool = False
    console: list[str] = field(default_factory=list)
    password: str | None = None


@dataclass
class _LiveRun:
    memory: int
    disk: int
    done: float = 0.0  # fraction sent
    forced: bool = False
    aborted: bool = False

    def stats(self) -> MigrationStats:
        mem, disk = int(self.memory * self.done), int(self.disk * self.done)
        return MigrationStats(memory_total=self.memory, memory_processed=mem,
                              memory_remaining=self.memory - mem, disk_total=self.disk,
                              disk_processed=disk, disk_remaining=self.disk - disk)


# Every fake host of this process, by name: lets migrations move guests.
_REGISTRY: dict[str, FakeDriver] = {}


class FakeDriver(Driver):
    hypervisor_type = "fake"

    def __init__(self, host: str, *, vcpus: int = 16, memory_mb: int = 32768,
                 local_gb: int = 500, latency: dict[str, float] | None = None,
                 control_dir: Path | None = None, fetch_images: bool = False) -> None:
        self.host = host
        self.fetch_images = fetch_images
        self.resources = HostResources(hostname=host, vcpus=vcpus, memory_mb=memory_mb,
                                       local_gb=local_gb, hypervisor_type="fake",
                                       hypervisor_version=1000)
        self.latency = dict(latency or {})
        self.guests: dict[str, FakeGuest] = {}
        self._failures: dict[str, int] = {}
        self._control = control_dir / f"{host}.json" if control_dir else None
        self.calls: list[tuple[str, str]] = []  # (operation, uuid): for tests
        self._incoming: dict[str, FakeGuest] = {}
        self._live_runs: dict[str, _LiveRun] = {}
        self._kept: dict[str, FakeGuest] = {}  # cold-migrated away, until confirm/revert
        self._vnc: asyncio.Server | None = None  # the fake VNC server, once asked for
        _REGISTRY[host] = self

    # --- test knobs -------------------------------------------------------

    def fail_next(self, operation: str, count: int = 1) -> None:
        self._failures[operation] = self._failures.get(operation, 0) + count

    async def _op(self, operation: str, uuid: str = "") -> None:
        self.calls.append((operation, uuid))
        self._read_control()
        delay = self._delay(operation)
        if delay:
            await asyncio.sleep(delay)
        self._inject(operation)

    def _delay(self, operation: str) -> float:
        return self.latency.get(operation, self.latency.get("*", 0.0))

    def _inject(self, operation: str) -> None:
        if self._failures.get(operation, 0) > 0:
            self._failures[operation] -= 1
            raise DriverError(f"injected failure of {operation} on fake host {self.host}")

    def _read_control(self) -> None:
        if self._control is None or not self._control.exists():
            return
        try:
            wanted = json.loads(self._control.read_text())
            self._control.unlink()
        except (OSError, ValueError):
            return
        for operation, count in wanted.items():
            if operation == "latency":
                self.latency.update(count)
            else:
                self.fail_next(operation, int(count))

    def _guest(self, uuid: str) -> FakeGuest:
        guest = self.guests.get(uuid)
        if guest is None:
            raise GuestNotFound(f"guest {uuid} does not exist on fake host {self.host}")
        return guest

    def _log(self, guest: FakeGuest, line: str) -> None:
        guest.console.append(line)
        del guest.console[:-1000]

    # --- the contract -----------------------------------------------------

    async def host_resources(self) -> HostResources:
        return self.resources

    async def list_guests(self) -> list[GuestInfo]:
        return [GuestInfo(u, g.power) for u, g in self.guests.items()]

    async def power_state(self, uuid: str) -> PowerState:
        guest = self.guests.get(uuid)
        return guest.power if guest else PowerState.NOSTATE

    async def spawn(self, spec: GuestSpec, image: ImageSource | None, *,
                    rescue_image: str | None = None) -> None:
        await self._op("spawn", spec.uuid)
        if spec.uuid in self.guests:
            raise GuestExists(f"guest {spec.uuid} already exists on {self.host}")
        disk = b""
        if self.fetch_images and image is not None and spec.image_id:
            async for chunk in image(spec.image_id):
                disk += chunk
        guest = FakeGuest(spec, disk=disk or spec.uuid.encode() * 16)
        self.guests[spec.uuid] = guest
        self._log(guest, f"[    0.000000] Linux version 6.1.0-fake ({spec.name})")
        self._log(guest, "[    0.100000] Command line: console=ttyS0 root=/dev/vda")
        for i, nic in enumerate(spec.nics):
            self._log(guest, f"[    1.000000] virtio_net virtio{i}: fake NIC {nic['mac']} ready")
        if not spec.nics:
            self._log(guest, "[    1.000000] virtio_net virtio0: fake NIC ready")
        self._log(guest, f"{spec.hostname or spec.name} login: ")

    async def destroy(self, uuid: str, *, keep_disks: bool = False) -> None:
        await self._op("destroy", uuid)
        self.guests.pop(uuid, None)

    async def power_off(self, uuid: str, *, timeout: float = 0) -> None:
        await self._op("power_off", uuid)
        guest = self._guest(uuid)
        guest.power = _P.SHUTDOWN
        self._log(guest, "reboot: Power down")

    async def power_on(self, uuid: str) -> None:
        await self._op("power_on", uuid)
        guest = self._guest(uuid)
        guest.power = _P.RUNNING
        self._log(guest, "[    0.000000] Linux version 6.1.0-fake")

    async def reboot(self, uuid: str, *, hard: bool) -> None:
        await self._op("reboot", uuid)
        guest = self._guest(uuid)
        if guest.power not in (_P.RUNNING, _P.SHUTDOWN, _P.PAUSED, _P.SUSPENDED, _P.CRASHED):
            raise DriverError(f"cannot reboot a guest in power state {guest.power.name}")
        guest.power = _P.RUNNING
        self._log(guest, f"reboot: Restarting system ({'hard' if hard else 'soft'})")

    async def pause(self, uuid: str) -> None:
        await self._op("pause", uuid)
        self._require(uuid, _P.RUNNING, "pause").power = _P.PAUSED

    async def unpause(self, uuid: str) -> None:
        await self._op("unpause", uuid)
        self._require(uuid, _P.PAUSED, "unpause").power = _P.RUNNING

    async def suspend(self, uuid: str) -> None:
        await self._op("suspend", uuid)
        self._require(uuid, _P.RUNNING, "suspend").power = _P.SUSPENDED

    async def resume(self, uuid: str) -> None:
        await self._op("resume", uuid)
        self._require(uuid, _P.SUSPENDED, "resume").power = _P.RUNNING

    def _require(self, uuid: str, power: PowerState, op: str) -> FakeGuest:
        guest = self._guest(uuid)
        if guest.power != power and guest.power != _target_of(op):
            raise DriverError(f"cannot {op} a guest in power state {guest.power.name}")
        return guest

    async def snapshot(self, uuid: str, sink: SnapshotSink) -> int:
        await self._op("snapshot", uuid)
        disk = self._guest(uuid).disk
        for start in range(0, len(disk), SNAPSHOT_CHUNK):
            await sink(disk[start:start + SNAPSHOT_CHUNK])
        return len(disk)

    async def rescue(self, uuid: str, image: ImageSource | None, image_id: str | None) -> None:
        await self._op("rescue", uuid)
        guest = self._guest(uuid)
        guest.rescued, guest.power = True, _P.RUNNING
        self._log(guest, f"rescue: booted from image {image_id or 'default'}")

    async def unrescue(self, uuid: str) -> None:
        await self._op("unrescue", uuid)
        guest = self._guest(uuid)
        guest.rescued, guest.power = False, _P.RUNNING

    async def resize_disk(self, uuid: str, spec: GuestSpec) -> None:
        await self._op("resize_disk", uuid)
        guest = self._guest(uuid)
        if spec.root_gb < guest.spec.root_gb:
            raise DriverError("cannot shrink the root disk")
        guest.spec = spec

    async def prepare_incoming(self, spec: GuestSpec, *, live: bool,
                               block_migration: bool | None,
                               image: ImageSource | None = None,
                               source: dict[str, Any] | None = None) -> MigrationTarget:
        await self._op("prepare_incoming", spec.uuid)
        return MigrationTarget(host=self.host, uri=f"fake://{self.host}",  # no shared disks
                               block_migration=block_migration is not False)

    async def migrate_out(self, uuid: str, target: MigrationTarget, *,
                          live: bool) -> MigrationStats | None:
        stats = None
        if live:
            stats = await self._live(uuid, target)
        else:
            await self._op("migrate", uuid)
            guest = self._guest(uuid)  # kept, stopped, until confirm or revert
            self._kept[uuid] = replace(guest, spec=guest.spec, power=_P.SHUTDOWN,
                                       console=list(guest.console))
        guest = self._guest(uuid)
        destination = _REGISTRY.get(target.host)
        if destination is not None and destination is not self:
            destination._incoming[uuid] = guest
        del self.guests[uuid]
        return stats

    async def _live(self, uuid: str, target: MigrationTarget) -> MigrationStats:
        """A live migration that takes ``latency["migrate"]`` seconds, sending the
        guest's RAM (and disk, for a block migration) at an even pace, so tests
        can watch its progress, force it to complete, or abort it."""
        self.calls.append(("migrate", uuid))
        self._read_control()
        guest = self._guest(uuid)
        if guest.power not in (_P.RUNNING, _P.PAUSED):
            raise DriverError("live migration needs a running or paused guest")
        run = _LiveRun(memory=guest.spec.memory_mb << 20,
                       disk=(guest.spec.root_gb << 30) if target.block_migration else 0)
        self._live_runs[uuid] = run
        duration = self._delay("migrate")
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            while (elapsed := loop.time() - start) < duration and not run.forced:
                if run.aborted:
                    raise MigrationAborted(f"live migration of {uuid} was aborted")
                run.done = elapsed / duration
                await asyncio.sleep(min(0.02, duration - elapsed))
            if run.aborted:
                raise MigrationAborted(f"live migration of {uuid} was aborted")
            self._inject("migrate")
        finally:
            self._live_runs.pop(uuid, None)
        run.done = 1.0
        return replace(run.stats(), downtime_ms=5 if run.forced else 1)

    async def migration_progress(self, uuid: str) -> MigrationStats | None:
        run = self._live_runs.get(uuid)
        return run.stats() if run else None

    async def live_migration_force_complete(self, uuid: str) -> None:
        await self._op("live_migration_force_complete", uuid)
        if uuid not in self._live_runs:
            raise DriverError(f"no live migration of {uuid} runs on {self.host}")
        self._live_runs[uuid].forced = True

    async def live_migration_abort(self, uuid: str) -> None:
        await self._op("live_migration_abort", uuid)
        if uuid not in self._live_runs:
            raise DriverError(f"no live migration of {uuid} runs on {self.host}")
        self._live_runs[uuid].aborted = True

    async def finish_incoming(self, spec: GuestSpec, target: MigrationTarget, *,
                              power_on: bool, paused: bool = False) -> None:
        await self._op("finish_incoming", spec.uuid)
        guest = self._incoming.pop(spec.uuid, None) or FakeGuest(spec, disk=b"migrated")
        guest.spec = spec
        if power_on and paused:
            guest.power = _P.PAUSED
        elif power_on and guest.power not in (_P.PAUSED,):
            guest.power = _P.RUNNING
        elif not power_on:
            guest.power = _P.SHUTDOWN
        self.guests[spec.uuid] = guest

    async def abort_incoming(self, uuid: str) -> None:
        self._incoming.pop(uuid, None)

    async def confirm_migration(self, uuid: str) -> None:
        await self._op("confirm_migration", uuid)
        self._kept.pop(uuid, None)

    async def revert_migration(self, spec: GuestSpec, *, power_on: bool) -> None:
        await self._op("revert_migration", spec.uuid)
        kept = self._kept.pop(spec.uuid, None)
        if kept is None:
            raise DriverError(f"no copy of guest {spec.uuid} kept on {self.host} to revert to")
        kept.spec = spec
        kept.power = _P.RUNNING if power_on else _P.SHUTDOWN
        self.guests[spec.uuid] = kept

    async def console_output(self, uuid: str, length: int | None = None) -> str:
        await self._op("console_output", uuid)
        lines = self._guest(uuid).console
        if length is not None:
            lines = lines[-length:] if length > 0 else []
        return "\n".join(lines)  # as Nova: the last N lines, no trailing newline

    async def set_admin_password(self, uuid: str, password: str) -> None:
        await self._op("set_admin_password", uuid)
        guest = self._guest(uuid)
        if guest.power != _P.RUNNING:
            raise NotSupported("the guest must be running to set its password")
        guest.password = password

    async def get_vnc_console(self, uuid: str) -> ConsoleEndpoint:
        """A tiny VNC server on 127.0.0.1 (one per fake host, started on first use):
        it speaks the RFB version handshake, offers no authentication and then
        ignores what it is sent; enough to test the console proxy end to end."""
        await self._op("get_vnc_console", uuid)
        if self._guest(uuid).power not in (_P.RUNNING, _P.PAUSED):
            raise DriverError(f"guest {uuid} is not running")
        if self._vnc is None:
            self._vnc = await asyncio.start_server(_fake_rfb, "127.0.0.1", 0)
        return ConsoleEndpoint("127.0.0.1", int(self._vnc.sockets[0].getsockname()[1]))

    async def trigger_crash_dump(self, uuid: str) -> None:
        await self._op("trigger_crash_dump", uuid)
        self._log(self._guest(uuid), "Kernel panic - not syncing: NMI received")

    # --- simulating the outside world ------------------------------------

    def crash_behind_our_back(self, uuid: str, power: PowerState = _P.SHUTDOWN) -> None:
        """The guest stops without us asking (guest shutdown, OOM kill...)."""
        self._guest(uuid).power = power

    def with_spec(self, uuid: str, **changes: object) -> None:
        guest = self._guest(uuid)
        guest.spec = replace(guest.spec, **changes)  # type: ignore[arg-type]


async def _fake_rfb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        writer.write(b"RFB 003.008\n")
        await reader.readexactly(12)
        writer.write(b"\x01\x01")  # one security type: None
        while await reader.read(65536):
            pass
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _target_of(op: str) -> PowerState:
    return {"pause": _P.PAUSED, "unpause": _P.RUNNING, "suspend": _P.SUSPENDED,
            "resume": _P.RUNNING}[op]
