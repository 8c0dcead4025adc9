"""Where the QEMU driver keeps guests (``compute.instances_path``), and how live
migration's ``block_migration`` meets shared or separate storage, without QEMU:
the refusals happen before anything is started or written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from stratus.compute.virt.driver import DriverError, GuestSpec
from stratus.compute.virt.qemu import QemuDriver
from stratus.compute.virt.select import instances_dir
from stratus.settings import Settings

SPEC = GuestSpec(uuid="6f1c1c8e-0000-4000-8000-000000000001", name="instance-1", vcpus=1,
                 memory_mb=128, root_gb=1, image_id="img")


def test_default_is_one_directory_every_host_shares(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert instances_dir(s, "a") == instances_dir(s, "b") == tmp_path / "instances"


def test_host_in_the_path_gives_each_host_its_own(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, compute={"instances_path": "instances/{host}"})
    assert instances_dir(s, "a") == tmp_path / "instances" / "a"
    assert instances_dir(s, "b") == tmp_path / "instances" / "b"
    s = Settings(data_dir=tmp_path, compute={"instances_path": "/srv/vms/{host}"})
    assert instances_dir(s, "a") == Path("/srv/vms/a")


@pytest.mark.parametrize("bad", ["instances/{hostname}", "x/{}", "", "a/{host"])
def test_a_bad_path_template_names_the_setting(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError, match="instances_path"):
        Settings(data_dir=tmp_path, compute={"instances_path": bad})


def test_bandwidth_is_mib_per_second_and_not_negative(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).compute.live_migration_bandwidth == 0
    with pytest.raises(ValidationError, match="live_migration_bandwidth"):
        Settings(data_dir=tmp_path, compute={"live_migration_bandwidth": -1})


def _owned_by(drv: QemuDriver, host: str) -> Path:
    d = drv.dir(SPEC.uuid)
    d.mkdir(parents=True)
    (d / "disk.qcow2").write_bytes(b"")
    (d / "guest.json").write_text(json.dumps({"uuid": SPEC.uuid, "host": host}))
    return d


async def test_block_migration_onto_shared_storage_is_refused(tmp_path: Path) -> None:
    dest = QemuDriver("b", instances_dir=tmp_path / "shared")
    d = _owned_by(dest, "a")
    with pytest.raises(DriverError, match="shared storage"):
        await dest.prepare_incoming(SPEC, live=True, block_migration=True)
    assert json.loads((d / "guest.json").read_text())["host"] == "a"  # untouched
    assert not list(d.glob("run-*"))


async def test_shared_migration_without_shared_storage_is_refused(tmp_path: Path) -> None:
    _owned_by(QemuDriver("a", instances_dir=tmp_path / "a"), "a")
    dest = QemuDriver("b", instances_dir=tmp_path / "b")
    with pytest.raises(DriverError, match="not on shared storage"):
        await dest.prepare_incoming(SPEC, live=True, block_migration=False)
    assert not dest.dir(SPEC.uuid).exists()
