"""The instance state machine, as one table.

For every action: the vm_states it may start from, the task_states it walks
through (in order), where it ends on success and on failure, and what a
restarted agent does when it finds the action interrupted. The API checks
``allowed`` (409 naming the state otherwise), claims the first task_state
with a compare-and-swap (``task_state IS NULL``), and the agent/conductor
walk the rest with :meth:`Transition.next_task`. The recovery code reads
``on_interrupt``. Nothing else decides states.

End states that depend on the instance are named by :class:`Outcome`:
``KEEP`` (the vm_state it had when the action started), ``PRIOR`` (the
vm_state saved when a resize/migration started, restored by confirm/revert),
``ACTIVE_UNLESS_STOPPED`` (rebuild/evacuate keep a stopped server stopped).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stratus.compute.states import PowerState, TaskState, VmState
from stratus.errors import Conflict

T = TaskState
V = VmState


class Outcome(StrEnum):
    KEEP = "keep"
    PRIOR = "prior"
    ACTIVE_UNLESS_STOPPED = "active_unless_stopped"


class Recovery(StrEnum):
    """What an agent does at start with an instance left mid-action."""

    ERROR = "error"  # give up: vm_state error, fault recorded
    SYNC = "sync"  # clear the task; vm_state follows the hypervisor's power state
    FINISH = "finish"  # redo the (idempotent) last step: used by delete


class Action(StrEnum):
    CREATE = "create"
    START = "start"
    STOP = "stop"
    REBOOT_SOFT = "reboot"
    REBOOT_HARD = "reboot_hard"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    SUSPEND = "suspend"
    RESUME = "resume"
    SNAPSHOT = "createImage"
    BACKUP = "createBackup"
    RESIZE = "resize"
    MIGRATE = "migrate"
    CONFIRM_RESIZE = "confirmResize"
    REVERT_RESIZE = "revertResize"
    LIVE_MIGRATE = "live-migration"
    EVACUATE = "evacuate"
    REBUILD = "rebuild"
    SHELVE = "shelve"
    SHELVE_OFFLOAD = "shelveOffload"
    UNSHELVE = "unshelve"
    RESCUE = "rescue"
    UNRESCUE = "unrescue"
    CHANGE_PASSWORD = "changePassword"
    DELETE = "delete"


VmEnd = VmState | Outcome


@dataclass(frozen=True)
class Transition:
    action: Action
    allowed: frozenset[VmState]
    tasks: tuple[TaskState, ...]
    success: VmEnd
    failure: VmEnd
    power_on_success: PowerState | None = None
    on_interrupt: Recovery = Recovery.SYNC

    @property
    def first_task(self) -> TaskState:
        return self.tasks[0]

    def next_task(self, current: TaskState | str | None) -> TaskState:
        """The task_state after ``current`` (the first one when ``current`` is None)."""
        if current is None:
            return self.tasks[0]
        index = self.tasks.index(TaskState(current))
        if index + 1 >= len(self.tasks):
            raise ValueError(f"{self.action} has no task_state after {current}")
        return self.tasks[index + 1]

    def check_allowed(self, vm_state: str, task_state: str | None, server_id: str) -> None:
        """409 naming the state when the action cannot start now."""
        if task_state is not None:
            raise Conflict(f"Cannot '{self.action.value}' instance {server_id} while it is in "
                           f"task_state {task_state}")
        if vm_state not in self.allowed:
            raise Conflict(f"Cannot '{self.action.value}' instance {server_id} while it is in "
                           f"vm_state {vm_state}")

    def end_state(self, outcome: VmEnd, *, started_from: VmState,
                  prior: VmState | None = None) -> VmState:
        """Resolve an :class:`Outcome` to a concrete vm_state for one instance."""
        if isinstance(outcome, VmState):
            return outcome
        if outcome is Outcome.KEEP:
            return started_from
        if outcome is Outcome.PRIOR:
            return prior or VmState.ACTIVE
        return VmState.STOPPED if started_from is VmState.STOPPED else VmState.ACTIVE


def _t(action: Action, allowed: set[VmState], tasks: tuple[TaskState, ...], success: VmEnd,
       failure: VmEnd = Outcome.KEEP, power: PowerState | None = None,
       on_interrupt: Recovery = Recovery.SYNC) -> Transition:
    return Transition(action, frozenset(allowed), tasks, success, failure, power, on_interrupt)


_RUNNING = PowerState.RUNNING
_ANY_LIVE = {V.ACTIVE, V.BUILDING, V.PAUSED, V.SUSPENDED, V.STOPPED, V.RESCUED, V.RESIZED,
             V.SOFT_DELETED, V.ERROR, V.SHELVED, V.SHELVED_OFFLOADED}

TABLE: dict[Action, Transition] = {t.action: t for t in [
    _t(Action.CREATE, {V.BUILDING}, (T.SCHEDULING, T.NETWORKING, T.BLOCK_DEVICE_MAPPING,
                                     T.SPAWNING), V.ACTIVE, V.ERROR, _RUNNING, Recovery.ERROR),
    _t(Action.START, {V.STOPPED}, (T.POWERING_ON,), V.ACTIVE, power=_RUNNING),
    _t(Action.STOP, {V.ACTIVE, V.RESCUED, V.ERROR}, (T.POWERING_OFF,), V.STOPPED,
       power=PowerState.SHUTDOWN),
    _t(Action.REBOOT_SOFT, {V.ACTIVE}, (T.REBOOTING, T.REBOOT_PENDING, T.REBOOT_STARTED),
       V.ACTIVE, power=_RUNNING),
    _t(Action.REBOOT_HARD, {V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED, V.ERROR},
       (T.REBOOTING_HARD, T.REBOOT_PENDING_HARD, T.REBOOT_STARTED_HARD), V.ACTIVE, V.ERROR,
       _RUNNING),
    _t(Action.PAUSE, {V.ACTIVE}, (T.PAUSING,), V.PAUSED, power=PowerState.PAUSED),
    _t(Action.UNPAUSE, {V.PAUSED}, (T.UNPAUSING,), V.ACTIVE, power=_RUNNING),
    _t(Action.SUSPEND, {V.ACTIVE}, (T.SUSPENDING,), V.SUSPENDED, power=PowerState.SUSPENDED),
    _t(Action.RESUME, {V.SUSPENDED}, (T.RESUMING,), V.ACTIVE, power=_RUNNING),
    _t(Action.SNAPSHOT, {V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED},
       (T.IMAGE_SNAPSHOT_PENDING, T.IMAGE_SNAPSHOT, T.IMAGE_PENDING_UPLOAD, T.IMAGE_UPLOADING),
       Outcome.KEEP),
    _t(Action.BACKUP, {V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED},
       (T.IMAGE_BACKUP, T.IMAGE_PENDING_UPLOAD, T.IMAGE_UPLOADING), Outcome.KEEP),
    _t(Action.RESIZE, {V.ACTIVE, V.STOPPED},
       (T.RESIZE_PREP, T.RESIZE_MIGRATING, T.RESIZE_MIGRATED, T.RESIZE_FINISH), V.RESIZED),
    _t(Action.MIGRATE, {V.ACTIVE, V.STOPPED},
       (T.RESIZE_PREP, T.RESIZE_MIGRATING, T.RESIZE_MIGRATED, T.RESIZE_FINISH), V.RESIZED),
    _t(Action.CONFIRM_RESIZE, {V.RESIZED}, (T.RESIZE_CONFIRMING,), Outcome.PRIOR),
    _t(Action.REVERT_RESIZE, {V.RESIZED}, (T.RESIZE_REVERTING,), Outcome.PRIOR, V.ERROR),
    _t(Action.LIVE_MIGRATE, {V.ACTIVE, V.PAUSED}, (T.MIGRATING,), Outcome.KEEP),
    _t(Action.EVACUATE, {V.ACTIVE, V.STOPPED, V.ERROR},
       (T.REBUILDING, T.REBUILD_BLOCK_DEVICE_MAPPING, T.REBUILD_SPAWNING),
       Outcome.ACTIVE_UNLESS_STOPPED, V.ERROR, on_interrupt=Recovery.ERROR),
    _t(Action.REBUILD, {V.ACTIVE, V.STOPPED, V.ERROR},
       (T.REBUILDING, T.REBUILD_BLOCK_DEVICE_MAPPING, T.REBUILD_SPAWNING),
       Outcome.ACTIVE_UNLESS_STOPPED, V.ERROR, on_interrupt=Recovery.ERROR),
    _t(Action.SHELVE, {V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED},
       (T.SHELVING, T.SHELVING_IMAGE_PENDING_UPLOAD, T.SHELVING_IMAGE_UPLOADING), V.SHELVED,
       power=PowerState.SHUTDOWN),
    _t(Action.SHELVE_OFFLOAD, {V.SHELVED}, (T.SHELVING_OFFLOADING,), V.SHELVED_OFFLOADED,
       power=PowerState.SHUTDOWN),
    _t(Action.UNSHELVE, {V.SHELVED, V.SHELVED_OFFLOADED}, (T.UNSHELVING, T.SPAWNING),
       V.ACTIVE, power=_RUNNING),
    _t(Action.RESCUE, {V.ACTIVE, V.STOPPED, V.ERROR}, (T.RESCUING,), V.RESCUED,
       power=_RUNNING),
    _t(Action.UNRESCUE, {V.RESCUED}, (T.UNRESCUING,), V.ACTIVE, power=_RUNNING),
    _t(Action.CHANGE_PASSWORD, {V.ACTIVE}, (T.UPDATING_PASSWORD,), Outcome.KEEP),
    _t(Action.DELETE, _ANY_LIVE, (T.DELETING,), V.DELETED, V.ERROR,
       on_interrupt=Recovery.FINISH),
]}


def transition(action: Action | str) -> Transition:
    return TABLE[Action(action)]


def action_for_task(task_state: str) -> Transition | None:
    """The (first) action whose walk contains ``task_state``: what recovery looks up."""
    for t in TABLE.values():
        if task_state in t.tasks:
            return t
    return None


STABLE_VM_STATES = frozenset(VmState) - {VmState.BUILDING}
