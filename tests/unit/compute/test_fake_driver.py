"""The driver contract, run against the fake driver (the QEMU driver will run it too)."""

from __future__ import annotations

import pytest

from stratus.compute.states import PowerState
from stratus.compute.virt.driver import DriverError, GuestExists, GuestSpec
from stratus.compute.virt.fake import FakeDriver

SPEC = GuestSpec(uuid="u1", name="instance-00000001", vcpus=1, memory_mb=64, root_gb=1)


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver("h1")


async def test_spawn_runs_and_destroy_is_idempotent(driver: FakeDriver) -> None:
    await driver.spawn(SPEC, None)
    assert await driver.power_state("u1") == PowerState.RUNNING
    with pytest.raises(GuestExists):
        await driver.spawn(SPEC, None)
    await driver.destroy("u1")
    await driver.destroy("u1")
    assert await driver.power_state("u1") == PowerState.NOSTATE


async def test_power_operations_reach_their_states(driver: FakeDriver) -> None:
    await driver.spawn(SPEC, None)
    for op, state in ((driver.pause, PowerState.PAUSED), (driver.unpause, PowerState.RUNNING),
                      (driver.suspend, PowerState.SUSPENDED), (driver.resume, PowerState.RUNNING)):
        await op("u1")
        assert await driver.power_state("u1") == state
    await driver.power_off("u1")
    await driver.power_off("u1")
    assert await driver.power_state("u1") == PowerState.SHUTDOWN
    await driver.reboot("u1", hard=True)
    assert await driver.power_state("u1") == PowerState.RUNNING
    await driver.resume("u1")  # already there: a no-op
    await driver.power_off("u1")
    with pytest.raises(DriverError):
        await driver.pause("u1")  # a stopped guest cannot pause


async def test_snapshot_streams_the_disk_in_chunks(driver: FakeDriver) -> None:
    await driver.spawn(SPEC, None)
    driver.guests["u1"].disk = b"x" * 200_000
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(chunk)

    assert await driver.snapshot("u1", sink) == 200_000
    assert len(chunks) > 1 and b"".join(chunks) == b"x" * 200_000


async def test_migration_moves_the_guest_between_hosts() -> None:
    source, dest = FakeDriver("a"), FakeDriver("b")
    await source.spawn(SPEC, None)
    await source.pause("u1")
    target = await dest.prepare_incoming(SPEC, live=True, block_migration=True)
    await source.migrate_out("u1", target, live=True)
    await dest.finish_incoming(SPEC, target, power_on=True)
    assert "u1" not in source.guests
    assert await dest.power_state("u1") == PowerState.PAUSED


async def test_failure_injection_fails_the_next_n_calls(driver: FakeDriver, tmp_path) -> None:
    driver.fail_next("spawn", 2)
    for _ in range(2):
        with pytest.raises(DriverError, match="injected"):
            await driver.spawn(SPEC, None)
    await driver.spawn(SPEC, None)
    remote = FakeDriver("h2", control_dir=tmp_path)
    (tmp_path / "h2.json").write_text('{"spawn": 1}')
    with pytest.raises(DriverError):
        await remote.spawn(SPEC, None)
    await remote.spawn(SPEC, None)


async def test_console_output_tail(driver: FakeDriver) -> None:
    await driver.spawn(SPEC, None)
    out = await driver.console_output("u1", length=1)
    assert out.endswith("login: ") and "\n" not in out
    # Tempest counts lines with split("\n"): the last N lines, no trailing newline.
    assert len((await driver.console_output("u1", length=3)).split("\n")) == 3


@pytest.mark.parametrize("same_host", [True, False])
async def test_resize_keeps_the_source_until_revert_restores_it(same_host: bool) -> None:
    src = FakeDriver("rs-src")
    dst = src if same_host else FakeDriver("rs-dst")
    big = GuestSpec(uuid="u1", name="instance-00000001", vcpus=2, memory_mb=128, root_gb=5)
    await src.spawn(SPEC, None)
    await src.power_off("u1")
    target = await dst.prepare_incoming(big, live=False, block_migration=True)
    await src.migrate_out("u1", target, live=False)
    await dst.finish_incoming(big, target, power_on=True)
    await dst.resize_disk("u1", big)
    assert dst.guests["u1"].spec.root_gb == 5
    await dst.destroy("u1")
    await src.revert_migration(SPEC, power_on=True)
    assert src.guests["u1"].spec.root_gb == 1
    assert await src.power_state("u1") == PowerState.RUNNING
    with pytest.raises(DriverError):  # the kept copy is used up
        await src.revert_migration(SPEC, power_on=True)
    await src.confirm_migration("u1")  # idempotent


async def test_live_migration_progress_force_complete_and_abort() -> None:
    import asyncio

    from stratus.compute.virt.driver import MigrationAborted, MigrationTarget

    src, _dst = FakeDriver("lm-src", latency={"migrate": 30}), FakeDriver("lm-dst")
    await src.spawn(SPEC, None)
    target = MigrationTarget(host="lm-dst", uri="fake://lm-dst")
    moving = asyncio.create_task(src.migrate_out("u1", target, live=True))
    await asyncio.sleep(0.05)
    progress = await src.migration_progress("u1")
    assert progress is not None and progress.memory_total == 64 << 20
    await src.live_migration_abort("u1")
    with pytest.raises(MigrationAborted):
        await moving
    assert await src.power_state("u1") == PowerState.RUNNING
    moving = asyncio.create_task(src.migrate_out("u1", target, live=True))
    await asyncio.sleep(0.05)
    await src.live_migration_force_complete("u1")
    stats = await moving
    assert stats is not None and stats.memory_remaining == 0 and stats.downtime_ms
    assert "u1" not in src.guests
