"""The hypervisor driver boundary: the only place that touches a hypervisor.

A driver manages the guests of ONE host. The compute agent is its only
caller and calls it with plain, typed descriptions (:class:`GuestSpec`); it
never sees the database or the bus. Every method is ``async`` and must be
safe to call again after a crash half-way (idempotent where noted), because
the agent's recovery redoes interrupted steps.

The contract every driver honours (the fake driver is the executable
reference, and ``tests/unit/compute/test_fake_driver.py`` the contract test):

* ``spawn`` leaves a RUNNING guest; spawning an existing guest raises
  :class:`GuestExists`.
* ``destroy`` removes the guest and its local disks; destroying a missing
  guest is a no-op (idempotent).
* ``power_off``/``power_on``/``reboot`` end in SHUTDOWN/RUNNING/RUNNING and
  are no-ops when already there. A soft power-off/reboot asks the guest
  (ACPI) and falls back to a hard one after ``timeout`` seconds.
* ``pause`` keeps guest memory in RAM (PAUSED); ``suspend`` saves it to disk
  and frees the RAM (SUSPENDED); ``resume``/``unpause`` return to RUNNING.
* ``snapshot`` streams the root disk into ``sink`` chunk by chunk (no full
  temporary copy) and returns the bytes written; the guest may keep running.
* Migration is three calls on two hosts (the drivers never see each other):
  ``prepare_incoming`` on the destination returns a :class:`MigrationTarget`
  (plain JSON, it crosses the bus), ``migrate_out`` on the source sends the
  guest there (``live`` keeps it running; downtime is the driver's to
  minimise), ``finish_incoming`` on the destination starts it. On failure the
  guest is still on the source in its previous power state and the agent
  calls ``abort_incoming`` on the destination. ``migrate_out`` returns the
  :class:`MigrationStats` of the finished migration (or None when it has
  none); while a live migration runs, ``migration_progress`` reports how far
  it is, ``live_migration_force_complete`` makes it converge now (pause the
  guest, or post-copy) and ``live_migration_abort`` cancels it, after which
  ``migrate_out`` raises :class:`MigrationAborted` with the guest still
  running on the source.
* A cold migration or resize keeps the source's copy of the guest (stopped,
  disks untouched) until the user decides: ``confirm_migration`` on the
  source deletes it, ``revert_migration`` on the source brings it back as it
  was (original disk, original size) after the destination's copy was
  destroyed. Both hold on the same host (a resize in place) and on shared
  storage.
* A guest gets a config drive (OpenStack metadata on a disk) when
  ``GuestSpec.config_drive`` asks; a driver may also add one when the guest
  has no other way to learn its metadata, and says so in its docstring.
* ``console_output`` returns the tail of the serial console log;
  ``get_vnc_console`` says where the running guest's VNC server listens (for
  the console proxy), or raises :class:`NotSupported` when it has none.
* ``host_resources`` reports what the host offers; the scheduler applies the
  allocation ratios and reserved amounts on top.
* Any operation may raise :class:`DriverError` (or a subclass); the agent
  turns it into an instance fault and the failure state of the action table.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from stratus.compute.states import PowerState


class DriverError(Exception):
    """A hypervisor operation failed; the message is shown in the instance fault."""


class GuestNotFound(DriverError):
    pass


class GuestExists(DriverError):
    pass


class NotSupported(DriverError):
    """The driver cannot do this operation at all (e.g. set the admin password)."""


class MigrationAborted(DriverError):
    """A live migration was cancelled on request; the guest still runs on the source."""


@dataclass(frozen=True)
class GuestSpec:
    """Everything a driver needs to build a guest; no database rows."""

    uuid: str
    name: str  # the hypervisor-side name, e.g. instance-0000002a
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    image_id: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    key_data: str | None = None
    admin_password: str | None = None
    hostname: str = ""
    extra_specs: dict[str, str] = field(default_factory=dict)
    # Asked for by the server create request, the image (img_config_drive=mandatory)
    # or the deployment (compute.force_config_drive), as Nova decides it.
    config_drive: bool = False
    # The guest's network interfaces in order: {"port_id", "mac", "network_id"} each;
    # a driver gives the guest NIC i the MAC of nics[i] (the port's address).
    nics: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class HostResources:
    """Raw capacity of a host, before allocation ratios and reservations."""

    hostname: str
    vcpus: int
    memory_mb: int
    local_gb: int
    hypervisor_type: str
    hypervisor_version: int
    cpu_info: str = "{}"
    host_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class MigrationTarget:
    """Where a migrating guest goes: plain data, sent from destination to source."""

    host: str
    uri: str  # e.g. tcp:127.0.0.1:49152 for QEMU, fake://host for the fake driver
    block_migration: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MigrationStats:
    """How far a live migration is, in Nova's migration-record terms (bytes).

    ``memory_*`` is guest RAM (total, sent so far, still dirty); ``disk_*`` the
    block migration's disk copy (zero/None with shared storage);
    ``downtime_ms`` the pause at switch-over, known once it completed."""

    memory_total: int | None = None
    memory_processed: int | None = None
    memory_remaining: int | None = None
    disk_total: int | None = None
    disk_processed: int | None = None
    disk_remaining: int | None = None
    downtime_ms: int | None = None

    def as_record(self) -> dict[str, int | None]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ConsoleEndpoint:
    """Where a guest's graphical console listens, as the console proxy reaches it."""

    host: str
    port: int
    internal_access_path: str | None = None


@dataclass(frozen=True)
class GuestInfo:
    uuid: str
    power_state: PowerState


class ImageSource(Protocol):
    """What spawn/rebuild/rescue read images through (the caller's view of the image
    service): ``source(image_id)`` streams the data, ``await source.show(image_id)``
    is the image record (Glance v2 fields and properties), None when it does not
    exist or is not visible. A driver needs the record for the image's own boot
    properties (``kernel_id``, ``ramdisk_id``, ``os_command_line``) and checksums."""

    def __call__(self, image_id: str) -> AsyncIterator[bytes]: ...

    async def show(self, image_id: str) -> dict[str, Any] | None: ...


# Receives a snapshot's bytes as they are produced.
SnapshotSink = Callable[[bytes], Awaitable[None]]


class Driver(abc.ABC):
    """One host's hypervisor. See the module docstring for the contract."""

    hypervisor_type: str = "fake"

    @abc.abstractmethod
    async def host_resources(self) -> HostResources: ...

    @abc.abstractmethod
    async def list_guests(self) -> list[GuestInfo]:
        """Every guest the hypervisor knows, with its power state."""

    @abc.abstractmethod
    async def power_state(self, uuid: str) -> PowerState:
        """The guest's power state; NOSTATE when the guest does not exist."""

    @abc.abstractmethod
    async def spawn(self, spec: GuestSpec, image: ImageSource | None, *,
                    rescue_image: str | None = None) -> None: ...

    @abc.abstractmethod
    async def destroy(self, uuid: str, *, keep_disks: bool = False) -> None: ...

    @abc.abstractmethod
    async def power_off(self, uuid: str, *, timeout: float = 0) -> None: ...

    @abc.abstractmethod
    async def power_on(self, uuid: str) -> None: ...

    @abc.abstractmethod
    async def reboot(self, uuid: str, *, hard: bool) -> None: ...

    @abc.abstractmethod
    async def pause(self, uuid: str) -> None: ...

    @abc.abstractmethod
    async def unpause(self, uuid: str) -> None: ...

    @abc.abstractmethod
    async def suspend(self, uuid: str) -> None: ...

    @abc.abstractmethod
    async def resume(self, uuid: str) -> None: ...

    @abc.abstractmethod
    async def snapshot(self, uuid: str, sink: SnapshotSink) -> int: ...

    @abc.abstractmethod
    async def rescue(self, uuid: str, image: ImageSource | None, image_id: str | None) -> None:
        """Boot the guest from a rescue image with its own disk attached second."""

    @abc.abstractmethod
    async def unrescue(self, uuid: str) -> None: ...

    @abc.abstractmethod
    async def resize_disk(self, uuid: str, spec: GuestSpec) -> None:
        """Apply a new flavor's sizes to a stopped or migrated guest (grow only)."""

    async def migration_source(self, uuid: str) -> dict[str, Any]:
        """On the source, first: what the destination's ``prepare_incoming`` should know
        of the guest's disks and boot (plain JSON, it crosses the bus; Nova's
        migrate_data). Nothing by default."""
        return {}

    @abc.abstractmethod
    async def prepare_incoming(self, spec: GuestSpec, *, live: bool,
                               block_migration: bool | None,
                               image: ImageSource | None = None,
                               source: dict[str, Any] | None = None) -> MigrationTarget:
        """On the destination: get ready to receive ``spec`` (disks, listening QEMU).

        ``block_migration`` (live): True copies the disks, False expects shared
        storage, None ("auto") decides from whether the storage is shared; a
        driver raises DriverError, before changing anything, when the asked mode
        cannot work (Nova's InvalidSharedStorage/InvalidLocalStorage). ``image``
        fetches the guest's image, for a driver that keeps it locally; ``source``
        is what the source's ``migration_source`` said."""

    @abc.abstractmethod
    async def migrate_out(self, uuid: str, target: MigrationTarget, *,
                          live: bool) -> MigrationStats | None:
        """On the source: send the guest (memory and, if asked, disks) to ``target``."""

    async def migration_progress(self, uuid: str) -> MigrationStats | None:
        """On the source, during ``migrate_out(live=True)``: progress so far, if known."""
        return None

    async def live_migration_force_complete(self, uuid: str) -> None:
        raise NotSupported("this hypervisor cannot force a live migration to complete")

    async def live_migration_abort(self, uuid: str) -> None:
        raise NotSupported("this hypervisor cannot abort a live migration")

    @abc.abstractmethod
    async def finish_incoming(self, spec: GuestSpec, target: MigrationTarget, *,
                              power_on: bool, paused: bool = False) -> None:
        """On the destination: the guest is here; run it (or leave it stopped). A live
        migration of a PAUSED guest leaves it paused (``unpause`` runs it)."""

    @abc.abstractmethod
    async def abort_incoming(self, uuid: str) -> None:
        """On the destination: undo ``prepare_incoming`` (idempotent)."""

    @abc.abstractmethod
    async def confirm_migration(self, uuid: str) -> None:
        """On the source of a confirmed cold migration/resize: delete the copy kept
        for a revert (idempotent)."""

    @abc.abstractmethod
    async def revert_migration(self, spec: GuestSpec, *, power_on: bool) -> None:
        """On the source of a reverted cold migration/resize, once the destination's
        copy is destroyed: restore the kept copy as it was and run it (or not)."""

    @abc.abstractmethod
    async def console_output(self, uuid: str, length: int | None = None) -> str: ...

    async def get_vnc_console(self, uuid: str) -> ConsoleEndpoint:
        raise NotSupported("this hypervisor has no VNC console")

    async def set_admin_password(self, uuid: str, password: str) -> None:
        raise NotSupported("this hypervisor cannot set the admin password")

    async def trigger_crash_dump(self, uuid: str) -> None:
        raise NotSupported("this hypervisor cannot inject an NMI")
