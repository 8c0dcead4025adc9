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
