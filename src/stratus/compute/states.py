"""Instance states on the wire: vm_state, task_state, power_state, API status.

``vm_state`` is where an instance rests, ``task_state`` what is happening to
it now (``None`` when nothing is), ``power_state`` what the hypervisor last
said. The strings are OpenStack's, so clients and Tempest read them
unchanged. Power states are integers on the wire (``OS-EXT-STS:power_state``),
hence an ``IntEnum``.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class VmState(StrEnum):
    ACTIVE = "active"
    BUILDING = "building"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    STOPPED = "stopped"
    RESCUED = "rescued"
    RESIZED = "resized"
    SOFT_DELETED = "soft-delete"
    DELETED = "deleted"
    ERROR = "error"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"


class TaskState(StrEnum):
    SCHEDULING = "scheduling"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    NETWORKING = "networking"
    SPAWNING = "spawning"
    IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
    IMAGE_SNAPSHOT = "image_snapshot"
    IMAGE_PENDING_UPLOAD = "image_pending_upload"
    IMAGE_UPLOADING = "image_uploading"
    IMAGE_BACKUP = "image_backup"
    UPDATING_PASSWORD = "updating_password"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    RESIZE_CONFIRMING = "resize_confirming"
    REBOOTING = "rebooting"
    REBOOT_PENDING = "reboot_pending"
    REBOOT_STARTED = "reboot_started"
    REBOOTING_HARD = "rebooting_hard"
    REBOOT_PENDING_HARD = "reboot_pending_hard"
    REBOOT_STARTED_HARD = "reboot_started_hard"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"
    REBUILDING = "rebuilding"
    REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"
    REBUILD_SPAWNING = "rebuild_spawning"
    MIGRATING = "migrating"
    DELETING = "deleting"
    SHELVING = "shelving"
    SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
    SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"


class PowerState(IntEnum):
    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


class Status(StrEnum):
    """The coarse ``status`` field of a server, derived from vm/task state."""

    ACTIVE = "ACTIVE"
    BUILD = "BUILD"
    REBUILD = "REBUILD"
    REBOOT = "REBOOT"
    HARD_REBOOT = "HARD_REBOOT"
    PASSWORD = "PASSWORD"
    RESIZE = "RESIZE"
    VERIFY_RESIZE = "VERIFY_RESIZE"
    REVERT_RESIZE = "REVERT_RESIZE"
    MIGRATING = "MIGRATING"
    PAUSED = "PAUSED"
    SUSPENDED = "SUSPENDED"
    SHUTOFF = "SHUTOFF"
    RESCUE = "RESCUE"
    ERROR = "ERROR"
    DELETED = "DELETED"
    SOFT_DELETED = "SOFT_DELETED"
    SHELVED = "SHELVED"
    SHELVED_OFFLOADED = "SHELVED_OFFLOADED"
    UNKNOWN = "UNKNOWN"


T = TaskState
_RESIZING = {T.RESIZE_PREP, T.RESIZE_MIGRATING, T.RESIZE_MIGRATED, T.RESIZE_FINISH}
_REBUILDING = {T.REBUILDING, T.REBUILD_BLOCK_DEVICE_MAPPING, T.REBUILD_SPAWNING}
_SOFT_REBOOT = {T.REBOOTING, T.REBOOT_PENDING, T.REBOOT_STARTED}
_HARD_REBOOT = {T.REBOOTING_HARD, T.REBOOT_PENDING_HARD, T.REBOOT_STARTED_HARD}

# (vm_state) -> (default status, {task_state set: status}) as Nova's _STATE_MAP.
_STATUS: dict[VmState, tuple[Status, list[tuple[set[TaskState], Status]]]] = {
    VmState.ACTIVE: (Status.ACTIVE, [
        (_SOFT_REBOOT, Status.REBOOT), (_HARD_REBOOT, Status.HARD_REBOOT),
        ({T.UPDATING_PASSWORD}, Status.PASSWORD), (_REBUILDING, Status.REBUILD),
        ({T.MIGRATING}, Status.MIGRATING), (_RESIZING, Status.RESIZE),
    ]),
    VmState.BUILDING: (Status.BUILD, []),
    VmState.STOPPED: (Status.SHUTOFF, [(_RESIZING, Status.RESIZE),
                                       (_REBUILDING, Status.REBUILD),
                                       (_HARD_REBOOT, Status.HARD_REBOOT)]),
    VmState.RESIZED: (Status.VERIFY_RESIZE, [({T.RESIZE_REVERTING}, Status.REVERT_RESIZE)]),
    VmState.PAUSED: (Status.PAUSED, [({T.MIGRATING}, Status.MIGRATING),
                                     (_HARD_REBOOT, Status.HARD_REBOOT)]),
    VmState.SUSPENDED: (Status.SUSPENDED, [(_HARD_REBOOT, Status.HARD_REBOOT)]),
    VmState.RESCUED: (Status.RESCUE, []),
    VmState.ERROR: (Status.ERROR, [(_REBUILDING, Status.REBUILD),
                                   (_HARD_REBOOT, Status.HARD_REBOOT)]),
    VmState.DELETED: (Status.DELETED, []),
    VmState.SOFT_DELETED: (Status.SOFT_DELETED, []),
    VmState.SHELVED: (Status.SHELVED, []),
    VmState.SHELVED_OFFLOADED: (Status.SHELVED_OFFLOADED, []),
}

# The reverse, used by the ``status=`` list filter.
STATUS_TO_VM_STATES: dict[str, set[VmState]] = {}
for _vm, (_default, _) in _STATUS.items():
    STATUS_TO_VM_STATES.setdefault(_default.value, set()).add(_vm)


def status_of(vm_state: str, task_state: str | None) -> Status:
    """The API ``status`` for a vm_state/task_state pair."""
    try:
        default, by_task = _STATUS[VmState(vm_state)]
    except ValueError:
        return Status.UNKNOWN
    if task_state:
        for tasks, status in by_task:
            if task_state in tasks:
                return status
    return default


def vm_state_for_power(power: PowerState, current: VmState) -> VmState:
    """What a stable instance's vm_state becomes when the hypervisor reports ``power``.

    Used by the power-state sync and by recovery after a restart: an instance
    found shut down behind our back becomes ``stopped`` (SHUTOFF).
    """
    if current in (VmState.SHELVED_OFFLOADED, VmState.DELETED, VmState.BUILDING):
        return current
    if power in (PowerState.SHUTDOWN, PowerState.CRASHED, PowerState.NOSTATE):
        return VmState.STOPPED if current in (VmState.ACTIVE, VmState.PAUSED,
                                              VmState.SUSPENDED, VmState.RESCUED) else current
    if power == PowerState.PAUSED:
        return VmState.PAUSED
    if power == PowerState.SUSPENDED:
        return VmState.SUSPENDED
    if power == PowerState.RUNNING and current in (VmState.STOPPED, VmState.PAUSED,
                                                   VmState.SUSPENDED):
        return VmState.ACTIVE
    return current
