"""The state table is the specification: these tests read like it."""

from __future__ import annotations

import pytest

from stratus.compute.lifecycle import TABLE, Action, Outcome, Recovery, action_for_task, transition
from stratus.compute.states import (
    PowerState,
    Status,
    TaskState,
    VmState,
    status_of,
    vm_state_for_power,
)
from stratus.errors import Conflict


def test_every_action_has_a_first_task_and_defined_end_states() -> None:
    for action, t in TABLE.items():
        assert t.tasks, action
        assert isinstance(t.success, (VmState, Outcome))
        assert isinstance(t.failure, (VmState, Outcome))
        assert t.allowed


def test_wire_strings_are_openstacks() -> None:
    assert VmState.SHELVED_OFFLOADED == "shelved_offloaded"
    assert VmState.SOFT_DELETED == "soft-delete"
    assert TaskState.POWERING_OFF == "powering-off"
    assert TaskState.IMAGE_PENDING_UPLOAD == "image_pending_upload"
    assert PowerState.SUSPENDED == 7


@pytest.mark.parametrize("vm,task,status", [
    ("active", None, Status.ACTIVE), ("building", "scheduling", Status.BUILD),
    ("active", "rebooting", Status.REBOOT), ("active", "reboot_started_hard",
                                             Status.HARD_REBOOT),
    ("stopped", None, Status.SHUTOFF), ("resized", None, Status.VERIFY_RESIZE),
    ("resized", "resize_reverting", Status.REVERT_RESIZE), ("active", "migrating",
                                                            Status.MIGRATING),
    ("active", "resize_prep", Status.RESIZE), ("error", "rebuilding", Status.REBUILD),
    ("rescued", None, Status.RESCUE), ("shelved_offloaded", None, Status.SHELVED_OFFLOADED),
    ("active", "image_uploading", Status.ACTIVE), ("bogus", None, Status.UNKNOWN),
])
def test_status_is_derived_like_nova(vm: str, task: str | None, status: Status) -> None:
    assert status_of(vm, task) == status


def test_snapshot_walks_the_four_image_task_states_in_order() -> None:
    t = transition(Action.SNAPSHOT)
    walk = [t.next_task(None)]
    while True:
        try:
            walk.append(t.next_task(walk[-1]))
        except ValueError:
            break
    assert walk == [TaskState.IMAGE_SNAPSHOT_PENDING, TaskState.IMAGE_SNAPSHOT,
                    TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_UPLOADING]
    assert t.end_state(t.success, started_from=VmState.PAUSED) == VmState.PAUSED


def test_wrong_state_conflict_names_the_state() -> None:
    with pytest.raises(Conflict, match="vm_state stopped"):
        transition(Action.PAUSE).check_allowed("stopped", None, "abc")
    with pytest.raises(Conflict, match="task_state powering-off"):
        transition(Action.PAUSE).check_allowed("active", "powering-off", "abc")


def test_rebuild_keeps_a_stopped_server_stopped() -> None:
    t = transition(Action.REBUILD)
    assert t.end_state(t.success, started_from=VmState.STOPPED) == VmState.STOPPED
    assert t.end_state(t.success, started_from=VmState.ERROR) == VmState.ACTIVE
    assert t.end_state(t.failure, started_from=VmState.ACTIVE) == VmState.ERROR


def test_confirm_and_revert_return_to_the_state_before_the_resize() -> None:
    for action in (Action.CONFIRM_RESIZE, Action.REVERT_RESIZE):
        t = transition(action)
        assert t.end_state(t.success, started_from=VmState.RESIZED,
                           prior=VmState.STOPPED) == VmState.STOPPED


def test_interrupted_builds_fail_and_interrupted_deletes_finish() -> None:
    assert action_for_task("spawning").on_interrupt is Recovery.ERROR  # type: ignore[union-attr]
    assert action_for_task("deleting").on_interrupt is Recovery.FINISH  # type: ignore[union-attr]
    assert action_for_task("pausing").on_interrupt is Recovery.SYNC  # type: ignore[union-attr]
    every_task = {task for t in TABLE.values() for task in t.tasks}
    assert every_task == set(TaskState), set(TaskState) - every_task


def test_power_state_drives_stable_vm_states() -> None:
    assert vm_state_for_power(PowerState.SHUTDOWN, VmState.ACTIVE) == VmState.STOPPED
    assert vm_state_for_power(PowerState.RUNNING, VmState.STOPPED) == VmState.ACTIVE
    assert vm_state_for_power(PowerState.NOSTATE, VmState.SHELVED_OFFLOADED) == \
        VmState.SHELVED_OFFLOADED
    assert vm_state_for_power(PowerState.PAUSED, VmState.ACTIVE) == VmState.PAUSED
